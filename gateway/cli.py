"""The gateway's command-line entry points, called by ``varco gateway``."""

from __future__ import annotations

import sys

import uvicorn

from gateway.api import create_app
from gateway.api.server import ApiServer
from gateway.service import Gateway
from gateway.settings import load_settings
from gateway.store import Store
from gateway.store.models import Role
from gateway.store.tokens import issue_token


def create_token(name: str, role: Role) -> int:
    """Create an API token with ``role`` and print it; it cannot be shown again."""
    settings = load_settings()
    with Store(settings.database_url) as store:
        store.upgrade()
        with store.session() as session:
            token = issue_token(session, name=name, role=role)
    print(token)
    print(f"{role.value} token {name!r} created; it is shown only once.", file=sys.stderr)
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
