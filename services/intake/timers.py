"""Time targets of incidents, and the clock on requests for assistance. Pure: no I/O.

Each incident carries the due times of its category's targets (set when it is opened). An event
meets a target; a target still pending when its time comes is breached, once. A request for
assistance needs a recorded decision in time: a decline goes before the supervisor at once, and
so does a request nobody decided.
"""
from __future__ import annotations

from datetime import datetime
from typing import MutableMapping

from schemas.events import (
    AssistanceDecided, AssistanceEscalated, EventData, IncidentOpened, TargetBreached,
)

# Which event meets which target. `unit.arrived` comes with the dispatch issue (on-scene status).
MET_BY = {
    "unit.assigned": "dispatch",
    "unit.arrived": "on_scene",
    "assistance.decided": "assistance_decision",
}
ENDED_BY = ("incident.closed", "incident.merged")
PENDING, MET, BREACHED = "pending", "met", "breached"

Timers = MutableMapping[str, dict]  # incident_id -> {"priority", "targets": {name: {"due", "state"}}}


def on_event(timers: Timers, event_type: str, event: EventData) -> list[EventData]:
    """Update the clocks for one incident event; what must be said at once (a decline)."""
    incident_id = getattr(event, "incident_id", None)
    if incident_id is None:
        return []
    if isinstance(event, IncidentOpened):
        if incident_id not in timers:
            timers[incident_id] = {"priority": event.priority, "targets": {
                name: {"due": due.isoformat(), "state": PENDING} for name, due in event.targets.items()}}
        return []
    if event_type in ENDED_BY:
        timers.pop(incident_id, None)
        return []
    entry = timers.get(incident_id)
    if entry is None:
        return []
    out: list[EventData] = []
    if isinstance(event, TargetBreached):
        _mark(timers, incident_id, entry, event.target, BREACHED)
    elif (target := MET_BY.get(event_type)) is not None:
        _mark(timers, incident_id, entry, target, MET, only_if=PENDING)
        if isinstance(event, AssistanceDecided) and event.decision == "decline":
            out.append(AssistanceEscalated(
                incident_id=incident_id, why="declined", escalated_at=event.decided_at,
                detail=f"Permintaan pendampingan ditolak oleh {event.decided_by}: {event.reason or '(tanpa alasan)'}"))
    return out


def due(timers: Timers, now: datetime) -> list[EventData]:
    """Targets whose time has come and that nobody met: the breach, and an escalation where needed."""
    out: list[EventData] = []
    for incident_id, entry in list(timers.items()):
        for name, target in entry["targets"].items():
            due_at = datetime.fromisoformat(target["due"])
            if target["state"] == PENDING and due_at <= now:
                out.append(TargetBreached(incident_id=incident_id, target=name, due_at=due_at, breached_at=now,
                                          priority=entry.get("priority")))
                if name == "assistance_decision":
                    out.append(AssistanceEscalated(
                        incident_id=incident_id, why="no_decision_in_time", escalated_at=now,
                        detail="Permintaan pendampingan belum diputuskan hingga batas waktu"))
    return out


def _mark(timers: Timers, incident_id: str, entry: dict, target: str, state: str, only_if: str | None = None) -> None:
    current = entry["targets"].get(target)
    if current is None or (only_if is not None and current["state"] != only_if):
        return
    current["state"] = state
    if all(t["state"] != PENDING for t in entry["targets"].values()):
        del timers[incident_id]  # nothing left to watch: the clock stops for this incident
    else:
        timers[incident_id] = entry  # write back: a table must see the change to keep it
