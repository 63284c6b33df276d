"""The demo's coworking space: zones, plans, members and their badges, doors and desks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gateway.store import Store
from gateway.store.models import (
    AccessWindow,
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

SITE = "demo"
FRONT_CONTROLLER = "door-ctl-front"
OFFICE_CONTROLLER = "door-ctl-office"
DESK_NODE = "desk-node-1"
DOORS = {"front-door": FRONT_CONTROLLER, "office-door": OFFICE_CONTROLLER}
DESKS = tuple(f"desk-{n}" for n in range(1, 7))
ROME = ZoneInfo("Europe/Rome")


@dataclass(frozen=True, slots=True)
class Card:
    """A card someone may hold against a reader, and what we expect of it."""

    uid: str
    holder: str
    note: str


# Who taps in the demo. The notes say why some are turned away.
CARDS = (
    Card("04A1B2C3D4", "Ada Lovelace", "private office: every door"),
    Card("04B2C3D4E5", "Grace Hopper", "hot desk: front door only"),
    Card("04C3D4E5F6", "Alan Turing", "hot desk: front door only"),
    Card("04D4E5F6A7", "Margaret Hamilton", "private office: every door"),
    Card("04E5F6A7B8", "Linus Torvalds", "suspended: unpaid invoice"),
    Card("04F6A7B8C9", "Grace Hopper (old card)", "revoked: reported lost"),
    Card("04A7B8C9D0", "Barbara Liskov", "day pass: it was yesterday"),
    Card("04B8C9D0E1", "Katherine Johnson", "weekend plan: not today"),
    Card("DEADBEEF01", "a stranger", "unknown badge"),
)

# Who shares what on the "who's in" board; the others did not opt in and never show there.
PROFILES = {
    "Ada Lovelace": ("Ada", "Software engineer", ["Python", "algorithms"], "Automating invoices"),
    "Grace Hopper": ("Grace", "Compiler writer", ["COBOL", "debugging"], "Finding the bug"),
    "Margaret Hamilton": ("Margaret", "Accountant", ["VAT", "start-up budgets"], "Cash flow"),
}

_MEMBERS = (
    # name, plan, status, [(uid, active)]
    ("Ada Lovelace", "private-office", MemberStatus.ACTIVE, [("04A1B2C3D4", True)]),
    (
        "Grace Hopper",
        "hot-desk",
        MemberStatus.ACTIVE,
        [("04B2C3D4E5", True), ("04F6A7B8C9", False)],
    ),
    ("Alan Turing", "hot-desk", MemberStatus.ACTIVE, [("04C3D4E5F6", True)]),
    ("Margaret Hamilton", "private-office", MemberStatus.ACTIVE, [("04D4E5F6A7", True)]),
    ("Linus Torvalds", "hot-desk", MemberStatus.SUSPENDED, [("04E5F6A7B8", True)]),
    ("Barbara Liskov", "day-pass", MemberStatus.ACTIVE, [("04A7B8C9D0", True)]),
    ("Katherine Johnson", "weekend", MemberStatus.ACTIVE, [("04B8C9D0E1", True)]),
)


@dataclass(frozen=True, slots=True)
class Seeded:
    admin_token: str
    allowlist_keys: dict[str, str]  # device id -> the key its configuration would carry


def seed(store: Store) -> Seeded:
    """Fill an empty store with the demo space; return an admin token and the device keys."""
    store.create_schema()
    now = datetime.now(UTC)
    with store.session() as session:
        session.add(Site(id=SITE, name="Varco demo space", timezone="Europe/Rome"))
        lobby = Zone(id="lobby", name="Lobby and open space")
        offices = Zone(id="private-offices", name="Private offices")
        session.add_all(
            [
                lobby,
                offices,
                Plan(id="hot-desk", name="Hot desk", zones=[lobby]),
                Plan(id="private-office", name="Private office", zones=[lobby, offices]),
                Plan(id="day-pass", name="Day pass", zones=[lobby]),
                # Open on the one weekday furthest from today, so the demo shows outside_hours.
                Plan(
                    id="weekend",
                    name="Weekend",
                    zones=[lobby],
                    windows=[
                        AccessWindow(
                            zone_id=None,
                            days=1 << ((now.astimezone(ROME).weekday() + 3) % 7),
                            start_minute=9 * 60,
                            end_minute=18 * 60,
                        )
                    ],
                ),
                Device(
                    id=FRONT_CONTROLLER,
                    site=SITE,
                    kind=DeviceKind.DOOR_CONTROLLER,
                    name="Front door controller",
                ),
                Device(
                    id=OFFICE_CONTROLLER,
                    site=SITE,
                    kind=DeviceKind.DOOR_CONTROLLER,
                    name="Office corridor controller",
                ),
                Device(id=DESK_NODE, site=SITE, kind=DeviceKind.DESK_NODE, name="Open space desks"),
            ]
        )
        session.flush()
        session.add_all(
            [
                Door(
                    id="front-door",
                    name="Front door",
                    zone_id="lobby",
                    device_id=FRONT_CONTROLLER,
                    unlock_seconds=3.0,
                ),
                Door(
                    id="office-door",
                    name="Private offices",
                    zone_id="private-offices",
                    device_id=OFFICE_CONTROLLER,
                    unlock_seconds=3.0,
                ),
            ]
        )
        for name, plan, status, badges in _MEMBERS:
            # A day pass for yesterday: the demo shows membership_expired.
            valid = (
                (now - timedelta(days=1), now - timedelta(hours=1)) if plan == "day-pass" else None
            )
            profile = PROFILES.get(name)
            member = Member(
                name=name,
                plan_id=plan,
                status=status,
                valid_from=valid[0] if valid else None,
                valid_until=valid[1] if valid else None,
                board_opt_in=profile is not None,
                # The demo's people are made up; a real member consents through their link.
                board_consent_at=now if profile else None,
                board_consent_via="demo seed" if profile else None,
                display_name=profile[0] if profile else None,
                profession=profile[1] if profile else None,
                skills=profile[2] if profile else [],
                ask_me_about=profile[3] if profile else None,
            )
            session.add(member)
            session.flush()
            session.add_all(
                Badge(uid=uid, member_id=member.id, active=active) for uid, active in badges
            )
        session.add_all(
            Desk(id=desk, name=f"Desk {n}", zone_id="lobby", kind="desk", device_id=DESK_NODE)
            for n, desk in enumerate(DESKS, start=1)
        )
        token = issue_token(session, name="demo admin", role=Role.ADMIN)
        keys = {d.id: d.allowlist_key for d in session.scalars(select(Device))}
        return Seeded(token, keys)
