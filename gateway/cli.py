"""The gateway's command-line entry points, called by ``varco gateway``."""

from __future__ import annotations

import sys
from datetime import timedelta

import uvicorn

from gateway.api import create_app
from gateway.api.server import ApiServer
from gateway.service import Gateway
from gateway.settings import load_settings
from gateway.store import Store, audit, tokens
from gateway.store.models import Role

EXIT_NOT_FOUND = 1


def create_token(name: str, role: Role, *, days: int = tokens.DEFAULT_LIFETIME.days) -> int:
    """Create an API token with ``role`` for ``days`` and print it; it cannot be shown again."""
    settings = load_settings()
    with Store(settings.database_url) as store:
        store.upgrade()
        with store.session() as session:
            audit.set_actor(session, tokens.COMMAND_LINE)
            row, token = tokens.issue(session, name=name, role=role, lifetime=timedelta(days=days))
            expires = row.expires_at.isoformat(timespec="seconds")
    print(token)
    print(
        f"{role.value} token {name!r} created, valid until {expires}; it is shown only once.",
        file=sys.stderr,
    )
    return 0


def list_tokens() -> int:
    """Print every API token: id, role, expiry, state and name; never the token."""
    settings = load_settings()
    with Store(settings.database_url) as store:
        store.upgrade()
        with store.session() as session:
            rows = [
                (
                    row.id,
                    row.role.value,
                    row.expires_at.isoformat(timespec="seconds"),
                    "revoked" if row.revoked else "valid",
                    row.name,
                )
                for row in tokens.list_tokens(session)
            ]
    print("id\trole\texpires_at\tstate\tname")
    for row in rows:
        print("\t".join(str(column) for column in row))
    return 0


def revoke_token(token_id: int) -> int:
    """Revoke an API token; it is refused from its next request on."""
    settings = load_settings()
    with Store(settings.database_url) as store:
        store.upgrade()
        try:
            with store.session() as session:
                audit.set_actor(session, tokens.COMMAND_LINE)
                row = tokens.revoke(session, token_id)
                name = row.name
        except (tokens.UnknownTokenError, tokens.TokenRevokedError) as exc:
            print(f"varco gateway: {exc}", file=sys.stderr)
            return EXIT_NOT_FOUND
    print(f"token {token_id} ({name!r}) revoked.", file=sys.stderr)
    return 0


def upgrade() -> int:
    """Migrate the database to the newest schema and say so."""
    settings = load_settings()
    with Store(settings.database_url) as store:
        store.upgrade()
    print("the database schema is up to date", file=sys.stderr)
    return 0


# How long a worker thread (a whole allow-list, a report) may hold the interpreter before the
# event loop that answers taps gets it back; Python's default is 5 ms.
SWITCH_INTERVAL_SECONDS = 0.001


def serve(*, host: str | None, port: int | None) -> int:
    """Run the gateway and its API until interrupted."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    settings = load_settings()
    gateway = Gateway(settings)
    config = uvicorn.Config(
        create_app(gateway),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        # A slow client must not hold a stop for long (live pages' streams end by themselves).
        timeout_graceful_shutdown=2,
    )
    ApiServer(config, gateway, own_signals=True).run()
    return 0
