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
    DispatchRecommended, EventData, IncidentClosed, IncidentOpened, ReportReceived, UnitAssigned,
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
                         assistance_request=e.assistance_request))

    def _IncidentOpened(self, s: Session, env: Envelope, e: IncidentOpened) -> None:
        s.merge(t.Incident(incident_id=e.incident_id, number=e.number, status="received", category=e.category,
                           priority=e.priority, summary=e.summary,
                           location=e.location.model_dump(mode="json", exclude_none=True),
                           jurisdiction=e.jurisdiction, opened_at=e.opened_at, updated_at=env.time))
        for report_id in e.report_ids:
            s.merge(t.IncidentReport(report_id=report_id, incident_id=e.incident_id, linked_at=env.time))
        self._timeline(s, env, e.incident_id, env.source, f"Kejadian {e.number} dibuka ({e.category}, {e.priority})")

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
    def _timeline(s: Session, env: Envelope, incident_id: str, actor: str, summary: str) -> None:
        s.add(t.TimelineEntry(event_id=env.id, incident_id=incident_id, at=env.time, type=env.type,
                              actor=actor, summary=summary))


def as_aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
