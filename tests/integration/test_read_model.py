"""The projection on SQLite and PostgreSQL: each event applied once, in whatever order topics deliver."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from schemas.events import (
    Candidate, DispatchRecommended, IncidentOpened, UnitPositionReported, UnitRegistered, UnitStatusChanged,
)
from schemas.registry import make_event
from services.intake.domain import open_incident
from services.projection import tables as t
from services.projection.projector import Projector, as_aware
from services.projection.tables import prepare

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)


@pytest.fixture
def projector(database_url):
    sessions = prepare(database_url)
    yield Projector(sessions)
    sessions.kw["bind"].dispose()


def apply(projector, data, **kw):
    envelope = make_event(data, source="/test", **kw)
    return envelope, projector.apply(envelope, data, topic="x", partition=0, offset=1)


def counts(projector):
    with projector.sessions() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                for m in (t.ProcessedEvent, t.Report, t.Incident, t.IncidentReport, t.TimelineEntry, t.Unit)}


def test_replaying_an_event_changes_nothing(projector, report):
    envelope, applied = apply(projector, report)
    incident = open_incident(report)
    opened, _ = apply(projector, incident)
    before = counts(projector)
    assert applied and before["reports"] == 1 and before["incidents"] == 1 and before["timeline"] == 1
    assert projector.apply(envelope, report) is False
    assert projector.apply(opened, incident) is False
    assert counts(projector) == before


def test_the_report_finds_its_incident_whichever_arrives_first(projector, report):
    apply(projector, open_incident(report))  # the incidents topic was read first
    apply(projector, report)
    with projector.sessions() as s:
        link = s.get(t.IncidentReport, report.report_id)
        assert link.incident_id == open_incident(report).incident_id
        assert s.get(t.Report, report.report_id).tracking_code == report.tracking_code


def test_units_status_and_positions(projector):
    apply(projector, UnitRegistered(unit_id="u1", callsign="P1", kind="car", station="s", registered_at=NOW))
    apply(projector, UnitPositionReported(unit_id="u1", lat=-6.2, lon=106.8, at=NOW))
    # A late, older fix (in another time zone) must not move the unit back.
    older = (NOW - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=7)))
    _, applied = apply(projector, UnitPositionReported(unit_id="u1", lat=-6.0, lon=106.0, at=older))
    assert applied is False
    apply(projector, UnitStatusChanged(unit_id="u1", status="break", changed_at=NOW))
    with projector.sessions() as s:
        unit = s.get(t.Unit, "u1")
        assert (unit.lat, unit.lon, unit.status) == (-6.2, 106.8, "break")
        assert as_aware(unit.position_at) == NOW


def test_recommendation_is_kept_with_its_reasons(projector, report):
    incident = open_incident(report)
    rec = DispatchRecommended(incident_id=incident.incident_id, recommended_at=NOW, excluded=[], candidates=[
        Candidate(unit_id="u1", callsign="P1", kind="car", distance_m=120.0, eta_s=30.0,
                  reasons=["tercepat tiba", "tersedia", "jarak 120 m"])])
    apply(projector, incident)
    apply(projector, rec)
    with projector.sessions() as s:
        stored = s.get(t.Recommendation, incident.incident_id)
        assert stored.candidates[0]["unit_id"] == "u1" and stored.candidates[0]["reasons"][0] == "tercepat tiba"
        summaries = [e.summary for e in s.scalars(select(t.TimelineEntry).order_by(t.TimelineEntry.at))]
        assert summaries[-1].startswith("Rekomendasi: P1")
