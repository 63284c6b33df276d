"""The account itself: a ledger that cannot see a loss, a double or a wrong record proves nothing.

Ledger files are written here in the edge process's own format, and the stores' rows given as
``Stores`` reads them; every way an event can go wrong must show in its own column.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.faults.ledger import Ledger, account, nanoseconds

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(n: int) -> datetime:
    return T0 + timedelta(milliseconds=n)


def tap(event_id: str, n: int, **outcome: Any) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {"kind": "tap", "event_id": event_id, "door": "front", "uid": "B0000001", "at": str(at(n))}
    ]
    if outcome:
        decided = {"granted": True, "reason": "granted", "answered": True, "relay": True}
        lines.append({"kind": "outcome", "event_id": event_id, "door": "front"} | decided | outcome)
    return lines


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def row(
    event_id: str, granted: bool = True, reason: str = "granted", offline: bool = False
) -> dict[str, Any]:
    return {"event_id": event_id, "granted": granted, "reason": reason, "decided_offline": offline}


def test_every_way_an_event_goes_wrong_shows(tmp_path: Path) -> None:
    lines = [
        *tap("once", 1, granted=True),
        *tap("twice", 2, granted=False, reason="not_in_allowlist", answered=False),
        *tap("lost", 3, granted=True),
        *tap("misread", 4, granted=False, reason="not_in_allowlist", answered=False),
        *tap("relay", 5, granted=True, relay=False),
        *tap("undecided", 6),
        {"kind": "desk", "event_id": "desk", "desk": "d1", "occupied": True, "at": str(at(7))},
    ]
    ledger = Ledger({"door-ctl-1": write(tmp_path / "ledger.jsonl", lines)})
    ledger.refresh()
    sql_taps = [
        row("once"),
        row("twice", False, "not_in_allowlist", True),
        row("misread"),  # the gateway's online grant, not what the door did
        row("relay"),
        row("undecided"),
        row("phantom"),  # an event no edge made
    ]
    points = [("front", nanoseconds(at(n)), "granted", "granted") for n in (1, 4, 5, 6)]
    points += [
        ("front", nanoseconds(at(2)), "denied", "unknown_badge"),  # decided online too...
        ("front", nanoseconds(at(2)), "denied", "not_in_allowlist"),  # ...and offline
        ("front", nanoseconds(at(99)), "granted", "granted"),  # at a time no event has
    ]
    result = account(
        "self-check",
        ledger,
        Counter({"front": 7}),
        sql_taps,
        [{"event_id": "desk"}],
        points,
        [],  # the desk event never reached InfluxDB
    )
    taps, desks = result.by_kind["taps"], result.by_kind["desks"]
    assert (taps["sql"].once, taps["sql"].lost, taps["sql"].duplicated) == (5, 1, 0)
    assert (taps["influx"].once, taps["influx"].lost, taps["influx"].duplicated) == (4, 1, 1)
    assert (desks["sql"].once, desks["influx"].lost) == (1, 1)
    assert result.decision_mismatches == 1  # misread
    assert result.influx_mismatches == 2  # twice (one of its two points), misread
    assert result.relay_mismatches == 1
    assert (result.undecided, result.unread) == (1, 1)
    assert (result.unledgered_sql, result.unledgered_influx) == (1, 1)
    assert result.offline_taps == 2
    assert not result.exact


def test_a_clean_run_is_exact(tmp_path: Path) -> None:
    lines = [*tap("a", 1, granted=True), *tap("b", 2, granted=False, reason="unknown_badge")]
    lines.append(
        {"kind": "desk", "event_id": "d", "desk": "d1", "occupied": False, "at": str(at(3))}
    )
    ledger = Ledger({"door-ctl-1": write(tmp_path / "ledger.jsonl", lines)})
    ledger.refresh()
    result = account(
        "clean",
        ledger,
        Counter({"front": 2}),
        [row("a"), row("b", False, "unknown_badge")],
        [{"event_id": "d"}],
        [
            ("front", nanoseconds(at(1)), "granted", "granted"),
            ("front", nanoseconds(at(2)), "denied", "unknown_badge"),
        ],
        [("d1", nanoseconds(at(3)))],
    )
    assert result.exact, result.row()


def test_a_line_being_written_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    first, second = tap("a", 1)[0], tap("b", 2)[0]
    path.write_text(json.dumps(first) + "\n" + json.dumps(second)[:20])
    ledger = Ledger({"door-ctl-1": path})
    ledger.refresh()
    assert list(ledger.taps) == ["a"]
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    ledger.refresh()
    assert list(ledger.taps) == ["a", "b"]
