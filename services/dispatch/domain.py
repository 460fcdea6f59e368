"""Dispatch rules. Pure: no Kafka, no faust, no HTTP, no SQL.

The walking skeleton recommends the nearest available units by geodesic distance over every
unit; the dispatch issue replaces the loop with a vectorised index and richer rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from geopy.distance import geodesic

from schemas.events import (
    Candidate, DispatchRecommended, EventData, Exclusion, IncidentOpened, UnitPositionReported,
    UnitRegistered, UnitStatusChanged,
)

# Road distance is longer than the straight line; speeds are a city average per unit kind.
ROAD_CIRCUITY = 1.35
SPEED_KMH = {"motorcycle": 35.0, "car": 30.0, "lantas": 35.0, "reskrim": 30.0, "inafis": 30.0, "foot": 5.0}

AVAILABLE = "available"

STATUS_WORDS = {
    "dispatched": "sedang ditugaskan", "en_route": "dalam perjalanan", "on_scene": "di TKP",
    "transporting": "sedang mengantar", "patrol": "patroli", "post": "di pos", "escort": "pengawalan",
    "traffic_control": "pengaturan lalu lintas", "guarding_scene": "menjaga TKP", "break": "istirahat",
    "off_duty": "lepas dinas", "out_of_service": "tidak beroperasi",
}


@dataclass
class Unit:
    unit_id: str
    callsign: str
    kind: str
    station: str
    capabilities: list[str] = field(default_factory=list)
    status: str = AVAILABLE
    lat: float | None = None
    lon: float | None = None
    position_at: datetime | None = None


class UnitBoard:
    """Where every unit is and what it is doing, as far as the events tell."""

    def __init__(self) -> None:
        self.units: dict[str, Unit] = {}

    def apply(self, event: EventData) -> None:
        if isinstance(event, UnitRegistered):
            unit = self.units.get(event.unit_id)
            if unit is None:
                self.units[event.unit_id] = Unit(event.unit_id, event.callsign, event.kind, event.station,
                                                 list(event.capabilities))
            else:  # re-registration updates the register, keeps status and position
                unit.callsign, unit.kind, unit.station = event.callsign, event.kind, event.station
                unit.capabilities = list(event.capabilities)
        elif isinstance(event, UnitStatusChanged):
            if unit := self.units.get(event.unit_id):
                unit.status = event.status
        elif isinstance(event, UnitPositionReported):
            unit = self.units.get(event.unit_id)
            # Positions can arrive out of order on retries: an older fix never overwrites a newer one.
            if unit is not None and (unit.position_at is None or event.at >= unit.position_at):
                unit.lat, unit.lon, unit.position_at = event.lat, event.lon, event.at


def format_distance(metres: float) -> str:
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km".replace(".", ",")


def travel_time_s(distance_m: float, kind: str) -> float:
    speed_ms = SPEED_KMH.get(kind, 30.0) * 1000 / 3600
    return distance_m * ROAD_CIRCUITY / speed_ms


def recommend(incident: IncidentOpened, board: UnitBoard, now: datetime, *, max_candidates: int,
              position_max_age: timedelta) -> DispatchRecommended:
    """The nearest available units, each with its reasons; every other unit with why not."""
    excluded: list[Exclusion] = []
    ranked: list[tuple[float, Unit, float]] = []
    point = incident.location.point()
    for unit in board.units.values():
        if unit.status != AVAILABLE:
            excluded.append(Exclusion(unit_id=unit.unit_id,
                                      reason=f"tidak tersedia: {STATUS_WORDS.get(unit.status, unit.status)}"))
        elif unit.lat is None or unit.position_at is None:
            excluded.append(Exclusion(unit_id=unit.unit_id, reason="posisi belum diketahui"))
        elif now - unit.position_at > position_max_age:
            age_min = (now - unit.position_at).total_seconds() / 60
            excluded.append(Exclusion(unit_id=unit.unit_id, reason=f"posisi kedaluwarsa ({age_min:.0f} menit)"))
        elif point is None:
            excluded.append(Exclusion(unit_id=unit.unit_id, reason="lokasi kejadian tanpa koordinat"))
        else:
            distance = geodesic((point.lat, point.lon), (unit.lat, unit.lon)).meters
            ranked.append((travel_time_s(distance, unit.kind), unit, distance))
    ranked.sort(key=lambda r: (r[0], r[1].unit_id))
    candidates = []
    for rank, (eta, unit, distance) in enumerate(ranked[:max_candidates], start=1):
        reasons = [
            "tersedia",
            f"jarak {format_distance(distance)}",
            f"perkiraan tiba {max(1, round(eta / 60))} menit ({unit.kind})",
        ]
        if rank == 1:
            reasons.insert(0, "tercepat tiba")
        candidates.append(Candidate(unit_id=unit.unit_id, callsign=unit.callsign, kind=unit.kind,
                                    distance_m=round(distance, 1), eta_s=round(eta, 1), reasons=reasons))
    for eta, unit, distance in ranked[max_candidates:]:
        excluded.append(Exclusion(unit_id=unit.unit_id,
                                  reason=f"ada unit lebih dekat (jarak {format_distance(distance)})"))
    return DispatchRecommended(incident_id=incident.incident_id, candidates=candidates, excluded=excluded,
                               recommended_at=now)
