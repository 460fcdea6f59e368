"""The pipeline benchmark's dispatcher: what the live stream says, in whatever order it comes, tells
it which reports' recommendations to ask the API for."""
import asyncio
from types import SimpleNamespace

from benchmarks.pipeline import Dispatcher


def a_dispatcher() -> Dispatcher:
    return Dispatcher("http://api.invalid", SimpleNamespace(dispatcher="token"), session=None)


def test_a_report_is_told_of_once_its_incident_and_the_recommendation_are_both_known():
    async def go():
        d = a_dispatcher()
        d._on_stream_event("incident.opened", {"data": {"incident_id": "i-1", "report_ids": ["r-1"]}})
        assert not d._told_of("r-1").is_set()  # opened, nothing recommended yet
        d._on_stream_event("dispatch.recommended", {"data": {"incident_id": "i-2"}})
        assert not d._told_of("r-1").is_set()  # another incident's
        d._on_stream_event("dispatch.recommended", {"data": {"incident_id": "i-1"}})
        assert d._told_of("r-1").is_set()
        assert d.incident_of["r-1"] == ("i-1", False)

    asyncio.run(go())


def test_a_report_attached_to_an_incident_already_recommended_is_told_of_at_once():
    async def go():
        d = a_dispatcher()
        d._on_stream_event("incident.opened", {"data": {"incident_id": "i-1", "report_ids": ["r-1"]}})
        d._on_stream_event("dispatch.recommended", {"data": {"incident_id": "i-1"}})
        d._on_stream_event("report.attached", {"data": {"incident_id": "i-1", "report_id": "r-2"}})
        assert d._told_of("r-2").is_set()
        assert d.incident_of["r-2"] == ("i-1", True)
        assert not d._told_of("r-3").is_set()  # never on the stream

    asyncio.run(go())
