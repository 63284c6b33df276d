"""The ledger: every event the edges made, and where each one ended up.

Each edge process appends what it did to its own file (``tests.faults.edge_process``): the taps
its doors asked about, the door's decision on each (granted or not, why, answered by the
gateway or decided offline, the relay pin at that moment, how long it waited) and its desk
events. ``Ledger`` reads those files as they grow; ``account`` classes every event as landed
once, lost or duplicated in SQL (by event id) and in InfluxDB (by the point's own time: a point
carries its event's timestamp, and a tap counted twice is two points at one time, in two
series), and compares each door's decision with the gateway's record of it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nanoseconds(at: datetime) -> int:
    """The point time InfluxDB holds for an event at ``at`` (as gateway.measurements makes it)."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass
class TapEntry:
    event_id: str
    device: str
    door: str
    uid: str
    at: datetime
    outcome: dict[str, Any] | None = None  # the door's decision, once it made it


@dataclass
class DeskEntry:
    event_id: str
    device: str
    desk: str
    occupied: bool
    at: datetime


class Ledger:
    """What the edges wrote; ``refresh()`` reads what they added since."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files
        self._read: dict[str, int] = dict.fromkeys(files, 0)
        self.taps: dict[str, TapEntry] = {}
        self.desks: dict[str, DeskEntry] = {}
        self.starts: Counter[str] = Counter()
        self.asked: Counter[str] = Counter()  # taps read at each door
        self.decided: Counter[str] = Counter()  # taps each door has acted on

    def refresh(self) -> None:
        for device, path in self._files.items():
            if not path.exists():
                continue
            with path.open("rb") as file:
                file.seek(self._read[device])
                data = file.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line being written waits
            self._read[device] += len(complete)
            for line in complete.splitlines():
                self._take(device, json.loads(line))

    def _take(self, device: str, entry: dict[str, Any]) -> None:
        kind = entry["kind"]
        if kind == "tap":
            self.taps[entry["event_id"]] = TapEntry(
                entry["event_id"],
                device,
                entry["door"],
                entry["uid"],
                datetime.fromisoformat(entry["at"]),
            )
            self.asked[entry["door"]] += 1
        elif kind == "outcome":
            self.taps[entry["event_id"]].outcome = entry
            self.decided[entry["door"]] += 1
        elif kind == "desk":
            self.desks[entry["event_id"]] = DeskEntry(
                entry["event_id"],
                device,
                entry["desk"],
                entry["occupied"],
                datetime.fromisoformat(entry["at"]),
            )
        elif kind == "start":
            self.starts[device] += 1

    def waiting(self, door: str) -> int:
        """Taps read at ``door`` and not yet acted on."""
        return self.asked[door] - self.decided[door]


@dataclass
class Tally:
    """One store's view of a kind of event."""

    once: int = 0
    lost: int = 0
    duplicated: int = 0

    def add(self, copies: int) -> None:
        if copies == 0:
            self.lost += 1
        elif copies == 1:
            self.once += 1
        else:
            self.duplicated += 1


@dataclass
class Account:
    """Where every ledger event ended up, for one scenario."""

    scenario: str
    taps: int = 0
    desk_events: int = 0
    offline_taps: int = 0
    sql: Tally = field(default_factory=Tally)
    influx: Tally = field(default_factory=Tally)
    # By kind: ``taps`` and ``desks``, each with its SQL and InfluxDB tallies.
    by_kind: dict[str, dict[str, Tally]] = field(default_factory=dict)
    decision_mismatches: int = 0  # the door's decision differs from the SQL record
    influx_mismatches: int = 0  # a point's result or reason differs from the door's decision
    relay_mismatches: int = 0  # a grant the relay did not carry out
    undecided: int = 0  # taps read that no door decided (the edge died holding them)
    unread: int = 0  # taps typed that no door read
    unledgered_sql: int = 0  # SQL rows of events no edge made
    unledgered_influx: int = 0  # points at times no ledger event has
    notes: dict[str, str] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (
            self.sql.lost == self.sql.duplicated == self.influx.lost == 0
            and self.influx.duplicated == self.decision_mismatches == self.relay_mismatches == 0
            and self.influx_mismatches == self.unledgered_sql == self.unledgered_influx == 0
            and self.undecided == self.unread == 0
        )

    def row(self) -> str:
        t, d = self.by_kind["taps"], self.by_kind["desks"]
        notes = "; ".join(f"{key} {value}" for key, value in self.notes.items())
        return (
            f"| {self.scenario} | {self.taps} ({self.offline_taps} offline) | "
            f"{self.desk_events} | {_lost_dup(t['sql'])} | {_lost_dup(d['sql'])} | "
            f"{_lost_dup(t['influx'])} | {_lost_dup(d['influx'])} | "
            f"{self.decision_mismatches}/{self.influx_mismatches}/{self.relay_mismatches} | "
            f"{self.unledgered_sql}/{self.unledgered_influx} | {notes} |"
        )


HEADER = (
    "| scenario | taps | desk events | taps SQL lost/dup | desks SQL lost/dup | "
    "taps Influx lost/dup | desks Influx lost/dup | decision vs SQL/Influx/relay | "
    "unledgered SQL/Influx | notes |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _lost_dup(tally: Tally) -> str:
    return f"{tally.lost}/{tally.duplicated}"


def account(
    scenario: str,
    ledger: Ledger,
    typed: Counter[str],
    sql_taps: list[dict[str, Any]],
    sql_desks: list[dict[str, Any]],
    influx_taps: list[tuple[str, int, str, str]],
    influx_desks: list[tuple[str, int]],
) -> Account:
    """Class every ledger event in both stores (rows as ``Stores`` reads them)."""
    result = Account(scenario, taps=len(ledger.taps), desk_events=len(ledger.desks))
    result.by_kind = {kind: {"sql": Tally(), "influx": Tally()} for kind in ("taps", "desks")}
    rows_by_id: dict[str, list[dict[str, Any]]] = {}
    for row in [*sql_taps, *sql_desks]:
        rows_by_id.setdefault(row["event_id"], []).append(row)
    points: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for door, ns, result_tag, reason in influx_taps:
        points.setdefault((door, ns), []).append((result_tag, reason))
    for desk, ns in influx_desks:
        points.setdefault((desk, ns), []).append(("", ""))
    claimed: set[tuple[str, int]] = set()

    def tally(kind: str, event_id: str, key: tuple[str, int]) -> list[dict[str, Any]]:
        rows = rows_by_id.get(event_id, [])
        found = points.get(key, [])
        claimed.add(key)
        for store, copies in (("sql", len(rows)), ("influx", len(found))):
            getattr(result, store).add(copies)
            result.by_kind[kind][store].add(copies)
            if copies != 1 and len(result.examples) < 8:
                result.examples.append(f"{kind} {event_id} at {key}: {copies} in {store}")
        return rows

    for tap in ledger.taps.values():
        rows = tally("taps", tap.event_id, (tap.door, nanoseconds(tap.at)))
        outcome = tap.outcome
        if outcome is None:
            result.undecided += 1
            continue
        result.offline_taps += not outcome["answered"]
        said = (outcome["granted"], outcome["reason"], not outcome["answered"])
        if any((r["granted"], r["reason"], r["decided_offline"]) != said for r in rows):
            result.decision_mismatches += 1
            if len(result.examples) < 8:
                result.examples.append(f"tap {tap.event_id}: door {said}, SQL {rows}")
        tags = ("granted" if outcome["granted"] else "denied", outcome["reason"])
        if any(found != tags for found in points.get((tap.door, nanoseconds(tap.at)), [])):
            result.influx_mismatches += 1
        if outcome["granted"] and not outcome["relay"]:
            result.relay_mismatches += 1
    for change in ledger.desks.values():
        tally("desks", change.event_id, (change.desk, nanoseconds(change.at)))
    known = set(ledger.taps) | set(ledger.desks)
    result.unledgered_sql = sum(1 for event_id in rows_by_id if event_id not in known)
    result.unledgered_influx = sum(len(v) for k, v in points.items() if k not in claimed)
    result.unread = sum(max(typed[door] - ledger.asked[door], 0) for door in typed)
    return result
