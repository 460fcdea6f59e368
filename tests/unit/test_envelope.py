"""The one envelope: CloudEvents 1.0 structured mode, and clear errors for anything else."""
from datetime import datetime, timezone

import pytest

from schemas.envelope import MAX_EVENT_BYTES, Envelope, EnvelopeError, derived_id
from schemas.events import ALL_EVENTS, UnitRegistered
from schemas.registry import REGISTRY, UnknownEventType, caused_by, decode, make_event, parse

AT = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)


def unit_registered(**over):
    data = dict(unit_id="u-1", callsign="Patroli 1", kind="car", station="polsek-tebet", registered_at=AT)
    data.update(over)
    return UnitRegistered(**data)


def test_round_trip_keeps_every_attribute():
    event = make_event(unit_registered(), source="/spkt/test", correlationid="c-1", causationid="e-0")
    again, data = parse(event.to_bytes())
    assert again == event
    assert data == unit_registered()
    assert again.specversion == "1.0" and again.datacontenttype == "application/json"
    assert again.subject == "u-1"
    assert again.dataschema == "urn:spkt:unit.registered:v1"


def test_an_event_without_a_cause_starts_its_own_correlation():
    event = make_event(unit_registered(), source="/t")
    assert event.correlationid == event.id and event.causationid is None
    follow = caused_by(event)
    assert follow == {"correlationid": event.id, "causationid": event.id}


def test_registry_knows_every_event_type_once():
    assert set(REGISTRY) == {cls.event_type for cls in ALL_EVENTS}
    assert len(REGISTRY) == len(ALL_EVENTS)
    for needed in ("report.received", "incident.opened", "dispatch.recommended", "unit.registered",
                   "unit.status-changed", "unit.position-reported", "unit.assigned", "incident.closed"):
        assert needed in REGISTRY


@pytest.mark.parametrize("raw, words", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"specversion": "1.0"}', "id: Field required"),
    (b"", "not JSON"),
    (None, "empty message"),
    (b"\xff\xfe", "not JSON"),
])
def test_malformed_messages_are_refused_with_a_reason(raw, words):
    with pytest.raises(EnvelopeError) as caught:
        parse(raw)
    assert words in str(caught.value)


def test_oversized_message_is_refused_before_parsing():
    with pytest.raises(EnvelopeError, match="exceeds the limit"):
        Envelope.from_bytes(b" " * (MAX_EVENT_BYTES + 1))


def test_unknown_type_and_wrong_version_and_bad_data_are_named():
    good = make_event(unit_registered(), source="/t")
    with pytest.raises(UnknownEventType, match="unknown event type 'unit.teleported'"):
        decode(good.model_copy(update={"type": "unit.teleported"}))
    with pytest.raises(EnvelopeError, match="unsupported schema"):
        decode(good.model_copy(update={"dataschema": "urn:spkt:unit.registered:v9"}))
    with pytest.raises(EnvelopeError, match="kind"):
        decode(good.model_copy(update={"data": {**good.data, "kind": "helicopter"}}))


def test_readers_ignore_fields_added_by_newer_producers():
    good = make_event(unit_registered(), source="/t")
    newer = good.model_copy(update={"data": {**good.data, "radio_channel": "7"}})
    assert decode(newer) == unit_registered()


def test_derived_ids_are_stable_and_distinct():
    assert derived_id("incident", "r-1") == derived_id("incident", "r-1")
    assert derived_id("incident", "r-1") != derived_id("incident", "r-2")
