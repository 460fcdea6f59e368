"""The projection on SQLite and PostgreSQL: each event applied once, in whatever order topics deliver."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from schemas.events import (
    Candidate, DispatchRecommended, UnitPositionReported, UnitRegistered, UnitStatusChanged,
)
from schemas.registry import make_event
from services.projection import tables as t
from services.projection.projector import Projector, as_aware

from .page_watch import PageWatchingProjector
from services.projection.tables import prepare

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)


def _opened(report):
    from schemas.envelope import derived_id
    from schemas.events import IncidentOpened

    return IncidentOpened(incident_id=derived_id("incident", report.report_id), number="KJD/JAKSEL/2026/000001",
                          report_ids=[report.report_id], category="fire", priority="P1", summary="s",
                          location=report.location, opened_at=NOW, polres="polres-jaksel")



@pytest.fixture
def projector(database_url):
    sessions = prepare(database_url)
    yield PageWatchingProjector(sessions)
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
    incident = _opened(report)
    opened, _ = apply(projector, incident)
    before = counts(projector)
    assert applied and before["reports"] == 1 and before["incidents"] == 1 and before["timeline"] == 1
    assert projector.apply(envelope, report) is False
    assert projector.apply(opened, incident) is False
    assert counts(projector) == before


def test_the_report_finds_its_incident_whichever_arrives_first(projector, report):
    apply(projector, _opened(report))  # the incidents topic was read first
    apply(projector, report)
    with projector.sessions() as s:
        link = s.get(t.IncidentReport, report.report_id)
        assert link.incident_id == _opened(report).incident_id
        assert s.get(t.Report, report.report_id).tracking_code == report.tracking_code


def test_units_status_and_positions(projector):
    apply(projector, UnitRegistered(unit_id="u1", callsign="P1", kind="car", station="s", registered_at=NOW))
    apply(projector, UnitPositionReported(unit_id="u1", lat=-6.2, lon=106.8, at=NOW))
    # A late, older fix (in another time zone) must not move the unit back.
    older = (NOW - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=7)))
    _, applied = apply(projector, UnitPositionReported(unit_id="u1", lat=-6.0, lon=106.0, at=older))
    assert applied is False
    apply(projector, UnitStatusChanged(unit_id="u1", status="break", changed_at=NOW))
    assert projector.flush_positions() == 1
    with projector.sessions() as s:
        unit = s.get(t.Unit, "u1")
        assert (unit.lat, unit.lon, unit.status) == (-6.2, 106.8, "break")
        assert as_aware(unit.position_at) == NOW
    # Flushed later, an older fix still never moves the unit back.
    apply(projector, UnitPositionReported(unit_id="u1", lat=-6.1, lon=106.1, at=older))
    assert projector.flush_positions() == 1
    with projector.sessions() as s:
        assert s.get(t.Unit, "u1").lat == -6.2


def test_flushes_of_every_size_ask_for_registered_units_in_a_few_statements_only(projector):
    """The database keeps each distinct statement prepared: an IN list of every length a flush met
    held ~75 MB in the projection (benchmarks/memory.py)."""
    from sqlalchemy import event

    projector = Projector(projector.sessions)  # without the page checks: thousands of fixes
    engine = projector.sessions.kw["bind"]
    for n in range(0, 1300, 3):
        apply(projector, UnitRegistered(unit_id=f"reg-{n:04d}", callsign=f"R{n}", kind="car", station="s",
                                        registered_at=NOW))
    lookups: set[str] = set()

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM units" in statement:
            lookups.add(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        for size in range(1, 1301, 37):  # registered and unregistered units' fixes, flushes of 36 sizes
            for n in range(size):
                apply(projector, UnitPositionReported(unit_id=f"reg-{n:04d}", lat=-6.2, lon=106.8,
                                                      at=NOW + timedelta(seconds=size)))
            projector.flush_positions()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert 0 < len(lookups) <= 12, len(lookups)  # powers of two up to 1,024
    with projector.sessions() as s:
        assert as_aware(s.get(t.Unit, "reg-1293").position_at) == NOW + timedelta(seconds=1296)
        assert s.get(t.Unit, "reg-0000").lat == -6.2


def test_fixes_held_for_unregistered_units_do_not_make_every_fix_a_flush(projector):
    """Fixes come in batches of POSITION_BATCH units, however many unregistered units' fixes are held."""
    from services.projection.projector import POSITION_BATCH

    apply(projector, UnitRegistered(unit_id="u1", callsign="P1", kind="car", station="s", registered_at=NOW))
    for n in range(POSITION_BATCH + 100):  # trackers whose units are not registered (yet)
        apply(projector, UnitPositionReported(unit_id=f"unknown-{n}", lat=-6.2, lon=106.8, at=NOW))
    for minute in range(10):
        apply(projector, UnitPositionReported(unit_id="u1", lat=-6.2, lon=106.8 + minute / 1000,
                                              at=NOW + timedelta(minutes=minute)))
    with projector.sessions() as s:
        assert s.get(t.Unit, "u1").position_at is None  # held for the next flush, not written fix by fix
    projector.flush_positions()
    with projector.sessions() as s:
        assert s.get(t.Unit, "u1").lon == pytest.approx(106.809)


def test_recommendation_is_kept_with_its_reasons(projector, report):
    incident = _opened(report)
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


def test_attach_merge_split_and_lp_keep_every_reporter_linked(projector, report):
    from schemas.events import IncidentMerged, IncidentSplit, LpRegistered, MatchScore, ReportAttached

    second = report.model_copy(update={"report_id": "r-2", "tracking_code": "SPKT-2222-2222"})
    third = report.model_copy(update={"report_id": "r-3", "tracking_code": "SPKT-3333-3333"})
    a, c = _opened(report), _opened(third)
    for event in (report, second, third, a, c):
        apply(projector, event)
    apply(projector, ReportAttached(incident_id=a.incident_id, report_id="r-2", attached_at=NOW, match=MatchScore(
        total=0.8, distance_m=90, minutes=3, category_score=1, text_score=0.4, reasons=["jarak 90 m"])))
    apply(projector, IncidentMerged(incident_id=c.incident_id, into=a.incident_id, report_ids=["r-3"],
                                    merged_by="disp", merged_at=NOW))
    apply(projector, LpRegistered(lp_number="LP/B/1/XI/2026/SPKT/POLRES X", model="B", office="POLRES X",
                                  sequence=1, year=2026, report_id=report.report_id, registered_at=NOW))
    with projector.sessions() as s:
        links = {l.report_id: (l.incident_id, l.merged) for l in s.scalars(select(t.IncidentReport))}
        assert links == {report.report_id: (a.incident_id, False), "r-2": (a.incident_id, False),
                         "r-3": (a.incident_id, True)}
        assert s.get(t.IncidentReport, "r-2").match["reasons"] == ["jarak 90 m"]
        assert s.get(t.Incident, c.incident_id).status == "duplicate"
        assert s.get(t.Incident, c.incident_id).merged_into == a.incident_id
        assert s.get(t.Incident, a.incident_id).lp_number == "LP/B/1/XI/2026/SPKT/POLRES X"
        assert s.get(t.Report, report.report_id).lp_number == "LP/B/1/XI/2026/SPKT/POLRES X"
    apply(projector, IncidentSplit(incident_id=a.incident_id, report_id="r-2", new_incident_id="new-1",
                                   split_by="disp", split_at=NOW))
    with projector.sessions() as s:
        assert s.get(t.IncidentReport, "r-2").incident_id == "new-1"


def test_escalations_reach_the_supervisors_list(projector, report):
    from schemas.events import AssistanceDecided, AssistanceEscalated, TargetBreached

    incident = _opened(report)
    apply(projector, incident)
    apply(projector, AssistanceDecided(incident_id=incident.incident_id, decision="decline", reason="tanpa surat",
                                       decided_by="bripka-andi", decided_at=NOW))
    apply(projector, AssistanceEscalated(incident_id=incident.incident_id, why="declined", detail="ditolak",
                                         escalated_at=NOW))
    apply(projector, TargetBreached(incident_id=incident.incident_id, target="dispatch", due_at=NOW,
                                    breached_at=NOW + timedelta(seconds=1), priority="P1"))
    with projector.sessions() as s:
        whys = sorted(e.why for e in s.scalars(select(t.Escalation)))
        assert whys == ["declined", "target:dispatch"]
        assert s.get(t.Incident, incident.incident_id).decision["decided_by"] == "bripka-andi"


def test_a_caller_with_repeated_false_reports_is_flagged_for_the_call_taker(projector, report):
    from schemas.events import IncidentClosed
    from services.api.routes.reports import _caller_warning

    phone = report.reporter.phone
    with projector.sessions() as s:
        assert _caller_warning(s, phone) is None
    for n in range(2):
        r = report.model_copy(update={"report_id": f"prank-{n}", "tracking_code": f"SPKT-PR{n}"})
        incident = _opened(r)
        apply(projector, r)
        apply(projector, incident)
        apply(projector, IncidentClosed(incident_id=incident.incident_id, disposition="false_report", closed_at=NOW))
    with projector.sessions() as s:
        warning = _caller_warning(s, phone)
        assert warning and "2 kali" in warning and "darurat" in warning
        assert _caller_warning(s, "+6289999999999") is None


def test_what_comes_for_an_incident_before_its_opening_waits_for_it(projector, report):
    """Topics are read in no fixed order: on a catch-up or a rebuild a closure can come first."""
    from schemas.events import IncidentClosed, SceneStatusChanged, UnitAssigned
    from services.projection.verify import incident_chains

    opened = _opened(report)
    incident_id = opened.incident_id
    later = [
        # Read in one fetch with the opening, from another topic, a recommendation can come first
        # even live (seen in CI): its line must still follow the opening's.
        DispatchRecommended(incident_id=incident_id, recommended_at=NOW, excluded=[], candidates=[
            Candidate(unit_id="u1", callsign="P1", kind="car", distance_m=120.0, eta_s=30.0,
                      reasons=["tercepat tiba", "tersedia", "jarak 120 m"])]),
        UnitAssigned(assignment_id="a1", incident_id=incident_id, unit_id="u1", assigned_by="op",
                     assigned_at=NOW + timedelta(minutes=1)),
        SceneStatusChanged(incident_id=incident_id, status="scene_released", changed_at=NOW + timedelta(minutes=20)),
        IncidentClosed(incident_id=incident_id, disposition="resolved_on_spot", closed_at=NOW + timedelta(minutes=30)),
    ]
    envelopes = {}
    for minute, data in reversed(list(enumerate(later, start=1))):  # the worst order: the closure first
        envelopes[id(data)], applied = apply(projector, data, time=NOW + timedelta(minutes=minute))
        assert applied
    with projector.sessions() as s:
        assert s.get(t.Incident, incident_id) is None
        assert s.scalar(select(func.count()).select_from(t.WaitingEvent)) == 4
        assert s.get(t.Assignment, "a1") is None and s.get(t.Recommendation, incident_id) is None

    apply(projector, opened)
    with projector.sessions() as s:
        incident = s.get(t.Incident, incident_id)
        # Closed, not "scene_released": the scene's release came before the closure.
        assert (incident.status, incident.disposition, incident.scene_status) == (
            "closed", "resolved_on_spot", "scene_released")
        assert as_aware(s.get(t.IncidentIntervals, incident_id).dispatched_at) == NOW + timedelta(minutes=1)
        assert s.get(t.Assignment, "a1").status == "assigned"
        assert s.get(t.Recommendation, incident_id).candidates[0]["unit_id"] == "u1"
        assert s.scalar(select(func.count()).select_from(t.WaitingEvent)) == 0
        timeline = s.scalars(select(t.TimelineEntry.type).filter_by(incident_id=incident_id)
                             .order_by(t.TimelineEntry.seq)).all()
        # The opening first, then what waited, in the order it happened: the record reads as it went.
        assert timeline == ["incident.opened", "dispatch.recommended", "unit.assigned", "scene.status-changed",
                            "incident.closed"]
        assert incident_chains(s, incident_id)["valid"]
    # Each is still applied once: read again (a redelivery), nothing changes.
    before = counts(projector)
    assert [projector.apply(envelopes[id(data)], data) for data in later] == [False] * len(later)
    assert counts(projector) == before


def test_a_units_status_for_an_incident_not_yet_opened_shows_at_once_and_its_times_wait(projector, report):
    """The board and the waiting command need the unit's status at once; its "en route" time, its
    assignment and its timeline line belong to the incident and wait for the opening (they were
    lost when the status came first)."""
    from services.projection.verify import incident_chains

    opened = _opened(report)
    incident_id = opened.incident_id
    apply(projector, UnitRegistered(unit_id="u1", callsign="P1", kind="car", station="s", registered_at=NOW))
    en_route = NOW + timedelta(minutes=2)
    apply(projector, UnitStatusChanged(unit_id="u1", status="en_route", previous_status="dispatched",
                                       incident_id=incident_id, changed_at=en_route, status_version=2,
                                       command_id="cmd-1", assignment_id="a1"), time=en_route)
    with projector.sessions() as s:
        unit = s.get(t.Unit, "u1")
        assert (unit.status, unit.incident_id) == ("en_route", incident_id)
        assert s.get(t.CommandOutcome, "cmd-1").accepted
        assert s.scalar(select(func.count()).select_from(t.WaitingEvent)) == 1
        assert s.get(t.Assignment, "a1") is None

    apply(projector, opened)
    with projector.sessions() as s:
        assert as_aware(s.get(t.IncidentIntervals, incident_id).en_route_at) == en_route
        assert s.get(t.Assignment, "a1").status == "en_route"
        timeline = s.scalars(select(t.TimelineEntry.type).filter_by(incident_id=incident_id)
                             .order_by(t.TimelineEntry.seq)).all()
        assert timeline == ["incident.opened", "unit.status-changed"]
        assert incident_chains(s, incident_id)["valid"]
        assert s.scalar(select(func.count()).select_from(t.WaitingEvent)) == 0
        assert s.get(t.Unit, "u1").status_version == 2


def test_a_report_attached_to_an_incident_since_merged_follows_it(projector, report):
    """Read after the merge (or before its incident's opening), an attachment ends where it would
    have had it been read in the order it happened: with the incident that remains, as merged."""
    from schemas.events import IncidentMerged, MatchScore, ReportAttached

    third = report.model_copy(update={"report_id": "r-3", "tracking_code": "SPKT-3333-3333"})
    a, c = _opened(report), _opened(third)
    match = MatchScore(total=0.8, distance_m=90, minutes=3, category_score=1, text_score=0.4, reasons=["jarak 90 m"])
    # r-2 is attached to a before a's opening is read; r-4 to c, read after c was merged into a.
    apply(projector, ReportAttached(incident_id=a.incident_id, report_id="r-2", attached_at=NOW, match=match))
    with projector.sessions() as s:
        assert s.get(t.IncidentReport, "r-2") is None
    for event in (a, c, IncidentMerged(incident_id=c.incident_id, into=a.incident_id, report_ids=["r-3"],
                                       merged_by="disp", merged_at=NOW)):
        apply(projector, event)
    apply(projector, ReportAttached(incident_id=c.incident_id, report_id="r-4", attached_at=NOW, match=match))
    with projector.sessions() as s:
        links = {l.report_id: (l.incident_id, l.merged) for l in s.scalars(select(t.IncidentReport))}
        assert links == {report.report_id: (a.incident_id, False), "r-2": (a.incident_id, False),
                         "r-3": (a.incident_id, True), "r-4": (a.incident_id, True)}
        # The attachment's line stays on the timeline of the incident it was attached to.
        assert s.scalar(select(func.count()).select_from(t.TimelineEntry)
                        .filter_by(incident_id=c.incident_id, type="report.attached")) == 1


def test_a_units_status_sign_in_and_position_read_before_its_registration_wait_for_it(projector):
    """On a catch-up the units topic can be read after the status and positions topics: what came
    first is applied with the registration, not lost (the unit showed "available", nowhere)."""
    from schemas.events import UnitSignedOut

    apply(projector, UnitStatusChanged(unit_id="u9", status="patrol", changed_at=NOW, status_version=3))
    apply(projector, UnitSignedOut(unit_id="u9", at=NOW, by="admin"))
    long_ago = NOW - timedelta(hours=2)  # an old fix: held however old, until the registration
    assert apply(projector, UnitPositionReported(unit_id="u9", lat=-6.21, lon=106.82, at=long_ago))[1]
    projector.flush_positions()
    with projector.sessions() as s:
        assert s.get(t.Unit, "u9") is None
        assert s.scalar(select(func.count()).select_from(t.WaitingEvent).filter_by(waits_for="unit:u9")) == 2
    apply(projector, UnitRegistered(unit_id="u9", callsign="P9", kind="car", station="s", registered_at=NOW))
    with projector.sessions() as s:
        unit = s.get(t.Unit, "u9")
        assert (unit.status, unit.status_version, unit.signed_in) == ("patrol", 3, False)
        assert (unit.lat, unit.lon, as_aware(unit.position_at)) == (-6.21, 106.82, long_ago)
        assert s.scalar(select(func.count()).select_from(t.WaitingEvent)) == 0


def test_an_lp_read_before_its_report_waits_for_it(projector, report):
    from schemas.events import LpRegistered

    lp = "LP/B/7/XI/2026/SPKT/POLRES X"
    apply(projector, LpRegistered(lp_number=lp, model="B", office="POLRES X", sequence=7, year=2026,
                                  report_id=report.report_id, registered_at=NOW))
    apply(projector, report)
    with projector.sessions() as s:
        assert s.get(t.Report, report.report_id).lp_number == lp


@pytest.mark.parametrize("order", ["as_it_happened", "split_first", "new_incident_first"])
def test_a_report_merged_then_split_out_ends_in_its_new_incident_unmerged_whatever_the_order(projector, report,
                                                                                             order):
    """Opened b, merged into a, split out into n: the link ends (n, not merged) in every order the
    incidents topic's partitions can be read in."""
    from schemas.events import IncidentMerged, IncidentSplit

    second = report.model_copy(update={"report_id": "r-b", "tracking_code": "SPKT-BBBB-BBBB"})
    a, b = _opened(report), _opened(second)
    n = b.model_copy(update={"incident_id": "inc-new", "number": "KJD/JAKSEL/2026/000009"})
    merge = IncidentMerged(incident_id=b.incident_id, into=a.incident_id, report_ids=["r-b"], merged_by="disp",
                           merged_at=NOW)
    split = IncidentSplit(incident_id=a.incident_id, report_id="r-b", new_incident_id="inc-new", split_by="disp",
                          split_at=NOW)
    timed = {id(a): 1, id(b): 2, id(merge): 3, id(split): 4, id(n): 5}  # minutes after NOW: when each happened
    orders = {"as_it_happened": [a, b, merge, split, n], "split_first": [split, a, b, merge, n],
              "new_incident_first": [n, split, a, b, merge]}
    for event in orders[order]:
        apply(projector, event, time=NOW + timedelta(minutes=timed[id(event)]))
    with projector.sessions() as s:
        link = s.get(t.IncidentReport, "r-b")
        assert (link.incident_id, link.merged) == ("inc-new", False)
        assert s.get(t.IncidentReport, report.report_id).incident_id == a.incident_id
