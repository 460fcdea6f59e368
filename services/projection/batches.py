"""Events applied to the read model several to a transaction.

A transaction an event cost about a third of the projection's time (1.2 ms an event against 0.8
in transactions of 10–50, measured alone; benchmarks/pipeline.py has the projection furthest
behind at 50 reports a second). So the agent hands each event here, and they are applied
together when `size` have gathered, when the first has waited `max_wait_s`, or when no other has
come for `quiet_s`: at a trickle an event waits those few milliseconds, under load transactions
grow by themselves.

They are applied in one synchronous call (`Projector.apply_together`): SQLite's write lock is held
for that call only, never across the event loop, so the API's own writes wait no longer than for
the events' work.

What is not lost or skipped:
- the worker's offset keeper awaits `flush` before every commit of offsets (its `before_commit`),
  so no offset is committed for an event not yet stored; a crash reads them again, and the
  projection ignores what it stored before (processed_events);
- a batch that fails is applied again one event a transaction, and only the event that fails
  then is set aside as a dead letter, as without batches.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from schemas.envelope import Envelope
from schemas.events import EventData

SIZE = 25
MAX_WAIT_S = 0.025
QUIET_S = 0.002


class Batches:
    def __init__(self, projector, set_aside: Callable[[object, BaseException], Awaitable[None]], *,
                 size: int = SIZE, max_wait_s: float = MAX_WAIT_S, quiet_s: float = QUIET_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`set_aside(origin, exc)`: publishes the dead letter of the event read at `origin`."""
        self.projector = projector
        self.set_aside = set_aside
        self.size, self.max_wait_s, self.quiet_s, self.clock = size, max_wait_s, quiet_s, clock
        self._items: list[tuple[Envelope, EventData, object]] = []
        self._first_at = 0.0
        self._quiet: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()  # one flush at a time: events are stored in the order they came
        self._flushes: set[asyncio.Task] = set()
        self.transactions = 0

    def __len__(self) -> int:
        return len(self._items)

    async def add(self, envelope: Envelope, event: EventData, origin) -> None:
        """`origin`: services.streaming.Origin (topic, partition, offset, the message as read)."""
        if not self._items:
            self._first_at = self.clock()
        self._items.append((envelope, event, origin))
        if len(self._items) >= self.size or self.clock() - self._first_at >= self.max_wait_s:
            await self.flush()
            return
        if self._quiet is not None:
            self._quiet.cancel()
        self._quiet = asyncio.get_running_loop().call_later(self.quiet_s, self._flush_when_quiet)

    def _flush_when_quiet(self) -> None:
        self._quiet = None
        task = asyncio.ensure_future(self.flush())
        self._flushes.add(task)  # kept until done: the loop holds tasks only weakly
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> int:
        """Store what has gathered; the number of events."""
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        async with self._lock:
            items, self._items = self._items, []
            if not items:
                return 0
            try:
                self.transactions += 1
                self.projector.apply_together([(envelope, event, origin.topic, origin.partition, origin.offset)
                                               for envelope, event, origin in items])
            except Exception:
                for envelope, event, origin in items:  # each alone: only the one that fails is set aside
                    self.transactions += 1
                    try:
                        self.projector.apply(envelope, event, topic=origin.topic, partition=origin.partition,
                                             offset=origin.offset)
                    except Exception as exc:
                        await self.set_aside(origin, exc)
            return len(items)
