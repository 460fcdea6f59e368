"""GPS positions into the read model: a consumer group of their own, outside faust.

Hundreds of fixes a second went through a faust agent at about a millisecond each, and held up the
reports, incidents and recommendations the other agent projects: at 10 reports a second a
recommendation reached the read model 14.4 s (median) after Kafka had it (benchmarks/pipeline.py).
Here a fix costs one pydantic pass (services/feeds.py `Reader`) and the projector's in-memory
hold. What this keeps of the faust path:

- resuming: group `spkt-projection-positions` commits offsets only after the fixes read up to them
  were written (`flush_positions`), so a restart never skips a fix it had not stored;
- dead letters: what cannot be read (or applied) is set aside, as every consumer group does;
- anything else valid on the topic goes through `Projector.apply`, as before.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import UnitPositionReported
from schemas.topics import PROJECTION_POSITIONS_GROUP, UNIT_POSITIONS
from services.feeds import Reader, keep_running
from spkt.settings import Settings

GROUP = PROJECTION_POSITIONS_GROUP
FLUSH_EVERY_S = 0.5


@dataclass(frozen=True)
class Read:
    """A record as the dead letters name it (faust's shape: timestamp in seconds)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None


async def follow(settings: Settings, projector, set_aside) -> None:
    """Run forever; restart the consumer after any failure (it resumes from its commits).

    `set_aside(read, exc)`: publishes the dead letter of a record that could not be handled."""
    reader = Reader(UnitPositionReported)
    await keep_running("GPS positions consumer", lambda: _follow_once(settings, projector, set_aside, reader))


async def _follow_once(settings: Settings, projector, set_aside, reader: Reader) -> None:
    session_ms = int(settings.kafka_session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        UNIT_POSITIONS, bootstrap_servers=settings.bootstrap, group_id=GROUP, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=session_ms,
        heartbeat_interval_ms=max(500, session_ms // 6), request_timeout_ms=max(40_000, 2 * session_ms),
        max_poll_interval_ms=1_000_000)
    await consumer.start()
    try:
        read_to: dict[TopicPartition, int] = {}
        flushed_at = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=int(FLUSH_EVERY_S * 1000), max_records=2000)
            for tp, records in batch.items():
                for record in records:
                    await _apply(projector, set_aside, reader, record)
                read_to[tp] = records[-1].offset + 1
                await asyncio.sleep(0)  # the agents run between batches (a catch-up reads thousands)
            if time.monotonic() - flushed_at >= FLUSH_EVERY_S:
                # Written first, then committed: a commit never runs ahead of what is stored.
                projector.flush_positions()
                flushed_at = time.monotonic()
                if read_to:
                    await consumer.commit(dict(read_to))
                    read_to.clear()
    finally:
        await consumer.stop()


async def _apply(projector, set_aside, reader: Reader, record) -> None:
    try:
        envelope, event = reader.read(record.value)
        projector.apply(envelope, event, topic=record.topic, partition=record.partition, offset=record.offset)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        seconds = record.timestamp / 1000 if record.timestamp is not None else None
        await set_aside(Read(record.topic, record.partition, record.offset, record.key, record.value, seconds), exc)
