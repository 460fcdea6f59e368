"""Keeps this worker's unit board current from the unit topics.

Every dispatch worker needs every unit, whatever incident partitions it owns, so the board is
not fed through the consumer group: each worker reads all partitions of the unit topics itself,
status and turjawali duties from the beginning (kept forever), positions from the recent window only.
"""
from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import EnvelopeError
from schemas.registry import parse
from schemas.topics import TURJAWALI, UNIT_POSITIONS, UNIT_STATUS
from spkt.settings import Settings

from .board import Board

log = logging.getLogger(__name__)


async def follow(settings: Settings, board: Board, caught_up: asyncio.Event) -> None:
    """Run forever; restart the reader after any failure (the board keeps what it had)."""
    delay = 0.5
    while True:
        try:
            await _follow_once(settings, board, caught_up)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("unit board feed failed, restarting: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _follow_once(settings: Settings, board: Board, caught_up: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # the consumer has no public call for this
        status_parts = [TopicPartition(topic, p) for topic in (UNIT_STATUS, TURJAWALI)
                        for p in cluster.partitions_for_topic(topic) or ()]
        position_parts = [TopicPartition(UNIT_POSITIONS, p)
                          for p in cluster.partitions_for_topic(UNIT_POSITIONS) or ()]
        if not status_parts or not position_parts:
            raise RuntimeError("unit topics not found: run `spkt topics create`")
        parts = status_parts + position_parts
        consumer.assign(parts)
        await consumer.seek_to_beginning(*status_parts)
        since_ms = int((time.time() - settings.position_max_age_s) * 1000)
        found = await consumer.offsets_for_times({tp: since_ms for tp in position_parts})
        for tp in position_parts:
            if found.get(tp) is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found[tp].offset)
        ends = await consumer.end_offsets(parts)
        pending = {tp: end for tp, end in ends.items() if end > await consumer.position(tp)}
        while True:
            if not pending and not caught_up.is_set():
                caught_up.set()
                log.info("unit board caught up: %d units", len(board.units))
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                for message in messages:
                    try:
                        board.apply(parse(message.value)[1])
                    except EnvelopeError as exc:
                        # The projection's consumer sets such messages aside as dead letters.
                        log.debug("unit feed skipped a message: %s", exc)
                    if tp in pending and message.offset + 1 >= pending[tp]:
                        del pending[tp]
    finally:
        await consumer.stop()
