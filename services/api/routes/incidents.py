"""Incidents as the read model knows them."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import and_, bindparam, or_, select
from starlette.concurrency import run_in_threadpool

from schemas import topics
from schemas.envelope import derived_id, utcnow
from schemas.events import AssistanceDecided, IncidentMarkedShareable, MergeIncidents, SplitReport
from schemas.registry import make_event
from services.dispatch import intervals
from services.intake.domain import UNLOCATED
from services.projection import tables as t
from services.projection.projector import as_aware
from services.projection.verify import incident_chains, timeline_rows

from ..auth import Principal, Role
from ..deps import Decider, Dispatcher, IncidentReader, PublisherDep, SessionDep, SettingsDep, Supervisor
from ..pages import SEEN_HEADER, SEEN_MAX
from ..scope import check_in_scope, requested
from ..models import (
    AssignmentOut, CommandAccepted, DecisionIn, IncidentIntervalsOut, DecisionOut, EscalationOut, EscalationsOut, IncidentOut, MergeIn,
    IncidentPage, IncidentSummary, ShareableIn, ShareableOut,
    RecommendationOut, SplitIn, TimelineItem, TkpOut,
)
from .. import commands
from ..commands import publish

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

NOT_FOUND = "Kejadian tidak ditemukan"


def _of_incident(model, *order_by):
    """SELECT the model's columns WHERE incident_id = :incident_id, built once.

    The incident page makes a dozen reads: building a statement per request (and its cache key)
    cost more than running it, and plain rows load several times cheaper than ORM objects."""
    table = model.__table__
    return select(table).where(table.c.incident_id == bindparam("incident_id")).order_by(*order_by)


_INCIDENT = _of_incident(t.Incident)
_RECOMMENDATION = _of_incident(t.Recommendation)
_REPORT_IDS = (select(t.IncidentReport.report_id).where(t.IncidentReport.incident_id == bindparam("incident_id"))
               .order_by(t.IncidentReport.linked_at))
_ASSIGNMENTS = _of_incident(t.Assignment, t.Assignment.assigned_at)
_INTERVALS = _of_incident(t.IncidentIntervals)
_SCENE_STEPS = _of_incident(t.SceneStep, t.SceneStep.at)
_EVIDENCE = _of_incident(t.Evidence, t.Evidence.collected_at)
_DUTIES = _of_incident(t.Duty)
_LEGAL_DEADLINES = _of_incident(t.LegalDeadlineRow, t.LegalDeadlineRow.due_at)


# On the session's connection (Core), not session.execute: these are plain table reads, and the
# ORM's per-statement set-up cost as much again as the query.
def _rows(session, statement, incident_id: str) -> list:
    return session.connection().execute(statement, {"incident_id": incident_id}).all()


def _row(session, statement, incident_id: str):
    return session.connection().execute(statement, {"incident_id": incident_id}).first()


def _visible_incident(session, incident_id: str, principal: Principal) -> t.Incident:
    incident = session.get(t.Incident, incident_id)
    _check_visible(session, incident, principal)
    return incident


def _check_visible(session, incident, principal: Principal) -> None:
    """404 for no incident; 403 outside the token's jurisdiction, or for a unit not assigned to it."""
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    incident_id = incident.incident_id
    check_in_scope(principal, incident.jurisdiction)
    if principal.role is Role.field_unit:
        assigned = session.scalars(select(t.Assignment).filter_by(incident_id=incident_id,
                                                                  unit_id=principal.unit_id)).first()
        if assigned is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Unit Anda tidak ditugaskan pada kejadian ini")


def _recommendation(session, incident_id: str) -> RecommendationOut | None:
    rec = _row(session, _RECOMMENDATION, incident_id)
    if rec is None:
        return None
    return RecommendationOut(candidates=rec.candidates, excluded=rec.excluded,
                             recommended_at=as_aware(rec.recommended_at), excluded_counts=rec.excluded_counts or {},
                             shortfalls=rec.shortfalls or [], trigger=rec.trigger)


ENDED = ("closed", "duplicate")


def placed_within(stations: frozenset[str]):
    """Incidents in these stations' areas, and those not placed yet, which everyone must see."""
    return or_(t.Incident.jurisdiction.in_(sorted(stations)), t.Incident.jurisdiction.is_(None),
               t.Incident.jurisdiction == UNLOCATED)


def _encode_cursor(opened_at, incident_id: str) -> str:
    raw = f"{as_aware(opened_at).isoformat()}|{incident_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The place a next_cursor names; 422 for anything _encode_cursor did not make (a time without
    its offset, one that cannot be put in UTC, or an id holding NUL cannot be compared or queried)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, incident_id = raw.split("|", 1)
        opened_at = datetime.fromisoformat(at)
        if opened_at.tzinfo is None or "\x00" in incident_id:
            raise ValueError(cursor)
        return opened_at.astimezone(timezone.utc), incident_id
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            [{"loc": ["query", "cursor"], "msg": "cursor tidak dikenal: pakai next_cursor dari halaman "
                              "sebelumnya", "type": "value_error"}]) from None


@router.get("", response_model=IncidentPage)
def list_incidents(principal: IncidentReader, session: SessionDep, settings: SettingsDep,
                   status_: Annotated[str | None, Query(alias="status", max_length=32, description=(
                       "`open` (not closed or merged), `closed`, or an exact status: received, assigned, "
                       "on_scene, closed, duplicate"))] = None,
                   jurisdiction: Annotated[str | None, Query(max_length=64, description=(
                       "A Polda, Polres or Polsek code: that station and every station under it"))] = None,
                   priority: Annotated[Literal["P1", "P2", "P3", "P4"] | None, Query()] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   cursor: Annotated[str | None, Query(max_length=200)] = None) -> IncidentPage:
    """The incident queue, newest first, a page at a time. A field unit sees the incidents it is
    assigned to; a token with a jurisdiction sees that jurisdiction only."""
    query = select(t.Incident)
    stations = requested(principal, settings, jurisdiction)
    if jurisdiction:  # exactly what was asked for
        query = query.where(t.Incident.jurisdiction.in_(sorted(stations)))
    elif stations is not None:
        query = query.where(placed_within(stations))
    if principal.role is Role.field_unit:
        query = query.where(t.Incident.incident_id.in_(
            select(t.Assignment.incident_id).where(t.Assignment.unit_id == principal.unit_id)))
    if status_ == "open":
        query = query.where(t.Incident.status.not_in(ENDED))
    elif status_:
        query = query.where(t.Incident.status == status_)
    if priority:
        query = query.where(t.Incident.priority == priority)
    if cursor:
        at, after_id = _decode_cursor(cursor)
        query = query.where(or_(t.Incident.opened_at < at,
                                and_(t.Incident.opened_at == at, t.Incident.incident_id < after_id)))
    rows = session.scalars(query.order_by(t.Incident.opened_at.desc(), t.Incident.incident_id.desc())
                           .limit(limit + 1)).all()
    page, more = rows[:limit], len(rows) > limit
    ids = [i.incident_id for i in page]
    breached: dict[str, list[str]] = {}
    for e in session.scalars(select(t.Escalation).where(t.Escalation.incident_id.in_(ids),
                                                        t.Escalation.why.like("target:%"))):
        breached.setdefault(e.incident_id, []).append(e.why.removeprefix("target:"))
    units: dict[str, list[str]] = {}
    for a in session.scalars(select(t.Assignment).where(t.Assignment.incident_id.in_(ids),
                                                        t.Assignment.ended_at.is_(None))
                             .order_by(t.Assignment.assigned_at)):
        units.setdefault(a.incident_id, []).append(a.unit_id)
    return IncidentPage(
        items=[IncidentSummary(
            incident_id=i.incident_id, number=i.number, status=i.status, category=i.category, priority=i.priority,
            summary=i.summary, location=i.location, jurisdiction=i.jurisdiction, opened_at=as_aware(i.opened_at),
            updated_at=as_aware(i.updated_at), scene_status=i.scene_status, sensitive=i.sensitive,
            assistance_request=i.assistance_request, location_verified=i.location_verified,
            targets=i.targets or {}, breached=sorted(set(breached.get(i.incident_id, []))),
            units=units.get(i.incident_id, [])) for i in page],
        next_cursor=_encode_cursor(page[-1].opened_at, page[-1].incident_id) if more else None)


_PROCESSED = select(t.ProcessedEvent.event_id).where(t.ProcessedEvent.event_id == bindparam("event_id"))


@router.get("/{incident_id}", response_model=IncidentOut, responses={404: {"description": NOT_FOUND}})
def get_incident(request: Request, incident_id: str, principal: IncidentReader, session: SessionDep,
                 seen: Annotated[str | None, Query(max_length=SEEN_MAX, description=(
                     "The id of an event about this incident the client has seen on the live stream. The "
                     f"`{SEEN_HEADER}` header then says whether this page includes it (`includes`) or not "
                     "yet (`behind`: the stream comes straight from Kafka, the read model a moment later; "
                     "ask again shortly)."))] = None) -> Response:
    """The incident's whole page. Most reads are answered before this route (services/api/pages.py);
    it answers those needing more than a jurisdiction check (a field unit), those with `seen`, and
    every refusal."""
    # Asked before the incident's revision is read: an event recorded by then is in the page that
    # revision names (and on SQLite the reads share one snapshot anyway).
    included = seen is None or session.connection().execute(_PROCESSED, {"event_id": seen}).first() is not None
    incident = _row(session, _INCIDENT, incident_id)
    _check_visible(session, incident, principal)
    keeper = request.app.state.incident_pages
    body = keeper.page(incident_id, incident.revision, lambda: incident_page(session, incident_id))
    headers = {SEEN_HEADER: "includes" if included else "behind"} if seen is not None else None
    return Response(body, media_type="application/json", headers=headers)


def incident_page(session, incident_id: str) -> bytes:
    """The bytes of the incident's page (IncidentOut) as the read model holds it now."""
    incident = _row(session, _INCIDENT, incident_id)
    if incident is None:  # read just before by the caller; incidents are never deleted
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    # Read what comes last in the flow first: each read sees the latest commit, so the timeline
    # read after it then holds at least what the recommendation implies.
    recommendation = _recommendation(session, incident_id)
    reports = session.connection().execute(_REPORT_IDS, {"incident_id": incident_id}).scalars().all()
    assignments = _rows(session, _ASSIGNMENTS, incident_id)
    timeline = timeline_rows(session, incident_id)
    out = IncidentOut(
        incident_id=incident.incident_id, number=incident.number, status=incident.status,
        category=incident.category, priority=incident.priority, summary=incident.summary,
        location=incident.location, jurisdiction=incident.jurisdiction, opened_at=as_aware(incident.opened_at),
        reports=list(reports),
        assignments=[AssignmentOut(assignment_id=a.assignment_id, unit_id=a.unit_id, status=a.status,
                                   assigned_by=a.assigned_by, assigned_at=as_aware(a.assigned_at),
                                   callsign=a.callsign, automatic=a.automatic, warning=a.warning,
                                   acknowledged_at=as_aware(a.acknowledged_at), en_route_at=as_aware(a.en_route_at),
                                   arrived_at=as_aware(a.arrived_at), ended_at=as_aware(a.ended_at),
                                   end_reason=a.end_reason)
                     for a in assignments],
        intervals=_intervals(session, incident_id),
        recommendation=recommendation,
        timeline=[TimelineItem(at=as_aware(e.at), type=e.type, actor=e.actor, summary=e.summary) for e in timeline],
        disposition=incident.disposition, lp_number=incident.lp_number,
        timers={"targets": incident.targets or {}}, polres=incident.polres,
        location_verified=incident.location_verified, location_note=incident.location_note,
        category_confidence=incident.category_confidence, category_low_confidence=incident.category_low_confidence,
        sensitive=incident.sensitive, assistance_request=incident.assistance_request, decision=incident.decision,
        merged_into=incident.merged_into, response_plan=incident.response_plan or [],
        tkp=_tkp(session, incident_id), duties=_duties(session, incident_id), scene_status=incident.scene_status,
        chain=incident_chains(session, incident_id, timeline), apco_code=incident.apco_code,
        legal_deadlines=[{"key": d.key, "code": d.code, "words": d.words, "due_at": as_aware(d.due_at),
                          "overdue_at": as_aware(d.overdue_at), "met_at": as_aware(d.met_at),
                          "reference": d.reference}
                         for d in _rows(session, _LEGAL_DEADLINES, incident_id)],
    )
    # The bytes FastAPI would make of `out`, made here: given the model, FastAPI validates it
    # against IncidentOut once more (and in a second trip through the thread pool) first.
    return out.model_dump_json().encode()


def _tkp(session, incident_id: str) -> TkpOut:
    steps = _rows(session, _SCENE_STEPS, incident_id)
    out = {"tptkp": [], "olah_tkp": []}
    for step in steps:
        out[step.phase].append({"step": step.step, "at": as_aware(step.at).isoformat(), "by": step.by,
                                "note": step.note, "out_of_order": step.out_of_order, "warning": step.warning})
    items = _rows(session, _EVIDENCE, incident_id)
    evidence = [{"evidence_id": e.evidence_id, "description": e.description, "kind": e.kind,
                 "seal_number": e.seal_number, "holder": e.holder} for e in items]
    return TkpOut(tptkp=out["tptkp"], olah_tkp=out["olah_tkp"], evidence=evidence)


def _duties(session, incident_id: str) -> list[dict]:
    return [{"duty_id": d.duty_id, "kind": d.kind, "unit_ids": d.unit_ids, "status": d.status,
             "area": d.area, "missed_check_ins": d.missed_check_ins or 0}
            for d in _rows(session, _DUTIES, incident_id)]


@router.get("/{incident_id}/recommendations", response_model=RecommendationOut,
            responses={404: {"description": NOT_FOUND + " atau belum ada rekomendasi"}})
def get_recommendations(incident_id: str, principal: IncidentReader, session: SessionDep) -> RecommendationOut:
    _visible_incident(session, incident_id, principal)
    rec = _recommendation(session, incident_id)
    if rec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Belum ada rekomendasi untuk kejadian ini")
    return rec


def _intervals(session, incident_id: str) -> IncidentIntervalsOut | None:
    row = _row(session, _INTERVALS, incident_id)
    if row is None:
        return None
    steps = intervals.Steps(received_at=as_aware(row.received_at), dispatched_at=as_aware(row.dispatched_at),
                            en_route_at=as_aware(row.en_route_at), on_scene_at=as_aware(row.on_scene_at))
    seconds = intervals.of_incident(steps)
    return IncidentIntervalsOut(received_at=steps.received_at, dispatched_at=steps.dispatched_at,
                                en_route_at=steps.en_route_at, on_scene_at=steps.on_scene_at,
                                **{f"{name}_s": value for name, value in seconds.items()})


OPEN_STATES_ENDED = ("closed", "duplicate")


def _open_incident(session, incident_id: str, principal: Principal) -> t.Incident:
    incident = _visible_incident(session, incident_id, principal)
    if incident.status in OPEN_STATES_ENDED:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"Kejadian {incident.number} sudah berstatus {incident.status}; tidak dapat diubah")
    return incident


def _stored_key(principal: Principal, what: str, incident_id: str, idempotency_key: str | None) -> str | None:
    return f"{principal.sub}:{what}:{incident_id}:{idempotency_key}" if idempotency_key else None


async def _command_accepted(session, stored_key: str | None, request, command_id: str,
                            incident_id: str) -> JSONResponse:
    """202 with the command id; a retry with the same Idempotency-Key gets this same answer.

    The answer is written from the thread pool: on the event loop, a write waiting for SQLite's
    lock (the projection writing) would hold up every other request."""
    body = CommandAccepted(command_id=command_id).model_dump()
    return await run_in_threadpool(commands.remember_answer, session, stored_key, request.model_dump(mode="json"),
                                   202, body, f"/api/v1/incidents/{incident_id}")


@router.post("/{incident_id}/merge", status_code=202, response_model=CommandAccepted,
             responses={404: {"description": NOT_FOUND}, 409: {"description": "Closed or merged already"}})
async def merge_incident(incident_id: str, body: MergeIn, principal: Dispatcher, session: SessionDep,
                         publisher: PublisherDep,
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Merge this incident into another (EIDO: REPLACED / REPLACING); its reporters stay informed."""
    stored_key = _stored_key(principal, "merge", incident_id, idempotency_key)
    if (earlier := commands.earlier_answer(session, stored_key, body.model_dump(mode="json"))) is not None:
        return earlier
    if body.into == incident_id:
        raise HTTPException(status.HTTP_409_CONFLICT, "Kejadian tidak dapat digabung dengan dirinya sendiri")
    source = _open_incident(session, incident_id, principal)
    _open_incident(session, body.into, principal)
    command_id = commands.command_id(principal, idempotency_key)
    area = source.polres or UNLOCATED
    command = MergeIncidents(command_id=command_id, area=area, incident_id=incident_id, into=body.into,
                             requested_by=principal.sub, reason=body.reason)
    await publish(publisher, topics.COMMANDS, make_event(command, source="/spkt/api", event_id=command_id))
    return await _command_accepted(session, stored_key, body, command_id, body.into)


@router.post("/{incident_id}/split", status_code=202, response_model=CommandAccepted,
             responses={404: {"description": NOT_FOUND}, 409: {"description": "Not a report of this incident"}})
async def split_report(incident_id: str, body: SplitIn, principal: Dispatcher, session: SessionDep,
                       publisher: PublisherDep,
                       idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Take a report out of this incident into a new incident of its own (EIDO: SPLIT)."""
    stored_key = _stored_key(principal, "split", incident_id, idempotency_key)
    if (earlier := commands.earlier_answer(session, stored_key, body.model_dump(mode="json"))) is not None:
        return earlier
    incident = _open_incident(session, incident_id, principal)
    link = session.get(t.IncidentReport, body.report_id)
    report = session.get(t.Report, body.report_id)
    if link is None or report is None or link.incident_id != incident_id:
        raise HTTPException(status.HTTP_409_CONFLICT, "Laporan itu bukan bagian dari kejadian ini")
    if session.scalar(select(t.IncidentReport).filter_by(incident_id=incident_id)
                      .where(t.IncidentReport.report_id != body.report_id)) is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "Kejadian ini hanya punya satu laporan; tidak ada yang dipisah")
    command_id = commands.command_id(principal, idempotency_key)
    as_received = {"report_id": report.report_id, "tracking_code": report.tracking_code, "channel": report.channel,
                   "reporter": report.reporter, "description": report.description, "category": report.category,
                   "location": report.location, "received_at": as_aware(report.received_at).isoformat(),
                   "received_by": report.received_by, "area": incident.polres}
    command = SplitReport(command_id=command_id, area=incident.polres or UNLOCATED, incident_id=incident_id,
                          report_id=body.report_id, report=as_received, requested_by=principal.sub,
                          reason=body.reason)
    await publish(publisher, topics.COMMANDS, make_event(command, source="/spkt/api", event_id=command_id))
    return await _command_accepted(session, stored_key, body, command_id, incident_id)


@router.post("/{incident_id}/decision", status_code=201, response_model=DecisionOut,
             responses={404: {"description": NOT_FOUND}, 409: {"description": "Not a request, or decided already"}})
async def decide_assistance(incident_id: str, body: DecisionIn, principal: Decider, session: SessionDep,
                            publisher: PublisherDep,
                            idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """The recorded decision on a request for assistance: accept, decline (with reason) or refer."""
    stored_key = _stored_key(principal, "decision", incident_id, idempotency_key)
    if (earlier := commands.earlier_answer(session, stored_key, body.model_dump(mode="json"))) is not None:
        return earlier
    incident = _visible_incident(session, incident_id, principal)
    if not incident.assistance_request:
        raise HTTPException(status.HTTP_409_CONFLICT, "Kejadian ini bukan permintaan pendampingan")
    if incident.decision:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"Sudah diputuskan ({incident.decision['decision']}) oleh {incident.decision['decided_by']}")
    decided = AssistanceDecided(incident_id=incident_id, decision=body.decision, reason=body.reason,
                                decided_by=principal.sub, decided_at=utcnow())
    event = make_event(decided, source="/spkt/api", event_id=derived_id("assistance.decided", incident_id))
    await publish(publisher, topics.INCIDENTS, event)
    out = DecisionOut(**decided.model_dump(exclude={"incident_id"}), incident_id=incident_id)
    return await run_in_threadpool(commands.remember_answer, session, stored_key, body.model_dump(mode="json"), 201,
                                   out.model_dump(mode="json"), f"/api/v1/incidents/{incident_id}")


@router.post("/{incident_id}/shareable", status_code=202, response_model=ShareableOut,
             responses={404: {"description": NOT_FOUND}})
async def mark_shareable(incident_id: str, body: ShareableIn, principal: Decider, session: SessionDep,
                         publisher: PublisherDep) -> ShareableOut:
    """Let the public tracker show this sensitive incident's progress (without names or addresses).
    Marking it twice records it once."""
    _visible_incident(session, incident_id, principal)
    marked = IncidentMarkedShareable(incident_id=incident_id, marked_by=principal.sub, marked_at=utcnow(),
                                     reason=body.reason)
    event = make_event(marked, source="/spkt/api", event_id=derived_id("incident.marked-shareable", incident_id))
    await publish(publisher, topics.INCIDENTS, event)
    return ShareableOut(incident_id=incident_id, shareable=True)


escalations_router = APIRouter(prefix="/api/v1/escalations", tags=["incidents"])


@escalations_router.get("", response_model=EscalationsOut)
def list_escalations(principal: Supervisor, session: SessionDep, limit: int = 100) -> EscalationsOut:
    """What needs the supervisor: declined or undecided assistance requests, breached time targets."""
    rows = session.execute(
        select(t.Escalation, t.Incident.number).join(t.Incident, t.Incident.incident_id == t.Escalation.incident_id,
                                                     isouter=True)
        .order_by(t.Escalation.escalated_at.desc()).limit(max(1, min(limit, 500)))).all()
    return EscalationsOut(items=[EscalationOut(incident_id=e.incident_id, number=number, why=e.why, detail=e.detail,
                                               escalated_at=as_aware(e.escalated_at)) for e, number in rows])
