"""The skeleton's domain rules, without any broker."""
from datetime import datetime, timedelta, timezone

from schemas.events import (
    IncidentOpened, Location, UnitPositionReported, UnitRegistered, UnitStatusChanged,
)
from services.dispatch import domain as dispatch
from services.notify import domain as notify
from services.tkp import domain as tkp

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)
MONAS = (-6.1754, 106.8272)


def board_with(*units):
    board = dispatch.UnitBoard()
    for unit_id, kind, lat, lon in units:
        board.apply(UnitRegistered(unit_id=unit_id, callsign=unit_id.upper(), kind=kind, station="s",
                                   registered_at=NOW))
        if lat is not None:
            board.apply(UnitPositionReported(unit_id=unit_id, lat=lat, lon=lon, at=NOW - timedelta(seconds=30)))
    return board


def incident_at(lat, lon):
    return IncidentOpened(incident_id="i-1", number="KJD-1", report_ids=["r"], category="x", priority="P2",
                          summary="s", location=Location(lat=lat, lon=lon), opened_at=NOW)


def recommend(board, incident, n=3):
    return dispatch.recommend(incident, board, NOW, max_candidates=n, position_max_age=timedelta(minutes=10))


def test_dispatch_recommends_the_nearest_available_unit_first_with_reasons():
    board = board_with(("near", "car", -6.1760, 106.8280), ("far", "car", -6.2600, 106.8100),
                       ("mid", "car", -6.1900, 106.8300))
    rec = recommend(board, incident_at(*MONAS))
    assert [c.unit_id for c in rec.candidates] == ["near", "mid", "far"]
    best = rec.candidates[0]
    assert best.distance_m < 200 and best.eta_s > 0
    assert best.reasons[0] == "tercepat tiba" and any(r.startswith("jarak") for r in best.reasons)
    assert rec.excluded == []


def test_dispatch_excludes_busy_unpositioned_and_stale_units_saying_why():
    board = board_with(("busy", "car", -6.1760, 106.8280), ("nowhere", "car", None, None),
                       ("stale", "car", -6.1760, 106.8280), ("ok", "motorcycle", -6.2000, 106.8200))
    board.apply(UnitStatusChanged(unit_id="busy", status="on_scene", changed_at=NOW))
    board.apply(UnitPositionReported(unit_id="stale", lat=-6.1760, lon=106.8280, at=NOW - timedelta(hours=1)))
    board.units["stale"].position_at = NOW - timedelta(hours=1)
    rec = recommend(board, incident_at(*MONAS))
    assert [c.unit_id for c in rec.candidates] == ["ok"]
    reasons = {x.unit_id: x.reason for x in rec.excluded}
    assert reasons["busy"] == "tidak tersedia: di TKP"
    assert reasons["nowhere"] == "posisi belum diketahui"
    assert reasons["stale"].startswith("posisi kedaluwarsa")


def test_dispatch_lists_units_beyond_the_shortlist_as_excluded():
    board = board_with(*[(f"u{i}", "car", -6.1754 - i * 0.01, 106.8272) for i in range(5)])
    rec = recommend(board, incident_at(*MONAS), n=2)
    assert [c.unit_id for c in rec.candidates] == ["u0", "u1"]
    assert {x.unit_id for x in rec.excluded} == {"u2", "u3", "u4"}
    assert all(x.reason.startswith("ada unit lebih dekat") for x in rec.excluded)


def test_dispatch_without_incident_coordinates_recommends_nobody():
    board = board_with(("a", "car", -6.1760, 106.8280))
    incident = IncidentOpened(incident_id="i", number="n", report_ids=["r"], category="x", priority="P3",
                              summary="s", location=Location(address="Jl. Sudirman"), opened_at=NOW)
    rec = recommend(board, incident)
    assert rec.candidates == [] and rec.excluded[0].reason == "lokasi kejadian tanpa koordinat"


def test_an_older_position_never_overwrites_a_newer_one():
    board = board_with(("a", "car", -6.1, 106.8))
    board.apply(UnitPositionReported(unit_id="a", lat=-6.3, lon=106.9, at=NOW - timedelta(hours=2)))
    assert (board.units["a"].lat, board.units["a"].lon) == (-6.1, 106.8)


def test_a_motorcycle_arrives_sooner_than_a_car_over_the_same_distance():
    assert dispatch.travel_time_s(1000, "motorcycle") < dispatch.travel_time_s(1000, "car")
    assert dispatch.travel_time_s(1000, "foot") > dispatch.travel_time_s(1000, "car")


def test_notify_plans_one_receipt_per_event_and_none_without_a_phone(report):
    first = notify.receipt("e-1", report)
    assert first == notify.receipt("e-1", report)
    assert first.notification_id != notify.receipt("e-2", report).notification_id
    assert report.tracking_code in first.text and first.recipient == "+6281234567890"
    nobody = report.model_copy(update={"reporter": report.reporter.model_copy(update={"phone": None})})
    assert notify.receipt("e-1", nobody) is None


def test_tkp_knows_which_events_concern_the_scene():
    assert tkp.scene_note("incident.opened") and tkp.scene_note("incident.closed")
    assert tkp.scene_note("report.received") is None
    assert "police_line" in tkp.TPTKP_STEPS and "scene_released" in tkp.OLAH_TKP_STEPS
