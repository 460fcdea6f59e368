"""A unit's status and its assignments: the transition table and the decisions. Pure: no I/O.

One dispatch worker at a time decides for each unit (unit commands are keyed by unit id), from
the unit's *hold*: a small JSON-able dict kept in a table,

    {"unit_id", "callsign", "kind", "registered", "status", "incident_id", "assignment_id",
     "assigned_at", "acknowledged", "alerted", "version"}

Every decision returns the events to publish and changes the hold in place; a refusal is a
`command.rejected` naming the current status and what is allowed, in Bahasa Indonesia.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas.envelope import derived_id
from schemas.events import (
    AssignmentAcknowledged, AssignmentDeclined, AssignmentEnded, AssignmentUnacknowledged, AssignUnit,
    ChangeUnitStatus, CommandRejected, EventData, RespondToAssignment, UnitArrived, UnitAssigned, UnitRegistered,
    UnitStatusChanged,
)

AVAILABLE, CONDITIONAL, UNAVAILABLE = "available", "conditionally_available", "not_available"

# Secondary status -> primary (DOMAIN.md, Units). A unit on a turjawali duty can be pulled for an
# urgent call, with a warning and a record: conditionally available.
PRIMARY = {
    "available": AVAILABLE,
    "patrol": CONDITIONAL, "post": CONDITIONAL, "escort": CONDITIONAL, "traffic_control": CONDITIONAL,
    "guarding_scene": CONDITIONAL,
    "dispatched": UNAVAILABLE, "en_route": UNAVAILABLE, "on_scene": UNAVAILABLE, "transporting": UNAVAILABLE,
    "break": UNAVAILABLE, "off_duty": UNAVAILABLE, "out_of_service": UNAVAILABLE,
}
DUTIES = ("patrol", "post", "escort", "traffic_control", "guarding_scene")
# Statuses tied to an incident: the unit holds one active incident at a time.
ON_INCIDENT = ("dispatched", "en_route", "on_scene", "transporting")

# What a user (field unit, dispatcher) may move a unit to. `dispatched` only comes from an
# assignment; leaving an incident (to available) ends the assignment.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "available": DUTIES + ("break", "off_duty", "out_of_service"),
    "dispatched": ("en_route", "on_scene", "available"),
    "en_route": ("on_scene", "available"),
    "on_scene": ("transporting", "guarding_scene", "available"),
    "transporting": ("on_scene", "available"),
    "patrol": ("available", "post", "break", "off_duty") + ("escort", "traffic_control", "guarding_scene"),
    "post": ("available", "patrol", "break", "off_duty"),
    "escort": ("available", "patrol", "off_duty"),
    "traffic_control": ("available", "patrol", "off_duty"),
    "guarding_scene": ("available", "patrol", "off_duty"),
    "break": ("available", "off_duty"),
    "off_duty": ("available", "out_of_service"),
    "out_of_service": ("available", "off_duty"),
}

STATUS_WORDS = {
    "available": "tersedia", "dispatched": "sedang ditugaskan", "en_route": "dalam perjalanan",
    "on_scene": "di TKP", "transporting": "sedang mengantar", "patrol": "patroli", "post": "di pos",
    "escort": "pengawalan", "traffic_control": "pengaturan lalu lintas", "guarding_scene": "menjaga TKP",
    "break": "istirahat", "off_duty": "lepas dinas", "out_of_service": "tidak beroperasi",
}


def words(status: str | None) -> str:
    return STATUS_WORDS.get(status or "", status or "-")


def allowed(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def can_assign(status: str) -> bool:
    return PRIMARY.get(status) in (AVAILABLE, CONDITIONAL)


@dataclass
class Decision:
    """What a command led to: the events to publish, or why it was refused."""

    events: list[EventData] = field(default_factory=list)
    rejected: str | None = None


def new_hold(unit_id: str) -> dict:
    return {"unit_id": unit_id, "callsign": unit_id, "kind": None, "registered": False, "status": "available",
            "incident_id": None, "assignment_id": None, "assigned_at": None, "acknowledged": False,
            "alerted": False, "version": 0}


def assignment_id_for(command_id: str) -> str:
    return derived_id("assignment", command_id)


# --- facts from the unit topic ------------------------------------------------------------------
def registered(hold: dict, event: UnitRegistered) -> None:
    hold.update(registered=True, callsign=event.callsign, kind=event.kind)


def observed(hold: dict, event: UnitStatusChanged) -> None:
    """A status event read back from the topic: ours (versioned, already applied) or older writers'."""
    if event.status_version is not None and event.status_version <= hold["version"]:
        return
    hold["status"] = event.status
    hold["incident_id"] = event.incident_id if event.status in ON_INCIDENT else None
    if event.status_version is not None:
        hold["version"] = event.status_version


# --- commands -----------------------------------------------------------------------------------
def _reject(command, name: str, reason: str, now: datetime) -> Decision:
    return Decision([CommandRejected(command_id=command.command_id, command=name, reason=reason, rejected_at=now)],
                    rejected=reason)


def _status(hold: dict, status: str, now: datetime, command_id: str | None, by: str | None,
            incident_id: str | None = None) -> UnitStatusChanged:
    previous = hold["status"]
    hold["version"] += 1
    hold["status"] = status
    hold["incident_id"] = incident_id if status in ON_INCIDENT else None
    return UnitStatusChanged(unit_id=hold["unit_id"], status=status, previous_status=previous,
                             incident_id=incident_id, changed_at=now, status_version=hold["version"], command_id=command_id,
                             changed_by=by, assignment_id=hold.get("assignment_id") if incident_id else None)


def _busy_reason(hold: dict) -> str:
    where = f" pada kejadian {hold['incident_id']}" if hold.get("incident_id") else ""
    return (f"Unit {hold['callsign']} tidak dapat ditugaskan: status saat ini {words(hold['status'])}{where}; "
            f"penugasan hanya untuk unit tersedia atau sedang turjawali")


def assign(hold: dict, command: AssignUnit, now: datetime) -> Decision:
    """Exactly one active incident per unit: the first command wins, every other is refused."""
    if not hold["registered"]:
        return _reject(command, "assign-unit", f"Unit {command.unit_id} tidak terdaftar", now)
    if hold["status"] in ON_INCIDENT and hold["incident_id"] == command.incident_id:
        return _reject(command, "assign-unit",
                       f"Unit {hold['callsign']} sudah ditugaskan pada kejadian ini ({words(hold['status'])})", now)
    if not can_assign(hold["status"]):
        return _reject(command, "assign-unit", _busy_reason(hold), now)
    warning = None
    if PRIMARY[hold["status"]] == CONDITIONAL:
        warning = f"Unit ditarik dari tugas {words(hold['status'])}; penarikan tercatat"
    assignment_id = assignment_id_for(command.command_id)
    hold.update(assignment_id=assignment_id, assigned_at=now.isoformat(), acknowledged=False, alerted=False)
    assigned = UnitAssigned(assignment_id=assignment_id, incident_id=command.incident_id, unit_id=command.unit_id,
                            assigned_by=command.requested_by, assigned_at=now, override_reason=command.override_reason,
                            command_id=command.command_id, automatic=command.automatic, callsign=hold["callsign"],
                            warning=warning)
    status = _status(hold, "dispatched", now, command.command_id, command.requested_by, command.incident_id)
    return Decision([assigned, status])


def change_status(hold: dict, command: ChangeUnitStatus, now: datetime) -> Decision:
    """A transition from the table; arrival and clearing say so on the incident's timeline too."""
    current, target = hold["status"], command.status
    if not hold["registered"]:
        return _reject(command, "change-unit-status", f"Unit {command.unit_id} tidak terdaftar", now)
    if target == current:
        return _reject(command, "change-unit-status", f"Status unit sudah {words(current)}", now)
    if target not in allowed(current):
        options = ", ".join(f"{s} ({words(s)})" for s in allowed(current)) or "-"
        hint = "; gunakan penugasan untuk menugaskan unit" if target == "dispatched" else ""
        return _reject(command, "change-unit-status",
                       f"Perubahan status tidak sah: dari {current} ({words(current)}) ke {target}; "
                       f"yang diizinkan: {options}{hint}", now)
    incident_id = hold["incident_id"]
    if command.incident_id and incident_id and command.incident_id != incident_id:
        return _reject(command, "change-unit-status",
                       f"Unit sedang menangani kejadian {incident_id}, bukan {command.incident_id}", now)
    events: list[EventData] = []
    assignment_id = hold.get("assignment_id")
    if target in ("en_route", "on_scene") and incident_id and not hold["acknowledged"]:
        hold["acknowledged"] = True  # moving to the scene is an acceptance
        events.append(AssignmentAcknowledged(assignment_id=assignment_id, incident_id=incident_id,
                                             unit_id=command.unit_id, acknowledged_at=now,
                                             command_id=command.command_id))
    status = _status(hold, target, now, command.command_id, command.requested_by,
                     incident_id if target in ON_INCIDENT else None)
    events.append(status)
    if target == "on_scene" and incident_id:
        events.append(UnitArrived(assignment_id=assignment_id, incident_id=incident_id, unit_id=command.unit_id,
                                  arrived_at=now))
    if incident_id and target not in ON_INCIDENT:
        why = "cleared" if current in ("on_scene", "transporting") else "cancelled"
        events.append(AssignmentEnded(assignment_id=assignment_id, incident_id=incident_id, unit_id=command.unit_id,
                                      why=why, ended_at=now))
        hold.update(assignment_id=None, assigned_at=None)
    return Decision(events)


def respond(hold: dict, command: RespondToAssignment, now: datetime) -> Decision:
    """The unit accepts (on its way: en route) or declines (available again; dispatch recommends again)."""
    name = "respond-to-assignment"
    if hold.get("assignment_id") != command.assignment_id or hold["status"] not in ON_INCIDENT:
        return _reject(command, name, "Penugasan itu tidak aktif untuk unit ini", now)
    incident_id = hold["incident_id"]
    if command.accept:
        if hold["acknowledged"]:
            return _reject(command, name, "Penugasan sudah diterima", now)
        hold["acknowledged"] = True
        events: list[EventData] = [AssignmentAcknowledged(assignment_id=command.assignment_id,
                                                          incident_id=incident_id, unit_id=command.unit_id,
                                                          acknowledged_at=now, command_id=command.command_id)]
        if hold["status"] == "dispatched":
            events.append(_status(hold, "en_route", now, command.command_id, command.requested_by, incident_id))
        return Decision(events)
    if hold["status"] != "dispatched":
        return _reject(command, name, f"Penugasan tidak dapat ditolak: unit sudah {words(hold['status'])}", now)
    reason = (command.reason or "").strip()
    if not reason:
        return _reject(command, name, "Alasan penolakan wajib diisi", now)
    declined = AssignmentDeclined(assignment_id=command.assignment_id, incident_id=incident_id,
                                  unit_id=command.unit_id, reason=reason, declined_at=now,
                                  command_id=command.command_id)
    status = _status(hold, "available", now, command.command_id, command.requested_by)
    ended = AssignmentEnded(assignment_id=command.assignment_id, incident_id=incident_id, unit_id=command.unit_id,
                            why="declined", ended_at=now)
    hold.update(assignment_id=None, assigned_at=None, acknowledged=False)
    return Decision([declined, status, ended])


RELEASED_BY = "dispatch (otomatis: kejadian ditutup)"


def release_on_close(incident_id: str, unit_ids: list[str], now: datetime, cause_id: str) -> list[ChangeUnitStatus]:
    """An incident closed: each unit still on it is made available again, which ends its assignment.

    One command per unit, to the unit's own decider; it names the incident, so a unit that has
    left it since (cleared, sent elsewhere) is refused there and keeps what it is doing. Ids come
    from the closure and the unit, so a closure read twice sends the same commands."""
    return [ChangeUnitStatus(command_id=derived_id("release-on-close", cause_id, unit_id), unit_id=unit_id,
                             status="available", incident_id=incident_id, requested_by=RELEASED_BY,
                             requested_at=now, reason="kejadian ditutup")
            for unit_id in sorted(set(unit_ids))]


def unacknowledged(hold: dict, now: datetime, limit_s: float) -> AssignmentUnacknowledged | None:
    """An assignment nobody acknowledged within the limit: alert once (the caller records `alerted`)."""
    if hold["status"] != "dispatched" or hold["acknowledged"] or hold["alerted"] or not hold.get("assigned_at"):
        return None
    assigned_at = datetime.fromisoformat(hold["assigned_at"])
    waited = (now - assigned_at).total_seconds()
    if waited < limit_s:
        return None
    return AssignmentUnacknowledged(assignment_id=hold["assignment_id"], incident_id=hold["incident_id"],
                                    unit_id=hold["unit_id"], assigned_at=assigned_at, waited_s=round(waited, 1),
                                    alerted_at=now)
