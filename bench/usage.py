"""What a running process has used, read from ``/proc/<pid>``: CPU time and resident memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Usage:
    """A process's CPU seconds (user + system, all threads) and resident memory in MB (10^6)."""

    cpu_seconds: float
    rss_mb: float
    peak_rss_mb: float


def cpu_seconds(pid: int) -> float:
    """Return the CPU time of ``pid`` so far, every thread included, to the nanosecond.

    The sum of each thread's ``/proc/<pid>/task/<tid>/schedstat``: ``/proc/<pid>/stat``
    counts in clock ticks (10 ms), too coarse for a few hundred taps of a fraction of a
    millisecond each. A thread that ended is no longer counted: compare readings across
    which the process's threads live on (a running gateway's do).
    """
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except FileNotFoundError:
                continue  # the thread ended while we read
    except FileNotFoundError:
        raise ProcessLookupError(f"no process {pid}") from None
    return total / 1e9 if total else _ticks(pid)


def _ticks(pid: int) -> float:
    # Where the kernel keeps no schedstat: user + system time from /proc/<pid>/stat.
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and parentheses: count fields after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def usage_of(pid: int) -> Usage:
    """Read ``pid``'s CPU time, resident memory and peak resident memory now."""
    memory: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            memory[name] = int(value.split()[0]) * 1024 / 1e6  # the kernel's kB are KiB
    return Usage(cpu_seconds(pid), memory["VmRSS"], memory["VmHWM"])
