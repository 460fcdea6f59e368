"""Thin agents: decode, ask the domain, publish."""
from __future__ import annotations

import logging

from schemas import topics
from schemas.envelope import Envelope, derived_id, utcnow
from schemas.events import EventData, MergeIncidents, RegisterLp, ReportReceived, SplitReport
from schemas.registry import make_event
from services.streaming import Origin, Outgoing, Said, derived, handle_each, publish

from . import domain, timers as clock
from .app import (
    SERVICE, app, area_inbox, counters, incident_events, open_incidents, outcomes, recent_messages, settings,
    timers,
)
from .setup import build_tools

log = logging.getLogger(__name__)

tools = build_tools(settings)
area = domain.AreaState(open_incidents=open_incidents, counters=counters, outcomes=outcomes,
                        recent_messages=recent_messages)


@app.on_partitions_assigned.connect
async def open_incidents_changed_behind_the_grid(sender, assigned, **kwargs) -> None:
    # The table's recovery now fills and prunes it directly: the grid of the duplicate search is
    # built again before the next report (no report is handled until recovery is done).
    area.open_incidents.stale()
    log.info("partitions assigned (%d): the open incidents' grid is built again before the next report",
             len(assigned))


SOURCE = f"/spkt/{SERVICE}"


def emit(cause: Envelope, events: list[EventData]) -> list[Outgoing]:
    return derived(SOURCE, cause, events)


def on_area_message(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    now = utcnow()
    if isinstance(event, ReportReceived):
        return emit(envelope, domain.handle_report(event, envelope.id, area, tools, now))
    if isinstance(event, MergeIncidents):
        return emit(envelope, domain.handle_merge(event, envelope.id, area, now))
    if isinstance(event, SplitReport):
        return emit(envelope, domain.handle_split(event, envelope.id, area, tools, now))
    if isinstance(event, RegisterLp):
        return emit(envelope, domain.handle_register_lp(event, envelope.id, area, tools, now))
    return []  # the tkp service's commands share the topic, keyed by incident


def on_incident_event(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    return emit(envelope, clock.on_event(timers, envelope.type, event))


@app.agent(area_inbox, concurrency=1)
async def intake_area(stream):
    await handle_each(app, SERVICE, stream, on_area_message)


@app.agent(incident_events, concurrency=1)
async def intake_clock(stream):
    await handle_each(app, SERVICE, stream, on_incident_event)


_announced = Said()  # breaches said but not yet seen back by the clock agent


@app.timer(interval=1.0)
async def breach_targets() -> None:
    """Say each breach once; the clock agent records it when the event comes back."""
    for event in clock.due(timers, utcnow()):
        event_id = derived_id(event.event_type, event.incident_id, getattr(event, "target", "") or event.why)
        if event_id in _announced:
            continue
        await publish(app, Outgoing(topics.topic_for(event.event_type),
                                    make_event(event, source=SOURCE, event_id=event_id)))
        _announced.add(event_id)
