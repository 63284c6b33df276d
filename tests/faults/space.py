"""The space the fault suite runs: two door controllers, a desk node, members and their badges.

``door-ctl-1`` serves the front door and the offices, ``door-ctl-2`` the back door (the one the
link scenarios cut off), ``desk-node-1`` four desks on pressure mats. Every door reads badges
on a ``serial_line`` reader (a pty the test types UIDs into); every desk is a mat on a mock pin.
The badges tapped mix grants and denials of every kind a door can tell apart online and
offline: a tap decided both ways with different outcomes is exactly what can be counted twice.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.store import Store
from gateway.store.models import (
    Badge,
    Desk,
    Device,
    DeviceKind,
    Door,
    Member,
    MemberStatus,
    Plan,
    Site,
    Zone,
)

SITE = "faults"
DOORS: dict[str, tuple[str, ...]] = {"door-ctl-1": ("front", "office"), "door-ctl-2": ("back",)}
DESKS: dict[str, tuple[str, ...]] = {"desk-node-1": ("desk-1", "desk-2", "desk-3", "desk-4")}
DOOR_ZONES = {"front": "lobby", "office": "offices", "back": "lobby"}
# Longer than the shipped 1 s, as in tests/integration: a loaded CI machine must not turn an
# online answer into an offline one where no fault was made.
DECISION_TIMEOUT = 2.0
UNLOCK_SECONDS = 1.0
FIRST_RELAY_PIN, FIRST_DESK_PIN = 17, 5

# Taps go round the badges, each door from its own place: granted and refused in turn.
MEMBERS = 8  # a plan that opens every door
HOT_DESKERS = 2  # the lobby only: refused at the offices (wrong_zone)
SUSPENDED = 2
UNKNOWN = ("DEAD0001", "DEAD0002", "DEAD0003")


@dataclass(frozen=True)
class Space:
    """What the edges need to know: each device's allow-list key, and the badges to tap."""

    keys: dict[str, str]
    badges: tuple[str, ...] = field(default=())


def badge_uid(n: int) -> str:
    # Hex with a letter: ten decimal digits would be read as a 32-bit card number.
    return f"B0{n:06X}"


def make_space(url: str) -> Space:
    """Create the schema and the space in the database at ``url``."""
    with Store(url) as store:
        store.upgrade()
        with store.session() as session:
            session.add(Site(id=SITE, name="Fault site", timezone="UTC"))
            lobby, offices = Zone(id="lobby", name="Lobby"), Zone(id="offices", name="Offices")
            session.add_all(
                [
                    lobby,
                    offices,
                    Plan(id="all-doors", name="Private office", zones=[lobby, offices]),
                    Plan(id="hot-desk", name="Hot desk", zones=[lobby]),
                ]
            )
            for device in DOORS:
                session.add(Device(id=device, site=SITE, kind=DeviceKind.DOOR_CONTROLLER))
            for device in DESKS:
                session.add(Device(id=device, site=SITE, kind=DeviceKind.DESK_NODE))
            session.flush()
            for device, doors in DOORS.items():
                session.add_all(
                    Door(
                        id=door,
                        name=door.title(),
                        zone_id=DOOR_ZONES[door],
                        device_id=device,
                        unlock_seconds=UNLOCK_SECONDS,
                    )
                    for door in doors
                )
            for device, desks in DESKS.items():
                session.add_all(
                    Desk(id=desk, name=desk, zone_id="lobby", device_id=device) for desk in desks
                )
            members = [Member(name=f"Member {n}", plan_id="all-doors") for n in range(MEMBERS)]
            members += [Member(name=f"Hot {n}", plan_id="hot-desk") for n in range(HOT_DESKERS)]
            members += [
                Member(name=f"Away {n}", plan_id="all-doors", status=MemberStatus.SUSPENDED)
                for n in range(SUSPENDED)
            ]
            session.add_all(members)
            session.flush()
            badges = [badge_uid(n) for n in range(len(members))]
            session.add_all(
                Badge(uid=uid, member_id=member.id)
                for uid, member in zip(badges, members, strict=True)
            )
            keys = {device.id: device.allowlist_key for device in session.query(Device)}
    # Interleaved, so that every stretch of taps has grants and denials.
    refused = [*badges[MEMBERS:], *UNKNOWN]
    pairs = itertools.zip_longest(badges[:MEMBERS], refused)
    cycle = [uid for pair in pairs for uid in pair if uid is not None]
    return Space(keys, tuple(cycle))


def edge_config(
    device: str,
    *,
    key: str,
    broker_port: int,
    state_dir: Path,
    ports: dict[str, str],
) -> dict[str, Any]:
    """Return a device's configuration file, as a Pi would have it (mock pins, pty readers)."""
    config: dict[str, Any] = {
        "device_id": device,
        "site": SITE,
        "broker": {"host": "127.0.0.1", "port": broker_port},
        "pin_factory": "mock",
        "state_dir": str(state_dir),
        "allowlist_key": key,
    }
    if device in DOORS:
        config["doors"] = [
            {
                "id": door,
                "relay_pin": FIRST_RELAY_PIN + n,
                "unlock_seconds": UNLOCK_SECONDS,
                "decision_timeout_seconds": DECISION_TIMEOUT,
                # Each tap is another member or the same one again: no card is held here.
                "reader": {"kind": "serial_line", "port": ports[door], "hold_off_seconds": 0},
            }
            for n, door in enumerate(DOORS[device])
        ]
    if device in DESKS:
        config["desks"] = [
            {
                "id": desk,
                "sensor": "pressure_mat",
                "pin": FIRST_DESK_PIN + n,
                "bounce_seconds": 0,
                "settle_seconds": 0,
            }
            for n, desk in enumerate(DESKS[device])
        ]
    return config


def desk_pin(desk: str) -> int:
    """Return the pin of ``desk``'s mat, as ``edge_config`` wires it."""
    for desks in DESKS.values():
        if desk in desks:
            return FIRST_DESK_PIN + desks.index(desk)
    raise KeyError(desk)
