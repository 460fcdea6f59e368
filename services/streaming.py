"""What every faust worker shares: how its app is configured and how each message is handled.

One rule above all (shared/design/KAFKA.md, traps 1 and 2): an exception escaping an agent
acknowledges the message and it is never seen again. So each message is handled inside a try;
what cannot be handled goes to the dead-letter topic with the reason, and the agent carries on.
Publishing waits for the broker's acknowledgement (acks=all) before the offset moves on; while
the broker is away it retries rather than drop anything.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

import faust
from faust.transport.consumer import Consumer

from schemas.envelope import Envelope, EnvelopeError, utcnow
from schemas.events import EventData, MessageDeadLettered
from schemas.registry import make_event, parse
from schemas.topics import DEAD_LETTERS
from spkt.settings import Settings

log = logging.getLogger(__name__)


# --- offsets: committed by us, only for what a handler finished ---------------------------------
# faust-streaming 0.15.3 loses messages around rebalances. During one it skips messages it had
# already fetched and acks what it skips (streams.py: `do_ack or value is skipped_value`); it fills
# jumps in fetched offsets in as acknowledged "gaps"; and its check of the head of the acked
# offsets is off by one. Each lets a commit pass a message no handler saw, and after the next
# rebalance the new owner starts beyond it. Seen here: two intake workers, one killed mid-stream,
# 4 to 16 of 90 reports never handled. So faust keeps no offset bookkeeping and commits nothing;
# `OffsetKeeper` commits, per partition, the offset after the last message handled in order, and
# when it sees a jump it seeks back and reads the skipped messages again.


def _ack_without_bookkeeping(self: Consumer, message) -> bool:
    message.acked = True
    self._unacked_messages.discard(message)  # lets a rebalance wait for in-flight messages
    return False


def _commit_nothing(self: Consumer, tp) -> None:
    return None


Consumer.ack = _ack_without_bookkeeping
Consumer._new_offset = _commit_nothing

HANDLE, SEEN, SKIPPED = "handle", "seen", "skipped"


class OffsetKeeper:
    """The next offset to handle in each partition, and the offsets to commit (one per faust app)."""

    commit_every_s = 0.5
    rewind_patience_s = 5.0  # a seek whose offset has not come back by then is made again
    rewind_attempts = 2  # ... this many times, then the worker restarts

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.generation: int | None = None
        self.next: dict = {}  # tp -> next offset to handle
        self.pending: dict = {}  # tp -> offset to commit
        self.rewinding: dict = {}  # tp -> (offset we sought back to, when, seeks repeated)
        self.last_commit = 0.0

    def _start_generation(self) -> None:
        generation = self.app.consumer_generation_id
        if generation != self.generation:
            # A new assignment: start from the committed offsets faust has just sought to.
            # Progress not committed yet is handled again (handlers are idempotent).
            self.generation = generation
            self.next.clear()
            self.pending.clear()
            self.rewinding.clear()

    async def check(self, message) -> str:
        """HANDLE this message, or it was SEEN already, or it came after a jump: SKIPPED (re-read)."""
        self._start_generation()
        tp, offset = message.tp, message.offset
        expected = self.next.get(tp)
        if expected is None:
            expected = self.app.consumer._committed_offset.get(tp)
        if expected is None:
            # Never committed: the group reads this partition from its start (auto reset "earliest"),
            # so anything before the first message seen here was skipped, not absent.
            expected = (await self.app.consumer.earliest_offsets(tp)).get(tp)
        if expected is None or offset == expected:
            self.rewinding.pop(tp, None)
            return HANDLE
        if offset < expected:
            return SEEN
        rewind = self.rewinding.get(tp)
        if rewind is not None and rewind[0] == expected:
            return SKIPPED  # still draining what was fetched before our seek (watch() retries)
        earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp)
        if earliest is not None and earliest > expected:
            log.warning("%s: offsets %d..%d are gone (retention)", tp, expected, earliest - 1,
                        extra={"topic": tp.topic, "partition": tp.partition})
            expected = self.next[tp] = earliest
            if offset == expected:
                return HANDLE
        log.warning("%s: offsets %d..%d were skipped by the consumer; reading them again", tp, expected, offset - 1,
                    extra={"topic": tp.topic, "partition": tp.partition})
        self.rewinding[tp] = (expected, time.monotonic(), 0)
        await self.app.consumer.seek(tp, expected)
        return SKIPPED

    async def watch(self) -> None:
        """Seeks whose offset has not come back: seek again; after a few tries, restart the worker.

        Run by a timer, not per message: a partition can stall without delivering anything."""
        now = time.monotonic()
        for tp, (expected, since, attempts) in list(self.rewinding.items()):
            if now - since < self.rewind_patience_s:
                continue
            if attempts >= self.rewind_attempts:
                # The consumer will not give it back: a fresh process starts from the committed
                # offset, which never passed it (supervisord restarts us; the group rebalances).
                log.error("%s: offset %d never came back after %d seeks; restarting the worker", tp, expected,
                          attempts + 1, extra={"topic": tp.topic, "partition": tp.partition})
                self.rewinding.clear()
                await self.app.crash(RuntimeError(f"{tp} stuck before offset {expected}"))
                return
            log.warning("%s: offset %d has not come back after seeking; seeking again", tp, expected,
                        extra={"topic": tp.topic, "partition": tp.partition})
            self.rewinding[tp] = (expected, now, attempts + 1)
            await self.app.consumer.seek(tp, expected)

    def handled(self, message) -> None:
        self.next[message.tp] = message.offset + 1
        self.pending[message.tp] = message.offset + 1

    async def commit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.pending or (not force and now - self.last_commit < self.commit_every_s):
            return
        if self.app.consumer_generation_id != self.generation or not self.app.flow_control.is_active():
            return  # mid-rebalance: the next owner reads from the last commit
        offsets, self.pending = self.pending, {}
        self.last_commit = now
        await self.app.consumer._commit(offsets)


# Kept in a dead letter at most; the rest of an oversized message is cut (and says so).
DEAD_LETTER_VALUE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Outgoing:
    topic: str
    envelope: Envelope

    @property
    def key(self) -> bytes:
        return (self.envelope.subject or self.envelope.id).encode()


@dataclass(frozen=True)
class Origin:
    """Where a message was read: kept with what it changed, and named in dead letters."""

    topic: str
    partition: int
    offset: int


Handler = Callable[[Envelope, EventData, Origin], Awaitable[Iterable[Outgoing] | None] | Iterable[Outgoing] | None]


def make_app(service: str, settings: Settings) -> faust.App:
    brokers = [f"kafka://{hostport}" for hostport in settings.bootstrap.split(",")]
    datadir = settings.state_dir / "faust" / service
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"spkt-{service}",
        broker=brokers,
        # Trap 9: every worker would open a web server on 6066 on all addresses.
        web_enabled=False,
        # Trap 5: our topics are created by `spkt topics create`; faust declares only its own
        # internal ones (the assignor's leader topic), with partitions matching ours.
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        store="memory://",
        producer_acks=-1,
        # Trap 7: the session must not exceed the request timeout.
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.kafka_session_timeout_s / 4),
        broker_request_timeout=max(40.0, settings.kafka_session_timeout_s * 2),
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(datadir),
    )
    app.offsets = OffsetKeeper(app)

    @app.timer(interval=OffsetKeeper.commit_every_s)
    async def commit_handled_offsets() -> None:
        await app.offsets.watch()
        await app.offsets.commit(force=True)

    return app


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


async def publish(app: faust.App, out: Outgoing) -> None:
    """Send and wait for the acknowledgement; retry while the broker is unreachable."""
    delay = 0.2
    while True:
        try:
            await app.producer.send_and_wait(out.topic, out.key, out.envelope.to_bytes(), partition=None,
                                             timestamp=None, headers=None)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker is away: never drop, try again
            log.warning("publish to %s failed, retrying: %s", out.topic, exc,
                        extra={"event_id": out.envelope.id, "event_type": out.envelope.type})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def dead_letter(service: str, message, exc: BaseException) -> Outgoing:
    """The dead letter for a message `service` could not handle (pure: builds, does not send)."""
    value: bytes = message.value or b""
    truncated = len(value) > DEAD_LETTER_VALUE_LIMIT
    value = value[:DEAD_LETTER_VALUE_LIMIT]
    try:
        text, encoding = value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(value).decode(), "base64"
    key = message.key.decode("utf-8", "replace") if isinstance(message.key, bytes) else message.key
    data = MessageDeadLettered(
        service=service,
        reason=str(exc) or type(exc).__name__,
        error_kind="invalid_message" if isinstance(exc, EnvelopeError) else "handler_error",
        original_topic=message.topic,
        original_partition=message.partition,
        original_offset=message.offset,
        original_key=key,
        original_value=text,
        original_value_encoding=encoding,
        original_value_truncated=truncated,
        original_timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        failed_at=utcnow(),
    )
    envelope = make_event(data, source=f"/spkt/{service}")
    # Keyed like the original so its dead letters stay in order with it.
    return Outgoing(DEAD_LETTERS, envelope.model_copy(update={"subject": key or message.topic}))


async def handle_each(app: faust.App, service: str, stream, handler: Handler) -> None:
    """Decode each message, let the domain decide, publish what it decided; never let one kill the agent."""
    async for event in stream.events():
        message = event.message
        if await app.offsets.check(message) != HANDLE:
            continue
        try:
            envelope, data = parse(message.value)
            result = handler(envelope, data, Origin(message.topic, message.partition, message.offset))
            if asyncio.iscoroutine(result):
                result = await result
            outgoing = list(result or ())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            level = logging.WARNING if isinstance(exc, EnvelopeError) else logging.ERROR
            log.log(level, "message set aside to dead letters: %s", exc, exc_info=level == logging.ERROR,
                    extra={"topic": message.topic, "partition": message.partition, "offset": message.offset,
                           "reason": str(exc)})
            await publish(app, dead_letter(service, message, exc))
        else:
            for out in outgoing:
                await publish(app, out)
        app.offsets.handled(message)
        await app.offsets.commit()
