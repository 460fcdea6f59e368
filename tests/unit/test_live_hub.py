"""The live stream's policy without Kafka: resume from the ring buffer, filters, GPS coalescing,
slow clients. Time is a fake clock the tests move."""
import asyncio
import json
from datetime import datetime, timezone

import pytest
from prometheus_client import REGISTRY

from schemas import topics
from schemas.events import (
    CommandRejected, IncidentOpened, Location, UnitAssigned, UnitPositionReported, UnitRegistered,
)
from schemas.registry import make_event
from services.api.live import (
    LIVE_TYPES, RESUME_SKEW_MS, LiveCore, Record, StreamFilter, Subscription, parse_types,
)

AT = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)
JAKSEL = frozenset({"polres-jaksel", "polsek-kebayoran-baru"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Log:
    """Messages onto fake partitions, with offsets counting up per partition."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}

    def record(self, topic: str, data, *, partition: int = 0, ts_ms: int = 0, raw: bytes | None = None) -> Record:
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + 1
        value = raw if raw is not None else make_event(data, source="/test").to_bytes()
        return Record(topic, partition, offset, value, ts_ms)


def opened(incident_id: str, jurisdiction: str) -> IncidentOpened:
    return IncidentOpened(incident_id=incident_id, number=f"N-{incident_id}", report_ids=[f"r-{incident_id}"],
                          category="theft", priority="P3", summary="pencurian", location=Location(lat=-6.2, lon=106.8),
                          jurisdiction=jurisdiction, opened_at=AT)


def assigned(incident_id: str, unit_id: str = "u-1") -> UnitAssigned:
    return UnitAssigned(assignment_id=f"a-{incident_id}-{unit_id}", incident_id=incident_id, unit_id=unit_id,
                        assigned_by="dispatcher", assigned_at=AT)


def position(unit_id: str, n: int) -> UnitPositionReported:
    return UnitPositionReported(unit_id=unit_id, lat=-6.2 + n * 1e-5, lon=106.8, at=AT)


def messages(frames: list[bytes]) -> list[dict]:
    """Each SSE message as {field: value}; a comment as {"comment": ...}."""
    out = []
    for block in b"".join(frames).decode().split("\n\n"):
        if not block:
            continue
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                fields["comment"] = line[1:].strip()
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        out.append(fields)
    return out


def core(clock=None, **kw) -> LiveCore:
    values = dict(buffer_events=1000, client_queue=100_000, positions_per_s=2.0, clock=clock or Clock())
    values.update(kw)
    hub = LiveCore(**values)
    hub.load_history([])  # nothing in the startup window: ready at once
    return hub


def ids(sub: Subscription) -> list[str]:
    return [m["id"] for m in messages(sub.take(10_000)) if "id" in m]


# --- the wire format -------------------------------------------------------------------------------
def test_each_message_is_id_event_and_the_envelope_exactly_as_on_kafka():
    hub, log = core(), Log()
    sub = hub.subscribe(StreamFilter())
    record = log.record(topics.INCIDENTS, opened("i-1", "polres-jaksel"), partition=2)
    hub.ingest(record)
    assert sub.take() == [b"id: spkt.incidents:2:0\nevent: incident.opened\ndata: " + record.value + b"\n\n"]


def test_an_envelope_written_over_several_lines_is_sent_on_one():
    hub, log = core(), Log()
    sub = hub.subscribe(StreamFilter())
    pretty = json.dumps(json.loads(make_event(opened("i-1", "polres-jaksel"), source="/t").to_bytes()), indent=2)
    hub.ingest(log.record(topics.INCIDENTS, None, raw=pretty.encode()))
    [message] = messages(sub.take())
    assert json.loads(message["data"]) == json.loads(pretty)
    hub.ingest(log.record(topics.INCIDENTS, None, raw=b"not json"))  # dead-letter material: not sent
    assert sub.take() == []


# --- resume ---------------------------------------------------------------------------------------
def test_a_known_last_event_id_replays_exactly_the_later_events_then_live():
    hub, log = core(), Log()
    sent = [hub.ingest(log.record(topics.INCIDENTS, opened(f"i-{n}", "polres-jaksel"), partition=n % 3)).id
            for n in range(10)]
    sub = hub.subscribe(StreamFilter(), sent[3])
    later = hub.ingest(log.record(topics.INCIDENTS, opened("i-live", "polres-jaksel"))).id
    assert ids(sub) == sent[4:] + [later]


def test_an_unknown_or_evicted_last_event_id_gets_a_reset_and_then_live_events():
    hub, log = core(buffer_events=5), Log()
    first = hub.ingest(log.record(topics.INCIDENTS, opened("i-0", "polres-jaksel"))).id
    for n in range(1, 8):
        hub.ingest(log.record(topics.INCIDENTS, opened(f"i-{n}", "polres-jaksel")))
    for stale in (first, "spkt.incidents:0:999", "garbage"):
        sub = hub.subscribe(StreamFilter(), stale)
        live = hub.ingest(log.record(topics.INCIDENTS, opened(f"i-after-{stale}", "polres-jaksel"))).id
        got = messages(sub.take())
        assert got[0]["event"] == "reset" and "id" not in got[0]
        assert json.loads(got[0]["data"])["reason"]
        assert [m["id"] for m in got[1:]] == [live]


def test_a_client_arriving_before_the_startup_window_is_read_is_answered_once_it_is():
    clock, log = Clock(), Log()
    hub = LiveCore(buffer_events=100, client_queue=100, positions_per_s=2.0, clock=clock)
    window = [log.record(topics.INCIDENTS, opened(f"i-{n}", "polres-jaksel"), ts_ms=10_000 * n)
              for n in range(4)]
    sub = hub.subscribe(StreamFilter(), "spkt.incidents:0:1")
    assert sub.take() == [] and not hub.ready.is_set()
    hub.load_history(window)
    assert ids(sub) == ["spkt.incidents:0:2", "spkt.incidents:0:3"]


def test_resuming_from_the_startup_window_also_replays_what_may_have_come_just_before_it_elsewhere():
    # Another process saw these in its own arrival order; in time order, the event on partition 1
    # at 4.5 s sorts before the id at 5 s, but the console may not have had it.
    log = Log()
    window = [log.record(topics.INCIDENTS, opened("a", "polres-jaksel"), partition=0, ts_ms=1_000),
              log.record(topics.INCIDENTS, opened("b", "polres-jaksel"), partition=1, ts_ms=5_000 - RESUME_SKEW_MS - 1),
              log.record(topics.INCIDENTS, opened("c", "polres-jaksel"), partition=1, ts_ms=4_500),
              log.record(topics.INCIDENTS, opened("d", "polres-jaksel"), partition=0, ts_ms=5_000),
              log.record(topics.INCIDENTS, opened("e", "polres-jaksel"), partition=1, ts_ms=5_100)]
    hub = LiveCore(buffer_events=100, client_queue=100, positions_per_s=2.0, clock=Clock())
    hub.load_history(window)
    sub = hub.subscribe(StreamFilter(), "spkt.incidents:0:1")  # d
    assert ids(sub) == ["spkt.incidents:1:1", "spkt.incidents:1:2"]  # c (just before it), e


# --- filters --------------------------------------------------------------------------------------
def test_types_are_parsed_and_unknown_ones_named():
    assert parse_types(None) is None and parse_types(" ") is None
    assert parse_types("incident.opened, unit.position-reported") == {"incident.opened", "unit.position-reported"}
    with pytest.raises(ValueError, match="bogus"):
        parse_types("incident.opened,bogus")
    assert "merge-incidents" not in LIVE_TYPES and "message.dead-lettered" not in LIVE_TYPES


def test_filtering_by_type():
    hub, log = core(), Log()
    sub = hub.subscribe(StreamFilter(types=frozenset({"unit.assigned"})))
    hub.ingest(log.record(topics.INCIDENTS, opened("i-1", "polres-jaksel")))
    hub.ingest(log.record(topics.ASSIGNMENTS, assigned("i-1")))
    assert [m["event"] for m in messages(sub.take())] == ["unit.assigned"]


def test_filtering_by_jurisdiction_learns_where_incidents_and_units_are():
    hub, log = core(), Log()
    scoped = hub.subscribe(StreamFilter(stations=JAKSEL))
    everyone = hub.subscribe(StreamFilter())
    for data, topic in [(opened("i-sel", "polsek-kebayoran-baru"), topics.INCIDENTS),
                        (opened("i-utara", "polres-jakut"), topics.INCIDENTS),
                        (opened("i-unlocated", "unlocated"), topics.INCIDENTS),
                        (assigned("i-sel"), topics.ASSIGNMENTS),
                        (assigned("i-utara"), topics.ASSIGNMENTS),
                        (UnitRegistered(unit_id="u-sel", callsign="S1", kind="car", station="polres-jaksel",
                                        registered_at=AT), topics.UNIT_STATUS),
                        (UnitRegistered(unit_id="u-utara", callsign="U1", kind="car", station="polsek-x",
                                        jurisdiction="polres-jakut", registered_at=AT), topics.UNIT_STATUS),
                        (position("u-sel", 1), topics.UNIT_POSITIONS),
                        (position("u-utara", 1), topics.UNIT_POSITIONS),
                        (position("u-nowhere", 1), topics.UNIT_POSITIONS),
                        (CommandRejected(command_id="c-1", command="merge-incidents", reason="x", rejected_at=AT),
                         topics.INCIDENTS)]:
        hub.ingest(log.record(topic, data))
    got = [(m["event"], json.loads(m["data"])["subject"]) for m in messages(scoped.take())]
    assert got == [("incident.opened", "i-sel"), ("incident.opened", "i-unlocated"), ("unit.assigned", "i-sel"), ("unit.registered", "u-sel"),
                   ("unit.position-reported", "u-sel")]
    assert len(messages(everyone.take())) == 11  # the unplaced ones too


def test_places_read_from_the_read_model_place_events_of_older_incidents():
    hub, log = core(), Log()
    hub.placement.preload(incidents=[("i-old", "polres-jaksel")], units=[("u-old", "polsek-kebayoran-baru")])
    scoped = hub.subscribe(StreamFilter(stations=JAKSEL))
    hub.ingest(log.record(topics.ASSIGNMENTS, assigned("i-old")))
    hub.ingest(log.record(topics.UNIT_POSITIONS, position("u-old", 1)))
    assert [m["event"] for m in messages(scoped.take())] == ["unit.assigned", "unit.position-reported"]


# --- GPS coalescing ---------------------------------------------------------------------------------
def test_positions_of_2000_units_are_thinned_per_client_and_end_on_each_units_latest():
    clock, log = Clock(), Log()
    hub = core(clock)
    subs = [hub.subscribe(StreamFilter()), hub.subscribe(StreamFilter(types=frozenset({"unit.position-reported"})))]
    units = [f"u-{n}" for n in range(2000)]
    latest = {}
    received = {id(s): {} for s in subs}  # unit -> [(time, lat)]

    def collect():
        for sub in subs:
            sub.flush_due(clock.now)
            for m in messages(sub.take(100_000)):
                data = json.loads(m["data"])["data"]
                received[id(sub)].setdefault(data["unit_id"], []).append((clock.now, data["lat"]))

    start = clock.now
    for step in range(20):  # 20 positions a unit within one second
        clock.now = start + step * 0.05
        for unit in units:
            record = log.record(topics.UNIT_POSITIONS, position(unit, step), partition=hash(unit) % 3)
            hub.ingest(record)
            latest[unit] = -6.2 + step * 1e-5
        collect()
    for _ in range(4):  # then the held-back ones go as the slots come free
        clock.now += 0.5
        collect()
    for sub in subs:
        got = received[id(sub)]
        assert set(got) == set(units)
        for unit, sends in got.items():
            times = [t for t, _ in sends]
            for t in times:  # at most 2 in any one-second window
                assert sum(1 for u in times if t <= u < t + 1.0) <= 2, (unit, times)
            assert sends[-1][1] == pytest.approx(latest[unit])
        assert sum(len(s) for s in got.values()) < 2000 * 20 / 4


def test_zero_positions_per_second_sends_every_position():
    hub, log = core(positions_per_s=0), Log()
    sub = hub.subscribe(StreamFilter())
    for n in range(5):
        hub.ingest(log.record(topics.UNIT_POSITIONS, position("u-1", n)))
    assert len(ids(sub)) == 5


def test_a_replay_sends_each_units_latest_position_only():
    hub, log = core(), Log()
    mark = hub.ingest(log.record(topics.INCIDENTS, opened("i-1", "polres-jaksel"))).id
    for n in range(5):
        hub.ingest(log.record(topics.UNIT_POSITIONS, position("u-1", n)))
    assigned_id = hub.ingest(log.record(topics.ASSIGNMENTS, assigned("i-1"))).id
    sub = hub.subscribe(StreamFilter(), mark)
    assert ids(sub) == ["spkt.unit-positions:0:4", assigned_id]


# --- slow clients -----------------------------------------------------------------------------------
def test_a_slow_client_is_dropped_while_a_fast_one_receives_everything():
    hub, log = core(client_queue=10), Log()
    before = REGISTRY.get_sample_value("spkt_live_clients_dropped_total") or 0.0
    slow = hub.subscribe(StreamFilter(), name="slow")
    fast = hub.subscribe(StreamFilter(), name="fast")
    sent, got = [], []
    for n in range(50):
        sent.append(hub.ingest(log.record(topics.INCIDENTS, opened(f"i-{n}", "polres-jaksel"))).id)
        got += ids(fast)  # the fast client reads as events come; the slow one never does
    assert got == sent
    assert slow.dropped and slow.closed and slow.take() == []
    assert hub.clients() == 1
    assert REGISTRY.get_sample_value("spkt_live_clients_dropped_total") == before + 1
    hub.unsubscribe(slow)
    hub.unsubscribe(fast)


def test_the_connected_clients_gauge_follows_subscribe_and_unsubscribe():
    hub = core()
    before = REGISTRY.get_sample_value("spkt_live_clients") or 0.0
    a, b = hub.subscribe(StreamFilter()), hub.subscribe(StreamFilter())
    assert REGISTRY.get_sample_value("spkt_live_clients") == before + 2
    hub.unsubscribe(a)
    hub.unsubscribe(a)  # twice: counted once
    hub.unsubscribe(b)
    assert REGISTRY.get_sample_value("spkt_live_clients") == before


# --- the client's loop (real time, bounded waits) -------------------------------------------------------
def test_the_stream_sends_keepalives_when_idle_and_events_and_held_back_positions_when_they_come():
    async def scenario():
        log = Log()
        hub = LiveCore(buffer_events=100, client_queue=100, positions_per_s=20.0)  # real clock
        hub.load_history([])
        sub = hub.subscribe(StreamFilter())
        frames = sub.frames(heartbeat_s=0.05)
        assert await asyncio.wait_for(anext(frames), 2) == b": keepalive\n\n"
        hub.ingest(log.record(topics.UNIT_POSITIONS, position("u-1", 0)))
        hub.ingest(log.record(topics.UNIT_POSITIONS, position("u-1", 1)))  # held back for 1/20 s
        first = messages([await asyncio.wait_for(anext(frames), 2)])
        assert [m["id"] for m in first] == ["spkt.unit-positions:0:0"]
        while True:  # keepalives may come first; the held-back position must come within the wait
            chunk = messages([await asyncio.wait_for(anext(frames), 2)])
            if any("id" in m for m in chunk):
                break
        assert [m["id"] for m in chunk] == ["spkt.unit-positions:0:1"]
        hub.unsubscribe(sub)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(frames), 2)

    asyncio.run(scenario())
