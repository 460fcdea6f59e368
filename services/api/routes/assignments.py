"""Assigning units to incidents and the unit's answer; fresh recommendations; backup; the intervals."""
from __future__ import annotations

from datetime import date as Date
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from sqlalchemy import select

from schemas import topics
from datetime import datetime, time, timedelta

from schemas.envelope import utcnow
from schemas.events import AssignUnit, IncidentRelocated, RecommendationRequested, RespondToAssignment
from schemas.registry import make_event
from services.dispatch import intervals
from services.projection import tables as t
from services.projection.projector import as_aware

from .. import commands
from ..auth import Role
from ..deps import (
    BackupRequester, BoardReader, Dispatcher, PublisherDep, SessionDep, SettingsDep, UnitActor,
)
from ..models import (
    AssignIn, AssignmentAnswerOut, AssignmentCreated, BackupIn, CommandAccepted, CommandPending, DeclineIn,
    IntervalsOut, RelocateIn, plausible_time,
)
from .incidents import NOT_FOUND, _open_incident
from .units import _unit

router = APIRouter(tags=["assignments"])
ASSIGNMENT_NOT_FOUND = "Penugasan tidak ditemukan"


@router.post("/api/v1/incidents/{incident_id}/assignments", status_code=201, response_model=AssignmentCreated,
             responses={202: {"model": CommandPending, "description": "Outcome not known within the wait"},
                        404: {"description": NOT_FOUND + " / unit tidak ditemukan"},
                        409: {"description": "The unit cannot take it (says why), or the incident is closed"}})
async def assign_unit(incident_id: str, body: AssignIn, request: Request, principal: Dispatcher,
                      session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                      idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Assign a unit. Dispatch decides per unit, so of two dispatchers assigning one unit at the same
    moment exactly one gets 201 and the other 409."""
    _open_incident(session, incident_id, principal)
    _unit(session, body.unit_id)
    command_id = commands.command_id(principal, idempotency_key, "assign", incident_id)
    command = AssignUnit(command_id=command_id, unit_id=body.unit_id, incident_id=incident_id,
                         requested_by=principal.sub, requested_at=utcnow(), override_reason=body.override_reason)
    return await commands.publish_and_answer(request, publisher, settings, command, "unit.assigned",
                          lambda part: AssignmentCreated(assignment_id=part["assignment_id"], unit_id=part["unit_id"],
                                                         status=part["status"]),
                          created=True)


def _assignment_for(session, assignment_id: str, principal) -> t.Assignment:
    found = session.get(t.Assignment, assignment_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, ASSIGNMENT_NOT_FOUND)
    if principal.role is Role.field_unit and principal.unit_id != found.unit_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Penugasan ini untuk unit lain")
    return found


async def _answer(assignment_id: str, accept: bool, reason: str | None, request: Request, principal, session,
                  publisher, settings, idempotency_key: str | None):
    found = _assignment_for(session, assignment_id, principal)
    command_id = commands.command_id(principal, idempotency_key, "answer", assignment_id)
    command = RespondToAssignment(command_id=command_id, unit_id=found.unit_id, assignment_id=assignment_id,
                                  accept=accept, reason=reason, requested_by=principal.sub, requested_at=utcnow())
    part = "assignment.acknowledged" if accept else "assignment.declined"
    return await commands.publish_and_answer(request, publisher, settings, command, part,
                          lambda _: AssignmentAnswerOut(assignment_id=assignment_id, unit_id=found.unit_id,
                                                        status="accepted" if accept else "declined"))


ANSWER_RESPONSES = {202: {"model": CommandPending}, 404: {"description": ASSIGNMENT_NOT_FOUND},
                    409: {"description": "Not active any more, or answered already"}}


@router.post("/api/v1/assignments/{assignment_id}/accept", response_model=AssignmentAnswerOut,
             responses=ANSWER_RESPONSES)
async def accept_assignment(assignment_id: str, request: Request, principal: UnitActor, session: SessionDep,
                            publisher: PublisherDep, settings: SettingsDep,
                            idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """The unit accepts: it is on its way (en route)."""
    return await _answer(assignment_id, True, None, request, principal, session, publisher, settings,
                         idempotency_key)


@router.post("/api/v1/assignments/{assignment_id}/decline", response_model=AssignmentAnswerOut,
             responses=ANSWER_RESPONSES)
async def decline_assignment(assignment_id: str, body: DeclineIn, request: Request, principal: UnitActor,
                             session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                             idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """The unit declines, with its reason; it is available again and dispatch recommends again."""
    return await _answer(assignment_id, False, body.reason, request, principal, session, publisher, settings,
                         idempotency_key)


def _accepted(command_id: str, incident_id: str) -> JSONResponse:
    return JSONResponse(CommandAccepted(command_id=command_id).model_dump(), status_code=202,
                        headers={"Location": f"/api/v1/incidents/{incident_id}/recommendations"})


@router.post("/api/v1/incidents/{incident_id}/recommendations", status_code=202, response_model=CommandAccepted,
             responses={404: {"description": NOT_FOUND}, 409: {"description": "Closed or merged"}})
async def request_recommendation(incident_id: str, principal: Dispatcher, session: SessionDep,
                                 publisher: PublisherDep,
                                 idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Ask dispatch for a fresh recommendation (the board has moved on since the last one)."""
    _open_incident(session, incident_id, principal)
    request_id = commands.command_id(principal, idempotency_key, "recommend", incident_id)
    event = RecommendationRequested(request_id=request_id, incident_id=incident_id, requested_by=principal.sub,
                                    requested_at=utcnow())
    await commands.publish(publisher, topics.ASSIGNMENTS, make_event(event, source="/spkt/api", event_id=request_id))
    return _accepted(request_id, incident_id)


@router.post("/api/v1/incidents/{incident_id}/backup", status_code=202, response_model=CommandAccepted,
             responses={403: {"description": "Not assigned to this incident"}, 404: {"description": NOT_FOUND}})
async def request_backup(incident_id: str, body: BackupIn, principal: BackupRequester, session: SessionDep,
                         publisher: PublisherDep,
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """A unit on the incident asks for backup: dispatch recommends the nearest other units at once."""
    _open_incident(session, incident_id, principal)  # a field unit must be assigned to it
    request_id = commands.command_id(principal, idempotency_key, "backup", incident_id)
    event = RecommendationRequested(request_id=request_id, incident_id=incident_id, requested_by=principal.sub,
                                    requested_at=utcnow(), backup=True, unit_id=principal.unit_id,
                                    reason=body.reason)
    await commands.publish(publisher, topics.ASSIGNMENTS, make_event(event, source="/spkt/api", event_id=request_id))
    return _accepted(request_id, incident_id)


@router.post("/api/v1/incidents/{incident_id}/location", status_code=202, response_model=CommandAccepted,
             responses={404: {"description": NOT_FOUND}, 409: {"description": "Closed or merged"}})
async def relocate_incident(incident_id: str, body: RelocateIn, principal: Dispatcher, session: SessionDep,
                            publisher: PublisherDep,
                            idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Correct where the incident is; dispatch recommends again from the new place."""
    _open_incident(session, incident_id, principal)
    event_id = commands.command_id(principal, idempotency_key, "relocate", incident_id)
    event = IncidentRelocated(incident_id=incident_id, location=body.location, relocated_by=principal.sub,
                              relocated_at=utcnow(), reason=body.reason)
    await commands.publish(publisher, topics.INCIDENTS, make_event(event, source="/spkt/api", event_id=event_id))
    return _accepted(event_id, incident_id)


def plausible_day(day: Date | None) -> Date | None:
    """A day the intervals can be read for: its shifts, a day either side, are times in range."""
    if day is not None:
        plausible_time(datetime.combine(day, time(12), intervals.WIB))
    return day


@router.get("/api/v1/intervals", response_model=IntervalsOut)
def list_intervals(principal: BoardReader, session: SessionDep, settings: SettingsDep,
                   day: Annotated[Date | None,
                                  Query(alias="date",
                                        description="YYYY-MM-DD (WIB); the current shift's day if omitted"),
                                  AfterValidator(plausible_day)] = None,
                   jurisdiction: Annotated[str | None, Query(max_length=64)] = None) -> IntervalsOut:
    """Call processing, turnout, travel and response per jurisdiction and shift: count, median, p90."""
    starts = intervals.parse_shift_starts(settings.shift_start_hours)
    wanted = intervals.day_asked(day, utcnow(), starts)
    start = datetime.combine(Date.fromisoformat(wanted), time(0), intervals.WIB)
    # A shift of the day may start the evening before (WIB) and end the next morning.
    query = select(t.IncidentIntervals).where(t.IncidentIntervals.received_at >= start - timedelta(days=1),
                                              t.IncidentIntervals.received_at < start + timedelta(days=2))
    if jurisdiction:
        query = query.filter_by(jurisdiction=jurisdiction)
    rows = (intervals.Steps(received_at=as_aware(r.received_at), dispatched_at=as_aware(r.dispatched_at),
                            en_route_at=as_aware(r.en_route_at), on_scene_at=as_aware(r.on_scene_at),
                            jurisdiction=r.jurisdiction) for r in session.scalars(query))
    return IntervalsOut(date=wanted, groups=intervals.summarise(rows, starts, wanted))
