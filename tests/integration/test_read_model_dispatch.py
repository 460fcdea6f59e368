"""The read model's dispatch handlers (services.projection.projector) on SQLite and PostgreSQL. No broker."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from schemas.events import (
    AssignmentAcknowledged, AssignmentDeclined, AssignmentEnded, AssignmentUnacknowledged, Candidate,
    CommandRejected, DispatchRecommended, Exclusion, IncidentOpened, Location, UnitArrived, UnitAssigned,
    UnitRegistered, UnitStatusChanged,
)
from schemas.registry import make_event
from services.projection import tables as t
from services.projection.projector import Projector, as_aware

from .page_watch import PageWatchingProjector

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
INC = "inc-1"
ASG = "asg-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def sessions(database_url):
    """On SQLite and on PostgreSQL (tests/conftest.py)."""
    made = t.prepare(database_url)
    yield made
    made.kw["bind"].dispose()


@pytest.fixture
def projector(sessions):
    return PageWatchingProjector(sessions)


def apply(projector: Projector, data, time: datetime | None = None) -> bool:
    return projector.apply(make_event(data, source="/test", time=time), data)


def get(sessions, table, key):
    with sessions() as s:
        return s.get(table, key)


def rows(sessions, table, **where):
    with sessions() as s:
        query = select(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return list(s.scalars(query))


def open_incident(projector, incident_id: str = INC, **kw) -> None:
    values = dict(incident_id=incident_id, number="KJD/001/XI/2026", report_ids=["r-1"], category="pencurian",
                  priority="P2", summary="Motor dicuri", location=Location(lat=-6.1754, lon=106.8272),
                  opened_at=T0, polres="polres-jakpus")
    values.update(kw)
    assert apply(projector, IncidentOpened(**values), time=T0)


def register(projector, unit_id: str = "u-1", **kw) -> None:
    values = dict(unit_id=unit_id, callsign="SABHARA-01", kind="car", station="Polsek Gambir",
                  capabilities=["first_aid"], registered_at=T0 - timedelta(days=1))
    values.update(kw)
    assert apply(projector, UnitRegistered(**values))


def status(unit_id: str = "u-1", value: str = "dispatched", version: int | None = None, when: float = 0,
           **kw) -> UnitStatusChanged:
    return UnitStatusChanged(unit_id=unit_id, status=value, changed_at=at(when), status_version=version, **kw)


def assigned(when: float = 60, **kw) -> UnitAssigned:
    values = dict(assignment_id=ASG, incident_id=INC, unit_id="u-1", assigned_by="operator-1", assigned_at=at(when),
                  command_id="cmd-assign", callsign="SABHARA-01")
    values.update(kw)
    return UnitAssigned(**values)


@pytest.fixture
def on_incident(projector):
    """An open incident, a registered unit and its assignment (60 s after opening)."""
    open_incident(projector)
    register(projector)
    assert apply(projector, assigned())
    assert apply(projector, status(value="dispatched", version=1, when=60, incident_id=INC, assignment_id=ASG,
                                   command_id="cmd-assign"))
    return projector


# --- units -------------------------------------------------------------------------------------
def test_unit_registered_with_shift_and_jurisdiction(projector, sessions):
    register(projector, shift_start_h=7, shift_end_h=19, jurisdiction="polres-jakpus")
    unit = get(sessions, t.Unit, "u-1")
    assert (unit.callsign, unit.kind, unit.station, unit.capabilities) == ("SABHARA-01", "car", "Polsek Gambir",
                                                                          ["first_aid"])
    assert (unit.shift_start_h, unit.shift_end_h, unit.jurisdiction) == (7, 19, "polres-jakpus")
    assert (unit.status, unit.status_version) == ("available", 0)


def test_re_registration_updates_and_keeps_the_status(projector, sessions):
    register(projector, shift_start_h=7, shift_end_h=19)
    assert apply(projector, status(value="patrol", version=3))
    register(projector, callsign="SABHARA-09", jurisdiction="polres-jaksel")
    unit = get(sessions, t.Unit, "u-1")
    assert (unit.callsign, unit.jurisdiction, unit.shift_start_h, unit.shift_end_h) == (
        "SABHARA-09", "polres-jaksel", None, None)
    assert (unit.status, unit.status_version) == ("patrol", 3)


def test_status_changed_versioned_an_older_version_does_not_overwrite(projector, sessions):
    register(projector)
    assert apply(projector, status(value="en_route", version=3, when=30, incident_id=INC))
    unit = get(sessions, t.Unit, "u-1")
    assert (unit.status, unit.status_version, unit.incident_id) == ("en_route", 3, INC)
    assert as_aware(unit.status_since) == at(30)
    assert apply(projector, status(value="dispatched", version=2, when=10, incident_id=INC))  # late
    assert apply(projector, status(value="available", version=3, when=40))  # same version
    unit = get(sessions, t.Unit, "u-1")
    assert (unit.status, unit.status_version, unit.incident_id) == ("en_route", 3, INC)
    assert as_aware(unit.status_since) == at(30)
    assert apply(projector, status(value="on_scene", version=4, when=50, incident_id=INC))
    assert get(sessions, t.Unit, "u-1").status == "on_scene"


def test_status_changed_unversioned_always_applies(projector, sessions):
    register(projector)
    assert apply(projector, status(value="on_scene", version=5, incident_id=INC))
    assert apply(projector, status(value="break", version=None))
    unit = get(sessions, t.Unit, "u-1")
    assert (unit.status, unit.status_version, unit.incident_id) == ("break", 5, None)


def test_status_changed_records_the_command_outcome(projector, sessions):
    register(projector)
    assert apply(projector, status(value="patrol", version=1, command_id="cmd-1", previous_status="available"))
    outcome = get(sessions, t.CommandOutcome, "cmd-1")
    assert outcome.accepted is True and outcome.reason is None
    assert outcome.result == {"unit.status-changed": {"unit_id": "u-1", "status": "patrol",
                                                      "previous_status": "available", "incident_id": None}}
    assert as_aware(outcome.at) == at(0)
    # without a command id: no outcome
    assert apply(projector, status(value="available", version=2))
    assert len(rows(sessions, t.CommandOutcome)) == 1


def test_the_same_event_twice_is_applied_once(projector, sessions):
    register(projector)
    data = status(value="patrol", version=1)
    envelope = make_event(data, source="/test")
    assert projector.apply(envelope, data) is True
    assert projector.apply(envelope, data) is False


# --- assignments -------------------------------------------------------------------------------
def test_unit_assigned(on_incident, sessions):
    assignment = get(sessions, t.Assignment, ASG)
    assert (assignment.incident_id, assignment.unit_id, assignment.status) == (INC, "u-1", "assigned")
    assert (assignment.assigned_by, assignment.callsign, assignment.automatic) == ("operator-1", "SABHARA-01", False)
    assert as_aware(assignment.assigned_at) == at(60)
    incident = get(sessions, t.Incident, INC)
    assert incident.status == "assigned"
    intervals = get(sessions, t.IncidentIntervals, INC)
    assert (as_aware(intervals.received_at), as_aware(intervals.dispatched_at)) == (T0, at(60))
    assert intervals.jurisdiction == "polres-jakpus"
    assert intervals.en_route_at is None and intervals.on_scene_at is None
    outcome = get(sessions, t.CommandOutcome, "cmd-assign")
    assert outcome.accepted is True
    assert outcome.result["unit.assigned"] == {"assignment_id": ASG, "unit_id": "u-1", "incident_id": INC,
                                               "status": "dispatched"}
    unit = get(sessions, t.Unit, "u-1")
    assert (unit.status, unit.incident_id, unit.status_version) == ("dispatched", INC, 1)


def test_unit_assigned_with_warning_and_override(projector, sessions):
    open_incident(projector)
    assert apply(projector, assigned(automatic=True, warning="Unit ditarik dari tugas pengawalan",
                                     override_reason="paling dekat"))
    assignment = get(sessions, t.Assignment, ASG)
    assert (assignment.automatic, assignment.warning, assignment.override_reason) == (
        True, "Unit ditarik dari tugas pengawalan", "paling dekat")
    timeline = rows(sessions, t.TimelineEntry, type="unit.assigned")
    assert len(timeline) == 1
    assert "otomatis" in timeline[0].summary and "pengawalan" in timeline[0].summary


def test_a_second_assignment_keeps_the_first_dispatch_time(on_incident, sessions):
    register(on_incident, "u-2")
    assert apply(on_incident, assigned(when=300, assignment_id="asg-2", unit_id="u-2", command_id="cmd-2"))
    assert as_aware(get(sessions, t.IncidentIntervals, INC).dispatched_at) == at(60)
    assert get(sessions, t.Incident, INC).status == "assigned"
    assert len(rows(sessions, t.Assignment, incident_id=INC)) == 2


def test_assignment_acknowledged_then_en_route(on_incident, sessions):
    assert apply(on_incident, AssignmentAcknowledged(assignment_id=ASG, incident_id=INC, unit_id="u-1",
                                                     acknowledged_at=at(90), command_id="cmd-accept"))
    assignment = get(sessions, t.Assignment, ASG)
    assert assignment.status == "acknowledged" and as_aware(assignment.acknowledged_at) == at(90)
    outcome = get(sessions, t.CommandOutcome, "cmd-accept")
    assert outcome.accepted is True and outcome.result["assignment.acknowledged"]["status"] == "acknowledged"
    assert apply(on_incident, status(value="en_route", version=2, when=90, incident_id=INC, assignment_id=ASG,
                                     command_id="cmd-accept"))
    assignment = get(sessions, t.Assignment, ASG)
    assert assignment.status == "en_route" and as_aware(assignment.en_route_at) == at(90)
    assert as_aware(get(sessions, t.IncidentIntervals, INC).en_route_at) == at(90)
    # the acknowledgement was the command's first outcome: it stays
    assert get(sessions, t.CommandOutcome, "cmd-accept").result["assignment.acknowledged"]["status"] == "acknowledged"


def test_assignment_declined(on_incident, sessions):
    assert apply(on_incident, AssignmentDeclined(assignment_id=ASG, incident_id=INC, unit_id="u-1",
                                                 reason="ban bocor", declined_at=at(100), command_id="cmd-decline"))
    assert apply(on_incident, AssignmentEnded(assignment_id=ASG, incident_id=INC, unit_id="u-1", why="declined",
                                              ended_at=at(100)))
    assignment = get(sessions, t.Assignment, ASG)
    assert (assignment.status, assignment.end_reason) == ("declined", "ban bocor")
    assert as_aware(assignment.ended_at) == at(100)
    outcome = get(sessions, t.CommandOutcome, "cmd-decline")
    assert outcome.accepted is True and outcome.result["assignment.declined"]["status"] == "declined"
    assert any("ban bocor" in e.summary for e in rows(sessions, t.TimelineEntry, incident_id=INC))


def test_unit_arrived(on_incident, sessions):
    assert apply(on_incident, UnitArrived(assignment_id=ASG, incident_id=INC, unit_id="u-1", arrived_at=at(400)))
    assert get(sessions, t.Incident, INC).status == "on_scene"
    assignment = get(sessions, t.Assignment, ASG)
    assert assignment.status == "on_scene" and as_aware(assignment.arrived_at) == at(400)
    assert as_aware(get(sessions, t.IncidentIntervals, INC).on_scene_at) == at(400)
    # a second unit arriving later does not move the first arrival
    assert apply(on_incident, UnitArrived(incident_id=INC, unit_id="u-2", arrived_at=at(900)))
    assert as_aware(get(sessions, t.IncidentIntervals, INC).on_scene_at) == at(400)


def test_unit_arrived_does_not_reopen_a_closed_incident(on_incident, sessions):
    from schemas.events import IncidentClosed
    assert apply(on_incident, IncidentClosed(incident_id=INC, disposition="resolved_on_spot", closed_at=at(300)))
    assert apply(on_incident, UnitArrived(assignment_id=ASG, incident_id=INC, unit_id="u-1", arrived_at=at(400)))
    assert get(sessions, t.Incident, INC).status == "closed"


@pytest.mark.parametrize("why", ["cleared", "cancelled"])
def test_assignment_ended(on_incident, sessions, why):
    assert apply(on_incident, AssignmentEnded(assignment_id=ASG, incident_id=INC, unit_id="u-1", why=why,
                                              ended_at=at(1200)))
    assignment = get(sessions, t.Assignment, ASG)
    assert assignment.status == why and as_aware(assignment.ended_at) == at(1200)


def test_assignment_unacknowledged_is_an_escalation(on_incident, sessions):
    data = AssignmentUnacknowledged(assignment_id=ASG, incident_id=INC, unit_id="u-1", assigned_at=at(60),
                                    waited_s=125.4, alerted_at=at(185))
    envelope = make_event(data, source="/dispatch")
    assert on_incident.apply(envelope, data)
    escalation = get(sessions, t.Escalation, envelope.id)
    assert (escalation.incident_id, escalation.why) == (INC, "assignment_unacknowledged")
    assert "u-1" in escalation.detail and "125 detik" in escalation.detail
    assert as_aware(escalation.escalated_at) == at(185)


# --- command outcomes --------------------------------------------------------------------------
def test_command_rejected_records_the_reason(projector, sessions):
    assert apply(projector, CommandRejected(command_id="cmd-x", command="assign-unit",
                                            reason="Unit SABHARA-01 tidak dapat ditugaskan", rejected_at=at(5)))
    outcome = get(sessions, t.CommandOutcome, "cmd-x")
    assert outcome.accepted is False and outcome.reason == "Unit SABHARA-01 tidak dapat ditugaskan"
    assert outcome.result == {"command.rejected": {"command": "assign-unit"}} and as_aware(outcome.at) == at(5)


def test_the_first_outcome_of_a_command_wins(on_incident, sessions):
    # accepted first, a rejection of the same command later does not change the answer
    assert apply(on_incident, CommandRejected(command_id="cmd-assign", command="assign-unit", reason="nanti",
                                              rejected_at=at(70)))
    outcome = get(sessions, t.CommandOutcome, "cmd-assign")
    assert outcome.accepted is True and outcome.reason is None
    # rejected first, an acceptance later does not change it either
    assert apply(on_incident, CommandRejected(command_id="cmd-y", command="change-unit-status", reason="tidak sah",
                                              rejected_at=at(80)))
    assert apply(on_incident, status(value="en_route", version=2, incident_id=INC, command_id="cmd-y"))
    outcome = get(sessions, t.CommandOutcome, "cmd-y")
    assert outcome.accepted is False and outcome.reason == "tidak sah"


# --- recommendations ---------------------------------------------------------------------------
def test_dispatch_recommended_is_stored(projector, sessions):
    open_incident(projector)
    candidate = Candidate(unit_id="u-1", callsign="SABHARA-01", kind="car", distance_m=250.0, eta_s=40.0,
                          reasons=["tercepat tiba", "tersedia", "jarak 250 m"])
    data = DispatchRecommended(incident_id=INC, candidates=[candidate],
                               excluded=[Exclusion(unit_id="u-2", reason="tidak tersedia: di TKP")],
                               recommended_at=at(5), excluded_counts={"not_available": 3, "stale_position": 1},
                               shortfalls=["butuh 1 unit inafis: tidak ada yang tersedia dalam radius 15 km"],
                               trigger="assignment.declined")
    envelope = make_event(data, source="/dispatch")
    assert projector.apply(envelope, data)
    rec = get(sessions, t.Recommendation, INC)
    assert rec.event_id == envelope.id
    assert rec.excluded_counts == {"not_available": 3, "stale_position": 1}
    assert rec.shortfalls == ["butuh 1 unit inafis: tidak ada yang tersedia dalam radius 15 km"]
    assert rec.trigger == "assignment.declined"
    assert [c["unit_id"] for c in rec.candidates] == ["u-1"]
    assert rec.excluded == [{"unit_id": "u-2", "reason": "tidak tersedia: di TKP"}]
    summary = rows(sessions, t.TimelineEntry, event_id=envelope.id)[0].summary
    assert "SABHARA-01" in summary and "kurang" in summary


def test_a_newer_recommendation_replaces_the_older(projector, sessions):
    open_incident(projector)
    first = DispatchRecommended(incident_id=INC, candidates=[], excluded=[], recommended_at=at(5))
    second = DispatchRecommended(incident_id=INC, candidates=[], excluded=[], recommended_at=at(60),
                                 trigger="recommendation.requested", excluded_counts={"no_position": 2})
    assert apply(projector, first) and apply(projector, second)
    rec = get(sessions, t.Recommendation, INC)
    assert rec.trigger == "recommendation.requested" and rec.excluded_counts == {"no_position": 2}
    assert rec.shortfalls == [] and as_aware(rec.recommended_at) == at(60)
    assert len(rows(sessions, t.Recommendation)) == 1


# --- a whole assignment, through the intervals -------------------------------------------------
def test_intervals_of_a_whole_assignment(on_incident, sessions):
    apply(on_incident, AssignmentAcknowledged(assignment_id=ASG, incident_id=INC, unit_id="u-1",
                                              acknowledged_at=at(120)))
    apply(on_incident, status(value="en_route", version=2, when=120, incident_id=INC, assignment_id=ASG))
    apply(on_incident, status(value="on_scene", version=3, when=600, incident_id=INC, assignment_id=ASG))
    apply(on_incident, UnitArrived(assignment_id=ASG, incident_id=INC, unit_id="u-1", arrived_at=at(600)))
    apply(on_incident, status(value="available", version=4, when=1800))
    apply(on_incident, AssignmentEnded(assignment_id=ASG, incident_id=INC, unit_id="u-1", why="cleared",
                                       ended_at=at(1800)))
    intervals = get(sessions, t.IncidentIntervals, INC)
    assert [as_aware(intervals.received_at), as_aware(intervals.dispatched_at), as_aware(intervals.en_route_at),
            as_aware(intervals.on_scene_at)] == [T0, at(60), at(120), at(600)]
    assignment = get(sessions, t.Assignment, ASG)
    assert assignment.status == "cleared"
    assert [as_aware(assignment.acknowledged_at), as_aware(assignment.en_route_at), as_aware(assignment.arrived_at),
            as_aware(assignment.ended_at)] == [at(120), at(120), at(600), at(1800)]
    unit = get(sessions, t.Unit, "u-1")
    assert (unit.status, unit.incident_id, unit.status_version) == ("available", None, 4)
    assert get(sessions, t.Incident, INC).status == "on_scene"


# --- bugs found and fixed: keep them fixed --------------------------------------------------------------
def test_assignment_state_does_not_depend_on_the_order_of_the_two_topics(projector, sessions):
    open_incident(projector)
    register(projector)
    # spkt.unit-status first ...
    apply(projector, status(value="dispatched", version=1, when=60, incident_id=INC, assignment_id=ASG))
    apply(projector, status(value="en_route", version=2, when=90, incident_id=INC, assignment_id=ASG))
    # ... then spkt.assignments
    apply(projector, assigned())
    apply(projector, AssignmentAcknowledged(assignment_id=ASG, incident_id=INC, unit_id="u-1",
                                            acknowledged_at=at(90)))
    assignment = get(sessions, t.Assignment, ASG)
    assert as_aware(assignment.en_route_at) == at(90)
    assert assignment.status == "en_route"


def test_a_wib_time_is_stored_as_the_same_instant(projector, sessions):
    open_incident(projector)
    wib = timezone(timedelta(hours=7))
    assert apply(projector, assigned(assigned_at=at(60).astimezone(wib)))
    assert as_aware(get(sessions, t.IncidentIntervals, INC).dispatched_at) == at(60)


def test_an_assignment_outcome_gathers_both_topics_in_either_order(on_incident, sessions):
    """The status change (spkt.unit-status) may be read before the assignment (spkt.assignments):
    the API waits for the unit.assigned part, which must not be shadowed by the other."""
    assert apply(on_incident, UnitStatusChanged(unit_id="u-1", status="dispatched", previous_status="available",
                                                incident_id=INC, changed_at=at(60), status_version=1,
                                                command_id="cmd-both", assignment_id="asg-both"))
    outcome = get(sessions, t.CommandOutcome, "cmd-both")
    assert set(outcome.result) == {"unit.status-changed"}
    assert apply(on_incident, UnitAssigned(assignment_id="asg-both", incident_id=INC, unit_id="u-1",
                                           assigned_by="d", assigned_at=at(60), command_id="cmd-both"))
    outcome = get(sessions, t.CommandOutcome, "cmd-both")
    assert set(outcome.result) == {"unit.status-changed", "unit.assigned"}
    assert outcome.result["unit.assigned"]["assignment_id"] == "asg-both"


def test_the_intervals_of_today_hold_an_incident_opened_now(projector, sessions):
    """Whatever the hour (past midnight WIB too, when the night shift on duty began the day before),
    an incident opened now is in "today's" intervals: the day of the shift on duty."""
    from schemas.envelope import utcnow
    from services.api.auth import Principal, Role
    from services.api.routes import assignments
    from services.dispatch.intervals import parse_shift_starts, shift_of
    from spkt.settings import Settings

    settings = Settings()
    now = utcnow()
    open_incident(projector, opened_at=now)
    with sessions() as s:
        today = assignments.list_intervals(Principal(sub="op", role=Role.dispatcher), s, settings, None, None)
    day, shift = shift_of(now, parse_shift_starts(settings.shift_start_hours))
    assert today.date == day
    assert [(g.jurisdiction, g.shift, g.incidents) for g in today.groups] == [("polres-jakpus", shift, 1)]
