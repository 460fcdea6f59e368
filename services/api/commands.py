"""Commands a user waits on: publish, then wait a bounded time for the outcome the projection records.

The outcome is the first event the command led to, correlated by command id (see the projection's
`command_outcomes`): accepted (the caller answers 201/200) or rejected with the reason (409).
Nothing recorded within the wait: 202 with where to look.
"""
from __future__ import annotations

import asyncio
import time
import uuid

from fastapi import HTTPException, status
from sqlalchemy.orm import sessionmaker

from schemas.envelope import Envelope, derived_id
from services.projection import tables as t

from .auth import Principal
from .publisher import BrokerUnavailable, Publisher

POLL_S = 0.02


def command_id(principal: Principal, idempotency_key: str | None, *scope: str) -> str:
    """The same Idempotency-Key names the same command, so a retried request changes nothing new
    and gets the first answer."""
    if idempotency_key:
        return derived_id("command", principal.sub, *scope, idempotency_key)
    return str(uuid.uuid4())


async def publish(publisher: Publisher, topic: str, envelope: Envelope, key: str | None = None) -> None:
    """Publish or answer 503: nothing is recorded unless the broker acknowledged it."""
    try:
        await publisher.publish(topic, envelope, key=key)
    except BrokerUnavailable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "Sistem antrean sedang tidak tersedia; perintah belum tercatat, silakan ulangi",
                            headers={"Retry-After": "5"}) from None


def outcome_of(sessions: sessionmaker, command_id_: str) -> t.CommandOutcome | None:
    with sessions() as session:
        return session.get(t.CommandOutcome, command_id_)


async def await_outcome(sessions: sessionmaker, command_id_: str, wait_s: float) -> t.CommandOutcome | None:
    """The command's outcome once the projection has it, or None after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        found = outcome_of(sessions, command_id_)
        if found is not None or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(POLL_S)


def raise_if_rejected(found: t.CommandOutcome) -> None:
    if not found.accepted:
        raise HTTPException(status.HTTP_409_CONFLICT, found.reason or "Perintah ditolak")
