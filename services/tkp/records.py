"""What the tkp service writes for each command and incident event. Pure: no Kafka, no faust, no HTTP, no SQL.

The rules live in `domain` (checklists, custody, closure, the legal clock); this module turns a
decision into the events that record it, and seals each record into the incident's hash chain
(`chain`): every record carries the hash of the one before it, so an edited, removed or reordered
record shows on verification. The scene dict (one per incident, kept by the worker in a table)
holds the chain's head.

    events = on_command(scene, command, now)       # a user's command: records, or command.rejected
    events = on_incident_event(scene, event, now)  # what other services said about the incident
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.events import (
    CloseIncident, CommandRejected, CorrectEvidence, CustodyTransferred, EventData, EvidenceCorrected,
    EvidenceRegistered, IncidentClosed, IncidentOpened, IncidentReopened, LegalClockStarted, LegalDeadline,
    LegalDeadlineOverdue, LetterSent, LpRegistered, RecordLetter, RecordSceneStep, RegisterEvidence, RegisterLp,
    ReopenIncident,
    SceneStatusChanged, SceneStepRecorded, SttlpIssued, TransferCustody, UnitArrived,
)

from . import chain, domain
from .eido import APCO_CLOSE_CODES

CHAIN_FIELDS = {"prev_hash", "record_hash"}
DEFAULT_LEGAL = domain.LegalRules()
COMMANDS = (RecordSceneStep, RegisterEvidence, TransferCustody, CorrectEvidence, CloseIncident, ReopenIncident,
            RecordLetter)


def chain_content(event: EventData) -> dict[str, Any]:
    """What a record's hash covers: its data without the two hash fields."""
    return event.model_dump(mode="json", exclude=CHAIN_FIELDS)


def seal(scene: dict, event: EventData) -> EventData:
    """Link the record to the incident's chain: prev_hash is the head, record_hash covers both."""
    sealed = chain.append(scene.get("chain_head"), event.event_type, chain_content(event))
    event.prev_hash = sealed.prev_hash
    event.record_hash = sealed.hash
    scene["chain_head"] = sealed.hash
    scene["chain_length"] = scene.get("chain_length", 0) + 1
    return event


def new_scene(incident_id: str, category: str = "unknown") -> dict:
    scene = domain.new_scene(incident_id, category)
    scene.update(chain_head=None, chain_length=0, reports=[], opened_at=None, pending_close=None, deadlines=[])
    return scene


def _rejected(command: EventData, reason: str, now: datetime) -> list[EventData]:
    return [CommandRejected(command_id=command.command_id, command=command.event_type, reason=reason, rejected_at=now)]


# --- commands --------------------------------------------------------------------------------------
def on_command(scene: dict, command: EventData, now: datetime,
               legal: domain.LegalRules = DEFAULT_LEGAL) -> list[EventData]:
    if isinstance(command, RecordSceneStep):
        return _record_step(scene, command, now)
    if isinstance(command, RegisterEvidence):
        return _register_evidence(scene, command, now)
    if isinstance(command, TransferCustody):
        return _transfer(scene, command, now)
    if isinstance(command, CorrectEvidence):
        return _correct(scene, command, now)
    if isinstance(command, CloseIncident):
        return _close(scene, command, now, legal)
    if isinstance(command, ReopenIncident):
        return _reopen(scene, command, now)
    if isinstance(command, RecordLetter):
        return _letter(scene, command, now)
    return []


def _letter(scene: dict, c: RecordLetter, now: datetime) -> list[EventData]:
    """A letter sent meets its deadline (the clock stops asking for it)."""
    deadline = next((d for d in scene.get("deadlines", []) if d["key"] == c.key), None)
    if deadline is None:
        known = ", ".join(d["key"] for d in scene.get("deadlines", [])) or "belum ada tenggat"
        return _rejected(c, f"Tenggat {c.key} tidak ada pada perkara ini ({known})", now)
    if deadline.get("met_at"):
        return _rejected(c, f"Surat untuk {c.key} sudah tercatat terkirim", now)
    deadline["met_at"] = c.sent_at.isoformat()
    return [seal(scene, LetterSent(incident_id=c.incident_id, command_id=c.command_id, key=c.key,
                                   code=deadline["code"], reference=c.reference, sent_by=c.sent_by,
                                   sent_at=c.sent_at))]


def _record_step(scene: dict, c: RecordSceneStep, now: datetime) -> list[EventData]:
    before = scene.get("status")
    outcome = domain.record_step(scene, c.phase, c.step, at=c.recorded_at, by=c.recorded_by, note=c.note)
    if not outcome.accepted:
        return _rejected(c, outcome.reason or "Langkah ditolak", now)
    recorded = SceneStepRecorded(**c.model_dump(), out_of_order=list(outcome.out_of_order), warning=outcome.warning)
    if outcome.repeated:  # already on record: answer as before, write nothing new to the chain
        return [recorded]
    events: list[EventData] = [seal(scene, recorded)]
    if outcome.status is not None:
        events.append(seal(scene, SceneStatusChanged(incident_id=c.incident_id, status=outcome.status,
                                                     previous=before, changed_at=c.recorded_at)))
    return events


def _register_evidence(scene: dict, c: RegisterEvidence, now: datetime) -> list[EventData]:
    registered = EvidenceRegistered(**c.model_dump())
    if c.evidence_id in scene["evidence"]:
        if scene["evidence"][c.evidence_id]["seal_number"] == c.seal_number:
            return [registered]  # the same item again: already on record
        return _rejected(c, f"Barang bukti {c.evidence_id} sudah tercatat dengan segel lain", now)
    refusal = domain.register_evidence(scene, c.evidence_id, seal_number=c.seal_number, description=c.description,
                                       kind=c.kind, collected_by=c.collected_by, at=c.collected_at)
    if refusal is not None:
        return _rejected(c, refusal.reason, now)
    return [seal(scene, registered)]


def _transfer(scene: dict, c: TransferCustody, now: datetime) -> list[EventData]:
    holder, refusal = domain.transfer_custody(scene, c.evidence_id, to=c.to, reason=c.reason, by=c.by, at=c.at)
    if refusal is not None:
        return _rejected(c, refusal.reason, now)
    sequence = scene["evidence"][c.evidence_id]["transfers"]
    return [seal(scene, CustodyTransferred(incident_id=c.incident_id, command_id=c.command_id,
                                           evidence_id=c.evidence_id, from_holder=holder or "-", to=c.to,
                                           reason=c.reason, by=c.by, at=c.at, sequence=sequence))]


CORRECTABLE = {"description", "kind", "found_where", "media"}


def _correct(scene: dict, c: CorrectEvidence, now: datetime) -> list[EventData]:
    item = scene["evidence"].get(c.evidence_id)
    if item is None:
        return _rejected(c, f"Barang bukti {c.evidence_id} tidak dikenal", now)
    wrong = sorted(set(c.changes) - CORRECTABLE)
    if wrong or not c.changes:
        return _rejected(c, "Koreksi hanya untuk: " + ", ".join(sorted(CORRECTABLE))
                         + (f" (bukan {', '.join(wrong)})" if wrong else ""), now)
    if not c.reason.strip():
        return _rejected(c, "Koreksi wajib disertai alasan", now)
    item.setdefault("corrected", []).append(c.at.isoformat())
    return [seal(scene, EvidenceCorrected(incident_id=c.incident_id, command_id=c.command_id,
                                          evidence_id=c.evidence_id, changes=c.changes, reason=c.reason, by=c.by,
                                          at=c.at))]


def _close(scene: dict, c: CloseIncident, now: datetime, legal: domain.LegalRules) -> list[EventData]:
    if scene.get("pending_close"):
        return _rejected(c, "Penutupan kejadian ini sedang menunggu nomor LP", now)
    if c.disposition == "lp_made" and c.lp_model is None:
        return _rejected(c, "Disposisi 'LP dibuat' memerlukan model LP (A atau B)", now)
    missing = domain.missing_for_closure(scene, c.disposition)
    if missing:
        return _rejected(c, "Belum lengkap: " + "; ".join(missing), now)
    if scene.get("closed"):
        return _rejected(c, "Kejadian sudah ditutup", now)
    if c.disposition == "lp_made":
        # The LP number is intake's (gapless per office and year): ask, close when it comes back.
        scene["pending_close"] = c.model_dump(mode="json")
        report_id = c.report_id or (scene["reports"][0] if scene["reports"] else None)
        return [RegisterLp(command_id=c.command_id, area=c.area, incident_id=c.incident_id, report_id=report_id,
                           model=c.lp_model, requested_by=c.closed_by, requested_at=now)]
    return _closed(scene, c, None, now, legal)


def _closed(scene: dict, c: CloseIncident, lp_number: str | None, now: datetime,
            legal: domain.LegalRules) -> list[EventData]:
    refusal = domain.close(scene, disposition=c.disposition, at=now, by=c.closed_by)
    if refusal is not None:
        return _rejected(c, refusal.reason, now)
    code = APCO_CODES.get(c.disposition)
    events: list[EventData] = [seal(scene, IncidentClosed(
        incident_id=c.incident_id, disposition=c.disposition, summary=c.summary, closed_at=now, closed_by=c.closed_by,
        lp_number=lp_number, command_id=c.command_id, apco_code=code))]
    if lp_number:
        events.append(SttlpIssued(incident_id=c.incident_id, lp_number=lp_number, report_ids=list(scene["reports"]),
                                  issued_at=now))
        # The case goes to Reskrim: the letters to the reporter and the prosecutor fall due.
        reported = datetime.fromisoformat(scene["opened_at"]) if scene.get("opened_at") else now
        deadlines = domain.legal_deadlines(reported_at=reported, investigation_ordered_at=now, difficulty=c.difficulty,
                                           rules=legal)
        scene["deadlines"] = [{"key": d.key, "code": d.code, "words": d.words, "due_at": d.due_at.isoformat(),
                               "met_at": None, "escalated": False} for d in deadlines]
        events.append(LegalClockStarted(
            incident_id=c.incident_id, lp_number=lp_number, difficulty=c.difficulty, started_at=now,
            deadlines=[LegalDeadline(key=d.key, kind=d.kind, code=d.code, due_at=d.due_at, words=d.words)
                       for d in deadlines]))
    return events


def _reopen(scene: dict, c: ReopenIncident, now: datetime) -> list[EventData]:
    refusal = domain.reopen(scene, at=now, by=c.reopened_by, reason=c.reason)
    if refusal is not None:
        return _rejected(c, refusal.reason, now)
    return [seal(scene, IncidentReopened(incident_id=c.incident_id, command_id=c.command_id, reason=c.reason,
                                         reopened_by=c.reopened_by, reopened_at=now))]


# --- what the other services said ------------------------------------------------------------------
def on_incident_event(scene: dict, event: EventData, now: datetime,
                      legal: domain.LegalRules = DEFAULT_LEGAL) -> list[EventData]:
    if isinstance(event, IncidentOpened):
        domain.set_category(scene, event.category)
        scene["opened_at"] = scene.get("opened_at") or event.opened_at.isoformat()
        for report_id in event.report_ids:
            if report_id not in scene["reports"]:
                scene["reports"].append(report_id)
        return []
    if isinstance(event, UnitArrived):
        before = scene.get("status")
        status = domain.unit_arrived(scene)
        if status is None:
            return []
        return [seal(scene, SceneStatusChanged(incident_id=event.incident_id, status=status, previous=before,
                                               changed_at=event.arrived_at))]
    if isinstance(event, LpRegistered):
        pending = scene.get("pending_close")
        if not pending or event.command_id != pending["command_id"]:
            return []
        scene["pending_close"] = None
        return _closed(scene, CloseIncident.model_validate(pending), event.lp_number, now, legal)
    if isinstance(event, LegalDeadlineOverdue):
        for deadline in scene.get("deadlines", []):
            if deadline["key"] == event.key:
                deadline["escalated"] = True
        return []
    report_id = getattr(event, "report_id", None)
    if event.event_type == "report.attached" and report_id and report_id not in scene["reports"]:
        scene["reports"].append(report_id)
    return []


def overdue_letters(scene: dict, now: datetime) -> list[LegalDeadlineOverdue]:
    """Letters past their due time and not yet escalated: one escalation each."""
    by_key = {d["key"]: d for d in scene.get("deadlines", [])}
    return [LegalDeadlineOverdue(incident_id=scene["incident_id"], key=key, code=by_key[key]["code"],
                                 words=by_key[key]["words"], due_at=datetime.fromisoformat(by_key[key]["due_at"]),
                                 noticed_at=now)
            for key in domain.overdue(scene.get("deadlines", []), now)]


APCO_CODES = {disposition: code for disposition, (code, _) in APCO_CLOSE_CODES.items()}
