"""Thin agents: every event to the projector, several a transaction, with where it came from (GPS
positions apart)."""
from __future__ import annotations

import asyncio

from schemas.envelope import Envelope
from schemas.events import EventData
from services.streaming import Origin, handle_each, set_aside

from . import positions
from .app import SERVICE, app, projector, read_model_events, settings
from .batches import Batches


async def _set_aside(message, exc: BaseException) -> None:
    await set_aside(app, SERVICE, message, exc)


# Several events a transaction (batches.py). The commit timer (every half second) stores what has
# gathered before it commits any offset past it.
batches = Batches(projector, lambda origin, exc: _set_aside(origin.message, exc))
app.offsets.before_commit = batches.flush


async def on_event(envelope: Envelope, event: EventData, origin: Origin) -> None:
    await batches.add(envelope, event, origin)
    # Let the positions and the timers run between messages: with a backlog buffered, faust
    # hands an agent message after message without returning to the event loop, and 2,000 unit
    # registrations kept the positions (and the commits and health) waiting until the worker
    # counted itself stalled and restarted (benchmarks/pipeline.py).
    await asyncio.sleep(0)


@app.agent(read_model_events, concurrency=1)
async def project(stream):
    await handle_each(app, SERVICE, stream, on_event)


@app.task
async def project_positions() -> None:
    """GPS fixes, with a consumer group of their own outside faust (positions.py)."""
    await positions.follow(settings, projector, _set_aside)
