"""Writing the event log: every insert is idempotent by the event id made at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.access import Policy
from gateway.store.models import (
    AccessEvent,
    DeskEventRecord,
    Device,
    Door,
    DoorEventRecord,
    SetAsideRecord,
)
from varco.protocol import Credential, CredentialKind, pass_code_hash

UNKNOWN_PASS = "pass-unknown"  # noqa: S105 - a label, not a secret
# What opens a door: never kept outside the access log, never logged.
SECRET_FIELDS = frozenset({"credential"})
REDACTED = "<redacted>"

_TABLES: dict[str, Table] = {
    "access": AccessEvent.__table__,  # type: ignore[dict-item]
    "door": DoorEventRecord.__table__,  # type: ignore[dict-item]
    "desk": DeskEventRecord.__table__,  # type: ignore[dict-item]
}


def logged_credential(policy: Policy, credential: Credential) -> str:
    """Return what the access log keeps of ``credential``: a badge's UID, or a pass's id.

    A pass's code opens its doors, and operators and viewers read the log: it keeps the pass
    as ``pass-<id>`` (``GET /passes`` names it), or ``pass-unknown`` for a code of no pass.
    """
    if credential.kind is not CredentialKind.PASS:
        return credential.value
    guest_pass = policy.passes.get(pass_code_hash(credential.value))
    if guest_pass is None or guest_pass.id is None:
        return UNKNOWN_PASS
    return f"pass-{guest_pass.id}"


def insert_new(session: Session, kind: str, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert ``rows`` of an event ``kind``, skipping ids already stored; return the new ids."""
    if not rows:
        return set()
    table = _TABLES[kind]
    dialect = session.get_bind().dialect.name
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert(table)
    elif dialect == "sqlite":
        insert = sqlite.insert(table)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database dialect {dialect!r}")
    # The same event may arrive twice in one batch (a redelivery racing its original).
    unique = list({row["event_id"]: row for row in rows}.values())
    statement = insert.on_conflict_do_nothing(index_elements=["event_id"]).returning(
        table.c.event_id
    )
    return set(session.scalars(statement, unique))


def record_offline_taps(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Record taps a door decided offline; return the ids inserted or corrected.

    The same tap may have reached the gateway online before the door gave up waiting: then
    the door's own decision is what happened, and it replaces the online one, once.
    """
    if not rows:
        return set()
    table = _TABLES["access"]
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    unique = list({row["event_id"]: row for row in rows}.values())
    statement = insert.on_conflict_do_update(
        index_elements=["event_id"],
        set_={
            "granted": insert.excluded.granted,
            "reason": insert.excluded.reason,
            "decided_offline": True,
            "allowlist_version": insert.excluded.allowlist_version,
            # The row's values before this update: what the gateway had answered.
            "online_granted": table.c.granted,
            "online_reason": table.c.reason,
        },
        where=table.c.decided_offline.is_(False),
    ).returning(table.c.event_id)
    return set(session.scalars(statement, unique))


# What an access point is made of, read back after the commit (``access_outcomes``).
OUTCOME_COLUMNS = (
    "event_id",
    "site",
    "door_id",
    "granted",
    "reason",
    "decided_offline",
    "tapped_at",
    "online_granted",
    "online_reason",
)


def access_outcomes(session: Session, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Return what SQL holds of the taps ``ids`` (their final outcome), as plain rows."""
    if not ids:
        return []
    table = _TABLES["access"]
    columns = [table.c[name] for name in OUTCOME_COLUMNS]
    rows = session.execute(select(*columns).where(table.c.event_id.in_(set(ids))))
    return [dict(zip(OUTCOME_COLUMNS, row, strict=True)) for row in rows]


def record_device_status(
    session: Session,
    device_id: str,
    *,
    state: str,
    software: str,
    at: datetime,
    allowlist_version: int | None = None,
    outbox_depth: int | None = None,
) -> None:
    """Keep a device's latest status, in arrival order.

    The broker keeps one publisher's messages on one topic in order, and publishes the last
    will (offline, stamped when the session began) after them, so arrival order is the truth.
    """
    device = session.get(Device, device_id)
    if device is None:
        return
    device.state = state
    device.software = software
    device.last_status_at = at
    device.allowlist_version = allowlist_version
    device.outbox_depth = outbox_depth


def record_door_state(session: Session, door_id: str, state: str) -> None:
    """Remember the last state a door reported."""
    session.execute(update(Door).where(Door.id == door_id).values(state=state))


def known_event_ids(session: Session, kind: str, ids: Sequence[str]) -> set[str]:
    """Return those of ``ids`` already recorded for ``kind``."""
    table = _TABLES[kind]
    return set(session.scalars(select(table.c.event_id).where(table.c.event_id.in_(ids))))


def forget_access_before(session: Session, before: datetime) -> int:
    """Delete the access log's taps older than ``before``; return how many went.

    The access log holds who went where: it is kept for the audit as long as the site's
    retention period says, then forgotten (InfluxDB never held identities).
    """
    result = session.execute(delete(AccessEvent).where(AccessEvent.tapped_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def recent_passages(session: Session, since: datetime) -> list[tuple[int, str, datetime]]:
    """Return the granted taps of members since ``since``, oldest first: (member, door, at)."""
    rows = session.execute(
        select(AccessEvent.member_id, AccessEvent.door_id, AccessEvent.tapped_at)
        .where(
            AccessEvent.granted.is_(True),
            AccessEvent.member_id.is_not(None),
            AccessEvent.tapped_at >= since,
        )
        .order_by(AccessEvent.tapped_at, AccessEvent.event_id)
    )
    return [(member, door, at) for member, door, at in rows if member is not None]


def redacted(row: dict[str, Any]) -> dict[str, Any]:
    """Return ``row`` as plain JSON, credentials replaced: fit for a log line or a side table.

    Times are written as the device sent them (with their offset): one that cannot be
    converted to UTC is exactly what a person reading it must see.
    """
    return {key: _plain(key, value) for key, value in row.items()}


def _plain(key: str, value: Any) -> Any:
    if key in SECRET_FIELDS and value is not None:
        return REDACTED
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return redacted(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def set_aside(session: Session, kind: str, row: dict[str, Any], reason: str) -> None:
    """Keep an event record the store cannot write, redacted, with why."""
    event_id = row.get("event_id")
    session.add(
        SetAsideRecord(
            kind=kind[:16],
            event_id=event_id[:64] if isinstance(event_id, str) else None,
            row=redacted(row),
            reason=reason[:1000],
        )
    )
