"""Thin agents: decode, ask the domain, publish."""
from __future__ import annotations

from schemas import topics
from schemas.envelope import Envelope, derived_id
from schemas.events import EventData, ReportReceived
from schemas.registry import caused_by, make_event
from services.streaming import Origin, Outgoing, handle_each

from . import domain
from .app import SERVICE, app, reports


def on_report(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    if not isinstance(event, ReportReceived):
        return []
    incident = domain.open_incident(event)
    opened = make_event(incident, source=f"/spkt/{SERVICE}", event_id=derived_id("incident.opened", envelope.id),
                        **caused_by(envelope))
    return [Outgoing(topics.INCIDENTS, opened)]


@app.agent(reports, concurrency=1)
async def intake_reports(stream):
    await handle_each(app, SERVICE, stream, on_report)
