"""What a token's jurisdiction lets it see: the station it names and every station under it.

A token without a jurisdiction (an admin, a national desk) sees everything. A command center or
dispatcher token for a Polres sees that Polres and its Polsek; one for the Polda sees them all.
"""
from __future__ import annotations

from fastapi import HTTPException, status

from services.intake.domain import UNLOCATED
from services.intake.setup import jurisdictions
from spkt.settings import Settings

from .auth import Principal

OUT_OF_SCOPE = "Di luar wilayah hukum token Anda"
# An incident whose place is not known yet is everyone's until a dispatcher confirms it.
UNPLACED = (None, UNLOCATED)


def stations_within(settings: Settings, code: str | None) -> frozenset[str] | None:
    """The station codes at or under `code`; None means no limit."""
    if not code:
        return None
    boundaries = str(settings.boundaries_file) if settings.boundaries_file else None
    try:
        return jurisdictions(str(settings.city), boundaries).within(code)
    except KeyError:  # a code the city file does not know: only exactly that code
        return frozenset({code})


def visible_to(principal: Principal, settings: Settings | None = None) -> frozenset[str] | None:
    """The station codes this principal may see (None: everywhere)."""
    if principal.stations is not None or not principal.jurisdiction:
        return principal.stations
    return stations_within(settings, principal.jurisdiction) if settings else frozenset({principal.jurisdiction})


def in_scope(allowed: frozenset[str] | None, jurisdiction: str | None) -> bool:
    """Whether a thing of this jurisdiction is seen by these stations (None: everywhere)."""
    return allowed is None or jurisdiction in allowed or jurisdiction in UNPLACED


def check_in_scope(principal: Principal, jurisdiction: str | None) -> None:
    """403 when the thing's jurisdiction lies outside the token's."""
    if not in_scope(visible_to(principal), jurisdiction):
        raise HTTPException(status.HTTP_403_FORBIDDEN, OUT_OF_SCOPE)


def requested(principal: Principal, settings: Settings, jurisdiction: str | None) -> frozenset[str] | None:
    """The stations a read is limited to: those of a `jurisdiction=` asked for (403 when it reaches
    beyond the token's), else the token's own (None: no limit)."""
    allowed = visible_to(principal, settings)
    if not jurisdiction:
        return allowed
    wanted = stations_within(settings, jurisdiction)
    if allowed is not None and not wanted <= allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, OUT_OF_SCOPE)
    return wanted
