"""How a worker's fetches wait on the broker: at once, gathering always, or gathering in a surge.

The rule (FetchPace) alone, then the worker's timer applying it to the fetcher of a started
consumer stand-in (aiokafka reads the two attributes for every fetch request it builds).
"""
import asyncio
from types import SimpleNamespace

import pytest

from services.streaming import AT_ONCE, GATHER_BYTES, FetchPace, FetchPacer, make_app
from spkt.settings import Settings


@pytest.fixture
def settings(tmp_path):
    return Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9")


def test_a_worker_gathers_in_a_surge_and_stops_when_it_has_passed(settings):
    pace = FetchPace.of("projection", settings)
    assert (pace.gather_ms, pace.surge_per_s, pace.always) == (10, 100, False)
    assert pace.after(0) is None and pace.after(60) is None and pace.after(99) is None
    assert pace.after(150) == (GATHER_BYTES, 10)
    assert pace.after(300) is None and pace.after(60) is None  # above half the threshold: still a surge
    assert pace.after(49) == AT_ONCE
    assert pace.after(49) is None and pace.after(99) is None


def test_a_gathering_worker_always_gathers_for_longer(settings):
    pace = FetchPace.of("tkp", settings)
    assert pace.after(0) == (GATHER_BYTES, 100)
    assert pace.after(0) is None and pace.after(1000) is None


def test_zero_turns_either_off(tmp_path):
    off = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9", fetch_gather_ms=0, surge_events_per_s=0)
    assert FetchPace.of("tkp", off).after(1000) is None
    assert FetchPace.of("dispatch", off).after(1000) is None
    no_wait = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9", surge_gather_ms=0)
    assert FetchPace.of("dispatch", no_wait).after(1000) is None


def test_the_pacer_sets_the_fetcher_by_the_events_the_worker_read(settings):
    fetcher = SimpleNamespace(_fetch_min_bytes=1, _fetch_max_wait_ms=1500)
    monitor = SimpleNamespace(messages_received_total=0)
    consumer = SimpleNamespace(_thread=SimpleNamespace(_consumer=None))
    app = SimpleNamespace(monitor=monitor, consumer=consumer)
    pacer = FetchPacer(app, FetchPace.of("dispatch", settings), "dispatch")
    pacer.events, pacer.at = 0, 0.0

    def tick(at, events):
        monitor.messages_received_total = events
        pacer.tick(now=at)
        return fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms

    assert tick(1.0, 5000) == AT_ONCE  # no consumer yet: nothing to set, but the count moves on
    consumer._thread._consumer = SimpleNamespace(_fetcher=fetcher)
    assert tick(2.0, 5010) == AT_ONCE  # 10 a second
    assert tick(3.0, 5510) == (GATHER_BYTES, 10)
    assert tick(5.0, 5710) == (GATHER_BYTES, 10)  # 100 a second over two seconds
    assert tick(6.0, 5720) == AT_ONCE


def test_every_worker_gets_a_pacer_timer(settings):
    async def build():
        return make_app("intake", settings)

    app = asyncio.run(build())
    assert "pace_fetches" in [getattr(task, "__name__", "") for task in app._app_tasks]
