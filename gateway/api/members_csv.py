"""Members and badges in bulk: a CSV import with a dry run, and a CSV export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import select

from gateway import members_csv
from gateway.api.badges import BadgeIn
from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import masked_uid
from gateway.api.members import MemberIn
from gateway.store.models import Badge, Member, Role

router = APIRouter(prefix="/members", tags=["members"])

EXAMPLE = (
    "name,email,plan,status,valid_from,valid_until,badges\r\n"
    "Ada Lovelace,ada@example.org,private-office,active,,,04A1B2C3D4\r\n"
    "Grace Hopper,,hot-desk,active,2026-12-01T00:00:00+01:00,,04B2C3D4E5 04F6A7B8C9\r\n"
)


class RowProblem(BaseModel):
    line: int
    field: str
    message: str


class ImportReport(BaseModel):
    dry_run: bool
    rows: int
    members: int
    badges: int
    errors: list[RowProblem]
    warnings: list[RowProblem]


def invalid_body(message: str) -> HTTPException:
    """A 422 about the body as a whole, in FastAPI's own shape."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"type": "value_error", "loc": ["body"], "msg": message}],
    )


async def csv_text(request: Request) -> str:
    """The request's body as text: UTF-8 CSV, a byte-order mark allowed (spreadsheets add it)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "text/csv":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the file as Content-Type: text/csv"
        )
    body = await request.body()
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 (byte {exc.start}); save it as CSV UTF-8"
        raise invalid_body(message) from None


@router.post(
    "/import",
    response_model=ImportReport,
    responses={
        415: {"description": "The body is not text/csv"},
        422: {
            "description": "Rows with problems, or a file that cannot be read: nothing was "
            "changed (a report); or a query parameter that is not valid",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/ImportReport"},
                            {"$ref": "#/components/schemas/HTTPValidationError"},
                        ]
                    }
                }
            },
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": EXAMPLE}},
        }
    },
)
def import_members(
    _: AdminDep,  # first: who asks is checked before the body is read
    text: Annotated[str, Depends(csv_text)],
    session: SessionDep,
    gateway: GatewayDep,
    dry_run: Annotated[
        bool, Query(description="Check every row and report; change nothing")
    ] = False,
) -> Any:
    """Import members and their badges from CSV (columns: name, email, plan, status,
    valid_from, valid_until, badges; badges separated by spaces).

    Every row is checked first, as ``POST /members`` and ``POST /badges`` would check it, and
    each problem is reported with its line and column. A file with any problem changes
    nothing (422, with the report). A dry run answers 200 with the same report, and changes
    nothing whatever it finds; ``members`` and ``badges`` say what the import would make.
    Warnings (a badge a door's reader never sends) do not stop an import.
    """
    try:
        checked = members_csv.check(session, text, MemberIn, BadgeIn)
    except members_csv.CsvError as exc:
        # The file as a whole: reported as its first line's problem, in the same shape.
        checked = members_csv.Checked(errors=[members_csv.Problem(exc.line, "file", str(exc))])
    members = len(checked.members)
    badges = sum(len(uids) for _, uids in checked.members)
    if not dry_run and not checked.errors:
        members, badges = members_csv.write(session, checked)
        session.commit()
        gateway.policy_changed()
    report = ImportReport(
        dry_run=dry_run,
        rows=checked.rows,
        members=members if not checked.errors else 0,
        badges=badges if not checked.errors else 0,
        errors=[RowProblem(line=p.line, field=p.field, message=p.message) for p in checked.errors],
        warnings=[
            RowProblem(line=p.line, field=p.field, message=p.message) for p in checked.warnings
        ],
    )
    if checked.errors and not dry_run:
        return JSONResponse(report.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return report


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"example": EXAMPLE}}}},
)
def export_members(session: SessionDep, role: ReaderDep) -> Response:
    """Export every member with their badges as CSV, in the columns an import reads (and id).

    To a viewer, badge UIDs show their last four digits only, as everywhere.
    """
    members = session.scalars(select(Member).order_by(Member.id)).all()
    badges: dict[int, list[str]] = {}
    for uid, member_id in session.execute(select(Badge.uid, Badge.member_id).order_by(Badge.id)):
        badges.setdefault(member_id, []).append(uid if role is not Role.VIEWER else masked_uid(uid))
    return Response(
        members_csv.export(members, badges),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="members.csv"'},
    )
