"""The InfluxDB schema: every measurement, tag and field the gateway records, defined here only.

| measurement | tags | fields | time |
|---|---|---|---|
| ``access`` | site, door, result, reason | count=1i, offline=0i/1i | the tap at the edge |
| ``door`` | site, door, state | count=1i | the door event at the edge |
| ``desk`` | site, area (when known), desk | occupied=0i/1i | the desk event at the edge |
| ``device`` | site, device | online=0i/1i, outbox_depth (int), allowlist_age_seconds
  (float), uptime_seconds (float) | the status at the edge |

Tags are bounded: each takes one value per site, area, door, desk, result, reason, plus two
DESIGN.md does not list: a door event's ``state`` (five values, the ``DoorState`` enum) and
``device``. A device id is as bounded as a door id (one per
installed Pi, created by an admin), and device health is about the device, not about any door
it serves, so it is the only honest tag for that measurement.

Member identities (member id, credential, display name) never leave SQL: no point carries them,
as tag or field. Each point has its event's own timestamp, so a redelivered event writes the
same point again (InfluxDB keeps one point per series and timestamp) instead of a second one.
Points are built here as line protocol (what influxdb-client sends anyway), fully typed.
Field types never change (InfluxDB 1.x and 2.x reject a point whose field type differs from the
shard's), so every field is built with one fixed type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from varco.protocol import DeskEvent, DeviceState, DoorEvent, Payload, Status, Topic

ACCESS = "access"
DOOR = "door"
DESK = "desk"
DEVICE = "device"

TAGS = frozenset({"site", "area", "door", "desk", "result", "reason", "state", "device"})
PRECISION = "ns"  # the line protocol's timestamps below are nanoseconds since the epoch

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


@dataclass(frozen=True, slots=True)
class Sample:
    """One point: a measurement, its tags, its fields, and its event's own time."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, int | float]
    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a point's time must be timezone-aware")
        unknown = set(self.tags) - TAGS
        if unknown:
            raise ValueError(f"tags outside the bounded set: {sorted(unknown)}")

    @property
    def nanoseconds(self) -> int:
        """The time as nanoseconds since the epoch (microseconds are what datetime holds)."""
        return (self.at - _EPOCH) // timedelta(microseconds=1) * 1000

    def line(self) -> str:
        """Return the point in InfluxDB's line protocol, tags sorted as InfluxDB prefers."""
        tags = "".join(
            f",{key}={value.translate(_TAG_ESCAPES)}"
            for key, value in sorted(self.tags.items())
            if value
        )
        fields = ",".join(f"{key}={_field(value)}" for key, value in sorted(self.fields.items()))
        return f"{self.measurement}{tags} {fields} {self.nanoseconds}"


def access_point(row: Mapping[str, Any]) -> Sample:
    """Return the point for one access-log row (as ``Ingest.access_observers`` get it)."""
    return Sample(
        ACCESS,
        {
            "site": row["site"],
            "door": row["door_id"],
            "result": "granted" if row["granted"] else "denied",
            "reason": str(row["reason"]),
        },
        {"count": 1, "offline": int(bool(row["decided_offline"]))},
        row["tapped_at"],
    )


def superseded_access_point(row: Mapping[str, Any]) -> Sample | None:
    """Return the point a tap was first given if its door then decided it offline, or ``None``.

    The gateway answered, the answer came too late, the door decided for itself: the tap is
    one event with the door's outcome, and the point of the gateway's answer (another series:
    ``result`` and ``reason`` are tags) must go (``Recorder`` deletes it).
    """
    if row.get("online_granted") is None:
        return None
    online = {**row, "granted": row["online_granted"], "reason": row["online_reason"]}
    return access_point({**online, "decided_offline": False})


def delete_predicate(sample: Sample) -> str:
    """Return the InfluxDB delete predicate naming ``sample``'s series."""
    terms = [f'_measurement="{sample.measurement}"']
    # Tag values are ids and enum values (``varco.protocol``): no quote to escape.
    terms += [f'{key}="{value}"' for key, value in sorted(sample.tags.items()) if value]
    return " AND ".join(terms)


def door_point(site: str, event: DoorEvent) -> Sample:
    """Return the point for one door event."""
    return Sample(
        DOOR, {"site": site, "door": event.door, "state": event.state.value}, {"count": 1}, event.at
    )


def desk_point(site: str, event: DeskEvent, area: str | None = None) -> Sample:
    """Return the point for one desk event; ``area`` tags it when the desk's area is known."""
    tags = {"site": site, "desk": event.desk}
    if area is not None:
        tags["area"] = area
    return Sample(DESK, tags, {"occupied": int(event.occupied)}, event.at)


def device_point(site: str, device: str, status: Status) -> Sample:
    """Return the point for one device status (health)."""
    fields: dict[str, int | float] = {
        "online": int(status.state is DeviceState.ONLINE),
        "outbox_depth": int(status.outbox_depth),
        "uptime_seconds": float(status.uptime_seconds),
    }
    if status.allowlist_issued_at is not None:
        age = (status.at - status.allowlist_issued_at).total_seconds()
        fields["allowlist_age_seconds"] = float(max(age, 0.0))
    return Sample(DEVICE, {"site": site, "device": device}, fields, status.at)


def message_points(
    topic: Topic, payload: Payload, area_of: Mapping[str, str] | None = None
) -> list[Sample]:
    """Return the points one device message makes (taps come as access-log rows instead)."""
    if isinstance(payload, DoorEvent):
        return [door_point(topic.site, payload)]
    if isinstance(payload, DeskEvent):
        area = area_of.get(payload.desk) if area_of is not None else None
        return [desk_point(topic.site, payload, area)]
    if isinstance(payload, Status):
        return [device_point(topic.site, topic.device, payload)]
    return []


def _field(value: int | float) -> str:
    # bool is an int: it must not slip in as 'True' (a third type for the same field).
    if isinstance(value, int):
        return f"{int(value)}i"
    return repr(float(value))
