"""How fast the dispatch ranking answers, against the naive loop it replaces.

    python -m benchmarks.recommend [--units 10000] [--incidents 10000] [--naive 20] [--seed 1]
                                   [--updates 1000000] [--json PATH]

A synthetic fleet over greater Jakarta (lat -6.45..-6.05, lon 106.65..107.05): mixed kinds (cars
and motorcycles mostly, some on foot, lantas, reskrim, inafis) with their capabilities; about 70 %
available (a tenth of those on a turjawali duty), 10 % conditionally available (patrol, post,
escort, traffic control, guarding a scene), 20 % busy; 5 % without a position, 8 % with a stale
one; half on a day or night shift. Incidents are uniform random points, each with the response
plan of a random category of services.intake.categories.

Measured in one run:

- `recommend()` latency per incident (all rules, the finalists' geopy geodesic distances, the
  candidates' reasons, the nearest exclusions and the counts over all units): p50 / p99 / max;
- the same with the geodesic computed for every finalist (no lazy bound), for comparison;
- a naive baseline on a subset of incidents: geopy's geodesic to every positioned unit, then the
  same filters and a sort (what the walking skeleton's dispatch did), p50 / p99;
- position updates per second into the index (`update_position`, one call per fix).

Targets (reported, never asserted): recommend p99 <= 1 ms, >= 500x faster than the naive loop,
>= 100,000 position updates per second.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from geopy.distance import geodesic

from benchmarks.harness import Figure, Result
from services.dispatch import ranking
from services.dispatch.index import UnitIndex
from services.dispatch.ranking import IncidentView, Need, RankingRules, UnitInfo, recommend, sync_unit
from services.dispatch.board import ranking_rules
from services.dispatch.router import StraightLineRouter
from services.intake.categories import CATEGORIES
from spkt.settings import Settings

LAT = (-6.45, -6.05)
LON = (106.65, 107.05)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)  # 19:00 WIB: day and night shifts change
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "recommend.json"

KINDS = (("car", 0.35), ("motorcycle", 0.35), ("foot", 0.10), ("lantas", 0.08), ("reskrim", 0.07), ("inafis", 0.05))
CAPABILITIES = {
    "car": (("first_aid", 0.4),), "motorcycle": (("rapid_response", 0.7),), "foot": (),
    "lantas": (("traffic", 1.0),), "reskrim": (("investigation", 0.9), ("olah_tkp", 0.5)),
    "inafis": (("identification", 1.0),),
}
CONDITIONAL = ("patrol", "post", "escort", "traffic_control", "guarding_scene")
BUSY = ("dispatched", "en_route", "on_scene", "transporting", "break", "off_duty", "out_of_service")
DUTIES = ("pengaturan", "penjagaan", "pengawalan", "patroli")


def make_fleet(n: int, rnd: random.Random) -> tuple[dict[str, UnitInfo], UnitIndex, list[str]]:
    units: dict[str, UnitInfo] = {}
    index = UnitIndex(capacity=1024)  # grows by doubling past it
    kinds, weights = zip(*KINDS)
    now_s = NOW.timestamp()
    for i in range(n):
        kind = rnd.choices(kinds, weights)[0]
        caps = tuple(c for c, p in CAPABILITIES[kind] if rnd.random() < p)
        r = rnd.random()
        duty = None
        if r < 0.70:
            status = "available"
            if rnd.random() < 0.10:
                duty = rnd.choice(DUTIES)
        elif r < 0.80:
            status = rnd.choice(CONDITIONAL)
        else:
            status = rnd.choice(BUSY)
        s = rnd.random()
        shift = (7, 19) if s < 0.25 else (19, 7) if s < 0.5 else None
        info = UnitInfo(f"U{i:05d}", f"PATROLI-{i:05d}", kind, f"Polsek {i % 60:02d}", caps, status,
                        shift=shift, duty=duty)
        units[info.unit_id] = info
        sync_unit(index, info)
        p = rnd.random()
        if p >= 0.05:
            age = rnd.uniform(360, 3600) if p < 0.13 else rnd.uniform(0, 120)
            index.update_position(info.unit_id, rnd.uniform(*LAT), rnd.uniform(*LON), now_s - age)
    return units, index, list(units)


def make_incidents(n: int, rnd: random.Random) -> list[IncidentView]:
    out = []
    for i in range(n):
        category = rnd.choice(CATEGORIES)
        plan = tuple(Need(u.kind, u.count, tuple(u.capabilities)) for u in category.response_plan)
        out.append(IncidentView(f"INC-{i:05d}", rnd.uniform(*LAT), rnd.uniform(*LON), category.code,
                                category.priority, plan))
    return out


def naive_recommend(incident: IncidentView, units: dict[str, UnitInfo], index: UnitIndex,
                    rules: RankingRules) -> list[tuple[float, str]]:
    """geopy's geodesic to every positioned unit, then the filters and a sort."""
    now_s = NOW.timestamp()
    router = StraightLineRouter.from_rules(rules)
    hour = (NOW.hour + rules.utc_offset_h) % 24
    ranked = []
    for unit_id, info in units.items():
        pos = index.position(unit_id)
        if pos is None:
            continue
        distance = geodesic((incident.lat, incident.lon), (pos[0], pos[1])).meters
        cls = ranking.status_class(info.status, info.duty is not None)
        if cls == ranking.NOT_AVAILABLE or now_s - pos[2] > rules.position_max_age_s:
            continue
        if info.shift is not None:
            start, end = info.shift
            on = start <= hour < end if start < end else (hour >= start or hour < end)
            if not on:
                continue
        if distance > rules.radius_m:
            continue
        eta = router.travel_time_s(distance, info.kind) + (rules.conditional_pull_cost_s if cls else 0)
        ranked.append((eta, unit_id))
    ranked.sort()
    return ranked[: rules.max_candidates]


class _EagerStraightLine(StraightLineRouter):
    """Straight line, but declared not distance-only: recommend() then measures every finalist."""

    distance_only = False


def percentiles(samples_s: list[float]) -> dict[str, float]:
    a = np.array(samples_s) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max()), "mean_ms": float(a.mean()), "n": int(a.size)}


def time_recommend(incidents, units, index, rules, router=None, cpu=None) -> tuple[list[float], list]:
    """Wall-clock seconds per call (and, into `cpu`, this thread's CPU seconds: immune to other
    processes taking the core, which on a shared machine inflates the wall-clock tail)."""
    samples, results = [], []
    perf, thread = time.perf_counter, time.thread_time
    for inc in incidents:
        c0 = thread()
        t0 = perf()
        rec = recommend(inc, units, index, NOW, rules, router)
        samples.append(perf() - t0)
        if cpu is not None:
            cpu.append(thread() - c0)
        results.append(rec)
    return samples, results


def measure(*, units: int = 10_000, incidents: int = 10_000, naive: int = 20, eager: int = 1_000,
            updates: int = 1_000_000, seed: int = 1, progress=lambda _: None) -> dict:
    """Every figure of this benchmark, measured in one run (see the module's docstring)."""
    args = argparse.Namespace(units=units, incidents=incidents, naive=naive, eager=eager, updates=updates, seed=seed)
    rnd = random.Random(args.seed)
    # The rules the dispatch worker runs with (SPKT_RECOMMEND_CANDIDATES etc.), not the defaults.
    rules = ranking_rules(Settings())
    units, index, ids = make_fleet(args.units, rnd)
    incidents = make_incidents(args.incidents, rnd)

    # Warm up (imports, numpy dispatch, geographiclib caches), then measure.
    time_recommend(incidents[:200], units, index, rules)
    progress(f"recommend: {len(incidents)} incidents over {len(units)} units")
    cpu_samples: list[float] = []
    samples, results = time_recommend(incidents, units, index, rules, cpu=cpu_samples)
    fast = percentiles(samples)
    fast_cpu = percentiles(cpu_samples)

    # How many geodesic distances the lazy bound needed (a separate, untimed pass).
    calls = 0
    real = ranking.geodesic_m

    def counting(*a):
        nonlocal calls
        calls += 1
        return real(*a)

    ranking.geodesic_m = counting
    try:
        sample = incidents[: min(1000, len(incidents))]
        time_recommend(sample, units, index, rules)
    finally:
        ranking.geodesic_m = real
    geodesics_per_call = calls / max(1, len(sample))
    t0 = time.perf_counter()
    for inc in incidents[:2000]:
        geodesic((inc.lat, inc.lon), (-6.2, 106.8)).meters
    geo_us = (time.perf_counter() - t0) / min(2000, len(incidents)) * 1e6
    t0 = time.perf_counter()  # the same distance as the ranking computes it (geopy's Inverse, called directly)
    for inc in incidents[:2000]:
        ranking.geodesic_m(inc.lat, inc.lon, -6.2, 106.8)
    inverse_us = (time.perf_counter() - t0) / min(2000, len(incidents)) * 1e6

    eager_incidents = incidents[: args.eager]
    eager_samples, eager_results = time_recommend(eager_incidents, units, index, rules, _EagerStraightLine.from_rules(rules))
    eager = percentiles(eager_samples)
    same_as_eager = sum(
        [c.unit_id for c in a.candidates] == [c.unit_id for c in b.candidates]
        for a, b in zip(results, eager_results)
    )

    progress(f"recommend: the naive geopy loop, {args.naive} incidents (about 1.5 s each)")
    naive_samples, agree = [], 0
    for inc, rec in zip(incidents[: args.naive], results):
        t0 = time.perf_counter()
        top = naive_recommend(inc, units, index, rules)
        naive_samples.append(time.perf_counter() - t0)
        agree += top[0][1] == rec.candidates[0].unit_id if top and rec.candidates else (not top and not rec.candidates)
    naive = percentiles(naive_samples)

    # Position updates: one call per fix, in place.
    n_up = args.updates
    nrng = np.random.default_rng(args.seed)
    up_ids = [ids[i] for i in nrng.integers(0, len(ids), n_up).tolist()]
    up_lat = nrng.uniform(*LAT, n_up).tolist()
    up_lon = nrng.uniform(*LON, n_up).tolist()
    t_base = NOW.timestamp()
    up_at = (t_base + np.arange(n_up) * 1e-3).tolist()
    lat_array = index.lat
    update = index.update_position
    t0 = time.perf_counter()
    for u, la, lo, at in zip(up_ids, up_lat, up_lon, up_at):
        update(u, la, lo, at)
    up_elapsed = time.perf_counter() - t0
    updates_per_s = n_up / up_elapsed

    report = {
        "machine": {
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__,
        },
        "params": {"units": args.units, "incidents": args.incidents, "naive_incidents": len(naive_samples),
                   "eager_incidents": len(eager_samples), "updates": n_up, "seed": args.seed,
                   "rules": {"max_candidates": rules.max_candidates, "finalists": rules.finalists,
                             "radius_m": rules.radius_m, "excluded_listed": rules.excluded_listed}},
        "recommend": fast,
        "recommend_cpu": fast_cpu,
        "recommend_eager_geodesic": eager,
        "naive": naive,
        "speedup_p50": naive["p50_ms"] / fast["p50_ms"],
        "speedup_p99": naive["p99_ms"] / fast["p99_ms"],
        "geodesic_calls_per_recommend": geodesics_per_call,
        "geopy_geodesic_one_pair_us": geo_us,
        "ranking_geodesic_one_pair_us": inverse_us,
        "same_candidates_as_eager": f"{same_as_eager}/{len(eager_results)}",
        "naive_fastest_agrees": f"{agree}/{len(naive_samples)}",
        "updates_per_s": updates_per_s,
        "index_arrays_reallocated_during_updates": index.lat is not lat_array,
        "mean_candidates": float(np.mean([len(r.candidates) for r in results])),
        "with_shortfall": sum(bool(r.shortfalls) for r in results),
        "targets": {"p99_ms": 1.0, "speedup": 500, "updates_per_s": 100_000},
    }

    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=20, help="incidents for the naive baseline (slow)")
    parser.add_argument("--eager", type=int, default=1_000, help="incidents for the eager-geodesic variant")
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    report = measure(units=args.units, incidents=args.incidents, naive=args.naive, eager=args.eager,
                     updates=args.updates, seed=args.seed)
    rules = report["params"]["rules"]
    fast, fast_cpu, eager, naive = (report[k] for k in ("recommend", "recommend_cpu", "recommend_eager_geodesic", "naive"))
    geo_us, inverse_us = report["geopy_geodesic_one_pair_us"], report["ranking_geodesic_one_pair_us"]
    geodesics_per_call, updates_per_s = report["geodesic_calls_per_recommend"], report["updates_per_s"]
    print(f"machine: {report['machine']['platform']} | {report['machine']['processor']} | "
          f"{report['machine']['cpu_count']} CPUs | Python {report['machine']['python']} | numpy {np.__version__}")
    print(f"fleet: {args.units} units, {args.incidents} incidents, seed {args.seed}")
    print(f"{'':34} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'n':>7}")
    for name, r in (("recommend()", fast), ("recommend(), thread CPU time", fast_cpu),
                    ("recommend(), geodesic per finalist", eager), ("naive geodesic loop", naive)):
        print(f"{name:34} {r['p50_ms']:9.3f} {r['p99_ms']:9.3f} {r['max_ms']:9.3f} {r['n']:7d}")
    print(f"speed-up vs naive: {report['speedup_p50']:.0f}x at p50, {report['speedup_p99']:.0f}x at p99 (target >= 500x)")
    print(f"geopy geodesic, one pair: {geo_us:.0f} us as geodesic(a, b).meters, {inverse_us:.0f} us as the ranking calls it")
    print(f"geodesic distances per recommend: {geodesics_per_call:.1f} (finalists: up to {rules['finalists']} per plan line), "
          f"about {geodesics_per_call * inverse_us / 1e3:.2f} ms of each recommendation")
    print(f"same candidates as the eager variant: {report['same_candidates_as_eager']}; "
          f"naive's fastest is ours: {report['naive_fastest_agrees']}")
    print(f"position updates: {updates_per_s:,.0f}/s (target >= 100,000/s), arrays reallocated: "
          f"{report['index_arrays_reallocated_during_updates']}")
    print(f"candidates per incident: {report['mean_candidates']:.2f}; incidents with a shortfall: {report['with_shortfall']}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"written: {args.json}")
    return report


if __name__ == "__main__":
    main()


# --- `spkt bench recommend` ------------------------------------------------------------------------
NAME = "recommend"
TITLE = "Unit recommendation: 10,000 units, 10,000 incidents, against the naive geopy loop"


def run(work: Path, quick: bool) -> Result:
    sizes = dict(units=1_000, incidents=300, naive=3, eager=50, updates=20_000) if quick else {}
    report = measure(**sizes, progress=lambda line: print(line, file=sys.stderr, flush=True))
    fast, naive = report["recommend"], report["naive"]
    figures = [
        Figure("recommend, p50", fast["p50_ms"], "ms"),
        Figure("recommend, p99", fast["p99_ms"], "ms", target=1.0),
        Figure("naive geopy loop (baseline), p99", naive["p99_ms"], "ms"),
        Figure("speed-up over the naive loop, p99", report["speedup_p99"], "x", target=500, better="higher"),
        Figure("position updates into the index", report["updates_per_s"], "/s"),
    ]
    limits = (f"About {report['geodesic_calls_per_recommend']:.1f} geopy geodesic distances per recommendation "
              f"(the finalists' exact distances, {report['ranking_geodesic_one_pair_us']:.0f} µs each) and a few "
              f"vectorised passes over all {report['params']['units']:,} units' arrays; plans of three lines "
              "(homicide: patrol, Reskrim, Inafis) need three rounds of finalists and make the tail.")
    return Result(figures, details=report, limits=limits)
