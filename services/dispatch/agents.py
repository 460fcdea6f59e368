"""Thin agents: decode, ask the domain, publish."""
from __future__ import annotations

import logging

from schemas import topics
from schemas.envelope import Envelope, derived_id, utcnow
from schemas.events import (
    AssignmentDeclined, AssignmentEnded, AssignmentUnacknowledged, AssignUnit, ChangeUnitStatus, EventData,
    IncidentClosed, IncidentMerged, IncidentOpened, IncidentRelocated, RecommendationRequested, RespondToAssignment,
    UnitAssigned, UnitRegistered, UnitStatusChanged,
)
from schemas.registry import caused_by, make_event, record_events, replay_events
from services.streaming import OutcomeKeeper, Origin, Outgoing, Said, derived, handle_each, publish

from . import board_feed, lifecycle
from .app import (
    SERVICE, app, board, board_caught_up, holds, incident_events, incident_facts, settings, unit_inbox, unit_outcomes,
)
from .board import incident_facts_of, incident_view, ranking_rules

SOURCE = f"/spkt/{SERVICE}"
log = logging.getLogger(__name__)
RULES = ranking_rules(settings)
AUTO_ASSIGN = frozenset(c.strip() for c in settings.auto_assign_categories.split(",") if c.strip())
AUTOMATIC_BY = "dispatch (otomatis)"


def emit(cause: Envelope, events: list[EventData]) -> list[Outgoing]:
    return derived(SOURCE, cause, events)


@app.task
async def follow_unit_board() -> None:
    await board_feed.follow(settings, board, board_caught_up)


# --- one unit at a time: assignments and status ---------------------------------------------------
DECIDE = {AssignUnit: lifecycle.assign, ChangeUnitStatus: lifecycle.change_status,
          RespondToAssignment: lifecycle.respond}


async def on_unit_message(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    held = holds.get(event.unit_id)
    hold = dict(held) if held else lifecycle.new_hold(event.unit_id)
    hold["partition"] = origin.partition  # the timer alerts only for partitions this worker owns
    if isinstance(event, UnitRegistered):
        lifecycle.registered(hold, event)
        log.info("unit registered: %s (%s)", event.callsign, event.kind,
                 extra={"unit_id": event.unit_id, "partition": origin.partition, "offset": origin.offset})
    elif isinstance(event, UnitStatusChanged):
        lifecycle.observed(hold, event)
    elif (decide := DECIDE.get(type(event))) is not None:
        recorded = unit_outcomes.get(envelope.id)
        if recorded is not None:  # delivered again after a restart: say exactly what was said
            return emit(envelope, replay_events(recorded))
        if not hold["registered"]:
            # The register is also on the board, read from the topic's beginning by this worker:
            # a registration this agent has not read (yet) must not refuse a registered unit.
            await board_caught_up.wait()
            if (info := board.units.get(event.unit_id)) is not None:
                hold.update(registered=True, callsign=info.callsign, kind=info.kind)
        now = utcnow()
        decision = decide(hold, event, now)
        holds[event.unit_id] = hold
        unit_outcomes[envelope.id] = record_events(decision.events, now)
        _old_outcomes.tick(now)
        return emit(envelope, decision.events)
    else:
        return []
    if hold != held:  # our own status events come back here: most change nothing, write nothing
        holds[event.unit_id] = hold
    return []


_old_outcomes = OutcomeKeeper(unit_outcomes)


@app.agent(unit_inbox, concurrency=1)
async def dispatch_units(stream):
    await handle_each(app, SERVICE, stream, on_unit_message)


_alerted = Said()  # assignments alerted on


@app.timer(interval=1.0)
async def unacknowledged_assignments() -> None:
    """No acknowledgement in time: an alert on the incident, which the incident agent re-recommends on."""
    now = utcnow()
    # Standby copies of other workers' holds are here too, and may lag: only the owner alerts.
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topics.UNIT_COMMANDS}
    for hold in list(holds.values()):
        if not hold or hold.get("assignment_id") in _alerted or hold.get("partition") not in owned:
            continue
        alert = lifecycle.unacknowledged(hold, now, settings.assignment_ack_s)
        if alert is None:
            continue
        event_id = derived_id(alert.event_type, alert.assignment_id)
        await publish(app, Outgoing(topics.ASSIGNMENTS, make_event(alert, source=SOURCE, event_id=event_id)))
        _alerted.add(alert.assignment_id)


# --- one incident at a time: what to recommend ---------------------------------------------------
RECOMMEND_ON = (RecommendationRequested, AssignmentDeclined, AssignmentUnacknowledged, IncidentRelocated)


async def on_incident_message(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    incident_id = getattr(event, "incident_id", None)
    if incident_id is None:
        return []
    facts = incident_facts.get(incident_id)
    changed = True
    if isinstance(event, IncidentOpened):
        facts = incident_facts_of(event)
    elif isinstance(event, (IncidentMerged, IncidentClosed)):
        if facts is None:
            return []
        incident_facts.pop(incident_id, None)
        if isinstance(event, IncidentClosed):  # its units are free again
            return [Outgoing(topics.UNIT_COMMANDS, make_event(command, source=SOURCE, event_id=command.command_id,
                                                              **caused_by(envelope)))
                    for command in lifecycle.release_on_close(incident_id, facts["assigned"], utcnow(), envelope.id)]
        return []
    elif facts is None:
        return []
    elif isinstance(event, UnitAssigned):
        facts["assigned"] = sorted(set(facts["assigned"]) | {event.unit_id})
    elif isinstance(event, AssignmentEnded):
        facts["assigned"] = [u for u in facts["assigned"] if u != event.unit_id]
    elif isinstance(event, AssignmentDeclined):  # not proposed again for this incident
        facts["exclude"] = sorted(set(facts.get("exclude", [])) | {event.unit_id})
    elif isinstance(event, IncidentRelocated):
        facts["lat"], facts["lon"] = event.location.lat, event.location.lon
    else:
        # Nothing kept here changes (our own recommendations come back this way): writing the
        # table anyway doubled its changelog, which a restarted worker replays before it works.
        changed = False
    if changed:
        incident_facts[incident_id] = facts
    if not isinstance(event, (IncidentOpened,) + RECOMMEND_ON):
        return []
    # Recommending from a half-loaded board would miss units: wait for the catch-up once.
    await board_caught_up.wait()
    recommendation = board.recommend(incident_view(facts), utcnow(), RULES, trigger=envelope.type)
    out = [Outgoing(topics.ASSIGNMENTS, make_event(
        recommendation, source=SOURCE, event_id=derived_id("dispatch.recommended", envelope.id),
        **caused_by(envelope)))]
    if isinstance(event, IncidentOpened) and facts["category"] in AUTO_ASSIGN and recommendation.candidates:
        top = recommendation.candidates[0]
        command_id = derived_id("auto-assign", envelope.id)
        command = AssignUnit(command_id=command_id, unit_id=top.unit_id, incident_id=incident_id,
                             requested_by=AUTOMATIC_BY, requested_at=utcnow(), automatic=True)
        out.append(Outgoing(topics.UNIT_COMMANDS, make_event(command, source=SOURCE, event_id=command_id,
                                                             **caused_by(envelope))))
    return out


@app.agent(incident_events, concurrency=1)
async def dispatch_incidents(stream):
    await handle_each(app, SERVICE, stream, on_incident_message)
