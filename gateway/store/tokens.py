"""API tokens: made here, shown once, kept only as a SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.store.models import ApiToken, Role

TOKEN_PREFIX = "vk_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class Identity:
    """Who holds a valid token: the token's id and name, and its role."""

    token_id: int
    name: str
    role: Role


def hash_token(token: str) -> str:
    """Hash a token for storage; tokens carry 256 random bits, so a fast hash suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, name: str, role: Role) -> str:
    """Create a token with ``role`` and return it; this is the only time it is visible."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token)))
    return token


def identity_of(session: Session, token: str) -> Identity | None:
    """Return who holds a valid, unrevoked token, or ``None``."""
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False)
        )
    ).first()
    return Identity(token_id=row.id, name=row.name, role=row.role) if row else None
