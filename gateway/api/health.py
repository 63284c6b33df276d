"""Liveness and readiness, for load balancers and for operators; no token needed."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.api.deps import GatewayDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: bool
    mqtt_connected: bool
    policy_version: int
    writer_depth: int
    # Records waiting and none committed for a while: the database is away or stuck.
    writer_stalled: bool = False
    writer: dict[str, int] = {}  # committed, duplicates, set_aside, database_faults
    counters: dict[str, int]
    recorder: dict[str, int] | None = None  # points waiting for InfluxDB, written, refused...
    failed_tasks: dict[str, str] = {}  # background tasks that stopped, and why


@router.get("/healthz", response_model=Health)
def healthz(gateway: GatewayDep, response: Response) -> Health:
    """Report whether the database and the broker are reachable, every background task runs
    and the event writer makes progress (503 if not), with ingest and writer counters."""
    try:
        with gateway.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = True
    except SQLAlchemyError:
        database = False
    ingest = gateway.ingest
    mqtt = ingest is not None and ingest.connected.is_set()
    stalled = gateway.writer.stalled
    ok = database and (mqtt or ingest is None) and not gateway.failed and not stalled
    if not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if ok else "degraded",
        database=database,
        mqtt_connected=mqtt,
        policy_version=gateway.policy().version,
        writer_depth=gateway.writer.depth,
        writer_stalled=stalled,
        writer=gateway.writer.counters(),
        counters=dict(ingest.counters) if ingest else {},
        recorder=(
            {"depth": gateway.recorder.depth, **gateway.recorder.counters}
            if gateway.recorder is not None
            else None
        ),
        failed_tasks=dict(gateway.failed),
    )
