"""The change feed: every change to the coworking model, numbered, in the flush that makes it.

A gateway updates its in-memory policy from this feed instead of reading the whole model
again: a change to one member costs that member, not the space. Replicas poll the newest
number (one indexed read) and read only what is new; the API's own changes are applied at
once by the replica that made them.

Rows changed by bulk statements (``update(...)``, ``delete(...)``) bypass the ORM and so this
feed: the code that issues one calls ``note()`` for what it changed, or asks for a full reload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, insert, inspect, select
from sqlalchemy.orm import InstanceState, Session, UOWTransaction, sessionmaker

from gateway.store.models import (
    AccessWindow,
    Badge,
    Closure,
    Desk,
    Device,
    Door,
    DoorOpenWindow,
    GuestPass,
    Member,
    Plan,
    PolicyChange,
    Site,
    Zone,
)

MEMBER = "member"
BADGE = "badge"
PASS = "pass"  # noqa: S105 - a guest pass, not a password
STRUCTURE = "structure"

_STRUCTURE = (Site, Zone, Plan, AccessWindow, Door, DoorOpenWindow, Device, Closure, Desk)
_FLUSH = "varco.changes"


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in the model, as the policy needs to know it."""

    members: frozenset[int] = frozenset()
    badges: frozenset[str] = frozenset()  # UIDs, as they were and as they are
    passes: bool = False
    structure: bool = False
    everything: bool = False

    def __bool__(self) -> bool:
        return bool(self.members or self.badges or self.passes or self.structure or self.everything)

    def __or__(self, other: Changes) -> Changes:
        return Changes(
            members=self.members | other.members,
            badges=self.badges | other.badges,
            passes=self.passes or other.passes,
            structure=self.structure or other.structure,
            everything=self.everything or other.everything,
        )

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str]]) -> Changes:
        """Gather feed rows ``(kind, key)`` into one ``Changes``."""
        members: set[int] = set()
        badges: set[str] = set()
        passes = structure = False
        for kind, key in rows:
            if kind == MEMBER:
                members.add(int(key))
            elif kind == BADGE:
                badges.add(key)
            elif kind == PASS:
                passes = True
            else:
                structure = True
        return cls(frozenset(members), frozenset(badges), passes, structure)


EVERYTHING = Changes(everything=True)


def watch(sessions: sessionmaker[Session]) -> None:
    """Feed every change that sessions made by ``sessions`` flush into ``policy_changes``."""
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "after_flush", _after_flush)


def note(session: Session, kind: str, key: str = "") -> None:
    """Add a change the ORM cannot see (a bulk statement) to the feed; it commits with it."""
    session.add(PolicyChange(kind=kind, key=key))


def newest(session: Session) -> int:
    """Return the number of the newest change (0 if none)."""
    return session.scalar(select(func.coalesce(func.max(PolicyChange.seq), 0))) or 0


def since(session: Session, seq: int, *, limit: int = 10_000) -> list[tuple[int, str, str]]:
    """Return up to ``limit`` changes after ``seq``, oldest first, as ``(seq, kind, key)``."""
    rows = session.execute(
        select(PolicyChange.seq, PolicyChange.kind, PolicyChange.key)
        .where(PolicyChange.seq > seq)
        .order_by(PolicyChange.seq)
        .limit(limit)
    )
    return [(s, k, key) for s, k, key in rows]


def forget_before(session: Session, before: datetime) -> int:
    """Delete changes older than ``before`` (every replica has long read them)."""
    result = session.execute(delete(PolicyChange).where(PolicyChange.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(slots=True)
class _Pending:
    rows: set[tuple[str, str]] = field(default_factory=set)
    new: list[object] = field(default_factory=list)


def _before_flush(session: Session, flush: UOWTransaction, _instances: object) -> None:
    pending = _Pending()
    for obj in session.dirty:
        if session.is_modified(obj):
            pending.rows |= _rows(obj, inspect(obj))
    for obj in session.deleted:
        pending.rows |= _rows(obj, inspect(obj))
    # New rows have their keys only after the flush.
    pending.new = [obj for obj in session.new if not isinstance(obj, PolicyChange)]
    if pending.rows or pending.new:
        flush.attributes[_FLUSH] = pending


def _after_flush(session: Session, flush: UOWTransaction) -> None:
    pending = flush.attributes.pop(_FLUSH, None)
    if not isinstance(pending, _Pending):
        return
    rows = set(pending.rows)
    for obj in pending.new:
        rows |= _rows(obj, inspect(obj))
    if rows:
        session.connection().execute(
            insert(PolicyChange), [{"kind": kind, "key": key} for kind, key in sorted(rows)]
        )


def _rows(obj: object, state: InstanceState[Any]) -> set[tuple[str, str]]:
    if isinstance(obj, Member):
        return {(MEMBER, str(obj.id))}
    if isinstance(obj, Badge):
        # A UID that changed leaves its old record behind at the doors: name both.
        history = state.attrs.uid.history
        uids = {obj.uid, *(u for u in history.deleted or () if u)}
        rows = {(BADGE, uid) for uid in uids if uid}
        if obj.member_id is not None:
            rows.add((MEMBER, str(obj.member_id)))
        return rows
    if isinstance(obj, GuestPass):
        return {(PASS, "")}
    if isinstance(obj, _STRUCTURE):
        return {(STRUCTURE, "")}
    return set()
