"""Allow-lists: what each door controller gets, whole and in updates, from ``test_access``'s space.

A door that takes every message the book sends, in any order of changes, decides offline as a
door given the list whole for the final model would; and that one decides as ``decide()``
(tests/edge_agent/test_cache.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cache import AllowlistCache
from gateway.access import BadgeRule, ClosureRule, MemberRule, Policy, Structure
from gateway.allowlists import AllowlistBook, Issued, build
from gateway.store.changes import EVERYTHING, Changes
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
    rome,
)
from varco import protocol
from varco.protocol import Allowlist, Channel, Credential, CredentialKind, Interval, Schedule
from varco.protocol.allowlist import NO_END, NO_START, from_micros, iter_records

TTL = timedelta(hours=24)


def issue(policy: Policy = POLICY, *, issued_at: datetime = MONDAY_MORNING) -> dict[str, Issued]:
    return build(policy, issued_at=issued_at, ttl=TTL)


ISSUED = issue()


def digest(device: str, credential: Credential) -> bytes:
    return protocol.credential_digest(POLICY.devices[device].allowlist_key, credential)


def badge(uid: str) -> Credential:
    return Credential(kind=CredentialKind.BADGE, value=uid)


def guest_pass(code: str) -> Credential:
    return Credential(kind=CredentialKind.PASS, value=code)


def allowlist(device: str) -> Allowlist:
    return ISSUED[device].allowlist


def listed(device: str, door: str, issued: dict[str, Issued] = ISSUED) -> dict[bytes, Schedule]:
    """Return who the list lets through ``door``, with when: each credential's schedule."""
    whole = issued[device].allowlist
    schedules = {}
    for found, profile, valid_from, valid_until in iter_records(whole.credentials):
        access = whole.profiles[str(profile)].get(door)
        if access is not None:
            schedules[found] = Schedule(
                windows=access.windows,
                valid_from=from_micros(valid_from, NO_START),
                valid_until=from_micros(valid_until, NO_END),
                closed_on_closures=access.closed_on_closures,
            )
    return schedules


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

    assert set(listed(device, door)) == expected


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
        records = {found for found, *_ in iter_records(issued.allowlist.credentials)}
        assert digest(device, credential) not in records


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
    settings = allowlist(device).doors[door]

    assert settings.locked_down is locked_down
    assert bool(listed(device, door)) is not locked_down
    assert settings.unlock_seconds == POLICY.doors[door].unlock_seconds


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
    front = listed(DOOR_CTL, FRONT)
    annex = listed(ANNEX_CTL, ANNEX)

    assert digest(DOOR_CTL, badge(ADA_BADGE)) in front
    assert digest(ANNEX_CTL, badge(ADA_BADGE)) in annex
    assert digest(DOOR_CTL, badge(ADA_BADGE)) != digest(ANNEX_CTL, badge(ADA_BADGE))
    assert not set(front) & set(annex)


# -- schedules ---------------------------------------------------------------------------------


def schedule_of(device: str, door: str, credential: Credential) -> Schedule:
    return listed(device, door)[digest(device, credential)]


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


def profile_of(device: str, credential: Credential) -> int:
    (profile,) = (
        p
        for found, p, *_ in iter_records(allowlist(device).credentials)
        if found == digest(device, credential)
    )
    return profile


def test_members_of_one_plan_share_its_profile() -> None:
    # Grace and Joan share their plan's; Ada's plan is another. A credential's record holds a
    # profile number, not its doors and hours: the list grows by 30 bytes a credential.
    assert profile_of(DOOR_CTL, badge(GRACE_BADGE)) == profile_of(DOOR_CTL, badge(JOAN_BADGE))
    assert profile_of(DOOR_CTL, badge(GRACE_BADGE)) != profile_of(DOOR_CTL, badge(ADA_BADGE))
    profiles = allowlist(DOOR_CTL).profiles
    assert len(profiles) == len({str(sorted(p.items())) for p in profiles.values()})


# -- versions and expiry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ttl", [timedelta(minutes=5), timedelta(hours=24), timedelta(days=7)], ids=str
)
def test_a_list_expires_ttl_after_it_is_issued(ttl: timedelta) -> None:
    whole = build(POLICY, issued_at=MONDAY_MORNING, ttl=ttl)[DOOR_CTL].allowlist

    assert whole.issued_at == MONDAY_MORNING
    assert whole.expires_at == MONDAY_MORNING + ttl
    assert whole.version == int(MONDAY_MORNING.timestamp()) * 1000


@pytest.mark.parametrize("device", sorted(ISSUED))
def test_a_list_survives_the_wire(device: str) -> None:
    raw = protocol.encode(allowlist(device))

    assert len(raw) <= protocol.max_bytes(Channel.ALLOWLIST)
    assert protocol.decode(Channel.ALLOWLIST, raw) == allowlist(device)


def test_build_is_deterministic_whatever_order_the_store_returns_rows_in() -> None:
    reordered = Policy.build(
        list(reversed(MEMBERS)),
        list(reversed(BADGES)),
        list(POLICY.doors.values()),
        list(POLICY.devices.values()),
        plans=list(POLICY.plans.values()),
        zones=list(POLICY.zones.values()),
        sites=list(POLICY.sites.values()),
        passes=list(reversed(PASSES)),
        closures=list(POLICY.closures),
    )

    for device, issued in issue(reordered).items():
        assert protocol.encode(issued.allowlist) == protocol.encode(ISSUED[device].allowlist)


def test_fifty_thousand_credentials_fit_one_message() -> None:
    members = [MemberRule(id=i, name=f"m{i}", active=True, plan="hot-desk") for i in range(50_000)]
    badges = [BadgeRule(uid=f"{i:08X}", member_id=i, active=True) for i in range(50_000)]
    big = POLICY.evolve(
        members={m.id + 10_000: dataclasses.replace(m, id=m.id + 10_000) for m in members},
        badges={b.uid: dataclasses.replace(b, member_id=b.member_id + 10_000) for b in badges},
        version=1,
    )

    whole = issue(big)[ANNEX_CTL].allowlist
    raw = protocol.encode(whole)

    assert len(whole.credentials) // protocol.RECORD.size >= 50_000
    assert len(raw) <= protocol.MAX_ALLOWLIST_BYTES


# -- changes: in proportion to the change -------------------------------------------------------

LATER = MONDAY_MORNING + timedelta(minutes=1)


def sent_book(policy: Policy = POLICY) -> AllowlistBook:
    """Return a book that has sent every list whole for ``policy``."""
    book = AllowlistBook(TTL)
    book.apply(Policy(), policy, EVERYTHING)
    assert {m.device for m in book.outgoing(MONDAY_MORNING) if m.whole} == set(ISSUED)
    return book


def suspend_grace(policy: Policy) -> tuple[Policy, Changes]:
    member = dataclasses.replace(policy.members[GRACE], active=False)
    return policy.evolve(members={GRACE: member}, version=2), Changes(members=frozenset({GRACE}))


def revoke_ada_badge(policy: Policy) -> tuple[Policy, Changes]:
    rule = dataclasses.replace(policy.badges[ADA_BADGE], active=False)
    changed = policy.evolve(badges={ADA_BADGE: rule}, version=2)
    return changed, Changes(badges=frozenset({ADA_BADGE}))


def move_ada_to_hot_desk(policy: Policy) -> tuple[Policy, Changes]:
    member = dataclasses.replace(policy.members[ADA], plan="hot-desk")
    return policy.evolve(members={ADA: member}, version=2), Changes(members=frozenset({ADA}))


def revoke_visit(policy: Policy) -> tuple[Policy, Changes]:
    visit = protocol.pass_code_hash(VISIT)
    passes = [dataclasses.replace(p, revoked=p.code_hash == visit or p.revoked) for p in PASSES]
    return policy.evolve(passes=passes, version=2), Changes(passes=True)


def restructured(policy: Policy, **parts: object) -> Structure:
    current = policy.structure
    fields = {
        "doors": list(current.doors.values()),
        "devices": list(current.devices.values()),
        "plans": list(current.plans.values()),
        "zones": list(current.zones.values()),
        "sites": list(current.sites.values()),
        "closures": list(current.closures),
        **parts,
    }
    return Structure.build(
        fields["doors"],  # type: ignore[arg-type]
        fields["devices"],  # type: ignore[arg-type]
        plans=fields["plans"],  # type: ignore[arg-type]
        zones=fields["zones"],  # type: ignore[arg-type]
        sites=fields["sites"],  # type: ignore[arg-type]
        closures=fields["closures"],  # type: ignore[arg-type]
        desk_areas=current.desk_areas,
    )


def close_rome_for_a_day(policy: Policy) -> tuple[Policy, Changes]:
    closure = ClosureRule(ROME_SITE, Interval(starts_at=rome(2026, 4, 6), ends_at=rome(2026, 4, 7)))
    structure = restructured(policy, closures=[*policy.closures, closure])
    return policy.evolve(structure=structure, version=2), Changes(structure=True)


def lock_down_front_door(policy: Policy) -> tuple[Policy, Changes]:
    doors = [
        dataclasses.replace(d, locked_down=d.locked_down or d.id == FRONT)
        for d in policy.doors.values()
    ]
    return policy.evolve(structure=restructured(policy, doors=doors), version=2), Changes(
        structure=True
    )


CHANGES = [
    suspend_grace,
    revoke_ada_badge,
    move_ada_to_hot_desk,
    revoke_visit,
    close_rome_for_a_day,
    lock_down_front_door,
]


def test_an_unchanged_model_sends_nothing() -> None:
    book = sent_book()

    book.apply(POLICY, POLICY, Changes())

    assert book.outgoing(LATER) == []
    assert book.outgoing(MONDAY_MORNING + TTL / 2 - timedelta(seconds=1)) == []


def test_a_list_is_sent_whole_again_half_way_to_its_expiry() -> None:
    book = sent_book()

    again = book.outgoing(MONDAY_MORNING + TTL / 2)

    assert {m.device for m in again} == set(ISSUED)
    assert all(m.whole for m in again)


@pytest.mark.parametrize(
    ("change", "devices"),
    [
        # Grace's plan opens the lobby: the doors of Rome and New York hold her; Milan's
        # (locked down) does not.
        pytest.param(suspend_grace, {DOOR_CTL, ANNEX_CTL, NEW_YORK_CTL}, id="suspend-a-member"),
        pytest.param(revoke_ada_badge, {DOOR_CTL, ANNEX_CTL, NEW_YORK_CTL}, id="revoke-a-badge"),
        pytest.param(move_ada_to_hot_desk, {DOOR_CTL, ANNEX_CTL, NEW_YORK_CTL}, id="move-plans"),
        pytest.param(revoke_visit, {DOOR_CTL, ANNEX_CTL}, id="revoke-a-pass"),
        pytest.param(close_rome_for_a_day, {DOOR_CTL, ANNEX_CTL}, id="close-a-site"),
    ],
)
def test_a_change_sends_a_small_update_to_the_doors_it_concerns(
    change: Callable[[Policy], tuple[Policy, Changes]], devices: set[str]
) -> None:
    book = sent_book()
    changed, changes = change(POLICY)

    book.apply(POLICY, changed, changes)
    messages = book.outgoing(LATER)

    assert {m.device for m in messages} == devices
    assert not any(m.whole for m in messages)
    # A member's record is 30 bytes; the update is a few hundred, never the list.
    assert all(len(m.data) < 700 for m in messages), [len(m.data) for m in messages]


# -- any sequence of updates: the door decides as one given the final list whole ----------------

DOORS_AT = {device: sorted(issued.allowlist.doors) for device, issued in ISSUED.items()}
CREDENTIALS = [badge(b.uid) for b in BADGES] + [
    guest_pass(code) for code in (VISIT, EVENT, REVOKED_VISIT)
]
MOMENTS = [MONDAY_MORNING, MONDAY_MORNING + timedelta(days=8, hours=2), rome(2026, 3, 19, 10)]


def offline_decisions(cache: AllowlistCache, device: str) -> list[tuple[str, str, str]]:
    decisions = []
    for at in MOMENTS:
        cache.clock = lambda at=at: at  # type: ignore[misc]
        for door in DOORS_AT[device]:
            for credential in CREDENTIALS:
                verdict = cache.decide(door, credential, fail_mode="secure", unlock_seconds=1.0)
                decisions.append((door, credential.value, verdict.reason.value))
    return decisions


def door_at(folder: Path, device: str) -> AllowlistCache:
    """Return the cache of ``device``'s door, as it starts from its files in ``folder``."""
    return AllowlistCache(folder / f"{device}.json", POLICY.devices[device].allowlist_key)


def door_given_whole(policy: Policy, device: str, path: Path) -> AllowlistCache:
    cache = AllowlistCache(path, POLICY.devices[device].allowlist_key)
    assert cache.update(protocol.encode(issue(policy)[device].allowlist))
    return cache


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.sampled_from([*CHANGES, None]), min_size=1, max_size=5))
def test_after_any_updates_a_door_decides_as_with_the_list_whole(
    steps: list[Callable[[Policy], tuple[Policy, Changes]] | None],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("doors")
    book = AllowlistBook(TTL)
    book.apply(Policy(), POLICY, EVERYTHING)
    doors = {}
    for device in ISSUED:
        doors[device] = AllowlistCache(
            folder / f"{device}.json", POLICY.devices[device].allowlist_key
        )
    now = MONDAY_MORNING
    for message in book.outgoing(now):
        assert doors[message.device].update(message.data)
    policy = POLICY
    for step in steps:
        now += timedelta(minutes=1)
        if step is None:  # a door restarts from what it kept on disk
            doors = {
                d: AllowlistCache(folder / f"{d}.json", POLICY.devices[d].allowlist_key)
                for d in doors
            }
            continue
        changed, changes = step(policy)
        changed = dataclasses.replace(changed, version=policy.version + 1)
        book.apply(policy, changed, changes)
        policy = changed
        for message in book.outgoing(now):
            assert doors[message.device].update(message.data)

    for device, door in doors.items():
        fresh = door_given_whole(policy, device, folder / f"{device}-fresh.json")
        assert offline_decisions(door, device) == offline_decisions(fresh, device)


# -- a door that missed an update ---------------------------------------------------------------


def test_a_door_that_missed_an_update_asks_and_gets_the_list_whole(tmp_path: Path) -> None:
    book = sent_book()
    door = door_given_whole(POLICY, DOOR_CTL, tmp_path / "door.json")
    gaps: list[str] = []
    door.on_gap = lambda: gaps.append("gap")
    first, changes = suspend_grace(POLICY)
    book.apply(POLICY, first, changes)
    book.outgoing(LATER)  # lost on the way to this door
    second, changes = revoke_ada_badge(first)
    book.apply(first, second, changes)
    (update,) = [m for m in book.outgoing(LATER + timedelta(seconds=1)) if m.device == DOOR_CTL]

    assert not door.update(update.data)
    assert gaps == ["gap"]
    assert door.current is not None
    # The door's status names the version it holds; the gateway sends the list whole.
    assert book.resend(DOOR_CTL, door.current.version, LATER + timedelta(seconds=2))
    (whole,) = [m for m in book.outgoing(LATER + timedelta(seconds=2)) if m.device == DOOR_CTL]
    assert whole.whole
    assert door.update(whole.data)
    fresh = door_given_whole(second, DOOR_CTL, tmp_path / "fresh.json")
    assert offline_decisions(door, DOOR_CTL) == offline_decisions(fresh, DOOR_CTL)


def test_a_door_up_to_date_is_not_sent_the_list_again() -> None:
    book = sent_book()
    version = book.controllers[DOOR_CTL].version

    assert not book.resend(DOOR_CTL, version, LATER)
    assert book.outgoing(LATER) == []


def test_updates_that_add_up_to_a_quarter_of_the_list_send_it_whole() -> None:
    book = sent_book()
    policy = POLICY
    kinds = []
    for step in range(400):
        member = dataclasses.replace(policy.members[GRACE], active=step % 2 == 1)
        changed = policy.evolve(members={GRACE: member}, version=policy.version + 1)
        book.apply(policy, changed, Changes(members=frozenset({GRACE})))
        policy = changed
        (message,) = [
            m for m in book.outgoing(LATER + timedelta(seconds=step)) if m.device == ANNEX_CTL
        ]
        kinds.append(message.whole)

    # Mostly updates; now and then the list whole, so that a door connecting later gets a
    # recent one from the broker.
    assert any(kinds)
    assert kinds.count(False) > kinds.count(True)
