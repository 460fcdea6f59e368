"""The projection's batches (services/projection/batches.py) on SQLite and PostgreSQL: events applied
several to a transaction leave the read model as one transaction each does; when one fails, only it
is set aside; nothing gathered waits past a quiet moment."""
import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from schemas.envelope import derived_id
from schemas.events import (
    Candidate, DispatchRecommended, IncidentOpened, Location, Reporter, ReportReceived, UnitPositionReported,
    UnitRegistered,
)
from schemas.registry import make_event
from services.projection import tables as t
from services.projection.batches import Batches
from services.projection.tables import prepare
from services.streaming import Origin
from tests.e2e.test_api_contract import read_model_differences, read_model_rows

from .page_watch import PageWatchingProjector

NOW = datetime(2026, 11, 29, 1, 0, tzinfo=timezone.utc)


def a_report_flow(i: int) -> list:
    """A report, its incident and the recommendation; every third incident read before its report."""
    report_id = f"batch-report-{i:03d}"
    report = ReportReceived(report_id=report_id, tracking_code=f"SPKT-B{i:03d}-AAAA", channel="phone_110",
                            reporter=Reporter(name="Siti", phone=f"+62812000{i:05d}"), description="Motor dicuri",
                            location=Location(lat=-6.2441 + i / 1000, lon=106.8001), received_at=NOW)
    incident_id = derived_id("incident", report_id)
    opened = IncidentOpened(incident_id=incident_id, number=f"KJD/JAKSEL/2026/{i:06d}", report_ids=[report_id],
                            category="theft", priority="P2", summary="Pencurian motor", location=report.location,
                            opened_at=NOW + timedelta(seconds=1), polres="polres-jaksel")
    recommended = DispatchRecommended(
        incident_id=incident_id, recommended_at=NOW + timedelta(seconds=2), excluded=[],
        candidates=[Candidate(unit_id="batch-unit", callsign="P-1", kind="car", distance_m=120.0 + i, eta_s=30.0,
                              reasons=["tercepat tiba"])])
    flow = [report, opened, recommended]
    return [opened, report, recommended] if i % 3 == 0 else flow


def stream(count: int) -> list[tuple]:
    """(envelope, event, origin) as the agent hands them over, offsets in order."""
    events = [UnitRegistered(unit_id="batch-unit", callsign="P-1", kind="car", station="polsek-gambir",
                             registered_at=NOW),
              UnitPositionReported(unit_id="batch-unit", lat=-6.2, lon=106.8, at=NOW)]
    events += [e for i in range(count) for e in a_report_flow(i)]
    return [(make_event(e, source="/test/batches"), e, Origin("spkt.test", 0, offset))
            for offset, e in enumerate(events)]


@pytest.fixture
def two_read_models(database_url, tmp_path):
    """The database under test, fed in batches, and a SQLite one fed one event a transaction."""
    alone_url = f"sqlite:///{tmp_path / 'one-at-a-time.db'}"
    batched, alone = prepare(database_url), prepare(alone_url)
    yield (PageWatchingProjector(batched), database_url), (PageWatchingProjector(alone), alone_url)
    batched.kw["bind"].dispose()
    alone.kw["bind"].dispose()


def stored(projector) -> int:
    with projector.sessions() as s:
        return s.scalar(select(func.count()).select_from(t.ProcessedEvent))


def test_events_applied_in_batches_leave_the_read_model_as_one_transaction_each(two_read_models):
    (batched, batched_url), (alone, alone_url) = two_read_models
    events = stream(20)
    set_aside = []

    async def feed() -> Batches:
        batches = Batches(batched, lambda origin, exc: set_aside.append((origin, exc)), size=7, quiet_s=60)
        for envelope, event, origin in events:
            await batches.add(envelope, event, origin)
        await batches.flush()
        return batches

    batches = asyncio.run(feed())
    for envelope, event, origin in events:
        alone.apply(envelope, event, topic=origin.topic, partition=origin.partition, offset=origin.offset)
    batched.flush_positions(), alone.flush_positions()
    assert set_aside == []
    assert batches.transactions == -(-len(events) // 7)  # every batch stored whole: ceil(62 / 7) = 9
    assert stored(batched) == len(events) - 1  # the GPS fix is held, not recorded as processed
    differ = read_model_differences(read_model_rows(alone_url), read_model_rows(batched_url))
    assert differ == {}, differ
    with batched.sessions() as s:
        assert s.scalar(select(func.count()).select_from(t.Recommendation)) == 20
        assert s.scalar(select(func.count()).select_from(t.WaitingEvent)) == 0
        assert s.get(t.Unit, "batch-unit").lat == -6.2


def test_an_event_that_fails_is_set_aside_alone_and_the_rest_of_its_batch_is_stored(database_url):
    sessions = prepare(database_url)
    events = stream(3)
    poison = events[5][0].id  # the second report's flow, in the middle of the batch

    class FailingOn(PageWatchingProjector):
        def _apply_in(self, session, envelope, event, *where):
            if envelope.id == poison:
                raise ValueError("cannot project this one")
            return super()._apply_in(session, envelope, event, *where)

    projector = FailingOn(sessions)
    set_aside = []

    async def record(origin, exc):
        set_aside.append((origin.offset, str(exc)))

    async def feed() -> Batches:
        batches = Batches(projector, record, size=len(events), quiet_s=60)
        for envelope, event, origin in events:
            await batches.add(envelope, event, origin)
        return batches

    try:
        batches = asyncio.run(feed())
        assert set_aside == [(5, "cannot project this one")]
        assert batches.transactions == 1 + len(events)  # the batch, then each event alone
        assert stored(projector) == len(events) - 2  # all but the GPS fix (held) and the failed one
        with sessions() as s:
            ids = set(s.scalars(select(t.ProcessedEvent.event_id)))
        assert poison not in ids and all(e.id in ids for e, ev, _ in events
                                         if e.id != poison and not isinstance(ev, UnitPositionReported))
    finally:
        sessions.kw["bind"].dispose()


def test_what_gathers_is_stored_once_no_other_event_comes_for_a_moment_or_the_batch_is_full(database_url):
    sessions = prepare(database_url)
    projector = PageWatchingProjector(sessions)
    events = stream(2)[2:]  # two report flows: six events

    async def scenario():
        batches = Batches(projector, None, size=4, quiet_s=0.05, max_wait_s=60)
        for envelope, event, origin in events[:3]:
            await batches.add(envelope, event, origin)
        before_quiet = stored(projector)  # nothing yielded to the loop since: the quiet flush has not run
        deadline = asyncio.get_running_loop().time() + 10
        while stored(projector) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        after_quiet = stored(projector)
        for envelope, event, origin in events[3:]:  # three more: the fourth fills no batch of 4 ...
            await batches.add(envelope, event, origin)
        full = Batches(projector, None, size=2, quiet_s=60, max_wait_s=60)
        late = stream(3)[-3:]
        await full.add(*late[0])
        await full.add(*late[1])  # ... but a batch of two is full at the second
        return before_quiet, after_quiet, len(batches), stored(projector), full.transactions

    try:
        before_quiet, after_quiet, left, total, full_transactions = asyncio.run(scenario())
        assert (before_quiet, after_quiet) == (0, 3)
        assert left == 3 and total == 5 and full_transactions == 1
    finally:
        sessions.kw["bind"].dispose()
