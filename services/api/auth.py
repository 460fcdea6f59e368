"""Signed JWT bearer tokens carrying role, unit and jurisdiction (API.md: Authentication and roles)."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Annotated, Callable

import jwt
from fastapi import Depends, HTTPException, Request, status
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


# Tokens already verified, (key, token) -> (principal, expiry): a console sends the same token
# with every request, and checking its signature and claims again was ~8 % of an incident read.
# What a token says cannot change; only its expiry is checked again.
_VERIFIED: dict[tuple, tuple[Principal, float]] = {}
VERIFIED_KEPT = 10_000


def verify(settings: Settings, token: str) -> Principal:
    """The token's principal; ValueError with the reason when it is not valid."""
    key = (settings.signing_key(), token)
    known = _VERIFIED.get(key)
    if known is not None and time.time() < known[1]:
        return known[0]
    try:
        claims = jwt.decode(token, key[0], algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub", "iss"]})
        principal = Principal(sub=claims["sub"], role=Role(claims.get("role")), unit_id=claims.get("unit_id"),
                              jurisdiction=claims.get("jurisdiction"))
        expires = float(claims["exp"])
    except jwt.ExpiredSignatureError:
        raise ValueError("token expired") from None
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid token: {exc}") from None
    if len(_VERIFIED) >= VERIFIED_KEPT:
        _VERIFIED.clear()  # the tokens in use come back at once
    _VERIFIED[key] = (principal, expires)
    return principal


async def app_settings(request: Request) -> Settings:
    """The settings the app was made with (create_app keeps them on app.state), else the process's.

    Not FastAPI's dependency_overrides: with any override in place FastAPI inspects every
    dependency's signature again on every request."""
    settings = getattr(request.app.state, "settings", None)
    if settings is not None:
        return settings
    provider = request.app.dependency_overrides.get(get_settings, get_settings)
    return provider()


_bearer = HTTPBearer(auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


# The dependencies here and in deps.py are `async def`: they only compute, and FastAPI runs a plain
# `def` dependency in the thread pool, a hand-over that costs more than the work (an incident
# read made seven of them; it now makes one, for the route itself).
async def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: Annotated[Settings, Depends(app_settings)],
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

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"Peran {principal.role.value} tidak diizinkan; yang diizinkan: "
                                + ", ".join(sorted(r.value for r in allowed)))
        return principal

    dependency.allowed_roles = allowed  # read by the test that every endpoint declares its roles
    return dependency
