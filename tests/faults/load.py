"""A steady flow of work for the fault suite, driven from threads until stopped.

- Reports from every channel: phone_110, walk_in, web and patrol through POST /api/v1/reports,
  SMS and WhatsApp through the signed gateway webhook POST /api/v1/inbound/messages. Each has
  its own reporter phone (under SPKT_CALLER_LIMIT_PER_MINUTE) and a unique marker in its text,
  and an `Idempotency-Key`. A request answered 503 (the broker away), 5xx or not answered at all
  (connection refused, reset, timed out) is sent again with the SAME key, as a real client does,
  until it is answered. Every report answered 202 is recorded (`acked`).
- GPS positions of every unit, straight to Kafka (spkt.unit-positions) every few seconds.
- A dispatcher: every new open incident gets the top recommended unit (the next on a 409).
- Field units: each assignment is accepted, then on scene, then cleared (status available).

`pause()` stops new work and waits for what is in flight (retries included) to be answered, so
that the system can drain and be checked; `resume()` carries on. Every wait is bounded.
"""
from __future__ import annotations

import collections
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

from schemas import topics
from schemas.events import UnitPositionReported
from schemas.registry import make_event
from services.api.auth import Role, mint
from spkt.settings import Settings

log = logging.getLogger(__name__)

# Jakarta, inside the demo city's gazetteer bounds.
SOUTH, NORTH, WEST, EAST = -6.33, -6.11, 106.72, 106.93
STATIONS = [("polsek-kebayoran-baru", -6.2421, 106.7987), ("polsek-tebet", -6.2318, 106.8522),
            ("polsek-cilandak", -6.2872, 106.8003), ("polsek-pancoran", -6.2477, 106.8421),
            ("polsek-setiabudi", -6.2158, 106.8302), ("polsek-menteng", -6.1951, 106.8331),
            ("polsek-gambir", -6.1723, 106.8189), ("polsek-tanah-abang", -6.1879, 106.8141),
            ("polsek-kemayoran", -6.1601, 106.8479), ("polsek-matraman", -6.2019, 106.8601),
            ("polsek-kebon-jeruk", -6.1918, 106.7721), ("polsek-grogol-petamburan", -6.1652, 106.7898),
            ("polsek-tanjung-priok", -6.1148, 106.8801), ("polsek-kelapa-gading", -6.1602, 106.9052)]
API_CHANNELS = ("phone_110", "walk_in", "web", "patrol")
GATEWAY_CHANNELS = ("sms", "whatsapp")
CHANNELS = API_CHANNELS + GATEWAY_CHANNELS
WHAT = [("theft", "HP saya dicopet di angkot"), ("vehicle_theft", "Motor dicuri di parkiran"),
        ("street_robbery", "Jambret tas di pinggir jalan"), ("brawl", "Ada tawuran pelajar"),
        ("assault", "Ada orang dipukuli"), ("traffic_accident", "Tabrakan motor dan mobil"),
        ("vandalism", "Pagar sekolah dirusak orang"), ("burglary", "Rumah kosong dibobol maling")]
RETRYABLE = {500, 502, 503, 504}
RETRY_PAUSE_S = 1.0       # a client's pause before sending the same request again
GIVE_UP_AFTER_S = 150.0   # a report still not answered 202 by then is counted as given up
REQUEST_TIMEOUT_S = 30.0  # above the API's ack timeout (10 s) and command wait
PAUSE_DRAIN_S = 180.0     # pause() waits this long at most for requests in flight
# Field-unit pacing after an assignment: accept, on scene, cleared.
STEPS = (("accept", 1.0), ("on_scene", 3.0), ("available", 6.0))


@dataclass(frozen=True)
class Acked:
    marker: str
    report_id: str
    tracking_code: str
    channel: str
    phone: str
    phase: str
    attempts: int


@dataclass
class Unit:
    unit_id: str
    station: str
    lat: float
    lon: float
    phone: str


def make_units(count: int, run: str) -> list[Unit]:
    """`count` units on a grid over the city, each with its own phone (unit alerts go to it)."""
    side = math.ceil(math.sqrt(count))
    units = []
    for n in range(count):
        lat = SOUTH + (NORTH - SOUTH) * ((n // side) + 0.5) / side
        lon = WEST + (EAST - WEST) * ((n % side) + 0.5) / side
        station = min(STATIONS, key=lambda s: (s[1] - lat) ** 2 + (s[2] - lon) ** 2)[0]
        units.append(Unit(f"flt-{run}-{n:03d}", station, lat, lon, f"+62813{run_digits(run)}{n:04d}"))
    return units


def run_digits(run: str) -> str:
    return str(int(hashlib.sha256(run.encode()).hexdigest(), 16))[:3]


def sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


class Load:
    def __init__(self, settings: Settings, units: list[Unit], *, gateway_id: str, gateway_secret: str,
                 reports_per_s: float = 3.0, position_every_s: float = 6.0, workers: int = 6, seed: int = 7) -> None:
        self.settings = settings
        self.units = units
        self.gateway_id, self.gateway_secret = gateway_id, gateway_secret
        self.interval = 1.0 / reports_per_s
        self.position_every_s = position_every_s
        self.rng = random.Random(seed)
        self.run = uuid.uuid4().hex[:6]
        self.phase = "warm-up"
        self.acked: dict[str, Acked] = {}                 # marker -> the 202's answer
        self.refused: collections.Counter = collections.Counter()  # final answers other than 202
        self.stats: collections.Counter = collections.Counter()
        self.assignments: dict[str, tuple[str, str]] = {}  # assignment id -> (unit, incident)
        self._lock = threading.Lock()
        self._running = threading.Event()                 # set: producing; clear: paused
        self._stop = threading.Event()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._counter = itertools.count(1)
        self._slots = threading.Semaphore(workers)
        self._handled: set[str] = set()                   # incidents the dispatcher has dealt with
        self._steps: list = []                             # heap of (due, seq, step, assignment, unit, incident)
        self._unresolved: list = []                        # (incident, unit) answered 202: id not known yet
        self._seq = itertools.count()
        self._local = threading.local()
        self._threads: list[threading.Thread] = []
        self._positions = {u.unit_id: [u.lat, u.lon] for u in units}
        self._producer = None
        self._spent: list = []
        tokens = {role: mint(settings, sub=f"fault-load-{role.value}", role=role, ttl_s=6 * 3600)
                  for role in (Role.call_taker, Role.dispatcher, Role.admin)}
        self._auth = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
        self._patrol = mint(settings, sub=f"fault-load-patrol-{units[0].unit_id}", role=Role.field_unit,
                            unit_id=units[0].unit_id, ttl_s=6 * 3600)
        self._unit_tokens: dict[str, str] = {}

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "Load":
        for target, name in ((self._report_loop, "load-reports"), (self._position_loop, "load-positions"),
                             (self._dispatcher_loop, "load-dispatcher"), (self._field_loop, "load-field")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.resume()
        return self

    def resume(self, phase: str | None = None) -> None:
        if phase:
            self.phase = phase
        self._running.set()

    def pause(self) -> float:
        """Stop producing; wait until every request in flight is answered. Returns the seconds waited."""
        self._running.clear()
        started = time.monotonic()
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=PAUSE_DRAIN_S)
            stuck = self._in_flight
        self._flush_positions()
        if stuck:
            raise AssertionError(f"{stuck} load request(s) still unanswered after {PAUSE_DRAIN_S:.0f} s")
        return time.monotonic() - started

    def stop(self) -> None:
        self._running.clear()
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        for producer in [self._producer, *self._spent]:
            if producer is not None:
                try:
                    producer.close(timeout=5)
                except Exception:  # noqa: BLE001 - closing on the way out
                    pass

    def run_for(self, seconds: float) -> None:
        """Let the load run for a deliberate while (the load phase around a fault)."""
        self._stop.wait(seconds)

    # --- helpers ---------------------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(base_url=self.settings.api_url, timeout=REQUEST_TIMEOUT_S)
        return client

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _end(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _send(self, method: str, url: str, *, headers: dict, what: str, **kwargs) -> httpx.Response | None:
        """One request, sent again (same headers, same key) while the answer is 5xx or none at all."""
        deadline = time.monotonic() + GIVE_UP_AFTER_S
        attempt = 0
        while True:
            attempt += 1
            try:
                r = self._client().request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as error:
                self.stats[f"{what}: no answer ({type(error).__name__})"] += 1
            else:
                if r.status_code not in RETRYABLE:
                    r.attempts = attempt  # type: ignore[attr-defined]
                    return r
                self.stats[f"{what}: {r.status_code}"] += 1
            if time.monotonic() > deadline or self._stop.is_set():
                self.stats[f"{what}: given up"] += 1
                return None
            self.stats[f"{what}: retried"] += 1
            time.sleep(RETRY_PAUSE_S)

    # --- reports ---------------------------------------------------------------------------------
    def _report_loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            if not self._running.wait(0.2):
                next_at = time.monotonic()
                continue
            now = time.monotonic()
            if now < next_at:
                self._stop.wait(next_at - now)  # pacing
                continue
            next_at += self.interval
            if not self._slots.acquire(timeout=1.0):
                self.stats["reports: behind (all workers busy)"] += 1
                continue
            self._begin()
            n = next(self._counter)
            threading.Thread(target=self._one_report, args=(n,), daemon=True).start()

    def _one_report(self, n: int) -> None:
        try:
            self._file(n)
        except Exception as error:  # noqa: BLE001 - counted, the load goes on
            self.stats[f"report: error {type(error).__name__}"] += 1
            log.exception("load report failed")
        finally:
            self._slots.release()
            self._end()

    def _file(self, n: int) -> None:
        channel = CHANNELS[n % len(CHANNELS)]
        marker = f"FLT-{self.run}-{n:05d}"
        phone = f"0815{run_digits(self.run)}{n:05d}"
        category, words = WHAT[self.rng.randrange(len(WHAT))]
        lat, lon = self.rng.uniform(SOUTH, NORTH), self.rng.uniform(WEST, EAST)
        text = f"{words} dekat titik {n} [{marker}]"
        key = str(uuid.uuid4())
        phase = self.phase
        if channel in GATEWAY_CHANNELS:
            raw = json.dumps({"sender": phone, "text": text, "channel": channel, "lat": round(lat, 6),
                              "lon": round(lon, 6),
                              "received_at": datetime.now(timezone.utc).isoformat()}).encode()
            headers = {"X-Gateway": self.gateway_id, "X-Signature": sign(self.gateway_secret, raw),
                       "Content-Type": "application/json", "Idempotency-Key": key}
            r = self._send("POST", "/api/v1/inbound/messages", headers=headers, content=raw, what="report")
        else:
            body = {"channel": channel, "description": text, "category": category,
                    "location": {"lat": round(lat, 6), "lon": round(lon, 6)},
                    "reporter": {"name": f"Pelapor {n}", "phone": phone}}
            auth = ({"Authorization": f"Bearer {self._patrol}"} if channel == "patrol"
                    else self._auth[Role.call_taker])
            r = self._send("POST", "/api/v1/reports", headers={**auth, "Idempotency-Key": key}, json=body,
                           what="report")
        if r is None:
            return
        if r.status_code == 202:
            answer = r.json()
            with self._lock:
                self.acked[marker] = Acked(marker, answer["report_id"], answer["tracking_code"], channel,
                                           phone, phase, r.attempts)
        else:
            self.refused[r.status_code] += 1
            log.warning("report %s refused: %s %s", marker, r.status_code, r.text[:200])

    # --- positions -------------------------------------------------------------------------------
    def _position_loop(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(0.2):
                continue
            started = time.monotonic()
            try:
                self._publish_positions()
            except Exception as error:  # noqa: BLE001 - GPS fixes are lost while the broker is away
                self.stats[f"positions: dropped ({type(error).__name__})"] += 1
                self._close_producer()
            self._stop.wait(max(0.0, self.position_every_s - (time.monotonic() - started)))  # pacing

    def _producer_now(self):
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap.split(","), acks=1,
                                           linger_ms=50, max_block_ms=10_000, request_timeout_ms=10_000,
                                           retries=3)
        return self._producer

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            self._spent.append(producer)  # kept until stop(): one collected half-closed complains
            try:
                producer.close(timeout=2)
            except Exception:  # noqa: BLE001
                pass

    def _publish_positions(self) -> None:
        producer = self._producer_now()
        now = datetime.now(timezone.utc)
        for unit in self.units:
            if not self._running.is_set():
                break
            where = self._positions[unit.unit_id]
            where[0] = min(NORTH, max(SOUTH, where[0] + self.rng.uniform(-0.0005, 0.0005)))
            where[1] = min(EAST, max(WEST, where[1] + self.rng.uniform(-0.0005, 0.0005)))
            data = UnitPositionReported(unit_id=unit.unit_id, lat=round(where[0], 6), lon=round(where[1], 6), at=now,
                                        speed_kmh=round(self.rng.uniform(0, 40), 1))
            envelope = make_event(data, source="/spkt/fault-load", time=now)
            producer.send(topics.UNIT_POSITIONS, value=envelope.to_bytes(), key=unit.unit_id.encode())
            self.stats["positions: sent"] += 1

    def _flush_positions(self) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=10)
            except Exception:  # noqa: BLE001
                self.stats["positions: flush failed"] += 1
                self._close_producer()

    # --- the dispatcher --------------------------------------------------------------------------
    def _dispatcher_loop(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(0.2):
                continue
            self._begin()
            try:
                self._dispatch_round()
            except Exception as error:  # noqa: BLE001
                self.stats[f"dispatcher: error {type(error).__name__}"] += 1
                log.exception("dispatcher round failed")
            finally:
                self._end()
            self._stop.wait(1.0)  # pacing: a dispatcher looks at the queue about every second

    def _dispatch_round(self) -> None:
        auth = self._auth[Role.dispatcher]
        r = self._send("GET", "/api/v1/incidents", headers=auth, params={"status": "open", "limit": 100},
                       what="dispatcher")
        if r is None or r.status_code != 200:
            return
        fresh = [i["incident_id"] for i in r.json()["items"] if i["incident_id"] not in self._handled]
        for incident_id in reversed(fresh):  # oldest first
            if not self._running.is_set():
                return
            rec = self._send("GET", f"/api/v1/incidents/{incident_id}/recommendations", headers=auth,
                             what="dispatcher")
            if rec is None or rec.status_code != 200:
                continue  # no recommendation yet: next round
            candidates = [c["unit_id"] for c in rec.json().get("candidates") or []]
            if not candidates:
                self._handled.add(incident_id)
                self.stats["dispatcher: nobody to send"] += 1
                continue
            for unit_id in candidates[:2]:
                a = self._send("POST", f"/api/v1/incidents/{incident_id}/assignments",
                               headers={**auth, "Idempotency-Key": f"assign-{incident_id}-{unit_id}"},
                               json={"unit_id": unit_id}, what="assign")
                if a is None:
                    break
                self.stats[f"assign: {a.status_code}"] += 1
                if a.status_code == 201:
                    assignment_id = a.json()["assignment_id"]
                    self._schedule(assignment_id, unit_id, incident_id)
                    self._handled.add(incident_id)
                    break
                if a.status_code == 202:  # decided later: the field unit finds its assignment
                    with self._lock:
                        self._unresolved.append((time.monotonic() + 2.0, incident_id, unit_id))
                    self._handled.add(incident_id)
                    break
                if a.status_code != 409:
                    self._handled.add(incident_id)
                    break
            else:
                self._handled.add(incident_id)

    def _schedule(self, assignment_id: str, unit_id: str, incident_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.assignments[assignment_id] = (unit_id, incident_id)
            for step, after in STEPS:
                heapq.heappush(self._steps, (now + after, next(self._seq), step, assignment_id, unit_id, incident_id))

    # --- field units -----------------------------------------------------------------------------
    def _field_loop(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(0.2):
                continue
            self._begin()
            try:
                self._field_round()
            except Exception as error:  # noqa: BLE001
                self.stats[f"field: error {type(error).__name__}"] += 1
                log.exception("field round failed")
            finally:
                self._end()
            self._stop.wait(0.2)  # pacing

    def _unit_auth(self, unit_id: str) -> dict:
        token = self._unit_tokens.get(unit_id)
        if token is None:
            token = self._unit_tokens[unit_id] = mint(self.settings, sub=f"fault-unit-{unit_id}",
                                                      role=Role.field_unit, unit_id=unit_id, ttl_s=6 * 3600)
        return {"Authorization": f"Bearer {token}"}

    def _field_round(self) -> None:
        now = time.monotonic()
        with self._lock:
            ready = [u for u in self._unresolved if u[0] <= now]
            self._unresolved = [u for u in self._unresolved if u[0] > now]
        for _, incident_id, unit_id in ready:
            r = self._send("GET", f"/api/v1/incidents/{incident_id}", headers=self._auth[Role.dispatcher],
                           what="field")
            found = [a for a in (r.json().get("assignments") or [] if r is not None and r.status_code == 200 else [])
                     if a["unit_id"] == unit_id]
            if found:
                self._schedule(found[-1]["assignment_id"], unit_id, incident_id)
            else:
                self.stats["field: assignment answered 202 never appeared"] += 1
        while self._running.is_set():
            with self._lock:
                if not self._steps or self._steps[0][0] > time.monotonic():
                    return
                _, _, step, assignment_id, unit_id, incident_id = heapq.heappop(self._steps)
            auth = {**self._unit_auth(unit_id), "Idempotency-Key": f"{step}-{assignment_id}"}
            if step == "accept":
                r = self._send("POST", f"/api/v1/assignments/{assignment_id}/accept", headers=auth, what="field")
            else:
                body = {"status": step, **({"incident_id": incident_id} if step == "on_scene" else {})}
                r = self._send("POST", f"/api/v1/units/{unit_id}/status", headers=auth, json=body, what="field")
            if r is not None:
                self.stats[f"field {step}: {r.status_code}"] += 1

    # --- what happened ---------------------------------------------------------------------------
    def acked_in(self, phase: str) -> list[Acked]:
        with self._lock:
            return [a for a in self.acked.values() if a.phase == phase]

    def all_acked(self) -> list[Acked]:
        with self._lock:
            return list(self.acked.values())
