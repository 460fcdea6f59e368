"""A unit's status and assignments (services.dispatch.lifecycle): pure decisions, no broker."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import derived_id
from schemas.events import (
    AssignmentAcknowledged, AssignmentDeclined, AssignmentEnded, AssignmentUnacknowledged, AssignUnit,
    ChangeUnitStatus, CommandRejected, RespondToAssignment, UnitArrived, UnitAssigned, UnitRegistered,
    UnitStatusChanged,
)
from services.dispatch import lifecycle as lc

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)
ALL_STATUSES = tuple(lc.PRIMARY)


# --- helpers -----------------------------------------------------------------------------------
def registered_hold(unit_id: str = "u-1", callsign: str = "SABHARA-01", kind: str = "car") -> dict:
    hold = lc.new_hold(unit_id)
    lc.registered(hold, UnitRegistered(unit_id=unit_id, callsign=callsign, kind=kind, station="Polsek Menteng",
                                       registered_at=NOW))
    return hold


def assign_cmd(incident_id: str = "inc-1", unit_id: str = "u-1", command_id: str = "cmd-assign-1", **kw) -> AssignUnit:
    return AssignUnit(command_id=command_id, unit_id=unit_id, incident_id=incident_id, requested_by="operator-1",
                      requested_at=NOW, **kw)


def status_cmd(status: str, unit_id: str = "u-1", command_id: str = "cmd-status-1",
               incident_id: str | None = None) -> ChangeUnitStatus:
    return ChangeUnitStatus(command_id=command_id, unit_id=unit_id, status=status, incident_id=incident_id,
                            requested_by="unit-1", requested_at=NOW)


def respond_cmd(assignment_id: str, accept: bool, reason: str | None = None, unit_id: str = "u-1",
                command_id: str = "cmd-respond-1") -> RespondToAssignment:
    return RespondToAssignment(command_id=command_id, unit_id=unit_id, assignment_id=assignment_id, accept=accept,
                               reason=reason, requested_by="unit-1", requested_at=NOW)


def observe(hold: dict, status: str, version: int | None, incident_id: str | None = None) -> None:
    lc.observed(hold, UnitStatusChanged(unit_id=hold["unit_id"], status=status, incident_id=incident_id,
                                        changed_at=NOW, status_version=version))


def dispatched_hold(incident_id: str = "inc-1") -> tuple[dict, str]:
    hold = registered_hold()
    decision = lc.assign(hold, assign_cmd(incident_id), NOW)
    assert decision.rejected is None
    return hold, decision.events[0].assignment_id


def types(decision) -> list[type]:
    return [type(e) for e in decision.events]


def assert_rejected(decision, command_id: str, command: str) -> CommandRejected:
    assert decision.rejected
    assert len(decision.events) == 1
    rejected = decision.events[0]
    assert isinstance(rejected, CommandRejected)
    assert rejected.command_id == command_id and rejected.command == command
    assert rejected.reason == decision.rejected
    assert rejected.rejected_at == NOW
    return rejected


# --- the transition table ----------------------------------------------------------------------
def test_every_status_of_the_schema_has_a_primary_status_and_a_transition_row():
    schema_statuses = set(UnitStatusChanged.model_fields["status"].annotation.__args__)
    assert set(lc.PRIMARY) == schema_statuses
    assert set(lc.TRANSITIONS) == schema_statuses
    assert set(lc.STATUS_WORDS) == schema_statuses


def test_transition_targets_are_known_statuses_and_never_the_status_itself():
    for status, targets in lc.TRANSITIONS.items():
        assert set(targets) <= set(lc.PRIMARY), status
        assert status not in targets, status


def test_dispatched_is_never_a_user_transition_target():
    for status in lc.TRANSITIONS:
        assert "dispatched" not in lc.allowed(status)


def test_every_incident_status_can_leave_to_available():
    for status in lc.ON_INCIDENT:
        assert "available" in lc.allowed(status)


def test_allowed_for_an_unknown_status_is_empty():
    assert lc.allowed("teleporting") == ()
    assert lc.allowed("available") == lc.TRANSITIONS["available"]


def test_primary_classes():
    assert lc.PRIMARY["available"] == lc.AVAILABLE
    for duty in lc.DUTIES:
        assert lc.PRIMARY[duty] == lc.CONDITIONAL
    for busy in lc.ON_INCIDENT + ("break", "off_duty", "out_of_service"):
        assert lc.PRIMARY[busy] == lc.UNAVAILABLE
    assert [s for s in ALL_STATUSES if lc.can_assign(s)] == ["available", *[s for s in ALL_STATUSES
                                                                             if s in lc.DUTIES]]


# --- holds and facts ---------------------------------------------------------------------------
def test_new_hold_is_an_unregistered_available_unit_at_version_zero():
    hold = lc.new_hold("u-9")
    assert hold == {"unit_id": "u-9", "callsign": "u-9", "kind": None, "registered": False,
                    "status": "available", "incident_id": None, "assignment_id": None, "assigned_at": None,
                    "acknowledged": False, "alerted": False, "version": 0}
    assert lc.new_hold("u-9") is not hold


def test_registered_records_callsign_and_kind_and_keeps_the_status():
    hold = lc.new_hold("u-1")
    observe(hold, "patrol", 3)
    lc.registered(hold, UnitRegistered(unit_id="u-1", callsign="RAIMAS-7", kind="motorcycle", station="s",
                                       registered_at=NOW))
    assert hold["registered"] is True
    assert (hold["callsign"], hold["kind"]) == ("RAIMAS-7", "motorcycle")
    assert (hold["status"], hold["version"]) == ("patrol", 3)


def test_observed_applies_a_newer_version_and_ignores_older_or_equal_ones():
    hold = registered_hold()
    observe(hold, "en_route", 5, incident_id="inc-1")
    assert (hold["status"], hold["incident_id"], hold["version"]) == ("en_route", "inc-1", 5)
    observe(hold, "available", 5)  # same version: already applied
    observe(hold, "break", 4)  # older
    assert (hold["status"], hold["incident_id"], hold["version"]) == ("en_route", "inc-1", 5)
    observe(hold, "on_scene", 6, incident_id="inc-1")
    assert (hold["status"], hold["version"]) == ("on_scene", 6)


def test_observed_unversioned_events_apply_and_keep_the_version():
    hold = registered_hold()
    observe(hold, "on_scene", 7, incident_id="inc-1")
    observe(hold, "break", None)
    assert (hold["status"], hold["incident_id"], hold["version"]) == ("break", None, 7)


def test_observed_keeps_an_incident_only_for_incident_statuses():
    hold = registered_hold()
    observe(hold, "patrol", 1, incident_id="inc-1")
    assert hold["status"] == "patrol" and hold["incident_id"] is None


# --- assign ------------------------------------------------------------------------------------
def test_assign_an_unregistered_unit_is_refused():
    hold = lc.new_hold("u-1")
    decision = lc.assign(hold, assign_cmd(), NOW)
    rejected = assert_rejected(decision, "cmd-assign-1", "assign-unit")
    assert "u-1" in rejected.reason and "tidak terdaftar" in rejected.reason
    assert hold == lc.new_hold("u-1")


def test_assign_an_available_unit():
    hold = registered_hold()
    observe(hold, "available", 4)
    decision = lc.assign(hold, assign_cmd(override_reason="terdekat", automatic=True), NOW)
    assert decision.rejected is None
    assert types(decision) == [UnitAssigned, UnitStatusChanged]
    assigned, status = decision.events
    assert assigned.assignment_id == derived_id("assignment", "cmd-assign-1") == lc.assignment_id_for("cmd-assign-1")
    assert (assigned.incident_id, assigned.unit_id, assigned.assigned_by) == ("inc-1", "u-1", "operator-1")
    assert (assigned.callsign, assigned.command_id, assigned.automatic) == ("SABHARA-01", "cmd-assign-1", True)
    assert assigned.override_reason == "terdekat" and assigned.warning is None
    assert assigned.assigned_at == NOW
    assert (status.status, status.previous_status, status.status_version) == ("dispatched", "available", 5)
    assert (status.incident_id, status.assignment_id, status.command_id) == ("inc-1", assigned.assignment_id,
                                                                             "cmd-assign-1")
    assert status.changed_by == "operator-1"
    assert hold["status"] == "dispatched" and hold["incident_id"] == "inc-1" and hold["version"] == 5
    assert hold["assignment_id"] == assigned.assignment_id
    assert hold["assigned_at"] == NOW.isoformat()
    assert hold["acknowledged"] is False and hold["alerted"] is False


def test_assignment_id_depends_on_the_command_only():
    first, second = registered_hold(), registered_hold()
    a = lc.assign(first, assign_cmd(command_id="c-1"), NOW).events[0].assignment_id
    b = lc.assign(second, assign_cmd(command_id="c-1"), NOW + timedelta(minutes=1)).events[0].assignment_id
    c = lc.assign(registered_hold(), assign_cmd(command_id="c-2"), NOW).events[0].assignment_id
    assert a == b != c


@pytest.mark.parametrize("duty", lc.DUTIES)
def test_a_unit_on_a_turjawali_duty_is_assignable_with_a_warning(duty):
    hold = registered_hold()
    observe(hold, duty, 2)
    decision = lc.assign(hold, assign_cmd(), NOW)
    assert decision.rejected is None
    assigned, status = decision.events
    assert assigned.warning and lc.words(duty) in assigned.warning and "tercatat" in assigned.warning
    assert (status.previous_status, status.status, status.status_version) == (duty, "dispatched", 3)


@pytest.mark.parametrize("busy", ["break", "off_duty", "out_of_service"])
def test_a_unit_not_available_is_refused_naming_its_status(busy):
    hold = registered_hold()
    observe(hold, busy, 2)
    before = dict(hold)
    decision = lc.assign(hold, assign_cmd(), NOW)
    rejected = assert_rejected(decision, "cmd-assign-1", "assign-unit")
    assert lc.words(busy) in rejected.reason and "SABHARA-01" in rejected.reason
    assert "tidak dapat ditugaskan" in rejected.reason
    assert hold == before


def test_a_unit_on_another_incident_is_refused_naming_its_status_and_incident():
    hold, assignment_id = dispatched_hold("inc-1")
    before = dict(hold)
    decision = lc.assign(hold, assign_cmd("inc-2", command_id="cmd-assign-2"), NOW)
    rejected = assert_rejected(decision, "cmd-assign-2", "assign-unit")
    assert "sedang ditugaskan" in rejected.reason and "inc-1" in rejected.reason
    assert hold == before and hold["assignment_id"] == assignment_id


def test_the_same_unit_to_the_same_incident_again_is_refused():
    hold, _ = dispatched_hold("inc-1")
    decision = lc.assign(hold, assign_cmd("inc-1", command_id="cmd-assign-2"), NOW)
    rejected = assert_rejected(decision, "cmd-assign-2", "assign-unit")
    assert "sudah ditugaskan pada kejadian ini" in rejected.reason


def test_en_route_unit_cannot_be_assigned_elsewhere():
    hold, _ = dispatched_hold("inc-1")
    lc.change_status(hold, status_cmd("en_route"), NOW)
    rejected = assert_rejected(lc.assign(hold, assign_cmd("inc-2", command_id="c-2"), NOW), "c-2", "assign-unit")
    assert "dalam perjalanan" in rejected.reason


# --- change_status -----------------------------------------------------------------------------
def test_change_status_of_an_unregistered_unit_is_refused():
    hold = lc.new_hold("u-1")
    rejected = assert_rejected(lc.change_status(hold, status_cmd("patrol"), NOW), "cmd-status-1",
                               "change-unit-status")
    assert "tidak terdaftar" in rejected.reason
    assert hold["status"] == "available"


def test_a_legal_transition_emits_one_versioned_status_change():
    hold = registered_hold()
    decision = lc.change_status(hold, status_cmd("patrol"), NOW)
    assert types(decision) == [UnitStatusChanged]
    status = decision.events[0]
    assert (status.previous_status, status.status, status.status_version) == ("available", "patrol", 1)
    assert status.incident_id is None and status.assignment_id is None
    assert (status.command_id, status.changed_by) == ("cmd-status-1", "unit-1")
    assert hold["status"] == "patrol" and hold["version"] == 1


def test_an_illegal_transition_is_refused_naming_the_current_status_and_the_allowed_ones():
    hold = registered_hold()
    observe(hold, "break", 1)
    rejected = assert_rejected(lc.change_status(hold, status_cmd("on_scene"), NOW), "cmd-status-1",
                               "change-unit-status")
    assert "tidak sah" in rejected.reason
    assert "break (istirahat)" in rejected.reason
    assert "available (tersedia)" in rejected.reason and "off_duty (lepas dinas)" in rejected.reason
    assert "penugasan" not in rejected.reason
    assert hold["status"] == "break" and hold["version"] == 1


def test_the_same_status_again_is_refused():
    hold = registered_hold()
    rejected = assert_rejected(lc.change_status(hold, status_cmd("available"), NOW), "cmd-status-1",
                               "change-unit-status")
    assert "sudah tersedia" in rejected.reason


def test_dispatched_is_refused_with_a_hint_to_use_an_assignment():
    hold = registered_hold()
    rejected = assert_rejected(lc.change_status(hold, status_cmd("dispatched"), NOW), "cmd-status-1",
                               "change-unit-status")
    assert "gunakan penugasan" in rejected.reason
    assert hold["status"] == "available" and hold["version"] == 0


def test_dispatched_to_en_route_acknowledges_the_assignment_first():
    hold, assignment_id = dispatched_hold()
    decision = lc.change_status(hold, status_cmd("en_route", command_id="c-er"), NOW)
    assert types(decision) == [AssignmentAcknowledged, UnitStatusChanged]
    ack, status = decision.events
    assert (ack.assignment_id, ack.incident_id, ack.unit_id, ack.command_id) == (assignment_id, "inc-1", "u-1",
                                                                                  "c-er")
    assert (status.status, status.previous_status, status.incident_id) == ("en_route", "dispatched", "inc-1")
    assert status.assignment_id == assignment_id and status.status_version == 2
    assert hold["acknowledged"] is True and hold["incident_id"] == "inc-1"


def test_en_route_after_an_accepted_assignment_does_not_acknowledge_again():
    hold, assignment_id = dispatched_hold()
    lc.respond(hold, respond_cmd(assignment_id, True), NOW)
    decision = lc.change_status(hold, status_cmd("on_scene"), NOW)
    assert types(decision) == [UnitStatusChanged, UnitArrived]


def test_dispatched_straight_to_on_scene_acknowledges_and_arrives():
    hold, assignment_id = dispatched_hold()
    decision = lc.change_status(hold, status_cmd("on_scene"), NOW)
    assert types(decision) == [AssignmentAcknowledged, UnitStatusChanged, UnitArrived]
    arrived = decision.events[2]
    assert (arrived.assignment_id, arrived.incident_id, arrived.unit_id, arrived.arrived_at) == (
        assignment_id, "inc-1", "u-1", NOW)


def test_on_scene_emits_unit_arrived():
    hold, assignment_id = dispatched_hold()
    lc.change_status(hold, status_cmd("en_route"), NOW)
    decision = lc.change_status(hold, status_cmd("on_scene"), NOW)
    assert types(decision) == [UnitStatusChanged, UnitArrived]
    assert decision.events[1].assignment_id == assignment_id
    assert hold["status"] == "on_scene" and hold["incident_id"] == "inc-1"


@pytest.mark.parametrize("path, why", [
    (("on_scene",), "cleared"),
    (("on_scene", "transporting"), "cleared"),
    ((), "cancelled"),
    (("en_route",), "cancelled"),
])
def test_leaving_an_incident_to_available_ends_the_assignment(path, why):
    hold, assignment_id = dispatched_hold()
    for step in path:
        assert lc.change_status(hold, status_cmd(step), NOW).rejected is None
    decision = lc.change_status(hold, status_cmd("available", command_id="c-free"), NOW)
    assert types(decision) == [UnitStatusChanged, AssignmentEnded]
    status, ended = decision.events
    assert status.status == "available" and status.incident_id is None and status.assignment_id is None
    assert (ended.assignment_id, ended.incident_id, ended.unit_id, ended.why, ended.ended_at) == (
        assignment_id, "inc-1", "u-1", why, NOW)
    assert hold["incident_id"] is None and hold["assignment_id"] is None and hold["assigned_at"] is None
    # free again: a new assignment works
    assert lc.assign(hold, assign_cmd("inc-2", command_id="c-next"), NOW).rejected is None


def test_a_status_change_naming_another_incident_is_refused():
    hold, _ = dispatched_hold("inc-1")
    before = dict(hold)
    rejected = assert_rejected(lc.change_status(hold, status_cmd("en_route", incident_id="inc-2"), NOW),
                               "cmd-status-1", "change-unit-status")
    assert "inc-1" in rejected.reason and "inc-2" in rejected.reason
    assert hold == before


def test_a_status_change_naming_the_units_own_incident_is_accepted():
    hold, _ = dispatched_hold("inc-1")
    assert lc.change_status(hold, status_cmd("en_route", incident_id="inc-1"), NOW).rejected is None


# --- respond -----------------------------------------------------------------------------------
def test_accept_acknowledges_and_puts_the_unit_en_route():
    hold, assignment_id = dispatched_hold()
    decision = lc.respond(hold, respond_cmd(assignment_id, True, command_id="c-acc"), NOW)
    assert decision.rejected is None
    assert types(decision) == [AssignmentAcknowledged, UnitStatusChanged]
    ack, status = decision.events
    assert (ack.assignment_id, ack.incident_id, ack.command_id) == (assignment_id, "inc-1", "c-acc")
    assert (status.status, status.incident_id, status.status_version) == ("en_route", "inc-1", 2)
    assert hold["acknowledged"] is True and hold["status"] == "en_route"


def test_accept_twice_is_refused():
    hold, assignment_id = dispatched_hold()
    lc.respond(hold, respond_cmd(assignment_id, True), NOW)
    rejected = assert_rejected(lc.respond(hold, respond_cmd(assignment_id, True, command_id="c-2"), NOW),
                               "c-2", "respond-to-assignment")
    assert "sudah diterima" in rejected.reason
    assert hold["status"] == "en_route" and hold["version"] == 2


def test_accept_after_moving_on_scene_is_refused_as_already_accepted():
    hold, assignment_id = dispatched_hold()
    lc.change_status(hold, status_cmd("on_scene"), NOW)
    assert "sudah diterima" in lc.respond(hold, respond_cmd(assignment_id, True), NOW).rejected


def test_decline_needs_a_reason():
    hold, assignment_id = dispatched_hold()
    before = dict(hold)
    for reason in (None, "", "   "):
        rejected = assert_rejected(lc.respond(hold, respond_cmd(assignment_id, False, reason=reason), NOW),
                                   "cmd-respond-1", "respond-to-assignment")
        assert "Alasan penolakan wajib diisi" in rejected.reason
    assert hold == before


def test_decline_frees_the_unit_and_ends_the_assignment():
    hold, assignment_id = dispatched_hold()
    decision = lc.respond(hold, respond_cmd(assignment_id, False, reason="  ban bocor  ", command_id="c-dec"), NOW)
    assert decision.rejected is None
    assert types(decision) == [AssignmentDeclined, UnitStatusChanged, AssignmentEnded]
    declined, status, ended = decision.events
    assert (declined.assignment_id, declined.incident_id, declined.reason, declined.command_id) == (
        assignment_id, "inc-1", "ban bocor", "c-dec")
    assert (status.status, status.previous_status, status.incident_id, status.status_version) == (
        "available", "dispatched", None, 2)
    assert (ended.assignment_id, ended.why, ended.incident_id) == (assignment_id, "declined", "inc-1")
    assert hold["status"] == "available" and hold["incident_id"] is None
    assert hold["assignment_id"] is None and hold["acknowledged"] is False


def test_decline_after_en_route_is_refused():
    hold, assignment_id = dispatched_hold()
    lc.change_status(hold, status_cmd("en_route"), NOW)
    rejected = assert_rejected(lc.respond(hold, respond_cmd(assignment_id, False, reason="x"), NOW),
                               "cmd-respond-1", "respond-to-assignment")
    assert "tidak dapat ditolak" in rejected.reason and "dalam perjalanan" in rejected.reason
    assert hold["status"] == "en_route"


@pytest.mark.parametrize("accept", [True, False])
def test_a_wrong_assignment_id_is_refused(accept):
    hold, _ = dispatched_hold()
    before = dict(hold)
    rejected = assert_rejected(lc.respond(hold, respond_cmd("not-this-one", accept, reason="x"), NOW),
                               "cmd-respond-1", "respond-to-assignment")
    assert "tidak aktif" in rejected.reason
    assert hold == before


def test_responding_to_an_ended_assignment_is_refused():
    hold, assignment_id = dispatched_hold()
    lc.change_status(hold, status_cmd("available"), NOW)
    assert "tidak aktif" in lc.respond(hold, respond_cmd(assignment_id, True), NOW).rejected


# --- unacknowledged ----------------------------------------------------------------------------
def test_unacknowledged_alerts_only_after_the_limit():
    hold, assignment_id = dispatched_hold()
    assert lc.unacknowledged(hold, NOW + timedelta(seconds=59.9), 60) is None
    alert = lc.unacknowledged(hold, NOW + timedelta(seconds=75), 60)
    assert isinstance(alert, AssignmentUnacknowledged)
    assert (alert.assignment_id, alert.incident_id, alert.unit_id) == (assignment_id, "inc-1", "u-1")
    assert alert.assigned_at == NOW and alert.waited_s == 75.0
    assert alert.alerted_at == NOW + timedelta(seconds=75)


def test_unacknowledged_not_when_already_alerted():
    hold, _ = dispatched_hold()
    hold["alerted"] = True
    assert lc.unacknowledged(hold, NOW + timedelta(hours=1), 60) is None


def test_unacknowledged_not_for_an_acknowledged_assignment():
    hold, assignment_id = dispatched_hold()
    hold["acknowledged"] = True  # e.g. acknowledged, status not yet moved
    assert hold["status"] == "dispatched"
    assert lc.unacknowledged(hold, NOW + timedelta(hours=1), 60) is None


def test_unacknowledged_not_for_a_unit_that_moved_on():
    hold, assignment_id = dispatched_hold()
    lc.respond(hold, respond_cmd(assignment_id, True), NOW)
    assert lc.unacknowledged(hold, NOW + timedelta(hours=1), 60) is None
    free = registered_hold()
    assert lc.unacknowledged(free, NOW + timedelta(hours=1), 60) is None


def test_a_new_assignment_clears_the_alerted_flag():
    hold, _ = dispatched_hold()
    hold["alerted"] = True
    lc.change_status(hold, status_cmd("available"), NOW)
    lc.assign(hold, assign_cmd("inc-2", command_id="c-2"), NOW)
    assert hold["alerted"] is False
    assert lc.unacknowledged(hold, NOW + timedelta(minutes=5), 60) is not None


# --- property-style: random command sequences on one hold --------------------------------------
def _random_command(rng: random.Random, hold: dict, n: int):
    kind = rng.choice(["assign", "status", "status", "status", "respond"])
    cid = f"c-{n}"
    if kind == "assign":
        return lc.assign, assign_cmd(rng.choice(["inc-1", "inc-2", "inc-3"]), command_id=cid)
    if kind == "status":
        target = rng.choice(ALL_STATUSES)
        incident = rng.choice([None, None, hold["incident_id"], "inc-2"])
        return lc.change_status, status_cmd(target, command_id=cid, incident_id=incident)
    assignment = rng.choice([hold["assignment_id"] or "none", "none"])
    return lc.respond, respond_cmd(assignment, rng.random() < 0.5, reason=rng.choice([None, "", "macet"]),
                                   command_id=cid)


@pytest.mark.parametrize("seed", range(20))
def test_random_commands_keep_the_hold_consistent(seed):
    rng = random.Random(seed)
    hold = registered_hold()
    last_version = hold["version"]
    for n in range(300):
        decide, command = _random_command(rng, hold, n)
        before = dict(hold)
        decision = decide(hold, command, NOW + timedelta(seconds=n))
        if decision.rejected is not None:
            assert types(decision) == [CommandRejected]
            assert hold == before  # a refusal changes nothing
        versions = [e.status_version for e in decision.events if isinstance(e, UnitStatusChanged)]
        assert len(versions) <= 1
        for v in versions:
            assert v == last_version + 1
            last_version = v
        assert hold["version"] == last_version
        statuses = [e for e in decision.events if isinstance(e, UnitStatusChanged)]
        if statuses:
            assert statuses[0].status == hold["status"]
            assert statuses[0].incident_id == hold["incident_id"]
        # the invariant: tied to an incident exactly while in an incident status
        assert (hold["status"] in lc.ON_INCIDENT) == (hold["incident_id"] is not None), (n, command, hold)
        assert (hold["assignment_id"] is not None) == (hold["status"] in lc.ON_INCIDENT), (n, command, hold)
        assert hold["status"] in lc.PRIMARY


# --- an incident closed frees its units ------------------------------------------------------------
def test_closing_an_incident_releases_each_unit_still_on_it_and_ends_its_assignment():
    on_scene, assignment_id = dispatched_hold("inc-1")
    assert lc.change_status(on_scene, status_cmd("on_scene", command_id="c-arrive"), NOW).rejected is None
    commands = lc.release_on_close("inc-1", ["u-1", "u-1"], NOW, cause_id="evt-close-1")
    assert [(c.unit_id, c.status, c.incident_id) for c in commands] == [("u-1", "available", "inc-1")]
    assert commands == lc.release_on_close("inc-1", ["u-1"], NOW, cause_id="evt-close-1")  # same ids when read again
    decision = lc.change_status(on_scene, commands[0], NOW)
    assert decision.rejected is None and on_scene["status"] == "available" and on_scene["incident_id"] is None
    ended = [e for e in decision.events if isinstance(e, AssignmentEnded)]
    assert [(e.assignment_id, e.incident_id, e.why) for e in ended] == [(assignment_id, "inc-1", "cleared")]
    status = [e for e in decision.events if isinstance(e, UnitStatusChanged)][0]
    assert status.changed_by == lc.RELEASED_BY


def test_a_unit_that_moved_on_to_another_incident_keeps_it_when_the_old_one_closes():
    hold, _ = dispatched_hold("inc-2")  # cleared from inc-1 earlier, now sent to inc-2
    command = lc.release_on_close("inc-1", ["u-1"], NOW, cause_id="evt-close-1")[0]
    decision = lc.change_status(hold, command, NOW)
    assert decision.rejected and "inc-2" in decision.rejected
    assert hold["status"] == "dispatched" and hold["incident_id"] == "inc-2"
