"""Thin agents: every event to the projector, with where it came from; GPS positions apart."""
from __future__ import annotations

import asyncio

from schemas.envelope import Envelope
from schemas.events import EventData, UnitPositionReported
from schemas.topics import UNIT_POSITIONS
from services import feeds
from services.streaming import Origin, handle_each

from .app import SERVICE, app, projector, read_model_events, settings


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


@app.task
async def follow_positions() -> None:
    """GPS fixes, hundreds a second, read as the dispatch board reads them (services/feeds.py: one
    pydantic pass a fix, outside the consumer group), from SPKT_POSITION_MAX_AGE_S back at start:
    a unit's board position needs its latest fix, and older ones are stale. Through a faust agent
    of their own they held up the reports, incidents and recommendations: at 10 reports a second
    a recommendation reached the read model 14 s (median) after Kafka had it, 3.9 s read this way,
    with a third less of the projection's CPU (benchmarks/pipeline.py)."""
    await feeds.follow(settings, name="GPS positions", from_beginning=(), apply=projector.hold_position,
                       caught_up=asyncio.Event(), recent={UNIT_POSITIONS: settings.position_max_age_s},
                       typical={UNIT_POSITIONS: UnitPositionReported})


@app.timer(interval=0.5)
async def flush_positions() -> None:
    projector.flush_positions()
