"""The live view of the space: desks and rooms, doors, devices, and who is in today.

The hub keeps a snapshot of what the live page shows and pushes a new one to every open page
(server-sent events) when a desk, a door, a device or the day's presence changes. It shows no
identity but those of members who opted in to the board, and of them only what they chose to
share: presence is counted for everyone, named only for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.access import UTC_ZONE, Policy
from gateway.occupancy import Occupancy
from gateway.store import Store
from gateway.store.models import (
    Desk,
    DeskEventRecord,
    Device,
    Door,
    Member,
    Site,
    Zone,
)
from gateway.store.records import recent_passages
from varco import protocol
from varco.protocol import DeskEvent, DoorEvent, Payload, Status, Topic

log = logging.getLogger(__name__)

# Snapshots a slow page may fall behind by before the oldest is dropped (each is complete).
QUEUE_LENGTH = 8
# Changes arriving together are sent as one snapshot: at most four a second, whatever the
# rate of taps (a snapshot reads every desk and door; a page needs no more).
COALESCE_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Presence:
    since: datetime
    day: date  # the local date of the first entry, at the site of the door
    zone: tzinfo  # that site's time zone: "today" there ends at its own midnight


class LiveHub:
    """Computes the live snapshots and fans them out to the pages that listen."""

    def __init__(self, store: Store, occupancy: Occupancy, policy: Callable[[], Policy]) -> None:
        self._store = store
        self._occupancy = occupancy
        self._policy = policy
        self._listeners: set[asyncio.Queue[str | None]] = set()
        self.closed = False
        self._present: dict[int, Presence] = {}
        self._device_states: dict[str, str] = {}
        self._changed = asyncio.Event()
        self.state_json = "{}"
        self.board_json = '{"members": []}'

    # --- what comes in -------------------------------------------------------------------

    def on_message(self, topic: Topic, payload: Payload) -> None:
        """Note a desk, door or device change (an ingest observer)."""
        if isinstance(payload, Status):
            self._device_states[topic.device] = payload.state.value
        if isinstance(payload, DeskEvent | DoorEvent | Status):
            self._changed.set()

    def on_access(self, row: dict[str, Any]) -> None:
        """Note a granted tap: in through an "in" door, out through an "out" door."""
        member_id = row.get("member_id")
        if not row["granted"] or member_id is None:
            return
        door = self._policy().doors.get(row["door_id"])
        if door is not None and door.direction == "out":
            self._present.pop(member_id, None)
        else:
            at: datetime = row["tapped_at"]
            zone = self._zone(row["door_id"])
            today = at.astimezone(zone).date()
            known = self._present.get(member_id)
            if known is None or known.day != today:
                self._present[member_id] = Presence(at, today, zone)
        self._changed.set()

    def changed(self) -> None:
        """Note that the model changed (desks, doors, profiles); call from the event loop."""
        self._changed.set()

    # --- what goes out -------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[str | None]:
        """Return a queue of server-sent events for one page, starting with the snapshots.

        ``None`` in the queue means the gateway is stopping: the page's stream ends there.
        """
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LENGTH)
        queue.put_nowait(_event("state", self.state_json))
        queue.put_nowait(_event("board", self.board_json))
        if self.closed:
            _offer(queue, None)
        else:
            self._listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._listeners.discard(queue)

    def close(self) -> None:
        """End every page's stream (the server is stopping); pages reconnect to the next one."""
        self.closed = True
        for queue in self._listeners:
            _offer(queue, None)
        self._listeners.clear()

    async def prime(self) -> None:
        """Learn who came in earlier today and make the first snapshots."""
        await asyncio.to_thread(self._seed_presence)
        await self.refresh()

    async def run(self) -> None:
        """Publish a snapshot after every change."""
        while True:
            await self._changed.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            self._changed.clear()
            await self.refresh()

    async def refresh(self) -> None:
        """Recompute both snapshots and send them to every page that listens."""
        try:
            state, board = await asyncio.to_thread(self._snapshots)
        except Exception:
            log.exception("live snapshot failed; keeping the last one")
            return
        for name, text in (("state", state), ("board", board)):
            if text == (self.state_json if name == "state" else self.board_json):
                continue
            if name == "state":
                self.state_json = text
            else:
                self.board_json = text
            for queue in list(self._listeners):
                _offer(queue, _event(name, text))

    # --- the snapshots -------------------------------------------------------------------

    def _snapshots(self) -> tuple[str, str]:
        with self._store.session() as session:
            state = self.state(session)
            board = self.board(session)
        return json.dumps(state, separators=(",", ":")), json.dumps(board, separators=(",", ":"))

    def state(self, session: Session) -> dict[str, Any]:
        """Describe desks, rooms, doors and devices now; no identities."""
        site = session.scalars(select(Site).order_by(Site.id)).first()
        zones = {z.id: z.name for z in session.scalars(select(Zone))}
        latest = _latest_desk_states(session)
        areas: dict[str, dict[str, Any]] = {}
        registered = set()
        for desk in session.scalars(select(Desk).order_by(Desk.zone_id, Desk.id)):
            registered.add(desk.id)
            area = areas.setdefault(
                desk.zone_id,
                {"id": desk.zone_id, "name": zones.get(desk.zone_id, desk.zone_id), "desks": []},
            )
            area["desks"].append(self._desk(desk.id, desk.name, desk.kind, latest))
        seen_elsewhere = sorted((set(self._occupancy.desks) | set(latest)) - registered)
        if seen_elsewhere:
            areas["other"] = {
                "id": "other",
                "name": "Other desks",
                "desks": [self._desk(d, d, "desk", latest) for d in seen_elsewhere],
            }
        for area in areas.values():
            area["occupied"] = sum(1 for d in area["desks"] if d["occupied"] is True)
            area["free"] = sum(1 for d in area["desks"] if d["occupied"] is False)
        policy = self._policy()
        doors = []
        for door in session.scalars(select(Door).order_by(Door.id)):
            live = self._occupancy.doors.get(door.id)
            rule = policy.doors.get(door.id)
            doors.append(
                {
                    "id": door.id,
                    "name": door.name,
                    "state": live[0] if live else door.state,
                    "locked_down": bool(rule and policy.is_locked_down(rule)),
                }
            )
        offline = [
            {"id": device.id, "name": device.name or device.id}
            for device in session.scalars(
                select(Device).where(Device.revoked_at.is_(None)).order_by(Device.id)
            )
            if self._device_states.get(device.id, device.state) == "offline"
        ]
        return {
            "site": {"id": site.id, "name": site.name, "timezone": site.timezone} if site else None,
            "updated_at": protocol.utcnow().isoformat(),
            "areas": list(areas.values()),
            "doors": doors,
            "offline_devices": offline,
            "present": len(self._present_today()),
        }

    def board(self, session: Session, skill: str | None = None) -> dict[str, Any]:
        """List the members present today who opted in, with what they chose to share."""
        present = self._present_today()
        if not present:
            return {"members": []}
        needle = (skill or "").strip().casefold()
        members = []
        query = select(Member).where(Member.id.in_(present), Member.board_opt_in.is_(True))
        for member in session.scalars(query):
            skills = list(member.skills or [])
            haystack = " ".join([*skills, member.profession or "", member.ask_me_about or ""])
            if needle and needle not in haystack.casefold():
                continue
            members.append(
                {
                    # Only what they chose to share: never their name unless they gave it.
                    "display_name": member.display_name or "A member",
                    "profession": member.profession,
                    "skills": skills,
                    "ask_me_about": member.ask_me_about,
                    "since": present[member.id].since.isoformat(),
                }
            )
        members.sort(key=lambda m: (m["since"], m["display_name"]))
        return {"members": members}

    def _desk(
        self, desk_id: str, name: str, kind: str, latest: dict[str, tuple[bool, datetime]]
    ) -> dict[str, Any]:
        live = self._occupancy.desks.get(desk_id)
        known = (live.occupied, live.since) if live else latest.get(desk_id)
        return {
            "id": desk_id,
            "name": name,
            "kind": kind,
            "occupied": known[0] if known else None,
            "since": known[1].isoformat() if known else None,
        }

    def _present_today(self) -> dict[int, Presence]:
        now = protocol.utcnow()
        return {m: p for m, p in self._present.items() if p.day == now.astimezone(p.zone).date()}

    def _zone(self, door_id: str) -> tzinfo:
        """Return the time zone of the site a door is at (UTC if the door is unknown)."""
        policy = self._policy()
        door = policy.doors.get(door_id)
        return policy.site_of(door).timezone if door is not None else UTC_ZONE

    def _seed_presence(self) -> None:
        # Who came in earlier today, before this gateway started: from the access log. Today
        # began at most 14 hours before UTC's today (UTC+14); on_access keeps each site's own.
        utc_today = protocol.utcnow().date()
        start = datetime.combine(utc_today, datetime.min.time(), tzinfo=UTC) - timedelta(hours=14)
        with self._store.session() as session:
            rows = recent_passages(session, start)
        for member_id, door_id, tapped_at in rows:
            self.on_access(
                {
                    "granted": True,
                    "member_id": member_id,
                    "door_id": door_id,
                    "tapped_at": tapped_at,
                }
            )


def _latest_desk_states(session: Session) -> dict[str, tuple[bool, datetime]]:
    newest = (
        select(DeskEventRecord.desk_id, func.max(DeskEventRecord.at).label("at"))
        .group_by(DeskEventRecord.desk_id)
        .subquery()
    )
    rows = session.execute(
        select(DeskEventRecord.desk_id, DeskEventRecord.occupied, DeskEventRecord.at).join(
            newest,
            (DeskEventRecord.desk_id == newest.c.desk_id) & (DeskEventRecord.at == newest.c.at),
        )
    ).all()
    return {desk_id: (occupied, at) for desk_id, occupied, at in rows}


def _event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


def _offer(queue: asyncio.Queue[str | None], message: str | None) -> None:
    # A page that fell behind loses its oldest snapshot, never the newest.
    with contextlib.suppress(asyncio.QueueEmpty):
        if queue.full():
            queue.get_nowait()
    queue.put_nowait(message)
