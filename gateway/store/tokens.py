"""API tokens: made here, shown once, kept only as a SHA-256; each expires and can be revoked."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import GatewayError
from gateway.store.models import ApiToken, Role

TOKEN_PREFIX = "vk_"  # noqa: S105 - a prefix, not a secret
DEFAULT_LIFETIME = timedelta(days=90)
# Long enough for a script's token, short enough that a forgotten one still ends.
MAX_LIFETIME_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Identity:
    """Who holds a valid token: the token's id and name, and its role.

    ``token_id`` is ``None`` for someone acting without a token: `varco gateway` on the
    gateway's own machine.
    """

    token_id: int | None
    name: str
    role: Role


# Who the audit log names for what `varco gateway` commands change.
COMMAND_LINE = Identity(token_id=None, name="varco gateway (command line)", role=Role.ADMIN)


class UnknownTokenError(GatewayError, LookupError):
    """No token has this id."""


class TokenRevokedError(GatewayError, ValueError):
    """The token is revoked already."""


def hash_token(token: str) -> str:
    """Hash a token for storage; tokens carry 256 random bits, so a fast hash suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, *, name: str, role: Role, lifetime: timedelta = DEFAULT_LIFETIME
) -> str:
    """Create a token with ``role`` for ``lifetime`` and return it; it is never shown again."""
    return issue(session, name=name, role=role, lifetime=lifetime)[1]


def issue(
    session: Session, *, name: str, role: Role, lifetime: timedelta = DEFAULT_LIFETIME
) -> tuple[ApiToken, str]:
    """Create a token and return its row (flushed, with its id) and the token itself."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = ApiToken(
        name=name,
        role=role,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + lifetime,
        revoked=False,
    )
    session.add(row)
    session.flush()
    return row, token


def identity_of(session: Session, token: str) -> Identity | None:
    """Return who holds a valid token (known, unrevoked, unexpired), or ``None``."""
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token),
            ApiToken.revoked.is_(False),
            ApiToken.expires_at > datetime.now(UTC),
        )
    ).first()
    return Identity(token_id=row.id, name=row.name, role=row.role) if row else None


def list_tokens(session: Session) -> Sequence[ApiToken]:
    """Return every token, oldest first: what the API and `varco gateway --list-tokens` show."""
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def revoke(session: Session, token_id: int) -> ApiToken:
    """Revoke a token; from the next request on, it gets 401."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise UnknownTokenError(f"no token {token_id}")
    if row.revoked:
        raise TokenRevokedError(f"token {token_id} is already revoked")
    row.revoked = True
    session.flush()
    return row


__all__ = [
    "COMMAND_LINE",
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME_DAYS",
    "Identity",
    "TokenRevokedError",
    "UnknownTokenError",
    "hash_token",
    "identity_of",
    "issue",
    "issue_token",
    "list_tokens",
    "revoke",
]
