"""The live feed behind `GET /api/v1/stream`: every domain event, fanned out to connected consoles.

One `LiveHub` per API process reads the event topics outside any consumer group (like
services/feeds.py) and keeps the last events in a ring buffer, so a console that reconnects with
`Last-Event-ID` gets what it missed. Each console has a `Subscription`: its filter, a bounded
queue, and the GPS coalescing. Fan-out only appends to queues (never awaits a client), so one slow
console cannot slow the others: when its queue is full it is dropped, and it reconnects.

The policy (`RingBuffer`, `Placement`, `StreamFilter`, `Subscription`, `LiveCore`) takes the time
as an argument and knows nothing of Kafka, so the unit tests drive it directly.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge

from schemas import topics
from services.feeds import keep_running, seek_since
from services.intake.domain import UNLOCATED
from spkt.settings import Settings

log = logging.getLogger(__name__)

# What a console follows: the domain's facts, not commands to workers nor dead letters.
LIVE_TOPICS = (topics.REPORTS, topics.INCIDENTS, topics.ASSIGNMENTS, topics.UNIT_STATUS, topics.UNIT_POSITIONS,
               topics.TKP, topics.TURJAWALI, topics.CLOSURES, topics.NOTIFICATIONS)
LIVE_TYPES: frozenset[str] = frozenset(t for topic in LIVE_TOPICS for t in topics.BY_NAME[topic].event_types)
POSITION = "unit.position-reported"

RETRY_MS = 2000  # how long a browser's EventSource waits before reconnecting
KEEPALIVE = b": keepalive\n\n"
# Arrival order across partitions is not the same in two processes. For an id read in the startup
# window (e.g. one a console got from the API before it restarted), replay also the events up to
# this much older than it: a few duplicates rather than a missed incident.
RESUME_SKEW_MS = 2000
PLACES_KEPT = 200_000  # ids remembered per kind (incidents, units, reports) to place events
FRAMES_PER_WRITE = 500

LIVE_CLIENTS = Gauge("spkt_live_clients", "Consoles connected to the live stream (GET /api/v1/stream)")
LIVE_DROPPED = Counter("spkt_live_clients_dropped_total", "Live-stream consoles dropped for reading too slowly")

RESET_UNKNOWN = ("Last-Event-ID tidak dikenal atau sudah terlalu lama (atau API baru dimulai ulang): "
                 "muat ulang keadaan lewat REST lalu ikuti siaran ini")


# --- events -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LiveEvent:
    id: str  # <topic>:<partition>:<offset>: the same in every API process and after a restart
    type: str
    jurisdiction: str | None
    unit_id: str | None  # set for positions: what they are coalesced by
    ts_ms: int
    frame: bytes  # the whole SSE message, rendered once for every client
    history: bool = False  # read in the startup window, not live in this process


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka message as the hub needs it."""
    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int


def event_id(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


def render(eid: str, etype: str, envelope_json: str) -> bytes:
    return f"id: {eid}\nevent: {etype}\ndata: {envelope_json}\n\n".encode()


def reset_frame(reason: str) -> bytes:
    # No id: the console keeps its last one; it reloads by REST anyway.
    return b"event: reset\ndata: " + json.dumps({"reason": reason}, ensure_ascii=False).encode() + b"\n\n"


def parse_types(text: str | None) -> frozenset[str] | None:
    """`incident.opened,unit.position-reported` -> those types; None (all) when empty.

    ValueError naming the unknown ones."""
    if text is None or not text.strip():
        return None
    wanted = {t.strip() for t in text.split(",") if t.strip()}
    unknown = sorted(wanted - LIVE_TYPES)
    if unknown:
        raise ValueError(f"jenis peristiwa tidak dikenal: {', '.join(unknown)}; "
                         f"yang tersedia: {', '.join(sorted(LIVE_TYPES))}")
    return frozenset(wanted)


# --- where an event belongs -----------------------------------------------------------------------
class _Recent(OrderedDict):
    """id -> jurisdiction, forgetting the least recently written beyond `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: str | None) -> None:
        if not key or not value:
            return
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.limit:
            self.popitem(last=False)


class Placement:
    """Which jurisdiction (station code) an event belongs to. Few events carry it, so it is learnt
    from those that do (incident.opened, unit.registered, report.received) and looked up by id."""

    def __init__(self, limit: int = PLACES_KEPT) -> None:
        self.incidents = _Recent(limit)
        self.units = _Recent(limit)
        self.reports = _Recent(limit)

    def preload(self, incidents: Iterable[tuple[str, str | None]], units: Iterable[tuple[str, str | None]]) -> None:
        for incident_id, jurisdiction in incidents:
            self.incidents.put(incident_id, jurisdiction)
        for unit_id, jurisdiction in units:
            self.units.put(unit_id, jurisdiction)

    def place(self, etype: str, subject: str | None, data: dict[str, Any]) -> str | None:
        if etype == "incident.opened":
            found = data.get("jurisdiction") or data.get("polres")
            self.incidents.put(data.get("incident_id"), found)
            for report_id in data.get("report_ids") or ():
                self.reports.put(report_id, found)
            return found
        if etype == "incident.relocated" and data.get("jurisdiction"):
            self.incidents.put(data.get("incident_id"), data["jurisdiction"])
            return data["jurisdiction"]
        if etype == "unit.registered":
            found = data.get("jurisdiction") or data.get("station")
            self.units.put(data.get("unit_id"), found)
            return found
        if etype == "report.received" and data.get("area"):
            self.reports.put(data.get("report_id"), data["area"])  # the Polres intake routed it to
            return data["area"]
        found = self._lookup(subject, data)
        if found and etype == "incident.split":
            if data.get("new_incident_id") not in self.incidents:
                self.incidents.put(data.get("new_incident_id"), found)
        return found

    def _lookup(self, subject: str | None, data: dict[str, Any]) -> str | None:
        for key, table in (("incident_id", self.incidents), ("unit_id", self.units), ("report_id", self.reports)):
            value = data.get(key)
            if isinstance(value, str) and value in table:
                return table[value]
        for unit_id in data.get("unit_ids") or ():
            if isinstance(unit_id, str) and unit_id in self.units:
                return self.units[unit_id]
        if subject:
            for table in (self.incidents, self.units, self.reports):
                if subject in table:
                    return table[subject]
        return None


# --- the ring buffer ------------------------------------------------------------------------------
class RingBuffer:
    """The last `size` events in arrival order, found by id."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._events: deque[LiveEvent] = deque()
        self._seq: dict[str, int] = {}
        self._first = 0  # sequence number of _events[0]

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, eid: str) -> bool:
        return eid in self._seq

    def append(self, event: LiveEvent) -> None:
        if event.id in self._seq:
            return  # read again after a reader restart
        self._seq[event.id] = self._first + len(self._events)
        self._events.append(event)
        if len(self._events) > self.size:
            gone = self._events.popleft()
            del self._seq[gone.id]
            self._first += 1

    def after(self, eid: str) -> list[LiveEvent] | None:
        """The events after `eid`; None when it is not (or no longer) here."""
        seq = self._seq.get(eid)
        if seq is None:
            return None
        index = seq - self._first
        mark = self._events[index]
        later = list(itertools.islice(self._events, index + 1, None))
        if not mark.history:
            return later
        start = index
        while start > 0:
            earlier = self._events[start - 1]
            if not earlier.history or earlier.ts_ms < mark.ts_ms - RESUME_SKEW_MS:
                break
            start -= 1
        return list(itertools.islice(self._events, start, index)) + later


# --- one client -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamFilter:
    types: frozenset[str] | None = None  # None: every type
    stations: frozenset[str] | None = None  # None: every jurisdiction, and events nobody could place

    def admits(self, event: LiveEvent) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        # An incident intake could not locate is everyone's until a dispatcher places it (as in
        # scope.check_in_scope); an event we cannot place at all goes only to unscoped clients.
        return self.stations is None or event.jurisdiction in self.stations or event.jurisdiction == UNLOCATED


class Subscription:
    """One console: what it wants, what waits for it, and when each unit's next position may go."""

    _ids = itertools.count(1)

    def __init__(self, flt: StreamFilter, *, queue_size: int, positions_per_s: float, name: str = "") -> None:
        self.filter = flt
        self.name = name or f"client-{next(self._ids)}"
        self.queue_size = max(1, queue_size)
        self.interval = 1.0 / positions_per_s if positions_per_s > 0 else 0.0
        self.closed = False
        self.dropped = False
        self.counted = False
        self._backlog: deque[bytes] = deque()  # the replay and the reset: sent first, not bounded
        self._queue: deque[bytes] = deque()  # live frames, bounded
        self._pending: dict[str, LiveEvent] = {}  # unit -> its latest position not yet sent
        self._due: list[tuple[float, str]] = []  # (when the unit's slot comes free, unit)
        self._free_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self.on_drop: Callable[[Subscription], None] | None = None

    # --- what the hub calls (synchronous, cheap) ---
    def offer(self, event: LiveEvent, now: float) -> None:
        if self.closed:
            return
        unit = event.unit_id
        if unit is not None and self.interval:
            if unit in self._pending:
                self._pending[unit] = event  # keep only the latest
                return
            free_at = self._free_at.get(unit, 0.0)
            if now < free_at:
                self._pending[unit] = event
                heapq.heappush(self._due, (free_at, unit))
                return
            self._free_at[unit] = now + self.interval
        self._put(event.frame)

    def replay(self, events: list[LiveEvent], now: float) -> None:
        """What it missed, in order: of each unit's positions only the latest."""
        wanted = [e for e in events if self.filter.admits(e)]
        last_position = {e.unit_id: e.id for e in wanted if e.unit_id is not None}
        for event in wanted:
            if event.unit_id is not None:
                if last_position[event.unit_id] != event.id:
                    continue
                if self.interval:
                    self._free_at[event.unit_id] = now + self.interval
            self._backlog.append(event.frame)
        self._wake.set()

    def reset(self, reason: str) -> None:
        self._backlog.append(reset_frame(reason))
        self._wake.set()

    def flush_due(self, now: float) -> None:
        """Send the held-back positions of the units whose slot has come free."""
        while self._due and self._due[0][0] <= now and not self.closed:
            _, unit = heapq.heappop(self._due)
            event = self._pending.pop(unit, None)
            if event is not None:
                self._free_at[unit] = now + self.interval
                self._put(event.frame)

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None

    def take(self, limit: int = FRAMES_PER_WRITE) -> list[bytes]:
        out = []
        while self._backlog and len(out) < limit:
            out.append(self._backlog.popleft())
        while self._queue and len(out) < limit:
            out.append(self._queue.popleft())
        return out

    def queued(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def _put(self, frame: bytes) -> None:
        if len(self._queue) >= self.queue_size:
            self._drop()
            return
        self._queue.append(frame)
        self._wake.set()

    def _drop(self) -> None:
        waiting = len(self._queue)
        self.dropped = True
        self._queue.clear()
        self._backlog.clear()
        self._pending.clear()
        self._due.clear()
        self.close()
        LIVE_DROPPED.inc()
        log.warning("live stream: %s dropped, reading too slowly (%d messages waiting)", self.name, waiting,
                    extra={"reason": "slow_client"})
        if self.on_drop is not None:
            self.on_drop(self)

    # --- what the response streams ---
    async def frames(self, heartbeat_s: float, clock: Callable[[], float] = time.monotonic) -> AsyncIterator[bytes]:
        """SSE bytes until the subscription closes; a keepalive comment when idle for heartbeat_s."""
        last_write = clock()
        while not self.closed:
            now = clock()
            self.flush_due(now)
            chunk = self.take()
            if chunk:
                yield b"".join(chunk)
                last_write = clock()
                continue
            if now - last_write >= heartbeat_s:
                yield KEEPALIVE
                last_write = clock()
                continue
            wait = last_write + heartbeat_s - now
            due = self.next_due()
            if due is not None:
                wait = min(wait, max(0.0, due - now))
            self._wake.clear()
            try:
                # asyncio.timeout, not wait_for: wait_for makes a task of every wait, and with
                # hundreds of consoles every event ends hundreds of waits.
                async with asyncio.timeout(max(wait, 0.001)):
                    await self._wake.wait()
            except TimeoutError:
                pass


# --- buffer + placement + fan-out, without Kafka ------------------------------------------------------
class LiveCore:
    def __init__(self, *, buffer_events: int, client_queue: int, positions_per_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.buffer = RingBuffer(buffer_events)
        self.placement = Placement()
        self.client_queue = client_queue
        self.positions_per_s = positions_per_s
        self.clock = clock
        self.ready = asyncio.Event()  # the startup window is read: resumes can be answered
        self._subs: set[Subscription] = set()
        self._waiting: list[tuple[Subscription, str | None]] = []

    # --- clients ---
    def subscribe(self, flt: StreamFilter, last_event_id: str | None = None, *, name: str = "") -> Subscription:
        sub = Subscription(flt, queue_size=self.client_queue, positions_per_s=self.positions_per_s, name=name)
        sub.on_drop = self._forget
        sub.counted = True
        LIVE_CLIENTS.inc()
        if self.ready.is_set():
            self._start(sub, last_event_id)
        else:  # before the window is read nobody can tell what was missed: decide once it is
            self._waiting.append((sub, last_event_id))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._forget(sub)
        sub.close()
        if sub.counted:
            sub.counted = False
            LIVE_CLIENTS.dec()

    def clients(self) -> int:
        return len(self._subs) + len(self._waiting)

    def close_all(self) -> None:
        for sub in list(self._subs) + [s for s, _ in self._waiting]:
            sub.close()
        self._subs.clear()
        self._waiting.clear()

    def _start(self, sub: Subscription, last_event_id: str | None) -> None:
        # No await between the replay and joining the fan-out: nothing falls in between.
        if last_event_id:
            missed = self.buffer.after(last_event_id)
            if missed is None:
                sub.reset(RESET_UNKNOWN)
                log.info("live stream: %s resumes from an unknown id, reset", sub.name,
                         extra={"event_id": last_event_id, "reason": "unknown_last_event_id"})
            else:
                sub.replay(missed, self.clock())
        if not sub.closed:
            self._subs.add(sub)

    def _forget(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        self._waiting = [(s, i) for s, i in self._waiting if s is not sub]

    # --- events ---
    def make_event(self, record: Record, *, history: bool = False) -> LiveEvent | None:
        """The event of a Kafka message (placing it); None for what is not an event envelope."""
        try:
            doc = json.loads(record.value) if record.value else None
        except (UnicodeDecodeError, ValueError):
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str) or not isinstance(doc.get("data"), dict):
            return None  # the workers set such messages aside as dead letters
        etype, data = doc["type"], doc["data"]
        subject = doc.get("subject") if isinstance(doc.get("subject"), str) else None
        jurisdiction = self.placement.place(etype, subject, data)
        raw = record.value.decode() if isinstance(record.value, bytes) else str(record.value)
        if "\n" in raw or "\r" in raw:  # an SSE data line is one line
            raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        unit = data.get("unit_id") if etype == POSITION and isinstance(data.get("unit_id"), str) else None
        eid = event_id(record.topic, record.partition, record.offset)
        return LiveEvent(id=eid, type=etype, jurisdiction=jurisdiction, unit_id=unit, ts_ms=record.timestamp_ms,
                         frame=render(eid, etype, raw), history=history)

    def ingest(self, record: Record) -> LiveEvent | None:
        """A live message: into the buffer and out to every client that wants it."""
        event = self.make_event(record)
        if event is None or event.id in self.buffer:
            return None
        self.buffer.append(event)
        self.fan_out(event)
        return event

    def fan_out(self, event: LiveEvent) -> None:
        now = self.clock()
        for sub in list(self._subs):  # a dropped client leaves the set while we walk it
            if sub.filter.admits(event):
                sub.offer(event, now)

    def load_history(self, records: list[Record]) -> None:
        """The startup window, in time order (as the consoles saw it live), then resumes are answered."""
        records.sort(key=lambda r: (r.timestamp_ms, r.topic, r.partition, r.offset))
        for record in records:
            event = self.make_event(record, history=True)
            if event is not None:
                self.buffer.append(event)
        self.ready.set()
        waiting, self._waiting = self._waiting, []
        for sub, last_event_id in waiting:
            self._start(sub, last_event_id)


# --- the hub: LiveCore fed from Kafka ------------------------------------------------------------------
class LiveHub(LiveCore):
    def __init__(self, settings: Settings, *, sessions: Any = None) -> None:
        super().__init__(buffer_events=settings.live_buffer_events, client_queue=settings.live_client_queue,
                         positions_per_s=settings.live_positions_per_unit_per_s)
        self.settings = settings
        self.sessions = sessions
        self._task: asyncio.Task | None = None
        self._next: dict[TopicPartition, int] = {}  # where to go on after a reader restart
        self._history: list[Record] = []

    async def start(self) -> None:
        # In the background: the API starts (and answers 503 elsewhere) while the broker is away.
        self._task = asyncio.create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        self.close_all()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        if self.sessions is not None:
            try:
                incidents, units = await asyncio.to_thread(self._read_places)
                self.placement.preload(incidents, units)
                log.info("live stream: placed %d incidents and %d units from the read model", len(incidents),
                         len(units))
            except Exception as exc:  # only placement of older incidents suffers
                log.warning("live stream: could not read places from the read model: %s", exc)
        await keep_running("live stream reader", self._follow_once)

    def _read_places(self) -> tuple[list, list]:
        from sqlalchemy import select

        from services.projection import tables as t

        with self.sessions() as session:
            incidents = session.execute(select(t.Incident.incident_id, t.Incident.jurisdiction)).all()
            units = [(u, j or s) for u, j, s in
                     session.execute(select(t.Unit.unit_id, t.Unit.jurisdiction, t.Unit.station)).all()]
        return [tuple(row) for row in incidents], units

    async def _follow_once(self) -> None:
        settings = self.settings
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            cluster = await consumer._client.fetch_all_metadata()  # the consumer has no public call for this
            missing = [t for t in LIVE_TOPICS if not cluster.partitions_for_topic(t)]
            if missing:
                raise RuntimeError(f"live stream: topics not found ({', '.join(missing)}): run `spkt topics create`")
            parts = [TopicPartition(t, p) for t in LIVE_TOPICS for p in sorted(cluster.partitions_for_topic(t))]
            consumer.assign(parts)
            fresh = [tp for tp in parts if tp not in self._next]
            for tp in parts:
                if tp in self._next:
                    consumer.seek(tp, self._next[tp])
            if fresh:
                await seek_since(consumer, fresh, settings.live_window_s)
            ends = await consumer.end_offsets(parts)
            pending = {tp: end for tp, end in ends.items() if end > await consumer.position(tp)}
            while True:
                if not pending and not self.ready.is_set():
                    history, self._history = self._history, []
                    self.load_history(history)
                    log.info("live stream caught up: %d recent events buffered", len(self.buffer))
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, messages in batch.items():
                    for message in messages:
                        if message.offset < self._next.get(tp, 0):
                            continue
                        self._next[tp] = message.offset + 1
                        record = Record(tp.topic, tp.partition, message.offset, message.value, message.timestamp)
                        if self.ready.is_set():
                            self.ingest(record)
                        else:
                            self._history.append(record)
                        if tp in pending and message.offset + 1 >= pending[tp]:
                            del pending[tp]
        finally:
            await consumer.stop()
