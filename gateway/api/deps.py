"""Dependencies shared by the routers: the gateway, a SQL session, the caller and their role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from gateway.api.intake import INVALID_TOKEN, MISSING_TOKEN
from gateway.service import Gateway
from gateway.store import audit
from gateway.store.models import Role
from gateway.store.tokens import Identity, identity_of

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


def get_identity(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Identity:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            MISSING_TOKEN,
            headers={"WWW-Authenticate": "Bearer"},
        )
    identity = identity_of(session, credentials.credentials)
    if identity is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            INVALID_TOKEN,
            headers={"WWW-Authenticate": "Bearer"},
        )
    # The request's session is the endpoint's too: whatever it changes is logged as this caller's.
    audit.set_actor(session, identity)
    return identity


def get_role(identity: Annotated[Identity, Depends(get_identity)]) -> Role:
    return identity.role


def require_admin(role: Annotated[Role, Depends(get_role)]) -> Role:
    if role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {role.value!r} may not do this")
    return role


def require_operator(role: Annotated[Role, Depends(get_role)]) -> Role:
    if role not in (Role.ADMIN, Role.OPERATOR):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {role.value!r} may not do this")
    return role


IdentityDep = Annotated[Identity, Depends(get_identity)]
ReaderDep = Annotated[Role, Depends(get_role)]
OperatorDep = Annotated[Role, Depends(require_operator)]
AdminDep = Annotated[Role, Depends(require_admin)]
