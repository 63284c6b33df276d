"""Usage reports for cost sharing and billing: presence per member, occupancy per desk and area.

The definitions (sessions, intervals, utilisation, peaks) are in ``gateway.reports``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from gateway import reports
from gateway.api.deps import ReaderDep, SessionDep
from gateway.api.fields import Instant
from gateway.reports import GroupBy, Period, ReportError
from gateway.store.models import Site
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/reports", tags=["reports"])

CSV = "text/csv"
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class MemberUsageOut(BaseModel):
    member_id: int
    name: str | None
    hours_present: float
    sessions: int


class DeskUsageOut(BaseModel):
    desk_id: str
    name: str
    area: str
    desk_hours: float
    utilisation_pct: float


class AreaUsageOut(BaseModel):
    area_id: str
    name: str
    desks: int
    desk_hours: float
    utilisation_pct: float
    peak_occupancy: int
    peak_at: datetime | None


_ROW_MODELS: dict[str, type[BaseModel]] = {
    "member": MemberUsageOut,
    "desk": DeskUsageOut,
    "area": AreaUsageOut,
}


class PresenceSummaryOut(BaseModel):
    """Totals over every member, and the most members present at once, site-wide."""

    timezone: str
    period_hours: float
    members: int
    hours_present: float
    sessions: int
    peak_present: int
    peak_at: datetime | None


class OccupancySummaryOut(BaseModel):
    """Totals over every desk of the site, and the most desks occupied at once."""

    timezone: str
    period_hours: float
    desks: int
    desk_hours: float
    utilisation_pct: float
    peak_occupancy: int
    peak_at: datetime | None


class UsageReportOut(BaseModel):
    since: datetime
    until: datetime
    site: str | None = Field(description="The site reported on; null for every site")
    group_by: GroupBy
    rows: list[MemberUsageOut] | list[DeskUsageOut] | list[AreaUsageOut]
    summary: PresenceSummaryOut | OccupancySummaryOut


def _hours(duration: timedelta) -> float:
    return round(duration / reports.HOUR, 2)


def _report(
    log: reports.UsageLog,
    period: Period,
    group_by: GroupBy,
    timeout: timedelta,
    site: str | None,
) -> UsageReportOut:
    zone = str(log.timezone)
    period_hours = _hours(period.duration)
    rows: list[MemberUsageOut] | list[DeskUsageOut] | list[AreaUsageOut]
    summary: PresenceSummaryOut | OccupancySummaryOut
    if group_by == "member":
        presence = reports.presence_report(log, period, timeout)
        rows = [
            MemberUsageOut(
                member_id=m.member_id,
                name=m.name,
                hours_present=_hours(m.present),
                sessions=m.sessions,
            )
            for m in presence.members
        ]
        summary = PresenceSummaryOut(
            timezone=zone,
            period_hours=period_hours,
            members=len(presence.members),
            hours_present=_hours(presence.present),
            sessions=presence.sessions,
            peak_present=presence.peak.count,
            peak_at=presence.peak.at,
        )
    else:
        occupancy = reports.occupancy_report(log, period)
        if group_by == "desk":
            rows = [
                DeskUsageOut(
                    desk_id=d.desk_id,
                    name=d.name,
                    area=d.area_id,
                    desk_hours=_hours(d.occupied),
                    utilisation_pct=round(d.utilisation_pct, 2),
                )
                for d in occupancy.desks
            ]
        else:
            rows = [
                AreaUsageOut(
                    area_id=a.area_id,
                    name=a.name,
                    desks=a.desks,
                    desk_hours=_hours(a.occupied),
                    utilisation_pct=round(a.utilisation_pct, 2),
                    peak_occupancy=a.peak.count,
                    peak_at=a.peak.at,
                )
                for a in occupancy.areas
            ]
        summary = _occupancy_summary(zone, period_hours, occupancy)
    return UsageReportOut(
        since=period.since,
        until=period.until,
        site=site,
        group_by=group_by,
        rows=rows,
        summary=summary,
    )


def _occupancy_summary(
    zone: str, period_hours: float, occupancy: reports.OccupancyReport
) -> OccupancySummaryOut:
    return OccupancySummaryOut(
        timezone=zone,
        period_hours=period_hours,
        desks=len(occupancy.desks),
        desk_hours=_hours(occupancy.occupied),
        utilisation_pct=round(occupancy.utilisation_pct, 2),
        peak_occupancy=occupancy.peak.count,
        peak_at=occupancy.peak.at,
    )


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(report: UsageReportOut) -> Response:
    """Write the report's rows as CSV, one header row first, as an attachment."""
    fields = _ROW_MODELS[report.group_by].model_fields
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields))
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: _cell(v) for k, v in row.model_dump(mode="json").items()})
    stamp = "%Y%m%dT%H%M%SZ"
    name = (
        f"usage-{report.group_by}-{report.since.astimezone(UTC):{stamp}}"
        f"-{report.until.astimezone(UTC):{stamp}}.csv"
    )
    return Response(
        out.getvalue(),
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _wants_csv(request: Request) -> bool:
    accepted = request.headers.get("accept", "").split(",")
    return any(media.split(";")[0].strip().lower() == CSV for media in accepted)


@router.get(
    "/usage",
    response_model=UsageReportOut,
    responses={
        200: {
            "description": "The report as JSON, or its rows as CSV",
            "content": {CSV: {"schema": {"type": "string"}}},
        }
    },
)
def usage_report(
    request: Request,
    session: SessionDep,
    _: ReaderDep,
    since: Annotated[
        Instant | None, Query(description="Start of the period; 30 days before until if left out")
    ] = None,
    until: Annotated[Instant | None, Query(description="End (exclusive); now if left out")] = None,
    group_by: Annotated[GroupBy, Query(description="One row per member, desk or area")] = "member",
    output: Annotated[
        Literal["json", "csv"] | None,
        Query(alias="format", description="json or csv; without it, the Accept header decides"),
    ] = None,
    session_timeout_hours: Annotated[
        float,
        Query(
            ge=0.25,
            le=24,
            allow_inf_nan=False,
            description="A session with no tap-out ends this long after the last tap",
        ),
    ] = reports.DEFAULT_SESSION_TIMEOUT / reports.HOUR,
    site: Annotated[
        str | None,
        Query(
            pattern=ID_PATTERN,
            description="One site only, in its time zone; every site if left out",
        ),
    ] = None,
) -> UsageReportOut | Response:
    """Report hours present, desk hours, utilisation and peak occupancy over a period."""
    try:
        period = reports.period_of(since, until, datetime.now(UTC))
    except ReportError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"type": "value_error", "loc": ["query", exc.field], "msg": exc.message}],
        ) from None
    where = session.get(Site, site) if site is not None else None
    if site is not None and where is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"type": "value_error", "loc": ["query", "site"], "msg": f"no site {site!r}"}],
        )
    log = reports.load_usage_log(session, period, where)
    report = _report(log, period, group_by, timedelta(hours=session_timeout_hours), site)
    if output == "csv" or (output is None and _wants_csv(request)):
        return _csv(report)
    return report
