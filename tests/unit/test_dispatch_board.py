"""The live unit board (services.dispatch.board): unit events in, dispatch.recommended out. No broker."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


from schemas.events import (
    DispatchRecommended, IncidentOpened, Location, UnitPositionReported, UnitRegistered, UnitStatusChanged,
)
from services.dispatch.board import Board, incident_facts_of, incident_view
from services.dispatch.ranking import IncidentView, Need, RankingRules

NOW = datetime(2026, 11, 27, 5, 0, tzinfo=timezone.utc)  # 12:00 WIB
MONAS = (-6.1754, 106.8272)
RULES = RankingRules(max_candidates=3, position_max_age_s=300, radius_m=15_000)


def register(board: Board, unit_id: str, kind: str = "car", capabilities=(), **kw) -> None:
    board.apply(UnitRegistered(unit_id=unit_id, callsign=unit_id.upper(), kind=kind, station="Polsek Gambir",
                               capabilities=list(capabilities), registered_at=NOW - timedelta(days=1), **kw))


def place(board: Board, unit_id: str, lat: float, lon: float, age_s: float = 30) -> None:
    board.apply(UnitPositionReported(unit_id=unit_id, lat=lat, lon=lon, at=NOW - timedelta(seconds=age_s)))


def status(board: Board, unit_id: str, value: str, version: int | None, incident_id: str | None = None) -> None:
    board.apply(UnitStatusChanged(unit_id=unit_id, status=value, incident_id=incident_id, changed_at=NOW,
                                  status_version=version))


def near(metres_north: float) -> tuple[float, float]:
    return MONAS[0] + metres_north / 111_000, MONAS[1]


def view(**kw) -> IncidentView:
    values = dict(incident_id="inc-1", lat=MONAS[0], lon=MONAS[1], category="pencurian", priority="P2")
    values.update(kw)
    return IncidentView(**values)


def opened(**kw) -> IncidentOpened:
    values = dict(incident_id="inc-1", number="KJD/001/XI/2026", report_ids=["r-1"], category="pencurian",
                  priority="P2", summary="Motor dicuri", location=Location(lat=MONAS[0], lon=MONAS[1]),
                  opened_at=NOW)
    values.update(kw)
    return IncidentOpened(**values)


def ids(rec: DispatchRecommended) -> list[str]:
    return [c.unit_id for c in rec.candidates]


def excluded(rec: DispatchRecommended) -> dict[str, str]:
    return {x.unit_id: x.reason for x in rec.excluded}


# --- applying unit events ----------------------------------------------------------------------
def test_registration_fills_the_register_and_the_index():
    board = Board()
    register(board, "u-1", kind="inafis", capabilities=["identification"], shift_start_h=7, shift_end_h=19)
    info = board.units["u-1"]
    assert (info.callsign, info.kind, info.station, info.status) == ("U-1", "inafis", "Polsek Gambir", "available")
    assert info.capabilities == ("identification",) and info.shift == (7, 19)
    assert "u-1" in board.index and board.index.status_of("u-1") == "available"


def test_re_registration_updates_the_register_and_keeps_status_and_position():
    board = Board()
    register(board, "u-1")
    place(board, "u-1", *near(100))
    status(board, "u-1", "patrol", 1)
    register(board, "u-1", kind="motorcycle", capabilities=["traffic"])
    info = board.units["u-1"]
    assert (info.kind, info.capabilities, info.status) == ("motorcycle", ("traffic",), "patrol")
    assert board.index.status_of("u-1") == "patrol"
    assert board.index.position("u-1") is not None
    assert len(board.units) == 1 and len(board.index) == 1


def test_status_change_updates_register_and_index():
    board = Board()
    register(board, "u-1")
    status(board, "u-1", "dispatched", 1, incident_id="inc-9")
    assert (board.units["u-1"].status, board.units["u-1"].incident_id) == ("dispatched", "inc-9")
    assert board.index.status_of("u-1") == "dispatched"


def test_a_late_older_status_version_is_ignored():
    board = Board()
    register(board, "u-1")
    status(board, "u-1", "en_route", 3, incident_id="inc-1")
    status(board, "u-1", "dispatched", 2, incident_id="inc-1")  # arrived late
    status(board, "u-1", "available", 3)  # same version again
    assert board.units["u-1"].status == "en_route" and board.index.status_of("u-1") == "en_route"
    status(board, "u-1", "on_scene", 4, incident_id="inc-1")
    assert board.units["u-1"].status == "on_scene"


def test_unversioned_status_changes_always_apply():
    board = Board()
    register(board, "u-1")
    status(board, "u-1", "on_scene", 5, incident_id="inc-1")
    status(board, "u-1", "break", None)
    assert board.units["u-1"].status == "break" and board.index.status_of("u-1") == "break"
    status(board, "u-1", "available", 4)  # still older than 5
    assert board.units["u-1"].status == "break"


def test_status_of_an_unknown_unit_is_ignored():
    board = Board()
    status(board, "ghost", "dispatched", 1)
    assert "ghost" not in board.units and "ghost" not in board.index
    register(board, "ghost")
    status(board, "ghost", "patrol", 1)  # the ignored version 1 did not count
    assert board.units["ghost"].status == "patrol"


def test_positions_update_in_place_and_older_fixes_are_ignored():
    board = Board()
    register(board, "u-1")
    place(board, "u-1", -6.20, 106.80, age_s=10)
    place(board, "u-1", -6.30, 106.90, age_s=60)  # older fix, late
    lat, lon, at = board.index.position("u-1")
    assert (lat, lon) == (-6.20, 106.80) and at == (NOW - timedelta(seconds=10)).timestamp()
    assert board.position("u-1", -6.21, 106.81, NOW.timestamp()) is True
    assert board.index.position("u-1")[:2] == (-6.21, 106.81)
    assert board.position("nobody", -6.2, 106.8, NOW.timestamp()) is False


# --- recommend ---------------------------------------------------------------------------------
def test_recommend_returns_a_dispatch_recommended_event_nearest_first_with_reasons():
    board = Board()
    for unit_id, metres in (("far", 3000), ("near", 200), ("mid", 1000)):
        register(board, unit_id)
        place(board, unit_id, *near(metres))
    rec = board.recommend(view(), NOW, RULES, trigger="recommendation.requested")
    assert isinstance(rec, DispatchRecommended)
    assert rec.incident_id == "inc-1" and rec.recommended_at == NOW
    assert rec.trigger == "recommendation.requested"
    assert ids(rec) == ["near", "mid", "far"]
    best = rec.candidates[0]
    assert best.callsign == "NEAR" and best.kind == "car"
    assert 150 < best.distance_m < 250 and best.eta_s > 0
    assert best.reasons[0] == "tercepat tiba"
    assert "tersedia" in best.reasons
    assert any(r.startswith("jarak ") for r in best.reasons)
    assert any(r.startswith("perkiraan tiba ") for r in best.reasons)
    assert rec.candidates[1].reasons[0] == "tersedia"  # only the first is the fastest
    assert best.conditional is False and best.warnings == []
    assert rec.excluded == [] and rec.shortfalls == []
    # round-trips through the schema
    assert DispatchRecommended.model_validate(rec.model_dump(mode="json")) == rec


def test_recommend_default_trigger_is_incident_opened():
    board = Board()
    register(board, "u-1")
    place(board, "u-1", *near(100))
    assert board.recommend(view(), NOW, RULES).trigger == "incident.opened"


def test_busy_and_stale_units_are_excluded_with_reasons_in_bahasa_indonesia():
    board = Board()
    for unit_id in ("ok", "busy", "stale", "off"):
        register(board, unit_id)
    place(board, "ok", *near(2000))
    place(board, "busy", *near(100))
    place(board, "stale", *near(200), age_s=20 * 60)
    place(board, "off", *near(300))
    status(board, "busy", "on_scene", 1, incident_id="inc-7")
    status(board, "off", "off_duty", 1)
    register(board, "nofix")
    rec = board.recommend(view(), NOW, RULES)
    assert ids(rec) == ["ok"]
    reasons = excluded(rec)
    assert reasons["busy"] == "tidak tersedia: di TKP"
    assert reasons["off"] == "tidak tersedia: lepas dinas"
    assert reasons["stale"] == "posisi kedaluwarsa (20 menit)"
    assert "nofix" not in reasons  # only positioned units are listed
    assert rec.excluded_counts == {"not_available": 2, "stale_position": 1, "no_position": 1}


def test_a_unit_on_a_turjawali_duty_is_a_conditional_candidate_with_a_warning():
    board = Board()
    register(board, "escort")
    place(board, "escort", *near(100))
    status(board, "escort", "escort", 1)
    register(board, "free")
    place(board, "free", *near(5000))
    rec = board.recommend(view(), NOW, RULES)
    by_id = {c.unit_id: c for c in rec.candidates}
    assert by_id["escort"].conditional is True
    assert any("pengawalan" in w for w in by_id["escort"].warnings)
    assert any("tersedia bersyarat" in r for r in by_id["escort"].reasons)
    assert by_id["free"].conditional is False


def test_a_late_older_status_does_not_make_a_busy_unit_a_candidate():
    board = Board()
    register(board, "u-1")
    place(board, "u-1", *near(100))
    status(board, "u-1", "dispatched", 2, incident_id="inc-2")
    status(board, "u-1", "available", 1)  # late
    rec = board.recommend(view(), NOW, RULES)
    assert ids(rec) == [] and excluded(rec)["u-1"] == "tidak tersedia: sedang ditugaskan"


def test_a_unit_off_shift_is_excluded():
    board = Board()
    register(board, "night", shift_start_h=19, shift_end_h=7)  # NOW is 12:00 WIB
    place(board, "night", *near(100))
    register(board, "day", shift_start_h=7, shift_end_h=19)
    place(board, "day", *near(500))
    rec = board.recommend(view(), NOW, RULES)
    assert ids(rec) == ["day"]
    assert excluded(rec)["night"].startswith("di luar jam dinas")


def test_registration_with_a_shift_start_but_no_end_is_always_on_duty():
    board = Board()
    register(board, "u-1", shift_start_h=7)
    place(board, "u-1", *near(100))
    assert ids(board.recommend(view(), NOW, RULES)) == ["u-1"]


# --- incidents: facts and view ------------------------------------------------------------------
def test_incident_facts_of_an_opened_incident():
    plan = [{"kind": "car", "count": 2}, {"kind": "inafis", "count": 1, "capabilities": ["identification"]}]
    facts = incident_facts_of(opened(response_plan=plan, panic_unit_id="u-panic"))
    assert facts == {"incident_id": "inc-1", "number": "KJD/001/XI/2026", "category": "pencurian",
                     "priority": "P2", "lat": MONAS[0], "lon": MONAS[1], "plan": plan, "assigned": [],
                     "exclude": ["u-panic"]}
    assert incident_facts_of(opened())["exclude"] == []


def test_incident_view_turns_the_response_plan_into_needs():
    plan = [{"kind": "car", "count": 2}, {"kind": "inafis", "capabilities": ["identification"]}]
    v = incident_view(incident_facts_of(opened(response_plan=plan, priority="P1")))
    assert v.plan == (Need(kind="car", count=2), Need(kind="inafis", count=1, capabilities=("identification",)))
    assert (v.incident_id, v.lat, v.lon, v.category, v.priority) == ("inc-1", MONAS[0], MONAS[1], "pencurian", "P1")
    assert v.exclude_units == frozenset()


def test_incident_view_excludes_assigned_and_panic_units():
    facts = incident_facts_of(opened(panic_unit_id="u-panic"))
    facts["assigned"] = ["u-assigned"]
    assert incident_view(facts).exclude_units == frozenset({"u-panic", "u-assigned"})


def test_assigned_and_panic_units_are_not_candidates():
    board = Board()
    for unit_id, metres in (("u-panic", 50), ("u-assigned", 80), ("u-free", 1500)):
        register(board, unit_id)
        place(board, unit_id, *near(metres))
    facts = incident_facts_of(opened(panic_unit_id="u-panic"))
    facts["assigned"].append("u-assigned")
    rec = board.recommend(incident_view(facts), NOW, RULES)
    assert ids(rec) == ["u-free"]
    assert excluded(rec) == {"u-panic": "dikecualikan untuk kejadian ini",
                             "u-assigned": "dikecualikan untuk kejadian ini"}
    assert rec.excluded_counts == {"excluded_for_incident": 2}


def test_the_response_plan_is_met_and_a_shortfall_is_reported():
    board = Board()
    register(board, "car-near")
    place(board, "car-near", *near(100))
    register(board, "car-far")
    place(board, "car-far", *near(4000))
    register(board, "inafis-1", kind="inafis", capabilities=["identification"])
    place(board, "inafis-1", *near(6000))
    plan = [{"kind": "inafis", "count": 1, "capabilities": ["identification"]}, {"kind": "reskrim", "count": 1}]
    rec = board.recommend(incident_view(incident_facts_of(opened(response_plan=plan))), NOW, RULES)
    by_id = {c.unit_id: c for c in rec.candidates}
    assert by_id["inafis-1"].meets == "inafis (identification)"
    assert "memenuhi kebutuhan: inafis (identification)" in by_id["inafis-1"].reasons
    assert by_id["car-near"].meets is None
    assert rec.candidates[0].unit_id == "car-near"  # fastest first, plan lines included
    assert len(rec.shortfalls) == 1 and rec.shortfalls[0].startswith("butuh 1 unit reskrim")


def test_an_incident_without_a_location_has_no_candidates():
    board = Board()
    register(board, "u-1")
    place(board, "u-1", *near(100))
    facts = incident_facts_of(opened(location=Location(address="Jl. Medan Merdeka"),
                                     response_plan=[{"kind": "car"}]))
    rec = board.recommend(incident_view(facts), NOW, RULES)
    assert rec.candidates == [] and rec.excluded_counts == {"no_incident_location": 1}
    assert rec.shortfalls == ["butuh 1 unit car: lokasi kejadian belum diketahui"]


def test_a_fix_read_before_the_units_registration_is_kept_for_it():
    """The feed reads positions and the register as two topics: the first fix may come first."""
    board = Board()
    board.apply(UnitPositionReported(unit_id="late", lat=-6.2, lon=106.8, at=NOW - timedelta(seconds=5)))
    board.apply(UnitRegistered(unit_id="late", callsign="LATE", kind="car", station="s", registered_at=NOW))
    lat, lon, at = board.index.position("late")
    assert (lat, lon) == (-6.2, 106.8) and at == (NOW - timedelta(seconds=5)).timestamp()
