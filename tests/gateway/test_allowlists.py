"""Allow-lists: what ``build`` gives each door controller, from the space of ``test_access``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec
import pytest

from gateway.access import ClosureRule, Policy
from gateway.allowlists import Issued, build
from tests.gateway.test_access import (
    ADA,
    ADA_BADGE,
    ALAN_BADGE,
    ANNEX,
    ANNEX_CTL,
    BADGES,
    BARBARA_BADGE,
    CHRISTMAS,
    CORE_HOURS,
    DESK_NODE,
    DONALD_BADGE,
    DOOR_CTL,
    EDSGER_BADGE,
    EVENT,
    FRONT,
    GRACE,
    GRACE_BADGE,
    GRACE_LOST_BADGE,
    HEDY_BADGE,
    JOAN_BADGE,
    KATHERINE_BADGE,
    LAB_IN,
    LAB_OUT,
    LINUS_BADGE,
    LINUS_OLD_BADGE,
    MARGARET_BADGE,
    MEMBERS,
    MILAN_CTL,
    MILAN_FRONT,
    MILAN_SITE,
    MONDAY_MORNING,
    NEW_YORK_CTL,
    NEW_YORK_FRONT,
    NEW_YORK_HOLIDAY,
    NEW_YORK_SITE,
    OFFICE,
    OFFICE_HOURS,
    ORPHAN_BADGE,
    PASSES,
    POLICY,
    RADIA_BADGE,
    REVOKED_VISIT,
    ROME_HOLIDAY,
    ROME_SITE,
    SEALED,
    VAULT,
    VISIT,
    build_policy,
    rome,
)
from varco import protocol
from varco.protocol import Allowlist, Channel, Credential, CredentialKind, Interval, Schedule

TTL = timedelta(hours=24)


def issue(policy: Policy = POLICY, *, issued_at: datetime = MONDAY_MORNING) -> dict[str, Issued]:
    return build(policy, issued_at=issued_at, ttl=TTL)


ISSUED = issue()


def digest(device: str, credential: Credential) -> str:
    return protocol.credential_digest(POLICY.devices[device].allowlist_key, credential)


def badge(uid: str) -> Credential:
    return Credential(kind=CredentialKind.BADGE, value=uid)


def guest_pass(code: str) -> Credential:
    return Credential(kind=CredentialKind.PASS, value=code)


def allowlist(device: str) -> Allowlist:
    return ISSUED[device].allowlist


# -- one list per door controller --------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "site", "timezone", "doors"),
    [
        pytest.param(
            DOOR_CTL,
            ROME_SITE,
            "Europe/Rome",
            {FRONT, OFFICE, LAB_IN, LAB_OUT, VAULT, SEALED},
            id="rome-main",
        ),
        pytest.param(ANNEX_CTL, ROME_SITE, "Europe/Rome", {ANNEX}, id="rome-annex"),
        pytest.param(
            NEW_YORK_CTL, NEW_YORK_SITE, "America/New_York", {NEW_YORK_FRONT}, id="new-york"
        ),
        pytest.param(MILAN_CTL, MILAN_SITE, "Europe/Rome", {MILAN_FRONT}, id="milan"),
    ],
)
def test_each_door_controller_gets_its_own_doors(
    device: str, site: str, timezone: str, doors: set[str]
) -> None:
    issued = ISSUED[device]

    assert issued.site == site
    assert issued.allowlist.timezone == timezone
    assert set(issued.allowlist.doors) == doors


def test_only_door_controllers_get_a_list() -> None:
    # Not the desk node (no doors), not the old door's missing device, not an unknown device.
    assert set(ISSUED) == {DOOR_CTL, ANNEX_CTL, NEW_YORK_CTL, MILAN_CTL}
    assert DESK_NODE in POLICY.devices


@pytest.mark.parametrize(
    ("device", "closures"),
    [
        pytest.param(DOOR_CTL, [ROME_HOLIDAY, CHRISTMAS], id="rome"),
        pytest.param(NEW_YORK_CTL, [NEW_YORK_HOLIDAY, CHRISTMAS], id="new-york"),
        pytest.param(MILAN_CTL, [CHRISTMAS], id="milan"),
    ],
)
def test_a_list_carries_its_sites_closures_and_everyones(
    device: str, closures: list[ClosureRule]
) -> None:
    assert allowlist(device).closures == [closure.interval for closure in closures]


# -- who is on which door's list ---------------------------------------------------------------

# Everyone whose plan opens the lobby, even outside their membership (the schedule says when).
LOBBY = {
    ADA_BADGE,
    GRACE_BADGE,
    KATHERINE_BADGE,
    ALAN_BADGE,
    HEDY_BADGE,
    BARBARA_BADGE,
    MARGARET_BADGE,
    DONALD_BADGE,
    RADIA_BADGE,
    JOAN_BADGE,
}


@pytest.mark.parametrize(
    ("device", "door", "badges", "passes"),
    [
        pytest.param(DOOR_CTL, FRONT, LOBBY, {VISIT, EVENT}, id="front-door"),
        pytest.param(
            DOOR_CTL, OFFICE, {ADA_BADGE, BARBARA_BADGE, DONALD_BADGE}, set(), id="office-door"
        ),
        pytest.param(DOOR_CTL, LAB_IN, {ADA_BADGE, BARBARA_BADGE}, set(), id="lab-in"),
        pytest.param(DOOR_CTL, LAB_OUT, {ADA_BADGE, BARBARA_BADGE}, set(), id="lab-out"),
        pytest.param(DOOR_CTL, VAULT, set(), set(), id="vault-zone-locked-down"),
        pytest.param(DOOR_CTL, SEALED, set(), set(), id="sealed-door-locked-down"),
        pytest.param(ANNEX_CTL, ANNEX, LOBBY, {VISIT}, id="annex-door"),
        pytest.param(NEW_YORK_CTL, NEW_YORK_FRONT, LOBBY, set(), id="new-york-front-door"),
        pytest.param(MILAN_CTL, MILAN_FRONT, set(), set(), id="milan-site-locked-down"),
    ],
)
def test_who_is_on_a_doors_list(device: str, door: str, badges: set[str], passes: set[str]) -> None:
    # Never: revoked badges, suspended members, orphans, members whose plan is gone, revoked
    # passes, passes for other doors.
    expected = {digest(device, badge(uid)) for uid in badges} | {
        digest(device, guest_pass(code)) for code in passes
    }

    assert set(allowlist(device).doors[door].credentials) == expected


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(badge(GRACE_LOST_BADGE), id="revoked-badge"),
        pytest.param(badge(LINUS_BADGE), id="suspended-member"),
        pytest.param(badge(LINUS_OLD_BADGE), id="revoked-badge-of-a-suspended-member"),
        pytest.param(badge(ORPHAN_BADGE), id="member-not-in-the-snapshot"),
        pytest.param(badge(EDSGER_BADGE), id="member-whose-plan-is-gone"),
        pytest.param(guest_pass(REVOKED_VISIT), id="revoked-pass"),
    ],
)
def test_who_is_on_no_list(credential: Credential) -> None:
    for device, issued in ISSUED.items():
        for entry in issued.allowlist.doors.values():
            assert digest(device, credential) not in entry.credentials


@pytest.mark.parametrize(
    ("device", "door", "locked_down"),
    [
        pytest.param(DOOR_CTL, SEALED, True, id="door"),
        pytest.param(DOOR_CTL, VAULT, True, id="zone"),
        pytest.param(MILAN_CTL, MILAN_FRONT, True, id="site"),
        pytest.param(DOOR_CTL, FRONT, False, id="not-locked-down"),
    ],
)
def test_a_locked_down_door_says_so_and_lists_no_one(
    device: str, door: str, locked_down: bool
) -> None:
    entry = allowlist(device).doors[door]

    assert entry.locked_down is locked_down
    assert bool(entry.credentials) is not locked_down
    assert entry.unlock_seconds == POLICY.doors[door].unlock_seconds


# -- digests, never UIDs -----------------------------------------------------------------------


@pytest.mark.parametrize("device", sorted(ISSUED))
def test_the_payload_holds_no_uid_code_or_name(device: str) -> None:
    payload = protocol.encode(allowlist(device)).lower()
    secrets = [b.uid for b in BADGES] + [VISIT, EVENT, REVOKED_VISIT]
    secrets += [p.code_hash for p in PASSES]
    names = [m.name for m in MEMBERS] + [p.guest_name for p in PASSES]

    for text in secrets + names:
        assert text.lower().encode() not in payload, text


def test_credentials_are_keyed_with_the_devices_own_key() -> None:
    front = allowlist(DOOR_CTL).doors[FRONT].credentials
    annex = allowlist(ANNEX_CTL).doors[ANNEX].credentials

    assert digest(DOOR_CTL, badge(ADA_BADGE)) in front
    assert digest(ANNEX_CTL, badge(ADA_BADGE)) in annex
    assert digest(DOOR_CTL, badge(ADA_BADGE)) != digest(ANNEX_CTL, badge(ADA_BADGE))
    assert not set(front) & set(annex)


# -- schedules ---------------------------------------------------------------------------------


def schedule_id(device: str, door: str, credential: Credential) -> str:
    return allowlist(device).doors[door].credentials[digest(device, credential)]


def schedule_of(device: str, door: str, credential: Credential) -> Schedule:
    return allowlist(device).schedules[schedule_id(device, door, credential)]


@pytest.mark.parametrize(
    ("door", "credential", "expected"),
    [
        pytest.param(FRONT, badge(ADA_BADGE), Schedule(), id="any-hour"),
        pytest.param(
            FRONT, badge(GRACE_BADGE), Schedule(windows=[OFFICE_HOURS]), id="plan's-windows"
        ),
        pytest.param(
            OFFICE, badge(BARBARA_BADGE), Schedule(windows=[CORE_HOURS]), id="zone's-own-windows"
        ),
        pytest.param(
            LAB_IN,
            badge(BARBARA_BADGE),
            Schedule(windows=[OFFICE_HOURS]),
            id="plan's-windows-for-a-zone-without-its-own",
        ),
        pytest.param(
            FRONT,
            badge(HEDY_BADGE),
            Schedule(
                windows=[OFFICE_HOURS],
                valid_from=rome(2026, 3, 9, 12),
                valid_until=rome(2026, 3, 13, 12),
            ),
            id="membership-validity",
        ),
        pytest.param(
            OFFICE,
            badge(DONALD_BADGE),
            Schedule(closed_on_closures=False),
            id="open-on-closures",
        ),
        pytest.param(
            FRONT,
            guest_pass(VISIT),
            Schedule(valid_from=rome(2026, 3, 2, 9), valid_until=rome(2026, 3, 2, 18)),
            id="pass-validity",
        ),
    ],
)
def test_each_credential_carries_its_schedule(
    door: str, credential: Credential, expected: Schedule
) -> None:
    assert schedule_of(DOOR_CTL, door, credential) == expected


def test_schedules_are_deduplicated() -> None:
    listed = allowlist(DOOR_CTL)
    used = {sid for entry in listed.doors.values() for sid in entry.credentials.values()}
    schedules = [msgspec.json.encode(schedule) for schedule in listed.schedules.values()]

    assert used == set(listed.schedules)
    assert len(schedules) == len(set(schedules))
    # Ada's one schedule serves four doors; Grace and Joan share their plan's.
    ada = {schedule_id(DOOR_CTL, door, badge(ADA_BADGE)) for door in (FRONT, OFFICE, LAB_IN)}
    assert ada == {schedule_id(DOOR_CTL, LAB_OUT, badge(ADA_BADGE))}
    assert schedule_id(DOOR_CTL, FRONT, badge(GRACE_BADGE)) == schedule_id(
        DOOR_CTL, FRONT, badge(JOAN_BADGE)
    )
    # Barbara's plan-wide windows serve the lobby and the lab; the offices keep their own.
    assert schedule_id(DOOR_CTL, FRONT, badge(BARBARA_BADGE)) == schedule_id(
        DOOR_CTL, LAB_IN, badge(BARBARA_BADGE)
    )
    assert schedule_id(DOOR_CTL, FRONT, badge(BARBARA_BADGE)) != schedule_id(
        DOOR_CTL, OFFICE, badge(BARBARA_BADGE)
    )


# -- versions, expiry, fingerprints -------------------------------------------------------------


@pytest.mark.parametrize(
    "ttl", [timedelta(minutes=5), timedelta(hours=24), timedelta(days=7)], ids=str
)
def test_a_list_expires_ttl_after_it_is_issued(ttl: timedelta) -> None:
    listed = build(POLICY, issued_at=MONDAY_MORNING, ttl=ttl)[DOOR_CTL].allowlist

    assert listed.issued_at == MONDAY_MORNING
    assert listed.expires_at == MONDAY_MORNING + ttl
    assert listed.version == int(MONDAY_MORNING.timestamp()) * 1000


def test_a_later_issue_has_a_higher_version() -> None:
    later = issue(issued_at=MONDAY_MORNING + timedelta(milliseconds=1))

    assert later[DOOR_CTL].allowlist.version == allowlist(DOOR_CTL).version + 1


def test_the_fingerprint_ignores_the_time() -> None:
    later = issue(issued_at=MONDAY_MORNING + timedelta(hours=5))

    for device, issued in ISSUED.items():
        assert later[device].fingerprint == issued.fingerprint
        assert later[device].allowlist.version > issued.allowlist.version
        assert msgspec.structs.replace(
            later[device].allowlist, version=0, issued_at=MONDAY_MORNING, expires_at=MONDAY_MORNING
        ) == msgspec.structs.replace(
            issued.allowlist, version=0, issued_at=MONDAY_MORNING, expires_at=MONDAY_MORNING
        )


def suspend_grace(policy: Policy) -> Policy:
    member = dataclasses.replace(policy.members[GRACE], active=False)
    return dataclasses.replace(policy, members={**policy.members, GRACE: member})


def revoke_ada_badge(policy: Policy) -> Policy:
    rule = dataclasses.replace(policy.badges[ADA_BADGE], active=False)
    return dataclasses.replace(policy, badges={**policy.badges, ADA_BADGE: rule})


def lock_down_front_door(policy: Policy) -> Policy:
    door = dataclasses.replace(policy.doors[FRONT], locked_down=True)
    return dataclasses.replace(policy, doors={**policy.doors, FRONT: door})


def close_rome_for_a_day(policy: Policy) -> Policy:
    closure = ClosureRule(ROME_SITE, Interval(starts_at=rome(2026, 4, 6), ends_at=rome(2026, 4, 7)))
    return dataclasses.replace(policy, closures=(*policy.closures, closure))


def revoke_visit(policy: Policy) -> Policy:
    visit = protocol.pass_code_hash(VISIT)
    rule = dataclasses.replace(policy.passes[visit], revoked=True)
    return dataclasses.replace(policy, passes={**policy.passes, visit: rule})


def move_ada_to_hot_desk(policy: Policy) -> Policy:
    member = dataclasses.replace(policy.members[ADA], plan="hot-desk")
    return dataclasses.replace(policy, members={**policy.members, ADA: member})


@pytest.mark.parametrize(
    "change",
    [
        suspend_grace,
        revoke_ada_badge,
        lock_down_front_door,
        close_rome_for_a_day,
        revoke_visit,
        move_ada_to_hot_desk,
    ],
)
def test_the_fingerprint_changes_with_the_content(change: Callable[[Policy], Policy]) -> None:
    changed = issue(change(POLICY))

    assert changed[DOOR_CTL].fingerprint != ISSUED[DOOR_CTL].fingerprint
    # Milan's list (its site is locked down: no one on it) is untouched by all of these.
    assert changed[MILAN_CTL].fingerprint == ISSUED[MILAN_CTL].fingerprint


def test_a_suspended_member_leaves_every_list() -> None:
    changed = issue(suspend_grace(POLICY))

    for device, issued in changed.items():
        for entry in issued.allowlist.doors.values():
            assert digest(device, badge(GRACE_BADGE)) not in entry.credentials


# -- the wire ----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", sorted(ISSUED))
def test_a_list_survives_the_wire(device: str) -> None:
    raw = protocol.encode(allowlist(device))

    assert len(raw) <= protocol.max_bytes(Channel.ALLOWLIST)
    assert protocol.decode(Channel.ALLOWLIST, raw) == allowlist(device)


def test_build_is_deterministic() -> None:
    again = issue(build_policy())

    for device, issued in ISSUED.items():
        assert protocol.encode(again[device].allowlist) == protocol.encode(issued.allowlist)
        assert again[device].fingerprint == issued.fingerprint


def test_the_fingerprint_ignores_the_order_the_store_returns_rows_in() -> None:
    reordered = dataclasses.replace(
        POLICY,
        badges=dict(reversed(list(POLICY.badges.items()))),
        passes=dict(reversed(list(POLICY.passes.items()))),
    )

    for device, issued in issue(reordered).items():
        assert issued.fingerprint == ISSUED[device].fingerprint
