"""Dependencies shared by the routers: the gateway, a SQL session, the caller's role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from gateway.service import Gateway
from gateway.store.models import Role
from gateway.store.tokens import role_of

_bearer = HTTPBearer(auto_error=False, description="An API token, e.g. `vk_...`")


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def get_session(gateway: GatewayDep) -> Iterator[Session]:
    # Writes commit explicitly in the endpoint, before the policy is rebuilt.
    with gateway.store.new_session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_role(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Role:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    role = role_of(session, credentials.credentials)
    if role is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return role


def require_admin(role: Annotated[Role, Depends(get_role)]) -> Role:
    if role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {role.value!r} may not do this")
    return role


ReaderDep = Annotated[Role, Depends(get_role)]
AdminDep = Annotated[Role, Depends(require_admin)]
