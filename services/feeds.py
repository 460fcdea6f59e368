"""Reading whole topics into a worker's memory, outside the consumer group.

Some state every worker needs whatever partitions it owns: dispatch's unit board (every unit),
notify's directory (every reporter's and unit's contact). Each worker reads all partitions of
those topics itself: the ones kept forever from the beginning, the bounded ones (positions) from
a recent window only, and then follows them. `caught_up` is set once it has read what was there
when it started.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import EnvelopeError
from schemas.events import EventData
from schemas.registry import parse
from spkt.settings import Settings

log = logging.getLogger(__name__)


async def follow(settings: Settings, *, name: str, from_beginning: tuple[str, ...], apply: Callable[[EventData], None],
                 caught_up: asyncio.Event, recent: Mapping[str, float] | None = None) -> None:
    """Run forever; restart the reader after any failure (what was applied stays applied).

    `recent`: topic -> seconds back to start from (the rest of a bounded topic is history)."""
    delay = 0.5
    while True:
        try:
            await _follow_once(settings, name, from_beginning, dict(recent or {}), apply, caught_up)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s feed failed, restarting: %s", name, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _follow_once(settings: Settings, name: str, from_beginning: tuple[str, ...], recent: dict[str, float],
                       apply: Callable[[EventData], None], caught_up: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # the consumer has no public call for this
        whole = [TopicPartition(t, p) for t in from_beginning for p in cluster.partitions_for_topic(t) or ()]
        windowed = {t: [TopicPartition(t, p) for p in cluster.partitions_for_topic(t) or ()] for t in recent}
        if not whole or any(not parts for parts in windowed.values()):
            raise RuntimeError(f"{name}: topics not found: run `spkt topics create`")
        parts = whole + [tp for tps in windowed.values() for tp in tps]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*whole)
        for topic, tps in windowed.items():
            since_ms = int((time.time() - recent[topic]) * 1000)
            found = await consumer.offsets_for_times({tp: since_ms for tp in tps})
            quiet = [tp for tp in tps if found.get(tp) is None]
            if quiet:  # in one request: one call per partition waits for each answer in turn
                await consumer.seek_to_end(*quiet)
            for tp in tps:
                if found.get(tp) is not None:
                    consumer.seek(tp, found[tp].offset)
        ends = await consumer.end_offsets(parts)
        pending = {tp: end for tp, end in ends.items() if end > await consumer.position(tp)}
        while True:
            if not pending and not caught_up.is_set():
                caught_up.set()
                log.info("%s caught up", name)
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                for message in messages:
                    try:
                        apply(parse(message.value)[1])
                    except EnvelopeError as exc:
                        # The consumer groups set such messages aside as dead letters.
                        log.debug("%s feed skipped a message: %s", name, exc)
                    if tp in pending and message.offset + 1 >= pending[tp]:
                        del pending[tp]
    finally:
        await consumer.stop()
