"""Which units to send: the pure ranking rules of the dispatch service.

Pure: no Kafka, no faust, no HTTP, no SQL (stdlib, numpy, geopy, and the index and router here).

The board keeps a `UnitIndex` (positions and dispatch-relevant state as numpy arrays) and a
mapping unit_id → `UnitInfo` (the register as the board knows it); `sync_unit` copies the state
of a UnitInfo into the index and must follow every change of one. `recommend` reads the state of
ALL units from the index arrays in one vectorised pass and the UnitInfo only for what it prints.

How `recommend` decides, in order (the first rule that applies is the unit's exclusion reason):

1. excluded for this incident (`IncidentView.exclude_units`);
2. not available (dispatched, en route, on scene, transporting, break, off duty, out of service);
3. no position, or a position older than `position_max_age_s`;
4. off shift (local time, `utc_offset_h`);
5. beyond `radius_m` (approximate distance);
6. when the response plan takes every candidate slot: a unit no plan line can use
   (wrong kind, or the right kind without the capability);
7. otherwise eligible; ETA = straight-line distance × circuity ÷ speed(kind) (or the router's
   road time), plus `conditional_pull_cost_s` for a conditionally available unit (on patrol, at a
   post, escorting, controlling traffic, guarding a scene, or available but on a turjawali duty).

The `finalists` fastest by approximate ETA (per plan line, and overall when slots are left) are
ranked exactly: geodesic distance (geopy's geodesic, WGS84) and the router. With the default
straight-line router the geodesic is computed lazily: only for the units that are chosen or whose
ETA could still beat a chosen one (the approximation's error is bounded, see index.py), which
gives the same ranking as computing it for all finalists at a fraction of the cost.

Then the plan is met: for each line, the `count` fastest units of its kind with its capabilities;
the remaining slots (up to `max_candidates` in all, at least the plan's total) go to the fastest
other eligible units; candidates are listed fastest first. A plan line nobody can fill becomes a
shortfall. `excluded` lists the units NEAREST to the incident that are not candidates (at most
`excluded_listed`, with a reason in Bahasa Indonesia); `excluded_counts` counts every unit by
reason code (only codes that occur).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
from geographiclib.geodesic import Geodesic as _GeographiclibGeodesic
from geopy.distance import geodesic as _geopy_geodesic

from .index import (
    ALWAYS_ON_DUTY, AVAILABLE, CONDITIONAL, NOT_AVAILABLE, UnitIndex, refined_error_bound, status_class,
)
from .router import DEFAULT_SPEED_KMH, DEFAULT_UNKNOWN_SPEED_KMH, Router, StraightLineRouter

# geopy's geodesic (WGS84). geodesic(a, b).meters parses both points, builds a Distance and calls
# its geographiclib Geodesic's Inverse(..., DISTANCE); we call that same Inverse of the same
# object directly (identical metres, about 40 % less time per pair, see the unit tests).
_GEODESIC = _geopy_geodesic(ellipsoid="WGS-84")
_GEODESIC.measure((0.0, 0.0), (0.0, 0.0))  # makes geopy build its geographiclib Geodesic (.geod)
_INVERSE = _GEODESIC.geod.Inverse
_DISTANCE = _GeographiclibGeodesic.DISTANCE

STATUS_WORDS = {
    "available": "tersedia", "dispatched": "sedang ditugaskan", "en_route": "dalam perjalanan",
    "on_scene": "di TKP", "transporting": "sedang mengantar", "patrol": "patroli", "post": "di pos",
    "escort": "pengawalan", "traffic_control": "pengaturan lalu lintas", "guarding_scene": "menjaga TKP",
    "break": "istirahat", "off_duty": "lepas dinas", "out_of_service": "tidak beroperasi",
}
DUTY_WORDS = {
    "pengaturan": "pengaturan (turjawali)", "penjagaan": "penjagaan (turjawali)",
    "pengawalan": "pengawalan (turjawali)", "patroli": "patroli (turjawali)",
}
KIND_WORDS = {
    "car": "mobil patroli", "motorcycle": "motor", "foot": "jalan kaki", "inafis": "inafis",
    "reskrim": "reskrim", "lantas": "lantas",
}

# Reason codes of excluded_counts, in the order the rules apply.
EXCLUDED_FOR_INCIDENT = "excluded_for_incident"
BUSY = "not_available"
NO_POSITION = "no_position"
STALE = "stale_position"
OFF_SHIFT = "off_shift"
BEYOND_RADIUS = "beyond_radius"
WRONG_KIND = "wrong_kind"
LACKS_CAPABILITY = "lacks_capability"
SLOWER = "slower_unit_available"
NO_INCIDENT_LOCATION = "no_incident_location"


@dataclass(frozen=True)
class Need:
    """One line of a category's response plan (cf. services.intake.categories.UnitNeed)."""

    kind: str  # "car" | "motorcycle" | "foot" | "inafis" | "reskrim" | "lantas"
    count: int = 1
    capabilities: tuple[str, ...] = ()

    def label(self) -> str:
        return f"{self.kind} ({', '.join(self.capabilities)})" if self.capabilities else self.kind


@dataclass(frozen=True)
class IncidentView:
    incident_id: str
    lat: float | None
    lon: float | None
    category: str
    priority: str  # P1..P4
    plan: tuple[Need, ...] = ()
    exclude_units: frozenset[str] = frozenset()  # e.g. units already assigned to it, the unit that pressed panic


@dataclass
class UnitInfo:
    """The register and status as the board knows it (positions live in the index)."""

    unit_id: str
    callsign: str
    kind: str
    station: str
    capabilities: tuple[str, ...] = ()
    status: str = "available"  # secondary status (schemas.events.UnitStatus)
    incident_id: str | None = None
    shift: tuple[int, int] | None = None  # (start hour, end hour) local; end < start: night shift; None: always
    duty: str | None = None  # turjawali duty when on one: pengaturan | penjagaan | pengawalan | patroli


@dataclass(frozen=True)
class RankingRules:
    max_candidates: int = 5
    position_max_age_s: float = 300
    radius_m: float = 15_000
    circuity: float = 1.35
    speed_kmh: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEED_KMH))
    conditional_pull_cost_s: float = 240  # added to the ETA of a conditionally available unit
    finalists: int = 32  # how many fastest (approximate) go to exact geodesic + router, per plan line
    utc_offset_h: int = 7  # WIB, for shifts
    excluded_listed: int = 50  # exclusions listed with reasons: the units nearest to the incident
    default_speed_kmh: float = DEFAULT_UNKNOWN_SPEED_KMH  # a kind missing from speed_kmh


@dataclass
class Ranked:
    unit_id: str
    callsign: str
    kind: str
    distance_m: float  # geodesic (WGS84, geopy)
    eta_s: float
    reasons: list[str]
    warnings: list[str]
    conditional: bool
    meets: str | None  # the plan line it fills, e.g. "inafis (identification)" or "car"; None: extra


@dataclass
class Recommendation:
    candidates: list[Ranked]
    excluded: list[tuple[str, str]]  # (unit_id, reason), the nearest non-candidates
    excluded_counts: dict[str, int]  # reason code -> how many units, over ALL units
    shortfalls: list[str]  # plan lines nobody can fill, in Bahasa Indonesia


def sync_unit(index: UnitIndex, info: UnitInfo) -> int:
    """Copy a UnitInfo's kind, capabilities, shift, status and duty into the index; its row."""
    row = index.upsert_unit(info.unit_id, info.kind, info.capabilities, info.shift)
    index.set_duty(info.unit_id, info.duty is not None)
    index.set_status(info.unit_id, info.status)
    return row


def geodesic_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """geopy's geodesic distance (WGS84) in metres."""
    return _INVERSE(lat1, lon1, lat2, lon2, _DISTANCE)["s12"] * 1000.0  # geopy works in km


# --- wording ---------------------------------------------------------------------------------

def format_distance(metres: float) -> str:
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km".replace(".", ",")


def format_km(metres: float) -> str:
    return f"{metres / 1000:g} km".replace(".", ",")


def format_minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} menit"


@lru_cache(maxsize=256)
def shift_bounds(mask: int) -> tuple[int, int] | None:
    """(start, end) hours of a shift mask (index.shift_mask); None for always on duty."""
    if mask == ALWAYS_ON_DUTY or mask == 0:
        return None
    for h in range(24):
        if mask >> h & 1 and not mask >> ((h - 1) % 24) & 1:
            end = h
            while mask >> (end % 24) & 1:
                end += 1
            return h, end % 24
    return None


def _local_hour(now: datetime, utc_offset_h: int) -> int:
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return int((now.timestamp() // 3600 + utc_offset_h) % 24)


def _conditional_word(status: str, info: UnitInfo | None) -> str:
    if status != "available":
        return STATUS_WORDS.get(status, status)
    if info is not None and info.duty:
        return DUTY_WORDS.get(info.duty, info.duty)
    return "tugas turjawali"


def _shortfall(need: Need, found: int, radius_m: float) -> str:
    what = f"butuh {need.count} unit {need.label()}"
    if found == 0:
        return f"{what}: tidak ada yang tersedia dalam radius {format_km(radius_m)}"
    return f"{what}: hanya {found} tersedia dalam radius {format_km(radius_m)}"


# --- the ranking -----------------------------------------------------------------------------

class _Plan:
    """The response plan resolved against the index's codes (cached per index and plan)."""

    def __init__(self, plan: tuple[Need, ...], index: UnitIndex) -> None:
        self.needs = plan
        self.kind_codes: list[int | None] = [index.kind_code_if_known(n.kind) for n in plan]
        self.cap_bits: list[int | None] = [index.capability_bits(n.capabilities) for n in plan]
        self.total = sum(max(0, n.count) for n in plan)
        self.labels = [n.label() for n in plan]
        self.known_kinds = [c for c in self.kind_codes if c is not None]
        self._masks: tuple | None = None
        self.finalist_r2 = 4e6  # see _finalists: the squared distance its last search needed
        self.texts: tuple | None = None  # see _exclusion_texts

    @staticmethod
    def of(plan: tuple[Need, ...], index: UnitIndex) -> _Plan:
        key = ("plan", plan)
        resolved = index.cache.get(key)
        if resolved is None:
            if len(index.cache) > 1024:
                index.cache.clear()
            resolved = index.cache[key] = _Plan(plan, index)
        return resolved

    def masks(self, index: UnitIndex) -> tuple[list[np.ndarray | None], np.ndarray, np.ndarray, np.ndarray]:
        """Bool over the index's rows [:n_rows]: per plan line the rows of its kind with its
        capabilities (None for a line nobody can fill); any line's; the right kind without the
        capability; a kind no line wants. Cached until the index's registrations change."""
        if self._masks is None or self._masks[0] != index.version:
            n = index.n_rows
            kinds, caps = index.kind[:n], index.caps[:n]
            lines = [self.pool_mask(i, kinds, caps) if self.fillable(i) else None for i in range(len(self.needs))]
            usable = np.zeros(n, dtype=bool)
            for m in lines:
                if m is not None:
                    usable |= m
            wanted_kind = np.zeros(len(index.kind_names) + 1, dtype=bool)  # a lookup: np.isin is slow
            wanted_kind[self.known_kinds] = True
            right_kind = wanted_kind[kinds]  # kind -1 (a row never used) reads the spare last entry
            self._masks = (index.version, lines, usable, right_kind & ~usable, ~right_kind)
        return self._masks[1:]

    def fillable(self, i: int) -> bool:
        return self.kind_codes[i] is not None and self.cap_bits[i] is not None and self.needs[i].count > 0

    def pool_mask(self, i: int, kinds: np.ndarray, caps: np.ndarray) -> np.ndarray:
        code, bits = self.kind_codes[i], self.cap_bits[i]
        if code is None or bits is None or self.needs[i].count <= 0:
            return np.zeros(kinds.shape, dtype=bool)
        mask = kinds == code
        if bits:
            b = np.uint64(bits)
            mask &= (caps & b) == b
        return mask


def _speed_table(index: UnitIndex, router: Router) -> np.ndarray:
    """Seconds per straight-line metre, by kind code (cached per index and router)."""
    key = ("spm", id(router))
    cached = index.cache.get(key)
    if cached is None or cached[0] is not router:
        table = np.array([router.seconds_per_metre(k) for k in index.kind_names], dtype=np.float64)
        cached = index.cache[key] = (router, table)
    return cached[1]


def _row_tables(index: UnitIndex, router: Router, pull_cost_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row [:n_rows]: seconds per straight-line metre, and the pull cost (conditionally
    available units); cached until the index's registrations or statuses change."""
    key = ("rows", id(router), pull_cost_s)
    cached = index.cache.get(key)
    if cached is None or cached[0] is not router or cached[1] != index.version:
        n = index.n_rows
        spm_rows = _speed_table(index, router)[index.kind[:n]]
        pull_rows = (index.klass[:n] == CONDITIONAL) * pull_cost_s
        cached = index.cache[key] = (router, index.version, spm_rows, pull_rows)
    return cached[2], cached[3]


def _finalists(d2: np.ndarray, eligible: np.ndarray, pools: list[tuple[np.ndarray | None, float]],
               spm_rows: np.ndarray, pull_rows: np.ndarray, k: int, plan: _Plan, radius2: float) -> np.ndarray:
    """Rows of the k fastest eligible units (approximate ETA) of each pool, ascending, once each.

    `pools`: (the rows that can fill a plan line, or None for every eligible row; the fewest
    seconds per metre any of them can have). Sorting thousands of rows costs more than the rest
    of a recommendation, so only the eligible rows within a distance R are looked at (R
    remembered per plan, widened until it holds). That is exact: a unit beyond R needs at least
    R × its pool's fewest seconds per metre, so when the k-th fastest within R is no slower than
    that, nobody beyond R can take its place."""
    r2 = plan.finalist_r2
    while True:
        bounded = r2 < radius2
        if bounded:
            near = d2 <= r2
            near &= eligible
            sub = near.nonzero()[0]
        else:
            sub = eligible.nonzero()[0]
        eta = np.sqrt(d2[sub])
        eta *= spm_rows[sub]
        eta += pull_rows[sub]
        parts: list[np.ndarray] = []
        reach2, short = 0.0, False
        for pool, fastest_spm in pools:
            at = np.arange(sub.size) if pool is None else pool[sub].nonzero()[0]
            if at.size > k:
                at = at[eta[at].argpartition(k - 1)[:k]]
            elif at.size < k:
                short = True
                if bounded:
                    break
            if at.size:
                reach = float(eta[at].max()) / fastest_spm if fastest_spm > 0 else math.inf
                if bounded and reach * reach > r2:
                    break
                reach2 = max(reach2, reach * reach)
                parts.append(at)
        else:
            # Remember a little more than this plan needed: the next incident of the plan then
            # seldom widens, nor looks at many more rows than it needs.
            plan.finalist_r2 = radius2 if short else max(2.25 * reach2, 1e4)
            if not parts:
                return sub[:0]
            rows = np.concatenate(parts)
            rows.sort()
            if rows.size > 1:
                rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
            return sub[rows]
        r2 *= 4.0


_ROUTERS: dict[int, tuple[RankingRules, StraightLineRouter]] = {}


def _default_router(rules: RankingRules) -> StraightLineRouter:
    cached = _ROUTERS.get(id(rules))
    if cached is None or cached[0] is not rules:
        if len(_ROUTERS) > 64:
            _ROUTERS.clear()
        cached = _ROUTERS[id(rules)] = (rules, StraightLineRouter.from_rules(rules))
    return cached[1]


def _select(order: list[int], pools: list, plan: _Plan, slots: int) -> list[tuple[int, int | None]]:
    """Greedy: each plan line takes its fastest; the rest of the slots the fastest others.

    `order`: finalist positions, fastest first; `pools[p][i]`: finalist p can fill plan line i.
    Returns [(finalist, plan line, or None for an extra)].
    """
    chosen: list[tuple[int, int | None]] = []
    used: set[int] = set()
    for i, need in enumerate(plan.needs):
        want = need.count
        if want <= 0:
            continue
        for p in order:
            if pools[p][i] and p not in used:
                used.add(p)
                chosen.append((p, i))
                want -= 1
                if want == 0:
                    break
    free = slots - len(chosen)
    if free > 0:
        for p in order:
            if p not in used:
                used.add(p)
                chosen.append((p, None))
                free -= 1
                if free == 0:
                    break
    return chosen


def _thresholds(chosen: list[tuple[int, int | None]], etas: np.ndarray, pools: np.ndarray, plan: _Plan,
                slots: int) -> np.ndarray:
    """Per finalist, the ETA it must beat to change the selection: the slowest unit chosen for a
    plan line it could fill (when that line is full) or for an extra slot (when they are full)."""
    thr = np.full(etas.shape, -np.inf)
    by_line: dict[int | None, float] = {}
    counts: dict[int | None, int] = {}
    for p, line in chosen:
        e = float(etas[p])
        if e > by_line.get(line, -math.inf):
            by_line[line] = e
        counts[line] = counts.get(line, 0) + 1
    extras = slots - sum(c for line, c in counts.items() if line is not None)
    if extras > 0 and counts.get(None, 0) == extras:
        thr[:] = by_line[None]
    for i, need in enumerate(plan.needs):
        if need.count > 0 and counts.get(i, 0) == need.count:
            np.maximum(thr, np.where(pools[:, i], by_line[i], -np.inf), out=thr)
    return thr


def recommend(incident: IncidentView, units: Mapping[str, UnitInfo], index: UnitIndex, now: datetime,
              rules: RankingRules = RankingRules(), router: Router | None = None) -> Recommendation:
    """The units to propose for an incident, fastest first, with reasons; why the nearest others not."""
    if router is None:
        router = _default_router(rules)
    plan = _Plan.of(incident.plan, index)
    n = index.n_rows

    if incident.lat is None or incident.lon is None:
        shortfalls = [f"butuh {need.count} unit {need.label()}: lokasi kejadian belum diketahui"
                      for need in plan.needs if need.count > 0]
        return Recommendation([], [], {NO_INCIDENT_LOCATION: len(index)} if len(index) else {}, shortfalls)

    lat0, lon0 = float(incident.lat), float(incident.lon)
    now_s = now.timestamp()
    hour = _local_hour(now, rules.utc_offset_h)
    counts: dict[str, int] = {}

    # 1-5: one vectorised pass over every row; `ok` narrows rule by rule, each rule counting
    # the units it removes. Status and shift masks come cached from the index.
    d2 = index.approx_sq_distances_m(lat0, lon0)
    ready, on_shift = index.ready_masks(hour)
    remaining = len(index)
    excluded_rows = [r for u in incident.exclude_units if (r := index.row(u)) is not None]
    if excluded_rows:
        ok = ready.copy()
        ok[excluded_rows] = False
        counts[EXCLUDED_FOR_INCIDENT] = len(excluded_rows)
        remaining -= len(excluded_rows)
        left = int(np.count_nonzero(ok))
    else:
        ok = ready  # read only: the next step makes a new array
        left = index.ready_count(hour)
    counts[BUSY], remaining = remaining - left, left
    at = index.at[:n]
    no_position = np.isnan(at)
    no_position &= ok
    counts[NO_POSITION] = int(np.count_nonzero(no_position))
    ok = ok & (at >= now_s - rules.position_max_age_s)  # NaN (no fix) is not >=
    left = int(np.count_nonzero(ok))
    counts[STALE], remaining = remaining - left - counts[NO_POSITION], left
    ok &= on_shift
    left = int(np.count_nonzero(ok))
    counts[OFF_SHIFT], remaining = remaining - left, left
    r2 = rules.radius_m * rules.radius_m
    ok &= d2 <= r2
    left = int(np.count_nonzero(ok))
    counts[BEYOND_RADIUS], remaining = remaining - left, left
    slots = max(rules.max_candidates, plan.total)
    free_slots = slots - plan.total
    line_masks, usable, lacks, wrong_kind = plan.masks(index)
    if plan.needs and free_slots <= 0:
        # 6: every slot belongs to a plan line; a unit no line can use is not a candidate.
        counts[LACKS_CAPABILITY] = int(np.count_nonzero(ok & lacks))
        counts[WRONG_KIND] = int(np.count_nonzero(ok & wrong_kind))
        remaining -= counts[LACKS_CAPABILITY] + counts[WRONG_KIND]
        ok &= usable
    eligible = ok  # bool over every row

    # 7: approximate ETA; finalists, the k fastest per plan line and overall.
    spm_rows, pull_rows = _row_tables(index, router, rules.conditional_pull_cost_s)
    spm_kinds = _speed_table(index, router)
    pools = [(m, float(spm_kinds[plan.kind_codes[i]])) for i, m in enumerate(line_masks) if m is not None]
    if free_slots > 0 or not plan.needs:
        pools.append((None, float(spm_kinds.min())))
    frows = _finalists(d2, eligible, pools, spm_rows, pull_rows, rules.finalists, plan, r2)
    n_f = frows.size

    f_lat = index.lat[frows].tolist()
    f_lon = index.lon[frows].tolist()
    f_kinds = index.kind[frows]
    f_cond = index.klass[frows] == CONDITIONAL
    # f_pools[p, i]: finalist p can fill plan line i
    f_pools = np.zeros((n_f, len(plan.needs)), dtype=bool)
    for i, m in enumerate(line_masks):
        if m is not None:
            f_pools[:, i] = m[frows]
    pools_list = f_pools.tolist()
    pull = f_cond * rules.conditional_pull_cost_s
    dist = index.refine_distances_m(lat0, lon0, frows)  # becomes exact (geodesic) where is_exact
    is_exact = np.zeros(n_f, dtype=bool)

    def measure(todo: list[int]) -> None:
        for p in todo:
            dist[p] = geodesic_m(lat0, lon0, f_lat[p], f_lon[p])
        is_exact[todo] = True

    if router.distance_only:
        # Exact distances only where they can change the outcome: the chosen units, and any unit
        # whose lowest possible ETA (approximation minus its error bound) could beat a chosen one
        # it competes with. Same outcome as measuring every finalist.
        spm = spm_rows[frows]
        low = dist * (1 - 2 * refined_error_bound(dist)) * spm + pull
        while True:
            etas = dist * spm + pull
            order = etas.argsort(kind="stable").tolist()
            chosen = _select(order, pools_list, plan, slots)
            todo = [p for p, _ in chosen if not is_exact[p]]
            if not todo and chosen:
                thr = _thresholds(chosen, etas, f_pools, plan, slots)
                todo = np.flatnonzero(~is_exact & (low <= thr)).tolist()
            if not todo:
                break
            measure(todo)
    else:
        measure(list(range(n_f)))
        f_kind_names = [index.kind_name(c) for c in f_kinds.tolist()]
        travel = router.travel_times_s((lat0, lon0), list(zip(f_lat, f_lon)), f_kind_names, dist.tolist())
        etas = np.asarray(travel, dtype=np.float64) + pull
        order = etas.argsort(kind="stable").tolist()
        chosen = _select(order, pools_list, plan, slots)

    # Candidates, fastest first.
    rank_of = {p: r for r, p in enumerate(order)}
    chosen.sort(key=lambda pc: rank_of[pc[0]])
    filled = [0] * len(plan.needs)
    candidates: list[Ranked] = []
    candidate_rows: list[int] = []
    ids = index._ids
    pull_text = format_minutes(rules.conditional_pull_cost_s)
    for rank, (p, line) in enumerate(chosen):
        row = int(frows[p])
        candidate_rows.append(row)
        unit_id = ids[row]
        info = units.get(unit_id)
        kind = index.kind_name(int(f_kinds[p]))
        distance, eta_s = float(dist[p]), float(etas[p])
        conditional = bool(f_cond[p])
        reasons = ["tercepat tiba"] if rank == 0 else []
        warnings: list[str] = []
        if conditional:
            word = _conditional_word(index.status_name(int(index.status[row])), info)
            reasons.append(f"tersedia bersyarat: sedang {word}")
            warnings.append(f"sedang {word} — penarikan perlu dicatat")
            eta_text = f"perkiraan tiba {format_minutes(eta_s)} ({kind}, termasuk {pull_text} penarikan)"
        else:
            reasons.append("tersedia")
            eta_text = f"perkiraan tiba {format_minutes(eta_s)} ({kind})"
        reasons.append(f"jarak {format_distance(distance)}")
        reasons.append(eta_text)
        meets = None
        if line is not None:
            filled[line] += 1
            meets = plan.labels[line]
            reasons.append(f"memenuhi kebutuhan: {meets}")
        candidates.append(Ranked(
            unit_id=unit_id, callsign=info.callsign if info else unit_id, kind=kind,
            distance_m=round(distance, 1), eta_s=round(eta_s, 1), reasons=reasons, warnings=warnings,
            conditional=conditional, meets=meets,
        ))

    shortfalls = [_shortfall(need, filled[i], rules.radius_m)
                  for i, need in enumerate(plan.needs) if filled[i] < need.count]
    counts[SLOWER] = remaining - len(candidates)

    excluded = _nearest_exclusions(index, plan, rules, d2, eligible, spm_rows, pull_rows, candidate_rows,
                                   excluded_rows, now_s, hour, r2)
    return Recommendation(candidates, excluded, {k: v for k, v in counts.items() if v}, shortfalls)


def _nearest_exclusions(index: UnitIndex, plan: _Plan, rules: RankingRules, d2: np.ndarray,
                        eligible: np.ndarray, spm_rows: np.ndarray, pull_rows: np.ndarray,
                        candidate_rows: list[int], excluded_rows: list[int], now_s: float, hour: int,
                        r2: float) -> list[tuple[str, str]]:
    """The non-candidates nearest to the incident (approximate distance), each with its reason.

    The reason is the first rule that excludes the unit, in recommend()'s order; computed for
    these few rows only (the counts over all units come from recommend's vectorised pass)."""
    k = rules.excluded_listed
    if k <= 0:
        return []
    skip = set(candidate_rows)
    near_list = [r for r in index.nearest_rows(d2, k + len(skip)).tolist() if r not in skip][:k]
    if not near_list:
        return []
    near = np.array(near_list, dtype=np.intp)
    # Per row, the first rule that excludes it, in recommend()'s order. Plain Python over a
    # few rows: a numpy call on 20 elements costs more than the comparison it makes. The
    # texts repeat (the same minutes, shifts, statuses), so each is formatted once.
    d2n = d2[near]
    eta = np.sqrt(d2n)
    eta *= spm_rows[near]
    eta += pull_rows[near]
    texts = _exclusion_texts(index, plan)
    gone = set(excluded_rows)
    bit = 1 << hour
    max_age = rules.position_max_age_s
    ids = index._ids
    out: list[tuple[str, str]] = []
    append = out.append
    for row, is_eligible, minutes, klass, status, at, shift, dd in zip(
            near_list, eligible[near].tolist(), np.rint(eta / 60).tolist(), index.klass[near].tolist(),
            index.status[near].tolist(), index.at[near].tolist(), index.shift[near].tolist(), d2n.tolist()):
        if row in gone:
            reason = "dikecualikan untuk kejadian ini"
        elif klass == NOT_AVAILABLE:
            reason = texts.busy[status]
        elif not now_s - at <= max_age:
            reason = texts.stale(round((now_s - at) / 60))
        elif not shift & bit:
            reason = texts.off_shift(shift)
        elif dd > r2:
            reason = f"di luar radius {format_km(rules.radius_m)} ({format_distance(math.sqrt(dd))})"
        elif is_eligible:
            reason = texts.slower(max(1, int(minutes)))
        else:  # every plan line is full and this unit fits none
            reason = texts.unneeded(int(index.kind[row]))
        append((ids[row], reason))
    return out


class _ExclusionTexts:
    """The reasons of `_nearest_exclusions`, each formatted once (cached per index, plan and rules)."""

    def __init__(self, index: UnitIndex, plan: _Plan) -> None:
        self.busy = [f"tidak tersedia: {STATUS_WORDS.get(s, s)}"
                     for s in (index.status_name(c) for c in range(len(index._statuses)))]
        self._index, self._plan = index, plan
        self._stale: dict[int, str] = {}
        self._off_shift: dict[int, str] = {}
        self._slower: dict[int, str] = {}
        self._unneeded: dict[int, str] = {}

    @staticmethod
    def _once(texts: dict, key: int, make) -> str:
        text = texts.get(key)
        if text is None:
            text = texts[key] = make(key)
        return text

    def stale(self, minutes: int) -> str:
        return self._once(self._stale, minutes, lambda m: f"posisi kedaluwarsa ({m:.0f} menit)")

    def off_shift(self, mask: int) -> str:
        return self._once(self._off_shift, mask, _off_shift_text)

    def slower(self, minutes: int) -> str:
        return self._once(self._slower, minutes, lambda m: f"ada unit lebih cepat (perkiraan tiba {m} menit)")

    def unneeded(self, kind: int) -> str:
        return self._once(self._unneeded, kind, self._unneeded_text)

    def _unneeded_text(self, kind: int) -> str:
        needed = ", ".join(self._plan.labels)
        if kind in self._plan.known_kinds:
            return f"tidak memiliki kemampuan yang dibutuhkan (butuh: {needed})"
        return f"jenis unit tidak dibutuhkan ({self._index.kind_name(kind)}; butuh: {needed})"


def _off_shift_text(mask: int) -> str:
    bounds = shift_bounds(mask)
    return f"di luar jam dinas ({bounds[0]:02d}–{bounds[1]:02d})" if bounds else "di luar jam dinas"


def _exclusion_texts(index: UnitIndex, plan: _Plan) -> _ExclusionTexts:
    key = ("texts", len(index._statuses), len(index.kind_names))
    cached = plan.texts
    if cached is None or cached[0] != key:
        cached = plan.texts = (key, _ExclusionTexts(index, plan))
    return cached[1]


__all__ = [
    "AVAILABLE", "CONDITIONAL", "NOT_AVAILABLE", "IncidentView", "Need", "Ranked", "RankingRules",
    "Recommendation", "UnitInfo", "format_distance", "geodesic_m", "recommend", "status_class", "sync_unit",
]
