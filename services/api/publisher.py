"""The API's way onto Kafka: publish and wait for the broker's acknowledgement (acks=all)."""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from schemas.envelope import Envelope
from spkt.settings import Settings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge: nothing may be promised to the caller."""


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task | None = None

    async def start(self) -> None:
        # The API comes up even while the broker is away, answering 503 until it is back.
        self._connecting = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        delay = 0.5
        while self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.bootstrap,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=int(self.settings.ack_timeout_s * 1000),
            )
            try:
                await producer.start()
            except Exception as exc:
                log.warning("broker not reachable yet: %s", exc)
                await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                self._producer = producer

    async def stop(self) -> None:
        if self._connecting:
            self._connecting.cancel()
        if self._producer:
            await self._producer.stop()

    async def publish(self, topic: str, envelope: Envelope, key: str | None = None) -> None:
        """`key` defaults to the envelope's subject (the aggregate id)."""
        if self._producer is None:
            raise BrokerUnavailable("broker not connected")
        key = (key or envelope.subject or envelope.id).encode()
        try:
            await asyncio.wait_for(self._producer.send_and_wait(topic, envelope.to_bytes(), key=key),
                                   timeout=self.settings.ack_timeout_s)
        except Exception as exc:
            log.warning("broker did not acknowledge %s: %s", envelope.type, exc, extra={"event_id": envelope.id})
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def is_ready(self) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=3)
            return True
        except Exception:
            return False
