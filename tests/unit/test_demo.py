"""The Jakarta demo: its data, its pure helpers, and the process loop with a fake producer and a
mock HTTP transport (no broker, no network)."""
from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import signal
import threading
from collections import Counter
from datetime import datetime, timezone
from typing import get_args

import httpx
import pytest

from schemas import topics
from schemas.envelope import derived_id
from schemas.events import Channel, UnitKind, ChangeUnitStatus, UnitPositionReported, UnitRegistered
from schemas.registry import parse
from services.api.auth import Role, verify
from services.api.models import ReportIn
from spkt.demo import flow
from spkt.settings import Settings

# Jakarta, generously: every demo coordinate must fall inside.
JAKARTA = flow.Bounds(south=-6.40, north=-6.05, west=106.65, east=107.00)
AT = datetime(2026, 11, 3, 8, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def city() -> flow.City:
    return flow.load_city()


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat2 - lat1) * 111.32
    dx = (lon2 - lon1) * 111.32 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy)


# --- the data file -----------------------------------------------------------------------------

def test_data_file_loads_with_a_note_and_enough_of_everything(city):
    raw = json.loads(flow.DEFAULT_CITY.read_text(encoding="utf-8"))
    assert "approximate" in raw["note"] and "demonstration" in raw["note"].lower()
    assert city.note == raw["note"]
    assert len(city.stations) == len(raw["stations"]) >= 15
    assert len(city.units) == len(raw["units"]) >= 35
    assert len(city.places) == len(raw["places"]) >= 20
    assert len(city.report_templates) == len(raw["report_templates"]) >= 18
    levels = Counter(s.level for s in city.stations)
    assert levels["polres"] == 5 and levels["polsek"] >= 10
    assert set(levels) == {"polres", "polsek"}


def test_ids_and_callsigns_are_unique(city):
    for values in ([s.station_id for s in city.stations], [u.unit_id for u in city.units],
                   [u.callsign for u in city.units], [p.name for p in city.places],
                   [t.description for t in city.report_templates]):
        duplicates = [v for v, n in Counter(values).items() if n > 1]
        assert duplicates == []


def test_every_unit_has_a_station_and_every_polsek_a_polres(city):
    ids = {s.station_id: s for s in city.stations}
    assert [u.unit_id for u in city.units if u.station not in ids] == []
    for s in city.stations:
        if s.level == "polsek":
            assert ids[s.parent].level == "polres", s.station_id
        else:
            assert s.parent is None, s.station_id
    # every Polres has units of its own or through its Polsek
    covered = {ids[u.station].parent or u.station for u in city.units}
    assert covered == {s.station_id for s in city.stations if s.level == "polres"}


def test_unit_kinds_are_the_schema_kinds_mostly_cars_and_motorcycles(city):
    allowed = set(get_args(UnitKind))
    kinds = Counter(u.kind for u in city.units)
    assert set(kinds) <= allowed
    assert set(kinds) == allowed  # the demo shows every kind
    assert kinds["car"] + kinds["motorcycle"] > len(city.units) / 2
    for specialist in ("inafis", "reskrim", "lantas"):
        assert 2 <= kinds[specialist] <= 3, specialist
    for u in city.units:
        assert u.capabilities and all(re.fullmatch(r"[a-z_]+", c) for c in u.capabilities), u.unit_id
        assert len(u.callsign) <= 40 and re.fullmatch(r"[a-z0-9-]+", u.unit_id), u.unit_id
    assert all("identification" in u.capabilities for u in city.units if u.kind == "inafis")
    assert all("traffic" in u.capabilities for u in city.units if u.kind == "lantas")
    assert all("investigation" in u.capabilities for u in city.units if u.kind == "reskrim")


def test_every_coordinate_is_in_jakarta(city):
    b = city.bounds
    assert JAKARTA.contains(b.south, b.west) and JAKARTA.contains(b.north, b.east)
    assert b.south < b.north and b.west < b.east
    points = [(s.station_id, s.lat, s.lon) for s in city.stations] + [(p.name, p.lat, p.lon) for p in city.places]
    outside = [name for name, lat, lon in points if not (JAKARTA.contains(lat, lon) and b.contains(lat, lon))]
    assert outside == []
    assert all(p.address.strip() and "Jakarta" in p.address for p in city.places)


def test_every_template_makes_a_valid_report(city):
    place = city.places[0]
    categories = Counter(t.category for t in city.report_templates)
    assert categories[None] >= 3  # work left for the classifier
    assert {"vehicle_theft", "street_robbery", "traffic_accident", "fire", "brawl", "fraud",
            "domestic_violence", "missing_person", "public_order", "lost_goods"} <= set(categories)
    assert {t.channel for t in city.report_templates} <= set(get_args(Channel))
    for t in city.report_templates:
        assert t.category is None or re.fullmatch(r"[a-z_]{3,64}", t.category)
        body = {"channel": t.channel, "description": t.description.replace("{place}", place.name),
                "category": t.category, "assistance_request": t.assistance_request,
                "location": {"lat": place.lat, "lon": place.lon, "address": place.address}}
        report = ReportIn.model_validate(body)
        assert "{" not in report.description and len(report.description) < 300


# --- pure helpers ------------------------------------------------------------------------------

def test_make_report_bodies_are_valid_report_in(city):
    rng = random.Random(7)
    seen_channels = set()
    for _ in range(300):
        body = flow.make_report(city, rng, now=AT)
        report = ReportIn.model_validate(body)  # extra="forbid": no stray keys either
        seen_channels.add(report.channel)
        assert city.bounds.contains(report.location.lat, report.location.lon)
        assert report.location.address
        assert any(km_between(report.location.lat, report.location.lon, p.lat, p.lon) < 0.3 for p in city.places)
        assert report.occurred_at is not None and report.occurred_at < AT
        assert "{place}" not in report.description
        if report.reporter.phone is not None:
            assert re.fullmatch(r"\+628\d{9,10}", report.reporter.phone)
        if report.channel in ("phone_110", "walk_in", "whatsapp", "web"):
            assert report.reporter.name and report.reporter.phone
    assert seen_channels == {t.channel for t in city.report_templates}


def test_make_report_is_reproducible_with_the_same_seed(city):
    a = [flow.make_report(city, random.Random(3), now=AT) for _ in range(2)]
    assert a[0] == a[1]
    assert flow.make_report(city, random.Random(4), now=AT) != a[0]


def test_start_position_is_near_the_station(city):
    rng = random.Random(1)
    for unit in city.units:
        lat, lon = flow.start_position(unit, city, rng)
        station = city.station(unit.station)
        assert city.bounds.contains(lat, lon)
        assert km_between(lat, lon, station.lat, station.lon) < 1.7, unit.unit_id


@pytest.mark.parametrize("speed", [4.0, 25.0, 30.0, 120.0])
def test_a_thousand_steps_stay_inside_the_bounds(city, speed):
    rng = random.Random(int(speed))
    b = city.bounds
    lat, lon, heading = b.north - 0.001, b.east - 0.001, 45.0  # start in a corner, heading out
    travelled = 0.0
    for _ in range(1000):
        new_lat, new_lon, heading = flow.next_position(lat, lon, heading, speed, 5.0, rng, b)
        assert b.contains(new_lat, new_lon)
        assert JAKARTA.contains(new_lat, new_lon)
        assert 0.0 <= heading < 360.0
        step = km_between(lat, lon, new_lat, new_lon)
        assert step <= speed * 5.0 / 3600 * 1.01 + 1e-9  # never jumps further than it can drive
        travelled += step
        lat, lon = new_lat, new_lon
    assert travelled > speed * 5.0 / 3600 * 1000 * 0.5  # it really moves, not stuck on an edge


def test_a_unit_at_the_edge_turns_back(city):
    b = city.bounds
    lat, lon, heading = flow.next_position(b.north, (b.west + b.east) / 2, 0.0, 30.0, 60.0,
                                           random.Random(5), b)
    assert lat <= b.north and 90.0 < heading < 270.0  # now heading south
    lat, lon, heading = flow.next_position((b.south + b.north) / 2, b.west, 270.0, 30.0, 60.0,
                                           random.Random(5), b)
    assert lon >= b.west and 0.0 < heading < 180.0  # now heading east


def test_a_standing_unit_does_not_move(city):
    lat, lon, _ = flow.next_position(-6.2, 106.8, 10.0, 0.0, 5.0, random.Random(2), city.bounds)
    assert (lat, lon) == (-6.2, 106.8)


# --- events ------------------------------------------------------------------------------------

def test_registration_events_validate_and_are_stable(city):
    first = flow.registration_events(city, at=AT)
    again = flow.registration_events(city, at=datetime(2026, 11, 4, tzinfo=timezone.utc))
    assert len(first) == len(city.units)
    assert [e.id for _, _, e in first] == [e.id for _, _, e in again]  # a restart republishes the same events
    for (topic, key, envelope), unit in zip(first, city.units):
        assert topic == topics.UNIT_STATUS == topics.topic_for("unit.registered")
        assert key == unit.unit_id.encode()
        assert envelope.id == derived_id("demo", unit.unit_id, "registered")
        assert envelope.source == "/spkt/demo" and envelope.subject == unit.unit_id
        decoded_envelope, data = parse(envelope.to_bytes())
        assert isinstance(data, UnitRegistered)
        assert (data.unit_id, data.callsign, data.kind, data.station) == (unit.unit_id, unit.callsign, unit.kind,
                                                                           unit.station)
        assert data.capabilities == list(unit.capabilities)
        assert decoded_envelope.id == envelope.id


def test_position_and_status_events_validate():
    topic, key, envelope = flow.position_event("kby-car-1", -6.2421234567, 106.7987, at=AT, speed_kmh=24.56,
                                               heading=359.96)
    assert topic == topics.UNIT_POSITIONS == topics.topic_for("unit.position-reported") and key == b"kby-car-1"
    _, data = parse(envelope.to_bytes())
    assert isinstance(data, UnitPositionReported)
    assert data.lat == pytest.approx(-6.242123) and 0 <= data.heading < 360 and data.speed_kmh == 24.6
    topic, key, envelope = flow.status_event("kby-car-1", "break", "available", at=AT)
    assert topic == topics.UNIT_COMMANDS == topics.topic_for("change-unit-status") and key == b"kby-car-1"
    _, data = parse(envelope.to_bytes())
    assert isinstance(data, ChangeUnitStatus)
    assert (data.status, data.requested_by) == ("break", "demo") and data.command_id == envelope.id


# --- the process, with a fake producer and a mock API ------------------------------------------

class FakeFuture:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get(self, timeout=None):
        if self.error is not None:
            raise self.error
        return object()


class FakeProducer:
    """kafka-python's send/flush/close; the first `fail_sends` sends are not acknowledged."""

    def __init__(self, fail_sends: int = 0) -> None:
        self.sent: list[tuple[str, bytes, dict]] = []
        self.fail_sends = fail_sends
        self.closed = False
        self.lock = threading.Lock()

    def send(self, topic, key=None, value=None):
        with self.lock:
            if self.fail_sends > 0:
                self.fail_sends -= 1
                return FakeFuture(TimeoutError("broker not answering"))
            self.sent.append((topic, key, json.loads(value)))
            return FakeFuture()

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        self.closed = True

    def of_type(self, event_type: str) -> list[dict]:
        with self.lock:
            return [v for _, _, v in self.sent if v["type"] == event_type]


class FakeApi:
    """The two endpoints the demo calls; checks the bearer token like the real API."""

    def __init__(self, settings: Settings, *, failures: list | None = None, board: list[str] | None = None) -> None:
        self.settings = settings
        self.failures = list(failures or [])  # per POST: an exception to raise or a status to answer
        self.board = board
        self.posts: list[httpx.Request] = []
        self.gets: list[httpx.Request] = []
        self.accepted: list[dict] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url).startswith(self.settings.api_url)
        try:
            principal = verify(self.settings, request.headers["Authorization"].removeprefix("Bearer "))
        except (KeyError, ValueError):
            return httpx.Response(401, json={"detail": "Token tidak sah"})
        if request.method == "GET" and request.url.path == "/api/v1/units":
            self.gets.append(request)
            assert principal.role is Role.command_center
            if self.board is None:
                return httpx.Response(503, json={"detail": "not ready"})
            return httpx.Response(200, json={"items": [{"unit_id": u, "status": "available"} for u in self.board]})
        assert (request.method, request.url.path) == ("POST", "/api/v1/reports")
        assert (principal.sub, principal.role) == ("demo-call-taker", Role.call_taker)
        self.posts.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, json={"detail": "later"})
        body = ReportIn.model_validate_json(request.content)
        n = len(self.accepted) + 1
        answer = {"report_id": f"r-{n}", "tracking_code": f"SPKT-TEST-{n:04d}", "status": "received"}
        self.accepted.append({"body": body, "key": request.headers.get("Idempotency-Key"), **answer})
        return httpx.Response(202, json=answer)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path, jwt_secret="demo-test-secret-" + "x" * 32, api_host="127.0.0.1",
                    api_port=18999, demo_position_interval_s=0.01, demo_report_interval_s=0.01,
                    ack_timeout_s=1.0)


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(flow, "RETRY_BACKOFF_S", (0.01,))
    monkeypatch.setattr(flow, "BREAK_CHANCE", 0.0)


def test_run_registers_moves_and_reports(city, settings, quick, caplog):
    producer, api = FakeProducer(), FakeApi(settings)
    caplog.set_level(logging.INFO, logger=flow.__name__)
    with api.client() as http:
        cycles = flow.run(settings, max_cycles=3, rng=random.Random(11), city=city, producer=producer, http=http)
    assert cycles == 3
    n = len(city.units)
    # first every registration, then a first position of every unit, then the rounds
    assert [v["type"] for _, _, v in producer.sent[:n]] == ["unit.registered"] * n
    assert [v["type"] for _, _, v in producer.sent[n:2 * n]] == ["unit.position-reported"] * n
    assert len(producer.of_type("unit.position-reported")) == n * 4
    assert {topic for topic, _, v in producer.sent if v["type"] == "unit.position-reported"} == {topics.UNIT_POSITIONS}
    assert all(key == v["subject"].encode() for _, key, v in producer.sent)
    moved = {v["data"]["unit_id"] for v in producer.of_type("unit.position-reported")[-n:]
             if v["data"]["speed_kmh"] > 0}
    assert len(moved) == n
    assert not producer.closed  # given to run, so not run's to close
    assert 1 <= len(api.accepted) <= 4
    assert all(a["key"] for a in api.accepted) and len({a["key"] for a in api.accepted}) == len(api.accepted)
    assert "SPKT-TEST-0001" in caplog.text
    record = next(r for r in caplog.records if "SPKT-TEST-0001" in r.getMessage())
    assert record.report_id == "r-1"


def test_registration_is_retried_until_acknowledged(city, settings, quick):
    producer, api = FakeProducer(fail_sends=5), FakeApi(settings)
    with api.client() as http:
        flow.run(settings, max_cycles=1, rng=random.Random(1), city=city, producer=producer, http=http)
    registered = producer.of_type("unit.registered")
    n = len(city.units)
    # The first attempt lost five; the whole batch went again, under the same ids (consumers dedupe).
    assert len(registered) == 2 * n - 5
    assert [e["data"]["unit_id"] for e in registered[-n:]] == [u.unit_id for u in city.units]
    assert {e["id"] for e in registered} == {derived_id("demo", u.unit_id, "registered") for u in city.units}
    assert len(producer.of_type("unit.position-reported")) >= 2 * n  # first positions, then a round


def test_transient_api_errors_do_not_stop_the_demo_and_the_report_is_retried(city, settings, quick, caplog):
    api = FakeApi(settings, failures=[httpx.ConnectError("refused"), 503, httpx.ReadTimeout("slow")])
    with api.client() as http:
        flow.run(settings, max_cycles=8, rng=random.Random(2), city=city, producer=FakeProducer(), http=http)
    assert len(api.posts) >= 4 and api.accepted
    keys = [r.headers["Idempotency-Key"] for r in api.posts]
    assert len(set(keys[:4])) == 1  # the same report, retried under its key until accepted
    assert api.accepted[0]["key"] == keys[0]
    assert "will be retried" in caplog.text


def test_a_broken_broker_during_the_rounds_is_survived(city, settings, quick):
    class Flaky(FakeProducer):
        rounds = 0

        def flush(self, timeout=None):
            Flaky.rounds += 1
            if Flaky.rounds in (2, 3):
                raise TimeoutError("flush timed out")

    producer = Flaky()
    with FakeApi(settings).client() as http:
        cycles = flow.run(settings, max_cycles=5, rng=random.Random(3), city=city, producer=producer, http=http)
    assert cycles == 5 and Flaky.rounds >= 6


def test_a_refused_token_is_minted_again(city, settings, quick, monkeypatch):
    minted = []
    real_mint = flow.mint

    def counting_mint(*args, **kwargs):
        minted.append(kwargs["sub"])
        return real_mint(*args, **kwargs)

    monkeypatch.setattr(flow, "mint", counting_mint)
    api = FakeApi(settings, failures=[401])
    with api.client() as http:
        flow.run(settings, max_cycles=1, rng=random.Random(4), city=city, producer=FakeProducer(), http=http)
    assert minted.count("demo-call-taker") == 2
    assert len(api.posts) == 2 and len(api.accepted) == 1


def test_breaks_only_for_units_the_board_shows_available(city, settings, quick, monkeypatch):
    monkeypatch.setattr(flow, "BREAK_CHANCE", 1.0)
    monkeypatch.setattr(flow, "BREAK_SECONDS", (0.0, 0.0))
    api = FakeApi(settings, board=["tbt-car-1", "no-such-unit"])
    producer = FakeProducer()
    with api.client() as http:
        flow.run(settings, max_cycles=2, rng=random.Random(5), city=city, producer=producer, http=http)
    changes = [(v["data"]["unit_id"], v["data"]["status"]) for v in producer.of_type("change-unit-status")]
    assert changes[:2] == [("tbt-car-1", "break"), ("tbt-car-1", "available")]
    assert api.gets


def test_no_break_when_the_board_is_not_readable(city, settings, quick, monkeypatch):
    monkeypatch.setattr(flow, "BREAK_CHANCE", 1.0)
    api = FakeApi(settings, board=None)
    producer = FakeProducer()
    with api.client() as http:
        flow.run(settings, max_cycles=3, rng=random.Random(6), city=city, producer=producer, http=http)
    assert len(api.gets) == 3
    assert producer.of_type("change-unit-status") == []


def test_units_on_break_come_back_when_the_demo_stops(city, settings, quick, monkeypatch):
    monkeypatch.setattr(flow, "BREAK_CHANCE", 1.0)
    monkeypatch.setattr(flow, "BREAK_SECONDS", (3600.0, 3600.0))
    producer = FakeProducer()
    with FakeApi(settings, board=["mtg-car-1"]).client() as http:
        flow.run(settings, max_cycles=1, rng=random.Random(7), city=city, producer=producer, http=http)
    statuses = [v["data"]["status"] for v in producer.of_type("change-unit-status")]
    assert statuses == ["break", "available"]


def test_stop_event_stops_the_loop_promptly(city, settings, quick):
    settings = settings.model_copy(update={"demo_position_interval_s": 60.0, "demo_report_interval_s": 60.0})
    stop = threading.Event()
    producer = FakeProducer()
    result = {}
    with FakeApi(settings).client() as http:
        worker = threading.Thread(target=lambda: result.setdefault(
            "cycles", flow.run(settings, stop_event=stop, city=city, producer=producer, http=http)))
        worker.start()
        threading.Timer(0.2, stop.set).start()
        worker.join(timeout=5)
    assert not worker.is_alive()
    assert result["cycles"] == 0 and len(producer.of_type("unit.registered")) == len(city.units)


def test_sigterm_stops_the_demo_and_the_handler_is_restored(city, settings, quick):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    settings = settings.model_copy(update={"demo_position_interval_s": 0.05, "demo_report_interval_s": 60.0})
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        with FakeApi(settings).client() as http:
            cycles = flow.run(settings, city=city, producer=FakeProducer(), http=http)
    finally:
        timer.cancel()
    assert 1 <= cycles < 100
    assert signal.getsignal(signal.SIGTERM) is before
