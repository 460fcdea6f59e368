"""The committed JSON Schemas are the contract older readers rely on."""
import copy
import json

import jsonschema
import pytest

from schemas.contracts import breaking_changes, check_all, schema_file, schema_of
from schemas.registry import REGISTRY, make_event
from schemas.events import ReportReceived


def test_models_match_their_committed_schema_files():
    problems = {t: p for t, p in check_all().items() if p}
    assert problems == {}, "run `spkt schemas generate` (and commit) — or version the type if it breaks readers"


@pytest.mark.parametrize("event_type", sorted(REGISTRY))
def test_committed_schema_files_are_valid_json_schema(event_type):
    schema = json.loads(schema_file(REGISTRY[event_type]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


def test_an_event_as_sent_validates_against_its_committed_schema(report):
    envelope = make_event(report, source="/t")
    schema = json.loads(schema_file(ReportReceived).read_text())
    jsonschema.validate(envelope.data, schema)


def base():
    return schema_of(ReportReceived)


def test_removing_a_field_breaks_readers():
    new = base()
    del new["properties"]["tracking_code"]
    new["required"].remove("tracking_code")
    assert breaking_changes(base(), new) == ["data.tracking_code: removed"]


def test_retyping_a_field_breaks_readers():
    new = base()
    new["properties"]["description"] = {"type": "integer"}
    assert breaking_changes(base(), new) == ["data.description: type changed from ['string'] to ['integer']"]


def test_retyping_a_nested_field_breaks_readers():
    new = copy.deepcopy(base())
    new["$defs"]["Location"]["properties"]["lat"] = {"type": "string"}
    problems = breaking_changes(base(), new)
    assert any(p.startswith("data.location.lat: type changed") for p in problems)


def test_a_newly_required_field_breaks_reading_stored_events():
    new = base()
    new["properties"]["priority"] = {"type": "string"}
    new["required"].append("priority")
    assert breaking_changes(base(), new) == ["data.priority: newly required (events already stored lack it)"]


def test_adding_an_optional_field_is_compatible():
    new = base()
    new["properties"]["language"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert breaking_changes(base(), new) == []
