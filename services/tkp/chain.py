"""Tamper-evident hash chain for an incident's TKP records. Pure: stdlib only.

Each record carries the SHA-256 of the previous record's hash and its own content, so an
edited, removed or reordered record shows up when the chain is checked again: a court or an
internal audit must be able to trust that the scene and custody records were not rewritten.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping

GENESIS: str = "0" * 64
"""prev_hash of the first record of every chain."""

REASON_GENESIS = "catatan pertama hilang atau urutan berubah (prev_hash bukan awal rantai)"
REASON_PREV = "catatan sebelumnya hilang atau urutan berubah (prev_hash tidak cocok)"
REASON_HASH = "isi catatan berubah (hash tidak cocok)"
REASON_MALFORMED = "catatan tidak lengkap atau tidak dapat dibaca"


def _default(value: Any) -> Any:
    """JSON for the few non-JSON types records hold; anything else is a bug, not a guess."""
    if isinstance(value, datetime):
        # The same instant must hash the same whatever zone it was written in.
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"tidak dapat dijadikan JSON kanonik: {type(value).__name__}")


def canonical(content: Mapping[str, Any]) -> bytes:
    """The one byte form of a record's content that is hashed: key order and zones do not matter."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_default).encode("utf-8")


def link(prev_hash: str, content: Mapping[str, Any]) -> str:
    """The hash of a record: binds its content to the record before it."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(content)).hexdigest()


@dataclass(frozen=True)
class Sealed:
    """One record in a chain, with the hashes that tie it to its predecessor."""

    record_id: str
    prev_hash: str
    hash: str
    content: dict


def append(chain_head: str | None, record_id: str, content: Mapping[str, Any]) -> Sealed:
    """Seal content after the chain's current head (None for the first record)."""
    prev = GENESIS if chain_head is None else chain_head
    body = dict(content)
    return Sealed(record_id=record_id, prev_hash=prev, hash=link(prev, body), content=body)


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of verify(): where the chain first breaks and why, in words an officer reads."""

    valid: bool
    checked: int
    broken_at: int | None = None
    record_id: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"valid": self.valid, "checked": self.checked, "broken_at": self.broken_at,
                "record_id": self.record_id, "reason": self.reason}


def _fields(record: Mapping[str, Any] | Sealed) -> tuple[Any, Any, Any, Any]:
    if isinstance(record, Sealed):
        return record.record_id, record.prev_hash, record.hash, record.content
    return record.get("record_id"), record.get("prev_hash"), record.get("hash"), record.get("content")


def verify(records: Iterable[Mapping[str, Any] | Sealed]) -> ChainCheck:
    """Check records given in chain order; stops at the first broken one. An empty chain is valid."""
    expected_prev = GENESIS
    checked = 0
    for index, record in enumerate(records):
        checked = index + 1
        record_id, prev_hash, hash_, content = _fields(record)
        rid = None if record_id is None else str(record_id)
        if not isinstance(prev_hash, str) or not isinstance(hash_, str) or not isinstance(content, Mapping):
            return ChainCheck(False, checked, index, rid, REASON_MALFORMED)
        if prev_hash != expected_prev:
            # The record itself may be intact; what it points back to is not where it should be.
            reason = REASON_GENESIS if index == 0 else REASON_PREV
            return ChainCheck(False, checked, index, rid, reason)
        try:
            recomputed = link(prev_hash, content)
        except (TypeError, ValueError, UnicodeEncodeError):
            return ChainCheck(False, checked, index, rid, REASON_MALFORMED)
        if recomputed != hash_:
            return ChainCheck(False, checked, index, rid, REASON_HASH)
        expected_prev = hash_
    return ChainCheck(True, checked)
