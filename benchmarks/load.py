"""Load for the benchmarks that run the real system: a fleet of units, a call centre, an SMS gateway.

- `Fleet`: units registered and reporting GPS positions straight on Kafka, as trackers do
  (unit.registered on the unit-status topic, unit.position-reported on the unit-positions topic).
- `CallCentre`: reports filed through `POST /api/v1/reports` by many call takers (each its own
  token, as at a real centre: the API limits writes per token), each with an Idempotency-Key.
- `GatewayStub`: an SMS/WhatsApp gateway on loopback that takes every message at once, so notify
  really sends its receipts without anything slow or unreachable distorting the figures.
- `EventClock`: the broker's record timestamps of report.received, incident.opened and
  dispatch.recommended, read by a consumer of its own (no group), to time the stages on Kafka.
- `group_lag`: how far a service's consumer group is behind, asked of the broker.

Every area is around Jakarta: lat -6.35..-6.10, lon 106.70..106.95.
"""
from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas import topics
from schemas.envelope import derived_id, utcnow
from schemas.events import UnitPositionReported, UnitRegistered
from schemas.registry import make_event
from services.api.auth import Role, mint
from spkt.settings import Settings

LAT = (-6.35, -6.10)
LON = (106.70, 106.95)
SOURCE = "/spkt/bench"
DESCRIPTIONS = Path(__file__).resolve().parent / "data" / "descriptions.jsonl"
CITY = Path(__file__).resolve().parents[1] / "spkt" / "demo" / "jakarta.json"

# A fleet like a Polres's: cars and motorcycles mostly, with the specialists the response plans ask for.
KINDS = (("car", 0.40), ("motorcycle", 0.35), ("foot", 0.08), ("lantas", 0.06), ("reskrim", 0.06), ("inafis", 0.05))
CAPABILITIES = {"car": ("first_aid",), "motorcycle": ("rapid_response",), "foot": (), "lantas": ("traffic",),
                "reskrim": ("investigation", "olah_tkp"), "inafis": ("identification",)}
SPEED_KMH = {"motorcycle": 30.0, "car": 25.0, "foot": 4.0, "lantas": 30.0, "reskrim": 25.0, "inafis": 25.0}
CHANNELS = ("phone_110", "phone_110", "phone_110", "walk_in", "web", "whatsapp")
FIRST = ("Budi", "Siti", "Agus", "Dewi", "Rina", "Andi", "Joko", "Putri", "Hendra", "Wahyu", "Ayu", "Fajar")
LAST = ("Santoso", "Wijaya", "Saputra", "Hidayat", "Nasution", "Siregar", "Kusuma", "Pratama", "Lubis")


def say(what: str) -> None:
    """A progress line on stderr (the user sees long work progressing)."""
    print(what, file=sys.stderr, flush=True)


def stations() -> list[str]:
    return [s["station_id"] for s in json.loads(CITY.read_text(encoding="utf-8"))["stations"]]


# --- the fleet ---------------------------------------------------------------------------------

@dataclass
class _Unit:
    unit_id: str
    kind: str
    station: str
    lat: float
    lon: float
    heading: float


class Fleet:
    """`count` units spread over the area, registered and moving on Kafka like trackers' units."""

    def __init__(self, settings: Settings, count: int, *, seed: int = 1, prefix: str = "bench") -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        kinds, weights = zip(*KINDS)
        places = stations()
        self.units = [_Unit(f"{prefix}-unit-{i:05d}", self.rng.choices(kinds, weights)[0], self.rng.choice(places),
                            self.rng.uniform(*LAT), self.rng.uniform(*LON), self.rng.uniform(0, 360))
                      for i in range(count)]
        # Batched like a tracker gateway's producer; acks=all like every writer of the system.
        self.producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all", linger_ms=5,
                                      max_in_flight_requests_per_connection=5)
        self.positions_sent = 0
        self.late_rounds = 0  # rounds the sender could not keep up with (the load generator's own limit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _send_all(self, messages: list[tuple[str, bytes, bytes]], timeout: float) -> None:
        futures = [self.producer.send(topic, key=key, value=value) for topic, key, value in messages]
        self.producer.flush(timeout=timeout)
        for future in futures:
            future.get(timeout=timeout)  # raises if the broker did not take one: the benchmark stops

    def register(self, timeout: float = 60.0) -> None:
        """unit.registered for every unit, then each unit's first position; acknowledged."""
        now = utcnow()
        messages = []
        for u in self.units:
            data = UnitRegistered(unit_id=u.unit_id, callsign=u.unit_id.upper().replace("-UNIT-", "-"), kind=u.kind,
                                  station=u.station, capabilities=list(CAPABILITIES[u.kind]), registered_at=now)
            envelope = make_event(data, source=SOURCE, event_id=derived_id("bench", u.unit_id, "registered"))
            messages.append((topics.UNIT_STATUS, u.unit_id.encode(), envelope.to_bytes()))
        self._send_all(messages, timeout)
        self._send_all([self._position(u, 0.0) for u in self.units], timeout)

    def _position(self, u: _Unit, seconds: float) -> tuple[str, bytes, bytes]:
        """The unit's next fix after `seconds` of patrol (a random walk that stays in the area)."""
        speed = SPEED_KMH[u.kind] * self.rng.uniform(0.5, 1.3)
        if seconds:
            u.heading = (u.heading + self.rng.gauss(0, 20)) % 360
            km = speed * seconds / 3600
            lat = u.lat + km * math.cos(math.radians(u.heading)) / 111.32
            lon = u.lon + km * math.sin(math.radians(u.heading)) / (111.32 * math.cos(math.radians(u.lat)))
            if not (LAT[0] <= lat <= LAT[1] and LON[0] <= lon <= LON[1]):
                u.heading = (u.heading + 180) % 360  # turn back at the edge of the area
            else:
                u.lat, u.lon = lat, lon
        data = UnitPositionReported(unit_id=u.unit_id, lat=round(u.lat, 6), lon=round(u.lon, 6), at=utcnow(),
                                    speed_kmh=round(speed, 1), heading=round(u.heading, 1) % 360)
        self.positions_sent += 1
        return topics.UNIT_POSITIONS, u.unit_id.encode(), make_event(data, source=SOURCE).to_bytes()

    def move_all(self, seconds: float, timeout: float = 60.0) -> None:
        """One position from every unit, at once (acknowledged)."""
        self._send_all([self._position(u, seconds) for u in self.units], timeout)

    def start(self, every_s: float = 5.0, tick_s: float = 0.1) -> None:
        """Each unit reports every `every_s`, the fleet spread evenly over the interval (a slice
        each `tick_s`), as thousands of independent trackers would."""
        slices = max(1, round(every_s / tick_s))

        def loop() -> None:
            n = len(self.units)
            next_at, i = time.monotonic(), 0
            while not self._stop.is_set():
                part = i % slices
                batch = [self._position(u, every_s) for u in self.units[part * n // slices:(part + 1) * n // slices]]
                for topic, key, value in batch:
                    self.producer.send(topic, key=key, value=value)
                i += 1
                next_at += tick_s
                wait = next_at - time.monotonic()
                if wait < 0:
                    self.late_rounds += 1
                    next_at = time.monotonic()
                self._stop.wait(max(0.0, wait))

        self._thread = threading.Thread(target=loop, name="fleet-positions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self.producer.flush(timeout=10)
        finally:
            self.producer.close(timeout=10)


# --- the call centre ---------------------------------------------------------------------------

def _descriptions() -> list[dict]:
    return [json.loads(line) for line in DESCRIPTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


class CallCentre:
    """Report bodies and the call takers' tokens; the HTTP itself is the caller's (sync or async)."""

    # About a twentieth of reports come without a category: intake classifies their wording.
    without_category = 0.05

    def __init__(self, settings: Settings, *, takers: int = 40, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        # The API limits writes per token (token_limit_per_minute): one token per call taker.
        self.tokens = [mint(settings, sub=f"bench-call-taker-{i:02d}", role=Role.call_taker, ttl_s=6 * 3600)
                       for i in range(takers)]
        self.dispatcher = mint(settings, sub="bench-dispatcher", role=Role.dispatcher, ttl_s=6 * 3600)
        self.texts = [d for d in _descriptions() if d["category"] not in ("officer_emergency", "assistance_request")]
        self.filed = 0

    def headers(self) -> dict[str, str]:
        """The next call taker's token and a fresh Idempotency-Key (a retry would reuse it)."""
        token = self.tokens[self.filed % len(self.tokens)]
        self.filed += 1
        return {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}

    def report(self, where: tuple[float, float] | None = None, text_no: int | None = None) -> dict:
        """A report body: at `where` (else anywhere), worded as description `text_no` (else any)."""
        rng = self.rng
        text = rng.choice(self.texts) if text_no is None else self.texts[text_no % len(self.texts)]
        lat, lon = where or (rng.uniform(*LAT), rng.uniform(*LON))
        # A phone number of its own each: the API also limits reports per caller number.
        phone = "+628" + "".join(str(rng.randrange(10)) for _ in range(10))
        body = {"channel": rng.choice(CHANNELS),
                "reporter": {"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "phone": phone},
                "description": text["text"],
                "location": {"lat": round(lat, 6), "lon": round(lon, 6), "accuracy_m": rng.choice((10, 15, 25, 50))},
                "occurred_at": (utcnow() - timedelta(minutes=rng.randint(1, 30))).isoformat(timespec="seconds")}
        if rng.random() >= self.without_category:
            body["category"] = text["category"]
        return body


# --- the SMS gateway ---------------------------------------------------------------------------

class GatewayStub:
    """Takes every message at once (200); counts them. Notify's receipts go here."""

    secret = "bench-gateway-secret"

    def __init__(self) -> None:
        stub = self
        self.received = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                self.rfile.read(int(self.headers.get("content-length") or 0))
                stub.received += 1
                body = b'{"status": "queued"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway-stub", daemon=True)

    def settings(self) -> dict:
        """The overrides that point notify at this gateway."""
        return {"sms_gateway_url": self.url, "sms_gateway_secret": self.secret}

    def __enter__(self) -> "GatewayStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the events on Kafka, timed by the broker's record timestamps ---------------------------------

@dataclass
class EventClock:
    """Record timestamps (ms, set by each producer as it sends) of the pipeline's events."""

    settings: Settings
    received: dict[str, int] = field(default_factory=dict)          # report_id -> ms
    opened: dict[str, tuple[int, str]] = field(default_factory=dict)  # report_id -> (ms, incident_id)
    attached: dict[str, tuple[int, str]] = field(default_factory=dict)
    recommended: dict[str, int] = field(default_factory=dict)       # incident_id -> ms (the first)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        # The figures come from the records' own timestamps, so the clock may read late: fetches
        # that gather (64 KB or 500 ms) and no CRC check (kafka-python's is pure Python) keep it
        # off the two cores it shares with the system it measures.
        self._consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap.split(","), group_id=None,
                                       enable_auto_commit=False, fetch_min_bytes=64 * 1024,
                                       fetch_max_wait_ms=500, check_crcs=False)
        parts = [TopicPartition(topic, p) for topic in (topics.REPORTS, topics.INCIDENTS, topics.ASSIGNMENTS)
                 for p in self._consumer.partitions_for_topic(topic) or ()]
        self._consumer.assign(parts)
        self._consumer.seek_to_end(*parts)  # only what happens from now on
        for tp in parts:
            self._consumer.position(tp)  # resolve the seek now, before any report is filed
        self._thread = threading.Thread(target=self._loop, name="event-clock", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for records in self._consumer.poll(timeout_ms=200).values():
                for r in records:
                    self._note(r)

    def _note(self, record) -> None:
        try:
            envelope = json.loads(record.value)
        except ValueError:
            return
        kind, data = envelope.get("type"), envelope.get("data") or {}
        if kind == "report.received":
            self.received.setdefault(data["report_id"], record.timestamp)
        elif kind == "incident.opened":
            for report_id in data.get("report_ids", ()):
                self.opened.setdefault(report_id, (record.timestamp, data["incident_id"]))
        elif kind == "report.attached":
            self.attached.setdefault(data["report_id"], (record.timestamp, data["incident_id"]))
        elif kind == "dispatch.recommended":
            self.recommended.setdefault(data["incident_id"], record.timestamp)

    def __enter__(self) -> "EventClock":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def group_lag(settings: Settings, group: str) -> int | None:
    """Messages waiting for `group` over the partitions it has committed on; None if Kafka cannot say."""
    from kafka.admin import OffsetSpec

    from deploy.topics import admin_client

    try:
        admin = admin_client(settings)
    except Exception:  # noqa: BLE001 - the caller retries
        return None
    try:
        committed = admin.list_group_offsets({group: None}).get(group) or {}
        tps = [tp for tp in committed if tp.topic.startswith("spkt.")]
        if not tps:
            return None
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        return sum(max(0, ends[tp].offset - committed[tp].offset) for tp in tps if tp in ends)
    except Exception:  # noqa: BLE001
        return None
    finally:
        admin.close()
