"""The demo process: Jakarta units register and move, and reports arrive through the API.

`spkt up --demo` runs `spkt run demo`, which calls `run(settings)` under supervisord until it
is sent SIGTERM. The helpers above `run` are pure (no broker, no network) so tests can check
the data and the events exactly as the process builds them.

Unit facts go straight to Kafka (as a tracker would send them); reports go through the API
(as a call taker would file them), so the demo exercises the same front door as people do.
"""
from __future__ import annotations

import json
import logging
import math
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from schemas import topics
from schemas.envelope import Envelope, derived_id, utcnow
from schemas.events import ChangeUnitStatus, UnitPositionReported, UnitRegistered
from schemas.registry import make_event
from services.api.auth import Role, mint
from spkt.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "/spkt/demo"
DEFAULT_CITY = Path(__file__).with_name("jakarta.json")
REPORTS_PATH = "/api/v1/reports"
UNITS_PATH = "/api/v1/units"

# City averages while patrolling (km/h); the random walk varies them a little each step.
SPEED_KMH = {"motorcycle": 30.0, "car": 25.0, "foot": 4.0, "lantas": 30.0, "reskrim": 25.0, "inafis": 25.0}
HEADING_SIGMA_DEG = 20.0     # how much a heading changes per step (standard deviation)
START_RADIUS_DEG = 0.01      # units start within about a kilometre of their station
PLACE_JITTER_DEG = 0.0015    # reports fall within about 150 m of a named place

BREAK_CHANCE = 0.03          # per position round: about one break every three minutes at 5 s
MAX_ON_BREAK = 3
BREAK_SECONDS = (90.0, 300.0)

HTTP_TIMEOUT_S = 5.0
TOKEN_TTL_S = 3600
TOKEN_RENEW_BEFORE_S = 300
RETRY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)
SHUTDOWN_TIMEOUT_S = 2.0     # supervisord waits 15 s after TERM: every step on the way out is bounded

FIRST_NAMES = (
    "Budi", "Siti", "Agus", "Dewi", "Rina", "Andi", "Ahmad", "Nur", "Joko", "Sri", "Yusuf", "Putri",
    "Rizky", "Fitri", "Hendra", "Wahyu", "Lestari", "Dimas", "Ayu", "Bambang", "Indah", "Fajar",
    "Ratna", "Slamet", "Yohanes", "Maria", "Made", "Ketut",
)
LAST_NAMES = (
    "Santoso", "Wijaya", "Saputra", "Hidayat", "Nasution", "Siregar", "Kusuma", "Pratama", "Setiawan",
    "Gunawan", "Hutapea", "Simanjuntak", "Wibowo", "Rahmawati", "Sihombing", "Purnomo", "Halim",
    "Tanjung", "Harahap", "Susanto", "Lubis", "Manurung",
)
# Mobile prefixes of the Indonesian operators (after +62).
PHONE_PREFIXES = ("811", "812", "813", "821", "822", "852", "853", "856", "857", "858", "877", "878",
                  "895", "896")


# --- the city ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bounds:
    south: float
    north: float
    west: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    def clamp(self, lat: float, lon: float) -> tuple[float, float]:
        return min(max(lat, self.south), self.north), min(max(lon, self.west), self.east)


@dataclass(frozen=True)
class Station:
    station_id: str
    name: str
    level: str
    parent: str | None
    lat: float
    lon: float


@dataclass(frozen=True)
class Unit:
    unit_id: str
    callsign: str
    kind: str
    station: str
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Place:
    name: str
    kind: str
    lat: float
    lon: float
    address: str


@dataclass(frozen=True)
class ReportTemplate:
    description: str
    category: str | None
    channel: str
    assistance_request: bool = False


@dataclass(frozen=True)
class City:
    name: str
    note: str
    bounds: Bounds
    stations: tuple[Station, ...]
    units: tuple[Unit, ...]
    places: tuple[Place, ...]
    report_templates: tuple[ReportTemplate, ...]

    def station(self, station_id: str) -> Station:
        for station in self.stations:
            if station.station_id == station_id:
                return station
        raise KeyError(f"no station {station_id!r}")


def load_city(path: str | Path = DEFAULT_CITY) -> City:
    """The demo city from its JSON file; KeyError/TypeError/ValueError when the file is malformed."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    b = doc["bounds"]
    return City(
        name=doc.get("city", Path(path).stem),
        note=doc["note"],
        bounds=Bounds(south=float(b["south"]), north=float(b["north"]), west=float(b["west"]), east=float(b["east"])),
        stations=tuple(Station(station_id=s["station_id"], name=s["name"], level=s["level"], parent=s.get("parent"),
                               lat=float(s["lat"]), lon=float(s["lon"])) for s in doc["stations"]),
        units=tuple(Unit(unit_id=u["unit_id"], callsign=u["callsign"], kind=u["kind"], station=u["station"],
                         capabilities=tuple(u.get("capabilities", ()))) for u in doc["units"]),
        places=tuple(Place(name=p["name"], kind=p.get("kind", "place"), lat=float(p["lat"]), lon=float(p["lon"]),
                           address=p["address"]) for p in doc["places"]),
        report_templates=tuple(ReportTemplate(description=t["description"], category=t.get("category"),
                                              channel=t["channel"],
                                              assistance_request=bool(t.get("assistance_request", False)))
                               for t in doc["report_templates"]),
    )


# --- movement ---------------------------------------------------------------------------------

def start_position(unit: Unit, city: City, rng: random.Random) -> tuple[float, float]:
    """A point within about a kilometre of the unit's station, inside the city."""
    station = city.station(unit.station)
    return city.bounds.clamp(station.lat + rng.uniform(-START_RADIUS_DEG, START_RADIUS_DEG),
                             station.lon + rng.uniform(-START_RADIUS_DEG, START_RADIUS_DEG))


def next_position(lat: float, lon: float, heading: float, speed_kmh: float, seconds: float,
                  rng: random.Random, bounds: Bounds) -> tuple[float, float, float]:
    """One step of the random walk: (lat, lon, heading in [0, 360)).

    The heading drifts a little each step; a unit that would leave the bounds turns back
    (its heading is mirrored on that edge) and stays on the edge for this step.
    """
    heading = (heading + rng.gauss(0.0, HEADING_SIGMA_DEG)) % 360.0
    distance_km = max(speed_kmh, 0.0) * max(seconds, 0.0) / 3600.0
    rad = math.radians(heading)
    new_lat = lat + distance_km * math.cos(rad) / 111.32
    new_lon = lon + distance_km * math.sin(rad) / (111.32 * math.cos(math.radians(lat)))
    if not bounds.south <= new_lat <= bounds.north:
        heading = (180.0 - heading) % 360.0
    if not bounds.west <= new_lon <= bounds.east:
        heading = (360.0 - heading) % 360.0
    new_lat, new_lon = bounds.clamp(new_lat, new_lon)
    return new_lat, new_lon, heading % 360.0


# --- reports ----------------------------------------------------------------------------------

def _reporter(channel: str, rng: random.Random) -> dict[str, str]:
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    phone = "+62" + rng.choice(PHONE_PREFIXES) + "".join(str(rng.randrange(10)) for _ in range(rng.choice((7, 8))))
    if channel == "social_media":
        return {}                                   # a post seen by the desk: nobody to call back
    if channel == "patrol":
        return {"name": f"Brigadir {name}"}         # Model A: the officer who found it
    if channel == "sms":
        return {"phone": phone}
    return {"name": name, "phone": phone}


def make_report(city: City, rng: random.Random, *, now: datetime | None = None) -> dict[str, Any]:
    """A body for POST /api/v1/reports: a template at a named place, a little off its centre."""
    template = rng.choice(city.report_templates)
    place = rng.choice(city.places)
    lat, lon = city.bounds.clamp(place.lat + rng.uniform(-PLACE_JITTER_DEG, PLACE_JITTER_DEG),
                                 place.lon + rng.uniform(-PLACE_JITTER_DEG, PLACE_JITTER_DEG))
    occurred = (now or utcnow()) - timedelta(minutes=rng.randint(2, 45))
    body: dict[str, Any] = {
        "channel": template.channel,
        "reporter": _reporter(template.channel, rng),
        "description": template.description.replace("{place}", place.name),
        "location": {"lat": round(lat, 6), "lon": round(lon, 6), "address": place.address,
                     "landmark": place.name},
        "occurred_at": occurred.isoformat(timespec="seconds"),
    }
    if template.category:
        body["category"] = template.category
    if template.assistance_request:
        body["assistance_request"] = True
    return body


# --- events -----------------------------------------------------------------------------------

Outgoing = tuple[str, bytes, Envelope]
"""(topic, key, envelope): one message for the producer."""


def registration_events(city: City, *, at: datetime | None = None) -> list[Outgoing]:
    """unit.registered for every unit. The ids are derived from the unit, so a restarted demo
    publishes the very same events again and consumers recognise them."""
    at = at or utcnow()
    out = []
    for unit in city.units:
        data = UnitRegistered(unit_id=unit.unit_id, callsign=unit.callsign, kind=unit.kind, station=unit.station,
                              capabilities=list(unit.capabilities), registered_at=at)
        envelope = make_event(data, source=SOURCE, event_id=derived_id("demo", unit.unit_id, "registered"), time=at)
        out.append((topics.UNIT_STATUS, unit.unit_id.encode(), envelope))
    return out


def position_event(unit_id: str, lat: float, lon: float, *, at: datetime, speed_kmh: float | None = None,
                   heading: float | None = None) -> Outgoing:
    data = UnitPositionReported(unit_id=unit_id, lat=round(lat, 6), lon=round(lon, 6), at=at,
                                speed_kmh=None if speed_kmh is None else round(speed_kmh, 1),
                                heading=None if heading is None else round(heading, 1) % 360.0)
    return topics.UNIT_POSITIONS, unit_id.encode(), make_event(data, source=SOURCE, time=at)


def status_event(unit_id: str, status: str, previous: str | None, *, at: datetime) -> Outgoing:
    """A status change goes through dispatch like a field unit's (the transition table applies)."""
    command_id = str(uuid.uuid4())
    data = ChangeUnitStatus(command_id=command_id, unit_id=unit_id, status=status, requested_by="demo",
                            requested_at=at, reason=f"demo: dari {previous}" if previous else "demo")
    return topics.UNIT_COMMANDS, unit_id.encode(), make_event(data, source=SOURCE, time=at, event_id=command_id)


# --- the process ------------------------------------------------------------------------------

@dataclass
class _Moving:
    unit: Unit
    lat: float
    lon: float
    heading: float
    speed_kmh: float = 0.0
    break_until: float | None = None   # monotonic seconds; None: not on a break the demo started


@dataclass
class _Tokens:
    """Bearer tokens minted on demand, renewed before they expire or after a 401."""
    settings: Settings
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict)

    def get(self, sub: str, role: Role) -> str:
        cached = self._cache.get(sub)
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        token = mint(self.settings, sub=sub, role=role, ttl_s=TOKEN_TTL_S)
        self._cache[sub] = (token, time.monotonic() + TOKEN_TTL_S - TOKEN_RENEW_BEFORE_S)
        return token

    def forget(self, sub: str) -> None:
        self._cache.pop(sub, None)


class _Demo:
    def __init__(self, settings: Settings, city: City, rng: random.Random, producer: Any, http: httpx.Client,
                 stop: threading.Event) -> None:
        self.settings, self.city, self.rng = settings, city, rng
        self.producer, self.http, self.stop = producer, http, stop
        self.tokens = _Tokens(settings)
        self.moving: dict[str, _Moving] = {}
        for unit in city.units:
            lat, lon = start_position(unit, city, rng)
            self.moving[unit.unit_id] = _Moving(unit, lat, lon, rng.uniform(0, 360))
        self.pending_report: tuple[dict[str, Any], str] | None = None  # retried with its Idempotency-Key
        self.reports_sent = 0

    # -- Kafka --
    def _send(self, messages: list[Outgoing], timeout: float) -> int:
        """Send and wait for every acknowledgement; the number that failed (raises on a send error)."""
        futures = [self.producer.send(topic, key=key, value=env.to_bytes()) for topic, key, env in messages]
        self.producer.flush(timeout=timeout)
        failed, last = 0, None
        for future in futures:
            try:
                future.get(timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - any delivery failure is counted and reported
                failed += 1
                last = exc
        if failed:
            log.warning("%d of %d messages not acknowledged: %s", failed, len(messages), last)
        return failed

    def register(self) -> bool:
        """Every unit's registration and first position, acknowledged; retried until it is or we stop."""
        attempt = 0
        while not self.stop.is_set():
            now = utcnow()
            messages = registration_events(self.city, at=now)
            messages += [position_event(m.unit.unit_id, m.lat, m.lon, at=now, speed_kmh=0.0, heading=m.heading)
                         for m in self.moving.values()]
            try:
                if self._send(messages, self.settings.ack_timeout_s) == 0:
                    log.info("registered %d demo units of %s", len(self.city.units), self.city.name)
                    return True
            except Exception as exc:  # noqa: BLE001 - the broker may not be ready yet
                log.warning("registering demo units failed, retrying: %s", exc)
            self.stop.wait(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
            attempt += 1
        return False

    def move(self, seconds: float) -> None:
        now = utcnow()
        messages = []
        for m in self.moving.values():
            if m.break_until is not None:
                m.speed_kmh = 0.0          # resting at the post: it still reports where it is
            else:
                base = SPEED_KMH.get(m.unit.kind, 25.0)
                m.speed_kmh = base * self.rng.uniform(0.5, 1.3)
                m.lat, m.lon, m.heading = next_position(m.lat, m.lon, m.heading, m.speed_kmh, seconds,
                                                        self.rng, self.city.bounds)
            messages.append(position_event(m.unit.unit_id, m.lat, m.lon, at=now, speed_kmh=m.speed_kmh,
                                           heading=m.heading))
        try:
            # Bounded by the interval too: a stalled broker must not hold up the loop (or a TERM).
            self._send(messages, min(self.settings.ack_timeout_s, max(self.settings.demo_position_interval_s, 1.0)))
        except Exception as exc:  # noqa: BLE001 - transient: the next round sends fresh positions
            log.warning("publishing demo positions failed: %s", exc)

    def _publish_status(self, m: _Moving, status: str, previous: str) -> bool:
        try:
            ok = self._send([status_event(m.unit.unit_id, status, previous, at=utcnow())],
                            self.settings.ack_timeout_s) == 0
        except Exception as exc:  # noqa: BLE001
            log.warning("publishing status %s failed: %s", status, exc, extra={"unit_id": m.unit.unit_id})
            return False
        if ok:
            log.info("%s: %s -> %s", m.unit.callsign, previous, status, extra={"unit_id": m.unit.unit_id})
        return ok

    # -- breaks --
    def breaks(self) -> None:
        now = time.monotonic()
        for m in self.moving.values():
            if m.break_until is not None and now >= m.break_until and self._publish_status(m, "available", "break"):
                m.break_until = None
        on_break = sum(1 for m in self.moving.values() if m.break_until is not None)
        if on_break >= MAX_ON_BREAK or self.rng.random() >= BREAK_CHANCE:
            return
        # Only a unit the board shows available: never pull a unit a dispatcher has just sent.
        available = self._available_on_board()
        choices = sorted(uid for uid in available if uid in self.moving and self.moving[uid].break_until is None)
        if not choices:
            return
        m = self.moving[self.rng.choice(choices)]
        if self._publish_status(m, "break", "available"):
            m.break_until = now + self.rng.uniform(*BREAK_SECONDS)

    def end_breaks(self) -> None:
        """On the way out: units the demo sent on break come back, so a restart starts clean."""
        resting = [m for m in self.moving.values() if m.break_until is not None]
        if not resting:
            return
        now = utcnow()
        try:
            if self._send([status_event(m.unit.unit_id, "available", "break", at=now) for m in resting],
                          SHUTDOWN_TIMEOUT_S) == 0:
                for m in resting:
                    m.break_until = None
                log.info("%d units back from break", len(resting))
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            log.warning("could not end the demo breaks: %s", exc)

    def _available_on_board(self) -> set[str]:
        try:
            response = self._get(UNITS_PATH, "demo-board-reader", Role.command_center, params={"status": "available"})
            if response.status_code != 200:
                log.warning("unit board answered %s; no break this time", response.status_code)
                return set()
            return {item["unit_id"] for item in response.json().get("items", [])
                    if item.get("status") == "available"}
        except (httpx.HTTPError, ValueError, KeyError, TypeError, OSError) as exc:
            log.warning("unit board not readable (%s); no break this time", exc)
            return set()

    # -- HTTP --
    def _request(self, method: str, path: str, sub: str, role: Role, *, headers: dict[str, str] | None = None,
                 **kwargs: Any) -> httpx.Response:
        """The request with a bearer token; after a 401 once more with a freshly minted token."""
        url = self.settings.api_url + path
        response = self.http.request(method, url, headers={**(headers or {}), **self._auth(sub, role)}, **kwargs)
        if response.status_code == 401:
            log.info("token refused (401), minting a new one")
            self.tokens.forget(sub)
            response = self.http.request(method, url, headers={**(headers or {}), **self._auth(sub, role)}, **kwargs)
        return response

    def _auth(self, sub: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get(sub, role)}"}

    def _get(self, path: str, sub: str, role: Role, **kwargs: Any) -> httpx.Response:
        return self._request("GET", path, sub, role, **kwargs)

    def report(self) -> None:
        if self.pending_report is None:
            self.pending_report = (make_report(self.city, self.rng), str(uuid.uuid4()))
        body, key = self.pending_report
        try:
            response = self._request("POST", REPORTS_PATH, "demo-call-taker", Role.call_taker, json=body,
                                     headers={"Idempotency-Key": key})
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("API not reachable, the report will be retried: %s", exc)
            return
        if response.status_code >= 500 or response.status_code in (401, 408, 429):
            log.warning("API answered %s, the report will be retried: %s", response.status_code,
                        response.text[:300])
            return
        self.pending_report = None
        if response.status_code >= 400:
            log.error("API refused a demo report (%s): %s", response.status_code, response.text[:500])
            return
        try:
            accepted = response.json()
            report_id, code = accepted["report_id"], accepted["tracking_code"]
        except (ValueError, KeyError, TypeError):
            log.warning("API accepted a report but its answer is unreadable: %s", response.text[:300])
            return
        self.reports_sent += 1
        log.info("demo report %s (%s, %s): %s", code, body["channel"], body.get("category") or "unclassified",
                 body["location"].get("landmark", ""), extra={"report_id": report_id})

    # -- the loop --
    def loop(self, max_cycles: int | None) -> int:
        pos_every = max(float(self.settings.demo_position_interval_s), 0.0)
        report_every = max(float(self.settings.demo_report_interval_s), 0.0)
        last_move = time.monotonic()
        next_move = last_move + pos_every
        next_report = last_move + report_every
        cycles = 0
        while not self.stop.is_set():
            if max_cycles is not None and cycles >= max_cycles:
                break
            now = time.monotonic()
            if now >= next_move:
                self.move(now - last_move)
                if not self.stop.is_set():
                    self.breaks()
                last_move = now
                next_move = max(next_move + pos_every, now)
                cycles += 1
            if not self.stop.is_set() and time.monotonic() >= next_report:
                self.report()
                next_report = max(next_report + report_every, time.monotonic())
            self.stop.wait(max(0.0, min(next_move, next_report) - time.monotonic()))
        return cycles


def _connect(settings: Settings, stop: threading.Event) -> Any | None:
    """A kafka-python producer; retried while the broker is not reachable. None once stopped."""
    from kafka import KafkaProducer

    attempt = 0
    while not stop.is_set():
        try:
            # Every wait is short so a TERM is honoured within seconds, even while the broker is away.
            return KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all", client_id="spkt-demo",
                                 linger_ms=20, max_block_ms=5000, bootstrap_timeout_ms=3000,
                                 reconnect_backoff_max_ms=2000)
        except Exception as exc:  # noqa: BLE001 - NoBrokersAvailable and friends: wait and retry
            log.warning("broker %s not reachable yet: %s", settings.bootstrap, exc)
        stop.wait(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
        attempt += 1
    return None


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    """TERM and INT set `stop`; only possible (and only wanted) on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            log.info("signal %s: stopping the demo", signal.Signals(signum).name)
        stop.set()

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    return previous


def run(settings: Settings, *, stop_event: threading.Event | None = None, max_cycles: int | None = None,
        rng: random.Random | None = None, city: City | None = None, producer: Any | None = None,
        http: httpx.Client | None = None) -> int:
    """Play the demo until stopped (TERM/INT, `stop_event`) or after `max_cycles` position rounds.

    `producer` (anything with kafka-python's send/flush/close) and `http` (an httpx.Client) are
    made from the settings unless given, which is how tests run it without a broker or network.
    Returns the number of position rounds played.
    """
    stop = stop_event or threading.Event()
    previous_handlers = _install_signal_handlers(stop)
    rng = rng or random.Random(time.time_ns())
    city = city or load_city()
    own_producer, own_http = producer is None, http is None
    demo: _Demo | None = None
    cycles = 0
    try:
        if producer is None:
            producer = _connect(settings, stop)
            if producer is None:
                return 0
        if http is None:
            http = httpx.Client(timeout=HTTP_TIMEOUT_S)
        demo = _Demo(settings, city, rng, producer, http, stop)
        log.info("demo starting: %d units, a report every %.0f s, positions every %.0f s", len(city.units),
                 settings.demo_report_interval_s, settings.demo_position_interval_s)
        if demo.register():
            cycles = demo.loop(max_cycles)
        return cycles
    finally:
        if demo is not None:
            demo.end_breaks()
        if own_http and http is not None:
            http.close()
        if own_producer and producer is not None:
            try:
                producer.close(timeout=SHUTDOWN_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - closing on the way out
                log.warning("closing the producer failed: %s", exc)
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        log.info("demo stopped after %d position rounds", cycles)
