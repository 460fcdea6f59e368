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
import concurrent.futures
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Awaitable, Callable, Iterable

import faust
from faust.transport.consumer import Consumer

from schemas.envelope import Envelope, EnvelopeError, derived_id, utcnow
from schemas.events import EventData, MessageDeadLettered
from schemas.registry import caused_by, make_event, parse
from schemas.topics import DEAD_LETTERS, topic_for
from services.redact import redact
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
# when it sees a jump it reads the skipped messages from Kafka (or seeks back) and handles them.


def _ack_without_bookkeeping(self: Consumer, message) -> bool:
    message.acked = True
    self._unacked_messages.discard(message)  # lets a rebalance wait for in-flight messages
    return False


def _commit_nothing(self: Consumer, tp) -> None:
    return None


Consumer.ack = _ack_without_bookkeeping
Consumer._new_offset = _commit_nothing


# --- table changelogs: what faust fetches and drops is fetched again ---------------------------
# faust-streaming 0.15.3 also drops table changelog records it has fetched, and its consumer
# stays past them. A fetch waits up to a second; when a rebalance comes meanwhile, table recovery
# sends a partition it now owns back to the start, the fetch returns those records, the flow has
# stopped, and `getmany` drops the batch and seeks back only the partitions with committed
# offsets (the streams'). Recovery then waits for records already read, and the worker's streams
# stall until the watchdog restarts it: 20 s without a dispatch worker. benchmarks/recovery.py
# failed so in 7 of 21 runs with handlers that do not wait for each acknowledgement (the timing
# differs), and 0 of 10 with this. So, after each fetch, every changelog partition whose records
# `getmany` did not hand on is sent back to the first of them. Reading a changelog record twice
# is harmless: recovery skips offsets it has seen.


def changelog_records_dropped(fetched, handed_on: dict, is_changelog: Callable[[object], bool]) -> dict:
    """{changelog partition: the first offset fetched and not handed on}.

    `fetched`: the fetch's records by partition, in offset order; `handed_on`: the last offset
    handed on by partition."""
    dropped = {}
    for tp, records in (fetched or {}).items():
        if not records or not is_changelog(tp):
            continue
        last = handed_on.get(tp)
        first = next((r.offset for r in records if last is None or r.offset > last), None)
        if first is not None:
            dropped[tp] = first
    return dropped


_faust_wait_next_records = Consumer._wait_next_records
_faust_getmany = Consumer.getmany


async def _wait_next_records_kept(self: Consumer, timeout: float):
    records, active_partitions = await _faust_wait_next_records(self, timeout)
    self.spkt_fetched = records
    return records, active_partitions


async def _getmany_fetching_dropped_changelogs_again(self: Consumer, timeout: float):
    self.spkt_fetched = None
    handed_on: dict = {}
    async for tp, message in _faust_getmany(self, timeout):
        handed_on[tp] = message.offset
        yield tp, message
    fetched, self.spkt_fetched = self.spkt_fetched, None
    dropped = changelog_records_dropped(fetched, handed_on, self._is_changelog_tp)
    if dropped:
        assigned = self.assignment()
        for tp, offset in dropped.items():
            if tp in assigned:
                log.info("changelog %s[%d]: records from offset %d were fetched and dropped; reading them again",
                         tp.topic, tp.partition, offset)
                await self.seek(tp, offset)


Consumer._wait_next_records = _wait_next_records_kept
Consumer.getmany = _getmany_fetching_dropped_changelogs_again

HANDLE, SEEN, SKIPPED = "handle", "seen", "skipped"


@dataclass(frozen=True)
class Stall:
    """A partition with messages waiting and nothing handled from it for `quiet_s`."""

    tp: object
    position: int
    waiting: int
    quiet_s: float

    @property
    def reason(self) -> str:
        return (f"partition {self.tp.topic}[{self.tp.partition}] stalled at offset {self.position} "
                f"with {self.waiting} waiting for {self.quiet_s:.0f} s")


def _iso(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="seconds")


class OffsetKeeper:
    """The next offset to handle in each partition, and the offsets to commit (one per faust app)."""

    commit_every_s = 0.5
    commit_timeout_s = 5.0  # a commit still waiting by then is given up and retried with newer offsets
    rewind_patience_s = 5.0  # a seek whose offset has not come back by then is made again
    rewind_attempts = 2  # ... this many times, then the worker restarts

    def __init__(self, app: faust.App, lookup: "OffsetLookup") -> None:
        self.app = app
        self.lookup = lookup
        self.generation: int | None = None
        self.next: dict = {}  # tp -> next offset to handle
        self.pending: dict = {}  # tp -> offset to commit
        # What handled messages led to, sent without waiting (publish(..., acknowledged=False)):
        # their offsets are committed only once every one of these is on the broker.
        self.in_flight: list[asyncio.Future] = []
        # Awaited before each commit: handlers that defer their work (the projection's batches)
        # finish what the offsets cover.
        self.before_commit: Callable[[], Awaitable[object]] | None = None
        self.rewinding: dict = {}  # tp -> (offset we sought back to, when, seeks repeated)
        self.progress_at: dict = {}  # tp -> when a message of it was last handled
        self.idle_at: dict = {}  # tp -> when check_stalled last saw nothing waiting in it
        self.generation_at = time.monotonic()
        self.last_stall_check = 0.0
        self.last_commit = 0.0
        self.paused_since: float | None = None  # when check_stalled first saw the flow suspended
        # Readiness (written to the health file by `write_health`, read by `spkt status`):
        self.stalled: dict = {}  # tp -> Stall, for partitions with messages waiting and no progress
        self.ends: dict = {}  # tp -> end offset, as Kafka last said (refreshed by check_stalled)
        self.starts: dict = {}  # tp -> committed offset of a partition nothing was handled from yet
        self.last_handled_wall: float | None = None  # time.time() of the last message handled
        self.health_path = None  # set by make_app; None: no health file
        self.health_service = ""
        self.last_health_write = 0.0
        self.health_writing: concurrent.futures.Future | None = None  # the write in flight, if any
        self._health_writer: concurrent.futures.ThreadPoolExecutor | None = None

    def _start_generation(self) -> None:
        generation = self.app.consumer_generation_id
        if generation != self.generation:
            # A new assignment: each partition starts from what the group committed (asked of
            # Kafka in check). Progress not committed yet is handled again (handlers are idempotent).
            self.generation = generation
            self.generation_at = time.monotonic()
            self.progress_at.clear()
            self.next.clear()
            self.pending.clear()
            self.rewinding.clear()
            self.stalled.clear()
            self.starts.clear()

    async def check(self, message) -> str | list:
        """HANDLE this message, or it was SEEN already, or it came after a jump: the skipped
        messages, read from Kafka, to handle first (then this one), or SKIPPED (sought back)."""
        self._start_generation()
        tp, offset = message.tp, message.offset
        expected = self.next.get(tp)
        if expected is None:
            # The first message of a partition in this assignment: where the group stands is asked
            # of Kafka, not of faust, whose record of committed offsets is filled in after its seek
            # (messages can overtake it) and was seen to drop a partition's messages as "seen".
            # A partition never committed is read from its start (auto reset "earliest"), so
            # anything before the first message seen here was skipped, not absent.
            expected = await self.lookup.start_of(tp)
            if expected is not None:
                self.next[tp] = expected
        if expected is None or offset == expected:
            self.rewinding.pop(tp, None)
            return HANDLE
        if offset < expected:
            log.debug("%s: offset %d seen already (next %d)", tp, offset, expected,
                      extra={"topic": tp.topic, "partition": tp.partition})
            return SEEN
        rewind = self.rewinding.get(tp)
        if rewind is not None and rewind[0] == expected:
            log.debug("%s: offset %d dropped while rewinding to %d", tp, offset, expected,
                      extra={"topic": tp.topic, "partition": tp.partition})
            return SKIPPED  # still draining what was fetched before our seek (watch() retries)
        earliest = await self.lookup.earliest_of(tp)
        if earliest is not None and earliest > expected:
            log.warning("%s: offsets %d..%d are gone (retention)", tp, expected, earliest - 1,
                        extra={"topic": tp.topic, "partition": tp.partition})
            expected = self.next[tp] = earliest
            if offset == expected:
                return HANDLE
        missed = await self.lookup.read_range(tp, expected, offset)
        if missed is not None and [m.offset for m in missed] == list(range(expected, offset)):
            # Read straight from Kafka and handled before this one: no seek, whose offset faust
            # was seen not to give back (the agent then waited for it for good).
            log.warning("%s: offsets %d..%d were skipped by the consumer; read them from Kafka", tp, expected,
                        offset - 1, extra={"topic": tp.topic, "partition": tp.partition})
            return missed
        log.warning("%s: offsets %d..%d were skipped by the consumer; reading them again", tp, expected, offset - 1,
                    extra={"topic": tp.topic, "partition": tp.partition})
        self.rewinding[tp] = (expected, time.monotonic(), 0)
        await self.app.consumer.seek(tp, expected)
        return SKIPPED

    stall_check_every_s = 2.0
    unready_after_s = 10.0  # a partition with messages waiting and none handled for this long: unready
    stall_after_s = 20.0  # ... and for this long: stuck; the worker restarts
    busy_stall_after_s = 120.0  # ... but while the worker handles other partitions' messages
    # A rebalance (faust's flow suspended) that has not ended by then will not end by itself (a
    # member that left the group while its buffers were full waits for a fetch to rejoin, and faust
    # for an assignment to fetch again): restart. Replaying changelogs is recovery, not this, and
    # gets the longer bound.
    rebalance_stuck_after_s = 90.0
    recovery_stuck_after_s = 600.0

    async def check_stalled(self) -> None:
        """Partitions of ours with messages waiting that nothing has been handled from for a while.

        After `unready_after_s` the worker is unready (its health file says which partition, where
        and how many wait) and says so in its log; after `stall_after_s` it restarts, since the
        consumer was seen to stop delivering a partition for good (after a restart, in CI), and a
        fresh process starts from the committed offset (supervisord restarts it)."""
        now = time.monotonic()
        if now - self.last_stall_check < self.stall_check_every_s:
            return
        self.last_stall_check = now
        self._start_generation()
        if not self.app.flow_control.is_active():  # mid-rebalance: partitions are not ours to judge
            await self._check_rebalance(now)
            return
        self.paused_since = None
        tps = [tp for tp in self.app.consumer.assignment() if tp.topic.startswith("spkt.")]
        # Every partition's end, for the health file's lag; one request however many there are.
        ends = await self.lookup.latest_of(tps) if tps else {}
        if ends:
            self.ends = {tp: ends[tp] for tp in tps if tp in ends}
        threshold = min(self.unready_after_s, self.stall_after_s)
        # Quiet since the last message handled, the assignment, or the last check that found
        # nothing waiting (`idle_at`). Without the last, a partition idle since its assignment
        # that gets a message while the agent is busy with others (a burst of poison messages,
        # each one dead-lettered) counted as stuck for as long as it had been idle, and the
        # worker restarted although nothing was wrong (seen in test_poison_messages).
        quiet = {tp: now - max(self.progress_at.get(tp, 0.0), self.generation_at, self.idle_at.get(tp, 0.0))
                 for tp in tps}
        stalled: dict = {}
        for tp, quiet_for in quiet.items():
            if tp not in ends:
                continue
            position = await self._position(tp)  # known once a partition was handled or asked about
            if position is not None and ends[tp] <= position:
                self.idle_at[tp] = now
            elif position is not None and quiet_for > threshold:
                stalled[tp] = Stall(tp, position, ends[tp] - position, quiet_for)
        if not ends and tps:
            stalled = {tp: s for tp, s in self.stalled.items() if tp in quiet}  # Kafka cannot say: as before
        for tp, stall in stalled.items():
            if tp not in self.stalled:
                log.error("%s; the worker is unready", stall.reason, extra={
                    "topic": tp.topic, "partition": tp.partition, "offset": stall.position, "lag": stall.waiting,
                    "reason": "stalled"})
        for tp in self.stalled:
            if tp not in stalled:
                log.info("%s[%d] is making progress again", tp.topic, tp.partition,
                         extra={"topic": tp.topic, "partition": tp.partition})
        self.stalled = stalled
        # A worker busy with other partitions (a surge on one agent: faust feeds all agents through
        # one conductor) is behind, not stuck: restarting it would only replay from the last commit
        # and fall further behind (benchmarks/pipeline.py, memory.py). It stays unready meanwhile.
        busy = any(now - self.progress_at.get(tp, 0.0) < threshold for tp in tps)
        restart_after = self.busy_stall_after_s if busy else self.stall_after_s
        for tp, stall in stalled.items():
            if stall.quiet_s > restart_after:
                log.error("%s: %d messages waiting from offset %d and none handled for %.0f s; restarting the "
                          "worker", tp, stall.waiting, stall.position, restart_after,
                          extra={"topic": tp.topic, "partition": tp.partition, "offset": stall.position,
                                 "lag": stall.waiting, "reason": "stalled"})
                self.write_health(force=True)
                await self.app.crash(RuntimeError(f"{tp} stalled at offset {stall.position}"))
                return

    async def _check_rebalance(self, now: float) -> None:
        if self.paused_since is None:
            self.paused_since = now
            return
        recovering = bool(getattr(self.app, "in_recovery", False))
        limit = self.recovery_stuck_after_s if recovering else self.rebalance_stuck_after_s
        paused_for = now - self.paused_since
        if paused_for > limit:
            what = "recovering its tables" if recovering else "rebalancing"
            log.error("%s for %.0f s without an end; restarting the worker", what, paused_for,
                      extra={"reason": "rebalance stuck", "generation": self.app.consumer_generation_id})
            self.write_health(force=True)
            self.paused_since = None
            await self.app.crash(RuntimeError(f"{what} for {paused_for:.0f} s"))

    async def _position(self, tp) -> int | None:
        """The next offset to handle: ours, or (nothing handled yet) the group's, asked once per assignment."""
        position = self.next.get(tp)
        if position is None:
            position = self.starts.get(tp)
        if position is None:
            position = await self.lookup.start_of(tp)
            if position is not None:
                self.starts[tp] = position
        return position

    # --- health: `<state_dir>/run/health/<service>.json`, read by `spkt status` -------------------
    health_every_s = 1.0

    def health(self) -> dict:
        """Ready or not and why, and each assigned partition's position, end, lag and last progress."""
        mono, wall = time.monotonic(), time.time()

        def walltime(at: float | None) -> float | None:
            return None if not at else wall - (mono - at)

        try:
            assigned = sorted((tp for tp in self.app.consumer.assignment() if tp.topic.startswith("spkt.")),
                              key=lambda tp: (tp.topic, tp.partition))
        except Exception:  # the consumer is not there yet
            assigned = []
        generation = self.app.consumer_generation_id
        if self.stalled:
            ready, reason = False, "; ".join(s.reason for s in self.stalled.values())
        elif not generation:
            ready, reason = False, "joining the consumer group"
        elif not self.app.flow_control.is_active():
            ready, reason = False, "rebalancing"
            if self.paused_since is not None and mono - self.paused_since >= 10:
                reason += f" for {mono - self.paused_since:.0f} s"
        else:
            ready, reason = True, None
        partitions = []
        for tp in assigned:
            position = self.next.get(tp, self.starts.get(tp))
            end = self.ends.get(tp)
            progress = walltime(self.progress_at.get(tp))
            partitions.append({
                "topic": tp.topic, "partition": tp.partition, "position": position, "end": end,
                "lag": None if end is None or position is None else max(0, end - position),
                "last_progress_unix": progress, "last_progress_at": _iso(progress),
                "stalled": tp in self.stalled,
            })
        lags = [p["lag"] for p in partitions if p["lag"] is not None]
        return {
            "service": self.health_service, "pid": os.getpid(), "ready": ready, "reason": reason,
            "generation": generation, "updated_unix": wall, "updated_at": _iso(wall),
            "lag": sum(lags) if lags else None,
            "last_progress_unix": self.last_handled_wall, "last_progress_at": _iso(self.last_handled_wall),
            "partitions": partitions,
        }

    def write_health(self, force: bool = False) -> None:
        """The health document, written by a thread of its own: on the event loop, a write that
        waited for a busy disk stopped the worker's every agent, for 0.6 s seen under load
        (py-spy, benchmarks/pipeline.py). `force` writes at once, here (before a restart)."""
        now = time.monotonic()
        if self.health_path is None or (not force and now - self.last_health_write < self.health_every_s * 0.8):
            return
        if not force and self.health_writing is not None and not self.health_writing.done():
            return  # the disk is still busy with the last one: the next tick writes a fresh one
        self.last_health_write = now
        doc = self.health()
        if force:
            self._write_health_file(doc)
            return
        if self._health_writer is None:
            self._health_writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="health")
        self.health_writing = self._health_writer.submit(self._write_health_file, doc)

    def _write_health_file(self, doc: dict) -> None:
        try:
            from deploy.health import write_health

            write_health(self.health_path, doc)
        except Exception as exc:  # a full disk must not stop the worker; say so
            log.warning("could not write the health file %s: %s", self.health_path, exc)

    async def watch(self) -> None:
        """Seeks whose offset has not come back: seek again; after a few tries, restart the worker.
        And partitions that stopped delivering (check_stalled).

        Run by a timer, not per message: a partition can stall without delivering anything."""
        await self.check_stalled()
        self.write_health()
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

    def sent(self, delivery: asyncio.Future) -> None:
        """A message being handled sent this; its offset waits for the broker to acknowledge it."""
        self.in_flight.append(delivery)

    def handled(self, message) -> None:
        self.progress_at[message.tp] = time.monotonic()
        self.last_handled_wall = time.time()
        self.next[message.tp] = message.offset + 1
        self.pending[message.tp] = message.offset + 1

    async def commit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.pending or (not force and now - self.last_commit < self.commit_every_s):
            return
        # What these offsets cover is made durable first, and only what was handled before that
        # began is committed: a message handled meanwhile waits for the next commit.
        offsets = dict(self.pending)
        sends, self.in_flight = self.in_flight, []
        committed = False
        try:
            committed = await self._commit(now, offsets, sends)
        finally:
            if not committed:  # kept for the next try, ahead of what was sent since
                self.in_flight[:0] = [s for s in sends if not s.done() or s.cancelled() or s.exception()]

    async def _commit(self, now: float, offsets: dict, sends: list[asyncio.Future]) -> bool:
        """Commit `offsets` once what they cover is durable; False while it is not (yet)."""
        if self.before_commit is not None:
            # The handlers' deferred work (the projection's batches) is stored: a restart reads
            # again whatever was not.
            try:
                await self.before_commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("offsets not committed: storing what they cover failed: %s", exc or type(exc).__name__,
                          exc_info=True)
                return False
        try:
            # The tables' changelog writes (notify's outbox, intake's LP numbers, dispatch's holds)
            # are acknowledged, as faust's own commit does before committing: else a rebalance
            # restores a table from a changelog without them while their messages count as
            # handled (four receipts lost around a broker restart in CI).
            await asyncio.wait_for(self.app.producer.flush(), self.commit_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("offsets not committed: the tables' writes not acknowledged: %s", exc or type(exc).__name__)
            return False
        if any(not s.done() for s in sends):
            log.warning("offsets not committed: events sent are not acknowledged yet")
            return False
        failed = [s for s in sends if s.cancelled() or s.exception() is not None]
        if failed:
            # The producer gave up on them (it retries for producer_request_timeout, 20 min):
            # their messages must be handled again, so the worker restarts from the last commit.
            reason = "cancelled" if failed[0].cancelled() else repr(failed[0].exception())
            log.error("%d events sent were not delivered (%s); restarting from the last commit", len(failed), reason)
            await self.app.crash(RuntimeError(f"{len(failed)} events not delivered: {reason}"))
            return False
        if self.app.consumer_generation_id != self.generation or not self.app.flow_control.is_active():
            return False  # mid-rebalance: the next owner reads from the last commit
        for tp, offset in offsets.items():
            if self.pending.get(tp) == offset:
                del self.pending[tp]
        self.last_commit = now
        try:
            await asyncio.wait_for(self.app.consumer._commit(offsets), self.commit_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a rebalance or the broker: keep them for the next try
            log.warning("commit of %d partitions did not complete: %s", len(offsets), exc or type(exc).__name__)
            for tp, offset in offsets.items():
                self.pending[tp] = max(offset, self.pending.get(tp, offset))
        return True  # what the offsets cover is on the broker; the commit itself is retried apart


class OffsetLookup:
    """Where the group stands on a partition, asked of Kafka over connections of its own.

    faust's consumer can leave such a call hanging while it fetches (the agent, and with it every
    partition, then stops), so the questions go through kafka-python in a thread, with a timeout.
    """

    timeout_s = 10.0

    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = group
        self._admin = None
        self._lock = threading.Lock()  # two agents may ask at once; a kafka-python client is one caller's

    def _client(self):
        from kafka import KafkaAdminClient

        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap.split(","),
                                           client_id=f"{self.group}-offsets")
        return self._admin

    def _start_of(self, topic: str, partition: int) -> int | None:
        from kafka import TopicPartition

        ktp = TopicPartition(topic, partition)
        committed = self._client().list_group_offsets({self.group: [ktp]}).get(self.group, {}).get(ktp)
        if committed is not None and committed.offset >= 0:
            return committed.offset
        return self._earliest_of(topic, partition)

    def _earliest_of(self, topic: str, partition: int) -> int | None:
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec

        ktp = TopicPartition(topic, partition)
        found = self._client().list_partition_offsets({ktp: OffsetSpec.EARLIEST}).get(ktp)
        return None if found is None else found.offset

    async def _ask(self, fn, tp) -> int | None:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._locked_call, fn, tp.topic, tp.partition),
                                          self.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # unknown: handle the message rather than stall (the old behaviour)
            log.warning("%s: could not ask Kafka where the group stands: %s", tp, exc,
                        extra={"topic": tp.topic, "partition": tp.partition})
            return None

    def _read_range(self, topic: str, partition: int, start: int, end: int) -> list:
        from kafka import KafkaConsumer, TopicPartition

        ktp = TopicPartition(topic, partition)
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap.split(","), group_id=None,
                                 enable_auto_commit=False, client_id=f"{self.group}-gap")
        try:
            consumer.assign([ktp])
            consumer.seek(ktp, start)
            out: list = []
            deadline = time.monotonic() + self.timeout_s
            while (not out or out[-1].offset < end - 1) and time.monotonic() < deadline:
                for record in consumer.poll(timeout_ms=500).get(ktp, []):
                    if record.offset < end:
                        out.append(SimpleNamespace(topic=topic, partition=partition, offset=record.offset,
                                                   key=record.key, value=record.value,
                                                   timestamp=record.timestamp / 1000.0, tp=None))
            return out
        finally:
            consumer.close()

    async def read_range(self, tp, start: int, end: int) -> list | None:
        """The messages at offsets start..end-1 of `tp`, read on a connection of our own; None on failure."""
        try:
            found = await asyncio.wait_for(asyncio.to_thread(self._read_range, tp.topic, tp.partition, start, end),
                                           self.timeout_s + 5)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: could not read offsets %d..%d from Kafka: %s", tp, start, end - 1, exc,
                        extra={"topic": tp.topic, "partition": tp.partition})
            return None
        for message in found:
            message.tp = tp
        return found

    def _latest_of(self, tps: list) -> dict:
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec

        found = self._client().list_partition_offsets(
            {TopicPartition(tp.topic, tp.partition): OffsetSpec.LATEST for tp in tps})
        return {tp: found[TopicPartition(tp.topic, tp.partition)].offset for tp in tps
                if TopicPartition(tp.topic, tp.partition) in found}

    async def latest_of(self, tps: list) -> dict:
        """Each partition's end offset (the next offset to be written); {} when Kafka cannot say."""
        if not tps:
            return {}
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._locked_call, self._latest_of, tps),
                                          self.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not ask Kafka for end offsets: %s", exc)
            return {}

    def _locked_call(self, fn, *args):
        with self._lock:
            return fn(*args)

    async def start_of(self, tp) -> int | None:
        """The group's committed offset, or the partition's first offset if it never committed."""
        return await self._ask(self._start_of, tp)

    async def earliest_of(self, tp) -> int | None:
        return await self._ask(self._earliest_of, tp)


# Kept in a dead letter at most; the rest of an oversized message is cut (and says so).
DEAD_LETTER_VALUE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Outgoing:
    topic: str
    envelope: Envelope
    partition: int | None = None  # None: by key; set to answer on the partition a table entry lives in

    @property
    def key(self) -> bytes:
        return (self.envelope.subject or self.envelope.id).encode()


def derived(source: str, cause: Envelope, events: list[EventData]) -> list[Outgoing]:
    """Each event on its topic, with an id derived from its cause: handling the same message again
    publishes the very same events, which every reader then sees once."""
    return [Outgoing(topic_for(e.event_type),
                     make_event(e, source=source, event_id=derived_id(e.event_type, cause.id, str(n)),
                                **caused_by(cause)))
            for n, e in enumerate(events)]


class OutcomeKeeper:
    """Forgets recorded outcomes (`schemas.registry.record_events`, in a table) once they are too
    old to be asked for again: a message is re-delivered within minutes, never after days. Looks
    only every `every` calls, since it walks the whole table."""

    def __init__(self, table, keep_s: float = 2 * 24 * 3600, every: int = 1000) -> None:
        self.table, self.keep_s, self.every = table, keep_s, every
        self._calls = 0

    def tick(self, now: datetime) -> None:
        self._calls += 1
        if self._calls % self.every:
            return
        for key, recorded in list(self.table.items()):
            if recorded and (now - datetime.fromisoformat(recorded["at"])).total_seconds() > self.keep_s:
                self.table.pop(key, None)


class Said:
    """Ids a timer has announced and not yet seen back. Bounded: the oldest are forgotten, since
    announcing one again is harmless (its event id is derived, readers see it once)."""

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        if len(self._ids) > self.keep:
            self._ids.popitem(last=False)


@dataclass(frozen=True)
class Origin:
    """Where a message was read: kept with what it changed, and named in dead letters."""

    topic: str
    partition: int
    offset: int
    message: object = field(default=None, compare=False, repr=False)  # as read (a handler that defers sets it aside)


Handler = Callable[[Envelope, EventData, Origin], Awaitable[Iterable[Outgoing] | None] | Iterable[Outgoing] | None]


GATHER_BYTES = 64 * 1024  # a gathering fetch returns at once when this much is waiting (a backlog)
AT_ONCE = (1, 1500)       # faust's fetch: back with the first event, else after 1.5 s


@dataclass
class FetchPace:
    """How long a worker's fetches wait on the broker for events to gather, by the events it reads.

    faust gives aiokafka fetch_min_bytes=1: every fetch returns with the first event, so in a surge
    each event costs the worker a fetch request (encoded and decoded in pure Python) and the broker
    the work on both. Letting events gather for a few milliseconds a fetch halved the pipeline's
    latency at 50 reports a second, but at 10 a second it added its wait to every hop and made idle
    workers fetch a hundred times a second: so a worker gathers only while it reads more than
    `surge_per_s` events a second, until it reads fewer than half of that. A worker nobody waits on
    within a second (`always`) gathers all the time, for longer."""

    gather_ms: int
    surge_per_s: float
    always: bool = False
    gathering: bool = False

    def after(self, events_per_s: float) -> tuple[int, int] | None:
        """The fetch (min bytes, max wait ms) to use from now on, or None to keep the one in use."""
        if self.gather_ms <= 0:
            return None
        if self.always:
            wanted = True
        elif self.surge_per_s <= 0:
            wanted = False
        else:
            wanted = events_per_s >= (self.surge_per_s / 2 if self.gathering else self.surge_per_s)
        if wanted == self.gathering:
            return None
        self.gathering = wanted
        return (GATHER_BYTES, self.gather_ms) if wanted else AT_ONCE

    @classmethod
    def of(cls, service: str, settings: Settings) -> "FetchPace":
        if service in settings.gathering_workers:
            return cls(settings.fetch_gather_ms, 0, always=True)
        return cls(settings.surge_gather_ms, settings.surge_events_per_s)


class FetchPacer:
    """Applies the worker's FetchPace to its consumer's fetcher, once a second (a faust timer)."""

    def __init__(self, app: faust.App, pace: FetchPace, service: str) -> None:
        self.app, self.pace, self.service = app, pace, service
        self.events, self.at = 0, time.monotonic()

    def _fetcher(self):
        """aiokafka's fetcher (None before the consumer started); it reads _fetch_min_bytes and
        _fetch_max_wait_ms afresh for every fetch request it builds."""
        thread = getattr(self.app.consumer, "_thread", None)
        return getattr(getattr(thread, "_consumer", None), "_fetcher", None)

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        events = self.app.monitor.messages_received_total
        rate = (events - self.events) / max(now - self.at, 1e-3)
        self.events, self.at = events, now
        fetcher = self._fetcher()
        if fetcher is None:
            return
        fetch = self.pace.after(rate)
        if fetch is not None:
            fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = fetch
            log.info("fetches %s: %.0f events a second", f"gather for {fetch[1]} ms" if self.pace.gathering
                     else "return with the first event", rate, extra={"service": self.service})


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
        # How long the group waits for a member to rejoin in a rebalance: bounded, so a member
        # that stays alive but never rejoins does not hold every partition for minutes.
        broker_rebalance_timeout=max(30.0, settings.kafka_session_timeout_s * 5),
        # Not the same thing, and kept at faust's 1000 s: aiokafka leaves the group when faust has
        # not fetched for this long, and faust stops fetching while its agents' buffers are full
        # (a backlog: 10,000 unit registrations before the first incident). After such a leave
        # faust waits for a new assignment before fetching again and aiokafka waits for a fetch
        # before rejoining: the worker stopped for good (benchmarks/memory.py, at 30 s).
        broker_max_poll_interval=1000.0,
        # A member learns that the group rebalances (a worker died) only at its next heartbeat: at a
        # quarter of the session, the survivors took up to 2.5 s more to take over (benchmarks/recovery.py).
        broker_heartbeat_interval=max(0.5, settings.kafka_session_timeout_s / 6),
        broker_request_timeout=max(40.0, settings.kafka_session_timeout_s * 2),
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(datadir),
    )
    app.offsets = OffsetKeeper(app, OffsetLookup(settings, f"spkt-{service}"))
    from deploy.health import health_path

    app.offsets.health_path, app.offsets.health_service = health_path(settings, service), service

    @app.timer(interval=OffsetKeeper.commit_every_s)
    async def commit_handled_offsets() -> None:
        await app.offsets.watch()
        await app.offsets.commit(force=True)

    @app.timer(interval=OffsetKeeper.health_every_s)
    async def write_health() -> None:
        # A timer of its own: the one above can wait on Kafka for seconds, and a health file not
        # refreshed would read as a worker stopped.
        app.offsets.write_health()

    pacer = FetchPacer(app, FetchPace.of(service, settings), service)

    @app.timer(interval=1.0)
    async def pace_fetches() -> None:
        pacer.tick()

    return app


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


async def publish(app: faust.App, out: Outgoing, *, acknowledged: bool = True) -> None:
    """Send and wait for the acknowledgement; retry while the broker is unreachable.

    With ``acknowledged=False``, return once the producer holds the event: for what a handled
    message leads to, whose offset the commit holds back until the broker has it all
    (OffsetKeeper.commit). A handler waiting for each acknowledgement in turn handled one message
    per round trip to the broker, and on two busy cores that trip took tens of milliseconds."""
    delay = 0.2
    while True:
        try:
            if acknowledged:
                await app.producer.send_and_wait(out.topic, out.key, out.envelope.to_bytes(),
                                                 partition=out.partition, timestamp=None, headers=None)
            else:
                app.offsets.sent(await app.producer.send(out.topic, out.key, out.envelope.to_bytes(),
                                                         partition=out.partition, timestamp=None, headers=None))
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
        verdict = await app.offsets.check(message)
        if isinstance(verdict, list):  # skipped by the consumer, read from Kafka: those first
            for missed in verdict:
                await _handle_one(app, service, handler, missed)
            verdict = HANDLE
        if verdict == HANDLE:
            await _handle_one(app, service, handler, message)


async def set_aside(app: faust.App, service: str, message, exc: BaseException) -> None:
    """Log why, and publish the message's dead letter (`message`: faust's, timestamp in seconds)."""
    level = logging.WARNING if isinstance(exc, EnvelopeError) else logging.ERROR
    reason = redact(str(exc) or type(exc).__name__)  # the dead letter keeps it whole; the log, no contacts
    log.log(level, "message set aside to dead letters: %s", reason, exc_info=level == logging.ERROR,
            extra={"topic": message.topic, "partition": message.partition, "offset": message.offset,
                   "reason": reason})
    await publish(app, dead_letter(service, message, exc))


async def _handle_one(app: faust.App, service: str, handler: Handler, message) -> None:
    """Decode, let the domain decide, publish; a message it cannot handle goes to dead letters."""
    try:
        envelope, data = parse(message.value)
        result = handler(envelope, data, Origin(message.topic, message.partition, message.offset, message))
        if asyncio.iscoroutine(result):
            result = await result
        outgoing = list(result or ())
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await set_aside(app, service, message, exc)
    else:
        for out in outgoing:
            await publish(app, out, acknowledged=False)
    # Committed by the timer, never here: a commit can wait on a rebalance, and a rebalance on
    # this agent finishing its message — the worker would stop for good.
    app.offsets.handled(message)
