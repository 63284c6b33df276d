"""A device's online taps are held to its rate before they are decoded, and an online tap that
spells "offline" somewhere (its reader's name, say) is held to it all the same."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest import Ingest, IngestOptions
from gateway.occupancy import Occupancy
from gateway.store import Store
from gateway.store.policy import load_policy
from gateway.store.writer import EventWriter
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, Space, make_space
from varco import protocol, transport
from varco.protocol import Channel, Credential, OfflineDecision, Reason, Tap


def ingest_for(tmp_path: Path, rate: float) -> Ingest:
    store = Store(f"sqlite:///{tmp_path / 'varco.db'}")
    make_space(store)
    with store.session() as session:
        policy = load_policy(session)
    return Ingest(
        transport.BrokerAddress(port=1),  # never connected: decisions are counted unsent
        EventWriter(store),
        lambda: policy,
        Occupancy(),
        IngestOptions(tap_rate=rate),
    )


def tap(n: int, *, reader: str = "main", offline: bool = False) -> bytes:
    return protocol.encode(
        Tap(
            event_id=f"rate-tap-{n:04d}",
            door=FRONT_DOOR,
            credential=Credential(value=Space.ADA_BADGE),
            reader=reader,
            at=protocol.utcnow(),
            offline=OfflineDecision(granted=True, reason=Reason.GRANTED) if offline else None,
        )
    )


def test_online_taps_beyond_the_rate_are_refused_whatever_they_spell(tmp_path: Path) -> None:
    ingest = ingest_for(tmp_path, rate=2)
    topic = protocol.topic(SITE, DOOR_DEVICE, Channel.TAP)
    acked: list[bool] = []
    for n in range(3):
        ingest.handle(topic, tap(n), acked.append)
    for n in range(3, 6):
        ingest.handle(topic, tap(n, reader="offline"), acked.append)

    assert ingest.counters["rejected_tap_rate"] == 4  # 2 a second, 6 asked at once
    assert ingest.counters["accepted_tap"] == 2


def test_taps_a_door_decided_offline_are_never_held_to_the_rate(tmp_path: Path) -> None:
    ingest = ingest_for(tmp_path, rate=1)
    topic = protocol.topic(SITE, DOOR_DEVICE, Channel.TAP)
    for n in range(20):  # a door back from an outage sends what it decided meanwhile
        ingest.handle(topic, tap(n, offline=True), lambda _new: None)

    assert ingest.counters["rejected_tap_rate"] == 0
    assert ingest.counters["accepted_tap"] == 20
