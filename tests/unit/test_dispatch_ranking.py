"""The pure ranking rules: hand-made cases, ETA arithmetic, the OSRM router and its fallback."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from urllib.parse import unquote

import httpx
import numpy as np
import pytest
from geopy.distance import geodesic

from services.dispatch import ranking
from services.dispatch.index import UnitIndex
from services.dispatch.ranking import (
    IncidentView, Need, RankingRules, UnitInfo, geodesic_m, recommend, sync_unit,
)
from services.dispatch.router import OsrmRouter, StraightLineRouter

LAT, LON = -6.2, 106.8
# 14:00 WIB (07:00 UTC): inside a 07-19 shift; 21:00 WIB (14:00 UTC): outside it.
DAY = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)
NIGHT = datetime(2026, 11, 27, 14, 0, tzinfo=timezone.utc)
INAFIS = Need("inafis", 1, ("identification",))


class Fleet:
    def __init__(self) -> None:
        self.index = UnitIndex(capacity=4)
        self.units: dict[str, UnitInfo] = {}

    def add(self, unit_id: str, kind: str, north_m: float | None = 0.0, east_m: float = 0.0, *,
            age_s: float = 10.0, now: datetime = DAY, **info) -> UnitInfo:
        unit = UnitInfo(unit_id, f"CS-{unit_id}", kind, "Polsek Menteng", **info)
        self.units[unit_id] = unit
        sync_unit(self.index, unit)
        if north_m is not None:
            point = geodesic(meters=abs(north_m)).destination((LAT, LON), 0 if north_m >= 0 else 180)
            point = geodesic(meters=abs(east_m)).destination(point, 90 if east_m >= 0 else 270)
            self.index.update_position(unit_id, point.latitude, point.longitude, now.timestamp() - age_s)
        return unit

    def recommend(self, plan=(), now=DAY, rules=RankingRules(), router=None, **kw) -> ranking.Recommendation:
        incident = IncidentView("INC-1", kw.pop("lat", LAT), kw.pop("lon", LON), "assault", "P2", tuple(plan), **kw)
        return recommend(incident, self.units, self.index, now, rules, router)


def ids(rec) -> list[str]:
    return [c.unit_id for c in rec.candidates]


def reason_of(rec, unit_id) -> str:
    return dict(rec.excluded)[unit_id]


def straight_eta(unit_id: str, fleet: Fleet, speed_kmh: float) -> float:
    lat, lon, _ = fleet.index.position(unit_id)
    return geodesic((LAT, LON), (lat, lon)).meters * 1.35 / (speed_kmh / 3.6)


def test_faster_motorcycle_beats_nearer_car():
    fleet = Fleet()
    fleet.add("car", "car", 2_100)
    fleet.add("moto", "motorcycle", 2_300)  # farther, but 35 km/h against 30
    rec = fleet.recommend()
    assert ids(rec) == ["moto", "car"]
    first = rec.candidates[0]
    assert first.reasons[0] == "tercepat tiba"
    assert "tersedia" in first.reasons
    assert "jarak 2,3 km" in first.reasons
    assert "perkiraan tiba 5 menit (motorcycle)" in first.reasons
    assert not first.conditional and first.warnings == [] and first.meets is None
    assert "tercepat tiba" not in rec.candidates[1].reasons


def test_nearer_motorcycle_beats_farther_car():
    fleet = Fleet()
    fleet.add("car", "car", 3_000)
    fleet.add("moto", "motorcycle", 2_000)
    assert ids(fleet.recommend()) == ["moto", "car"]


def test_eta_arithmetic_and_geodesic_distance():
    fleet = Fleet()
    fleet.add("car", "car", 1_200, 500)
    fleet.add("foot", "foot", 300)
    rec = fleet.recommend()
    by_id = {c.unit_id: c for c in rec.candidates}
    for unit_id, speed in (("car", 30), ("foot", 5)):
        lat, lon, _ = fleet.index.position(unit_id)
        metres = geodesic((LAT, LON), (lat, lon)).meters
        assert by_id[unit_id].distance_m == round(metres, 1)
        assert by_id[unit_id].eta_s == round(metres * 1.35 / (speed / 3.6), 1)
    # the car (1.3 km at 30 km/h: 3.5 min) beats the walker (300 m at 5 km/h: 4.9 min)
    assert ids(rec) == ["car", "foot"]
    assert StraightLineRouter().travel_time_s(1000, "car") == pytest.approx(1000 * 1.35 / (30 / 3.6))
    assert StraightLineRouter().travel_time_s(1000, "hovercraft") == pytest.approx(1000 * 1.35 / (30 / 3.6))


def test_geodesic_m_is_geopys_geodesic():
    rnd = random.Random(2)
    for _ in range(50):
        a = (rnd.uniform(-7, -6), rnd.uniform(106, 107))
        b = (rnd.uniform(-7, -6), rnd.uniform(106, 107))
        assert geodesic_m(*a, *b) == pytest.approx(geodesic(a, b).meters, rel=1e-12, abs=1e-6)


def test_stale_and_missing_positions_are_excluded_with_reasons():
    fleet = Fleet()
    fleet.add("fresh", "car", 5_000)
    fleet.add("stale", "car", 100, age_s=12 * 60)
    fleet.add("nowhere", "car", None)
    rec = fleet.recommend()
    assert ids(rec) == ["fresh"]
    assert reason_of(rec, "stale") == "posisi kedaluwarsa (12 menit)"
    assert "nowhere" not in dict(rec.excluded)  # no position: not among the nearest, but counted
    assert rec.excluded_counts == {"stale_position": 1, "no_position": 1}


def test_unit_on_escort_is_a_candidate_with_pull_cost_and_warning():
    fleet = Fleet()
    fleet.add("escort", "car", 500, status="escort")
    fleet.add("far", "car", 1_500)
    rec = fleet.recommend()
    assert ids(rec) == ["far", "escort"]  # 500 m + 4 min pull cost (5.4 min) loses to 1.5 km (4 min)
    escort = rec.candidates[1]
    assert escort.conditional
    assert escort.eta_s == pytest.approx(straight_eta("escort", fleet, 30) + 240, abs=0.1)
    assert escort.warnings == ["sedang pengawalan — penarikan perlu dicatat"]
    assert "tersedia bersyarat: sedang pengawalan" in escort.reasons
    assert any("termasuk 4 menit penarikan" in r for r in escort.reasons)


def test_available_unit_on_turjawali_duty_is_conditional():
    fleet = Fleet()
    fleet.add("duty", "motorcycle", 800, duty="penjagaan")
    rec = fleet.recommend()
    (cand,) = rec.candidates
    assert cand.conditional
    assert cand.eta_s == pytest.approx(straight_eta("duty", fleet, 35) + 240, abs=0.1)
    assert cand.warnings == ["sedang penjagaan (turjawali) — penarikan perlu dicatat"]


def test_busy_units_are_excluded_naming_their_status():
    fleet = Fleet()
    fleet.add("tkp", "car", 200, status="on_scene")
    fleet.add("rest", "car", 300, status="break")
    fleet.add("ok", "car", 4_000)
    rec = fleet.recommend()
    assert ids(rec) == ["ok"]
    assert reason_of(rec, "tkp") == "tidak tersedia: di TKP"
    assert reason_of(rec, "rest") == "tidak tersedia: istirahat"
    assert rec.excluded_counts == {"not_available": 2}


def test_off_shift_is_excluded():
    fleet = Fleet()
    fleet.add("day", "car", 300, shift=(7, 19))
    fleet.add("night", "car", 400, shift=(19, 7))
    rec_day = fleet.recommend(now=DAY)
    assert ids(rec_day) == ["day"]
    assert reason_of(rec_day, "night") == "di luar jam dinas (19–07)"
    rec_night = fleet.recommend(now=NIGHT, rules=RankingRules(position_max_age_s=86_400))
    assert ids(rec_night) == ["night"]
    assert reason_of(rec_night, "day") == "di luar jam dinas (07–19)"
    assert rec_night.excluded_counts == {"off_shift": 1}


def test_beyond_radius_is_excluded():
    fleet = Fleet()
    fleet.add("far", "car", 23_400)
    fleet.add("near", "car", 10_000)
    rec = fleet.recommend()
    assert ids(rec) == ["near"]
    assert reason_of(rec, "far") == "di luar radius 15 km (23,4 km)"
    assert rec.excluded_counts == {"beyond_radius": 1}


def test_plan_needing_inafis_fills_it_from_farther_away():
    fleet = Fleet()
    for i in range(6):
        fleet.add(f"car{i}", "car", 500 + 100 * i)
    fleet.add("inafis", "inafis", 9_000, capabilities=("identification",))
    rec = fleet.recommend(plan=(Need("car"), INAFIS))
    assert len(rec.candidates) == 5
    assert "inafis" in ids(rec)
    assert ids(rec)[:4] == ["car0", "car1", "car2", "car3"]
    inafis = next(c for c in rec.candidates if c.unit_id == "inafis")
    assert inafis.meets == "inafis (identification)"
    assert "memenuhi kebutuhan: inafis (identification)" in inafis.reasons
    assert rec.candidates[0].meets == "car"
    assert rec.shortfalls == []
    assert reason_of(rec, "car4").startswith("ada unit lebih cepat")
    assert rec.excluded_counts == {"slower_unit_available": 2}


def test_plan_reports_shortfall_when_no_inafis():
    fleet = Fleet()
    fleet.add("car", "car", 500)
    fleet.add("inafis-noid", "inafis", 700)  # lacks the capability
    fleet.add("inafis-far", "inafis", 30_000, capabilities=("identification",))
    rec = fleet.recommend(plan=(Need("car"), INAFIS, Need("car", 2)))
    assert rec.shortfalls == [
        "butuh 1 unit inafis (identification): tidak ada yang tersedia dalam radius 15 km",
        "butuh 2 unit car: tidak ada yang tersedia dalam radius 15 km",  # the one car went to line 1
    ]
    # the free slots still go to the fastest others
    assert ids(rec) == ["car", "inafis-noid"]


def test_partial_shortfall_wording():
    fleet = Fleet()
    fleet.add("car", "car", 500)
    rec = fleet.recommend(plan=(Need("car", 2),))
    assert rec.shortfalls == ["butuh 2 unit car: hanya 1 tersedia dalam radius 15 km"]


def test_plan_taking_every_slot_excludes_units_no_line_can_use():
    fleet = Fleet()
    fleet.add("car", "car", 900)
    fleet.add("walker", "foot", 50)
    fleet.add("inafis-noid", "inafis", 60)
    fleet.add("inafis", "inafis", 2_000, capabilities=("identification",))
    rec = fleet.recommend(plan=(Need("car"), INAFIS), rules=RankingRules(max_candidates=2))
    assert ids(rec) == ["car", "inafis"]
    assert reason_of(rec, "walker") == "jenis unit tidak dibutuhkan (foot; butuh: car, inafis (identification))"
    assert reason_of(rec, "inafis-noid") == "tidak memiliki kemampuan yang dibutuhkan (butuh: car, inafis (identification))"
    assert rec.excluded_counts == {"wrong_kind": 1, "lacks_capability": 1}


def test_no_plan_takes_just_the_fastest_and_explains_the_rest():
    fleet = Fleet()
    for i in range(4):
        fleet.add(f"m{i}", "motorcycle", 1_000 * (i + 1))
    rec = fleet.recommend(rules=RankingRules(max_candidates=2))
    assert ids(rec) == ["m0", "m1"]
    assert reason_of(rec, "m2") == "ada unit lebih cepat (perkiraan tiba 7 menit)"  # 3 km
    assert rec.excluded_counts == {"slower_unit_available": 2}


def test_excluded_units_of_the_incident():
    fleet = Fleet()
    fleet.add("panic", "car", 10)
    fleet.add("other", "car", 1_000)
    rec = fleet.recommend(exclude_units=frozenset({"panic", "ghost"}))
    assert ids(rec) == ["other"]
    assert reason_of(rec, "panic") == "dikecualikan untuk kejadian ini"
    assert rec.excluded_counts == {"excluded_for_incident": 1}


def test_excluded_list_holds_the_nearest_and_counts_hold_everyone():
    fleet = Fleet()
    for i in range(100):
        fleet.add(f"busy{i:03d}", "car", 100 + 10 * i, status="dispatched")
    fleet.add("ok", "car", 5_000)
    rec = fleet.recommend(rules=RankingRules(excluded_listed=10))
    assert ids(rec) == ["ok"]
    assert [u for u, _ in rec.excluded] == [f"busy{i:03d}" for i in range(10)]
    assert rec.excluded_counts == {"not_available": 100}


def test_incident_without_coordinates():
    fleet = Fleet()
    fleet.add("car", "car", 100)
    rec = fleet.recommend(plan=(Need("car"),), lat=None, lon=None)
    assert rec.candidates == [] and rec.excluded == []
    assert rec.excluded_counts == {"no_incident_location": 1}
    assert rec.shortfalls == ["butuh 1 unit car: lokasi kejadian belum diketahui"]


def test_removed_unit_is_gone_and_sync_follows_status_changes():
    fleet = Fleet()
    fleet.add("a", "car", 100)
    fleet.add("b", "car", 200)
    fleet.index.remove("a")
    assert ids(fleet.recommend()) == ["b"]
    fleet.units["b"].status = "en_route"
    sync_unit(fleet.index, fleet.units["b"])
    rec = fleet.recommend()
    assert rec.candidates == [] and reason_of(rec, "b") == "tidak tersedia: dalam perjalanan"


class _Eager(StraightLineRouter):
    distance_only = False  # recommend() then measures every finalist


def test_lazy_geodesic_gives_the_same_ranking_as_measuring_every_finalist():
    rnd = random.Random(4)
    fleet = Fleet()
    kinds = ["car", "motorcycle", "foot", "inafis", "reskrim"]
    for i in range(600):
        kind = rnd.choice(kinds)
        caps = {"inafis": ("identification",), "reskrim": ("olah_tkp",)}.get(kind, ())
        status = rnd.choice(["available"] * 6 + ["patrol", "escort", "on_scene"])
        fleet.add(f"u{i}", kind, rnd.uniform(-12_000, 12_000), rnd.uniform(-12_000, 12_000),
                  capabilities=caps, status=status)
    plans = [(), (Need("car"),), (Need("car"), Need("reskrim", 1, ("olah_tkp",)), INAFIS), (Need("motorcycle", 3),)]
    for trial in range(40):
        lat, lon = LAT + rnd.uniform(-0.08, 0.08), LON + rnd.uniform(-0.08, 0.08)
        plan = plans[trial % len(plans)]
        lazy = fleet.recommend(plan=plan, lat=lat, lon=lon)
        eager = fleet.recommend(plan=plan, lat=lat, lon=lon, router=_Eager())
        assert [(c.unit_id, c.eta_s, c.distance_m, c.meets) for c in lazy.candidates] == \
               [(c.unit_id, c.eta_s, c.distance_m, c.meets) for c in eager.candidates]
        assert lazy.excluded_counts == eager.excluded_counts


# --- OSRM ------------------------------------------------------------------------------------

def osrm_fleet() -> Fleet:
    fleet = Fleet()
    fleet.add("near-car", "car", 1_000)       # straight line: 2.7 min
    fleet.add("far-car", "car", 2_000)        # straight line: 5.4 min, but a fast road
    fleet.add("walker", "foot", 100)          # never routed
    return fleet


def test_osrm_router_uses_road_times_for_the_finalists():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        coords = unquote(request.url.path.split("/table/v1/driving/")[1]).split(";")
        sources = request.url.params["sources"].split(";")
        assert request.url.params["destinations"] == "0"
        assert request.url.params["annotations"] == "duration"
        assert coords[0] == f"{LON:.6f},{LAT:.6f}"  # lon,lat: the incident first
        durations = []
        for s in sources:
            lon, lat = map(float, coords[int(s)].split(","))
            metres = geodesic((LAT, LON), (lat, lon)).meters
            durations.append([60.0 if metres > 1_500 else 600.0])
        return httpx.Response(200, json={"code": "Ok", "durations": durations})

    router = OsrmRouter("http://osrm.test/", client=httpx.Client(transport=httpx.MockTransport(handler)))
    fleet = osrm_fleet()
    rec = fleet.recommend(router=router)
    assert len(seen) == 1
    assert len(seen[0].url.params["sources"].split(";")) == 2  # the cars; the walker is timed straight
    assert ids(rec) == ["far-car", "walker", "near-car"]
    by_id = {c.unit_id: c for c in rec.candidates}
    assert by_id["far-car"].eta_s == 60.0 and by_id["near-car"].eta_s == 600.0
    assert by_id["walker"].eta_s == pytest.approx(straight_eta("walker", fleet, 5), abs=0.1)
    assert by_id["far-car"].distance_m == round(geodesic((LAT, LON), fleet.index.position("far-car")[:2]).meters, 1)
    assert router.last_error is None and router.fallbacks == 0


def test_osrm_router_adds_the_pull_cost():
    def handler(request):
        return httpx.Response(200, json={"code": "Ok", "durations": [[100.0]]})

    fleet = Fleet()
    fleet.add("escort", "car", 1_000, status="escort")
    router = OsrmRouter("http://osrm.test", client=httpx.Client(transport=httpx.MockTransport(handler)))
    (cand,) = fleet.recommend(router=router).candidates
    assert cand.eta_s == 340.0 and cand.conditional


@pytest.mark.parametrize("response", [
    httpx.Response(500, text="boom"),
    httpx.Response(200, json={"code": "NoTable", "message": "nope"}),
    httpx.Response(200, text="not json"),
    httpx.Response(200, json={"code": "Ok", "durations": [[1.0]]}),  # wrong row count
])
def test_osrm_router_falls_back_to_straight_line_on_error(response):
    router = OsrmRouter("http://osrm.test", client=httpx.Client(transport=httpx.MockTransport(lambda r: response)))
    fleet = osrm_fleet()
    rec = fleet.recommend(router=router)
    plain = fleet.recommend()
    assert [(c.unit_id, c.eta_s) for c in rec.candidates] == [(c.unit_id, c.eta_s) for c in plain.candidates]
    assert router.last_error is not None and router.fallbacks == 2


def test_osrm_router_falls_back_per_unit_without_route_and_on_network_error():
    def handler(request):
        return httpx.Response(200, json={"code": "Ok", "durations": [[None], [42.0]]})

    router = OsrmRouter("http://osrm.test", client=httpx.Client(transport=httpx.MockTransport(handler)))
    times = router.travel_times_s((LAT, LON), [(-6.19, 106.8), (-6.18, 106.8)], ["car", "car"], [1000.0, 2000.0])
    assert times == [pytest.approx(1000 * 1.35 / (30 / 3.6)), 42.0]
    assert router.fallbacks == 1

    def down(request):
        raise httpx.ConnectError("refused", request=request)

    router = OsrmRouter("http://osrm.test", client=httpx.Client(transport=httpx.MockTransport(down)))
    times = router.travel_times_s((LAT, LON), [(-6.19, 106.8)], ["motorcycle"], [1000.0])
    assert times == [pytest.approx(1000 * 1.35 / (35 / 3.6))]
    assert "ConnectError" in router.last_error


def test_ranking_imports_nothing_from_the_stack():
    import ast
    import pathlib

    for name in ("ranking.py", "index.py", "router.py"):
        tree = ast.parse(pathlib.Path(ranking.__file__).with_name(name).read_text())
        top_level = set()
        for node in tree.body:  # module level only: router.py imports httpx lazily
            if isinstance(node, ast.Import):
                top_level |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                top_level.add(node.module.split(".")[0])
        assert top_level <= {"__future__", "math", "collections", "dataclasses", "datetime", "functools",
                             "typing", "logging", "numpy", "geopy", "geographiclib"}, (name, top_level)


@pytest.mark.parametrize("remembered_m", [1e-3, 300.0, 4_000.0, 1e7])
def test_finalists_looked_for_within_a_distance_are_the_k_fastest_of_each_pool(remembered_m):
    rnd = np.random.default_rng(3)
    n = 5000
    d2 = rnd.uniform(0, 20_000, n) ** 2
    d2[rnd.integers(0, n, 200)] = np.nan  # rows without a position
    kinds = rnd.integers(0, 3, n)
    spm_kinds = np.array([0.1, 0.12, 0.7])  # seconds per metre: motorcycle, car, on foot
    spm_rows = spm_kinds[kinds]
    pull_rows = np.where(rnd.random(n) < 0.1, 240.0, 0.0)
    eta = np.sqrt(d2) * spm_rows + pull_rows
    radius2 = 15_000.0 ** 2
    index = UnitIndex()
    for k in (1, 32, 700, 6000):
        eligible = (rnd.random(n) < 0.6) & (d2 <= radius2)
        pools = [(kinds == 2, 0.7), (kinds == 0, 0.1), (None, 0.1)]
        plan = ranking._Plan((), index)
        plan.finalist_r2 = remembered_m ** 2
        got = ranking._finalists(d2, eligible, pools, spm_rows, pull_rows, k, plan, radius2)
        expected = set()
        for pool, _ in pools:
            rows = np.flatnonzero(eligible if pool is None else eligible & pool)
            expected |= set(rows[np.argsort(eta[rows])][:k].tolist())
        assert got.tolist() == sorted(expected)
        assert plan.finalist_r2 > 0  # remembered for the next incident of the plan


def test_cached_plan_masks_follow_capability_and_kind_changes():
    fleet = Fleet()
    fleet.add("car", "car", 100)
    fleet.add("lab", "inafis", 300)
    plan = (Need("car"), INAFIS)
    rules = RankingRules(max_candidates=2)  # every slot belongs to the plan: misfits are excluded
    rec = fleet.recommend(plan=plan, rules=rules)
    assert ids(rec) == ["car"] and rec.shortfalls
    fleet.units["lab"].capabilities = ("identification",)
    sync_unit(fleet.index, fleet.units["lab"])
    rec = fleet.recommend(plan=plan, rules=rules)
    assert ids(rec) == ["car", "lab"] and not rec.shortfalls
    fleet.units["car"].kind = "foot"
    sync_unit(fleet.index, fleet.units["car"])
    rec = fleet.recommend(plan=plan, rules=rules)
    assert ids(rec) == ["lab"] and reason_of(rec, "car").startswith("jenis unit tidak dibutuhkan (foot")
