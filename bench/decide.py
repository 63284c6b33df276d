"""``decide()`` throughput on one core: ``python -m bench.decide [--taps N] [--rounds N]``.

An in-memory ``gateway.access.Policy`` of 10,000 members with a badge each, 500 doors on 50
controllers, five plans (three with opening hours), 200 guest passes (bench/space.py), built
with the public ``Policy.build``. Timed: ``decide()`` over a pre-generated list of taps, mixed
(granted, unknown badge, revoked badge, suspended member, wrong zone, guest passes good and
bad, members with and without hours) and, separately, taps by members of plans with opening
hours only, at a fixed Wednesday 10:30 site time. Baseline, in the same run: the same loop
over the same taps doing four plain dict lookups per tap (door, badge, member, plan), what a
decision cannot do without; it says how fast this machine is, so the figure travels.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bench import space as layout
from bench.figures import ratio
from gateway.access import Policy, decide
from varco.protocol import Credential, CredentialKind

MEMBERS = 10_000
DOORS = 500
CONTROLLERS = 50
PASSES = 200
TARGET_MIXED = 200_000
TARGET_HOURS = 150_000


@dataclass(frozen=True, slots=True)
class TapCase:
    """A tap as the ingest hands it to ``decide``."""

    device: str
    door: str
    credential: Credential


def build_policy(at: datetime) -> tuple[layout.Space, Policy]:
    """Build the space's policy: the one place this benchmark makes a ``Policy``."""
    space = layout.Space(MEMBERS, DOORS, CONTROLLERS)
    keys = {layout.device_id(c): bytes(32) for c in range(CONTROLLERS)}
    return space, layout.policy(space, keys, at, passes=PASSES)


class Taps:
    """Makes taps of each kind, at random doors of the right zone."""

    def __init__(self, space: layout.Space, rng: random.Random) -> None:
        self._space = space
        self._rng = rng
        self._doors: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        for i in range(space.doors):
            door, zone, device = space.door(i)
            self._doors[zone].append((door, device))
        self._every_tenth = [space.door(i) for i in range(0, space.doors, 10)]
        self._by_plan: dict[str, list[int]] = collections.defaultdict(list)
        self.suspended: list[int] = []
        self.revoked: list[int] = []
        for n in range(space.members):
            if space.suspended(n):
                self.suspended.append(n)
            elif space.revoked(n):
                self.revoked.append(n)
            else:
                self._by_plan[space.plan_of(n)].append(n)

    def _at(self, zone: str, n: int) -> TapCase:
        door, device = self._rng.choice(self._doors[zone])
        return TapCase(device, door, Credential(value=layout.badge_uid(n)))

    def member(self, plan: str) -> TapCase:
        """A member of ``plan`` (in good standing) at a door of one of the plan's zones."""
        zone = self._rng.choice(layout.PLANS_BY_ID[plan].zones)
        return self._at(zone, self._rng.choice(self._by_plan[plan]))

    def hours(self) -> TapCase:
        """A member of a plan with opening hours at a door of one of the plan's zones."""
        return self.member(self._rng.choice([p.id for p in layout.PLANS if p.has_hours]))

    def wrong_zone(self) -> TapCase:
        return self._at("studio", self._rng.choice(self._by_plan[layout.LOBBY_ONLY]))

    def unknown(self) -> TapCase:
        return self._at(layout.LOBBY, self._space.members + self._rng.randrange(10_000))

    def lapsed(self, members: list[int]) -> TapCase:
        return self._at(layout.LOBBY, self._rng.choice(members))

    def guest(self, *, at_its_door: bool) -> TapCase:
        """A guest pass at one of its doors, or at a door it does not open."""
        code = layout.pass_code(self._rng.randrange(PASSES))
        if at_its_door:
            door, _, device = self._rng.choice(self._every_tenth)
        else:
            door, _, device = self._space.door(
                10 * self._rng.randrange(self._space.doors // 10) + 1
            )
        return TapCase(device, door, Credential(kind=CredentialKind.PASS, value=code))

    def mixed(self, count: int) -> list[TapCase]:
        """Return ``count`` taps: mostly members at their doors, and every way to be refused."""
        makers: list[tuple[int, Callable[[], TapCase]]] = [
            (25, lambda: self.member(layout.ROUND_THE_CLOCK)),
            (35, self.hours),
            (5, lambda: self.member(layout.LOBBY_ONLY)),
            (8, self.unknown),
            (5, lambda: self.lapsed(self.revoked)),
            (5, lambda: self.lapsed(self.suspended)),
            (7, self.wrong_zone),
            (7, lambda: self.guest(at_its_door=True)),
            (3, lambda: self.guest(at_its_door=False)),
        ]
        cycle = [make for weight, make in makers for _ in range(weight)]
        return [self._rng.choice(cycle)() for _ in range(count)]


def decisions_per_second(policy: Policy, taps: list[TapCase], at: datetime) -> float:
    """Time ``decide`` over ``taps`` once; return decisions per second."""
    inside: dict[int, str] = {}  # the ingest always passes who is inside
    started = time.perf_counter()
    for tap in taps:
        decide(
            policy,
            device=tap.device,
            door=tap.door,
            credential=tap.credential,
            at=at,
            inside=inside,
        )
    return len(taps) / (time.perf_counter() - started)


def lookups_per_second(policy: Policy, taps: list[TapCase]) -> float:
    """Time four plain dict lookups per tap (door, badge, member, plan); taps per second."""
    doors, badges = dict(policy.doors), dict(policy.badges)
    members, plans = dict(policy.members), dict(policy.plans)
    started = time.perf_counter()
    for tap in taps:
        doors.get(tap.door)
        badge = badges.get(tap.credential.value)
        member = members.get(badge.member_id) if badge is not None else None
        plans.get(member.plan if member is not None else "")
    return len(taps) / (time.perf_counter() - started)


def reasons(policy: Policy, taps: list[TapCase], at: datetime) -> str:
    """Say what ``taps`` are: the share of each reason ``decide`` gives."""
    counts = collections.Counter(
        decide(policy, device=t.device, door=t.door, credential=t.credential, at=at).reason.value
        for t in taps
    )
    return ", ".join(f"{reason} {n / len(taps):.0%}" for reason, n in counts.most_common())


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    rate: float
    baseline: float
    target: float | None


def measure(count: int, rounds: int) -> tuple[list[Row], list[str]]:
    """Time every row; return the rows and what the taps were."""
    at = layout.weekday_morning()
    space, policy = build_policy(at)
    taps = Taps(space, random.Random(9))
    mixed, hours = taps.mixed(count), [taps.hours() for _ in range(count)]
    notes = [f"mixed: {reasons(policy, mixed, at)}", f"hours: {reasons(policy, hours, at)}"]
    rows = []
    for name, cases, target in (
        ("decide(), mixed taps", mixed, TARGET_MIXED),
        ("decide(), plans with opening hours", hours, TARGET_HOURS),
    ):
        decide_rates, lookup_rates = [], []
        decisions_per_second(policy, cases[:1000], at)  # warm-up
        for _ in range(rounds):
            # Alternating, so that load from elsewhere on the machine falls on both alike.
            lookup_rates.append(lookups_per_second(policy, cases))
            decide_rates.append(decisions_per_second(policy, cases, at))
        rows.append(
            Row(name, statistics.median(decide_rates), statistics.median(lookup_rates), target)
        )
    return rows, notes


def _one_core() -> str:
    # One core, as the issue asks: a decision is answered on one event loop.
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        return "not pinned"
    return f"pinned to CPU {core}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.decide",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--taps", type=int, default=100_000, help="taps per list (default 100k)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, median (default 5)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.taps < 1000 or args.rounds < 1:
        parser.error("--taps must be at least 1000 and --rounds at least 1")
    pinned = _one_core()
    gc.collect()
    rows, notes = measure(args.taps, args.rounds)
    print(
        f"decide() throughput: {MEMBERS:,} members, {DOORS} doors on {CONTROLLERS} controllers,"
        f" {PASSES} guest passes; {args.taps:,} taps per list, median of {args.rounds} rounds;"
        f" one process {pinned}"
    )
    header = (
        f"{'':<36}  {'per s':>9}  {'baseline/s':>10}  {'cost':>7}"
        f"  {'target/s':>8}  {'of target':>9}"
    )
    print(header)
    print("-" * len(header))
    missed = []
    for row in rows:
        target = row.target or 0
        print(
            f"{row.name:<36}  {row.rate:>9,.0f}  {row.baseline:>10,.0f}"
            f"  {ratio(row.baseline, row.rate):>7}  {target:>8,}  {ratio(row.rate, target):>9}"
        )
        if row.rate < target:
            missed.append(f"{row.name}: {row.rate:,.0f} decisions/s; target {target:,}")
    print(
        "baseline: four plain dict lookups per tap (door, badge, member, plan) over the same taps;"
        " cost: one decide() in baseline taps"
    )
    print("\n".join(notes))
    for problem in missed:
        print(f"MISSED: {problem}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
