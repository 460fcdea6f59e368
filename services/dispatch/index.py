"""Where every unit is, in numpy arrays: one row per unit, queried all at once.

Pure: no Kafka, no faust, no HTTP, no SQL. The dispatch board keeps one `UnitIndex` in step with
its register (see `services.dispatch.ranking.sync_unit`) and asks it two things:

- `update_position`: a GPS fix, O(1), in place (a dict lookup and a few scalar stores; the arrays
  are reallocated only when the row count passes the capacity, which then doubles);
- an approximate distance from a point to every row in one vectorised pass, from which the
  ranking picks its finalists (`nearest`, `approx_sq_distances_m`, `nearest_rows`);
- which rows are ready (registered, not "not available") and on shift in a given hour
  (`ready_masks`), cached until `version` moves: every change of a registration, status, duty
  or shift bumps it, positions do not.

Rows hold, per unit: latitude and longitude in degrees (float64), the time of that fix as epoch
seconds (float64, NaN while unknown), small int codes for kind and status, the status class
(available / conditionally available / not available), a capability bit mask, a shift mask (bit h
set when on duty in local hour h), a duty flag, and an `active` flag (False for a free row).

Approximate distance: the local tangent plane at the query point, with the WGS84 meridional and
prime-vertical radii at the query's latitude. Within a city (tens of km, away from the poles) it is
within a few tenths of a per cent of the geodesic; `refine_distances_m` (the midpoint latitude per
pair) is within `refined_error_bound` of it and serves to bound exact re-ranking.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# WGS84
_A = 6_378_137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)
_RAD = math.pi / 180

# Status classes (the primary status of DOMAIN.md "Units").
AVAILABLE, CONDITIONAL, NOT_AVAILABLE = 0, 1, 2

STATUSES = (
    "available", "dispatched", "en_route", "on_scene", "transporting", "patrol", "post",
    "escort", "traffic_control", "guarding_scene", "break", "off_duty", "out_of_service",
)
CONDITIONAL_STATUSES = frozenset({"patrol", "post", "escort", "traffic_control", "guarding_scene"})
KINDS = ("car", "motorcycle", "foot", "inafis", "reskrim", "lantas")

ALWAYS_ON_DUTY = (1 << 24) - 1
# Relative error bound of refine_distances_m against the WGS84 geodesic: the tangent plane's error
# grows with the square of the distance. Measured: 6e-8 within 11 km and 4e-6 within 80 km at
# Jakarta, 3e-5 within 110 km at 65°N; the bound below is 4-20 times that (checked in
# tests/unit/test_dispatch_index.py for pairs up to 100 km apart between 70°S and 70°N).
REFINED_REL_ERROR_AT_100KM = 1e-4
REFINED_REL_ERROR_FLOOR = 1e-7


def refined_error_bound(distance_m):
    """Relative error bound of refine_distances_m at this distance (scalar or array)."""
    return REFINED_REL_ERROR_AT_100KM * (distance_m / 100_000.0) ** 2 + REFINED_REL_ERROR_FLOOR


def status_class(status: str, on_duty: bool = False) -> int:
    """available / conditionally available / not available, from the secondary status."""
    if status == "available":
        return CONDITIONAL if on_duty else AVAILABLE
    return CONDITIONAL if status in CONDITIONAL_STATUSES else NOT_AVAILABLE


def shift_mask(shift: tuple[int, int] | None) -> int:
    """Bit h set when the unit is on duty in local hour h; (22, 6) is a night shift, None always."""
    if shift is None:
        return ALWAYS_ON_DUTY
    start, end = int(shift[0]) % 24, int(shift[1]) % 24
    if start == end:
        return ALWAYS_ON_DUTY
    mask = 0
    h = start
    while h != end:
        mask |= 1 << h
        h = (h + 1) % 24
    return mask


def metres_per_degree(lat_deg: float) -> tuple[float, float]:
    """(north, east) metres per degree at this latitude on the WGS84 ellipsoid."""
    phi = lat_deg * _RAD
    s = math.sin(phi)
    w = 1 - _E2 * s * s
    m = _A * (1 - _E2) / (w * math.sqrt(w))
    n = _A / math.sqrt(w)
    return m * _RAD, n * math.cos(phi) * _RAD


class UnitIndex:
    """Every unit's position and dispatch-relevant state, one numpy row per unit."""

    def __init__(self, capacity: int = 1024) -> None:
        capacity = max(1, int(capacity))
        self._rows: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._free: list[int] = []
        self._n = 0  # rows ever used (high-water mark); rows >= _n are untouched
        self._kind_codes: dict[str, int] = {k: i for i, k in enumerate(KINDS)}
        self._kinds: list[str] = list(KINDS)
        self._status_codes: dict[str, int] = {s: i for i, s in enumerate(STATUSES)}
        self._statuses: list[str] = list(STATUSES)
        self._cap_bits: dict[str, int] = {}
        # Derived lookups of the ranking (resolved plans, speed tables), keyed by what they depend
        # on; cleared whenever a kind or capability is registered.
        self.cache: dict = {}
        self._near_hint_m2 = 1e6  # see nearest_rows
        # Bumped by every change of a unit's registration, status, duty or shift (not by
        # positions): what `ready_masks` caches depends on nothing else.
        self.version = 0
        self._ready: tuple | None = None
        self._alloc(capacity)

    # --- storage --------------------------------------------------------------------------

    def _alloc(self, capacity: int) -> None:
        old = self.__dict__.get("lat")
        n = self._n
        fields = {
            "lat": (np.float64, np.nan), "lon": (np.float64, np.nan), "at": (np.float64, np.nan),
            "kind": (np.int16, -1), "status": (np.int16, 0), "klass": (np.int8, NOT_AVAILABLE),
            "caps": (np.uint64, 0), "shift": (np.uint32, ALWAYS_ON_DUTY), "duty": (np.bool_, False),
            "active": (np.bool_, False),
        }
        for name, (dtype, fill) in fields.items():
            arr = np.full(capacity, fill, dtype=dtype)
            if old is not None:
                arr[:n] = getattr(self, name)[:n]
            setattr(self, name, arr)
        self._scratch = np.empty((2, capacity), dtype=np.float64)
        self._capacity = capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def n_rows(self) -> int:
        """Rows in use or freed so far; every array's meaningful part is [:n_rows]."""
        return self._n

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self._rows

    def row(self, unit_id: str) -> int | None:
        return self._rows.get(unit_id)

    def unit_id_at(self, row: int) -> str | None:
        return self._ids[row] if 0 <= row < self._n else None

    def kind_name(self, code: int) -> str:
        return self._kinds[code]

    def status_name(self, code: int) -> str:
        return self._statuses[code]

    @property
    def kind_names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def kind_code(self, kind: str) -> int:
        """The code of a kind, registering it when new (its speed falls back to the default)."""
        code = self._kind_codes.get(kind)
        if code is None:
            code = self._kind_codes[kind] = len(self._kinds)
            self._kinds.append(kind)
            self.cache.clear()
        return code

    def kind_code_if_known(self, kind: str) -> int | None:
        return self._kind_codes.get(kind)

    def capability_bits(self, capabilities: Iterable[str], *, register: bool = False) -> int | None:
        """Bit mask of these capabilities; None when one is unknown to every unit (and not registered)."""
        bits = 0
        for cap in capabilities:
            bit = self._cap_bits.get(cap)
            if bit is None:
                if not register:
                    return None
                if len(self._cap_bits) >= 64:
                    raise ValueError("UnitIndex supports at most 64 distinct capabilities")
                bit = self._cap_bits[cap] = len(self._cap_bits)
                self.cache.clear()
            bits |= 1 << bit
        return bits

    # --- writes ---------------------------------------------------------------------------

    def upsert_unit(self, unit_id: str, kind: str, capabilities: Sequence[str] = (),
                    shift: tuple[int, int] | None = None) -> int:
        """Register a unit (or update its kind, capabilities and shift); keeps position and status.

        A new unit has no position and status "available". Returns its row.
        """
        row = self._rows.get(unit_id)
        if row is None:
            if self._free:
                row = self._free.pop()
            else:
                if self._n == self._capacity:
                    self._alloc(self._capacity * 2)
                row = self._n
                self._n += 1
                self._ids.append(None)
            self._rows[unit_id] = row
            self._ids[row] = unit_id
            self.lat[row] = self.lon[row] = self.at[row] = np.nan
            self.status[row] = self._status_codes["available"]
            self.klass[row] = AVAILABLE
            self.duty[row] = False
            self.active[row] = True
        self.kind[row] = self.kind_code(kind)
        self.caps[row] = self.capability_bits(capabilities, register=True)
        self.shift[row] = shift_mask(shift)
        self.version += 1
        return row

    def update_position(self, unit_id: str, lat: float, lon: float, at_epoch_s: float) -> bool:
        """Store a fix in place. False (and nothing stored) for an unknown unit or a fix older
        than the one held: positions can arrive out of order on retries."""
        row = self._rows.get(unit_id)
        if row is None:
            return False
        at = self.at
        if at_epoch_s < at[row]:  # False while NaN (no fix yet)
            return False
        self.lat[row] = lat
        self.lon[row] = lon
        at[row] = at_epoch_s
        return True

    def set_status(self, unit_id: str, status: str) -> bool:
        """The secondary status (schemas.events.UnitStatus); an unknown word counts as not available."""
        row = self._rows.get(unit_id)
        if row is None:
            return False
        code = self._status_codes.get(status)
        if code is None:
            code = self._status_codes[status] = len(self._statuses)
            self._statuses.append(status)
        self.status[row] = code
        self.klass[row] = status_class(status, bool(self.duty[row]))
        self.version += 1
        return True

    def set_duty(self, unit_id: str, on_duty: bool) -> bool:
        """Whether the unit is on a turjawali duty (conditionally available when otherwise available)."""
        row = self._rows.get(unit_id)
        if row is None:
            return False
        self.duty[row] = bool(on_duty)
        self.klass[row] = status_class(self._statuses[self.status[row]], bool(on_duty))
        self.version += 1
        return True

    def set_shift(self, unit_id: str, shift: tuple[int, int] | None) -> bool:
        row = self._rows.get(unit_id)
        if row is None:
            return False
        self.shift[row] = shift_mask(shift)
        self.version += 1
        return True

    def remove(self, unit_id: str) -> bool:
        """Free the unit's row (reused by the next new unit)."""
        row = self._rows.pop(unit_id, None)
        if row is None:
            return False
        self._ids[row] = None
        self.active[row] = False
        self.lat[row] = self.lon[row] = self.at[row] = np.nan
        self.klass[row] = NOT_AVAILABLE
        self._free.append(row)
        self.version += 1
        return True

    # --- reads ----------------------------------------------------------------------------

    def position(self, unit_id: str) -> tuple[float, float, float] | None:
        """(lat, lon, at epoch seconds) or None while unknown."""
        row = self._rows.get(unit_id)
        if row is None or math.isnan(self.at[row]):
            return None
        return float(self.lat[row]), float(self.lon[row]), float(self.at[row])

    def status_of(self, unit_id: str) -> str | None:
        row = self._rows.get(unit_id)
        return None if row is None else self._statuses[self.status[row]]

    def ready_masks(self, hour: int) -> tuple[np.ndarray, np.ndarray]:
        """(registered and not "not available", on shift in local hour `hour`), bool over [:n_rows].

        Cached until the next change of a registration, status, duty or shift: statuses change a
        few times a minute, recommendations many times a second. Read only; do not modify."""
        cached = self._ready
        if cached is None or cached[0] != self.version or cached[1] != hour:
            n = self._n
            ready = self.active[:n] & (self.klass[:n] != NOT_AVAILABLE)
            on_shift = (self.shift[:n] & np.uint32(1 << hour)) != 0
            ready.flags.writeable = on_shift.flags.writeable = False
            cached = self._ready = (self.version, hour, ready, on_shift, int(np.count_nonzero(ready)))
        return cached[2], cached[3]

    def ready_count(self, hour: int) -> int:
        """How many rows `ready_masks(hour)` marks ready (cached with it)."""
        self.ready_masks(hour)
        return self._ready[4]

    def approx_sq_distances_m(self, lat: float, lon: float) -> np.ndarray:
        """Squared approximate distance (m²) from (lat, lon) to rows [:n_rows]; NaN without a position.

        The result is a view of a scratch buffer, overwritten by the next call: copy it to keep it.
        """
        n = self._n
        m_lat, m_lon = metres_per_degree(lat)
        dy = self._scratch[0, :n]
        dx = self._scratch[1, :n]
        np.subtract(self.lat[:n], lat, out=dy)
        dy *= m_lat
        np.subtract(self.lon[:n], lon, out=dx)
        dx *= m_lon
        np.multiply(dy, dy, out=dy)
        np.multiply(dx, dx, out=dx)
        dy += dx
        return dy

    def refine_distances_m(self, lat: float, lon: float, rows: np.ndarray) -> np.ndarray:
        """A closer approximation for a few rows: the tangent plane at each pair's midpoint latitude."""
        lat2 = self.lat[rows]
        lon2 = self.lon[rows]
        phi = (lat2 + lat) * (0.5 * _RAD)
        s = np.sin(phi)
        w = 1 - _E2 * s * s
        m = _A * (1 - _E2) / (w * np.sqrt(w)) * _RAD
        n = _A / np.sqrt(w) * np.cos(phi) * _RAD
        return np.hypot((lat2 - lat) * m, (lon2 - lon) * n)

    def nearest(self, lat: float, lon: float, k: int, mask: np.ndarray | None = None,
                max_distance_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the k nearest positioned units (approximate distance), nearest first, and their
        approximate distances in metres. `mask` (bool over [:n_rows]) narrows the rows."""
        d2 = self.approx_sq_distances_m(lat, lon)
        ok = self.active[: self._n] & ~np.isnan(d2)
        if mask is not None:
            ok &= mask
        if max_distance_m is not None:
            ok &= d2 <= max_distance_m * max_distance_m
        rows = np.flatnonzero(ok)
        return _k_smallest(rows, d2[rows], k)


    def nearest_rows(self, d2: np.ndarray, k: int) -> np.ndarray:
        """Rows of the k smallest of `d2` (approx_sq_distances_m's result, NaN without a position),
        nearest first.

        A partial sort over all rows costs more than the rest of a recommendation's numpy work, so
        the rows within a radius are taken first (twice the k-th distance of the previous call,
        widened until there are k) and only those are sorted."""
        if k <= 0:
            return np.zeros(0, dtype=np.intp)
        t2 = self._near_hint_m2
        for _ in range(6):
            rows = (d2 <= t2).nonzero()[0]  # NaN is not <=: rows without a position drop out
            if rows.size >= k:
                break
            t2 *= 16.0
        else:
            rows = np.flatnonzero(~np.isnan(d2))
        keys = d2[rows]
        if rows.size > k:
            part = keys.argpartition(k - 1)[:k]
            rows, keys = rows[part], keys[part]
        order = keys.argsort(kind="stable")
        if rows.size == k:
            self._near_hint_m2 = max(4.0 * float(keys[order[-1]]), 1.0)
        return rows[order]


def _k_smallest(rows: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, sqrt(keys)) of the k smallest keys, ascending."""
    if k <= 0 or rows.size == 0:
        return rows[:0], np.sqrt(keys[:0])
    if rows.size > k:
        part = np.argpartition(keys, k - 1)[:k]
        rows, keys = rows[part], keys[part]
    order = np.argsort(keys, kind="stable")
    return rows[order], np.sqrt(keys[order])
