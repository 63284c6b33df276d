"""Links an admin sends a member to set their own profile: a token shown once, kept hashed,
valid for hours. A new link for a member replaces the ones before it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.store.models import Member, ProfileLink
from gateway.store.tokens import hash_token

PREFIX = "vm_"  # a member's link, told apart from an API token (vk_) at a glance
DEFAULT_LIFETIME = timedelta(hours=48)
MAX_LIFETIME = timedelta(days=7)


def issue(session: Session, member_id: int, lifetime: timedelta) -> tuple[str, datetime]:
    """Make a link token for ``member_id``, replacing older ones; return it and its expiry."""
    token = PREFIX + secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + lifetime
    session.execute(delete(ProfileLink).where(ProfileLink.member_id == member_id))
    session.add(
        ProfileLink(member_id=member_id, token_hash=hash_token(token), expires_at=expires_at)
    )
    return token, expires_at


def member_of(session: Session, token: str) -> Member | None:
    """Return the member whose unexpired link ``token`` is, or None."""
    if not token.startswith(PREFIX):
        return None
    link = session.scalars(
        select(ProfileLink).where(ProfileLink.token_hash == hash_token(token))
    ).first()
    if link is None or link.expires_at <= datetime.now(UTC):
        return None
    return session.get(Member, link.member_id)
