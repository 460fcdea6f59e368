"""From a call taker's report to a recommendation a dispatcher can see, on the real system.

    python -m benchmarks.pipeline [--quick] [--work DIR]

The broker and every service of `spkt up` (benchmarks.system.running_system). While 2,000 units
registered on Kafka report a GPS position every 5 s each (400 a second, straight on the
unit-positions topic as trackers send them), call takers file 50 reports a second for 60 s
through `POST /api/v1/reports` (varied categories, wording and places around Jakarta, each with
an Idempotency-Key). A dispatcher follows the live stream (`GET /api/v1/stream`) as the console
does: once the stream has said which incident a report is on and that dispatch recommended units
for it, the dispatcher asks for the incident's page as the console does, with the id of that
`dispatch.recommended` (`GET /api/v1/incidents/{id}?seen=<event id>`), every 10 ms (the console:
300 ms) until the page says it includes it (`X-Read-Model: includes`) and shows the
recommendation (the stream comes straight from Kafka, so the read model may not hold it yet).
Each report's polls go on their own, as each console's would, with POLLERS in flight at most as a
guard. Until the sixth session of 29 November it asked
`GET /api/v1/incidents/{id}/recommendations`, which no console uses to wait. Notify sends
its receipts to an SMS gateway on loopback that answers at once.

Measured:
(a) the API's 202 → the recommendation visible through the API (the answer to the GET that shows
    it received): p50 / p99 / max, over the reports that opened an incident of their own; the
    reports intake attached to an incident already open are counted apart (their incident had its
    recommendation already);
(b) report.received → incident.opened on Kafka, from the broker's record timestamps (each set by
    its producer as it sent: the API, then intake), matched by report id: p50 / p99 / max.
And in details the stages between: incident.opened → dispatch.recommended on Kafka, and
dispatch.recommended → visible in the API (record timestamp against the dispatcher's wall clock,
one machine), 202 → announced on the stream, the POST's own round trip, and the polling's actual
resolution.

Why the stream: an earlier dispatcher asked every pending report's state every 10 ms, four
requests at a time. Once the machine was saturated, it came round to a report only every 3 to 25
s, and that queue of its own, not the pipeline, made most of the figure (the projection's lag at
the time: 2 to 5 s of events).

Target (issue 9): (a) p99 <= 100 ms. Then the same at 10 reports a second on a fresh system (what
these two cores carry with the load generator on them). Quick mode: 5 reports a second for 5 s,
50 units, once.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp

from .harness import Figure, Result, percentiles_ms, run_alone, wait_until
from .load import CallCentre, EventClock, Fleet, GatewayStub, say
from .system import CpuShares, machine, own_broker, processes_mentioning, running_system

NAME = "pipeline"
TITLE = "Report to visible recommendation through the real broker and services (202 → recommendation)"

POLL_S = 0.010           # a recommendation announced on the stream is asked for every 10 ms
# Polls in flight at most: a guard, not a queue. Each dispatcher's console asks on its own, so a
# poll waiting here for another one's answer is the load generator's delay, not the system's. At
# 4 (the limit until the sixth session of 29 November, set when the report route still took its
# database connection on the event loop) the polls of a run at 50 a second waited for a slot
# 277 ms at the median and 2.8 s at the p99 (their own round trip: 52 / 205 ms), and that wait
# made most of the figure. With the FILERS, well below the API's thread pool and database
# connections (40 each).
POLLERS = 16             # dispatchers' polls
STREAM_TYPES = "incident.opened,report.attached,dispatch.recommended"
FILERS = 8               # call takers' reports: they do not wait for the dispatchers' polls
VISIBLE_WITHIN_S = 30.0  # a report whose recommendation is not visible by then counts at this
WARM_UP_REPORTS = 5
SUSTAINED_RATE = 10.0    # the second run's reports a second (see run)


@dataclass
class Outcome:
    """One report: when the 202 came, when its recommendation was first seen through the API."""

    report_id: str | None = None
    status: int | None = None
    post_ms: float | None = None        # the POST's round trip
    accepted_at: float = 0.0            # perf_counter() when the 202 arrived
    accepted_wall: float = 0.0          # time.time() then (to compare with record timestamps)
    incident_id: str | None = None
    attached: bool = False              # intake attached it to an incident already open
    announced_at: float | None = None   # perf_counter() when the stream had told of its recommendation
    visible_at: float | None = None     # perf_counter() when the answer with the recommendation arrived
    visible_wall: float | None = None
    polls: int = 0
    gaps: list[float] = field(default_factory=list)  # seconds between the starts of successive polls

    @property
    def latency_ms(self) -> float | None:
        return None if self.visible_at is None else (self.visible_at - self.accepted_at) * 1000

    @property
    def announced_ms(self) -> float | None:
        return None if self.announced_at is None else (self.announced_at - self.accepted_at) * 1000


class Dispatcher:
    """Files reports, follows the live stream and asks the API for the recommendations it announces,
    in one asyncio loop."""

    def __init__(self, api_url: str, centre: CallCentre, session: aiohttp.ClientSession) -> None:
        self.api_url = api_url
        self.centre = centre
        self.session = session
        self.in_flight = asyncio.Semaphore(POLLERS)
        self.filing = asyncio.Semaphore(FILERS)
        self.errors: dict[str, int] = {}  # requests that failed outright (timeout, connection), by kind
        self.read_headers = {"Authorization": f"Bearer {centre.dispatcher}"}
        self.requests = 0
        self.slot_waits: list[float] = []   # seconds a poll waited for one of the POLLERS slots
        self.round_trips: list[float] = []  # seconds from a poll's request to its answer read
        # What the stream said, kept whatever order it comes in against the 202s.
        self.incident_of: dict[str, tuple[str, bool]] = {}  # report id -> (incident id, attached)
        self.reports_of: dict[str, list[str]] = {}          # incident id -> report ids
        self.recommended: dict[str, str] = {}               # incident id -> its dispatch.recommended's id
        self._told: dict[str, asyncio.Event] = {}           # report id -> set once both are known
        self.stream_connected = asyncio.Event()
        self.stream_connections = 0
        self.stream_resets = 0
        self._last_id: str | None = None

    def _failed(self, exc: BaseException) -> None:
        kind = type(exc).__name__
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def _told_of(self, report_id: str) -> asyncio.Event:
        return self._told.setdefault(report_id, asyncio.Event())

    def _on_stream_event(self, etype: str, envelope: dict) -> None:
        data = envelope.get("data") or {}
        if etype == "incident.opened":
            pairs = [(r, data["incident_id"], False) for r in data.get("report_ids", [])]
        elif etype == "report.attached":
            pairs = [(data["report_id"], data["incident_id"], True)]
        else:  # dispatch.recommended
            incident_id = data["incident_id"]
            self.recommended.setdefault(incident_id, envelope["id"])
            for report_id in self.reports_of.get(incident_id, []):
                self._told_of(report_id).set()
            return
        for report_id, incident_id, attached in pairs:
            self.incident_of.setdefault(report_id, (incident_id, attached))
            self.reports_of.setdefault(incident_id, []).append(report_id)
            if incident_id in self.recommended:
                self._told_of(report_id).set()

    async def follow_stream(self) -> None:
        """The live stream, as the console reads it; reconnects with Last-Event-ID if dropped."""
        url = f"{self.api_url}/api/v1/stream?types={STREAM_TYPES}"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            headers = dict(self.read_headers, Accept="text/event-stream")
            if self._last_id:
                headers["Last-Event-ID"] = self._last_id
            try:
                async with self.session.get(url, headers=headers, timeout=timeout) as response:
                    if response.status != 200:
                        raise RuntimeError(f"the live stream answered {response.status}")
                    self.stream_connections += 1
                    self.stream_connected.set()
                    etype, pending = None, b""
                    while chunk := await response.content.readany():
                        pending += chunk
                        lines, _, pending = pending.rpartition(b"\n")
                        for line in lines.split(b"\n"):
                            if line.startswith(b"id: "):
                                self._last_id = line[4:].decode()
                            elif line.startswith(b"event: "):
                                etype = line[7:].decode()
                                self.stream_resets += etype == "reset"
                            elif line.startswith(b"data: ") and etype and etype != "reset":
                                self._on_stream_event(etype, json.loads(line[6:]))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._failed(exc)
            await asyncio.sleep(0.1)

    async def _get(self, path: str) -> tuple[int, dict | None, str | None]:
        """(status, the JSON of a 200, its X-Read-Model header)."""
        asked = time.perf_counter()
        async with self.in_flight:
            sent = time.perf_counter()
            self.slot_waits.append(sent - asked)
            self.requests += 1
            try:
                async with self.session.get(self.api_url + path, headers=self.read_headers) as r:
                    body = await r.json() if r.status == 200 else None
                    self.round_trips.append(time.perf_counter() - sent)
                    return r.status, body, r.headers.get("X-Read-Model")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._failed(exc)
                return 0, None, None

    async def file_and_watch(self, body: dict, out: Outcome) -> Outcome:
        started = time.perf_counter()
        async with self.filing:
            self.requests += 1
            try:
                async with self.session.post(self.api_url + "/api/v1/reports", json=body,
                                             headers=self.centre.headers()) as r:
                    out.status = r.status
                    answer = await r.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._failed(exc)
                out.status = 0  # no answer: not accepted as far as the call taker knows
                return out
        out.accepted_at, out.accepted_wall = time.perf_counter(), time.time()
        out.post_ms = (out.accepted_at - started) * 1000
        if out.status != 202:
            return out
        out.report_id = answer["report_id"]
        await self._watch(out)
        return out

    async def _watch(self, out: Outcome) -> None:
        deadline = out.accepted_at + VISIBLE_WITHIN_S
        try:
            await asyncio.wait_for(self._told_of(out.report_id).wait(), timeout=deadline - time.perf_counter())
        except asyncio.TimeoutError:
            return
        out.announced_at = time.perf_counter()
        out.incident_id, out.attached = self.incident_of[out.report_id]
        last_start = None
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            if last_start is not None:
                out.gaps.append(start - last_start)
            last_start = start
            out.polls += 1
            # As the console asks: the page, with the event the stream told of (services/api/pages.py).
            status, page, read_model = await self._get(
                f"/api/v1/incidents/{out.incident_id}?seen={quote(self.recommended[out.incident_id])}")
            if status == 200 and read_model == "includes" and page.get("recommendation"):
                out.visible_at, out.visible_wall = time.perf_counter(), time.time()
                return
            await asyncio.sleep(max(0.0, start + POLL_S - time.perf_counter()))


async def _file_reports(api_url: str, centre: CallCentre, *, rate: float, duration: float,
                        label: str = "pipeline") -> tuple[list[Outcome], dict]:
    """Open loop: report n is filed at n / rate seconds whatever the system's answers."""
    connector = aiohttp.TCPConnector(limit=POLLERS + FILERS + 1, force_close=False)  # + the live stream
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        dispatcher = Dispatcher(api_url, centre, session)
        following = asyncio.create_task(dispatcher.follow_stream())
        try:
            await asyncio.wait_for(dispatcher.stream_connected.wait(), timeout=30)
        except asyncio.TimeoutError:
            following.cancel()
            raise RuntimeError(f"the live stream did not connect within 30 s ({dispatcher.errors})") from None
        total = int(rate * duration)
        tasks: list[asyncio.Task] = []
        outcomes: list[Outcome] = []  # filled in by the tasks; one cut short keeps what it saw
        t0 = time.perf_counter()
        next_say = 10.0
        late = 0.0
        for n in range(total):
            due = t0 + n / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                late = max(late, -wait)
            outcomes.append(Outcome())
            tasks.append(asyncio.create_task(dispatcher.file_and_watch(centre.report(), outcomes[-1])))
            elapsed = time.perf_counter() - t0
            if elapsed >= next_say:
                seen = sum(1 for o in outcomes if o.visible_at)
                say(f"{label}: {elapsed:.0f}/{duration:.0f} s, {n + 1} reports sent, {seen} recommendations seen")
                next_say += 10.0
        sending_s = time.perf_counter() - t0
        # Bounded: each report is watched for VISIBLE_WITHIN_S after its 202, each request times out.
        await asyncio.wait(tasks, timeout=VISIBLE_WITHIN_S + 30)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        stats = {"sending_s": round(sending_s, 2), "most_behind_schedule_ms": round(late * 1000, 1),
                 "request_failures": dispatcher.errors,
                 "stream_connections": dispatcher.stream_connections, "stream_resets": dispatcher.stream_resets,
                 "api_requests": dispatcher.requests,
                 "poll_waited_for_a_slot": percentiles_ms(w * 1000 for w in dispatcher.slot_waits),
                 "poll_round_trip": percentiles_ms(r * 1000 for r in dispatcher.round_trips),
                 "api_requests_per_s": round(dispatcher.requests / max(time.perf_counter() - t0, 1e-9), 1)}
        return outcomes, stats


def _stages(outcomes: list[Outcome], clock: EventClock) -> dict:
    """Times between the pipeline's events, from the broker's record timestamps (ms)."""
    intake, dispatch, to_api = [], [], []
    for o in outcomes:
        if o.report_id is None or o.attached:
            continue
        received = clock.received.get(o.report_id)
        opened = clock.opened.get(o.report_id)
        if received is None or opened is None:
            continue
        intake.append(opened[0] - received)
        recommended = clock.recommended.get(opened[1])
        if recommended is not None:
            dispatch.append(recommended - opened[0])
            if o.visible_wall is not None:
                to_api.append(o.visible_wall * 1000 - recommended)
    api_to_kafka = [clock.received[o.report_id] - o.accepted_wall * 1000 for o in outcomes
                    if o.report_id in clock.received]
    return {"received_to_opened": percentiles_ms(intake), "opened_to_recommended": percentiles_ms(dispatch),
            "recommended_to_visible_in_api": percentiles_ms(to_api),
            "record_timestamp_minus_202_ms": percentiles_ms(api_to_kafka)}


def run(work: Path, quick: bool) -> Result:
    rate, duration, units = (5.0, 5.0, 50) if quick else (50.0, 60.0, 2000)
    issue = _measure(work / "issue-rate", rate, duration, units)
    if quick:
        return issue
    # The issue's 50 a second is more than these two cores carry with the load generator on them:
    # the same run at a rate they do carry says what the pipeline itself costs.
    say(f"pipeline: again at {SUSTAINED_RATE:.0f} reports a second, on a fresh system")
    low = _measure(work / "sustained-rate", SUSTAINED_RATE, duration, units)
    a = low.details["accepted_to_visible"]
    low_b = low.details["stages_on_kafka"]["received_to_opened"]
    issue.figures.extend([
        Figure(f"at {SUSTAINED_RATE:.0f} a second: 202 → visible in the API, p50", round(a["p50_ms"], 1), "ms"),
        Figure(f"at {SUSTAINED_RATE:.0f} a second: 202 → visible in the API, p99", round(a["p99_ms"], 1), "ms"),
        Figure(f"at {SUSTAINED_RATE:.0f} a second: report.received → incident.opened, p99", round(low_b["p99_ms"], 1),
               "ms"),
    ])
    issue.details["at_sustained_rate"] = low.details
    return Result(issue.figures, issue.details, issue.limits + f" At {SUSTAINED_RATE:.0f} a second: " + low.limits)


def _measure(work: Path, rate: float, duration: float, units: int) -> Result:
    say(f"pipeline: starting a broker and every service in {work}")
    with GatewayStub() as gateway, own_broker(work / "kafka-base") as kafka, \
            running_system(kafka, work / "system", **gateway.settings()) as (settings, stack):
        started_as = {p.name: p.pid for p in stack.processes()}
        say(f"pipeline: registering {units} units on Kafka")
        fleet = Fleet(settings, units)
        try:
            fleet.register()
            fleet.start(every_s=5.0)
            centre = CallCentre(settings)
            import httpx

            with httpx.Client(base_url=settings.api_url, timeout=10,
                              headers={"Authorization": f"Bearer {centre.dispatcher}"}) as api:
                def fleet_on_board():
                    items = api.get("/api/v1/units").json()["items"]
                    return sum(1 for u in items if u["position"]) >= units and len(items)
                wait_until(fleet_on_board, timeout=120, interval=0.5, what=f"{units} units with positions on the board")
            say(f"pipeline: {units} units report every 5 s; warming up with {WARM_UP_REPORTS} reports")
            warm, _ = asyncio.run(_file_reports(settings.api_url, centre, rate=WARM_UP_REPORTS, duration=1.0,
                                                label="warm-up"))
            if not all(o.visible_at for o in warm):
                raise RuntimeError(f"warm-up reports got no recommendation within {VISIBLE_WITHIN_S:.0f} s: "
                                   + ", ".join(f"{o.report_id} ({o.status})" for o in warm if not o.visible_at))
            say(f"pipeline: filing {rate:.0f} reports a second for {duration:.0f} s")
            with EventClock(settings) as clock:
                brokers = processes_mentioning("java", str(work / "kafka-base"))
                cpu = CpuShares({p.name: p.pid for p in stack.processes()}
                                | {f"broker{'' if i == 0 else i}": pid for i, pid in enumerate(brokers)})
                outcomes, sending = asyncio.run(_file_reports(settings.api_url, centre, rate=rate, duration=duration))
                cpu_use = cpu.shares()
                # The last events' record timestamps: the consumer is at most a poll behind.
                wanted = [o.report_id for o in outcomes if o.report_id]
                try:
                    wait_until(lambda: all(r in clock.received and (r in clock.opened or r in clock.attached)
                                           for r in wanted), timeout=15, what="every report's events on Kafka")
                except TimeoutError as exc:
                    say(f"pipeline: {exc}")
                stages = _stages(outcomes, clock)
                positions_sent, late_rounds = fleet.positions_sent, fleet.late_rounds
        finally:
            fleet.stop()
        processes = {p.name: p.pid for p in stack.processes()}
    accepted = [o for o in outcomes if o.status == 202]
    own = [o for o in accepted if not o.attached]
    cap_ms = VISIBLE_WITHIN_S * 1000
    # The 202s keep coming after the filing window while the reports wait for a line: the rate is
    # the accepted over the time they took to be accepted, not over the window.
    answered = sorted(o.accepted_at for o in accepted)
    span = max(duration, answered[-1] - answered[0]) if len(answered) > 1 else duration
    taken = len(accepted) / span
    # Not seen within VISIBLE_WITHIN_S (or seen only by a poll that waited its turn past it): at the cap.
    latencies = [min(o.latency_ms, cap_ms) if o.latency_ms is not None else cap_ms for o in own]
    a = percentiles_ms(latencies)
    b = stages["received_to_opened"]
    gaps = [g * 1000 for o in accepted for g in o.gaps]
    details = {
        "reports_per_s": rate, "duration_s": duration, "units": units, "position_every_s": 5.0,
        "reports_filed": len(outcomes), "accepted_202": len(accepted),
        "accepted_per_s": round(taken, 1), "accepted_over_s": round(span, 1),
        # never sent: the run ended while they still waited for one of the FILERS lines
        "not_filed_in_time": sum(1 for o in outcomes if o.status is None),
        "refused": {str(s): sum(1 for o in outcomes if o.status == s)
                    for s in {o.status for o in outcomes} if s not in (202, None)},
        "opened_own_incident": len(own), "attached_to_open_incident": len(accepted) - len(own),
        "not_visible_within_s": {"limit_s": VISIBLE_WITHIN_S,
                                 "count": sum(1 for o in own if o.latency_ms is None or o.latency_ms > cap_ms)},
        "accepted_to_visible": a,
        "attached_accepted_to_visible": percentiles_ms(o.latency_ms for o in accepted if o.attached and o.latency_ms),
        # the stream told of the incident and its recommendation (the dispatcher then asks the API)
        "accepted_to_announced_on_stream": percentiles_ms(o.announced_ms for o in own if o.announced_ms is not None),
        "post_round_trip_with_wait_for_a_line": percentiles_ms(o.post_ms for o in outcomes if o.post_ms is not None),
        "stages_on_kafka": stages,
        "polling": {"interval_ms": POLL_S * 1000, "requests_in_flight_max": POLLERS,
                    "actual_gap_between_polls": percentiles_ms(gaps),
                    "polls_per_report_mean": round(sum(o.polls for o in accepted) / max(1, len(accepted)), 1),
                    "note": "asked for once the stream announced the recommendation; latency is measured to the "
                            "arrival of the first answer showing it; "
                            "it is late by at most one poll gap plus that request's own time"},
        "load_generator": {**sending, "positions_sent": positions_sent, "position_rounds_late": late_rounds,
                           "gateway_messages": gateway.received},
        "processes": processes,
        # per cent of one core each used while the reports were filed; "machine": of both cores
        "cpu_percent_while_filing": cpu_use,
        # supervisord restarts a worker that crashed or counted itself stalled: a sign of overload
        "restarted": sorted(name for name, pid in processes.items() if started_as.get(name) != pid),
        "machine": machine(),
    }
    figures = [
        Figure("202 → recommendation visible in the API, p50", round(a["p50_ms"], 1), "ms"),
        Figure("202 → recommendation visible in the API, p99", round(a["p99_ms"], 1), "ms", target=100.0),
        Figure("202 → recommendation visible in the API, max", round(a["max_ms"], 1), "ms"),
        Figure("report.received → incident.opened on Kafka, p50", round(b["p50_ms"], 1), "ms"),
        Figure("report.received → incident.opened on Kafka, p99", round(b["p99_ms"], 1), "ms"),
        Figure("report.received → incident.opened on Kafka, max", round(b["max_ms"], 1), "ms"),
    ]
    d, v = stages["opened_to_recommended"], stages["recommended_to_visible_in_api"]
    processes_cpu = ", ".join(f"{name} {share:.0f} %" for name, share in
                              sorted(cpu_use.items(), key=lambda kv: -kv[1]) if name != "machine")
    announced = details["accepted_to_announced_on_stream"]
    busy = cpu_use.get("machine", 0)
    limits = (f"The API accepted {taken:.0f} reports a second ({len(accepted)} over {span:.0f} s; {rate:.0f} a second "
              f"were filed for {duration:.0f} s). The live stream announced a report's recommendation "
              f"{announced['p50_ms']:.0f} ms after its 202 (median); the dispatcher then asked the API "
              f"{details['polling']['polls_per_report_mean']} times a report on average, a poll every "
              f"{percentiles_ms(gaps)['p50_ms']:.0f} ms (median). On Kafka, intake took {b['p50_ms']:.0f} ms and "
              f"dispatch {d['p50_ms']:.0f} ms (medians); from dispatch.recommended to visible in the API "
              f"(the projection's lag behind Kafka, then the wait for a poll), {v['p50_ms']:.0f} ms; a poll's "
              f"round trip {sending['poll_round_trip']['p50_ms']:.0f} ms (median), p99 "
              f"{sending['poll_round_trip']['p99_ms']:.0f} ms, after waiting for a slot p99 "
              f"{sending['poll_waited_for_a_slot']['p99_ms']:.0f} ms. "
              f"While the reports were filed both cores were {busy:.0f} % busy (of one core: {processes_cpu})"
              + (": every process waits for CPU. " if busy >= 90 else ". ")
              + "Each report is about five events, each read by several workers (faust and aiokafka cost about a "
              "millisecond a message here); the projection (about 0.35 ms of CPU an event in its shared "
              "transactions, measured alone) is the last stage before the API.")
    return Result(figures, details, limits)


def main(argv: list[str] | None = None) -> None:
    run_alone(NAME, __doc__, run, argv if argv is not None else sys.argv[1:], "a smoke run: 5 reports a second for 5 s, 50 units")


if __name__ == "__main__":
    main(sys.argv[1:])
