"""Intake's rules with stub tools: numbers, attachments, resends, merges, splits, replays."""
from datetime import datetime, timedelta, timezone

import pytest

from schemas.events import (
    AssistanceDecided, CommandRejected, IncidentMerged, IncidentOpened, IncidentSplit, LpRegistered, Location,
    MatchScore, MergeIncidents, ReportAttached, ReportReceived, Reporter, SplitReport, UnitArrived, UnitAssigned,
)
from services.intake import domain, timers
from services.intake.domain import AreaState, Classified, IntakeTools, Located

T0 = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)


def stub_tools(match_within_m: float = 500) -> IntakeTools:
    def locate(loc: Location) -> Located:
        if loc.lat is None:
            return Located(None, None, False, "lokasi belum terverifikasi", None, None)
        return Located(loc.lat, loc.lon, True, None, "polsek-tebet", "polres-jaksel")

    def classify(text: str) -> Classified:
        return Classified("fire", 0.9, False, ("kebakaran",)) if "kebakaran" in text else \
            Classified("unclassified", 0.0, True, ())

    def best_match(report, located, category, incidents):
        if located.lat is None:
            return None
        for inc in incidents.near(located.lat, located.lon, 0.005, 0.005):  # a crude stand-in: same category
            if inc["category"] == category and abs(inc["lat"] - located.lat) < 0.005:
                return inc["incident_id"], MatchScore(total=0.9, distance_m=100, minutes=2, category_score=1,
                                                      text_score=0.5, reasons=["jarak 100 m"])
        return None

    return IntakeTools(locate=locate, classify=classify, best_match=best_match,
                       office_name=lambda p: "POLRES METRO JAKARTA SELATAN", area_code=lambda p: "JAKSEL")


def report(n: int, *, minutes: float = 0, lat: float | None = -6.2, text="ada kebakaran rumah", **over):
    data = dict(report_id=f"r-{n}", tracking_code=f"SPKT-{n}", channel="phone_110", description=text,
                location=Location(lat=lat, lon=106.85 if lat is not None else None),
                received_at=T0 + timedelta(minutes=minutes), area="polres-jaksel")
    data.update(over)
    return ReportReceived(**data)


def handle(state, r, tools=None, event_id=None):
    return domain.handle_report(r, event_id or f"e-{r.report_id}", state, tools or stub_tools(), r.received_at)


def test_first_report_opens_an_incident_with_its_category_targets_and_number():
    state = AreaState()
    [opened] = handle(state, report(1))
    assert isinstance(opened, IncidentOpened)
    assert opened.number == "KJD/JAKSEL/2026/000001"
    assert opened.category == "fire" and opened.category_confidence == 0.9 and not opened.category_low_confidence
    assert opened.jurisdiction == "polsek-tebet" and opened.polres == "polres-jaksel"
    assert opened.targets["dispatch"] > opened.opened_at
    assert opened.incident_id in state.open_incidents


def test_a_matching_report_is_attached_not_opened():
    state = AreaState()
    [opened] = handle(state, report(1))
    [attached] = handle(state, report(2, minutes=3, lat=-6.201))
    assert isinstance(attached, ReportAttached) and attached.incident_id == opened.incident_id
    assert attached.match.reasons == ["jarak 100 m"]
    assert state.open_incidents[opened.incident_id]["report_ids"] == ["r-1", "r-2"]
    [other] = handle(state, report(3, minutes=4, lat=-6.25))
    assert isinstance(other, IncidentOpened) and other.number.endswith("000002")


def test_handling_the_same_event_again_replays_the_same_outcome_without_new_numbers():
    state = AreaState()
    first = handle(state, report(1, lp_model="B"))
    again = handle(state, report(1, lp_model="B"))
    assert first == again
    assert state.counters["incident|polres-jaksel|2026"] == 1 and state.counters["lp|polres-jaksel|2026"] == 1


def test_lp_numbers_are_gapless_per_office_and_year_in_the_official_form():
    state = AreaState()
    numbers = []
    for n in range(1, 4):
        events = handle(state, report(n, minutes=n * 60, lat=-6.2 - n * 0.1, lp_model="B" if n != 2 else "A"))
        numbers += [e.lp_number for e in events if isinstance(e, LpRegistered)]
    assert numbers == ["LP/B/1/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN",
                       "LP/A/2/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN",
                       "LP/B/3/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN"]


def test_a_resent_gateway_message_is_one_report():
    state = AreaState()
    sms = dict(gateway="gw-1", reporter=Reporter(phone="+6281234567890"), channel="sms")
    assert len(handle(state, report(1, **sms))) == 1
    assert handle(state, report(2, minutes=2, text="ada  KEBAKARAN rumah", **sms)) == []
    assert len(handle(state, report(3, minutes=30, **sms))) == 1  # after the window it is a new report


def test_an_unlocated_report_opens_an_unverified_incident_and_never_matches():
    state = AreaState()
    [opened] = handle(state, report(1, lat=None, location=Location(address="entah di mana")))
    assert opened.location_verified is False and opened.location_note == "lokasi belum terverifikasi"
    assert opened.incident_id not in state.open_incidents
    [second] = handle(state, report(2, lat=None, location=Location(address="entah di mana")))
    assert isinstance(second, IncidentOpened)


def test_low_confidence_classification_is_flagged_not_hidden():
    [opened] = handle(AreaState(), report(1, text="tolong pak ada yang aneh"))
    assert opened.category == "unclassified" and opened.category_low_confidence is True


def test_assistance_requests_get_their_own_incident_and_a_decision_clock():
    state = AreaState()
    handle(state, report(1))
    [opened] = handle(state, report(2, minutes=1, assistance_request=True))
    assert isinstance(opened, IncidentOpened) and opened.assistance_request
    assert opened.targets["assistance_decision"] == opened.opened_at + timedelta(minutes=15)


def test_merge_moves_reports_and_rejects_merging_into_itself():
    state = AreaState()
    [a] = handle(state, report(1))
    [b] = handle(state, report(2, lat=-6.3))
    cmd = MergeIncidents(command_id="c1", area="polres-jaksel", incident_id=b.incident_id, into=a.incident_id,
                         requested_by="disp-1")
    [merged] = domain.handle_merge(cmd, "e-c1", state, T0)
    assert isinstance(merged, IncidentMerged) and merged.report_ids == ["r-2"]
    assert state.open_incidents[a.incident_id]["report_ids"] == ["r-1", "r-2"]
    assert b.incident_id not in state.open_incidents
    self_merge = cmd.model_copy(update={"command_id": "c2", "incident_id": a.incident_id})
    [rejected] = domain.handle_merge(self_merge, "e-c2", state, T0)
    assert isinstance(rejected, CommandRejected) and "dirinya sendiri" in rejected.reason


def test_split_takes_a_report_into_a_new_incident():
    state = AreaState()
    [a] = handle(state, report(1))
    handle(state, report(2, minutes=1))
    cmd = SplitReport(command_id="c3", area="polres-jaksel", incident_id=a.incident_id, report_id="r-2",
                      report=report(2, minutes=1).model_dump(mode="json"), requested_by="disp-1")
    split, opened = domain.handle_split(cmd, "e-c3", state, stub_tools(), T0)
    assert isinstance(split, IncidentSplit) and split.new_incident_id == opened.incident_id
    assert opened.report_ids == ["r-2"] and state.open_incidents[a.incident_id]["report_ids"] == ["r-1"]


def test_timers_breach_once_and_a_met_target_never_breaches():
    clocks: dict = {}
    [opened] = handle(AreaState(), report(1))
    timers.on_event(clocks, "incident.opened", opened)
    later = opened.targets["dispatch"] + timedelta(seconds=1)
    breaches = timers.due(clocks, later)
    assert [b.target for b in breaches] == ["dispatch"]
    timers.on_event(clocks, "incident.target-breached", breaches[0])
    assert timers.due(clocks, later) == []
    assigned = UnitAssigned(assignment_id="a", incident_id=opened.incident_id, unit_id="u", assigned_by="d",
                            assigned_at=later)
    timers.on_event(clocks, "unit.assigned", assigned)
    assert clocks[opened.incident_id]["targets"]["dispatch"]["state"] == "breached"
    assert [b.target for b in timers.due(clocks, opened.targets["on_scene"])] == ["on_scene"]


def test_a_panic_button_report_is_never_folded_into_another_incident():
    state = AreaState()
    text = "TOMBOL PANIK: anggota dalam bahaya, unit RAJAWALI-3 meminta bantuan segera"
    [first] = handle(state, report(1, category="officer_emergency", text=text))
    attached = handle(state, report(2, minutes=1, category="officer_emergency", text=text))
    assert isinstance(attached[0], ReportAttached)  # the same words by phone join the first
    [panic] = handle(state, report(3, minutes=2, category="officer_emergency", panic_unit_id="unit-7", text=text))
    assert isinstance(panic, IncidentOpened) and panic.incident_id != first.incident_id
    assert panic.panic_unit_id == "unit-7" and panic.priority == "P1" and panic.category == "officer_emergency"


def test_the_first_unit_on_scene_meets_the_on_scene_target():
    """dispatch says `unit.arrived` when a unit reports on_scene; the clock stops for that target."""
    clocks: dict = {}
    [opened] = handle(AreaState(), report(1))
    timers.on_event(clocks, "incident.opened", opened)
    assigned = UnitAssigned(assignment_id="a", incident_id=opened.incident_id, unit_id="u", assigned_by="d",
                            assigned_at=T0 + timedelta(seconds=30))
    timers.on_event(clocks, "unit.assigned", assigned)
    arrived = UnitArrived(assignment_id="a", incident_id=opened.incident_id, unit_id="u",
                          arrived_at=T0 + timedelta(minutes=6))
    timers.on_event(clocks, "unit.arrived", arrived)
    assert opened.incident_id not in clocks  # both targets met: nothing left to watch
    assert timers.due(clocks, opened.targets["on_scene"] + timedelta(hours=1)) == []


def test_a_declined_or_undecided_assistance_request_goes_to_the_supervisor():
    clocks: dict = {}
    state = AreaState()
    [declined] = handle(state, report(1, assistance_request=True))
    [undecided] = handle(state, report(2, lat=-6.3, assistance_request=True))
    timers.on_event(clocks, "incident.opened", declined)
    timers.on_event(clocks, "incident.opened", undecided)
    decision = AssistanceDecided(incident_id=declined.incident_id, decision="decline", reason="surat tidak lengkap",
                                 decided_by="bripka-andi", decided_at=T0 + timedelta(minutes=5))
    [escalation] = timers.on_event(clocks, "assistance.decided", decision)
    assert escalation.why == "declined" and "surat tidak lengkap" in escalation.detail
    due = timers.due(clocks, T0 + timedelta(minutes=16))
    whys = {(e.incident_id, getattr(e, "why", None) or e.target) for e in due}
    assert (undecided.incident_id, "no_decision_in_time") in whys
    assert (undecided.incident_id, "assistance_decision") in whys
    assert not any(i == declined.incident_id and w in ("assistance_decision", "no_decision_in_time")
                   for i, w in whys)


@pytest.mark.parametrize("month, roman", [(1, "I"), (4, "IV"), (9, "IX"), (12, "XII")])
def test_lp_number_months_are_roman(month, roman):
    at = datetime(2026, month, 3, tzinfo=timezone.utc)
    assert domain.lp_number("B", 7, at, "POLSEK X") == f"LP/B/7/{roman}/2026/SPKT/POLSEK X"
