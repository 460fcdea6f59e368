"""Signed JWT bearer tokens carrying role, unit and jurisdiction (API.md: Authentication and roles)."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Annotated, Callable

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from spkt.settings import Settings, get_settings

ALGORITHM = "HS256"
ISSUER = "spkt-dispatch"


class Role(str, Enum):
    call_taker = "call_taker"
    dispatcher = "dispatcher"
    field_unit = "field_unit"
    supervisor = "supervisor"
    command_center = "command_center"
    admin = "admin"


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    unit_id: str | None = None
    jurisdiction: str | None = None
    stations: frozenset[str] | None = None
    """The station codes the token's jurisdiction covers (None: everywhere); set by the API."""


def mint(settings: Settings, *, sub: str, role: Role, unit_id: str | None = None,
         jurisdiction: str | None = None, ttl_s: int | None = None) -> str:
    if role is Role.field_unit and not unit_id:
        raise ValueError("a field_unit token needs its unit_id")
    now = int(time.time())
    claims = {"sub": sub, "role": role.value, "iss": ISSUER, "iat": now,
              "exp": now + (ttl_s if ttl_s is not None else settings.token_ttl_s)}
    if unit_id:
        claims["unit_id"] = unit_id
    if jurisdiction:
        claims["jurisdiction"] = jurisdiction
    return jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM)


def verify(settings: Settings, token: str) -> Principal:
    """The token's principal; ValueError with the reason when it is not valid."""
    try:
        claims = jwt.decode(token, settings.signing_key(), algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub", "iss"]})
        return Principal(sub=claims["sub"], role=Role(claims.get("role")), unit_id=claims.get("unit_id"),
                         jurisdiction=claims.get("jurisdiction"))
    except jwt.ExpiredSignatureError:
        raise ValueError("token expired") from None
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise ValueError(f"invalid token: {exc}") from None


_bearer = HTTPBearer(auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Token tidak ada: kirim Authorization: Bearer <token>",
                            headers=_CHALLENGE)
    try:
        principal = verify(settings, credentials.credentials)
    except ValueError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"Token tidak sah ({exc})", headers=_CHALLENGE) from None
    from .scope import stations_within  # scope reads the city file; auth stays importable without it
    return replace(principal, stations=stations_within(settings, principal.jurisdiction))


def allow(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only these roles (403 for any other valid token)."""
    allowed = frozenset(roles)

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"Peran {principal.role.value} tidak diizinkan; yang diizinkan: "
                                + ", ".join(sorted(r.value for r in allowed)))
        return principal

    dependency.allowed_roles = allowed  # read by the test that every endpoint declares its roles
    return dependency
