"""The TKP rules (services.tkp.domain): checklists, scene status, evidence, closure, the legal
clock and turjawali check-ins. Pure functions over a JSON-able dict: no broker, no mocks."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.intake.categories import CATEGORIES, UNCLASSIFIED
from services.tkp import domain as tkp

WIB = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 27, 21, 0, tzinfo=WIB)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def step(scene: dict, phase: str, name: str, minute: float = 1, by: str = "unit-1", note: str = "") -> tkp.StepOutcome:
    return tkp.record_step(scene, phase, name, at=at(minute), by=by, note=note)


def do_all(scene: dict, phase: str, steps) -> None:
    for i, name in enumerate(steps):
        outcome = step(scene, phase, name, minute=i + 1)
        assert outcome.accepted, outcome.reason


def evidence(scene: dict, evidence_id: str = "bb-1", seal: str = "SEGEL/001/XI/2026", by: str = "Bripda Andi"):
    return tkp.register_evidence(scene, evidence_id, seal_number=seal, description="pisau dapur bernoda darah",
                                 kind="senjata tajam", collected_by=by, at=at(30))


def closed_scene(category: str = "theft") -> dict:
    scene = tkp.new_scene("inc-1", category)
    assert tkp.close(scene, disposition="false_report", at=at(60), by="Ka SPKT") is None
    return scene


# --- checklists ---------------------------------------------------------------------------------
def test_every_category_of_the_catalogue_has_a_checklist_with_known_steps_in_the_usual_order():
    codes = {c.code for c in CATEGORIES} - {UNCLASSIFIED}
    assert codes <= set(tkp.CHECKLISTS)
    for code, checklist in tkp.CHECKLISTS.items():
        assert checklist.tptkp and checklist.tptkp[0] == "arrival_reported", code
        assert list(checklist.tptkp) == [s for s in tkp.TPTKP_STEPS if s in checklist.tptkp], code
        assert list(checklist.olah_tkp) == [s for s in tkp.OLAH_TKP_STEPS if s in checklist.olah_tkp], code
        assert set(checklist.before_olah) <= set(checklist.tptkp), code
        if checklist.olah_tkp:  # a processed scene is given back at the end
            assert checklist.olah_tkp[0] == "team_arrived" and checklist.olah_tkp[-1] == "scene_released", code
        else:
            assert checklist.before_olah == (), code


def test_serious_crimes_need_every_step_but_the_perpetrator_and_full_olah_tkp():
    for code in ("homicide", "shooting"):
        checklist = tkp.checklist_for(code)
        assert checklist.tptkp == tuple(s for s in tkp.TPTKP_STEPS if s != "perpetrator_secured")
        assert checklist.before_olah == ("police_line", "handed_over")
        assert checklist.olah_tkp == tkp.OLAH_TKP_STEPS


def test_light_and_traffic_checklists_and_the_default():
    assert tkp.checklist_for("pickpocketing") == tkp.Checklist(("arrival_reported", "witnesses_recorded"), (), ())
    assert tkp.checklist_for("theft") == tkp.Checklist(("arrival_reported", "witnesses_recorded"), (), ())
    laka = tkp.checklist_for("traffic_accident")
    assert laka.tptkp == ("arrival_reported", "victims_aided", "scene_secured")
    assert laka.olah_tkp == ("team_arrived", "photographed", "sketched", "scene_released")
    for code in ("no_such_code", UNCLASSIFIED, None, ""):
        assert tkp.checklist_for(code) == tkp.Checklist(("arrival_reported",), (), ()) == tkp.DEFAULT


def test_every_step_and_disposition_has_indonesian_words():
    assert set(tkp.STEP_WORDS) == set(tkp.TPTKP_STEPS) | set(tkp.OLAH_TKP_STEPS)
    assert tkp.STEP_WORDS["police_line"] == "pemasangan garis polisi"
    assert tkp.STEP_WORDS["handed_over"] == "serah terima ke tim olah TKP"
    assert set(tkp.DISPOSITION_WORDS) == set(tkp.DISPOSITIONS)
    assert all(tkp.DISPOSITION_WORDS.values()) and all(tkp.STEP_WORDS.values())


def test_a_typo_in_a_checklist_fails_at_import_time():
    with pytest.raises(ValueError):
        tkp._checklist("arrival_reported polise_line")
    with pytest.raises(ValueError):
        tkp._checklist("arrival_reported", "police_line")  # before olah must be on the checklist


# --- the scene and its steps ----------------------------------------------------------------------
def test_a_new_scene_is_json_and_has_no_unit_yet():
    scene = tkp.new_scene("inc-1", "homicide")
    assert scene == {"incident_id": "inc-1", "category": "homicide", "status": None,
                     "steps": {"tptkp": {}, "olah_tkp": {}}, "evidence": {}, "seals": [], "closed": None,
                     "reopened": 0, "lp": None}
    assert json.loads(json.dumps(scene)) == scene


def test_status_moves_forward_through_the_scene_and_never_back():
    scene = tkp.new_scene("inc-1", "homicide")
    assert tkp.unit_arrived(scene) == "on_scene" and scene["status"] == "on_scene"
    assert tkp.unit_arrived(scene) is None  # a second unit changes nothing
    assert step(scene, "tptkp", "arrival_reported").status == "tptkp"
    assert step(scene, "tptkp", "victims_aided").status is None
    assert step(scene, "tptkp", "police_line").status == "scene_secured"
    assert step(scene, "tptkp", "scene_secured").status is None
    assert step(scene, "tptkp", "handed_over").status is None
    assert step(scene, "olah_tkp", "team_arrived").status == "olah_tkp"
    assert step(scene, "tptkp", "witnesses_recorded").status is None and scene["status"] == "olah_tkp"
    assert step(scene, "olah_tkp", "scene_released").status == "scene_released"
    assert step(scene, "tptkp", "evidence_preserved").status is None
    assert step(scene, "olah_tkp", "photographed").status is None
    assert tkp.unit_arrived(scene) is None
    assert scene["status"] == "scene_released"
    assert json.loads(json.dumps(scene)) == scene


def test_a_first_step_without_an_arrival_event_still_moves_the_scene():
    scene = tkp.new_scene("inc-1", "theft")
    assert step(scene, "tptkp", "arrival_reported").status == "tptkp"
    scene = tkp.new_scene("inc-2", "homicide")
    assert step(scene, "tptkp", "scene_secured").status == "scene_secured"


def test_a_step_is_recorded_once_and_a_repeat_changes_nothing():
    scene = tkp.new_scene("inc-1", "theft")
    first = step(scene, "tptkp", "arrival_reported", minute=1, by="unit-1", note="dua orang korban")
    assert first.accepted and not first.repeated
    assert scene["steps"]["tptkp"]["arrival_reported"] == {"at": at(1).isoformat(), "by": "unit-1",
                                                         "note": "dua orang korban", "out_of_order": []}
    before = json.dumps(scene, sort_keys=True)
    again = step(scene, "tptkp", "arrival_reported", minute=9, by="unit-2", note="lain")
    assert again == tkp.StepOutcome(True, None, True, (), None, None)
    assert json.dumps(scene, sort_keys=True) == before


def test_unknown_phase_or_step_is_refused_in_indonesian():
    scene = tkp.new_scene("inc-1", "homicide")
    for phase, name in (("tptkp", "team_arrived"), ("olah_tkp", "police_line"), ("tptkp", "coffee"),
                        ("forensik", "photographed")):
        outcome = step(scene, phase, name)
        assert not outcome.accepted and outcome.reason and not outcome.repeated, (phase, name)
    assert "tidak dikenal" in step(scene, "tptkp", "coffee").reason
    assert scene["steps"] == {"tptkp": {}, "olah_tkp": {}} and scene["status"] is None


def test_homicide_olah_before_police_line_and_hand_over_is_accepted_and_flagged_with_both():
    scene = tkp.new_scene("inc-1", "homicide")
    do_all(scene, "tptkp", ("arrival_reported", "victims_aided", "scene_secured"))
    outcome = step(scene, "olah_tkp", "team_arrived", minute=10)
    assert outcome.accepted and not outcome.repeated
    assert outcome.out_of_order == ("police_line", "handed_over")
    assert outcome.warning == "langkah di luar urutan biasa: belum ada pemasangan garis polisi, serah terima ke tim olah TKP"
    assert scene["steps"]["olah_tkp"]["team_arrived"]["out_of_order"] == ["police_line", "handed_over"]
    assert outcome.status == "olah_tkp"


def test_olah_tkp_in_order_after_hand_over_is_not_flagged():
    scene = tkp.new_scene("inc-1", "homicide")
    do_all(scene, "tptkp", ("arrival_reported", "victims_aided", "scene_secured", "police_line", "handed_over"))
    outcome = step(scene, "olah_tkp", "team_arrived")
    assert outcome.out_of_order == () and outcome.warning is None
    assert scene["steps"]["olah_tkp"]["team_arrived"]["out_of_order"] == []


def test_out_of_order_names_the_earlier_steps_of_the_checklist_only():
    scene = tkp.new_scene("inc-1", "homicide")
    outcome = step(scene, "tptkp", "witnesses_recorded")
    # perpetrator_secured is not on the homicide checklist: not always present, never "missing"
    assert outcome.accepted
    assert outcome.out_of_order == ("arrival_reported", "victims_aided", "scene_secured", "police_line",
                                    "evidence_preserved")
    assert "pencatatan saksi" not in outcome.warning and "laporan kedatangan dan situasi" in outcome.warning
    pickpocket = tkp.new_scene("inc-2", "pickpocketing")
    assert step(pickpocket, "tptkp", "arrival_reported").out_of_order == ()
    assert step(pickpocket, "tptkp", "witnesses_recorded").out_of_order == ()  # no police line asked for


def test_olah_out_of_order_lists_missing_before_olah_then_earlier_olah_steps():
    scene = tkp.new_scene("inc-1", "homicide")
    outcome = step(scene, "olah_tkp", "sketched")
    assert outcome.out_of_order == ("police_line", "handed_over", "team_arrived", "observation", "photographed")
    laka = tkp.new_scene("inc-2", "traffic_accident")
    do_all(laka, "tptkp", ("arrival_reported", "victims_aided", "scene_secured"))
    assert step(laka, "olah_tkp", "sketched", minute=5).out_of_order == ("team_arrived", "photographed")


def test_checklists_follow_a_change_of_category():
    scene = tkp.new_scene("inc-1", "theft")
    assert step(scene, "olah_tkp", "team_arrived").out_of_order == ()
    tkp.set_category(scene, "homicide")
    assert scene["category"] == "homicide"
    assert step(scene, "olah_tkp", "observation").out_of_order == ("police_line", "handed_over")
    assert "olah TKP: pemotretan" in tkp.missing_for_closure(scene, "lp_made")


def test_no_step_is_recorded_on_a_closed_incident():
    scene = tkp.new_scene("inc-1", "theft")
    do_all(scene, "tptkp", ("arrival_reported", "witnesses_recorded"))
    assert tkp.close(scene, disposition="lp_made", at=at(30), by="Ka SPKT") is None
    outcome = step(scene, "tptkp", "police_line", minute=40)
    assert not outcome.accepted and "sudah ditutup" in outcome.reason
    assert "police_line" not in scene["steps"]["tptkp"]
    assert step(scene, "tptkp", "arrival_reported", minute=41).repeated  # a redelivered command stays harmless
    assert tkp.reopen(scene, at=at(50), by="Kapolsek", reason="saksi baru") is None
    assert step(scene, "tptkp", "police_line", minute=55).accepted


# --- evidence and custody -----------------------------------------------------------------------
def test_evidence_is_registered_with_its_seal_and_first_holder():
    scene = tkp.new_scene("inc-1", "homicide")
    assert evidence(scene) is None
    item = scene["evidence"]["bb-1"]
    assert {k: item[k] for k in ("seal_number", "holder", "transfers", "corrected")} == {
        "seal_number": "SEGEL/001/XI/2026", "holder": "Bripda Andi", "transfers": 0, "corrected": []}
    assert scene["seals"] == ["SEGEL/001/XI/2026"]
    assert json.loads(json.dumps(scene)) == scene


def test_a_seal_number_cannot_be_used_twice_and_the_refusal_names_both():
    scene = tkp.new_scene("inc-1", "homicide")
    assert evidence(scene, "bb-1", "SEGEL/001/XI/2026") is None
    refusal = evidence(scene, "bb-2", "SEGEL/001/XI/2026")
    assert isinstance(refusal, tkp.Refusal)
    assert "SEGEL/001/XI/2026" in refusal.reason and "bb-1" in refusal.reason and "sudah dipakai" in refusal.reason
    assert isinstance(evidence(scene, "bb-3", " segel/001/xi/2026 "), tkp.Refusal)  # same seal, written otherwise
    assert list(scene["evidence"]) == ["bb-1"] and scene["seals"] == ["SEGEL/001/XI/2026"]


def test_registering_the_same_item_again_is_a_harmless_repeat():
    scene = tkp.new_scene("inc-1", "homicide")
    assert evidence(scene) is None
    before = json.dumps(scene, sort_keys=True)
    assert evidence(scene) is None
    assert json.dumps(scene, sort_keys=True) == before
    other_seal = evidence(scene, "bb-1", "SEGEL/999/XI/2026")  # same item, another seal: not a repeat
    assert isinstance(other_seal, tkp.Refusal) and "SEGEL/001/XI/2026" in other_seal.reason
    assert json.dumps(scene, sort_keys=True) == before


def test_evidence_needs_a_seal_and_an_open_incident():
    scene = tkp.new_scene("inc-1", "homicide")
    for seal in ("", "   "):
        assert "segel" in evidence(scene, "bb-1", seal).reason.lower()
    assert scene["evidence"] == {} and scene["seals"] == []
    closed = closed_scene()
    assert "sudah ditutup" in evidence(closed).reason and closed["evidence"] == {}


def test_custody_chain_from_investigator_to_tahti_to_labfor():
    scene = tkp.new_scene("inc-1", "homicide")
    evidence(scene, by="penyidik Aiptu Budi")
    assert tkp.transfer_custody(scene, "bb-1", to="Tahti Polres", reason="penitipan", by="Aiptu Budi",
                                at=at(90)) == ("penyidik Aiptu Budi", None)
    assert tkp.transfer_custody(scene, "bb-1", to="Labfor Polda", reason="pemeriksaan DNA", by="petugas Tahti",
                                at=at(300)) == ("Tahti Polres", None)
    assert scene["evidence"]["bb-1"]["holder"] == "Labfor Polda"
    assert scene["evidence"]["bb-1"]["transfers"] == 2


def test_custody_refusals_change_nothing():
    scene = tkp.new_scene("inc-1", "homicide")
    evidence(scene, by="penyidik Aiptu Budi")
    cases = (
        dict(evidence_id="bb-9", to="Tahti Polres", reason="penitipan"),
        dict(evidence_id="bb-1", to="penyidik Aiptu Budi", reason="penitipan"),
        dict(evidence_id="bb-1", to="  ", reason="penitipan"),
        dict(evidence_id="bb-1", to="Tahti Polres", reason=""),
    )
    for case in cases:
        holder, refusal = tkp.transfer_custody(scene, case["evidence_id"], to=case["to"], reason=case["reason"],
                                               by="Aiptu Budi", at=at(90))
        assert holder is None and isinstance(refusal, tkp.Refusal) and refusal.reason, case
    assert scene["evidence"]["bb-1"]["holder"] == "penyidik Aiptu Budi"
    assert scene["evidence"]["bb-1"]["transfers"] == 0


def test_custody_moves_on_after_the_scene_is_closed():
    scene = tkp.new_scene("inc-1", "theft")
    do_all(scene, "tptkp", ("arrival_reported", "witnesses_recorded"))
    evidence(scene, by="penyidik")
    assert tkp.close(scene, disposition="lp_made", at=at(60), by="Ka SPKT") is None
    assert tkp.transfer_custody(scene, "bb-1", to="Tahti", reason="penitipan", by="penyidik",
                                at=at(120)) == ("penyidik", None)
    assert scene["evidence"]["bb-1"]["holder"] == "Tahti"


# --- closure ------------------------------------------------------------------------------------
def test_closure_is_refused_listing_exactly_the_missing_steps():
    scene = tkp.new_scene("inc-1", "homicide")
    do_all(scene, "tptkp", ("arrival_reported", "victims_aided", "scene_secured", "evidence_preserved",
                            "witnesses_recorded", "handed_over"))
    do_all(scene, "olah_tkp", ("team_arrived", "observation", "sketched", "evidence_collected", "scene_released"))
    missing = ["TPTKP: pemasangan garis polisi", "olah TKP: pemotretan"]
    assert tkp.missing_for_closure(scene, "lp_made") == missing
    refusal = tkp.close(scene, disposition="lp_made", at=at(120), by="Kasat Reskrim")
    assert refusal == tkp.Refusal("Belum lengkap: TPTKP: pemasangan garis polisi; olah TKP: pemotretan")
    assert scene["closed"] is None
    step(scene, "tptkp", "police_line", minute=121)
    step(scene, "olah_tkp", "photographed", minute=122)
    assert tkp.missing_for_closure(scene, "lp_made") == []
    assert tkp.close(scene, disposition="lp_made", at=at(130), by="Kasat Reskrim") is None
    assert scene["closed"] == {"disposition": "lp_made", "at": at(130).isoformat(), "by": "Kasat Reskrim"}


def test_missing_steps_come_in_checklist_order():
    scene = tkp.new_scene("inc-1", "traffic_accident")
    assert tkp.missing_for_closure(scene, "resolved_on_spot") == [
        "TPTKP: laporan kedatangan dan situasi", "TPTKP: pertolongan korban", "TPTKP: pengamanan TKP (status quo)",
        "olah TKP: kedatangan tim olah TKP", "olah TKP: pemotretan", "olah TKP: pembuatan sketsa",
        "olah TKP: pelepasan TKP"]


def test_a_pickpocketing_closes_with_just_its_two_steps():
    scene = tkp.new_scene("inc-1", "pickpocketing")
    step(scene, "tptkp", "arrival_reported")
    assert tkp.missing_for_closure(scene, "lp_made") == ["TPTKP: pencatatan saksi"]
    step(scene, "tptkp", "witnesses_recorded", minute=5)
    assert tkp.close(scene, disposition="lp_made", at=at(30), by="Ka SPKT") is None


def test_what_each_disposition_asks_for():
    scene = tkp.new_scene("inc-1", "homicide")
    full = len(tkp.CHECKLISTS["homicide"].tptkp) + len(tkp.CHECKLISTS["homicide"].olah_tkp)
    for disposition in ("lp_made", "resolved_on_spot", "restorative_justice", "referred"):
        assert len(tkp.missing_for_closure(scene, disposition)) == full, disposition
    assert tkp.missing_for_closure(scene, "no_report_needed") == ["TPTKP: laporan kedatangan dan situasi"]
    for disposition in ("false_report", "cancelled", "duplicate"):
        assert tkp.missing_for_closure(scene, disposition) == [], disposition
    step(scene, "tptkp", "arrival_reported")
    assert tkp.missing_for_closure(scene, "no_report_needed") == []
    with pytest.raises(ValueError):
        tkp.missing_for_closure(scene, "selesai")


def test_evidence_never_handed_over_adds_nothing_to_the_checklist():
    scene = tkp.new_scene("inc-1", "theft")
    do_all(scene, "tptkp", ("arrival_reported", "witnesses_recorded"))
    evidence(scene)
    assert tkp.missing_for_closure(scene, "lp_made") == []


def test_a_false_report_closes_with_nothing_done_and_only_once():
    scene = tkp.new_scene("inc-1", "homicide")
    assert tkp.close(scene, disposition="false_report", at=at(5), by="operator 110") is None
    assert scene["closed"]["disposition"] == "false_report"
    again = tkp.close(scene, disposition="cancelled", at=at(6), by="operator 110")
    assert isinstance(again, tkp.Refusal) and "sudah ditutup" in again.reason
    assert scene["closed"]["disposition"] == "false_report"


def test_an_unknown_disposition_is_refused_by_close():
    scene = tkp.new_scene("inc-1", "theft")
    assert isinstance(tkp.close(scene, disposition="selesai", at=at(5), by="x"), tkp.Refusal)
    assert scene["closed"] is None


def test_reopen_needs_a_closed_incident_and_a_reason():
    scene = tkp.new_scene("inc-1", "theft")
    assert "belum ditutup" in tkp.reopen(scene, at=at(1), by="Kapolsek", reason="saksi baru").reason
    tkp.close(scene, disposition="false_report", at=at(5), by="Ka SPKT")
    assert isinstance(tkp.reopen(scene, at=at(6), by="Kapolsek", reason="  "), tkp.Refusal)
    assert scene["closed"] is not None and scene["reopened"] == 0
    assert tkp.reopen(scene, at=at(7), by="Kapolsek", reason="pelapor datang lagi") is None
    assert scene["closed"] is None and scene["reopened"] == 1
    assert isinstance(tkp.reopen(scene, at=at(8), by="Kapolsek", reason="lagi"), tkp.Refusal)
    tkp.close(scene, disposition="cancelled", at=at(9), by="Ka SPKT")
    assert tkp.reopen(scene, at=at(10), by="Kapolsek", reason="lagi") is None and scene["reopened"] == 2


# --- the legal clock ------------------------------------------------------------------------------
def test_legal_deadlines_with_the_default_rules():
    reported, ordered = T0, T0 + timedelta(days=5)
    deadlines = tkp.legal_deadlines(reported_at=reported, investigation_ordered_at=ordered, difficulty="sedang")
    assert [(d.key, d.kind, d.code, d.due_at) for d in deadlines] == [
        ("sp2hp-a1", "sp2hp", "A1", reported + timedelta(days=3)),
        ("spdp", "spdp", "SPDP", ordered + timedelta(days=7)),
        ("sp2hp-2", "sp2hp", "A3", reported + timedelta(days=18)),
        ("sp2hp-3", "sp2hp", "A3", reported + timedelta(days=33)),
        ("sp2hp-4", "sp2hp", "A3", reported + timedelta(days=48)),
    ]
    assert deadlines[0].words == "SP2HP A1 kepada pelapor"
    assert deadlines[1].words == "SPDP ke penuntut umum dan pelapor"
    assert all(d.words and d.due_at.tzinfo is not None for d in deadlines)
    assert deadlines[0].due_at.utcoffset() == timedelta(hours=7)


def test_periodic_letters_before_the_investigation_order_report_on_the_inquiry():
    deadlines = tkp.legal_deadlines(reported_at=T0, investigation_ordered_at=T0 + timedelta(days=20),
                                    difficulty="mudah")
    periodic = {d.key: d for d in deadlines if d.key.startswith("sp2hp-") and d.key != "sp2hp-a1"}
    assert periodic["sp2hp-2"].due_at == T0 + timedelta(days=13) and periodic["sp2hp-2"].code == "A2"
    assert periodic["sp2hp-3"].due_at == T0 + timedelta(days=23) and periodic["sp2hp-3"].code == "A3"
    assert [d.key for d in deadlines] == ["sp2hp-a1", "sp2hp-2", "sp2hp-3", "spdp", "sp2hp-4"]  # by due time (SPDP: day 27)


def test_legal_deadlines_follow_custom_rules():
    rules = tkp.LegalRules(sp2hp_first_days=2, sp2hp_every_days={"sedang": 30}, spdp_days=1.5, periodic_letters=1)
    deadlines = tkp.legal_deadlines(reported_at=T0, investigation_ordered_at=T0, difficulty="sedang", rules=rules)
    assert {d.key: d.due_at for d in deadlines} == {
        "sp2hp-a1": T0 + timedelta(days=2), "spdp": T0 + timedelta(days=1.5), "sp2hp-2": T0 + timedelta(days=32)}
    with pytest.raises(ValueError):
        tkp.legal_deadlines(reported_at=T0, investigation_ordered_at=T0, difficulty="mudah", rules=rules)


def test_difficulty_must_be_known_and_times_aware():
    for difficulty in ("sangat sulit", "", "SEDANG"):
        with pytest.raises(ValueError):
            tkp.legal_deadlines(reported_at=T0, investigation_ordered_at=T0, difficulty=difficulty)
    with pytest.raises(ValueError):
        tkp.legal_deadlines(reported_at=datetime(2026, 11, 27), investigation_ordered_at=T0, difficulty="sulit")
    assert tkp.LegalRules().sp2hp_every_days == {"mudah": 10, "sedang": 15, "sulit": 20, "sangat_sulit": 30}


def test_overdue_lists_due_unmet_unescalated_deadlines_in_due_order():
    now = T0 + timedelta(days=10)
    deadlines = [
        {"key": "spdp", "due_at": (T0 + timedelta(days=7)).isoformat(), "met_at": None, "escalated": False},
        {"key": "sp2hp-a1", "due_at": T0 + timedelta(days=3), "met_at": None, "escalated": False},
        {"key": "sp2hp-2", "due_at": (T0 + timedelta(days=18)).isoformat(), "met_at": None, "escalated": False},
        {"key": "met", "due_at": T0.isoformat(), "met_at": (T0 + timedelta(days=1)).isoformat(), "escalated": False},
        {"key": "escalated", "due_at": T0.isoformat(), "met_at": None, "escalated": True},
        {"key": "exactly-now", "due_at": now.isoformat(), "met_at": None, "escalated": False},
    ]
    assert tkp.overdue(deadlines, now) == ["sp2hp-a1", "spdp", "exactly-now"]
    assert tkp.overdue(deadlines, T0) == []
    assert tkp.overdue([], now) == []


# --- turjawali check-ins --------------------------------------------------------------------------
def test_check_in_is_due_every_interval_from_the_last_one_or_the_start():
    assert tkp.check_in_due(started_at=T0, last_check_in_at=None, every_min=30) == at(30)
    assert tkp.check_in_due(started_at=T0, last_check_in_at=at(25), every_min=30) == at(55)
    assert tkp.check_in_due(started_at=T0, last_check_in_at=at(25), every_min=7.5) == at(32.5)


def duty(duty_id: str = "d-1", **kw) -> dict:
    base = {"duty_id": duty_id, "kind": "penjagaan", "started_at": T0.isoformat(), "ends_at": None,
            "completed": False, "check_in_every_min": 30, "last_check_in_at": None, "alerted_for": None}
    return base | kw


def test_a_missed_check_in_alerts_once_per_due_time():
    guard = duty()
    assert tkp.missed_check_ins([guard], at(30)) == []  # due now, not yet missed
    assert tkp.missed_check_ins([guard], at(31)) == [("d-1", at(30))]
    guard["alerted_for"] = at(30).isoformat()
    assert tkp.missed_check_ins([guard], at(45)) == []
    guard["last_check_in_at"] = at(40).isoformat()
    assert tkp.missed_check_ins([guard], at(69)) == []
    assert tkp.missed_check_ins([guard], at(71)) == [("d-1", at(70))]  # the next due time alerts again


def test_completed_ended_or_unwatched_duties_never_alert():
    late = at(120)
    duties = [
        duty("done", completed=True),
        duty("ended", ends_at=at(60).isoformat()),
        duty("ends-now", ends_at=late.isoformat()),
        duty("no-check-in", check_in_every_min=None),
        duty("running", kind="pengawalan", ends_at=at(180).isoformat()),
        duty("earlier", started_at=at(-30).isoformat(), kind="patroli"),
    ]
    assert tkp.missed_check_ins(duties, late) == [("earlier", at(0)), ("running", at(30))]
