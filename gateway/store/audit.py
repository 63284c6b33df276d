"""The audit log: what API callers change, written in the very flush that changes it.

Routers need not know about it. The API's token check names the caller in the session
(:func:`set_actor`); a flush of that session then logs each created, updated or deleted row
with its fields' old and new values. Sessions without an actor (the ingest writer, the demo's
seeding) are not audited: their events are logged elsewhere.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import (
    InstanceState,
    RelationshipDirection,
    Session,
    UOWTransaction,
    sessionmaker,
)

from gateway.store.models import AuditAction, AuditEntry
from gateway.store.tokens import Identity

# Fields never copied into the log, whatever their entity: operators read the log. A guest
# pass's code is a credential shown once, like a token. Any other column can opt out with
# ``mapped_column(..., info={"secret": True})``.
SECRET = re.compile(r"password|hash|key|token|secret|code", re.IGNORECASE)

_ACTOR = "varco.actor"
_FLUSH = "varco.audit"

Changes = dict[str, dict[str, Any]]


def set_actor(session: Session, actor: Identity) -> None:
    """Log every change ``session`` flushes from now on as made by ``actor``."""
    session.info[_ACTOR] = actor


@contextmanager
def unlogged(session: Session) -> Iterator[None]:
    """Flush changes within this block without logging their values (an erasure's own rows)."""
    actor = session.info.pop(_ACTOR, None)
    try:
        yield
    finally:
        if actor is not None:
            session.info[_ACTOR] = actor


def actor_of(session: Session) -> Identity | None:
    """Return who the changes in ``session`` are logged as made by, if anyone."""
    actor = session.info.get(_ACTOR)
    return actor if isinstance(actor, Identity) else None


def record(
    session: Session,
    *,
    action: AuditAction,
    entity: str,
    entity_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Log an act that changes no row (a remote unlock, say); it commits with the session.

    Like every audit entry, it is written only for a session with an actor.
    """
    actor = actor_of(session)
    if actor is None:
        return
    row = _row(actor, datetime.now(UTC), action, entity, entity_id, {}, details)
    session.add(AuditEntry(**row))


def watch(sessions: sessionmaker[Session]) -> None:
    """Audit the sessions that ``sessions`` makes."""
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "after_flush", _after_flush)


@dataclass(frozen=True, slots=True)
class _Flush:
    actor: Identity
    at: datetime
    new: list[InstanceState[Any]]
    dirty: list[InstanceState[Any]]
    deleted: list[tuple[InstanceState[Any], Changes]]


def _before_flush(session: Session, flush: UOWTransaction, _instances: object) -> None:
    actor = actor_of(session)
    if actor is None:
        return
    flush.attributes[_FLUSH] = _Flush(
        actor,
        datetime.now(UTC),
        new=_states(session.new),
        dirty=[s for s in _states(session.dirty) if session.is_modified(s.obj())],
        # A deleted row's values must be read now: after the flush, loading them finds no row.
        deleted=[(s, _deleted(s)) for s in _states(session.deleted)],
    )


def _after_flush(session: Session, flush: UOWTransaction) -> None:
    # New rows have their keys only now, so the entries are written after the flush, not before.
    pending = flush.attributes.pop(_FLUSH, None)
    if not isinstance(pending, _Flush):
        return
    entries = [(s, AuditAction.CREATE, _created(s)) for s in pending.new]
    entries += [(s, AuditAction.UPDATE, _updated(s)) for s in pending.dirty]
    entries += [(s, AuditAction.DELETE, changes) for s, changes in pending.deleted]
    rows = [
        _row(pending.actor, pending.at, action, _entity(s), _entity_id(s), changes, None)
        for s, action, changes in entries
        if changes or action is not AuditAction.UPDATE
    ]
    if rows:
        session.connection().execute(insert(AuditEntry), rows)


def _states(objects: Iterable[object]) -> list[InstanceState[Any]]:
    return [inspect(o) for o in objects if not isinstance(o, AuditEntry)]


def _row(
    actor: Identity,
    at: datetime,
    action: AuditAction,
    entity: str,
    entity_id: str,
    changes: Changes,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "at": at,
        "actor": actor.name,
        "actor_role": actor.role,
        "token_id": actor.token_id,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "changes": changes,
        "details": details,
    }


def _entity(state: InstanceState[Any]) -> str:
    # Member -> member, GuestPass -> guest_pass: the words of the API, not the table names.
    return re.sub(r"(?<!^)(?=[A-Z])", "_", state.class_.__name__).lower()


def _entity_id(state: InstanceState[Any]) -> str:
    return "/".join(str(v) for v in state.mapper.primary_key_from_instance(state.obj()))


def _created(state: InstanceState[Any]) -> Changes:
    return {
        key: {"old": None, "new": value}
        for key, value in _values(state, state.dict).items()
        if value not in (None, [])
    }


def _deleted(state: InstanceState[Any]) -> Changes:
    obj = state.obj()
    loaded = {key: getattr(obj, key) for key in _audited_keys(state)}
    return {
        key: {"old": value, "new": None}
        for key, value in _values(state, loaded).items()
        if value not in (None, [])
    }


def _updated(state: InstanceState[Any]) -> Changes:
    changes: Changes = {}
    for key in _audited_keys(state):
        history = state.attrs[key].history
        if not history.has_changes():
            continue
        if _is_collection(state, key):
            old = _keys([*history.unchanged, *history.deleted])
            new = _keys([*history.unchanged, *history.added])
        else:
            old = _plain_or_key(state, key, history.deleted[0] if history.deleted else None)
            new = _plain_or_key(state, key, history.added[0] if history.added else None)
        if old != new:
            changes[key] = {"old": old, "new": new}
    return changes


def _audited_keys(state: InstanceState[Any]) -> list[str]:
    mapper = state.mapper
    keys = [
        attr.key
        for attr in mapper.column_attrs
        if not any(column.info.get("secret") for column in attr.columns)
    ]
    # A many-to-one relationship is its foreign-key column, which is logged already.
    keys += [
        rel.key
        for rel in mapper.relationships
        if rel.direction is not RelationshipDirection.MANYTOONE
    ]
    return [key for key in keys if not SECRET.search(key)]


def _values(state: InstanceState[Any], values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _plain_or_key(state, key, values[key]) for key in _audited_keys(state) if key in values
    }


def _is_collection(state: InstanceState[Any], key: str) -> bool:
    relationship = state.mapper.relationships.get(key)
    return relationship is not None and bool(relationship.uselist)


def _plain_or_key(state: InstanceState[Any], key: str, value: Any) -> Any:
    if key in state.mapper.relationships:
        return _keys(value) if _is_collection(state, key) else _key(value)
    return _plain(value)


def _keys(objects: Iterable[object] | None) -> list[Any]:
    keys = [_key(o) for o in objects or ()]
    return sorted(keys, key=lambda k: (k is None, str(type(k)), k))


def _key(obj: object | None) -> Any:
    """Name a related row by its primary key, as the API does."""
    if obj is None:
        return None
    key = [_plain(v) for v in inspect(obj).mapper.primary_key_from_instance(obj)]
    return key[0] if len(key) == 1 else key


def _plain(value: Any) -> Any:
    """Turn a column's value into what JSON holds."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


__all__ = ["SECRET", "actor_of", "record", "set_actor", "unlogged", "watch"]
