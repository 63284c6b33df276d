"""The admin API: one router per resource, composed here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.api import access_events, badges, devices, doors, health, members, plans, zones
from gateway.service import Gateway
from varco import __version__

DESCRIPTION = """
Manage a coworking space's members, badges, plans, zones, doors and devices, and read its
access log. Every endpoint but `/healthz` needs `Authorization: Bearer <token>`; create the
first admin token with `varco gateway --create-admin-token`.
"""


def create_app(gateway: Gateway) -> FastAPI:
    """Build the API around ``gateway``, whose lifetime the app's lifespan owns."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway:
            app.state.gateway = gateway
            yield

    app = FastAPI(
        title="Varco gateway", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    for module in (health, members, badges, plans, zones, doors, devices, access_events):
        app.include_router(module.router)
    return app
