"""The InfluxDB schema: bounded tags, no identities, each event's own timestamp."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway import measurements
from gateway.measurements import Sample
from varco.protocol import (
    Channel,
    DeskEvent,
    DeviceState,
    DoorEvent,
    DoorState,
    Reason,
    Status,
    Topic,
)

AT = datetime(2026, 3, 2, 9, 15, 30, 123456, tzinfo=UTC)
AT_NS = int(AT.timestamp()) * 1_000_000_000 + 123456 * 1000
MEMBER_ID = 4242
BADGE_UID = "04A1B2C3D4"


def access_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": "tap-00000001",
        "site": "rome",
        "device_id": "door-ctl-1",
        "door_id": "front-door",
        "credential_kind": "badge",
        "credential": BADGE_UID,
        "member_id": MEMBER_ID,
        "granted": True,
        "reason": Reason.GRANTED.value,
        "decided_offline": False,
        "allowlist_version": None,
        "tapped_at": AT,
        "decided_at": AT + timedelta(milliseconds=40),
    }
    return row | changes


def every_sample() -> list[Sample]:
    status = Status(
        state=DeviceState.ONLINE,
        software="0.1.0",
        started_at=AT - timedelta(hours=1),
        at=AT,
        uptime_seconds=3600.0,
        allowlist_version=7,
        allowlist_issued_at=AT - timedelta(minutes=10),
        outbox_depth=3,
    )
    return [
        measurements.access_point(access_row()),
        measurements.access_point(access_row(granted=False, decided_offline=True)),
        measurements.door_point(
            "rome",
            DoorEvent(event_id=uuid.uuid4().hex, door="front-door", state=DoorState.OPENED, at=AT),
        ),
        measurements.desk_point(
            "rome",
            DeskEvent(event_id=uuid.uuid4().hex, desk="desk-1", occupied=True, at=AT),
            "open-space",
        ),
        measurements.device_point("rome", "door-ctl-1", status),
    ]


@pytest.mark.parametrize("sample", every_sample(), ids=lambda s: s.measurement)
def test_tags_come_from_the_bounded_set(sample: Sample) -> None:
    assert set(sample.tags) <= measurements.TAGS


@pytest.mark.parametrize("sample", every_sample(), ids=lambda s: s.measurement)
def test_no_member_identity_in_any_point(sample: Sample) -> None:
    line = sample.line()
    assert BADGE_UID not in line
    assert str(MEMBER_ID) not in line.split(" ")[0] + line.split(" ")[1]
    assert "member" not in line
    assert "credential" not in line


@pytest.mark.parametrize("sample", every_sample(), ids=lambda s: s.measurement)
def test_each_point_has_its_events_own_timestamp(sample: Sample) -> None:
    assert sample.at == AT
    assert sample.line().endswith(f" {AT_NS}")


def test_access_point_line_is_exact() -> None:
    line = measurements.access_point(access_row(granted=False, decided_offline=True)).line()
    reason = access_row()["reason"]
    assert line == (
        f"access,door=front-door,reason={reason},result=denied,site=rome"
        f" count=1i,offline=1i {AT_NS}"
    )


def test_desk_point_line_is_exact() -> None:
    event = DeskEvent(event_id="desk-evt-1", desk="desk-1", occupied=False, at=AT)
    assert measurements.desk_point("rome", event).line() == (
        f"desk,desk=desk-1,site=rome occupied=0i {AT_NS}"
    )
    assert measurements.desk_point("rome", event, "quiet room").line() == (
        f"desk,area=quiet\\ room,desk=desk-1,site=rome occupied=0i {AT_NS}"
    )


def test_device_point_fields_keep_one_type() -> None:
    status = Status(
        state=DeviceState.OFFLINE, software="0.1.0", started_at=AT, at=AT, uptime_seconds=0
    )
    line = measurements.device_point("rome", "door-ctl-1", status).line()
    assert line == (
        f"device,device=door-ctl-1,site=rome online=0i,outbox_depth=0i,uptime_seconds=0.0 {AT_NS}"
    )


def test_message_points_skips_decisions_and_taps() -> None:
    topic = Topic(site="rome", device="door-ctl-1", channel=Channel.DESK)
    event = DeskEvent(event_id="desk-evt-1", desk="desk-1", occupied=True, at=AT)
    [sample] = measurements.message_points(topic, event, {"desk-1": "open-space"})
    assert sample.tags == {"site": "rome", "desk": "desk-1", "area": "open-space"}


def test_a_naive_time_or_an_unbounded_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Sample("desk", {"site": "rome"}, {"occupied": 1}, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="member"):
        Sample("access", {"member": "4242"}, {"count": 1}, AT)
