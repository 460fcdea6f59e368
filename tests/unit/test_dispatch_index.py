"""UnitIndex: in-place updates, growth, state codes, and its approximate distances against geopy."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from geopy.distance import geodesic

from services.dispatch.index import (
    ALWAYS_ON_DUTY, AVAILABLE, CONDITIONAL, NOT_AVAILABLE, UnitIndex, metres_per_degree, refined_error_bound,
    shift_mask, status_class,
)

JAKARTA_LAT = (-6.45, -6.05)
JAKARTA_LON = (106.65, 107.05)


def random_fleet(n: int, seed: int) -> tuple[UnitIndex, random.Random]:
    rnd = random.Random(seed)
    index = UnitIndex(capacity=64)
    for i in range(n):
        index.upsert_unit(f"u{i}", rnd.choice(["car", "motorcycle"]))
        index.update_position(f"u{i}", rnd.uniform(*JAKARTA_LAT), rnd.uniform(*JAKARTA_LON), 1000.0)
    return index, rnd


def test_position_update_in_place_without_reallocation():
    index = UnitIndex(capacity=8)
    for i in range(5):
        index.upsert_unit(f"u{i}", "car")
    arrays = (index.lat, index.lon, index.at)
    assert index.update_position("u3", -6.2, 106.8, 100.0)
    assert index.update_position("u3", -6.21, 106.81, 101.0)
    assert index.lat is arrays[0] and index.lon is arrays[1] and index.at is arrays[2]
    assert index.position("u3") == (-6.21, 106.81, 101.0)
    assert index.position("u0") is None


def test_older_fix_never_overwrites_a_newer_one_and_unknown_units_are_ignored():
    index = UnitIndex()
    index.upsert_unit("u1", "car")
    assert index.update_position("u1", -6.2, 106.8, 200.0)
    assert not index.update_position("u1", -6.3, 106.9, 150.0)
    assert index.position("u1") == (-6.2, 106.8, 200.0)
    assert not index.update_position("nobody", -6.2, 106.8, 300.0)


def test_growth_past_capacity_doubles_and_keeps_every_row():
    index = UnitIndex(capacity=4)
    for i in range(4):
        index.upsert_unit(f"u{i}", "car", ("first_aid",), (7, 19))
        index.update_position(f"u{i}", -6.0 - i, 106.0 + i, float(i))
        index.set_status(f"u{i}", "patrol")
    before = index.lat
    assert index.capacity == 4
    index.upsert_unit("u4", "motorcycle")
    assert index.capacity == 8 and index.lat is not before
    for i in range(5, 11):
        index.upsert_unit(f"u{i}", "foot")
    assert index.capacity == 16 and len(index) == 11
    for i in range(4):
        assert index.position(f"u{i}") == (-6.0 - i, 106.0 + i, float(i))
        assert index.status_of(f"u{i}") == "patrol"
        row = index.row(f"u{i}")
        assert index.klass[row] == CONDITIONAL and index.shift[row] == shift_mask((7, 19))
    assert index.position("u4") is None and index.status_of("u4") == "available"


def test_remove_frees_the_row_for_the_next_unit():
    index = UnitIndex(capacity=4)
    for i in range(3):
        index.upsert_unit(f"u{i}", "car")
        index.update_position(f"u{i}", -6.2, 106.8, 1.0)
    row = index.row("u1")
    assert index.remove("u1") and not index.remove("u1")
    assert "u1" not in index and len(index) == 2
    assert not index.active[row]
    assert index.upsert_unit("u9", "motorcycle") == row
    assert index.unit_id_at(row) == "u9" and index.position("u9") is None
    rows, _ = index.nearest(-6.2, 106.8, 10)
    assert sorted(index.unit_id_at(r) for r in rows.tolist()) == ["u0", "u2"]


def test_upsert_keeps_position_and_status():
    index = UnitIndex()
    index.upsert_unit("u1", "car")
    index.update_position("u1", -6.2, 106.8, 5.0)
    index.set_status("u1", "on_scene")
    index.upsert_unit("u1", "motorcycle", ("rapid_response",))
    row = index.row("u1")
    assert index.kind_name(int(index.kind[row])) == "motorcycle"
    assert index.position("u1") == (-6.2, 106.8, 5.0) and index.status_of("u1") == "on_scene"
    assert index.caps[row] == index.capability_bits(["rapid_response"])
    assert index.capability_bits(["never_heard_of"]) is None


def test_status_classes_and_duty():
    assert status_class("available") == AVAILABLE
    assert status_class("available", on_duty=True) == CONDITIONAL
    for s in ("patrol", "post", "escort", "traffic_control", "guarding_scene"):
        assert status_class(s) == CONDITIONAL
    for s in ("dispatched", "en_route", "on_scene", "transporting", "break", "off_duty", "out_of_service", "???"):
        assert status_class(s) == NOT_AVAILABLE
    index = UnitIndex()
    index.upsert_unit("u1", "car")
    index.set_duty("u1", True)
    assert index.klass[index.row("u1")] == CONDITIONAL
    index.set_status("u1", "en_route")
    assert index.klass[index.row("u1")] == NOT_AVAILABLE
    index.set_status("u1", "available")
    index.set_duty("u1", False)
    assert index.klass[index.row("u1")] == AVAILABLE
    index.set_status("u1", "something_new")  # unknown words count as not available
    assert index.klass[index.row("u1")] == NOT_AVAILABLE and index.status_of("u1") == "something_new"


def test_shift_masks():
    assert shift_mask(None) == ALWAYS_ON_DUTY
    day = shift_mask((7, 19))
    assert [h for h in range(24) if day >> h & 1] == list(range(7, 19))
    night = shift_mask((19, 7))
    assert [h for h in range(24) if night >> h & 1] == list(range(0, 7)) + list(range(19, 24))
    assert shift_mask((8, 8)) == ALWAYS_ON_DUTY


def test_metres_per_degree_near_the_equator():
    north, east = metres_per_degree(-6.2)
    assert north == pytest.approx(geodesic((-6.7, 106.8), (-5.7, 106.8)).meters, rel=1e-4)
    assert east == pytest.approx(geodesic((-6.2, 106.3), (-6.2, 107.3)).meters, rel=1e-4)


def test_approximate_distance_close_to_geodesic_within_a_city():
    index, rnd = random_fleet(300, seed=3)
    for _ in range(10):
        lat, lon = rnd.uniform(*JAKARTA_LAT), rnd.uniform(*JAKARTA_LON)
        approx = np.sqrt(index.approx_sq_distances_m(lat, lon))
        for row in range(0, 300, 7):
            exact = geodesic((lat, lon), (index.lat[row], index.lon[row])).meters
            assert approx[row] == pytest.approx(exact, rel=2e-3, abs=0.01)


def test_refined_distance_within_its_error_bound():
    rnd = random.Random(11)
    index = UnitIndex()
    pairs = []
    for i in range(400):
        lat = rnd.uniform(-70, 70)
        lon = rnd.uniform(-179, 179)
        dist = rnd.choice([rnd.uniform(1, 2_000), rnd.uniform(2_000, 20_000), rnd.uniform(20_000, 100_000)])
        dest = geodesic(meters=dist).destination((lat, lon), rnd.uniform(0, 360))
        index.upsert_unit(f"u{i}", "car")
        index.update_position(f"u{i}", dest.latitude, dest.longitude, 0.0)
        pairs.append((lat, lon, i))
    for lat, lon, i in pairs:
        row = index.row(f"u{i}")
        refined = float(index.refine_distances_m(lat, lon, np.array([row]))[0])
        exact = geodesic((lat, lon), (index.lat[row], index.lon[row])).meters
        assert abs(refined / exact - 1) <= refined_error_bound(exact), (lat, lon, exact, refined)


def test_nearest_matches_brute_force_geodesic_ranking():
    n = 500
    index, rnd = random_fleet(n, seed=7)
    k = 5
    for _ in range(30):
        lat, lon = rnd.uniform(*JAKARTA_LAT), rnd.uniform(*JAKARTA_LON)
        exact = sorted((geodesic((lat, lon), (index.lat[r], index.lon[r])).meters, r) for r in range(n))
        truth = {r for _, r in exact[:k]}
        # After the geodesic re-rank of the finalists: exactly the brute-force top k.
        finalists, _ = index.nearest(lat, lon, 32)
        reranked = sorted(finalists.tolist(),
                          key=lambda r: geodesic((lat, lon), (index.lat[r], index.lon[r])).meters)
        assert set(reranked[:k]) == truth
        # The approximate top k itself: the same set, up to near-ties (within 0.5 %).
        rows, dists = index.nearest(lat, lon, k)
        assert list(dists) == sorted(dists)
        kth = exact[k - 1][0]
        for r in set(rows.tolist()) ^ truth:
            d = geodesic((lat, lon), (index.lat[r], index.lon[r])).meters
            assert d == pytest.approx(kth, rel=5e-3)


def test_nearest_with_mask_and_radius():
    index, rnd = random_fleet(500, seed=5)
    lat, lon = -6.25, 106.85
    mask = np.zeros(index.n_rows, dtype=bool)
    mask[::2] = True
    rows, dists = index.nearest(lat, lon, 10, mask=mask, max_distance_m=5_000)
    assert all(r % 2 == 0 for r in rows.tolist())
    assert all(d <= 5_000 for d in dists.tolist())
    assert index.nearest(lat, lon, 0)[0].size == 0


def test_update_throughput_shape_many_updates_keep_arrays():
    """Many updates through the public call: no reallocation, last fix wins."""
    index, rnd = random_fleet(100, seed=1)
    lat_array = index.lat
    for t in range(5_000):
        u = f"u{t % 100}"
        index.update_position(u, -6.2 + t * 1e-6, 106.8, 2000.0 + t)
    assert index.lat is lat_array
    assert index.position("u99") == (-6.2 + 4999 * 1e-6, 106.8, 2000.0 + 4999)
    assert math.isclose(index.at[index.row("u0")], 2000.0 + 4900)


@pytest.mark.parametrize("hint_m2", [None, 1e-6, 1e2, 1e14])
def test_nearest_rows_match_a_full_sort_whatever_radius_is_remembered(hint_m2):
    index, rnd = random_fleet(3000, seed=11)
    for i in range(0, 3000, 7):  # some units without a position, some rows freed
        index.upsert_unit(f"new{i}", "car")
    for i in range(0, 3000, 13):
        index.remove(f"u{i}")
    for trial in range(30):
        if hint_m2 is not None:
            index._near_hint_m2 = hint_m2
        lat, lon = rnd.uniform(*JAKARTA_LAT), rnd.uniform(*JAKARTA_LON)
        d2 = index.approx_sq_distances_m(lat, lon).copy()
        positioned = np.flatnonzero(~np.isnan(d2))
        expected = positioned[np.argsort(d2[positioned], kind="stable")]
        for k in (1, 5, 23, 200, len(index) + 5):
            got = index.nearest_rows(d2, k)
            assert got.tolist() == expected[:k].tolist()
            assert all(index.unit_id_at(r) is not None for r in got.tolist())


def test_ready_masks_follow_every_status_duty_shift_and_registration_change():
    index = UnitIndex(capacity=2)
    index.upsert_unit("a", "car")
    index.upsert_unit("b", "car", shift=(7, 19))
    ready, on_shift = index.ready_masks(hour=20)
    assert ready.tolist() == [True, True] and on_shift.tolist() == [True, False]
    assert index.ready_masks(hour=20)[0] is ready  # cached while nothing changes
    index.update_position("a", -6.2, 106.8, 100.0)
    assert index.ready_masks(hour=20)[0] is ready  # positions do not change readiness
    assert index.ready_masks(hour=8)[1].tolist() == [True, True]
    index.set_status("a", "on_scene")
    assert index.ready_masks(hour=8)[0].tolist() == [False, True]
    index.set_status("a", "patrol")  # conditionally available is still ready
    assert index.ready_masks(hour=8)[0].tolist() == [True, True]
    index.set_shift("a", (8, 9))
    assert index.ready_masks(hour=10)[1].tolist() == [False, True]
    index.remove("b")
    assert index.ready_masks(hour=8)[0].tolist() == [True, False]
    index.upsert_unit("c", "foot")  # reuses b's row
    assert index.ready_masks(hour=8)[0].tolist() == [True, True]
    index.set_duty("c", True)
    assert index.klass[index.row("c")] == CONDITIONAL and index.ready_masks(hour=8)[0].tolist() == [True, True]
    with pytest.raises(ValueError):
        index.ready_masks(hour=8)[0][0] = False  # read only: a caller cannot corrupt the cache
