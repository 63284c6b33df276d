"""The admin API: one router per resource, composed here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.api import (
    access_events,
    audit,
    badges,
    closures,
    desks,
    devices,
    docs,
    doors,
    health,
    live,
    lockdowns,
    me,
    members,
    members_csv,
    overrides,
    passes,
    plans,
    reports,
    set_aside,
    sites,
    tokens,
    zones,
)
from gateway.api.intake import BodyLimit, TokenFirst
from gateway.service import Gateway
from varco import __version__

DESCRIPTION = """
Manage a coworking space: sites (and their time zones), zones, plans with their opening hours,
members and their badges, guest passes, holidays and closures, doors and the devices that drive
them; lock down a door, a zone or a site, open a door from afar, read the access log, the audit
log and the event records set aside, and report usage (hours present, desk hours, utilisation)
for cost sharing and billing.

Every endpoint but `/healthz` needs `Authorization: Bearer <token>`. Roles: **admin** changes
anything; **operator** reads, locks down and unlocks doors; **viewer** reads. Create the first
admin token with `varco gateway --create-admin-token NAME`. Tokens expire (90 days unless said
otherwise when created) and an admin revokes them with `DELETE /tokens/{id}`.
"""


def create_app(gateway: Gateway) -> FastAPI:
    """Build the API around ``gateway``, whose lifetime the app's lifespan owns."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway:
            app.state.gateway = gateway
            yield

    app = FastAPI(
        title="Varco gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by gateway.api.docs, with their assets: FastAPI's own load them from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    for module in (
        health,
        sites,
        zones,
        plans,
        members_csv,  # before members: /members/export is no member id
        members,
        me,
        badges,
        passes,
        closures,
        devices,
        overrides,
        desks,
        doors,
        lockdowns,
        access_events,
        audit,
        reports,
        tokens,
        set_aside,
        live,
    ):
        app.include_router(module.router)
    app.mount("/live/static", live.static, name="live-static")
    docs.install(app)
    # The last added runs first: no token, no reading; then no more than the limit.
    app.add_middleware(BodyLimit, max_bytes=gateway.settings.api_max_body_bytes)
    app.add_middleware(TokenFirst, gateway=lambda: gateway)
    return app
