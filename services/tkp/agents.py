"""Thin agents: decode, ask the domain, publish."""
from __future__ import annotations

import logging

from schemas.envelope import Envelope
from schemas.events import EventData
from services.streaming import Origin, Outgoing, handle_each

from . import domain
from .app import SERVICE, app, incident_events

log = logging.getLogger(__name__)


def on_incident_event(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    note = domain.scene_note(envelope.type)
    if note:
        log.info(note, extra={"incident_id": getattr(event, "incident_id", None), "event_id": envelope.id,
                              "event_type": envelope.type})
    return []


@app.agent(incident_events, concurrency=1)
async def tkp_incident_events(stream):
    await handle_each(app, SERVICE, stream, on_incident_event)
