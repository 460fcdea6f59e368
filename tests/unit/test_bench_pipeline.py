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
        d._on_stream_event("dispatch.recommended", {"id": "e-2", "data": {"incident_id": "i-2"}})
        assert not d._told_of("r-1").is_set()  # another incident's
        d._on_stream_event("dispatch.recommended", {"id": "e-1", "data": {"incident_id": "i-1"}})
        assert d._told_of("r-1").is_set()
        assert d.incident_of["r-1"] == ("i-1", False)
        assert d.recommended["i-1"] == "e-1"  # what the page is asked whether it includes

    asyncio.run(go())


def test_a_report_attached_to_an_incident_already_recommended_is_told_of_at_once():
    async def go():
        d = a_dispatcher()
        d._on_stream_event("incident.opened", {"data": {"incident_id": "i-1", "report_ids": ["r-1"]}})
        d._on_stream_event("dispatch.recommended", {"id": "e-1", "data": {"incident_id": "i-1"}})
        d._on_stream_event("report.attached", {"data": {"incident_id": "i-1", "report_id": "r-2"}})
        assert d._told_of("r-2").is_set()
        assert d.incident_of["r-2"] == ("i-1", True)
        assert not d._told_of("r-3").is_set()  # never on the stream

    asyncio.run(go())


class _HeldAnswers:
    """A stand-in session whose GETs answer 404 only when released: polls stay in flight until then."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked = 0

    def get(self, url, headers):
        session = self

        class Answer:
            status = 404
            headers: dict = {}

            async def __aenter__(self):
                session.asked += 1
                await session.release.wait()
                return self

            async def __aexit__(self, *exc):
                return False

        return Answer()


def test_polls_beyond_the_guard_wait_for_a_slot_and_that_wait_is_kept_apart_from_the_round_trip():
    from benchmarks.pipeline import POLLERS

    async def go():
        session = _HeldAnswers()
        d = Dispatcher("http://api.invalid", SimpleNamespace(dispatcher="token"), session=session)
        polls = [asyncio.create_task(d._get(f"/p/{n}")) for n in range(POLLERS + 1)]
        while session.asked < POLLERS:
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert session.asked == POLLERS  # the last one waits for a slot
        session.release.set()
        assert [status for status, _, _ in await asyncio.gather(*polls)] == [404] * (POLLERS + 1)
        assert len(d.slot_waits) == len(d.round_trips) == POLLERS + 1
        assert max(d.slot_waits) >= 0.05  # the one that waited: its wait is not in its round trip
        assert min(d.slot_waits) < 0.05
        assert all(trip < 5 for trip in d.round_trips)

    asyncio.run(go())
