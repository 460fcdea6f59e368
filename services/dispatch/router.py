"""Travel time from a unit to an incident: straight line by default, OSRM road times on request.

`StraightLineRouter` is pure arithmetic: distance × circuity ÷ speed(kind). `OsrmRouter` asks an
OSRM server's table service (`/table/v1/driving/`) for the few finalists of one recommendation in
one synchronous HTTP request and falls back to the straight line for any unit it cannot answer
(error, timeout, no route, a unit on foot). httpx is imported only when an OsrmRouter is made
without a client, so the pure ranking can import this module freely.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import httpx

log = logging.getLogger(__name__)

DEFAULT_CIRCUITY = 1.35
DEFAULT_SPEED_KMH: Mapping[str, float] = {
    "motorcycle": 35.0, "car": 30.0, "lantas": 35.0, "reskrim": 30.0, "inafis": 30.0, "foot": 5.0,
}
DEFAULT_UNKNOWN_SPEED_KMH = 30.0


@runtime_checkable
class Router(Protocol):
    distance_only: bool
    """True when the travel time is `distance × seconds_per_metre(kind)` and nothing else: the
    ranking may then compute exact distances lazily, only for the units that can matter."""

    def seconds_per_metre(self, kind: str) -> float:
        """Straight-line metres to seconds for this kind (used to pre-rank all units)."""
        ...

    def travel_times_s(self, dest: tuple[float, float], origins: Sequence[tuple[float, float]],
                       kinds: Sequence[str], distances_m: Sequence[float]) -> list[float]:
        """Seconds from each origin (lat, lon) to dest (lat, lon); distances_m are the geodesic
        distances of the same pairs, for routers that work from them or fall back to them."""
        ...


class StraightLineRouter:
    """distance × circuity ÷ speed(kind): road distance is longer than the straight line."""

    distance_only = True

    def __init__(self, circuity: float = DEFAULT_CIRCUITY, speed_kmh: Mapping[str, float] | None = None,
                 default_speed_kmh: float = DEFAULT_UNKNOWN_SPEED_KMH) -> None:
        self.circuity = circuity
        self.speed_kmh = dict(DEFAULT_SPEED_KMH if speed_kmh is None else speed_kmh)
        self.default_speed_kmh = default_speed_kmh

    @classmethod
    def from_rules(cls, rules) -> StraightLineRouter:
        """From a ranking.RankingRules (circuity, speed_kmh, default_speed_kmh)."""
        return cls(rules.circuity, rules.speed_kmh, getattr(rules, "default_speed_kmh", DEFAULT_UNKNOWN_SPEED_KMH))

    def speed_ms(self, kind: str) -> float:
        return self.speed_kmh.get(kind, self.default_speed_kmh) / 3.6

    def seconds_per_metre(self, kind: str) -> float:
        return self.circuity / self.speed_ms(kind)

    def travel_time_s(self, distance_m: float, kind: str) -> float:
        return distance_m * self.seconds_per_metre(kind)

    def travel_times_s(self, dest, origins, kinds, distances_m) -> list[float]:
        return [d * self.seconds_per_metre(k) for d, k in zip(distances_m, kinds)]


class OsrmRouter:
    """Road travel times from OSRM's table service for the finalists; straight line on failure.

    `client` is an httpx.Client (tests pass one with an httpx.MockTransport). Units of a kind in
    `straight_line_kinds` (default: on foot) are always timed by the fallback.
    """

    distance_only = False

    def __init__(self, base_url: str, client: httpx.Client | None = None, *,
                 fallback: StraightLineRouter | None = None, timeout_s: float = 1.0,
                 profile: str = "driving", straight_line_kinds: frozenset[str] = frozenset({"foot"})) -> None:
        if client is None:
            import httpx
            client = httpx.Client(timeout=timeout_s)
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.fallback = fallback or StraightLineRouter()
        self.timeout_s = timeout_s
        self.profile = profile
        self.straight_line_kinds = straight_line_kinds
        self.last_error: str | None = None
        self.fallbacks = 0  # units timed by the straight line instead of OSRM, over this router's life

    def seconds_per_metre(self, kind: str) -> float:
        return self.fallback.seconds_per_metre(kind)

    def travel_times_s(self, dest, origins, kinds, distances_m) -> list[float]:
        result = self.fallback.travel_times_s(dest, origins, kinds, distances_m)
        routed = [i for i, k in enumerate(kinds) if k not in self.straight_line_kinds]
        if not routed:
            return result
        durations = self._table(dest, [origins[i] for i in routed])
        for j, i in enumerate(routed):
            seconds = durations[j] if durations is not None and j < len(durations) else None
            if seconds is None:
                self.fallbacks += 1
            else:
                result[i] = seconds
        return result

    def _table(self, dest: tuple[float, float], origins: Sequence[tuple[float, float]]) -> list[float | None] | None:
        """OSRM durations from each origin to dest (None where no route); None on any failure."""
        coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in (dest, *origins))
        url = f"{self.base_url}/table/v1/{self.profile}/{coords}"
        params = {
            "sources": ";".join(str(i) for i in range(1, len(origins) + 1)),
            "destinations": "0",
            "annotations": "duration",
        }
        try:
            response = self.client.get(url, params=params, timeout=self.timeout_s)
            response.raise_for_status()
            body = response.json()
            if body.get("code") != "Ok":
                raise ValueError(f"OSRM code {body.get('code')!r}: {body.get('message', '')}")
            rows = body["durations"]
            if len(rows) != len(origins):
                raise ValueError(f"OSRM returned {len(rows)} rows for {len(origins)} sources")
            out: list[float | None] = []
            for row in rows:
                value = row[0] if row else None
                out.append(float(value) if value is not None else None)
            self.last_error = None
            return out
        except Exception as exc:  # network, HTTP status, malformed body: fall back, never fail dispatch
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("OSRM table failed, using straight line: %s", self.last_error)
            return None
