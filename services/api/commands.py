"""Commands a user waits on: publish, then wait a bounded time for the outcome the projection records.

The outcome is the first event the command led to, correlated by command id (see the projection's
`command_outcomes`): accepted (the caller answers 201/200) or rejected with the reason (409).
Nothing recorded within the wait: 202 with where to look.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from schemas import topics
from schemas.envelope import Envelope, derived_id, utcnow
from schemas.registry import make_event
from services.projection import tables as t

from .auth import Principal
from .models import CommandPending
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


def decided(found: t.CommandOutcome | None, part: str) -> bool:
    """Refused, or the event the caller answers with is recorded."""
    return found is not None and (not found.accepted or part in found.result)


async def await_outcome(sessions: sessionmaker, command_id_: str, part: str, wait_s: float) -> t.CommandOutcome | None:
    """The command's outcome once the projection has it (`part`: the event type answered with),
    or None after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        found = outcome_of(sessions, command_id_)
        if decided(found, part):
            return found
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(POLL_S)


def raise_if_rejected(found: t.CommandOutcome) -> None:
    if not found.accepted:
        raise HTTPException(status.HTTP_409_CONFLICT, found.reason or "Perintah ditolak")


async def publish_and_answer(request: Request, publisher, settings, command, part: str, answer,
                             created: bool = False, topic: str = topics.UNIT_COMMANDS, location: str | None = None):
    """Publish a command and answer with its outcome: 200/201, 409 with the reason, or 202.

    `part` is the event type answered with; `answer` makes the response from that event's result;
    `location` is where to look when the outcome is not known within the wait (202)."""
    sessions = request.app.state.sessions
    found = outcome_of(sessions, command.command_id)  # a retry with the same key: the first answer
    if not decided(found, part):
        if found is None:
            event = make_event(command, source="/spkt/api", event_id=command.command_id)
            await publish(publisher, topic, event)
        found = await await_outcome(sessions, command.command_id, part, settings.command_wait_s)
    if found is None:
        body = CommandPending(command_id=command.command_id,
                              detail="Perintah tercatat; hasilnya belum diketahui, lihat statusnya")
        return JSONResponse(body.model_dump(), status_code=202,
                            headers={"Location": location or f"/api/v1/units/{command.unit_id}"})
    raise_if_rejected(found)
    result = answer(found.result[part])
    return JSONResponse(result.model_dump(mode="json"), status_code=201 if created else 200)


# --- Idempotency-Key: a repeat gets the first answer and records nothing new ----------------------
KEY_LENGTH = t.IdempotentRequest.__table__.c.key.type.length


def _row_key(stored_key: str) -> str:
    """The key as stored: a caller's scope plus an Idempotency-Key of up to 200 characters can be
    longer than the column, which PostgreSQL refuses; such a key is stored by its digest."""
    if len(stored_key) <= KEY_LENGTH:
        return stored_key
    return "sha256:" + hashlib.sha256(stored_key.encode()).hexdigest()


def _request_hash(request_body: dict) -> str:
    return hashlib.sha256(json.dumps(request_body, sort_keys=True, default=str).encode()).hexdigest()


def earlier_answer(session: Session, stored_key: str | None, request_body: dict) -> JSONResponse | None:
    """The answer given to the first request with this key, or None; 409 if the key named another request."""
    if not stored_key:
        return None
    earlier = session.get(t.IdempotentRequest, _row_key(stored_key))
    if earlier is None:
        return None
    if earlier.request_hash != _request_hash(request_body):
        raise HTTPException(status.HTTP_409_CONFLICT, "Idempotency-Key ini sudah dipakai untuk permintaan yang berbeda")
    location = earlier.response.get("_location")
    body = {k: v for k, v in earlier.response.items() if k != "_location"}
    return JSONResponse(body, status_code=earlier.status_code, headers={"Location": location} if location else None)


def remember_answer(session: Session, stored_key: str | None, request_body: dict, status_code: int, body: dict,
                    location: str | None = None) -> JSONResponse:
    """Keep the answer for repeats of the same key, and give it."""
    if stored_key:
        session.add(t.IdempotentRequest(key=_row_key(stored_key), request_hash=_request_hash(request_body),
                                        status_code=status_code, response={**body, "_location": location},
                                        created_at=utcnow()))
        try:
            session.commit()
        except IntegrityError:  # a concurrent repeat stored it first: the same command, the same answer
            session.rollback()
    return JSONResponse(body, status_code=status_code, headers={"Location": location} if location else None)
