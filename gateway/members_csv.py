"""Members and their badges as CSV: an import checked whole before anything is written, and
an export a spreadsheet opens safely.

An import names every row's problem at once (the line, the column, why), so an admin fixes the
file in one go; a file with any problem changes nothing. A dry run reports the same, and
changes nothing either way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.badge_ids import warnings_for
from gateway.store.models import Badge, Door, Member, Plan

COLUMNS = ("name", "email", "plan", "status", "valid_from", "valid_until", "badges")
REQUIRED = ("name", "plan")
EXPORT_COLUMNS = ("id", *COLUMNS)
MAX_ROWS = 20_000
# A cell a spreadsheet would run as a formula (CSV injection): exported with a leading quote.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class CsvError(ValueError):
    """The file as a whole cannot be read (not CSV, no header, an unknown column)."""

    def __init__(self, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class Problem:
    line: int  # the file's line number, the header being line 1
    field: str
    message: str


@dataclass(slots=True)
class Checked:
    """What an import would do: the members to make (with their badges), and what is wrong."""

    members: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    rows: int = 0


def check(
    session: Session,
    text: str,
    member_model: type[BaseModel],
    badge_model: type[BaseModel],
) -> Checked:
    """Read and check every row of ``text``; raise ``CsvError`` if the file cannot be read.

    ``member_model`` and ``badge_model`` are the API's bodies, so a row is held to exactly
    what ``POST /members`` and ``POST /badges`` take.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise CsvError(str(exc)) from None
    if not header:
        raise CsvError(f"the file is empty: its first line names the columns, {', '.join(COLUMNS)}")
    # An export's id column is read and ignored: an import always makes new members.
    unknown = [name for name in header if name not in EXPORT_COLUMNS]
    if unknown:
        raise CsvError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are "
            f"{', '.join(COLUMNS)}"
        )
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise CsvError(f"missing column(s) {', '.join(missing)}")
    rows = _Rows(session, member_model, badge_model)
    checked = Checked()
    try:
        for row in reader:
            checked.rows += 1
            line = reader.line_num
            if checked.rows > MAX_ROWS:
                raise CsvError(f"more than {MAX_ROWS} rows: import them in parts", line)
            if None in row:
                checked.errors.append(Problem(line, "", "more cells than the header has columns"))
                continue
            rows.check(row, line, checked)
    except csv.Error as exc:
        raise CsvError(str(exc), reader.line_num) from None
    return checked


class _Rows:
    """Checks rows against the database, read once, and against the rows before them."""

    def __init__(
        self, session: Session, member_model: type[BaseModel], badge_model: type[BaseModel]
    ) -> None:
        self._member_model = member_model
        self._badge_model = badge_model
        self._plans = set(session.scalars(select(Plan.id)))
        self._emails = {e.lower() for e in session.scalars(select(Member.email)) if e}
        self._issued = set(session.scalars(select(Badge.uid)))
        self._readers = {
            door: kind for door, kind in session.execute(select(Door.id, Door.reader_kind))
        }
        self._seen_emails: dict[str, int] = {}
        self._seen_uids: dict[str, int] = {}

    def check(self, row: Mapping[str, str | None], line: int, checked: Checked) -> None:
        """Check one row; add its member, or its problems, to ``checked``."""
        errors: list[Problem] = []
        body = {
            key: value.strip()
            for key, value in row.items()
            if key not in ("badges", "id") and value and value.strip()
        }
        member = self._member(body, line, errors)
        self._email(body, line, errors)
        uids = self._badges(row.get("badges") or "", line, errors, checked)
        checked.errors += errors
        if not errors:
            checked.members.append((member, uids))

    def _member(self, body: dict[str, str], line: int, errors: list[Problem]) -> dict[str, Any]:
        member: dict[str, Any] = {}
        try:
            member = self._member_model.model_validate(body).model_dump()
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                where = ".".join(str(part) for part in error["loc"]) or "row"
                errors.append(Problem(line, where, str(error["msg"])))
        plan = body.get("plan")
        if plan and plan not in self._plans:
            errors.append(Problem(line, "plan", f"no plan {plan!r}"))
        return member

    def _email(self, body: dict[str, str], line: int, errors: list[Problem]) -> None:
        email = (body.get("email") or "").lower()
        if not email:
            return
        if email in self._emails:
            errors.append(Problem(line, "email", f"{body['email']!r} is already a member's"))
        elif email in self._seen_emails:
            first = self._seen_emails[email]
            errors.append(Problem(line, "email", f"{body['email']!r} is on line {first} too"))
        else:
            self._seen_emails[email] = line

    def _badges(self, cell: str, line: int, errors: list[Problem], checked: Checked) -> list[str]:
        uids: list[str] = []
        for raw in cell.replace(";", " ").split():
            try:
                body = self._badge_model.model_validate({"uid": raw, "member_id": 1})
            except ValidationError:
                errors.append(Problem(line, "badges", f"{raw!r} is not a UID: 4-64 hex digits"))
                continue
            uid = str(body.model_dump()["uid"])
            if uid in self._issued:
                errors.append(Problem(line, "badges", f"badge {uid} is already issued"))
            elif uid in self._seen_uids:
                first = self._seen_uids[uid]
                errors.append(Problem(line, "badges", f"badge {uid} is on line {first} too"))
            else:
                self._seen_uids[uid] = line
                uids.append(uid)
                warnings = warnings_for(uid, self._readers)
                checked.warnings += [Problem(line, "badges", w) for w in warnings]
        return uids


def write(session: Session, checked: Checked) -> tuple[int, int]:
    """Add the checked members and badges to ``session``; return how many of each."""
    badges = 0
    for values, uids in checked.members:
        member = Member(
            name=values["name"],
            email=values.get("email"),
            plan_id=values["plan"],
            status=values["status"],
            valid_from=values.get("valid_from"),
            valid_until=values.get("valid_until"),
        )
        session.add(member)
        session.flush()
        session.add_all(Badge(uid=uid, member_id=member.id, active=True) for uid in uids)
        badges += len(uids)
    return len(checked.members), badges


def export(members: Iterable[Member], badges: Mapping[int, Sequence[str]]) -> str:
    """Write ``members`` with their badges' UIDs as CSV, in the columns an import reads."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for m in members:
        writer.writerow(
            _safe(value)
            for value in (
                m.id,
                m.name,
                m.email or "",
                m.plan_id,
                m.status.value,
                _time(m.valid_from),
                _time(m.valid_until),
                " ".join(badges.get(m.id, ())),
            )
        )
    return out.getvalue()


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def _safe(value: object) -> str:
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA) else text
