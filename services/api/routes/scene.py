"""The scene: TPTKP and olah TKP steps, evidence and its chain of custody, closure, the EIDO export.

Every write is a command to the tkp worker, which decides for the incident and seals each record
into the incident's hash chain; the API waits a bounded time for the outcome (201/200, 409 with
the reason, or 202 with where to look).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from schemas import topics
from schemas.envelope import derived_id, utcnow
from schemas.events import (
    CloseIncident, CorrectEvidence, GeoPoint, RecordLetter, RecordSceneStep, RegisterEvidence, ReopenIncident,
    TransferCustody,
)
from services.intake.domain import UNLOCATED
from services.projection import tables as t
from services.projection.projector import as_aware
from services.projection.verify import incident_chains, tkp_chain
from services.tkp import domain as tkp_rules
from services.tkp import eido

from .. import commands
from ..auth import Principal, Role, allow
from ..deps import Decider, IncidentReader, PublisherDep, SessionDep, SettingsDep, UnitActor
from ..models import (
    ClosedOut, CloseIn, CommandPending, CorrectionIn, CorrectionOut, CustodyIn, CustodyOut, EvidenceCreated,
    EvidenceIn, EvidenceOut, LetterIn, LetterOut, ReopenedOut, ReopenIn, SceneStepIn, SceneStepOut,
)
from .incidents import NOT_FOUND, _open_incident, _visible_incident

router = APIRouter(tags=["tkp"])
EVIDENCE_NOT_FOUND = "Barang bukti tidak ditemukan"
CustodyWriter = Annotated[Principal, Depends(allow(Role.field_unit, Role.dispatcher, Role.supervisor, Role.admin))]
PENDING = {202: {"model": CommandPending, "description": "Outcome not known within the wait"}}


def _actor(principal: Principal) -> str:
    return principal.unit_id or principal.sub


async def _step(phase: str, incident_id: str, body: SceneStepIn, request: Request, principal: Principal,
                session, publisher, settings, idempotency_key: str | None):
    steps = tkp_rules.TPTKP_STEPS if phase == "tptkp" else tkp_rules.OLAH_TKP_STEPS
    if body.step not in steps:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            [{"loc": ["body", "step"], "type": "value_error",
                              "msg": f"langkah tidak dikenal; pilih salah satu: {', '.join(steps)}"}])
    _open_incident(session, incident_id, principal)
    command_id = commands.command_id(principal, idempotency_key, phase, incident_id)
    command = RecordSceneStep(command_id=command_id, incident_id=incident_id, phase=phase, step=body.step,
                              note=body.note, position=GeoPoint(**body.position.model_dump()) if body.position else None,
                              unit_id=principal.unit_id, recorded_by=_actor(principal), recorded_at=utcnow())
    return await commands.publish_and_answer(request, publisher, settings, command, "scene.step-recorded",
                          lambda part: SceneStepOut(**part), created=True,
                          topic=topics.COMMANDS, location=f"/api/v1/incidents/{incident_id}")


STEP_RESPONSES = {**PENDING, 404: {"description": NOT_FOUND}, 409: {"description": "Closed, or refused (says why)"},
                  403: {"description": "Not assigned to this incident"}}


@router.post("/api/v1/incidents/{incident_id}/tptkp", status_code=201, response_model=SceneStepOut,
             responses=STEP_RESPONSES)
async def record_tptkp(incident_id: str, body: SceneStepIn, request: Request, principal: UnitActor,
                       session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                       idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """A first action at the scene (TPTKP). Out of the usual order: recorded and flagged."""
    return await _step("tptkp", incident_id, body, request, principal, session, publisher, settings, idempotency_key)


@router.post("/api/v1/incidents/{incident_id}/olah-tkp", status_code=201, response_model=SceneStepOut,
             responses=STEP_RESPONSES)
async def record_olah_tkp(incident_id: str, body: SceneStepIn, request: Request, principal: UnitActor,
                          session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                          idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """A step of scene processing (olah TKP) by the processing team."""
    return await _step("olah_tkp", incident_id, body, request, principal, session, publisher, settings,
                       idempotency_key)


@router.post("/api/v1/incidents/{incident_id}/evidence", status_code=201, response_model=EvidenceCreated,
             responses={**STEP_RESPONSES, 409: {"description": "Seal number already used, or the incident is closed"}})
async def register_evidence(incident_id: str, body: EvidenceIn, request: Request, principal: UnitActor,
                            session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                            idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """An item of evidence, sealed. A seal number is used once, over every incident."""
    _open_incident(session, incident_id, principal)
    command_id = commands.command_id(principal, idempotency_key, "evidence", incident_id)
    evidence_id = "BB-" + derived_id("evidence", command_id)[:12].upper()
    await run_in_threadpool(_claim_seal, session, body.seal_number, evidence_id, incident_id)  # a write: off the loop
    command = RegisterEvidence(command_id=command_id, incident_id=incident_id, evidence_id=evidence_id,
                               description=body.description, kind=body.kind, seal_number=body.seal_number,
                               found_at=GeoPoint(**body.found_at.model_dump()) if body.found_at else None,
                               found_where=body.found_where, media=body.media, collected_by=_actor(principal),
                               collected_at=utcnow())
    return await commands.publish_and_answer(request, publisher, settings, command, "evidence.registered",
                          lambda part: EvidenceCreated(evidence_id=part["evidence_id"], seal_number=part["seal_number"]),
                          created=True, topic=topics.COMMANDS, location=f"/api/v1/evidence/{evidence_id}")


def _claim_seal(session, seal_number: str, evidence_id: str, incident_id: str) -> None:
    """The first claim of a seal number wins (a unique key over every incident); a retry of the
    same registration finds its own claim."""
    claim = session.get(t.SealClaim, seal_number)
    if claim is None:
        session.add(t.SealClaim(seal_number=seal_number, evidence_id=evidence_id, incident_id=incident_id,
                                claimed_at=utcnow()))
        try:
            session.commit()
            return
        except IntegrityError:
            session.rollback()
            claim = session.get(t.SealClaim, seal_number)
    if claim is not None and claim.evidence_id != evidence_id:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"Nomor segel {seal_number} sudah dipakai untuk barang bukti {claim.evidence_id}")


def _evidence(session, evidence_id: str, principal: Principal) -> t.Evidence:
    item = session.get(t.Evidence, evidence_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, EVIDENCE_NOT_FOUND)
    _visible_incident(session, item.incident_id, principal)
    return item


@router.post("/api/v1/evidence/{evidence_id}/custody", status_code=201, response_model=CustodyOut,
             responses={**PENDING, 404: {"description": EVIDENCE_NOT_FOUND}, 409: {"description": "Refused (says why)"}})
async def transfer_custody(evidence_id: str, body: CustodyIn, request: Request, principal: CustodyWriter,
                           session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                           idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """A hand-over of an item (penyidik → Tahti → Labfor ...): appended to its chain of custody."""
    item = _evidence(session, evidence_id, principal)
    command_id = commands.command_id(principal, idempotency_key, "custody", evidence_id)
    command = TransferCustody(command_id=command_id, incident_id=item.incident_id, evidence_id=evidence_id,
                              to=body.to, reason=body.reason, by=_actor(principal), at=utcnow())
    return await commands.publish_and_answer(request, publisher, settings, command, "evidence.custody-transferred",
                          lambda part: CustodyOut(evidence_id=evidence_id, sequence=part["sequence"],
                                                  from_holder=part["from"], to=part["to"], at=part["at"],
                                                  reason=body.reason, by=_actor(principal)),
                          created=True, topic=topics.COMMANDS, location=f"/api/v1/evidence/{evidence_id}")


@router.post("/api/v1/evidence/{evidence_id}/corrections", status_code=201, response_model=CorrectionOut,
             responses={**PENDING, 404: {"description": EVIDENCE_NOT_FOUND}, 409: {"description": "Refused (says why)"}})
async def correct_evidence(evidence_id: str, body: CorrectionIn, request: Request, principal: CustodyWriter,
                           session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                           idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """A correction of an item's description, kind, place or media: a new record naming the item,
    with the reason; what was recorded first stays in the chain."""
    item = _evidence(session, evidence_id, principal)
    command_id = commands.command_id(principal, idempotency_key, "correct", evidence_id)
    command = CorrectEvidence(command_id=command_id, incident_id=item.incident_id, evidence_id=evidence_id,
                              changes=body.changes, reason=body.reason, by=_actor(principal), at=utcnow())
    return await commands.publish_and_answer(request, publisher, settings, command, "evidence.corrected",
                          lambda part: CorrectionOut(evidence_id=evidence_id), created=True, topic=topics.COMMANDS,
                          location=f"/api/v1/evidence/{evidence_id}")


@router.post("/api/v1/incidents/{incident_id}/letters", status_code=201, response_model=LetterOut,
             responses={**PENDING, 404: {"description": NOT_FOUND}, 409: {"description": "No such deadline, or sent"}})
async def record_letter(incident_id: str, body: LetterIn, request: Request, principal: CustodyWriter,
                        session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                        idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """An SP2HP or SPDP letter went out: its deadline is met and no longer escalates."""
    _visible_incident(session, incident_id, principal)
    command_id = commands.command_id(principal, idempotency_key, "letter", incident_id)
    command = RecordLetter(command_id=command_id, incident_id=incident_id, key=body.key, reference=body.reference,
                           sent_by=principal.sub, sent_at=utcnow())
    return await commands.publish_and_answer(request, publisher, settings, command, "legal.letter-sent",
                          lambda part: LetterOut(**part), created=True, topic=topics.COMMANDS,
                          location=f"/api/v1/incidents/{incident_id}")


@router.get("/api/v1/evidence/{evidence_id}", response_model=EvidenceOut,
            responses={404: {"description": EVIDENCE_NOT_FOUND}})
def get_evidence(evidence_id: str, principal: IncidentReader, session: SessionDep) -> EvidenceOut:
    """The item with its whole chain of custody; chain_valid is recomputed from the records now."""
    item = _evidence(session, evidence_id, principal)
    custody = session.scalars(select(t.CustodyRecord).filter_by(evidence_id=evidence_id)
                              .order_by(t.CustodyRecord.sequence)).all()
    check = tkp_chain(session, item.incident_id)
    return EvidenceOut(
        evidence_id=item.evidence_id, incident_id=item.incident_id, description=item.description, kind=item.kind,
        seal_number=item.seal_number, found_at=item.found_at, found_where=item.found_where, media=item.media,
        collected_by=item.collected_by, collected_at=as_aware(item.collected_at), holder=item.holder,
        corrections=item.corrections,
        custody=[CustodyOut(evidence_id=evidence_id, sequence=c.sequence, from_holder=c.from_holder, to=c.to,
                            reason=c.reason, by=c.by, at=as_aware(c.at)) for c in custody],
        chain_valid=check.valid, chain=check.as_dict())


@router.post("/api/v1/incidents/{incident_id}/close", response_model=ClosedOut,
             responses={**PENDING, 404: {"description": NOT_FOUND},
                        409: {"description": "Steps missing (listed), or closed already"}})
async def close_incident(incident_id: str, body: CloseIn, request: Request, principal: Decider,
                         session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Close with a disposition. Refused with the list of what is missing when the category's
    steps are not done. With an LP: its number (intake's numbering) comes back in the answer."""
    incident = _open_incident(session, incident_id, principal)
    if body.disposition == "lp_made" and body.lp is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            [{"loc": ["body", "lp"], "type": "value_error",
                              "msg": "disposisi lp_made memerlukan lp.model (A atau B)"}])
    first_report = session.scalars(select(t.IncidentReport.report_id).filter_by(incident_id=incident_id)
                                   .order_by(t.IncidentReport.linked_at)).first()
    command_id = commands.command_id(principal, idempotency_key, "close", incident_id)
    command = CloseIncident(command_id=command_id, incident_id=incident_id, area=incident.polres or UNLOCATED,
                            disposition=body.disposition, summary=body.summary,
                            lp_model=body.lp.model if body.lp else None, difficulty=body.difficulty,
                            report_id=first_report if body.lp and body.lp.model == "B" else None,
                            closed_by=principal.sub, requested_at=utcnow())
    return await commands.publish_and_answer(request, publisher, settings, command, "incident.closed",
                          lambda part: ClosedOut(**part), topic=topics.COMMANDS,
                          location=f"/api/v1/incidents/{incident_id}")


@router.post("/api/v1/incidents/{incident_id}/reopen", response_model=ReopenedOut,
             responses={**PENDING, 404: {"description": NOT_FOUND}, 409: {"description": "Not closed"}})
async def reopen_incident(incident_id: str, body: ReopenIn, request: Request, principal: Decider,
                          session: SessionDep, publisher: PublisherDep, settings: SettingsDep,
                          idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Reopen a closed incident (recorded, with the reason)."""
    _visible_incident(session, incident_id, principal)
    command_id = commands.command_id(principal, idempotency_key, "reopen", incident_id)
    command = ReopenIncident(command_id=command_id, incident_id=incident_id, reason=body.reason,
                             reopened_by=principal.sub, requested_at=utcnow())
    return await commands.publish_and_answer(request, publisher, settings, command, "incident.reopened",
                          lambda part: ReopenedOut(incident_id=incident_id), topic=topics.COMMANDS,
                          location=f"/api/v1/incidents/{incident_id}")


@router.get("/api/v1/incidents/{incident_id}/chain", responses={404: {"description": NOT_FOUND}})
def verify_incident(incident_id: str, principal: IncidentReader, session: SessionDep) -> dict:
    """Whether the incident's timeline and TKP records still hold, and where they break if not."""
    _visible_incident(session, incident_id, principal)
    return incident_chains(session, incident_id)


@router.get("/api/v1/incidents/{incident_id}/eido", responses={404: {"description": NOT_FOUND}})
def export_eido(incident_id: str, principal: IncidentReader, session: SessionDep, settings: SettingsDep) -> dict:
    """The incident as a NENA EIDO document (validates against the EIDO schema)."""
    incident = _visible_incident(session, incident_id, principal)
    agency = incident.polres or incident.jurisdiction or "SPKT"
    return eido.incident_document(eido_view(session, incident), agency_id=f"{agency.lower()}.spkt.polri.go.id",
                                  agency_name=agency, issued_at=utcnow())


def eido_view(session, incident: t.Incident) -> dict:
    """The incident as eido.incident_document reads it, from the read model."""
    iid = incident.incident_id
    links = session.scalars(select(t.IncidentReport).filter_by(incident_id=iid).order_by(t.IncidentReport.linked_at)).all()
    reports = []
    for link in links:
        report = session.get(t.Report, link.report_id)
        if report is not None:
            reports.append({"report_id": report.report_id, "channel": report.channel,
                            "received_at": as_aware(report.received_at), "description": report.description,
                            "reporter": {k: v for k, v in (report.reporter or {}).items() if k in ("name", "phone")},
                            "merged": bool(link.merged)})
    units = {u.unit_id: u for u in session.scalars(select(t.Unit)).all()}
    assignments = [{"assignment_id": a.assignment_id, "unit_id": a.unit_id, "callsign": a.callsign or a.unit_id,
                    "kind": units[a.unit_id].kind if a.unit_id in units else None, "status": a.status,
                    "assigned_at": as_aware(a.assigned_at), "arrived_at": as_aware(a.arrived_at),
                    "ended_at": as_aware(a.ended_at)}
                   for a in session.scalars(select(t.Assignment).filter_by(incident_id=iid)
                                            .order_by(t.Assignment.assigned_at)).all()]
    persons = [{"person_id": f"reporter-{r['report_id']}", "role": "reporter", "name": r["reporter"].get("name"),
                "phone": r["reporter"].get("phone")} for r in reports if r["reporter"]]
    notes = [{"at": as_aware(e.at), "actor": e.actor, "text": e.summary}
             for e in session.scalars(select(t.TimelineEntry).filter_by(incident_id=iid).order_by(t.TimelineEntry.seq)).all()]
    evidence = []
    for item in session.scalars(select(t.Evidence).filter_by(incident_id=iid).order_by(t.Evidence.collected_at)).all():
        custody = session.scalars(select(t.CustodyRecord).filter_by(evidence_id=item.evidence_id)
                                  .order_by(t.CustodyRecord.sequence)).all()
        evidence.append({"evidence_id": item.evidence_id, "description": item.description, "kind": item.kind,
                         "seal_number": item.seal_number, "found_at": item.found_at, "collected_by": item.collected_by,
                         "collected_at": as_aware(item.collected_at),
                         "custody": [{"from": c.from_holder, "to": c.to, "at": as_aware(c.at), "reason": c.reason}
                                     for c in custody]})
    merges = []
    if incident.merged_into:
        merges.append({"incident_id": incident.merged_into, "relation": "REPLACED", "at": as_aware(incident.updated_at)})
    for other in session.scalars(select(t.Incident).filter_by(merged_into=iid)).all():
        merges.append({"incident_id": other.incident_id, "relation": "REPLACING", "at": as_aware(other.updated_at)})
    return {
        "incident_id": iid, "number": incident.number, "status": incident.status, "category": incident.category,
        "category_name": None, "priority": incident.priority, "summary": incident.summary,
        "opened_at": as_aware(incident.opened_at), "updated_at": as_aware(incident.updated_at),
        "closed_at": as_aware(incident.closed_at), "location": dict(incident.location or {}),
        "jurisdiction": incident.jurisdiction, "polres": incident.polres, "disposition": incident.disposition,
        "summary_at_close": incident.close_summary, "lp_number": incident.lp_number, "reports": reports,
        "assignments": assignments, "persons": persons, "notes": notes, "evidence": evidence, "merges": merges,
    }
