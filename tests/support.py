"""Helpers for tests that talk to the real broker, database and processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.harness import wait_until
from benchmarks.system import free_port
from deploy.stack import settings_environment, start_system
from schemas.envelope import Envelope
from spkt.settings import Settings

T = TypeVar("T")


def wait_for(probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until `probe` returns something truthy; fail (the test) saying what never happened."""
    try:
        return wait_until(probe, timeout=timeout, what=what, interval=interval)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


def produce(settings: Settings, topic: str, value: bytes, key: bytes | None = None):
    """Send one message and wait for the broker's acknowledgement; returns its metadata."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all")
    try:
        return producer.send(topic, value=value, key=key).get(timeout=15)
    finally:
        producer.close()


def publish(settings: Settings, topic: str, envelope: Envelope):
    return produce(settings, topic, envelope.to_bytes(), (envelope.subject or envelope.id).encode())


def read_topic(settings: Settings, topic: str, *, timeout: float = 1.0) -> list:
    """Every message now on `topic`, from the beginning (no consumer group)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap.split(","), enable_auto_commit=False,
                             consumer_timeout_ms=int(timeout * 1000))
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        messages = []
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            batch = consumer.poll(timeout_ms=int(timeout * 1000))
            if not batch:
                break
            for records in batch.values():
                messages.extend(records)
        return messages
    finally:
        consumer.close()


def events_on(settings: Settings, topic: str) -> list[Envelope]:
    out = []
    for message in read_topic(settings, topic):
        try:
            out.append(Envelope.from_bytes(message.value))
        except ValueError:
            pass
    return out


class Process:
    """A process of ours (`spkt ...`, or a test's own `script` with the project importable) started
    for a test and stopped by pid: TERM, then KILL."""

    def __init__(self, args: list[str], settings: Settings, log: Path, *, script: Path | None = None) -> None:
        env = {**os.environ, **settings_environment(settings), "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.getcwd()}
        self.log = log
        self._out = open(log, "ab")
        argv = [str(script), *args] if script else ["-m", "spkt.cli", *args]
        self.popen = subprocess.Popen([sys.executable, *argv], env=env, stdout=self._out,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._out.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@contextmanager
def running_system(kafka_settings: Settings, state: Path, **overrides) -> Iterator[Settings]:
    """Every process of the system (`spkt up` minus the broker) on the test's broker, with its own
    state folder, SQLite database and API port; stopped at the end."""
    settings = Settings(**{**kafka_settings.model_dump(), "state_dir": state, "api_port": free_port(),
                           "database_url": f"sqlite:///{state / 'spkt.db'}", **overrides})
    stack = start_system(settings)
    try:
        yield settings
    finally:
        stack.stop()


def api_client(settings: Settings, role, *, timeout: float = 30, **claims):
    """An HTTP client of the running API with a token of this role (and unit, jurisdiction)."""
    import httpx

    from services.api.auth import mint

    token = mint(settings, sub=f"test-{role.value}-{claims.get('unit_id') or ''}".rstrip("-"), role=role, **claims)
    return httpx.Client(base_url=settings.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
