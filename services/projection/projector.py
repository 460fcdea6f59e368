"""Applies events to the read model. Each event once: its id is recorded in the same transaction.

GPS positions are the exception: they are many, and applying one twice is harmless (a position
only replaces an older one), so they are not recorded one by one.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from schemas.envelope import Envelope, utcnow
from schemas.events import (
    AssistanceDecided, AssistanceEscalated, DispatchRecommended, EventData, IncidentClosed, IncidentMerged,
    IncidentOpened, IncidentSplit, LpRegistered, ReportAttached, ReportReceived, TargetBreached, UnitAssigned,
    UnitPositionReported, UnitRegistered, UnitStatusChanged,
)

from . import tables as t

log = logging.getLogger(__name__)


class Projector:
    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    def apply(self, envelope: Envelope, event: EventData, *, topic: str = "", partition: int = -1,
              offset: int = -1) -> bool:
        """True when applied, False when it was seen before (or is not for the read model)."""
        with self.sessions.begin() as session:
            if isinstance(event, UnitPositionReported):
                return self._position(session, event)
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
                                 recommended_at=e.recommended_at))
        if e.candidates:
            best = e.candidates[0]
            summary = f"Rekomendasi: {best.callsign} ({', '.join(best.reasons[1:])})"
        else:
            summary = "Rekomendasi: tidak ada unit yang memenuhi"
        self._timeline(s, env, e.incident_id, env.source, summary)

    def _UnitRegistered(self, s: Session, env: Envelope, e: UnitRegistered) -> None:
        unit = s.get(t.Unit, e.unit_id)
        if unit is None:
            s.add(t.Unit(unit_id=e.unit_id, callsign=e.callsign, kind=e.kind, station=e.station,
                         capabilities=list(e.capabilities), status="available", updated_at=env.time))
        else:
            unit.callsign, unit.kind, unit.station = e.callsign, e.kind, e.station
            unit.capabilities, unit.updated_at = list(e.capabilities), env.time

    def _UnitStatusChanged(self, s: Session, env: Envelope, e: UnitStatusChanged) -> None:
        s.execute(update(t.Unit).where(t.Unit.unit_id == e.unit_id)
                  .values(status=e.status, incident_id=e.incident_id, updated_at=env.time))

    def _UnitAssigned(self, s: Session, env: Envelope, e: UnitAssigned) -> None:
        s.merge(t.Assignment(assignment_id=e.assignment_id, incident_id=e.incident_id, unit_id=e.unit_id,
                             status="assigned", assigned_by=e.assigned_by, assigned_at=e.assigned_at))
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .values(status="assigned", updated_at=env.time))
        self._timeline(s, env, e.incident_id, e.assigned_by, f"Unit {e.unit_id} ditugaskan")

    def _IncidentClosed(self, s: Session, env: Envelope, e: IncidentClosed) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .values(status="closed", closed_at=e.closed_at, disposition=e.disposition,
                          lp_number=e.lp_number, updated_at=env.time))
        self._timeline(s, env, e.incident_id, e.closed_by or env.source, f"Kejadian ditutup: {e.disposition}")

    def _position(self, s: Session, e: UnitPositionReported) -> bool:
        at = e.at.astimezone(timezone.utc)  # stored times are UTC, so they compare on every database
        result = s.execute(
            update(t.Unit)
            .where(t.Unit.unit_id == e.unit_id)
            .where((t.Unit.position_at.is_(None)) | (t.Unit.position_at <= at))
            .values(lat=e.lat, lon=e.lon, position_at=at)
        )
        return result.rowcount > 0

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
