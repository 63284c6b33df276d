"""The access decision as a truth table: a policy snapshot, a tap and an instant in, a verdict out.

One small coworking space serves every row; ``tests/gateway/test_allowlists.py`` and
``tests/edge_agent/test_cache.py`` reuse it, the latter to check that a door offline decides
every row as ``decide`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.access import (
    BadgeRule,
    ClosureRule,
    DeviceRule,
    DoorRule,
    MemberRule,
    PassRule,
    PlanRule,
    Policy,
    SiteRule,
    Verdict,
    ZoneRule,
    decide,
)
from varco.protocol import (
    Credential,
    CredentialKind,
    Interval,
    Reason,
    Window,
    pass_code_hash,
)

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def new_york(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- the space ---------------------------------------------------------------------------------

ROME_SITE, NEW_YORK_SITE, MILAN_SITE = "rome", "new-york", "milan"

DOOR_CTL = "door-ctl-1"  # Rome: front, offices, the lab's two doors, the vault, a sealed door
ANNEX_CTL = "door-ctl-2"  # Rome: the annex
NEW_YORK_CTL = "door-ctl-ny"
MILAN_CTL = "door-ctl-milan"  # its whole site is locked down
DESK_NODE = "desk-node-1"  # a device with no doors
STRANGER_CTL = "door-ctl-9"  # not in the policy at all

FRONT = "front-door"
OFFICE = "office-door"
LAB_IN = "lab-in"
LAB_OUT = "lab-out"
VAULT = "vault-door"  # its zone is locked down
SEALED = "side-door"  # the door itself is locked down
ANNEX = "annex-door"
NEW_YORK_FRONT = "ny-front-door"
MILAN_FRONT = "milan-front-door"
OLD = "old-door"  # no device

WEEKDAYS = [0, 1, 2, 3, 4]
OFFICE_HOURS = Window(days=WEEKDAYS, start="08:00", end="18:00")
CORE_HOURS = Window(days=WEEKDAYS, start="09:00", end="17:00")
FRIDAY_NIGHT = Window(days=[4], start="22:00", end="02:00")
SATURDAY_NIGHT = Window(days=[5], start="22:00", end="03:00")

PLANS = [
    # Any hour, every zone (but shut on closures like everyone else).
    PlanRule(id="private-office", zones=frozenset({"lobby", "offices", "lab", "vault"})),
    PlanRule(id="hot-desk", zones=frozenset({"lobby"}), windows={None: (OFFICE_HOURS,)}),
    # The offices keep shorter hours than the plan's other zones.
    PlanRule(
        id="day-office",
        zones=frozenset({"lobby", "offices", "lab"}),
        windows={None: (OFFICE_HOURS,), "offices": (CORE_HOURS,)},
    ),
    PlanRule(id="night-owl", zones=frozenset({"lobby"}), windows={None: (FRIDAY_NIGHT,)}),
    PlanRule(id="saturday-night", zones=frozenset({"lobby"}), windows={None: (SATURDAY_NIGHT,)}),
    PlanRule(id="round-the-clock", zones=frozenset({"lobby", "offices"}), open_on_closures=True),
]

ADA, GRACE, LINUS, KATHERINE, ALAN, HEDY = 1, 2, 3, 4, 5, 6
BARBARA, MARGARET, DONALD, RADIA, EDSGER, JOAN = 7, 8, 9, 10, 11, 12

MEMBERS = [
    MemberRule(id=ADA, name="Ada Lovelace", active=True, plan="private-office"),
    MemberRule(id=GRACE, name="Grace Hopper", active=True, plan="hot-desk"),
    MemberRule(id=LINUS, name="Linus Torvalds", active=False, plan="hot-desk"),
    MemberRule(
        id=KATHERINE,
        name="Katherine Johnson",
        active=True,
        plan="hot-desk",
        valid_from=rome(2026, 4, 1),
    ),
    MemberRule(
        id=ALAN, name="Alan Turing", active=True, plan="hot-desk", valid_until=rome(2026, 3, 1)
    ),
    MemberRule(
        id=HEDY,
        name="Hedy Lamarr",
        active=True,
        plan="hot-desk",
        valid_from=rome(2026, 3, 9, 12),
        valid_until=rome(2026, 3, 13, 12),
    ),
    MemberRule(id=BARBARA, name="Barbara Liskov", active=True, plan="day-office"),
    MemberRule(id=MARGARET, name="Margaret Hamilton", active=True, plan="night-owl"),
    MemberRule(id=DONALD, name="Donald Knuth", active=True, plan="round-the-clock"),
    MemberRule(id=RADIA, name="Radia Perlman", active=True, plan="saturday-night"),
    MemberRule(id=EDSGER, name="Edsger Dijkstra", active=True, plan="retired-plan"),
    MemberRule(id=JOAN, name="Joan Clarke", active=True, plan="hot-desk"),
]

ADA_BADGE = "04A1B2C3D4"
GRACE_BADGE = "04B2C3D4E5"
GRACE_LOST_BADGE = "04F6A7B8C9"  # revoked
LINUS_BADGE = "04E5F6A7B8"  # Linus is suspended
LINUS_OLD_BADGE = "04C0FFEE00"  # revoked, and Linus is suspended
KATHERINE_BADGE = "04D1D2D3D4"
ALAN_BADGE = "04A7A7A7A7"
HEDY_BADGE = "04BEEF0001"
BARBARA_BADGE = "04BA2BA2A0"
MARGARET_BADGE = "04AA55AA55"
DONALD_BADGE = "04DEC0DE00"
RADIA_BADGE = "04F00DF00D"
EDSGER_BADGE = "04EDED0000"
JOAN_BADGE = "04C1A2C300"
ORPHAN_BADGE = "04ABCDEF99"  # belongs to a member who is not in the snapshot
UNKNOWN_BADGE = "DEADBEEF01"

BADGES = [
    BadgeRule(uid=ADA_BADGE, member_id=ADA, active=True),
    BadgeRule(uid=GRACE_BADGE, member_id=GRACE, active=True),
    BadgeRule(uid=GRACE_LOST_BADGE, member_id=GRACE, active=False),
    BadgeRule(uid=LINUS_BADGE, member_id=LINUS, active=True),
    BadgeRule(uid=LINUS_OLD_BADGE, member_id=LINUS, active=False),
    BadgeRule(uid=KATHERINE_BADGE, member_id=KATHERINE, active=True),
    BadgeRule(uid=ALAN_BADGE, member_id=ALAN, active=True),
    BadgeRule(uid=HEDY_BADGE, member_id=HEDY, active=True),
    BadgeRule(uid=BARBARA_BADGE, member_id=BARBARA, active=True),
    BadgeRule(uid=MARGARET_BADGE, member_id=MARGARET, active=True),
    BadgeRule(uid=DONALD_BADGE, member_id=DONALD, active=True),
    BadgeRule(uid=RADIA_BADGE, member_id=RADIA, active=True),
    BadgeRule(uid=EDSGER_BADGE, member_id=EDSGER, active=True),
    BadgeRule(uid=JOAN_BADGE, member_id=JOAN, active=True),
    BadgeRule(uid=ORPHAN_BADGE, member_id=99, active=True),
]

ZONES = [
    ZoneRule(id="lobby"),
    ZoneRule(id="offices"),
    ZoneRule(id="lab", anti_passback=True),
    ZoneRule(id="vault", locked_down=True),
]
SITES = [
    SiteRule(id=ROME_SITE, timezone=ROME),
    SiteRule(id=NEW_YORK_SITE, timezone=NEW_YORK),
    SiteRule(id=MILAN_SITE, timezone=ROME, locked_down=True),
]
DEVICES = [
    DeviceRule(id=DOOR_CTL, site=ROME_SITE, allowlist_key=b"\x01" * 32),
    DeviceRule(id=ANNEX_CTL, site=ROME_SITE, allowlist_key=b"\x02" * 32),
    DeviceRule(id=NEW_YORK_CTL, site=NEW_YORK_SITE, allowlist_key=b"\x03" * 32),
    DeviceRule(id=MILAN_CTL, site=MILAN_SITE, allowlist_key=b"\x04" * 32),
    DeviceRule(id=DESK_NODE, site=ROME_SITE, allowlist_key=b"\x05" * 32),
]
DOORS = [
    DoorRule(id=FRONT, zone="lobby", device=DOOR_CTL, unlock_seconds=4.0),
    DoorRule(id=OFFICE, zone="offices", device=DOOR_CTL, unlock_seconds=2.5),
    DoorRule(id=LAB_IN, zone="lab", device=DOOR_CTL, unlock_seconds=3.0, direction="in"),
    DoorRule(id=LAB_OUT, zone="lab", device=DOOR_CTL, unlock_seconds=3.0, direction="out"),
    DoorRule(id=VAULT, zone="vault", device=DOOR_CTL, unlock_seconds=5.0),
    DoorRule(id=SEALED, zone="lobby", device=DOOR_CTL, unlock_seconds=4.0, locked_down=True),
    DoorRule(id=ANNEX, zone="lobby", device=ANNEX_CTL, unlock_seconds=3.5),
    DoorRule(id=NEW_YORK_FRONT, zone="lobby", device=NEW_YORK_CTL, unlock_seconds=6.0),
    DoorRule(id=MILAN_FRONT, zone="lobby", device=MILAN_CTL, unlock_seconds=4.0),
    DoorRule(id=OLD, zone="lobby", device=None, unlock_seconds=4.0),
]

VISIT = "VISIT-0302"  # Monday 2 March, 09:00-18:00, front door, annex and the sealed door
EVENT = "EVENT-0319"  # 18-21 March, across Rome's holiday, front door
REVOKED_VISIT = "VISIT-REVOKED"
UNKNOWN_PASS = "VISIT-NOPE"

PASSES = [
    PassRule(
        code_hash=pass_code_hash(VISIT),
        guest_name="Tim Berners-Lee",
        doors=frozenset({FRONT, ANNEX, SEALED}),
        valid_from=rome(2026, 3, 2, 9),
        valid_until=rome(2026, 3, 2, 18),
    ),
    PassRule(
        code_hash=pass_code_hash(EVENT),
        guest_name="Vint Cerf",
        doors=frozenset({FRONT}),
        valid_from=rome(2026, 3, 18),
        valid_until=rome(2026, 3, 21),
    ),
    PassRule(
        code_hash=pass_code_hash(REVOKED_VISIT),
        guest_name="Bob Kahn",
        doors=frozenset({FRONT}),
        valid_from=rome(2026, 3, 2, 9),
        valid_until=rome(2026, 3, 2, 18),
        revoked=True,
    ),
]

ROME_HOLIDAY = ClosureRule(
    ROME_SITE, Interval(starts_at=rome(2026, 3, 19), ends_at=rome(2026, 3, 20))
)
NEW_YORK_HOLIDAY = ClosureRule(
    NEW_YORK_SITE, Interval(starts_at=new_york(2026, 3, 20), ends_at=new_york(2026, 3, 21))
)
CHRISTMAS = ClosureRule(None, Interval(starts_at=utc(2026, 12, 25), ends_at=utc(2026, 12, 26)))
CLOSURES = [ROME_HOLIDAY, NEW_YORK_HOLIDAY, CHRISTMAS]


def build_policy() -> Policy:
    """Index the space's rules into a fresh snapshot."""
    return Policy.build(
        MEMBERS,
        BADGES,
        DOORS,
        DEVICES,
        plans=PLANS,
        zones=ZONES,
        sites=SITES,
        passes=PASSES,
        closures=CLOSURES,
        version=7,
    )


POLICY = build_policy()

MONDAY_MORNING = rome(2026, 3, 2, 10)  # in everyone's hours, on no one's holiday
MONDAY_NIGHT = rome(2026, 3, 2, 23)
SATURDAY = rome(2026, 3, 7, 11)
ROME_HOLIDAY_MORNING = rome(2026, 3, 19, 10)
CHRISTMAS_NOON = utc(2026, 12, 25, 12)


# -- rows --------------------------------------------------------------------------------------


def badge(uid: str) -> Credential:
    return Credential(kind=CredentialKind.BADGE, value=uid)


def guest_pass(code: str) -> Credential:
    return Credential(kind=CredentialKind.PASS, value=code)


def denied(reason: Reason, member_id: int | None = None) -> Verdict:
    return Verdict(granted=False, reason=reason, member_id=member_id)


def granted(member_id: int, unlock_seconds: float) -> Verdict:
    member = next(m for m in MEMBERS if m.id == member_id)
    return Verdict(
        granted=True,
        reason=Reason.GRANTED,
        unlock_seconds=unlock_seconds,
        member_id=member_id,
        display_name=member.name,
    )


def guest(name: str, unlock_seconds: float) -> Verdict:
    return Verdict(
        granted=True, reason=Reason.GRANTED, unlock_seconds=unlock_seconds, display_name=name
    )


@dataclass(frozen=True)
class Case:
    """One row: who taps where and when, and what ``decide`` must answer."""

    name: str
    door: str
    credential: Credential
    expected: Verdict
    at: datetime = MONDAY_MORNING
    device: str = DOOR_CTL
    inside: Mapping[int, str] | None = None


def decide_case(policy: Policy, case: Case) -> Verdict:
    """Ask ``decide`` what the row asks."""
    return decide(
        policy,
        device=case.device,
        door=case.door,
        credential=case.credential,
        at=case.at,
        inside=case.inside,
    )


RULES = [
    # Granted: the door's unlock time and the member's name go back to the reader.
    Case("granted", FRONT, badge(ADA_BADGE), granted(ADA, 4.0)),
    Case("granted-with-the-door's-own-unlock-time", OFFICE, badge(ADA_BADGE), granted(ADA, 2.5)),
    Case(
        "granted-at-another-device's-own-door",
        ANNEX,
        badge(ADA_BADGE),
        granted(ADA, 3.5),
        device=ANNEX_CTL,
    ),
    Case(
        "granted-whatever-case-the-reader-reports",
        FRONT,
        badge(ADA_BADGE.lower()),
        granted(ADA, 4.0),
    ),
    Case("granted-in-hours", FRONT, badge(GRACE_BADGE), granted(GRACE, 4.0)),
    Case(
        "granted-at-any-hour-with-no-windows",
        FRONT,
        badge(ADA_BADGE),
        granted(ADA, 4.0),
        at=rome(2026, 3, 8, 3),
    ),
    # Each reason for a denial.
    Case("unknown-badge", FRONT, badge(UNKNOWN_BADGE), denied(Reason.UNKNOWN_BADGE)),
    Case(
        "unknown-badge-of-a-member-not-in-the-snapshot",
        FRONT,
        badge(ORPHAN_BADGE),
        denied(Reason.UNKNOWN_BADGE),
    ),
    Case("badge-revoked", FRONT, badge(GRACE_LOST_BADGE), denied(Reason.BADGE_REVOKED, GRACE)),
    Case("member-suspended", FRONT, badge(LINUS_BADGE), denied(Reason.MEMBER_SUSPENDED, LINUS)),
    Case(
        "membership-not-yet-valid",
        FRONT,
        badge(KATHERINE_BADGE),
        denied(Reason.MEMBERSHIP_NOT_YET_VALID, KATHERINE),
    ),
    Case(
        "membership-not-yet-valid-a-minute-before-valid-from",
        FRONT,
        badge(HEDY_BADGE),
        denied(Reason.MEMBERSHIP_NOT_YET_VALID, HEDY),
        at=rome(2026, 3, 9, 11, 59),
    ),
    Case(
        "membership-valid-from-its-first-minute",
        FRONT,
        badge(HEDY_BADGE),
        granted(HEDY, 4.0),
        at=rome(2026, 3, 9, 12),
    ),
    Case(
        "membership-valid-a-minute-before-valid-until",
        FRONT,
        badge(HEDY_BADGE),
        granted(HEDY, 4.0),
        at=rome(2026, 3, 13, 11, 59),
    ),
    Case(
        "membership-expired-at-valid-until",
        FRONT,
        badge(HEDY_BADGE),
        denied(Reason.MEMBERSHIP_EXPIRED, HEDY),
        at=rome(2026, 3, 13, 12),
    ),
    Case("membership-expired", FRONT, badge(ALAN_BADGE), denied(Reason.MEMBERSHIP_EXPIRED, ALAN)),
    Case("wrong-zone", OFFICE, badge(GRACE_BADGE), denied(Reason.WRONG_ZONE, GRACE)),
    Case(
        "wrong-zone-when-the-member's-plan-is-gone",
        FRONT,
        badge(EDSGER_BADGE),
        denied(Reason.WRONG_ZONE, EDSGER),
    ),
    Case(
        "outside-hours-in-the-evening",
        FRONT,
        badge(GRACE_BADGE),
        denied(Reason.OUTSIDE_HOURS, GRACE),
        at=MONDAY_NIGHT,
    ),
    Case(
        "outside-hours-at-the-weekend",
        FRONT,
        badge(GRACE_BADGE),
        denied(Reason.OUTSIDE_HOURS, GRACE),
        at=SATURDAY,
    ),
    # Zone-specific windows override the plan's: the offices open 09:00-17:00, the rest 08-18.
    Case(
        "plan-window-opens-the-lobby-at-08:30",
        FRONT,
        badge(BARBARA_BADGE),
        granted(BARBARA, 4.0),
        at=rome(2026, 3, 2, 8, 30),
    ),
    Case(
        "plan-window-opens-a-zone-without-its-own-at-08:30",
        LAB_IN,
        badge(BARBARA_BADGE),
        granted(BARBARA, 3.0),
        at=rome(2026, 3, 2, 8, 30),
    ),
    Case(
        "zone-window-keeps-the-offices-shut-at-08:30",
        OFFICE,
        badge(BARBARA_BADGE),
        denied(Reason.OUTSIDE_HOURS, BARBARA),
        at=rome(2026, 3, 2, 8, 30),
    ),
    Case(
        "zone-window-opens-the-offices-at-09:00",
        OFFICE,
        badge(BARBARA_BADGE),
        granted(BARBARA, 2.5),
        at=rome(2026, 3, 2, 9),
    ),
    Case(
        "zone-window-shuts-the-offices-at-17:00",
        OFFICE,
        badge(BARBARA_BADGE),
        denied(Reason.OUTSIDE_HOURS, BARBARA),
        at=rome(2026, 3, 2, 17),
    ),
    Case(
        "plan-window-still-opens-the-lobby-at-17:30",
        FRONT,
        badge(BARBARA_BADGE),
        granted(BARBARA, 4.0),
        at=rome(2026, 3, 2, 17, 30),
    ),
]

HOLIDAYS = [
    Case(
        "holiday",
        FRONT,
        badge(GRACE_BADGE),
        denied(Reason.HOLIDAY, GRACE),
        at=ROME_HOLIDAY_MORNING,
    ),
    Case(
        "holiday-shuts-a-plan-with-no-windows",
        FRONT,
        badge(ADA_BADGE),
        denied(Reason.HOLIDAY, ADA),
        at=ROME_HOLIDAY_MORNING,
    ),
    Case(
        "holiday-from-its-first-minute",
        FRONT,
        badge(ADA_BADGE),
        denied(Reason.HOLIDAY, ADA),
        at=rome(2026, 3, 19),
    ),
    Case(
        "no-holiday-the-minute-before",
        FRONT,
        badge(ADA_BADGE),
        granted(ADA, 4.0),
        at=rome(2026, 3, 18, 23, 59),
    ),
    Case(
        "holiday-until-its-last-minute",
        FRONT,
        badge(ADA_BADGE),
        denied(Reason.HOLIDAY, ADA),
        at=rome(2026, 3, 19, 23, 59),
    ),
    Case(
        "no-holiday-once-it-ends",
        FRONT,
        badge(ADA_BADGE),
        granted(ADA, 4.0),
        at=rome(2026, 3, 20),
    ),
    Case(
        "holiday-at-another-site-does-not-apply",
        NEW_YORK_FRONT,
        badge(GRACE_BADGE),
        granted(GRACE, 6.0),
        device=NEW_YORK_CTL,
        at=rome(2026, 3, 19, 16),  # 11:00 in New York
    ),
    Case(
        "holiday-at-another-site-does-not-apply-the-other-way",
        FRONT,
        badge(GRACE_BADGE),
        granted(GRACE, 4.0),
        at=new_york(2026, 3, 20, 10),  # 15:00 in Rome
    ),
    Case(
        "holiday-at-the-new-york-site",
        NEW_YORK_FRONT,
        badge(GRACE_BADGE),
        denied(Reason.HOLIDAY, GRACE),
        device=NEW_YORK_CTL,
        at=new_york(2026, 3, 20, 10),
    ),
    Case(
        "closure-of-every-site-in-rome",
        FRONT,
        badge(ADA_BADGE),
        denied(Reason.HOLIDAY, ADA),
        at=CHRISTMAS_NOON,
    ),
    Case(
        "closure-of-every-site-in-new-york",
        NEW_YORK_FRONT,
        badge(ADA_BADGE),
        denied(Reason.HOLIDAY, ADA),
        device=NEW_YORK_CTL,
        at=CHRISTMAS_NOON,
    ),
    Case(
        "24/7-plan-open-on-closures-ignores-the-holiday",
        FRONT,
        badge(DONALD_BADGE),
        granted(DONALD, 4.0),
        at=ROME_HOLIDAY_MORNING,
    ),
    Case(
        "24/7-plan-open-on-closures-ignores-the-closure-of-every-site",
        OFFICE,
        badge(DONALD_BADGE),
        granted(DONALD, 2.5),
        at=CHRISTMAS_NOON,
    ),
]

ANTI_PASSBACK = [
    Case(
        "anti-passback-inside-denied-at-the-in-door",
        LAB_IN,
        badge(ADA_BADGE),
        denied(Reason.ANTI_PASSBACK, ADA),
        inside={ADA: "lab"},
    ),
    Case(
        "anti-passback-inside-denied-in-hours-too",
        LAB_IN,
        badge(BARBARA_BADGE),
        denied(Reason.ANTI_PASSBACK, BARBARA),
        inside={BARBARA: "lab"},
    ),
    Case(
        "anti-passback-inside-may-leave-by-the-out-door",
        LAB_OUT,
        badge(ADA_BADGE),
        granted(ADA, 3.0),
        inside={ADA: "lab"},
    ),
    Case(
        "anti-passback-not-inside-granted",
        LAB_IN,
        badge(ADA_BADGE),
        granted(ADA, 3.0),
        inside={},
    ),
    Case(
        "anti-passback-no-one-known-inside-granted",
        LAB_IN,
        badge(ADA_BADGE),
        granted(ADA, 3.0),
    ),
    Case(
        "anti-passback-inside-another-zone-granted",
        LAB_IN,
        badge(ADA_BADGE),
        granted(ADA, 3.0),
        inside={ADA: "lobby"},
    ),
    Case(
        "anti-passback-someone-else-inside-granted",
        LAB_IN,
        badge(ADA_BADGE),
        granted(ADA, 3.0),
        inside={GRACE: "lab", BARBARA: "lab"},
    ),
    Case(
        "no-anti-passback-in-a-zone-without-it",
        FRONT,
        badge(ADA_BADGE),
        granted(ADA, 4.0),
        inside={ADA: "lobby"},
    ),
]

LOCKDOWN = [
    Case("lockdown-of-the-door", SEALED, badge(ADA_BADGE), denied(Reason.LOCKDOWN)),
    Case("lockdown-of-the-zone", VAULT, badge(ADA_BADGE), denied(Reason.LOCKDOWN)),
    Case(
        "lockdown-of-the-site",
        MILAN_FRONT,
        badge(ADA_BADGE),
        denied(Reason.LOCKDOWN),
        device=MILAN_CTL,
    ),
    Case(
        "lockdown-holds-the-24/7-plan",
        SEALED,
        badge(DONALD_BADGE),
        denied(Reason.LOCKDOWN),
    ),
    Case("lockdown-holds-a-valid-pass", SEALED, guest_pass(VISIT), denied(Reason.LOCKDOWN)),
]

UNKNOWN_DOORS = [
    Case("unknown-door", "back-door", badge(ADA_BADGE), denied(Reason.UNKNOWN_DOOR)),
    Case("unknown-door-of-another-device", ANNEX, badge(ADA_BADGE), denied(Reason.UNKNOWN_DOOR)),
    Case("unknown-door-with-no-device", OLD, badge(ADA_BADGE), denied(Reason.UNKNOWN_DOOR)),
    Case(
        "unknown-door-asked-by-a-device-not-in-the-policy",
        FRONT,
        badge(ADA_BADGE),
        denied(Reason.UNKNOWN_DOOR),
        device=STRANGER_CTL,
    ),
]

GUEST_PASSES = [
    Case(
        "pass-granted-with-the-guest's-name",
        FRONT,
        guest_pass(VISIT),
        guest("Tim Berners-Lee", 4.0),
    ),
    Case(
        "pass-granted-at-each-of-its-doors",
        ANNEX,
        guest_pass(VISIT),
        guest("Tim Berners-Lee", 3.5),
        device=ANNEX_CTL,
    ),
    Case(
        "pass-granted-from-valid-from",
        FRONT,
        guest_pass(VISIT),
        guest("Tim Berners-Lee", 4.0),
        at=rome(2026, 3, 2, 9),
    ),
    Case(
        "pass-granted-at-any-hour-of-its-validity",
        FRONT,
        guest_pass(EVENT),
        guest("Vint Cerf", 4.0),
        at=rome(2026, 3, 18, 23, 30),
    ),
    Case("unknown-pass", FRONT, guest_pass(UNKNOWN_PASS), denied(Reason.UNKNOWN_PASS)),
    Case(
        "unknown-pass-spelled-like-a-badge-uid",
        FRONT,
        guest_pass(ADA_BADGE),
        denied(Reason.UNKNOWN_PASS),
    ),
    Case(
        "unknown-pass-in-the-wrong-case",
        FRONT,
        guest_pass(VISIT.lower()),
        denied(Reason.UNKNOWN_PASS),
    ),
    Case("pass-revoked", FRONT, guest_pass(REVOKED_VISIT), denied(Reason.PASS_REVOKED)),
    Case(
        "pass-not-yet-valid",
        FRONT,
        guest_pass(VISIT),
        denied(Reason.PASS_NOT_YET_VALID),
        at=rome(2026, 3, 2, 8, 59),
    ),
    Case(
        "pass-expired-at-valid-until",
        FRONT,
        guest_pass(VISIT),
        denied(Reason.PASS_EXPIRED),
        at=rome(2026, 3, 2, 18),
    ),
    Case(
        "pass-wrong-zone-door-not-on-the-pass", OFFICE, guest_pass(VISIT), denied(Reason.WRONG_ZONE)
    ),
    Case(
        "pass-holiday",
        FRONT,
        guest_pass(EVENT),
        denied(Reason.HOLIDAY),
        at=ROME_HOLIDAY_MORNING,
    ),
]

PRECEDENCE = [
    Case("unknown-door-beats-lockdown", MILAN_FRONT, badge(ADA_BADGE), denied(Reason.UNKNOWN_DOOR)),
    Case(
        "unknown-door-beats-unknown-badge",
        "back-door",
        badge(UNKNOWN_BADGE),
        denied(Reason.UNKNOWN_DOOR),
    ),
    Case(
        "unknown-door-beats-revoked-badge-of-suspended-member",
        "back-door",
        badge(LINUS_OLD_BADGE),
        denied(Reason.UNKNOWN_DOOR),
    ),
    Case(
        "unknown-door-beats-unknown-pass",
        "back-door",
        guest_pass(UNKNOWN_PASS),
        denied(Reason.UNKNOWN_DOOR),
    ),
    Case("lockdown-beats-unknown-badge", SEALED, badge(UNKNOWN_BADGE), denied(Reason.LOCKDOWN)),
    Case("lockdown-beats-revoked-badge", SEALED, badge(GRACE_LOST_BADGE), denied(Reason.LOCKDOWN)),
    Case("lockdown-beats-suspended-member", SEALED, badge(LINUS_BADGE), denied(Reason.LOCKDOWN)),
    Case("lockdown-beats-wrong-zone", VAULT, badge(GRACE_BADGE), denied(Reason.LOCKDOWN)),
    Case(
        "lockdown-beats-outside-hours",
        SEALED,
        badge(GRACE_BADGE),
        denied(Reason.LOCKDOWN),
        at=MONDAY_NIGHT,
    ),
    Case("lockdown-beats-unknown-pass", SEALED, guest_pass(UNKNOWN_PASS), denied(Reason.LOCKDOWN)),
    Case("lockdown-beats-revoked-pass", SEALED, guest_pass(REVOKED_VISIT), denied(Reason.LOCKDOWN)),
    Case(
        "revoked-badge-of-a-suspended-member-is-revoked",
        FRONT,
        badge(LINUS_OLD_BADGE),
        denied(Reason.BADGE_REVOKED, LINUS),
    ),
    Case(
        "revoked-badge-in-the-wrong-zone-is-revoked",
        OFFICE,
        badge(GRACE_LOST_BADGE),
        denied(Reason.BADGE_REVOKED, GRACE),
    ),
    Case(
        "suspended-member-in-the-wrong-zone-is-suspended",
        OFFICE,
        badge(LINUS_BADGE),
        denied(Reason.MEMBER_SUSPENDED, LINUS),
    ),
    Case(
        "suspended-member-outside-hours-is-suspended",
        FRONT,
        badge(LINUS_BADGE),
        denied(Reason.MEMBER_SUSPENDED, LINUS),
        at=MONDAY_NIGHT,
    ),
    Case(
        "wrong-zone-beats-outside-hours",
        OFFICE,
        badge(GRACE_BADGE),
        denied(Reason.WRONG_ZONE, GRACE),
        at=MONDAY_NIGHT,
    ),
    Case(
        "not-yet-valid-beats-holiday-and-outside-hours",
        FRONT,
        badge(KATHERINE_BADGE),
        denied(Reason.MEMBERSHIP_NOT_YET_VALID, KATHERINE),
        at=rome(2026, 3, 19, 20),
    ),
    Case(
        "expired-beats-holiday-and-outside-hours",
        FRONT,
        badge(ALAN_BADGE),
        denied(Reason.MEMBERSHIP_EXPIRED, ALAN),
        at=rome(2026, 3, 19, 20),
    ),
    Case(
        "holiday-beats-outside-hours",
        FRONT,
        badge(GRACE_BADGE),
        denied(Reason.HOLIDAY, GRACE),
        at=rome(2026, 3, 19, 20),
    ),
    Case(
        "outside-hours-beats-anti-passback",
        LAB_IN,
        badge(BARBARA_BADGE),
        denied(Reason.OUTSIDE_HOURS, BARBARA),
        at=MONDAY_NIGHT,
        inside={BARBARA: "lab"},
    ),
    Case(
        "holiday-beats-anti-passback",
        LAB_IN,
        badge(ADA_BADGE),
        denied(Reason.HOLIDAY, ADA),
        at=ROME_HOLIDAY_MORNING,
        inside={ADA: "lab"},
    ),
    Case(
        "pass-revoked-beats-door-not-on-the-pass",
        OFFICE,
        guest_pass(REVOKED_VISIT),
        denied(Reason.PASS_REVOKED),
    ),
    Case(
        "pass-door-not-on-the-pass-beats-expired",
        OFFICE,
        guest_pass(VISIT),
        denied(Reason.WRONG_ZONE),
        at=rome(2026, 3, 3, 10),
    ),
    Case(
        "pass-expired-beats-holiday",
        FRONT,
        guest_pass(VISIT),
        denied(Reason.PASS_EXPIRED),
        at=ROME_HOLIDAY_MORNING,
    ),
]

ACCESS_CASES = (
    RULES + HOLIDAYS + ANTI_PASSBACK + LOCKDOWN + UNKNOWN_DOORS + GUEST_PASSES + PRECEDENCE
)


@pytest.mark.parametrize("case", ACCESS_CASES, ids=lambda case: case.name)
def test_decide(case: Case) -> None:
    assert decide_case(POLICY, case) == case.expected


# -- the site's wall clock: past midnight, across time zones, across daylight saving ------------


def night_owl(name: str, at: datetime, opens: bool) -> Case:
    """Margaret's plan opens the lobby on Friday 22:00 - Saturday 02:00, Rome time."""
    expected = granted(MARGARET, 4.0) if opens else denied(Reason.OUTSIDE_HOURS, MARGARET)
    return Case(f"fri-22-02/{name}", FRONT, badge(MARGARET_BADGE), expected, at=at)


def office_hours(name: str, door: str, device: str, at: datetime, opens: bool) -> Case:
    """Grace's plan opens the lobby Monday to Friday 08:00-18:00, each site's own time."""
    seconds = POLICY.doors[door].unlock_seconds
    expected = granted(GRACE, seconds) if opens else denied(Reason.OUTSIDE_HOURS, GRACE)
    return Case(name, door, badge(GRACE_BADGE), expected, at=at, device=device)


def in_rome(name: str, at: datetime, opens: bool) -> Case:
    return office_hours(f"rome/{name}", FRONT, DOOR_CTL, at, opens)


def in_new_york(name: str, at: datetime, opens: bool) -> Case:
    return office_hours(f"new-york/{name}", NEW_YORK_FRONT, NEW_YORK_CTL, at, opens)


def saturday_night(name: str, at: datetime, opens: bool) -> Case:
    """Radia's plan opens the lobby on Saturday 22:00 - Sunday 03:00, Rome time."""
    expected = granted(RADIA, 4.0) if opens else denied(Reason.OUTSIDE_HOURS, RADIA)
    return Case(f"sat-22-03/{name}", FRONT, badge(RADIA_BADGE), expected, at=at)


PAST_MIDNIGHT = [
    night_owl("fri-21:59-out", rome(2026, 3, 6, 21, 59), opens=False),
    night_owl("fri-22:00-in", rome(2026, 3, 6, 22), opens=True),
    night_owl("fri-23:30-in", rome(2026, 3, 6, 23, 30), opens=True),
    night_owl("sat-00:00-in", rome(2026, 3, 7, 0, 0), opens=True),
    night_owl("sat-01:59-in", rome(2026, 3, 7, 1, 59), opens=True),
    night_owl("sat-02:00-out", rome(2026, 3, 7, 2, 0), opens=False),
    night_owl("thu-23:30-out", rome(2026, 3, 5, 23, 30), opens=False),
    night_owl("sun-01:00-out", rome(2026, 3, 8, 1, 0), opens=False),
    night_owl("sat-23:30-out", rome(2026, 3, 7, 23, 30), opens=False),
]

TIME_ZONES = [
    # The same instant, two sites: 08:00Z is 09:00 in Rome and 03:00 in New York...
    in_rome("08:00Z-is-09:00-in", utc(2026, 3, 2, 8), opens=True),
    in_new_york("08:00Z-is-03:00-out", utc(2026, 3, 2, 8), opens=False),
    # ... and 22:00Z is 23:00 in Rome and 17:00 in New York.
    in_rome("22:00Z-is-23:00-out", utc(2026, 3, 2, 22), opens=False),
    in_new_york("22:00Z-is-17:00-in", utc(2026, 3, 2, 22), opens=True),
    # New York moves its clocks on 8 March, three weeks before Rome: 12:00Z is 08:00 EDT.
    in_new_york("mon-16-mar-12:00Z-is-08:00-edt-in", utc(2026, 3, 16, 12), opens=True),
    in_new_york("mon-16-mar-11:59Z-is-07:59-edt-out", utc(2026, 3, 16, 11, 59), opens=False),
    in_new_york("mon-16-mar-21:59Z-is-17:59-edt-in", utc(2026, 3, 16, 21, 59), opens=True),
    in_new_york("mon-16-mar-22:00Z-is-18:00-edt-out", utc(2026, 3, 16, 22), opens=False),
]

DAYLIGHT_SAVING = [
    # The Monday before the change: Rome is on CET, UTC+1.
    in_rome("cet/mon-23-mar-06:59Z-is-07:59-out", utc(2026, 3, 23, 6, 59), opens=False),
    in_rome("cet/mon-23-mar-07:00Z-is-08:00-in", utc(2026, 3, 23, 7), opens=True),
    # The Monday after spring-forward (29 March): CEST, UTC+2. 06:00Z opens, an hour earlier in UTC.
    in_rome("spring/mon-30-mar-05:59Z-is-07:59-out", utc(2026, 3, 30, 5, 59), opens=False),
    in_rome("spring/mon-30-mar-06:00Z-is-08:00-in", utc(2026, 3, 30, 6), opens=True),
    in_rome("spring/mon-30-mar-15:59Z-is-17:59-in", utc(2026, 3, 30, 15, 59), opens=True),
    in_rome("spring/mon-30-mar-16:00Z-is-18:00-out", utc(2026, 3, 30, 16), opens=False),
    in_rome("spring/mon-30-mar-16:59Z-is-18:59-out", utc(2026, 3, 30, 16, 59), opens=False),
    # The Monday after fall-back (25 October): CET again, UTC+1. 06:00Z is still too early.
    in_rome("autumn/mon-26-oct-06:00Z-is-07:00-out", utc(2026, 10, 26, 6), opens=False),
    in_rome("autumn/mon-26-oct-06:59Z-is-07:59-out", utc(2026, 10, 26, 6, 59), opens=False),
    in_rome("autumn/mon-26-oct-07:00Z-is-08:00-in", utc(2026, 10, 26, 7), opens=True),
    in_rome("autumn/mon-26-oct-16:59Z-is-17:59-in", utc(2026, 10, 26, 16, 59), opens=True),
    in_rome("autumn/mon-26-oct-17:00Z-is-18:00-out", utc(2026, 10, 26, 17), opens=False),
    # The spring-forward night: 02:00 CET jumps to 03:00 CEST at 01:00Z; the window closes at
    # 03:00 on the wall clock, after four real hours instead of five.
    saturday_night("spring/sat-21:59-cet-out", utc(2026, 3, 28, 20, 59), opens=False),
    saturday_night("spring/sat-22:00-cet-in", utc(2026, 3, 28, 21), opens=True),
    saturday_night("spring/sun-01:59-cet-in", utc(2026, 3, 29, 0, 59), opens=True),
    saturday_night(
        "spring/sun-00:59:59Z-in", utc(2026, 3, 29, 0, 59).replace(second=59), opens=True
    ),
    saturday_night("spring/sun-03:00-cest-out", utc(2026, 3, 29, 1), opens=False),
    saturday_night("spring/sun-03:30-cest-out", utc(2026, 3, 29, 1, 30), opens=False),
    # The fall-back night: 03:00 CEST falls back to 02:00 CET at 01:00Z; 02:xx happens twice and
    # the window stays open through both, closing at 03:00 CET, after six real hours.
    saturday_night("autumn/sat-22:00-cest-in", utc(2026, 10, 24, 20), opens=True),
    saturday_night("autumn/sun-02:30-cest-in", utc(2026, 10, 25, 0, 30), opens=True),
    saturday_night("autumn/sun-02:30-cet-again-in", utc(2026, 10, 25, 1, 30), opens=True),
    saturday_night("autumn/sun-02:59-cet-in", utc(2026, 10, 25, 1, 59), opens=True),
    saturday_night("autumn/sun-03:00-cet-out", utc(2026, 10, 25, 2), opens=False),
]

TIME_CASES = PAST_MIDNIGHT + TIME_ZONES + DAYLIGHT_SAVING


@pytest.mark.parametrize("case", TIME_CASES, ids=lambda case: case.name)
def test_decide_on_the_site_clock(case: Case) -> None:
    assert decide_case(POLICY, case) == case.expected


ALL_CASES = ACCESS_CASES + TIME_CASES


def test_every_row_has_its_own_name() -> None:
    names = [case.name for case in ALL_CASES]
    assert len(names) == len(set(names))


def test_the_table_covers_every_reason_decide_gives() -> None:
    decided_at_the_door = {Reason.NOT_IN_ALLOWLIST, Reason.NO_ALLOWLIST, Reason.FAIL_SAFE}

    assert {case.expected.reason for case in ALL_CASES} == set(Reason) - decided_at_the_door


def test_verdict_is_frozen() -> None:
    verdict = decide_case(POLICY, RULES[0])

    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.granted = False  # type: ignore[misc]
    assert verdict.granted


def test_decide_leaves_the_policy_and_inside_as_they_were() -> None:
    policy = build_policy()
    inside = {ADA: "lab", BARBARA: "lab"}

    for case in ALL_CASES:
        decide_case(policy, dataclasses.replace(case, inside=inside))

    assert policy == build_policy()
    assert inside == {ADA: "lab", BARBARA: "lab"}


def test_policy_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        POLICY.members[ADA] = MEMBERS[1]  # type: ignore[index]
