"""The unit board as the read model knows it (the dispatch issue adds the commands)."""
from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from services.projection import tables as t
from services.projection.projector import as_aware

from ..deps import BoardReader, SessionDep
from ..models import UnitOut, UnitsOut

router = APIRouter(prefix="/api/v1/units", tags=["units"])


@router.get("", response_model=UnitsOut)
def list_units(principal: BoardReader, session: SessionDep,
               status: str | None = Query(default=None, max_length=32)) -> UnitsOut:
    query = select(t.Unit).order_by(t.Unit.callsign)
    if status:
        query = query.filter_by(status=status)
    items = []
    for u in session.scalars(query):
        position = None
        if u.lat is not None:
            position = {"lat": u.lat, "lon": u.lon, "at": as_aware(u.position_at).isoformat()}
        items.append(UnitOut(unit_id=u.unit_id, callsign=u.callsign, kind=u.kind, station=u.station,
                             capabilities=u.capabilities, status=u.status, incident_id=u.incident_id,
                             position=position))
    return UnitsOut(items=items)
