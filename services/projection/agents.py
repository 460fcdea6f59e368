"""Thin agent: every event to the projector, with where it came from."""
from __future__ import annotations

from schemas.envelope import Envelope
from schemas.events import EventData
from services.streaming import Origin, handle_each

from .app import SERVICE, app, projector, read_model_events


def on_event(envelope: Envelope, event: EventData, origin: Origin) -> None:
    projector.apply(envelope, event, topic=origin.topic, partition=origin.partition, offset=origin.offset)


@app.agent(read_model_events, concurrency=1)
async def project(stream):
    await handle_each(app, SERVICE, stream, on_event)


@app.timer(interval=0.5)
async def flush_positions() -> None:
    projector.flush_positions()
