"""The one envelope every event travels in: CloudEvents 1.0, structured JSON mode.

Extension attributes `correlationid` (the first event of a flow, e.g. the report) and
`causationid` (the event that directly caused this one) let anyone trace a flow across services.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

# Anything larger is refused before parsing: no legitimate event comes near it.
MAX_EVENT_BYTES = 512 * 1024


class EnvelopeError(ValueError):
    """A message that is not a valid event. The reason is meant for a human reading dead letters."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Envelope(BaseModel):
    # Unknown extension attributes are ignored: newer producers may add some.
    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200, description="The producing service, e.g. /spkt/intake")
    type: str = Field(min_length=1, max_length=200, description="Past-tense fact, e.g. report.received")
    time: AwareDatetime
    subject: str | None = Field(default=None, description="The aggregate id: incident, unit, report")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(default=None, description="urn:spkt:<type>:v<version>")
    correlationid: str | None = None
    causationid: str | None = None
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str | None) -> "Envelope":
        if raw is None:
            raise EnvelopeError("empty message (no value)")
        if isinstance(raw, str):
            raw = raw.encode()
        if len(raw) > MAX_EVENT_BYTES:
            raise EnvelopeError(f"message of {len(raw)} bytes exceeds the limit of {MAX_EVENT_BYTES}")
        try:  # one pass of pydantic over the JSON: about half the cost of json.loads and then validating
            return cls.model_validate_json(raw)
        except ValidationError:
            pass  # read again the slow way, which says what is wrong in the words below
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise EnvelopeError("not a CloudEvents envelope: the JSON is not an object")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise EnvelopeError("not a CloudEvents envelope: " + describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """`field.path: message; ...` — short enough for a log line and a dead letter."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def new_event_id() -> str:
    return str(uuid.uuid4())


# Ids derived from what caused them make reprocessing produce the very same event, so a
# consumer that sees it twice recognises it (at-least-once delivery, idempotent handlers).
_NAMESPACE = uuid.UUID("6f1c2d4e-3b5a-4c1d-9e8f-5a7b3c2d1e0f")


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))
