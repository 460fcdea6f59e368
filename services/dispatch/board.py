"""The live unit board of one dispatch worker: every unit's register and status, and the spatial index.

Fed from the unit topics (board_feed) and asked for recommendations by the incident agent. Pure
(no Kafka): events in, `dispatch.recommended` out.
"""
from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from schemas.events import (
    Candidate, DispatchRecommended, DutyAssigned, DutyCompleted, EventData, Exclusion, IncidentOpened, UnitPositionReported, UnitRegistered,
    UnitStatusChanged,
)
from spkt.settings import Settings

from .index import UnitIndex
from .ranking import IncidentView, Need, RankingRules, UnitInfo, recommend, sync_unit
from .router import OsrmRouter, Router, StraightLineRouter


EARLY_FIXES_KEPT = 10_000


class Board:
    def __init__(self, router: Router | None = None) -> None:
        self.units: dict[str, UnitInfo] = {}
        self.index = UnitIndex()
        self.router = router
        self._versions: dict[str, int] = {}
        # Fixes of units not registered yet: the feed reads the register and the positions as two
        # topics, so a unit's first fix can come before its registration and would be lost.
        self._early_fixes: OrderedDict[str, tuple[float, float, float]] = OrderedDict()
        # Turjawali duties by unit: a unit on one is conditionally available (DOMAIN.md).
        self._duty_of: dict[str, tuple[str, str]] = {}  # unit_id -> (duty_id, kind)

    def apply(self, event: EventData) -> None:
        if type(event) is UnitPositionReported:  # first: nearly every event is one (exact type: the fastest test)
            self.position(event.unit_id, event.lat, event.lon, event.at.timestamp())
        elif isinstance(event, DutyAssigned):
            for unit_id in event.unit_ids:
                self._duty_of[unit_id] = (event.duty_id, event.kind)
                self._sync_duty(unit_id)
        elif isinstance(event, DutyCompleted):
            for unit_id, (duty_id, _) in list(self._duty_of.items()):
                if duty_id == event.duty_id:
                    del self._duty_of[unit_id]
                    self._sync_duty(unit_id)
        elif isinstance(event, UnitRegistered):
            info = self.units.get(event.unit_id)
            # Both hours or no shift: a start without an end means always on duty (the schema's None).
            has_shift = event.shift_start_h is not None and event.shift_end_h is not None
            shift = (event.shift_start_h, event.shift_end_h) if has_shift else None
            if info is None:
                info = self.units[event.unit_id] = UnitInfo(event.unit_id, event.callsign, event.kind, event.station)
            info.callsign, info.kind, info.station = event.callsign, event.kind, event.station
            info.capabilities, info.shift = tuple(event.capabilities), shift
            info.duty = self._duty_of.get(event.unit_id, (None, None))[1]
            sync_unit(self.index, info)
            if (fix := self._early_fixes.pop(event.unit_id, None)) is not None:
                self.index.update_position(event.unit_id, *fix)
        elif isinstance(event, UnitStatusChanged):
            info = self.units.get(event.unit_id)
            if info is None:
                return
            # Dispatch numbers a unit's status changes: a late older one never overwrites a newer one.
            if event.status_version is not None:
                if event.status_version <= self._versions.get(event.unit_id, 0):
                    return
                self._versions[event.unit_id] = event.status_version
            info.status, info.incident_id = event.status, event.incident_id
            self.index.set_status(event.unit_id, event.status)

    def _sync_duty(self, unit_id: str) -> None:
        info = self.units.get(unit_id)
        if info is not None:  # not registered yet: set at its registration
            info.duty = self._duty_of.get(unit_id, (None, None))[1]
            self.index.set_duty(unit_id, info.duty is not None)

    def position(self, unit_id: str, lat: float, lon: float, at_epoch_s: float) -> bool:
        """A GPS fix into the index, in place (an older fix than the one held is ignored)."""
        if unit_id in self.index:
            return self.index.update_position(unit_id, lat, lon, at_epoch_s)
        held = self._early_fixes.get(unit_id)
        if held is None or held[2] <= at_epoch_s:
            self._early_fixes[unit_id] = (lat, lon, at_epoch_s)
            if len(self._early_fixes) > EARLY_FIXES_KEPT:  # trackers of units never registered
                self._early_fixes.popitem(last=False)
        return False

    def recommend(self, incident: IncidentView, now: datetime, rules: RankingRules,
                  trigger: str = "incident.opened") -> DispatchRecommended:
        found = recommend(incident, self.units, self.index, now, rules, self.router)
        return DispatchRecommended(
            incident_id=incident.incident_id, recommended_at=now, trigger=trigger,
            candidates=[Candidate(unit_id=r.unit_id, callsign=r.callsign, kind=r.kind, distance_m=round(r.distance_m, 1),
                                  eta_s=round(r.eta_s, 1), reasons=r.reasons, warnings=r.warnings,
                                  conditional=r.conditional, meets=r.meets) for r in found.candidates],
            excluded=[Exclusion(unit_id=unit_id, reason=reason) for unit_id, reason in found.excluded],
            excluded_counts=dict(found.excluded_counts), shortfalls=list(found.shortfalls))


def ranking_rules(settings: Settings) -> RankingRules:
    # The 20 nearest excluded units are listed with their reason (a dispatcher reads no further;
    # the counts per reason cover every unit): listing 50 cost a third of a recommendation.
    return RankingRules(max_candidates=settings.recommend_candidates, position_max_age_s=settings.position_max_age_s,
                        radius_m=settings.recommend_radius_m, conditional_pull_cost_s=settings.pull_cost_s,
                        excluded_listed=20)


def router_for(settings: Settings, rules: RankingRules) -> Router:
    straight = StraightLineRouter.from_rules(rules)
    return OsrmRouter(settings.osrm_url, fallback=straight) if settings.osrm_url else straight


# --- what the incident agent keeps of an incident (JSON, in a table) ----------------------------
def incident_facts_of(event: IncidentOpened) -> dict:
    return {"incident_id": event.incident_id, "number": event.number, "category": event.category,
            "priority": event.priority, "lat": event.location.lat, "lon": event.location.lon,
            "plan": event.response_plan, "assigned": [],
            "exclude": [event.panic_unit_id] if event.panic_unit_id else []}


def incident_view(facts: dict) -> IncidentView:
    plan = tuple(Need(kind=line["kind"], count=int(line.get("count", 1)),
                      capabilities=tuple(line.get("capabilities", ()))) for line in facts.get("plan") or ())
    return IncidentView(incident_id=facts["incident_id"], lat=facts.get("lat"), lon=facts.get("lon"),
                        category=facts["category"], priority=facts["priority"], plan=plan,
                        exclude_units=frozenset(facts.get("assigned", [])) | frozenset(facts.get("exclude", [])))
