"""Factory helpers: a small coworking space in the store, with names tests can refer to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    Role,
    Site,
    Zone,
)
from gateway.store.tokens import issue_token

SITE = "test-site"
DOOR_DEVICE = "door-ctl-1"
DESK_NODE = "desk-node-1"
FRONT_DOOR = "front-door"
OFFICE_DOOR = "office-door"
UNLOCK_SECONDS = 0.4


@dataclass(frozen=True)
class Space:
    admin_token: str
    viewer_token: str
    ada: int
    grace: int
    linus: int
    ADA_BADGE: str = "04A1B2C3D4"  # private office: every door
    GRACE_BADGE: str = "04B2C3D4E5"  # hot desk: front door only
    LINUS_BADGE: str = "04E5F6A7B8"  # suspended
    LOST_BADGE: str = "04F6A7B8C9"  # Grace's revoked card
    UNKNOWN_BADGE: str = "DEADBEEF01"


def make_space(store: Store) -> Space:
    """Create zones, plans, a door controller with two doors, members and badges."""
    store.create_schema()
    with store.session() as session:
        session.add(Site(id=SITE, name="Test site", timezone="UTC"))
        lobby = Zone(id="lobby", name="Lobby")
        offices = Zone(id="offices", name="Private offices")
        session.add_all(
            [
                lobby,
                offices,
                Plan(id="hot-desk", name="Hot desk", zones=[lobby]),
                Plan(id="private-office", name="Private office", zones=[lobby, offices]),
                Device(id=DOOR_DEVICE, site=SITE, kind=DeviceKind.DOOR_CONTROLLER),
            ]
        )
        session.flush()
        session.add_all(
            [
                Door(
                    id=FRONT_DOOR,
                    name="Front",
                    zone_id="lobby",
                    device_id=DOOR_DEVICE,
                    unlock_seconds=UNLOCK_SECONDS,
                ),
                Door(
                    id=OFFICE_DOOR,
                    name="Offices",
                    zone_id="offices",
                    device_id=DOOR_DEVICE,
                    unlock_seconds=UNLOCK_SECONDS,
                ),
            ]
        )
        ada = Member(name="Ada Lovelace", plan_id="private-office")
        grace = Member(name="Grace Hopper", plan_id="hot-desk")
        linus = Member(name="Linus Torvalds", plan_id="hot-desk", status=MemberStatus.SUSPENDED)
        session.add_all([ada, grace, linus])
        session.flush()
        session.add_all(
            [
                Badge(uid=Space.ADA_BADGE, member_id=ada.id),
                Badge(uid=Space.GRACE_BADGE, member_id=grace.id),
                Badge(uid=Space.LINUS_BADGE, member_id=linus.id),
                Badge(uid=Space.LOST_BADGE, member_id=grace.id, active=False),
            ]
        )
        admin = issue_token(session, name="test admin", role=Role.ADMIN)
        viewer = issue_token(session, name="test viewer", role=Role.VIEWER)
        return Space(admin, viewer, ada.id, grace.id, linus.id)


def add_desk_node(
    store: Store, desks: Mapping[str, str], *, device: str = DESK_NODE, site: str = SITE
) -> None:
    """Register a desk node at the test site with ``desks`` (desk id -> zone) as its own.

    Zones that do not exist yet are made: the gateway believes a desk event only from the
    registered device of a registered desk.
    """
    with store.session() as session:
        for zone in set(desks.values()):
            if session.get(Zone, zone) is None:
                session.add(Zone(id=zone, name=zone.title()))
        if session.get(Device, device) is None:
            session.add(Device(id=device, site=site, kind=DeviceKind.DESK_NODE))
        session.flush()
        session.add_all(
            Desk(id=desk, name=desk.replace("-", " ").capitalize(), zone_id=zone, device_id=device)
            for desk, zone in desks.items()
        )


def access_row(event_id: str, at: datetime) -> dict[str, Any]:
    """A granted tap of Ada's badge at the front door, as the access log stores it."""
    return {
        "event_id": event_id,
        "site": SITE,
        "device_id": DOOR_DEVICE,
        "door_id": FRONT_DOOR,
        "credential_kind": "badge",
        "credential": Space.ADA_BADGE,
        "member_id": 1,
        "granted": True,
        "reason": "granted",
        "tapped_at": at,
        "decided_at": at + timedelta(milliseconds=15),
    }
