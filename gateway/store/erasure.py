"""Erasing a member: their identity leaves every table, what they add to the counts stays.

The right to erasure meets cost sharing: a member who leaves may ask to be forgotten, and the
space must still bill the month they were there. So their taps stay in the access log, under a
pseudonym (a negative member id, the same for all their taps, that no table links to a
person) with the badge UID replaced: the usage report's totals, sessions and peaks do not
change. The member row, their badges and profile go; the audit log keeps that something changed
and when, not what the values were; the change feed forgets their badges' UIDs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.store import audit
from gateway.store.changes import BADGE
from gateway.store.models import (
    AccessEvent,
    AuditAction,
    AuditEntry,
    Badge,
    Member,
    PolicyChange,
    SetAsideRecord,
)

ERASED = "<erased>"
_MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Erased:
    """What an erasure changed, as the API answers and the audit log keeps it."""

    member_id: int
    pseudonym: int
    badges: int
    access_events: int
    audit_entries: int


def erase_member(session: Session, member: Member) -> Erased:
    """Erase ``member`` in ``session`` (the caller commits), and log that it was done."""
    member_id = member.id
    badges = list(session.scalars(select(Badge).where(Badge.member_id == member_id)))
    uids = {badge.uid for badge in badges}
    pseudonym = _pseudonym(session)
    taps = session.execute(
        update(AccessEvent)
        .where(AccessEvent.member_id == member_id)
        .values(member_id=pseudonym, credential=ERASED)
    )
    # Taps of their badges that named no member (a badge of theirs tapped after its removal).
    if uids:
        session.execute(
            update(AccessEvent).where(AccessEvent.credential.in_(uids)).values(credential=ERASED)
        )
    scrubbed = _scrub_audit(session, member_id, {badge.id for badge in badges})
    _scrub_set_aside(session, member_id, pseudonym)
    # The deletions themselves are not logged with their values: that would keep them.
    with audit.unlogged(session):
        for badge in badges:
            session.delete(badge)
        session.delete(member)
        session.flush()
    # The feed named the badges by UID as they went; the member's row says it all to replicas,
    # which drop a member's badges with the member.
    if uids:
        session.execute(
            delete(PolicyChange).where(PolicyChange.kind == BADGE, PolicyChange.key.in_(uids))
        )
    result = Erased(
        member_id=member_id,
        pseudonym=pseudonym,
        badges=len(badges),
        access_events=int(getattr(taps, "rowcount", 0) or 0),
        audit_entries=scrubbed,
    )
    audit.record(
        session,
        action=AuditAction.ERASE,
        entity="member",
        entity_id=str(member_id),
        # Not the pseudonym: the log would lead from the member's id to their taps again.
        details={
            "badges": result.badges,
            "access_events": result.access_events,
            "audit_entries": result.audit_entries,
        },
    )
    return result


def _pseudonym(session: Session) -> int:
    # Random, not derived from the id: nothing leads from the pseudonym back to the member.
    while True:
        candidate = -(secrets.randbelow(_MAX_ID) + 1)
        taken = session.scalar(
            select(AccessEvent.event_id).where(AccessEvent.member_id == candidate).limit(1)
        )
        if taken is None:
            return candidate


def _blanked(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {side: None if value is None else ERASED for side, value in change.items()}
        if isinstance(change, dict)
        else ERASED
        for key, change in changes.items()
    }


def _scrub_audit(session: Session, member_id: int, badge_ids: set[int]) -> int:
    """Keep which fields of the member and their badges changed, when and by whom; not values."""
    entries = session.scalars(
        select(AuditEntry).where(
            (AuditEntry.entity == "member") & (AuditEntry.entity_id == str(member_id))
            | (AuditEntry.entity == "badge")
            & AuditEntry.entity_id.in_([str(badge_id) for badge_id in badge_ids])
        )
    ).all()
    for entry in entries:
        entry.changes = _blanked(entry.changes or {})
        if entry.details:
            entry.details = _blanked(entry.details)
    return len(entries)


def _scrub_set_aside(session: Session, member_id: int, pseudonym: int) -> None:
    # Set-aside rows are few and JSON: read in Python rather than by each database's JSON path.
    for record in session.scalars(select(SetAsideRecord).where(SetAsideRecord.kind == "access")):
        if record.row.get("member_id") == member_id:
            record.row = {**record.row, "member_id": pseudonym, "credential": ERASED}
