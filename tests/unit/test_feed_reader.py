"""The board feed's fast reader says exactly what `parse` says: the same event, or the same refusal."""
import json

import pytest

from schemas.envelope import EnvelopeError, utcnow
from schemas.events import UnitPositionReported, UnitRegistered
from schemas.registry import make_event, parse
from services.feeds import Reader

READER = Reader(UnitPositionReported)


def _position(**changes) -> bytes:
    raw = json.loads(make_event(UnitPositionReported(unit_id="U1", lat=-6.2, lon=106.8, at=utcnow()),
                                source="/test").to_bytes())
    for path, value in changes.items():
        target, *rest = path.split("__")
        if rest:
            raw[target][rest[0]] = value
        else:
            raw[target] = value
    return json.dumps(raw).encode()


def _same_refusal(raw: bytes) -> None:
    with pytest.raises(EnvelopeError) as expected:
        parse(raw)
    with pytest.raises(EnvelopeError) as fast:
        READER.event_of(raw)
    assert str(fast.value) == str(expected.value)


def test_a_position_reads_as_parse_reads_it():
    raw = _position()
    assert READER.event_of(raw) == parse(raw)[1]


def test_another_event_type_on_the_topic_is_still_read():
    raw = make_event(UnitRegistered(unit_id="U2", callsign="U2", kind="car", station="polsek-uji",
                                    registered_at=utcnow()), source="/test").to_bytes()
    event = READER.event_of(raw)
    assert isinstance(event, UnitRegistered) and event == parse(raw)[1]


@pytest.mark.parametrize("raw", [
    _position(data__lat=123.0),               # out of range
    _position(data__unit_id=None),            # a required field missing its value
    _position(dataschema="spkt:unit.position-reported/v99"),  # a version nobody knows
    _position(type="no.such-type"),
    b"{not json",
    None,                                      # a tombstone
], ids=["invalid-position", "missing-unit", "unknown-version", "unknown-type", "not-json", "no-value"])
def test_what_parse_refuses_the_reader_refuses_with_the_same_reason(raw):
    _same_refusal(raw)
