"""Thin agents: decode, ask the domain, publish."""
from __future__ import annotations

import logging
from datetime import datetime

from schemas import topics
from schemas.envelope import Envelope, derived_id, utcnow
from schemas.events import (
    DutyAssigned, DutyCheckedIn, DutyCheckInMissed, DutyCompleted, EventData,
)
from schemas.registry import make_event, record_events, replay_events
from services.streaming import OutcomeKeeper, Origin, Outgoing, Said, derived, handle_each, publish

from . import domain, records
from .app import SERVICE, app, duties, duty_inbox, incident_inbox, outcomes, scenes, settings

SOURCE = f"/spkt/{SERVICE}"
log = logging.getLogger(__name__)
LEGAL = domain.LegalRules(
    sp2hp_first_days=settings.sp2hp_first_days, spdp_days=settings.spdp_days,
    sp2hp_every_days={k.strip(): float(v) for k, v in
                      (pair.split("=") for pair in settings.sp2hp_every_days.split(",") if "=" in pair)})


def emit(cause: Envelope, events: list[EventData]) -> list[Outgoing]:
    return derived(SOURCE, cause, events)


# --- one incident at a time: the scene and its chain ----------------------------------------------
def on_incident_message(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    incident_id = getattr(event, "incident_id", None)
    if not incident_id or event.event_type in ("register-lp", "merge-incidents", "split-report"):
        return []  # intake's commands share the topic, keyed by area
    command = isinstance(event, records.COMMANDS)
    if command or event.event_type == "lp.registered":
        recorded = outcomes.get(envelope.id)
        if recorded is not None:  # delivered again after a restart: say exactly what was said
            return emit(envelope, replay_events(recorded))
    held = scenes.get(incident_id)
    scene = dict(held) if held else records.new_scene(incident_id)
    before = repr(scene)
    scene["partition"] = origin.partition  # the timer speaks only for partitions this worker owns
    now = utcnow()
    out = (records.on_command(scene, event, now, LEGAL) if command
           else records.on_incident_event(scene, event, now, LEGAL))
    if repr(scene) != before or held is None:
        scenes[incident_id] = scene
    if command or out:
        outcomes[envelope.id] = record_events(out, now)
        _old_outcomes.tick(now)
    for e in out:
        log.info("tkp: %s", e.event_type, extra={"incident_id": incident_id, "event_type": e.event_type,
                                                 "command_id": getattr(event, "command_id", None)})
    return emit(envelope, out)


_old_outcomes = OutcomeKeeper(outcomes)


@app.agent(incident_inbox, concurrency=1)
async def tkp_incidents(stream):
    await handle_each(app, SERVICE, stream, on_incident_message)


# --- one duty at a time --------------------------------------------------------------------------
def on_duty_message(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    held = duties.get(event.duty_id)
    duty = dict(held) if held else None
    if isinstance(event, DutyAssigned):
        every = event.check_in_every_min
        if every is None and event.kind == "penjagaan":
            every = settings.guard_check_in_min
        duty = {"duty_id": event.duty_id, "kind": event.kind, "unit_ids": list(event.unit_ids),
                "incident_id": event.incident_id, "started_at": event.starts_at.isoformat(),
                "ends_at": event.ends_at.isoformat() if event.ends_at else None, "completed": False,
                "check_in_every_min": every, "last_check_in_at": None, "alerted_for": None}
    elif duty is None:
        return []
    elif isinstance(event, DutyCheckedIn):
        last = duty.get("last_check_in_at")
        if last is None or datetime.fromisoformat(last) < event.at:
            duty["last_check_in_at"] = event.at.isoformat()
    elif isinstance(event, DutyCompleted):
        duty["completed"] = True
    elif isinstance(event, DutyCheckInMissed):
        duty["alerted_for"] = event.due_at.isoformat()
    duty["partition"] = origin.partition
    if duty != held:
        duties[event.duty_id] = duty
    return []


@app.agent(duty_inbox, concurrency=1)
async def tkp_duties(stream):
    await handle_each(app, SERVICE, stream, on_duty_message)


# --- the clocks: missed check-ins and overdue letters ----------------------------------------------
_said = Said()


def _owned(topic: str) -> set[int]:
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


@app.timer(interval=1.0)
async def clocks() -> None:
    """Each missed check-in and each overdue letter said once; the agents record it when it comes back."""
    now = utcnow()
    owned = _owned(topics.TURJAWALI)
    mine = [d for d in list(duties.values()) if d and d.get("partition") in owned]
    for duty_id, due in domain.missed_check_ins(mine, now):
        duty = duties.get(duty_id) or {}
        alert = DutyCheckInMissed(duty_id=duty_id, incident_id=duty.get("incident_id"),
                                  unit_ids=duty.get("unit_ids", []), due_at=due, noticed_at=now)
        await _say(alert, derived_id(alert.event_type, duty_id, due.isoformat()))
    owned = _owned(topics.TKP)
    for scene in list(scenes.values()):
        if not scene or not scene.get("deadlines") or scene.get("partition") not in owned:
            continue
        for letter in records.overdue_letters(scene, now):
            await _say(letter, derived_id(letter.event_type, letter.incident_id, letter.key))


async def _say(event: EventData, event_id: str) -> None:
    if event_id in _said:
        return
    await publish(app, Outgoing(topics.topic_for(event.event_type), make_event(event, source=SOURCE,
                                                                               event_id=event_id)))
    _said.add(event_id)
    log.warning("tkp alert: %s", event.event_type, extra={"incident_id": getattr(event, "incident_id", None),
                                                          "duty_id": getattr(event, "duty_id", None)})


