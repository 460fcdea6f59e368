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
    close_timeout_s = 10.0  # a producer being let go of: closed within this, or left to the collector

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()

    async def start(self) -> None:
        # The API comes up even while the broker is away, answering 503 until it is back.
        self._reconnect()

    def _reconnect(self) -> None:
        if self._connecting is None or self._connecting.done():
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
                if delay > 0.5:
                    log.info("broker reachable again")
                self._producer = producer

    async def stop(self) -> None:
        if self._connecting:
            self._connecting.cancel()
        if self._producer:
            producer, self._producer = self._producer, None
            try:  # what is on its way gets its chance; what the broker does not take by then, never
                await asyncio.wait_for(producer.flush(), self.settings.ack_timeout_s)
            except Exception:
                self._withdraw(producer, BrokerUnavailable("the API is stopping"))
            await self._close(producer)
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=self.close_timeout_s)

    async def publish(self, topic: str, envelope: Envelope, key: str | None = None) -> None:
        """`key` defaults to the envelope's subject (the aggregate id)."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("broker not connected")
        key = (key or envelope.subject or envelope.id).encode()
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, envelope.to_bytes(), key=key),
                                   timeout=self.settings.ack_timeout_s)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("broker did not acknowledge %s: %s", envelope.type, reason, extra={"event_id": envelope.id})
            if isinstance(exc, asyncio.TimeoutError):
                self._let_go(producer, reason)
            raise BrokerUnavailable(reason) from exc

    def _let_go(self, producer: AIOKafkaProducer, reason: str) -> None:
        """No acknowledgement in time: the caller hears 503, so the message must never be written.

        An idempotent aiokafka producer retries a batch until it gets through, however long the
        broker is away: once it is back, a report answered 503 (and filed again by its caller)
        would be recorded after all. So this producer stops sending at once, fails everything it
        still holds (every request waiting on it answers 503), and a new one connects."""
        if self._producer is not producer:
            return  # another request let go of it already
        self._producer = None
        log.warning("letting go of the Kafka producer and connecting anew (%s)", reason)
        self._withdraw(producer, BrokerUnavailable(f"withdrawn unacknowledged: {reason}"))
        task = asyncio.create_task(self._close(producer))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._reconnect()

    @staticmethod
    def _withdraw(producer: AIOKafkaProducer, exc: Exception) -> None:
        # aiokafka 0.14 internals, reached carefully: a later version lacking them is only closed.
        sender = getattr(producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        if task is not None and not task.done():
            task.cancel()  # nothing more goes out, not even a batch put back for a retry
        accumulator = getattr(producer, "_message_accumulator", None)
        if accumulator is not None:
            accumulator.fail_all(exc)
            getattr(accumulator, "_batches", {}).clear()

    async def _close(self, producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), self.close_timeout_s)
        except Exception as exc:  # withdrawn batches can upset its shutdown; the connections still close
            log.debug("closing a withdrawn producer: %s", exc or type(exc).__name__)
            try:
                await asyncio.wait_for(producer.client.close(), self.close_timeout_s)
            except Exception:
                pass

    async def is_ready(self) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=3)
            return True
        except Exception:
            return False
