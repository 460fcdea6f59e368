"""Dead letters for operators: read them, pick some, and re-drive their originals (`spkt dlq`).

Every service sets aside what it cannot handle as a `message.dead-lettered` event on
spkt.dead-letters (services/streaming.py `dead_letter`), with the reason and the original message
(its key, and its value up to 64 KiB: base64 when it was not UTF-8). Once the cause is fixed, the
original is published again, unchanged, with its key, on its topic and partition, and every
consumer of that topic reads it again.

That is safe because handling is idempotent by envelope id: the projection records each event id
it applied (processed_events) and ignores one it has seen; intake, dispatch (unit commands) and tkp
keep each input's outcome by its id (tables, two days) and replay it rather than decide again;
events derived from a message get ids derived from its id, so readers see them once; notify's
notification ids are derived from the event id and the ones sent are read back from
spkt.notifications. A message several services set aside has several dead letters but is re-driven
once.

The pure parts (decoding, filtering, formatting, planning) are here, apart from Kafka, so they can be
tested alone; `read_dead_letters` and `republish` talk to the broker.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator, Sequence

from schemas.envelope import EnvelopeError
from schemas.events import MessageDeadLettered
from schemas.registry import parse
from schemas.topics import DEAD_LETTERS

DEAD_LETTER_TYPE = MessageDeadLettered.event_type


class NotReplayable(ValueError):
    """A dead letter whose original cannot be published again as it was (the reason says why)."""


@dataclass(frozen=True)
class Ref:
    """Where a message was: topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass(frozen=True)
class DeadLetter:
    """One record of spkt.dead-letters: where it sits there, and what it says."""

    partition: int
    offset: int
    event_id: str
    data: MessageDeadLettered

    @property
    def original(self) -> Ref:
        return Ref(self.data.original_topic, self.data.original_partition, self.data.original_offset)

    @property
    def size(self) -> int | None:
        """Bytes of the original value as kept (None: the message had no value)."""
        try:
            return len(original_value(self, allow_truncated=True))
        except NotReplayable:
            return None


@dataclass
class Unreadable:
    """A record on the dead-letter topic that is not a dead letter (counted, shown on request)."""

    partition: int
    offset: int
    reason: str


# --- decoding ------------------------------------------------------------------------------------
def decode_record(partition: int, offset: int, value: bytes | None) -> DeadLetter | Unreadable:
    """A record of spkt.dead-letters as a DeadLetter, or why it is not one."""
    try:
        envelope, data = parse(value)
    except EnvelopeError as exc:
        return Unreadable(partition, offset, str(exc))
    if not isinstance(data, MessageDeadLettered):
        return Unreadable(partition, offset, f"not a dead letter: {envelope.type}")
    return DeadLetter(partition, offset, envelope.id, data)


def original_value(letter: DeadLetter, *, allow_truncated: bool = False) -> bytes:
    """The original message's value, byte for byte. NotReplayable when it was cut or is missing."""
    d = letter.data
    if d.original_value_truncated and not allow_truncated:
        raise NotReplayable(f"{letter.original}: the original value was cut at 64 KiB when it was set aside; "
                            "it cannot be re-driven from the dead letter (publish it again from its source)")
    if d.original_value is None:
        raise NotReplayable(f"{letter.original}: the dead letter keeps no original value")
    if d.original_value_encoding == "base64":
        try:
            return base64.b64decode(d.original_value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NotReplayable(f"{letter.original}: the original value is not valid base64 ({exc})") from None
    return d.original_value.encode("utf-8")


def original_key(letter: DeadLetter) -> bytes | None:
    """The original key (None: it had none). A key that was not UTF-8 was kept with U+FFFD in it."""
    key = letter.data.original_key
    return None if key is None else key.encode("utf-8")


def check_original(letter: DeadLetter) -> str | None:
    """None when this version reads the original as a valid event; else why not (it would only be
    set aside again: the services run the same schemas)."""
    try:
        parse(original_value(letter))
    except NotReplayable as exc:
        return str(exc)
    except EnvelopeError as exc:
        return f"still unreadable: {exc}"
    return None


# --- choosing ------------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`90s`, `15m`, `1h`, `2d`, `1w` ago, or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(timezone.utc)
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: give a duration (30m, 1h, 2d) or an ISO time (2026-11-28T06:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_ref(text: str) -> Ref:
    """`TOPIC:PARTITION:OFFSET` (a topic name has no colon)."""
    parts = text.strip().rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise ValueError(f"{text!r}: expected TOPIC:PARTITION:OFFSET, e.g. spkt.reports:0:42")
    try:
        partition, offset = int(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"{text!r}: partition and offset must be numbers") from None
    if partition < 0 or offset < 0:
        raise ValueError(f"{text!r}: partition and offset cannot be negative")
    return Ref(parts[0], partition, offset)


@dataclass
class Filter:
    topic: str | None = None
    service: str | None = None
    since: datetime | None = None
    refs: frozenset[Ref] = field(default_factory=frozenset)

    def __call__(self, letter: DeadLetter) -> bool:
        d = letter.data
        if self.topic is not None and d.original_topic != self.topic:
            return False
        if self.service is not None and d.service != self.service:
            return False
        if self.since is not None and d.failed_at < self.since:
            return False
        if self.refs and letter.original not in self.refs:
            return False
        return True


def select(letters: Iterable[DeadLetter], chosen: Filter, limit: int | None = None) -> list[DeadLetter]:
    """The dead letters `chosen` keeps, in the order read; with a limit, the most recent `limit`."""
    kept = [letter for letter in letters if chosen(letter)]
    if limit is not None and limit >= 0:
        kept = kept[-limit:] if limit else []
    return kept


@dataclass
class ReplayItem:
    """One original message to publish again, and every dead letter it left."""

    original: Ref
    key: bytes | None
    value: bytes | None
    services: list[str]
    reasons: list[str]
    refused: str | None = None  # why it will not be re-driven
    size: int = 0  # bytes of the value as kept in the dead letter
    truncated: bool = False


def plan_replay(letters: Sequence[DeadLetter], *, force: bool = False) -> list[ReplayItem]:
    """One item per original message (several services may have set the same one aside).

    Refused: a truncated or missing value; and, unless `force`, a value this version still cannot
    read as an event (re-driving it would only make new dead letters)."""
    items: dict[Ref, ReplayItem] = {}
    for letter in letters:
        item = items.get(letter.original)
        if item is None:
            refused = None
            value = None
            try:
                value = original_value(letter)
            except NotReplayable as exc:
                refused = str(exc)
            if refused is None and not force:
                refused = check_original(letter)
            item = items[letter.original] = ReplayItem(letter.original, original_key(letter), value, [], [],
                                                       refused, letter.size or 0,
                                                       letter.data.original_value_truncated)
        if letter.data.service not in item.services:
            item.services.append(letter.data.service)
        item.reasons.append(f"{letter.data.service}: {letter.data.reason}")
    return list(items.values())


# --- showing -------------------------------------------------------------------------------------
def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def as_json(letter: DeadLetter) -> dict:
    """One line of `spkt dlq list --json` (the original value is left out: see `replay --dry-run`)."""
    d = letter.data
    return {
        "dead_letter": f"{DEAD_LETTERS}:{letter.partition}:{letter.offset}",
        "event_id": letter.event_id,
        "failed_at": d.failed_at.isoformat(),
        "service": d.service,
        "original_topic": d.original_topic,
        "original_partition": d.original_partition,
        "original_offset": d.original_offset,
        "original": str(letter.original),
        "original_key": d.original_key,
        "error_kind": d.error_kind,
        "reason": d.reason,
        "size": letter.size,
        "truncated": d.original_value_truncated,
        "encoding": d.original_value_encoding,
    }


def json_line(letter: DeadLetter) -> str:
    return json.dumps(as_json(letter), ensure_ascii=False)


def row(letter: DeadLetter, reason_width: int = 60) -> tuple[str, ...]:
    """when, service, original, key, kind, reason, size: one line of `spkt dlq list`."""
    d = letter.data
    size = letter.size
    size_text = "-" if size is None else f"{size:,}" + ("+ (cut)" if d.original_value_truncated else "")
    return (d.failed_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), d.service, str(letter.original),
            shorten(d.original_key or "-", 24), d.error_kind, shorten(d.reason, reason_width), size_text)


COLUMNS = ("failed at (UTC)", "service", "original topic:partition:offset", "key", "kind", "reason", "size")


# --- Kafka ---------------------------------------------------------------------------------------
def read_dead_letters(bootstrap: str, *, timeout_s: float = 10.0) -> tuple[list[DeadLetter], list[Unreadable]]:
    """Every record now on spkt.dead-letters, from the beginning, outside any consumer group
    (no offsets are committed anywhere: listing changes nothing)."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             client_id="spkt-dlq")
    try:
        partitions = consumer.partitions_for_topic(DEAD_LETTERS)
        if not partitions:
            raise RuntimeError(f"topic {DEAD_LETTERS} not found: run `spkt topics create`")
        parts = [TopicPartition(DEAD_LETTERS, p) for p in sorted(partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        letters: list[DeadLetter] = []
        unreadable: list[Unreadable] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{DEAD_LETTERS}: nothing read for {timeout_s:.0f} s before its end")
            batch = consumer.poll(timeout_ms=500)
            if batch:
                deadline = time.monotonic() + timeout_s  # a large topic takes long: only a stall is an error
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue  # arrived after we started: next time
                    found = decode_record(tp.partition, record.offset, record.value)
                    (letters if isinstance(found, DeadLetter) else unreadable).append(found)
        letters.sort(key=lambda letter: (letter.data.failed_at, letter.partition, letter.offset))
        return letters, unreadable
    finally:
        consumer.close()


def republish(bootstrap: str, items: Iterable[ReplayItem]) -> Iterator[tuple[ReplayItem, Ref]]:
    """Publish each original again (acks=all), on its partition when the topic still has it, else by
    key; yields each item with where it went."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", client_id="spkt-dlq",
                             max_request_size=2 * 1024 * 1024)
    try:
        for item in items:
            partitions = producer.partitions_for(item.original.topic)
            partition = item.original.partition if item.original.partition in partitions else None
            sent = producer.send(item.original.topic, value=item.value, key=item.key,
                                 partition=partition).get(timeout=30)
            yield item, Ref(sent.topic, sent.partition, sent.offset)
        producer.flush()
    finally:
        producer.close()
