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
from typing import Awaitable, Callable, Literal, Mapping, Optional

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError, create_model

from schemas.envelope import MAX_EVENT_BYTES, Envelope, EnvelopeError
from schemas.events import EventData
from schemas.registry import dataschema_of, parse
from spkt.settings import Settings

log = logging.getLogger(__name__)


async def follow(settings: Settings, *, name: str, from_beginning: tuple[str, ...], apply: Callable[[EventData], None],
                 caught_up: asyncio.Event, recent: Mapping[str, float] | None = None,
                 typical: Mapping[str, type[EventData]] | None = None) -> None:
    """Run forever; restart the reader after any failure (what was applied stays applied).

    `recent`: topic -> seconds back to start from (the rest of a bounded topic is history).
    `typical`: topic -> the event type (nearly) all its messages are, read in one pass (GPS fixes)."""
    readers = {topic: Reader(cls) for topic, cls in (typical or {}).items()}
    await keep_running(f"{name} feed", lambda: _follow_once(settings, name, from_beginning, dict(recent or {}),
                                                            apply, caught_up, readers))


async def seek_since(consumer: AIOKafkaConsumer, tps: list[TopicPartition], seconds: float) -> None:
    """Each of `tps` to its first message of the last `seconds`, or past its end if none."""
    since_ms = int((time.time() - seconds) * 1000)
    # The ends first: a partition with nothing since then is read from where it ended before the
    # question, so a message written while it is asked is read, not skipped.
    ended = await consumer.end_offsets(tps)
    found = await consumer.offsets_for_times({tp: since_ms for tp in tps})
    for tp in tps:
        consumer.seek(tp, found[tp].offset if found.get(tp) is not None else ended[tp])


async def keep_running(what: str, run_once: Callable[[], Awaitable[None]]) -> None:
    """`run_once()` again after any failure, forever, waiting longer each time (up to 10 s): the
    readers of whole topics outside the consumer groups (the broker may be away for a while)."""
    delay = 0.5
    while True:
        try:
            await run_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed, restarting: %s", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _follow_once(settings: Settings, name: str, from_beginning: tuple[str, ...], recent: dict[str, float],
                       apply: Callable[[EventData], None], caught_up: asyncio.Event,
                       readers: dict[str, "Reader"]) -> None:
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
            await seek_since(consumer, tps, recent[topic])
        ends = await consumer.end_offsets(parts)
        starts = {tp: await consumer.position(tp) for tp in ends}
        pending = {tp: end for tp, end in ends.items() if end > starts[tp]}
        waiting = sum(end - starts[tp] for tp, end in pending.items())
        if not caught_up.is_set():
            log.info("%s: reading %d messages to catch up", name, waiting)
        started, read = time.monotonic(), 0
        while True:
            if not pending and not caught_up.is_set():
                caught_up.set()
                seconds = time.monotonic() - started
                log.info("%s caught up: %d messages in %.1f s (%.0f a second)", name, read, seconds,
                         read / seconds if seconds > 0 else 0.0)
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                read += len(messages)
                event_of = readers[tp.topic].event_of if tp.topic in readers else _event_of
                for message in messages:
                    try:
                        apply(event_of(message.value))
                    except EnvelopeError as exc:
                        # The consumer groups set such messages aside as dead letters.
                        log.debug("%s feed skipped a message: %s", name, exc)
                # A batch holds one partition's messages in order: its last says how far we are.
                if messages and tp in pending and messages[-1].offset + 1 >= pending[tp]:
                    del pending[tp]
    finally:
        await consumer.stop()


def _event_of(raw: bytes | None) -> EventData:
    return parse(raw)[1]


class Reader:
    """Reads the envelope and the data of one event type in a single pass of pydantic over the
    JSON: a GPS fix in 10 µs where `parse` (envelope, then data) takes 17, which is what lets the
    board keep up (benchmarks/positions.py). The same rules hold: the
    model is the envelope's with `type`, `dataschema` and `data` narrowed to that event's; a
    message it refuses (another type, or invalid) goes through `parse`, which reads it or says why
    not."""

    def __init__(self, cls: type[EventData]) -> None:
        self.model = create_model(
            f"{cls.__name__}Envelope", __base__=Envelope,
            type=(Literal[cls.event_type], ...),  # type: ignore[valid-type]
            dataschema=(Optional[Literal[dataschema_of(cls)]], None),  # type: ignore[valid-type]
            data=(cls, ...))

    def event_of(self, raw: bytes | None) -> EventData:
        return self.read(raw)[1]

    def read(self, raw: bytes | None) -> tuple[Envelope, EventData]:
        """The envelope and its data; EnvelopeError for what no consumer can read."""
        if raw is not None and len(raw) <= MAX_EVENT_BYTES:
            try:
                envelope = self.model.model_validate_json(raw)
                return envelope, envelope.data
            except ValidationError:
                pass
        return parse(raw)
