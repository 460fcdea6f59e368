"""Gathering workers: the aiokafka consumer faust builds for them lets events gather on the broker.

Built through faust's own path (its consumer thread's worker consumer), not started: no broker.
"""
import asyncio

import pytest

from services.streaming import GATHER_BYTES, make_app
from spkt.settings import Settings


def worker_consumer(service: str, settings: Settings):
    async def build():
        app = make_app(service, settings)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms

    return asyncio.run(build())


@pytest.fixture
def settings(tmp_path):
    return Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9")


def test_a_gathering_worker_waits_for_events_to_gather(settings):
    assert settings.gathering_workers == ["tkp"] and settings.fetch_gather_ms == 100
    assert worker_consumer("tkp", settings) == (GATHER_BYTES, 100)


def test_the_workers_a_dispatcher_waits_on_take_each_event_at_once(settings):
    for service in ("intake", "dispatch", "projection", "notify"):
        min_bytes, wait_ms = worker_consumer(service, settings)
        assert min_bytes == 1, service  # faust's and aiokafka's default: a fetch returns with the first event
        assert wait_ms == 1500, service


def test_the_settings_choose_the_workers_and_the_wait(tmp_path):
    chosen = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9", gathering_workers=["notify"],
                      fetch_gather_ms=40)
    assert worker_consumer("notify", chosen) == (GATHER_BYTES, 40)
    assert worker_consumer("tkp", chosen)[0] == 1
    off = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9", fetch_gather_ms=0)
    assert worker_consumer("tkp", off) == (1, 1500)
