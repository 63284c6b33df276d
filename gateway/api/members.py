"""Members: the people of the space, their plan and their standing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, IdentityDep, ReaderDep, SessionDep
from gateway.api.fields import Flag, IdFilter, Instant, Name, found, invalid, path_id
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.erasure import erase_member
from gateway.store.models import Badge, Member, MemberStatus, Plan
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/members", tags=["members"])

MemberName = Annotated[Name, Field(examples=["Ada Lovelace"])]
PlanId = Annotated[str, Field(pattern=ID_PATTERN, examples=["hot-desk"])]


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: MemberName
    email: Annotated[EmailStr | None, Field(examples=["ada@example.org"])] = None
    plan: PlanId
    status: MemberStatus = MemberStatus.ACTIVE
    valid_from: Annotated[Instant | None, Field(description="Membership starts")] = None
    valid_until: Annotated[Instant | None, Field(description="Membership ends")] = None

    @model_validator(mode="after")
    def _a_period_that_ends_after_it_starts(self) -> MemberIn:
        _check_period(self.valid_from, self.valid_until)
        return self


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: MemberName | None = None
    plan: PlanId | None = None
    status: Annotated[MemberStatus | None, Field(examples=["suspended"])] = None
    valid_from: Instant | None = None
    valid_until: Instant | None = None


class MemberOut(BaseModel):
    id: int
    name: str
    email: str | None
    plan: str
    status: MemberStatus
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, m: Member) -> MemberOut:
        return cls(
            id=m.id,
            name=m.name,
            email=m.email,
            plan=m.plan_id,
            status=m.status,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            created_at=m.created_at,
        )


def _check_period(valid_from: datetime | None, valid_until: datetime | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")


def _check_plan(session: SessionDep, plan: str) -> None:
    if session.get(Plan, plan) is None:
        raise invalid("plan", f"no plan {plan!r}")


def _get(session: SessionDep, member_id: int) -> Member:
    return found(session.get(Member, member_id), f"member {member_id}")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MemberOut)
def create_member(
    body: MemberIn, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> MemberOut:
    """Create a member on a plan."""
    _check_plan(session, body.plan)
    if body.email and session.scalar(select(Member.id).where(Member.email == body.email)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"email {body.email!r} already in use")
    member = Member(
        name=body.name,
        email=body.email,
        plan_id=body.plan,
        status=body.status,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    session.add(member)
    session.commit()
    gateway.policy_changed()
    return MemberOut.of(member)


@router.get("", response_model=Page[MemberOut])
def list_members(
    session: SessionDep,
    page: PageDep,
    _: ReaderDep,
    member_status: Annotated[MemberStatus | None, Query(alias="status")] = None,
    plan: IdFilter = None,
) -> Page[MemberOut]:
    """List members, optionally by status or plan."""
    query = select(Member).order_by(Member.id)
    if member_status is not None:
        query = query.where(Member.status == member_status)
    if plan is not None:
        query = query.where(Member.plan_id == plan)
    return paginate(session, query, page, MemberOut.of)


@router.get("/{member_id}", response_model=MemberOut)
def get_member(
    member_id: Annotated[int, path_id("member")], session: SessionDep, _: ReaderDep
) -> MemberOut:
    """Show one member."""
    return MemberOut.of(_get(session, member_id))


@router.patch("/{member_id}", response_model=MemberOut)
def update_member(
    member_id: Annotated[int, path_id("member")],
    body: MemberPatch,
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> MemberOut:
    """Change a member's name, plan or status (suspend, reinstate)."""
    member = _get(session, member_id)
    if body.plan is not None:
        _check_plan(session, body.plan)
        member.plan_id = body.plan
    if body.name is not None:
        member.name = body.name
    if body.status is not None:
        member.status = body.status
    fields = body.model_fields_set
    if "valid_from" in fields:
        member.valid_from = body.valid_from
    if "valid_until" in fields:
        member.valid_until = body.valid_until
    try:
        _check_period(member.valid_from, member.valid_until)
    except ValueError as exc:
        raise invalid("valid_until", f"{exc}") from None
    session.commit()
    gateway.policy_changed()
    return MemberOut.of(member)


@router.delete("/{member_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_member(
    member_id: Annotated[int, path_id("member")],
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> None:
    """Delete a member and their badges; the access log keeps their taps as they were.

    Guest passes they host stay valid, with no host. To forget who they were as well, erase
    them instead (``POST /members/{id}/erase``).
    """
    member = _get(session, member_id)
    # One by one, so that each badge is audited and leaves the doors' allow-lists.
    for badge in session.scalars(select(Badge).where(Badge.member_id == member_id)):
        session.delete(badge)
    session.delete(member)
    session.commit()
    gateway.policy_changed()


class ErasedOut(BaseModel):
    member_id: int
    pseudonym: int = Field(
        description="The member_id their taps now carry in the access log: the same for all "
        "of them, so reports count them as before, and linked to no one"
    )
    badges: int = Field(description="Badges deleted")
    access_events: int = Field(description="Taps kept under the pseudonym, their UID removed")
    audit_entries: int = Field(description="Audit entries that keep what changed, not values")


@router.post("/{member_id}/erase", response_model=ErasedOut)
def erase(
    member_id: Annotated[int, path_id("member")],
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> ErasedOut:
    """Erase a member (the right to erasure): their identity leaves the access and audit logs.

    The member, their badges and profile are deleted; their taps stay under a pseudonym with
    the badge UID removed, so usage reports keep their totals; the audit log keeps which
    fields changed and when, not the values. It cannot be undone.
    """
    erased = erase_member(session, _get(session, member_id))
    session.commit()
    gateway.policy_changed()
    return ErasedOut(
        member_id=erased.member_id,
        pseudonym=erased.pseudonym,
        badges=erased.badges,
        access_events=erased.access_events,
        audit_entries=erased.audit_entries,
    )


class ProfileIn(BaseModel):
    """What a member chose to share on the "who's in" board; nothing shows without opt_in."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "opt_in": True,
                    "display_name": "Ada",
                    "profession": "Accountant",
                    "skills": ["VAT", "start-up budgets"],
                    "ask_me_about": "Invoicing abroad",
                }
            ]
        },
    )
    opt_in: Flag = False
    display_name: Name | None = None
    profession: Name | None = None
    skills: Annotated[list[Annotated[Name, Field(max_length=60)]], Field(max_length=20)] = []
    ask_me_about: Annotated[Name, Field(max_length=280)] | None = None

    @model_validator(mode="after")
    def _a_name_to_show(self) -> ProfileIn:
        if self.opt_in and not self.display_name:
            raise ValueError("display_name: a member on the board needs a name to show")
        return self


class ProfileOut(ProfileIn):
    model_config = ConfigDict(extra="forbid")
    consent_at: datetime | None = Field(
        default=None, description="When the member consented to appear on the board"
    )
    consent_via: str | None = Field(
        default=None,
        description="How: 'profile link' (the member, through a link an admin sent) or "
        "'admin <name>' (an admin recorded it)",
    )


def profile_of(member: Member) -> ProfileOut:
    """Describe ``member``'s board profile, with their consent."""
    return ProfileOut(
        opt_in=member.board_opt_in,
        display_name=member.display_name,
        profession=member.profession,
        skills=list(member.skills or []),
        ask_me_about=member.ask_me_about,
        consent_at=member.board_consent_at,
        consent_via=member.board_consent_via,
    )


def apply_profile(member: Member, body: ProfileIn, via: str) -> None:
    """Set ``member``'s profile; keep when and how they consented to the board, if they did."""
    if body.opt_in and not member.board_opt_in:
        member.board_consent_at = datetime.now(UTC)
        member.board_consent_via = via
    elif not body.opt_in:
        member.board_consent_at = member.board_consent_via = None  # consent withdrawn
    member.board_opt_in = body.opt_in
    member.display_name = body.display_name
    member.profession = body.profession
    member.skills = list(body.skills)
    member.ask_me_about = body.ask_me_about


@router.get("/{member_id}/profile", response_model=ProfileOut)
def get_profile(
    member_id: Annotated[int, path_id("member")], session: SessionDep, _: ReaderDep
) -> ProfileOut:
    """Show a member's board profile, and when and how they consented to the board."""
    return profile_of(_get(session, member_id))


@router.put("/{member_id}/profile", response_model=ProfileOut)
def set_profile(
    member_id: Annotated[int, path_id("member")],
    body: ProfileIn,
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
    identity: IdentityDep,
) -> ProfileOut:
    """Set what a member shares on the board, and whether they appear at all (opt_in).

    An admin who turns opt_in on records the member's consent in their own name; a member
    can do it themselves through a profile link (``POST /members/{id}/profile-link``).
    """
    member = _get(session, member_id)
    apply_profile(member, body, via=f"admin {identity.name}")
    session.commit()
    gateway.policy_changed()
    return profile_of(member)
