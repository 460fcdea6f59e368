"""Turjawali duties: pengaturan, penjagaan, pengawalan, patroli; a guard's check-ins.

Duties are facts the dispatcher records (no decision to wait for): the API checks the units and
the incident against the read model and publishes them on spkt.turjawali, keyed by duty. Dispatch
reads them (a unit on a duty is conditionally available) and the tkp worker watches check-ins.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, status
from sqlalchemy import select

from schemas import topics
from schemas.envelope import derived_id, utcnow
from schemas.events import DutyAssigned, DutyCheckedIn, DutyCompleted, GeoPoint
from schemas.registry import make_event
from services.projection import tables as t
from services.projection.projector import as_aware

from .. import commands
from ..auth import Role
from ..deps import BoardReader, Dispatcher, PublisherDep, SessionDep, UnitActor
from ..models import CheckInIn, DutyCreated, DutyIn, DutyOut

router = APIRouter(prefix="/api/v1/duties", tags=["duties"])
DUTY_NOT_FOUND = "Tugas turjawali tidak ditemukan"


def _duty_out(d: t.Duty) -> DutyOut:
    return DutyOut(duty_id=d.duty_id, kind=d.kind, unit_ids=d.unit_ids, incident_id=d.incident_id, area=d.area,
                   route=d.route, starts_at=as_aware(d.starts_at), ends_at=as_aware(d.ends_at),
                   check_in_every_min=d.check_in_every_min, status=d.status,
                   last_check_in_at=as_aware(d.last_check_in_at), missed_check_ins=d.missed_check_ins or 0)


@router.post("", status_code=201, response_model=DutyCreated,
             responses={404: {"description": "Unit or incident not found"}, 422: {"description": "Bad times"}})
async def assign_duty(body: DutyIn, principal: Dispatcher, session: SessionDep, publisher: PublisherDep,
                      idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> DutyCreated:
    """A duty for one or more units, attached to an incident or standalone (an escort for a permit)."""
    missing = [u for u in body.unit_ids if session.get(t.Unit, u) is None]
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Unit tidak ditemukan: {', '.join(missing)}")
    if body.incident_id and session.get(t.Incident, body.incident_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Kejadian tidak ditemukan")
    starts = body.starts_at or utcnow()
    if starts.tzinfo is None or (body.ends_at is not None and body.ends_at.tzinfo is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            [{"loc": ["body", "starts_at"], "type": "value_error",
                              "msg": "waktu harus menyertakan zona waktu, mis. 2026-11-28T10:00:00+07:00"}])
    if body.ends_at is not None and body.ends_at <= starts:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            [{"loc": ["body", "ends_at"], "type": "value_error",
                              "msg": "waktu selesai harus sesudah waktu mulai"}])
    command_id = commands.command_id(principal, idempotency_key, "duty")
    duty_id = "TJW-" + derived_id("duty", command_id)[:12].upper()
    event = DutyAssigned(duty_id=duty_id, kind=body.kind, unit_ids=body.unit_ids, incident_id=body.incident_id,
                         area=body.area, route=body.route, starts_at=starts, ends_at=body.ends_at,
                         check_in_every_min=body.check_in_every_min, assigned_by=principal.sub)
    await commands.publish(publisher, topics.TURJAWALI,
                           make_event(event, source="/spkt/api", event_id=derived_id("duty.assigned", duty_id)))
    return DutyCreated(duty_id=duty_id)


def _duty(session, duty_id: str) -> t.Duty:
    duty = session.get(t.Duty, duty_id)
    if duty is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, DUTY_NOT_FOUND)
    return duty


@router.post("/{duty_id}/check-in", status_code=202, responses={404: {"description": DUTY_NOT_FOUND},
                                                               403: {"description": "Not a unit of this duty"}})
async def check_in(duty_id: str, body: CheckInIn, principal: UnitActor, session: SessionDep,
                   publisher: PublisherDep) -> dict:
    """The guard (or escort) reports in: all is well at the post."""
    duty = _duty(session, duty_id)
    if body.unit_id not in duty.unit_ids or (principal.role is Role.field_unit and principal.unit_id != body.unit_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Unit ini tidak bertugas pada tugas turjawali tersebut")
    if duty.status != "active":
        raise HTTPException(status.HTTP_409_CONFLICT, "Tugas turjawali sudah selesai")
    event = DutyCheckedIn(duty_id=duty_id, unit_id=body.unit_id, at=utcnow(), note=body.note,
                          position=GeoPoint(**body.position.model_dump()) if body.position else None)
    await commands.publish(publisher, topics.TURJAWALI, make_event(event, source="/spkt/api"))
    return {"duty_id": duty_id, "status": "checked_in"}


@router.post("/{duty_id}/complete", status_code=202, responses={404: {"description": DUTY_NOT_FOUND}})
async def complete_duty(duty_id: str, principal: Dispatcher, session: SessionDep, publisher: PublisherDep) -> dict:
    """The duty is over: its units are fully available again."""
    duty = _duty(session, duty_id)
    event = DutyCompleted(duty_id=duty_id, unit_ids=list(duty.unit_ids), completed_by=principal.sub,
                          completed_at=utcnow())
    await commands.publish(publisher, topics.TURJAWALI,
                           make_event(event, source="/spkt/api", event_id=derived_id("duty.completed", duty_id)))
    return {"duty_id": duty_id, "status": "completed"}


@router.get("", response_model=list[DutyOut])
def list_duties(principal: BoardReader, session: SessionDep,
                incident_id: str | None = None) -> list[DutyOut]:
    query = select(t.Duty).order_by(t.Duty.starts_at.desc()).limit(500)
    if incident_id:
        query = query.filter_by(incident_id=incident_id)
    return [_duty_out(d) for d in session.scalars(query).all()]
