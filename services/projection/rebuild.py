"""`spkt projection rebuild`: the read model made again from Kafka, into a fresh database.

The read model is a projection: every row comes from an event kept on Kafka (forever, except
positions). Rebuilding reads every read-model topic from its beginning, outside the projection's
consumer group (the live one is not disturbed), applies each event with the same Projector the
live worker uses, and stops once it has read what was there when it started.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import func, select

from schemas import topics
from schemas.envelope import EnvelopeError
from schemas.registry import parse
from spkt.settings import Settings

from . import tables as t
from .projector import Projector

READ_MODEL_TOPICS = (topics.REPORTS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.UNIT_STATUS, topics.UNIT_POSITIONS,
                     topics.CLOSURES, topics.TKP, topics.TURJAWALI, topics.NOTIFICATIONS)
log = logging.getLogger(__name__)


class NotEmpty(RuntimeError):
    """The target database already holds a read model."""


@dataclass
class Rebuilt:
    applied: int = 0
    skipped: int = 0   # seen before (a duplicate on Kafka), or nothing for the read model
    unreadable: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def rebuild(settings: Settings, url: str, progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Apply every read-model event on Kafka to the (empty) database at `url`."""
    sessions = t.prepare(url)
    with sessions() as s:
        if s.scalar(select(func.count()).select_from(t.ProcessedEvent)):
            raise NotEmpty(f"{url} already holds a read model: rebuild into a fresh database")
    projector = Projector(sessions)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    started = time.monotonic()
    out = Rebuilt()
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # the consumer has no public call for this
        missing = [topic for topic in READ_MODEL_TOPICS if not cluster.partitions_for_topic(topic)]
        if missing:
            raise RuntimeError(f"topics not found: {', '.join(missing)}: run `spkt topics create`")
        parts = [TopicPartition(topic, p) for topic in READ_MODEL_TOPICS
                 for p in sorted(cluster.partitions_for_topic(topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        starts = {tp: await consumer.position(tp) for tp in parts}
        pending = {tp: end for tp, end in ends.items() if end > starts[tp]}
        total = sum(end - starts[tp] for tp, end in pending.items())
        done = 0
        # In the order the events were written (Kafka timestamps), across every partition of every
        # topic: the live projection reads them about so, and an event about an incident must not
        # come before the incident (a closure on its topic read before the opening on another).
        heads: dict = {tp: deque() for tp in pending}
        while pending:
            hungry = [tp for tp in pending if not heads[tp]]
            if hungry:
                batch = await consumer.getmany(*hungry, timeout_ms=1000, max_records=2000)
                for tp, messages in batch.items():
                    heads[tp].extend(m for m in messages if m.offset < pending.get(tp, -1))
                for tp in [tp for tp in hungry if not heads[tp]]:
                    if await consumer.position(tp) >= pending[tp]:  # only gaps were left (compaction, markers)
                        del pending[tp]
                if any(not heads[tp] for tp in pending):
                    continue  # wait until every unfinished partition has its next message at hand
                if not pending:
                    break
            tp = min(pending, key=lambda p: (heads[p][0].timestamp, p.topic, p.partition))
            message = heads[tp].popleft()
            done += 1
            try:
                envelope, event = parse(message.value)
            except EnvelopeError:
                out.unreadable += 1  # the live workers set these aside as dead letters
            else:
                applied = projector.apply(envelope, event, topic=tp.topic, partition=tp.partition,
                                          offset=message.offset)
                out.applied += applied
                out.skipped += not applied
                out.by_topic[tp.topic] = out.by_topic.get(tp.topic, 0) + 1
            if message.offset + 1 >= pending[tp]:
                del pending[tp]
            if progress is not None and done % 500 == 0:
                progress(done, total)
        if progress is not None:
            progress(done, total)
        projector.flush_positions()
    finally:
        await consumer.stop()
        sessions.kw["bind"].dispose()
    out.seconds = time.monotonic() - started
    return out


def run(settings: Settings, url: str, progress=None) -> Rebuilt:
    return asyncio.run(rebuild(settings, url, progress))
