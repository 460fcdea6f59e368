"""Units: the register, the status board, status changes, GPS positions and the panic button."""
from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from schemas import topics
from schemas.envelope import derived_id, utcnow
from schemas.events import (
    ChangeUnitStatus, Location, Reporter, ReportReceived, UnitPositionReported, UnitRegistered, UnitSignedIn,
    UnitSignedOut, UnitStatus,
)
from schemas.registry import make_event
from services.dispatch import lifecycle
from services.projection import tables as t
from services.projection.projector import as_aware

from .. import commands
from ..auth import Principal, Role
from ..scope import requested
from ..deps import Admin, BoardReader, PositionWriter, PublisherDep, SessionDep, SettingsDep, UnitActor
from ..models import (
    CommandPending, PanicAccepted, PanicIn, PositionAccepted, PositionIn, UnitIn, UnitOut, UnitsOut, UnitStatusIn,
    UnitSessionIn, UnitSessionOut, UnitStatusOut,
)
from services.intake.setup import area_of

from .reports import tracking_code

router = APIRouter(prefix="/api/v1/units", tags=["units"])
UNIT_NOT_FOUND = "Unit tidak ditemukan"
OWN_UNIT_ONLY = "Unit lapangan hanya dapat bertindak untuk unitnya sendiri"


def _own_unit(principal: Principal, unit_id: str) -> None:
    if principal.role is Role.field_unit and principal.unit_id != unit_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, OWN_UNIT_ONLY)


def _unit(session, unit_id: str) -> t.Unit:
    unit = session.get(t.Unit, unit_id)
    if unit is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, UNIT_NOT_FOUND)
    return unit


def units_in_scope(principal: Principal, settings, jurisdiction: str | None = None):
    """The units a token may see, optionally within a jurisdiction (a station and those under it)."""
    query = select(t.Unit)
    stations = requested(principal, settings, jurisdiction)
    return query if stations is None else query.where(t.Unit.jurisdiction.in_(sorted(stations)))


def unit_out(u: t.Unit, now, max_age_s: float) -> UnitOut:
    position = None
    stale = True
    if u.lat is not None:
        at = as_aware(u.position_at)
        position = {"lat": u.lat, "lon": u.lon, "at": at.isoformat()}
        stale = (now - at).total_seconds() > max_age_s
    return UnitOut(unit_id=u.unit_id, callsign=u.callsign, kind=u.kind, station=u.station,
                   capabilities=u.capabilities, status=u.status, incident_id=u.incident_id, position=position,
                   availability=lifecycle.PRIMARY.get(u.status, lifecycle.UNAVAILABLE),
                   status_since=as_aware(u.status_since), stale=stale, shift=_shift(u.shift_start_h, u.shift_end_h),
                   jurisdiction=u.jurisdiction, signed_in=u.signed_in)


def _shift(start_h: int | None, end_h: int | None) -> str | None:
    return f"{start_h:02d}-{end_h:02d}" if start_h is not None and end_h is not None else None


@router.get("", response_model=UnitsOut)
def list_units(principal: BoardReader, session: SessionDep, settings: SettingsDep,
               status: Annotated[UnitStatus | None, Query()] = None,
               jurisdiction: Annotated[str | None, Query(max_length=64)] = None) -> UnitsOut:
    """The status board: every unit with its status, availability, last position and whether it is stale."""
    query = units_in_scope(principal, settings, jurisdiction).order_by(t.Unit.callsign)
    if status:
        query = query.filter_by(status=status)
    now = utcnow()
    return UnitsOut(items=[unit_out(u, now, settings.position_max_age_s) for u in session.scalars(query)])


@router.post("", status_code=201, response_model=UnitOut, responses={503: {"description": "Broker unavailable"}})
async def register_unit(body: UnitIn, principal: Admin, publisher: PublisherDep, settings: SettingsDep) -> UnitOut:
    """Register a unit (or update its register entry: status and position are kept)."""
    now = utcnow()
    registered = UnitRegistered(unit_id=body.unit_id, callsign=body.callsign, kind=body.kind, station=body.station,
                                capabilities=body.capabilities, registered_at=now, shift_start_h=body.shift_start_h,
                                shift_end_h=body.shift_end_h, jurisdiction=body.jurisdiction, phone=body.phone,
                                email=body.email)
    await commands.publish(publisher, topics.UNIT_STATUS, make_event(registered, source="/spkt/api"))
    return UnitOut(unit_id=body.unit_id, callsign=body.callsign, kind=body.kind, station=body.station,
                   capabilities=body.capabilities, status="available", incident_id=None, position=None,
                   stale=True, shift=_shift(body.shift_start_h, body.shift_end_h), jurisdiction=body.jurisdiction)


@router.post("/{unit_id}/status", response_model=UnitStatusOut,
             responses={202: {"model": CommandPending}, 404: {"description": UNIT_NOT_FOUND},
                        409: {"description": "Illegal transition: names the current status and the allowed ones"}})
async def change_status(unit_id: str, body: UnitStatusIn, request: Request, principal: UnitActor,
                        session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                        idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Move a unit to another status; dispatch checks the transition table and answers 200 or 409."""
    _own_unit(principal, unit_id)
    _unit(session, unit_id)
    command_id = commands.command_id(principal, idempotency_key, "status", unit_id)
    command = ChangeUnitStatus(command_id=command_id, unit_id=unit_id, status=body.status,
                               incident_id=body.incident_id, requested_by=principal.sub, requested_at=utcnow(),
                               reason=body.reason)
    return await commands.publish_and_answer(request, publisher, settings, command, "unit.status-changed",
                          lambda part: UnitStatusOut(**part))


@router.post("/{unit_id}/position", status_code=202, response_model=PositionAccepted,
             responses={403: {"description": OWN_UNIT_ONLY}, 503: {"description": "Broker unavailable"}})
async def report_position(unit_id: str, body: PositionIn, principal: PositionWriter,
                          publisher: PublisherDep) -> PositionAccepted:
    """A GPS fix from the unit's phone (trackers may publish to Kafka directly)."""
    _own_unit(principal, unit_id)
    now = utcnow()
    at = body.at or now
    if at - now > timedelta(minutes=5):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            [{"loc": ["body", "at"], "msg": "waktu posisi lebih dari 5 menit di masa depan",
                              "type": "value_error"}])
    event = UnitPositionReported(unit_id=unit_id, lat=body.lat, lon=body.lon, at=at, speed_kmh=body.speed_kmh,
                                 heading=body.heading)
    await commands.publish(publisher, topics.UNIT_POSITIONS, make_event(event, source="/spkt/api"))
    return PositionAccepted(unit_id=unit_id)


async def _sign(unit_id: str, body: UnitSessionIn, principal: Principal, session, publisher, signed_in: bool) -> UnitSessionOut:
    _own_unit(principal, unit_id)
    _unit(session, unit_id)
    kind = UnitSignedIn if signed_in else UnitSignedOut
    event = kind(unit_id=unit_id, at=utcnow(), by=principal.sub, device=body.device)
    await commands.publish(publisher, topics.UNIT_STATUS, make_event(event, source="/spkt/api"))
    return UnitSessionOut(unit_id=unit_id, signed_in=signed_in)


@router.post("/{unit_id}/sign-in", status_code=202, response_model=UnitSessionOut,
             responses={403: {"description": OWN_UNIT_ONLY}, 404: {"description": UNIT_NOT_FOUND}})
async def sign_in(unit_id: str, body: UnitSessionIn, principal: UnitActor, session: SessionDep,
                  publisher: PublisherDep) -> UnitSessionOut:
    """The crew signed in on the field app: assignments are sent to the unit's phone again."""
    return await _sign(unit_id, body, principal, session, publisher, True)


@router.post("/{unit_id}/sign-out", status_code=202, response_model=UnitSessionOut,
             responses={403: {"description": OWN_UNIT_ONLY}, 404: {"description": UNIT_NOT_FOUND}})
async def sign_out(unit_id: str, body: UnitSessionIn, principal: UnitActor, session: SessionDep,
                   publisher: PublisherDep) -> UnitSessionOut:
    """The crew signed out of the field app: no alerts go to it there (its status is unchanged;
    a dispatcher reaches it by radio)."""
    return await _sign(unit_id, body, principal, session, publisher, False)


@router.post("/{unit_id}/panic", status_code=202, response_model=PanicAccepted,
             responses={403: {"description": OWN_UNIT_ONLY}, 404: {"description": UNIT_NOT_FOUND},
                        409: {"description": "No position known for the unit"}})
async def panic(unit_id: str, body: PanicIn, principal: UnitActor, session: SessionDep,
                publisher: PublisherDep, settings: SettingsDep) -> JSONResponse:
    """The panic button: a P1 incident at the unit's position; dispatch recommends the nearest backup at once."""
    _own_unit(principal, unit_id)
    unit = _unit(session, unit_id)
    lat, lon = (body.lat, body.lon) if body.lat is not None and body.lon is not None else (unit.lat, unit.lon)
    if lat is None or lon is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "Posisi unit belum diketahui; kirim lat dan lon")
    now = utcnow()
    report_id = derived_id("panic", unit_id, now.isoformat())
    description = f"TOMBOL PANIK: anggota dalam bahaya, unit {unit.callsign} meminta bantuan segera"
    if body.note:
        description += f". {body.note}"
    location = Location(lat=lat, lon=lon)
    area = area_of(settings, location, fallback=unit.jurisdiction or principal.jurisdiction)
    report = ReportReceived(report_id=report_id, tracking_code=tracking_code(report_id), channel="patrol",
                            reporter=Reporter(name=unit.callsign), description=description,
                            category="officer_emergency", location=location, area=area,
                            received_at=now, received_by=principal.sub, panic_unit_id=unit_id)
    event = make_event(report, source="/spkt/api", event_id=derived_id("report.received", report_id))
    await commands.publish(publisher, topics.REPORTS, event, key=area)
    body_out = PanicAccepted(report_id=report_id, tracking_code=report.tracking_code)
    return JSONResponse(body_out.model_dump(), status_code=202, headers={"Location": f"/api/v1/reports/{report_id}"})
