"""A whole-topic reader starting on a bounded topic: a message written while it asks where its
window starts is read, not skipped (services/feeds.py, and the API's live stream)."""
import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition

from schemas.envelope import utcnow
from schemas.events import UnitPositionReported
from schemas.registry import make_event
from schemas.topics import UNIT_POSITIONS, UNIT_STATUS
from services import feeds
from spkt.settings import Settings

FIX = make_event(UnitPositionReported(unit_id="U1", lat=-6.2, lon=106.8, at=utcnow()), source="/test").to_bytes()
TP0 = TopicPartition(UNIT_POSITIONS, 0)


class RacingConsumer:
    """One partition, empty when first asked; a fix is written while the window's start is asked
    for (nothing in the window yet), as a unit's phone may at any moment."""

    def __init__(self, *args, **kwargs) -> None:
        self.log: list[bytes] = []  # the positions' partition; the unit register is empty
        self.at: dict = {}
        metadata = SimpleNamespace(partitions_for_topic=lambda topic: {0})

        async def fetch_all_metadata():
            return metadata
        self._client = SimpleNamespace(fetch_all_metadata=fetch_all_metadata)

    async def start(self):
        pass

    async def stop(self):
        pass

    def assign(self, parts):
        self.at = {tp: 0 for tp in parts}

    async def seek_to_beginning(self, *tps):
        self.at.update({tp: 0 for tp in tps})

    def _end(self, tp) -> int:
        return len(self.log) if tp == TP0 else 0

    async def seek_to_end(self, *tps):
        self.at.update({tp: self._end(tp) for tp in tps})

    def seek(self, tp, offset):
        self.at[tp] = offset

    async def position(self, tp):
        return self.at[tp]

    async def end_offsets(self, tps):
        return {tp: self._end(tp) for tp in tps}

    async def offsets_for_times(self, query):
        self.log.append(FIX)  # written while the question is on its way
        return {tp: None for tp in query}

    async def getmany(self, timeout_ms=0, max_records=None):
        start = self.at.get(TP0, 0)
        if start >= len(self.log):
            await asyncio.sleep(0.01)
            return {}
        self.at[TP0] = len(self.log)
        return {TP0: [SimpleNamespace(offset=o, value=self.log[o], timestamp=1_700_000_000_000 + o)
                      for o in range(start, len(self.log))]}


def test_a_fix_written_while_the_reader_finds_its_window_is_read(monkeypatch):
    monkeypatch.setattr(feeds, "AIOKafkaConsumer", RacingConsumer)
    applied = []

    async def scenario():
        caught_up = asyncio.Event()
        task = asyncio.create_task(feeds._follow_once(
            Settings(), "test feed", (UNIT_STATUS,), {UNIT_POSITIONS: 600.0}, applied.append, caught_up,
            {UNIT_POSITIONS: feeds.Reader(UnitPositionReported)}))
        try:
            for _ in range(200):  # bounded: 2 s
                if applied and caught_up.is_set():
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
        return caught_up.is_set()

    assert asyncio.run(scenario()) is True
    assert [e.unit_id for e in applied] == ["U1"]


def test_the_live_stream_reads_an_event_written_while_it_finds_its_window(monkeypatch):
    from services.api import live

    monkeypatch.setattr(live, "AIOKafkaConsumer", RacingConsumer)
    hub = live.LiveHub(Settings())

    async def scenario():
        task = asyncio.create_task(hub._follow_once())
        try:
            for _ in range(200):  # bounded: 2 s
                if hub.ready.is_set() and len(hub.buffer):
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()

    asyncio.run(scenario())
    assert hub.ready.is_set() and len(hub.buffer) == 1
