"""From a type string to its model, and from a model to a complete envelope."""
from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from .envelope import Envelope, EnvelopeError, describe_errors, new_event_id, utcnow
from .events import ALL_EVENTS, EventData

REGISTRY: dict[str, type[EventData]] = {cls.event_type: cls for cls in ALL_EVENTS}


class UnknownEventType(EnvelopeError):
    pass


def dataschema_of(cls: type[EventData]) -> str:
    return f"urn:spkt:{cls.event_type}:v{cls.version}"


def make_event(
    data: EventData,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
) -> Envelope:
    event_id = event_id or new_event_id()
    return Envelope(
        id=event_id,
        source=source,
        type=data.event_type,
        time=time or utcnow(),
        subject=data.subject(),
        dataschema=dataschema_of(type(data)),
        # A flow is correlated by its first event: an event without a cause starts one.
        correlationid=correlationid or event_id,
        causationid=causationid,
        data=data.model_dump(mode="json", exclude_none=True),
    )


def caused_by(cause: Envelope) -> dict[str, str | None]:
    """The tracing attributes of an event emitted in reaction to `cause`."""
    return {"correlationid": cause.correlationid or cause.id, "causationid": cause.id}


def decode(envelope: Envelope) -> EventData:
    """The typed payload; EnvelopeError with a readable reason when it is not one we know."""
    cls = REGISTRY.get(envelope.type)
    if cls is None:
        raise UnknownEventType(f"unknown event type {envelope.type!r}")
    expected = dataschema_of(cls)
    if envelope.dataschema is not None and envelope.dataschema != expected:
        raise EnvelopeError(
            f"unsupported schema {envelope.dataschema!r} for {envelope.type} (this reader knows {expected!r})"
        )
    try:
        return cls.model_validate(envelope.data)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid {envelope.type} data: {describe_errors(exc)}") from None


def parse(raw: bytes | str | None) -> tuple[Envelope, EventData]:
    envelope = Envelope.from_bytes(raw)
    return envelope, decode(envelope)


def record_events(events: list[EventData], at: datetime) -> dict:
    """What a handler decided, as JSON, so handling the same input again replays it exactly."""
    return {"at": at.isoformat(), "events": [{"type": e.event_type, "data": e.model_dump(mode="json")}
                                             for e in events]}


def replay_events(recorded: dict) -> list[EventData]:
    return [REGISTRY[item["type"]].model_validate(item["data"]) for item in recorded["events"]]
