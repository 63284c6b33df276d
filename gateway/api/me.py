"""A member's own page: the profile and board consent they set through a link an admin sends.

The link is ``<VARCO_PUBLIC_URL>/me#<token>``: the token rides in the URL's fragment, which a
browser never sends, so it reaches no access log and no proxy; the page sends it as a bearer
token to ``/me/profile``. It expires within hours (at most a week), and a new link for the
same member replaces the old one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import AdminDep, GatewayDep, SessionDep
from gateway.api.fields import found, path_id
from gateway.api.intake import INVALID_TOKEN, MISSING_TOKEN
from gateway.api.live import WEB
from gateway.api.members import ProfileIn, ProfileOut, apply_profile, profile_of
from gateway.store import profile_links
from gateway.store.models import Member

router = APIRouter(tags=["members"])
_link = HTTPBearer(auto_error=False, description="A member's profile link token, `vm_...`")
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "No link token, or one that is invalid or expired"}
}
VIA = "profile link"


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_in_hours: Annotated[
        int,
        Field(
            ge=1,
            le=int(profile_links.MAX_LIFETIME / timedelta(hours=1)),
            strict=True,
            description="How long the link works",
        ),
    ] = int(profile_links.DEFAULT_LIFETIME / timedelta(hours=1))


class LinkOut(BaseModel):
    url: str = Field(
        description="Send it to the member: it opens their page. Shown only in this answer; "
        "a new link replaces it"
    )
    expires_at: datetime


class MyProfileOut(ProfileOut):
    name: str = Field(description="The member's name, as the space has it")


@router.post("/members/{member_id}/profile-link", response_model=LinkOut)
def create_profile_link(
    member_id: Annotated[int, path_id("member")],
    body: LinkIn,
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> LinkOut:
    """Make a link for a member to set their own profile and board consent; send it to them."""
    found(session.get(Member, member_id), f"member {member_id}")
    token, expires_at = profile_links.issue(
        session, member_id, timedelta(hours=body.expires_in_hours)
    )
    session.commit()
    base = (gateway.settings.public_url or "").rstrip("/")
    return LinkOut(url=f"{base}/me#{token}", expires_at=expires_at)


def get_member(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_link)],
) -> Member:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, MISSING_TOKEN, headers={"WWW-Authenticate": "Bearer"}
        )
    member = profile_links.member_of(session, credentials.credentials)
    if member is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, INVALID_TOKEN, headers={"WWW-Authenticate": "Bearer"}
        )
    return member


MemberDep = Annotated[Member, Depends(get_member)]


def _mine(member: Member) -> MyProfileOut:
    return MyProfileOut(name=member.name, **profile_of(member).model_dump())


@router.get("/me/profile", response_model=MyProfileOut, responses=UNAUTHORIZED)
def get_my_profile(member: MemberDep) -> MyProfileOut:
    """Show the profile of the member whose link this is."""
    return _mine(member)


@router.put("/me/profile", response_model=MyProfileOut, responses=UNAUTHORIZED)
def set_my_profile(
    body: ProfileIn, member: MemberDep, session: SessionDep, gateway: GatewayDep
) -> MyProfileOut:
    """Set one's own profile; opting in to the board records the consent and its time."""
    apply_profile(member, body, via=VIA)
    session.commit()
    gateway.policy_changed()
    return _mine(member)


@router.get("/me", include_in_schema=False)
def page() -> FileResponse:
    """Serve a member's page; it reads its link token from the URL's fragment."""
    return FileResponse(
        WEB / "me.html",
        media_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
            # The page holds a token: no other site may frame it, nor learn where it was.
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
