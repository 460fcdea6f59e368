"""Thin agents: every event to the projector, with where it came from (GPS positions apart)."""
from __future__ import annotations

import asyncio

from schemas.envelope import Envelope
from schemas.events import EventData
from services.streaming import Origin, handle_each

from .app import SERVICE, app, projector, read_model_events, unit_positions


async def on_event(envelope: Envelope, event: EventData, origin: Origin) -> None:
    projector.apply(envelope, event, topic=origin.topic, partition=origin.partition, offset=origin.offset)
    # Let the other agent and the timers run between messages: with a backlog buffered, faust
    # hands an agent message after message without returning to the event loop, and 2,000 unit
    # registrations kept the positions agent (and the commits and health) waiting until the
    # worker counted itself stalled and restarted (benchmarks/pipeline.py).
    await asyncio.sleep(0)


@app.agent(read_model_events, concurrency=1)
async def project(stream):
    await handle_each(app, SERVICE, stream, on_event)


@app.agent(unit_positions, concurrency=1)
async def project_positions(stream):
    await handle_each(app, SERVICE, stream, on_event)


@app.timer(interval=0.5)
async def flush_positions() -> None:
    projector.flush_positions()
