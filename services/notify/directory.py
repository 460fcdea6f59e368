"""Who can be reached, and which reporters belong to which incident. Pure: no Kafka, no faust.

Every notify worker keeps the whole directory in memory, fed from the report, incident and unit
topics (services/feeds.py): a milestone of an incident goes to every reporter of it, whichever
partition their report came through, and a merged incident's reporters stay attached.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from schemas.events import (
    EventData, IncidentMerged, IncidentOpened, IncidentSplit, LpRegistered, NotificationFailed, NotificationSent,
    ReportAttached, ReportReceived, UnitRegistered, UnitSignedIn, UnitSignedOut, UnitStatusChanged,
)

from .domain import IncidentFacts, ReporterContact, UnitContact

OFF_DUTY = frozenset({"off_duty", "out_of_service"})
DONE_KEPT = timedelta(days=7)


class MemoryDirectory:
    """The services.notify.domain.Directory the worker reads."""

    def __init__(self) -> None:
        self._reporters: dict[str, ReporterContact] = {}
        self._incident_reports: dict[str, list[str]] = {}
        self._incidents: dict[str, IncidentFacts] = {}
        self._units: dict[str, UnitContact] = {}
        # Notifications already sent or given up on (from spkt.notifications): a worker that
        # starts again never delivers one of these a second time. Kept for DONE_KEPT: an outbox
        # entry is delivered or given up on within hours, so older ids can never be asked about.
        self.done: dict[str, datetime] = {}

    # --- reads (domain.Directory) -----------------------------------------------------------
    def reporter(self, report_id: str) -> ReporterContact | None:
        return self._reporters.get(report_id)

    def reporters_of(self, incident_id: str) -> list[ReporterContact]:
        return [r for rid in self._incident_reports.get(incident_id, []) if (r := self._reporters.get(rid))]

    def incident(self, incident_id: str) -> IncidentFacts | None:
        return self._incidents.get(incident_id)

    def unit(self, unit_id: str) -> UnitContact | None:
        return self._units.get(unit_id)

    # --- what the topics say ----------------------------------------------------------------
    def apply(self, event: EventData) -> None:
        if isinstance(event, (NotificationSent, NotificationFailed)):
            at = event.sent_at if isinstance(event, NotificationSent) else event.failed_at
            self.done[event.notification_id] = at
            if len(self.done) % 10_000 == 0:
                self._forget_done_before(at - DONE_KEPT)
        elif isinstance(event, ReportReceived):
            r = event.reporter
            self._reporters[event.report_id] = ReporterContact(
                report_id=event.report_id, tracking_code=event.tracking_code, name=r.name, phone=r.phone,
                email=r.email, language=r.language)
        elif isinstance(event, IncidentOpened):
            loc = event.location
            self._incidents[event.incident_id] = IncidentFacts(
                incident_id=event.incident_id, number=event.number, category=event.category, summary=event.summary,
                sensitive=event.sensitive, lat=loc.lat, lon=loc.lon, address=loc.address or loc.landmark)
            self._link(event.incident_id, *event.report_ids)
        elif isinstance(event, ReportAttached):
            self._link(event.incident_id, event.report_id)
        elif isinstance(event, IncidentMerged):  # every reporter of the merged incident stays informed
            self._link(event.into, *self._incident_reports.pop(event.incident_id, []), *event.report_ids)
        elif isinstance(event, IncidentSplit):
            self._incident_reports[event.incident_id] = [
                r for r in self._incident_reports.get(event.incident_id, []) if r != event.report_id]
            self._link(event.new_incident_id, event.report_id)
        elif isinstance(event, LpRegistered) and event.incident_id and event.incident_id in self._incidents:
            facts = self._incidents[event.incident_id]
            self._incidents[event.incident_id] = IncidentFacts(**{**facts.__dict__, "lp_number": event.lp_number})
        elif isinstance(event, UnitRegistered):
            held = self._units.get(event.unit_id)
            self._units[event.unit_id] = UnitContact(unit_id=event.unit_id, callsign=event.callsign,
                                                     phone=event.phone, email=event.email,
                                                     on_duty=held.on_duty if held else True,
                                                     signed_in=held.signed_in if held else True)
        elif isinstance(event, UnitStatusChanged) and (held := self._units.get(event.unit_id)) is not None:
            self._units[event.unit_id] = UnitContact(**{**held.__dict__, "on_duty": event.status not in OFF_DUTY})
        elif isinstance(event, (UnitSignedIn, UnitSignedOut)) and (held := self._units.get(event.unit_id)) is not None:
            self._units[event.unit_id] = UnitContact(**{**held.__dict__,
                                                        "signed_in": isinstance(event, UnitSignedIn)})

    def _forget_done_before(self, cutoff: datetime) -> None:
        for nid in [nid for nid, at in self.done.items() if at < cutoff]:
            del self.done[nid]

    def _link(self, incident_id: str, *report_ids: str) -> None:
        linked = self._incident_reports.setdefault(incident_id, [])
        linked.extend(r for r in report_ids if r not in linked)
