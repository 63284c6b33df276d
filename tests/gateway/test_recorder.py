"""The recorder's outbox on its own: bounded, durable, ordered; no InfluxDB needed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from gateway import measurements
from gateway.recorder import InfluxTarget, PointOutbox, Recorder, RecorderOptions
from tests.conftest import free_port
from varco.protocol import DeskEvent

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_outbox_drops_the_oldest_at_its_bound_and_counts(tmp_path: Path) -> None:
    outbox = PointOutbox(tmp_path / "outbox.db", max_points=3)
    outbox.put([f"desk occupied=1i {n}" for n in range(2)])
    outbox.put([f"desk occupied=1i {n}" for n in range(2, 5)])
    assert outbox.depth == 3
    assert outbox.dropped == 2
    assert [line for _, line in outbox.oldest(10)] == [
        "desk occupied=1i 2",
        "desk occupied=1i 3",
        "desk occupied=1i 4",
    ]
    outbox.close()


def test_points_stay_on_disk_until_removed(tmp_path: Path) -> None:
    outbox = PointOutbox(tmp_path / "outbox.db")
    outbox.put(["desk occupied=1i 1", "desk occupied=0i 2"])
    [(first, _), _] = outbox.oldest(10)
    outbox.remove([first])
    outbox.close()
    reopened = PointOutbox(tmp_path / "outbox.db")
    assert reopened.depth == 1
    assert [line for _, line in reopened.oldest(10)] == ["desk occupied=0i 2"]
    reopened.reject(reopened.oldest(1)[0][0], "desk occupied=0i 2", "field type conflict")
    assert reopened.depth == 0
    assert reopened.rejected() == [("desk occupied=0i 2", "field type conflict")]
    reopened.close()


async def test_shutdown_is_bounded_and_leaves_the_rest_on_disk(tmp_path: Path) -> None:
    nowhere = InfluxTarget(f"http://127.0.0.1:{free_port()}", "varco", "varco")
    options = RecorderOptions(flush_seconds=0.5, first_backoff=0.05, max_backoff=0.1)
    began = time.monotonic()
    async with Recorder(nowhere, tmp_path / "outbox.db", options) as recorder:
        recorder.record(
            measurements.desk_point(
                "rome",
                DeskEvent(event_id=f"desk-{n:08d}", desk="desk-1", occupied=True, at=AT),
            )
            for n in range(10)
        )
    assert time.monotonic() - began < 3
    assert recorder.counters["write_failures"] >= 1
    left = PointOutbox(tmp_path / "outbox.db")
    assert left.depth == 10
    left.close()
