"""The door's offline decision: from the last allow-list, it must agree with the gateway's.

Every row of ``tests/gateway/test_access.py`` is decided twice: by ``decide`` and by a door's
``AllowlistCache`` holding the list ``build`` made from the same policy, on a file in tmp_path.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from edge_agent.cache import AllowlistCache, FailMode, HeldList, OfflineVerdict
from gateway.access import Policy, Verdict
from gateway.allowlists import build
from tests.gateway.test_access import (
    ADA,
    ADA_BADGE,
    ALL_CASES,
    DOOR_CTL,
    FRONT,
    GRACE_BADGE,
    LAB_IN,
    MONDAY_MORNING,
    MONDAY_NIGHT,
    POLICY,
    UNKNOWN_BADGE,
    Case,
    badge,
    decide_case,
    denied,
    utc,
)
from varco import protocol
from varco.protocol import Allowlist, Credential, Reason

KEY = POLICY.devices[DOOR_CTL].allowlist_key
TTL = timedelta(hours=24)
FALLBACK_UNLOCK_SECONDS = 1.5  # the door's own setting, used when it fails safe

# What the gateway knows and a door's list does not say: all of these are "not on my list".
NOT_LISTED = {
    Reason.UNKNOWN_BADGE,
    Reason.UNKNOWN_PASS,
    Reason.BADGE_REVOKED,
    Reason.PASS_REVOKED,
    Reason.MEMBER_SUSPENDED,
    Reason.WRONG_ZONE,
    # A door that is not on this device's list: another device's, or none at all.
    Reason.UNKNOWN_DOOR,
}


def issue(policy: Policy, device: str, at: datetime) -> Allowlist:
    """Return the list the gateway published for ``device`` an hour before ``at``."""
    return build(policy, issued_at=at - timedelta(hours=1), ttl=TTL)[device].allowlist


def door_cache(path: Path, allowlist: Allowlist, at: datetime, key: bytes = KEY) -> AllowlistCache:
    """Return a door's cache that took ``allowlist`` from the wire, its clock stopped at ``at``."""
    cache = AllowlistCache(path, key)
    assert cache.update(protocol.encode(allowlist))
    cache.clock = lambda: at
    return cache


def ask(
    cache: AllowlistCache,
    credential: Credential,
    *,
    door: str = FRONT,
    fail_mode: FailMode = "secure",
) -> OfflineVerdict:
    """Present ``credential`` at ``door`` while the gateway does not answer."""
    return cache.decide(
        door, credential, fail_mode=fail_mode, unlock_seconds=FALLBACK_UNLOCK_SECONDS
    )


def offline_answer(online: Verdict) -> tuple[bool, Reason, float]:
    """Return what a door offline should answer where the gateway answered ``online``."""
    reason = Reason.NOT_IN_ALLOWLIST if online.reason in NOT_LISTED else online.reason
    return online.granted, reason, online.unlock_seconds


def anti_passback_free(case: Case) -> bool:
    # A door alone does not know who is inside; rows that depend on it are left out.
    return decide_case(POLICY, case) == decide_case(POLICY, dataclasses.replace(case, inside=None))


# A device outside the policy has no list and no key: it can only fail (see below).
OFFLINE_CASES = [
    case for case in ALL_CASES if case.device in POLICY.devices and anti_passback_free(case)
]


@pytest.mark.parametrize("case", OFFLINE_CASES, ids=lambda case: case.name)
def test_offline_agrees_with_decide(case: Case, tmp_path: Path) -> None:
    key = POLICY.devices[case.device].allowlist_key
    listed = issue(POLICY, case.device, case.at)
    cache = door_cache(tmp_path / "allowlist.json", listed, case.at, key)

    offline = ask(cache, case.credential, door=case.door)

    assert (offline.granted, offline.reason, offline.unlock_seconds) == offline_answer(
        decide_case(POLICY, case)
    )
    assert offline.allowlist_version == listed.version


def test_the_offline_table_leaves_out_only_what_it_must() -> None:
    left_out = {case.name for case in ALL_CASES} - {case.name for case in OFFLINE_CASES}

    assert left_out == {
        "unknown-door-asked-by-a-device-not-in-the-policy",
        "anti-passback-inside-denied-at-the-in-door",
        "anti-passback-inside-denied-in-hours-too",
    }


def test_offline_a_door_does_not_enforce_anti_passback(tmp_path: Path) -> None:
    back_in = Case(
        "ada-back-in-the-lab",
        LAB_IN,
        badge(ADA_BADGE),
        denied(Reason.ANTI_PASSBACK, ADA),
        inside={ADA: "lab"},
    )
    cache = door_cache(tmp_path / "allowlist.json", issue(POLICY, DOOR_CTL, back_in.at), back_in.at)

    assert decide_case(POLICY, back_in) == back_in.expected
    assert ask(cache, back_in.credential, door=LAB_IN).reason is Reason.GRANTED


# -- fail modes --------------------------------------------------------------------------------

GRACE = badge(GRACE_BADGE)
STRANGER = badge(UNKNOWN_BADGE)


def failed(fail_mode: FailMode, version: int | None) -> OfflineVerdict:
    if fail_mode == "safe":
        return OfflineVerdict(True, Reason.FAIL_SAFE, FALLBACK_UNLOCK_SECONDS, version)
    return OfflineVerdict(False, Reason.NO_ALLOWLIST, 0.0, version)


@pytest.mark.parametrize("fail_mode", ["secure", "safe"])
@pytest.mark.parametrize(
    "credential",
    [pytest.param(GRACE, id="member"), pytest.param(STRANGER, id="stranger")],
)
def test_an_expired_list_leaves_it_to_the_fail_mode(
    fail_mode: FailMode, credential: Credential, tmp_path: Path
) -> None:
    listed = issue(POLICY, DOOR_CTL, MONDAY_MORNING)
    cache = door_cache(tmp_path / "allowlist.json", listed, listed.expires_at)

    assert ask(cache, credential, fail_mode=fail_mode) == failed(fail_mode, listed.version)


@pytest.mark.parametrize("fail_mode", ["secure", "safe"])
def test_a_list_is_trusted_until_just_before_it_expires(
    fail_mode: FailMode, tmp_path: Path
) -> None:
    listed = issue(POLICY, DOOR_CTL, MONDAY_MORNING)
    # Issued Monday 09:00 in Rome, it expires on Tuesday at 09:00: Grace's hours, on the list.
    cache = door_cache(
        tmp_path / "allowlist.json", listed, listed.expires_at - timedelta(microseconds=1)
    )

    assert ask(cache, GRACE, fail_mode=fail_mode) == OfflineVerdict(
        True, Reason.GRANTED, 4.0, listed.version
    )
    assert ask(cache, STRANGER, fail_mode=fail_mode) == OfflineVerdict(
        False, Reason.NOT_IN_ALLOWLIST, 0.0, listed.version
    )


@pytest.mark.parametrize("fail_mode", ["secure", "safe"])
def test_no_list_leaves_it_to_the_fail_mode(fail_mode: FailMode, tmp_path: Path) -> None:
    cache = AllowlistCache(tmp_path / "allowlist.json", KEY, clock=lambda: MONDAY_MORNING)

    assert cache.current is None
    assert ask(cache, GRACE, fail_mode=fail_mode) == failed(fail_mode, None)


@pytest.mark.parametrize("fail_mode", ["secure", "safe"])
def test_no_key_leaves_it_to_the_fail_mode(fail_mode: FailMode, tmp_path: Path) -> None:
    listed = issue(POLICY, DOOR_CTL, MONDAY_MORNING)
    cache = AllowlistCache(tmp_path / "allowlist.json", None, clock=lambda: MONDAY_MORNING)

    assert cache.update(protocol.encode(listed))
    assert ask(cache, GRACE, fail_mode=fail_mode) == failed(fail_mode, listed.version)


MONDAY_LIST = protocol.encode(issue(POLICY, DOOR_CTL, MONDAY_MORNING))


# -- the file on disk --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf-8"),
        pytest.param(b'{"v": 1, "version": 3}', id="not-an-allow-list"),
        pytest.param(MONDAY_LIST[: len(MONDAY_LIST) // 2], id="truncated"),
    ],
)
def test_a_damaged_file_is_ignored_with_a_warning(
    damage: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "allowlist.json"
    path.write_bytes(damage)

    with caplog.at_level(logging.WARNING, logger="edge_agent.cache"):
        cache = AllowlistCache(path, KEY, clock=lambda: MONDAY_MORNING)

    assert cache.current is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "ignored" in caplog.records[0].getMessage()
    assert ask(cache, GRACE) == failed("secure", None)


def test_a_damaged_file_is_replaced_by_the_next_list(tmp_path: Path) -> None:
    path = tmp_path / "allowlist.json"
    path.write_bytes(b"{not json")
    cache = AllowlistCache(path, KEY, clock=lambda: MONDAY_MORNING)
    listed = issue(POLICY, DOOR_CTL, MONDAY_MORNING)

    assert cache.update(protocol.encode(listed))
    assert AllowlistCache(path, KEY).current == HeldList.of(listed)


def test_a_list_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "lists" / "allowlist.json"
    listed = issue(POLICY, DOOR_CTL, MONDAY_MORNING)
    door_cache(path, listed, MONDAY_MORNING)

    restarted = AllowlistCache(path, KEY, clock=lambda: MONDAY_MORNING)

    assert restarted.current == HeldList.of(listed)
    assert not list(path.parent.glob("*.tmp"))
    assert ask(restarted, GRACE).reason is Reason.GRANTED
    # The site's time zone comes back too: 07:00Z is 08:00 in Rome, 06:59Z is 07:59.
    restarted.clock = lambda: utc(2026, 3, 3, 7)
    assert ask(restarted, GRACE).reason is Reason.GRANTED
    restarted.clock = lambda: utc(2026, 3, 3, 6, 59)
    assert ask(restarted, GRACE).reason is Reason.OUTSIDE_HOURS


# -- versions ----------------------------------------------------------------------------------


def test_an_older_or_same_version_is_not_taken(tmp_path: Path) -> None:
    path = tmp_path / "allowlist.json"
    older = issue(POLICY, DOOR_CTL, MONDAY_MORNING)
    newer = issue(POLICY, DOOR_CTL, MONDAY_MORNING + timedelta(minutes=5))
    cache = door_cache(path, newer, MONDAY_MORNING)

    assert not cache.update(protocol.encode(older))
    assert not cache.update(protocol.encode(newer))
    assert cache.current == HeldList.of(newer)
    assert AllowlistCache(path, KEY).current == HeldList.of(newer)


def test_a_newer_version_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "allowlist.json"
    older = issue(POLICY, DOOR_CTL, MONDAY_MORNING)
    newer = issue(POLICY, DOOR_CTL, MONDAY_MORNING + timedelta(minutes=5))
    cache = door_cache(path, older, MONDAY_MORNING)

    assert cache.update(protocol.encode(newer))
    assert cache.current == HeldList.of(newer)
    assert AllowlistCache(path, KEY).current == HeldList.of(newer)


def test_a_refused_list_keeps_the_current_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listed = issue(POLICY, DOOR_CTL, MONDAY_MORNING)
    cache = door_cache(tmp_path / "allowlist.json", listed, MONDAY_NIGHT)

    with caplog.at_level(logging.WARNING, logger="edge_agent.cache"):
        assert not cache.update(b'{"v": 1, "version": 99999999999999}')

    assert cache.rejected == 1
    assert cache.current == HeldList.of(listed)
    assert "refused" in caplog.text


def test_a_time_zone_the_door_does_not_know_falls_back_to_utc(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listed = msgspec.structs.replace(issue(POLICY, DOOR_CTL, MONDAY_MORNING), timezone="Mars/Base")

    with caplog.at_level(logging.ERROR, logger="edge_agent.cache"):
        cache = door_cache(tmp_path / "allowlist.json", listed, utc(2026, 3, 2, 17, 30))

    assert "Mars/Base" in caplog.text
    # 17:30Z is 18:30 in Rome, after Grace's hours; the door reads 17:30, within them.
    assert ask(cache, GRACE).reason is Reason.GRANTED
