"""API tokens: admins create them (shown once), list them (never the token) and revoke them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, SessionDep
from gateway.api.fields import Name, path_id
from gateway.api.pages import Page, PageDep, paginate
from gateway.store import tokens
from gateway.store.models import ApiToken, Role

router = APIRouter(prefix="/tokens", tags=["API tokens"])


class TokenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "front desk", "role": "operator"}]},
    )
    name: Name
    role: Role
    expires_in_days: Annotated[
        int,
        Field(
            ge=1,
            le=tokens.MAX_LIFETIME_DAYS,
            strict=True,
            description="How long the token is valid, in days",
        ),
    ] = tokens.DEFAULT_LIFETIME.days


class TokenOut(BaseModel):
    """A token as listed: never the token itself, nor its hash."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime
    revoked: bool


class TokenCreated(TokenOut):
    token: str = Field(description="The token; it is shown only now")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(body: TokenIn, session: SessionDep, _: AdminDep) -> TokenCreated:
    """Create an API token; the answer carries it, and nothing will show it again."""
    row, token = tokens.issue(
        session, name=body.name, role=body.role, lifetime=timedelta(days=body.expires_in_days)
    )
    session.commit()
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=token)


@router.get("", response_model=Page[TokenOut])
def list_tokens(session: SessionDep, page: PageDep, _: AdminDep) -> Page[TokenOut]:
    """List API tokens, oldest first, with their role, expiry and whether they are revoked."""
    query = select(ApiToken).order_by(ApiToken.id)
    return paginate(session, query, page, TokenOut.model_validate)


@router.delete("/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: Annotated[int, path_id("token")], session: SessionDep, _: AdminDep
) -> TokenOut:
    """Revoke an API token: it is refused (401) from the next request on."""
    try:
        row = tokens.revoke(session, token_id)
    except tokens.UnknownTokenError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except tokens.TokenRevokedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    session.commit()
    return TokenOut.model_validate(row)
