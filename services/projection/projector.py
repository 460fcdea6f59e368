"""Applies events to the read model. Each event once: its id is recorded in the same transaction.

GPS positions are the exception: they are many (thousands a second), and applying one twice is
harmless (a position only replaces an older one), so they are not recorded one by one. They are
coalesced per unit in memory and written together (`flush_positions`, every half second and every
POSITION_BATCH units): a console needs a unit's latest fix, not each one. One lost on a crash is
replaced by the unit's next fix seconds later.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from schemas.envelope import Envelope, utcnow
from schemas.events import (
    AssignmentAcknowledged, AssignmentDeclined, AssignmentEnded, AssignmentUnacknowledged, AssistanceDecided,
    AssistanceEscalated, CommandRejected, DispatchRecommended, EventData, IncidentClosed, IncidentMerged,
    IncidentOpened, IncidentRelocated, IncidentSplit, LpRegistered, RecommendationRequested, ReportAttached,
    ReportReceived, TargetBreached, UnitArrived, UnitAssigned, UnitPositionReported, UnitRegistered,
    UnitStatusChanged,
)
from services.dispatch.lifecycle import words as status_words

from . import tables as t

log = logging.getLogger(__name__)


# How far an assignment has come: a late event of an earlier stage never moves it back.
ASSIGNMENT_STAGE = {"assigned": 0, "acknowledged": 1, "en_route": 2, "on_scene": 3,
                    "declined": 4, "cancelled": 4, "cleared": 4}


POSITION_BATCH = 500


class Projector:
    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self._positions: dict[str, tuple[float, float, datetime]] = {}

    def apply(self, envelope: Envelope, event: EventData, *, topic: str = "", partition: int = -1,
              offset: int = -1) -> bool:
        """True when applied, False when it was seen before (or is not for the read model)."""
        if isinstance(event, UnitPositionReported):
            return self._hold_position(event)
        with self.sessions.begin() as session:
            if session.get(t.ProcessedEvent, envelope.id) is not None:
                return False
            session.add(t.ProcessedEvent(event_id=envelope.id, event_type=envelope.type, topic=topic,
                                         partition=partition, offset=offset, processed_at=utcnow()))
            session.flush()
            handler = getattr(self, "_" + type(event).__name__, None)
            if handler is None:
                return False
            handler(session, envelope, event)
            return True

    # --- one method per event type, named after it ------------------------------------------
    def _ReportReceived(self, s: Session, env: Envelope, e: ReportReceived) -> None:
        s.merge(t.Report(report_id=e.report_id, tracking_code=e.tracking_code, channel=e.channel,
                         description=e.description, category=e.category,
                         reporter=e.reporter.model_dump(mode="json", exclude_none=True),
                         location=e.location.model_dump(mode="json", exclude_none=True),
                         received_at=e.received_at, received_by=e.received_by,
                         assistance_request=e.assistance_request, reporter_phone=e.reporter.phone,
                         caller_warning=e.caller_warning))

    def _IncidentOpened(self, s: Session, env: Envelope, e: IncidentOpened) -> None:
        s.merge(t.Incident(incident_id=e.incident_id, number=e.number, status="received", category=e.category,
                           priority=e.priority, summary=e.summary,
                           location=e.location.model_dump(mode="json", exclude_none=True),
                           jurisdiction=e.jurisdiction, opened_at=e.opened_at, updated_at=env.time,
                           polres=e.polres, location_verified=e.location_verified, location_note=e.location_note,
                           category_confidence=e.category_confidence,
                           category_low_confidence=e.category_low_confidence, sensitive=e.sensitive,
                           assistance_request=e.assistance_request, response_plan=e.response_plan,
                           targets={k: v.isoformat() for k, v in e.targets.items()}))
        for report_id in e.report_ids:
            s.merge(t.IncidentReport(report_id=report_id, incident_id=e.incident_id, linked_at=env.time))
        s.merge(t.IncidentIntervals(incident_id=e.incident_id, jurisdiction=e.polres or e.jurisdiction,
                                    received_at=e.opened_at))
        notes = []
        if e.category_low_confidence:
            notes.append("kategori perlu dikonfirmasi")
        if not e.location_verified:
            notes.append(e.location_note or "lokasi belum terverifikasi")
        self._timeline(s, env, e.incident_id, env.source,
                       f"Kejadian {e.number} dibuka ({e.category}, {e.priority})"
                       + (f"; {'; '.join(notes)}" if notes else ""))

    def _ReportAttached(self, s: Session, env: Envelope, e: ReportAttached) -> None:
        s.merge(t.IncidentReport(report_id=e.report_id, incident_id=e.incident_id, linked_at=env.time,
                                 match=e.match.model_dump(mode="json")))
        self._timeline(s, env, e.incident_id, env.source,
                       f"Laporan tambahan digabungkan (skor {e.match.total:.2f}: {', '.join(e.match.reasons)})")

    def _IncidentMerged(self, s: Session, env: Envelope, e: IncidentMerged) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .values(status="duplicate", merged_into=e.into, disposition="duplicate", updated_at=env.time))
        # Every reporter of the merged incident stays attached, now to the one that remains.
        s.execute(update(t.IncidentReport).where(t.IncidentReport.incident_id == e.incident_id)
                  .values(incident_id=e.into, merged=True))
        self._timeline(s, env, e.incident_id, e.merged_by, f"Digabung ke kejadian {e.into}: {e.reason or '-'}")
        self._timeline(s, env, e.into, e.merged_by, f"Kejadian {e.incident_id} digabungkan ke sini",
                       entry_id=env.id + "/into")

    def _IncidentSplit(self, s: Session, env: Envelope, e: IncidentSplit) -> None:
        s.execute(update(t.IncidentReport).where(t.IncidentReport.report_id == e.report_id)
                  .values(incident_id=e.new_incident_id, merged=False, match=None))
        self._timeline(s, env, e.incident_id, e.split_by,
                       f"Laporan {e.report_id} dipisah menjadi kejadian baru: {e.reason or '-'}")

    def _LpRegistered(self, s: Session, env: Envelope, e: LpRegistered) -> None:
        s.execute(update(t.Report).where(t.Report.report_id == e.report_id).values(lp_number=e.lp_number))
        link = s.get(t.IncidentReport, e.report_id)
        if link is not None:
            s.execute(update(t.Incident).where(t.Incident.incident_id == link.incident_id)
                      .values(lp_number=e.lp_number))
            self._timeline(s, env, link.incident_id, env.source, f"LP terdaftar: {e.lp_number}")

    def _TargetBreached(self, s: Session, env: Envelope, e: TargetBreached) -> None:
        s.merge(t.Escalation(event_id=env.id, incident_id=e.incident_id, why=f"target:{e.target}",
                             detail=f"Target {e.target} terlewati (batas {e.due_at:%H:%M:%S} UTC)",
                             escalated_at=e.breached_at))
        self._timeline(s, env, e.incident_id, env.source, f"Target waktu terlewati: {e.target}")

    def _AssistanceDecided(self, s: Session, env: Envelope, e: AssistanceDecided) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id).values(
            decision={"decision": e.decision, "reason": e.reason, "decided_by": e.decided_by,
                      "decided_at": e.decided_at.isoformat()}, updated_at=env.time))
        words = {"accept": "diterima", "decline": "ditolak", "refer": "dirujuk"}[e.decision]
        self._timeline(s, env, e.incident_id, e.decided_by,
                       f"Permintaan pendampingan {words}" + (f": {e.reason}" if e.reason else ""))

    def _AssistanceEscalated(self, s: Session, env: Envelope, e: AssistanceEscalated) -> None:
        s.merge(t.Escalation(event_id=env.id, incident_id=e.incident_id, why=e.why, detail=e.detail,
                             escalated_at=e.escalated_at))
        self._timeline(s, env, e.incident_id, env.source, f"Diteruskan ke atasan: {e.detail}")

    def _DispatchRecommended(self, s: Session, env: Envelope, e: DispatchRecommended) -> None:
        s.merge(t.Recommendation(incident_id=e.incident_id, event_id=env.id,
                                 candidates=[c.model_dump(mode="json") for c in e.candidates],
                                 excluded=[x.model_dump(mode="json") for x in e.excluded],
                                 recommended_at=e.recommended_at, excluded_counts=e.excluded_counts,
                                 shortfalls=e.shortfalls, trigger=e.trigger))
        if e.candidates:
            best = e.candidates[0]
            summary = f"Rekomendasi: {best.callsign} ({', '.join(best.reasons[1:])})"
        else:
            summary = "Rekomendasi: tidak ada unit yang memenuhi"
        if e.shortfalls:
            summary += "; kurang: " + "; ".join(e.shortfalls)
        self._timeline(s, env, e.incident_id, env.source, summary)

    def _RecommendationRequested(self, s: Session, env: Envelope, e: RecommendationRequested) -> None:
        what = f"Unit {e.unit_id} meminta bantuan (backup)" if e.backup else "Rekomendasi baru diminta"
        self._timeline(s, env, e.incident_id, e.requested_by, what + (f": {e.reason}" if e.reason else ""))

    def _IncidentRelocated(self, s: Session, env: Envelope, e: IncidentRelocated) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .values(location=e.location.model_dump(mode="json", exclude_none=True), updated_at=env.time))
        self._timeline(s, env, e.incident_id, e.relocated_by,
                       "Lokasi kejadian dikoreksi" + (f": {e.reason}" if e.reason else ""))

    def _UnitRegistered(self, s: Session, env: Envelope, e: UnitRegistered) -> None:
        unit = s.get(t.Unit, e.unit_id)
        if unit is None:
            unit = t.Unit(unit_id=e.unit_id, status="available", status_version=0, status_since=e.registered_at)
            s.add(unit)
        unit.callsign, unit.kind, unit.station = e.callsign, e.kind, e.station
        unit.capabilities, unit.updated_at = list(e.capabilities), env.time
        unit.shift_start_h, unit.shift_end_h, unit.jurisdiction = e.shift_start_h, e.shift_end_h, e.jurisdiction

    def _UnitStatusChanged(self, s: Session, env: Envelope, e: UnitStatusChanged) -> None:
        query = update(t.Unit).where(t.Unit.unit_id == e.unit_id)
        values = dict(status=e.status, incident_id=e.incident_id, updated_at=env.time, status_since=e.changed_at)
        if e.status_version is not None:  # dispatch's order: an older one never overwrites a newer one
            query = query.where(t.Unit.status_version < e.status_version)
            values["status_version"] = e.status_version
        s.execute(query.values(**values))
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"unit_id": e.unit_id, "status": e.status,
                                                  "previous_status": e.previous_status,
                                                  "incident_id": e.incident_id}, e.changed_at)
        if e.incident_id and e.status == "en_route":
            self._first(s, e.incident_id, "en_route_at", e.changed_at)
            if e.assignment_id:
                self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "en_route", en_route_at=e.changed_at)
        if e.incident_id and e.status not in ("dispatched",):
            self._timeline(s, env, e.incident_id, e.changed_by or env.source,
                           f"Unit {e.unit_id}: {status_words(e.status)}")

    def _UnitAssigned(self, s: Session, env: Envelope, e: UnitAssigned) -> None:
        self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "assigned", assigned_by=e.assigned_by,
                         assigned_at=e.assigned_at, callsign=e.callsign, automatic=e.automatic, warning=e.warning,
                         override_reason=e.override_reason)
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .where(t.Incident.status == "received").values(status="assigned", updated_at=env.time))
        self._first(s, e.incident_id, "dispatched_at", e.assigned_at)
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"assignment_id": e.assignment_id, "unit_id": e.unit_id,
                                                  "incident_id": e.incident_id, "status": "dispatched"},
                          e.assigned_at)
        how = " otomatis" if e.automatic else ""
        extra = "".join(f"; {x}" for x in (e.warning, e.override_reason and f"alasan: {e.override_reason}") if x)
        self._timeline(s, env, e.incident_id, e.assigned_by, f"Unit {e.callsign or e.unit_id} ditugaskan{how}{extra}")

    def _AssignmentAcknowledged(self, s: Session, env: Envelope, e: AssignmentAcknowledged) -> None:
        self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "acknowledged",
                         acknowledged_at=e.acknowledged_at)
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"assignment_id": e.assignment_id, "unit_id": e.unit_id,
                                                  "status": "acknowledged"}, e.acknowledged_at)
        self._timeline(s, env, e.incident_id, e.unit_id, f"Unit {e.unit_id} menerima penugasan")

    def _AssignmentDeclined(self, s: Session, env: Envelope, e: AssignmentDeclined) -> None:
        self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "declined", ended_at=e.declined_at,
                         end_reason=e.reason)
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"assignment_id": e.assignment_id, "unit_id": e.unit_id,
                                                  "status": "declined"}, e.declined_at)
        self._timeline(s, env, e.incident_id, e.unit_id, f"Unit {e.unit_id} menolak penugasan: {e.reason}")

    def _AssignmentUnacknowledged(self, s: Session, env: Envelope, e: AssignmentUnacknowledged) -> None:
        s.merge(t.Escalation(event_id=env.id, incident_id=e.incident_id, why="assignment_unacknowledged",
                             detail=f"Unit {e.unit_id} belum menjawab penugasan setelah {e.waited_s:.0f} detik",
                             escalated_at=e.alerted_at))
        self._timeline(s, env, e.incident_id, env.source,
                       f"Peringatan: unit {e.unit_id} belum menjawab penugasan ({e.waited_s:.0f} detik)")

    def _UnitArrived(self, s: Session, env: Envelope, e: UnitArrived) -> None:
        if e.assignment_id:
            self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "on_scene", arrived_at=e.arrived_at)
        self._first(s, e.incident_id, "on_scene_at", e.arrived_at)
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .where(t.Incident.status.in_(("received", "assigned"))).values(status="on_scene",
                                                                               updated_at=env.time))

    def _AssignmentEnded(self, s: Session, env: Envelope, e: AssignmentEnded) -> None:
        if e.assignment_id and e.why != "declined":
            self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, e.why, ended_at=e.ended_at)

    def _CommandRejected(self, s: Session, env: Envelope, e: CommandRejected) -> None:
        self._outcome(s, env.type, e.command_id, False, {"command": e.command}, e.rejected_at, reason=e.reason)

    @staticmethod
    def _outcome(s: Session, part: str, command_id: str, accepted: bool, result: dict, at: datetime,
                 reason: str | None = None) -> None:
        """What a command led to, by the type of each event it led to: one command can lead to
        events on two topics (an assignment: unit.assigned and unit.status-changed), read in no
        fixed order, and the API waits for the one it answers with."""
        row = s.get(t.CommandOutcome, command_id)
        if row is None:
            s.add(t.CommandOutcome(command_id=command_id, accepted=accepted, reason=reason, result={part: result},
                                   at=at))
        elif part not in row.result:
            row.result = {**row.result, part: result}

    @staticmethod
    def _assignment(s: Session, assignment_id: str, incident_id: str, unit_id: str, status: str, **values) -> None:
        """Create or complete the assignment; its status only moves forward. Status changes and
        assignment events come on two topics, read in no fixed order."""
        row = s.get(t.Assignment, assignment_id)
        if row is None:
            row = t.Assignment(assignment_id=assignment_id, incident_id=incident_id, unit_id=unit_id, status=status,
                               assigned_by=values.pop("assigned_by", "-"),
                               assigned_at=values.pop("assigned_at", None) or next(iter(values.values())))
            s.add(row)
        elif ASSIGNMENT_STAGE.get(status, 0) > ASSIGNMENT_STAGE.get(row.status, 0):
            row.status = status
        for name, value in values.items():
            setattr(row, name, value)

    @staticmethod
    def _first(s: Session, incident_id: str, column: str, at: datetime) -> None:
        """The first time a step happened for the incident; later ones leave it."""
        attr = getattr(t.IncidentIntervals, column)
        s.execute(update(t.IncidentIntervals).where(t.IncidentIntervals.incident_id == incident_id)
                  .where(attr.is_(None)).values({column: at}))

    def _IncidentClosed(self, s: Session, env: Envelope, e: IncidentClosed) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .values(status="closed", closed_at=e.closed_at, disposition=e.disposition,
                          lp_number=e.lp_number, updated_at=env.time))
        self._timeline(s, env, e.incident_id, e.closed_by or env.source, f"Kejadian ditutup: {e.disposition}")

    def _hold_position(self, e: UnitPositionReported) -> bool:
        """Keep the unit's newest fix for the next flush; False for a fix older than the one held."""
        at = e.at.astimezone(timezone.utc)
        held = self._positions.get(e.unit_id)
        if held is not None and held[2] > at:
            return False
        self._positions[e.unit_id] = (e.lat, e.lon, at)
        if len(self._positions) >= POSITION_BATCH:
            self.flush_positions()
        return True

    def flush_positions(self) -> int:
        """Write the held fixes in one transaction; a fix older than the stored one changes nothing."""
        if not self._positions:
            return 0
        pending, self._positions = self._positions, {}
        with self.sessions.begin() as s:
            for unit_id, (lat, lon, at) in pending.items():
                s.execute(update(t.Unit).where(t.Unit.unit_id == unit_id)
                          .where((t.Unit.position_at.is_(None)) | (t.Unit.position_at <= at))
                          .values(lat=lat, lon=lon, position_at=at))
        return len(pending)

    @staticmethod
    def _timeline(s: Session, env: Envelope, incident_id: str, actor: str, summary: str,
                  entry_id: str | None = None) -> None:
        s.add(t.TimelineEntry(entry_id=entry_id or env.id, event_id=env.id, incident_id=incident_id, at=env.time,
                              type=env.type, actor=actor, summary=summary))


def as_aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
