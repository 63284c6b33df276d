"""What the two stores hold, read the way an operator would: SQL tables and InfluxDB's HTTP API.

Measurement, tag and table names come from the gateway's own definitions
(``gateway.measurements``, ``gateway.store.models``), so a renamed tag is a failing test here,
not a silent zero.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from sqlalchemy import create_engine, func, select

from gateway import measurements
from gateway.store.models import AccessEvent, DeskEventRecord
from tests.integration.influxd import Influxd

BUCKET = "varco"


class Stores:
    """The gateway's SQL database and the InfluxDB it records to."""

    def __init__(self, database_url: str, influxd: Influxd, site: str) -> None:
        self._engine = create_engine(database_url)
        self._influxd = influxd
        self._site = site

    def close(self) -> None:
        self._engine.dispose()

    def sql_taps(self) -> list[dict[str, Any]]:
        query = select(
            AccessEvent.event_id,
            AccessEvent.door_id,
            AccessEvent.granted,
            AccessEvent.reason,
            AccessEvent.decided_offline,
        )
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def sql_desks(self) -> list[dict[str, Any]]:
        query = select(DeskEventRecord.event_id, DeskEventRecord.desk_id, DeskEventRecord.occupied)
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def influx_taps(self) -> list[tuple[str, int, str, str]]:
        """Every ``access`` point: (door, time in ns, result, reason)."""
        rows = self._select(
            f'SELECT "count", "door", "result", "reason" FROM "{measurements.ACCESS}" '  # noqa: S608
            f"WHERE \"site\" = '{self._site}'"  # our own site's id, from tests.faults.space
        )
        return [(row[2], int(row[0]), row[3], row[4]) for row in rows]

    def influx_desks(self) -> list[tuple[str, int]]:
        """Every ``desk`` point: (desk, time in ns)."""
        rows = self._select(
            f'SELECT "occupied", "desk" FROM "{measurements.DESK}" '  # noqa: S608
            f"WHERE \"site\" = '{self._site}'"
        )
        return [(row[2], int(row[0])) for row in rows]

    def counts(self) -> tuple[int, int, int, int]:
        """Rows and points so far: (SQL taps, SQL desks, InfluxDB taps, InfluxDB desks)."""
        with self._engine.connect() as connection:
            taps = connection.scalar(select(func.count()).select_from(AccessEvent)) or 0
            desks = connection.scalar(select(func.count()).select_from(DeskEventRecord)) or 0
        return taps, desks, len(self.influx_taps()), len(self.influx_desks())

    def _select(self, q: str) -> list[list[Any]]:
        params = urllib.parse.urlencode({"q": q, "db": BUCKET, "epoch": "ns"})
        request = urllib.request.Request(  # noqa: S310 (always http://127.0.0.1)
            f"{self._influxd.url}/query?{params}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310
            result = json.loads(answer.read())["results"][0]
        if "error" in result:
            raise AssertionError(f"InfluxDB refused {q!r}: {result['error']}")
        values: list[list[Any]] = []
        for series in result.get("series", []):
            values += series["values"]
        return values
