"""How fast an event on Kafka reaches every console on the live stream.

    python -m benchmarks.live [--quick]                                  # the benchmark
    python -m benchmarks.live clients URL TOKEN COUNT FOLDER NAME         # one client process (started by it)

The API (`spkt run api`, one uvicorn worker, its LiveHub reading the topics) runs alone on a broker
of the benchmark's own: the stream serves whatever is on the topics, so no worker is needed, and
none takes CPU or consumes the events published here. 500 consoles (command_center token, no
jurisdiction: every event) hold `GET /api/v1/stream` open from two client processes of 250 asyncio
connections each (aiohttp), apart from the API so their CPU is not the server's. Each client sends
an unknown Last-Event-ID, so the `reset` answer tells it the hub is live for it.

Then `incident.opened` events go straight onto spkt.incidents at a steady rate, each send timed
(and its acknowledgement); every client notes when each event id (`topic:partition:offset`, known
to the producer from its acknowledgement) arrives. Latency = arrival - send, over every (client,
event) pair.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from benchmarks.harness import Figure, Result, percentiles_ms, run_alone, wait_until
from benchmarks.api import profile
from benchmarks.system import ServedProcess, cpu_seconds, free_port, machine, own_broker, token

NAME = "live"
TITLE = "Kafka → live stream (SSE) to 500 consoles"


def log(message: str) -> None:
    print(f"live: {message}", file=sys.stderr, flush=True)


# --- the client processes -------------------------------------------------------------------------------
async def _console(session, url: str, bearer: str, record: dict, live: asyncio.Event) -> None:
    """One console: note when each event id arrives, until told to stop."""
    headers = {"Authorization": f"Bearer {bearer}", "Last-Event-ID": "bench-not-an-id", "Accept": "text/event-stream"}
    arrivals: dict[str, float] = record["arrivals"]
    try:
        async with session.get(url + "/api/v1/stream", headers=headers) as response:
            record["status"] = response.status
            if response.status != 200:
                return
            pending = b""
            while True:
                chunk = await response.content.readany()
                now = time.time()
                if not chunk:
                    record["ended"] = True  # the server closed it: dropped
                    return
                pending += chunk
                lines, _, pending = pending.rpartition(b"\n")
                for line in lines.split(b"\n"):
                    if line.startswith(b"id: "):
                        arrivals.setdefault(line[4:].decode(), now)
                    elif line == b"event: reset":
                        live.set()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the others go on
        record["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        live.set()  # a failed console must not hold the start back; it is counted as failed


async def _clients(url: str, bearer: str, count: int, folder: Path, name: str) -> None:
    import aiohttp

    records = [{"arrivals": {}, "status": None, "ended": False, "error": None} for _ in range(count)]
    lives = [asyncio.Event() for _ in range(count)]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(_console(session, url, bearer, r, e)) for r, e in zip(records, lives)]
        stop = folder / "stop"
        reported = -1
        while not stop.exists():
            ready = sum(e.is_set() for e in lives)
            if ready != reported:  # the benchmark waits for every console's reset
                (folder / f"{name}.ready").write_text(str(ready))
                reported = ready
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    (folder / f"{name}.json").write_text(json.dumps(records))


class ClientProcess:
    def __init__(self, url: str, bearer: str, count: int, folder: Path, name: str) -> None:
        self.count, self.folder, self.name = count, folder, name
        self._log = open(folder / f"{name}.log", "ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.live", "clients", url, bearer, str(count), str(folder), name],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent)

    def ready(self) -> int:
        if self.popen.poll() is not None:
            raise RuntimeError(f"client process {self.name} exited ({self.popen.returncode}); see {self._log.name}")
        try:
            return int((self.folder / f"{self.name}.ready").read_text() or 0)
        except (OSError, ValueError):
            return 0

    def results(self, timeout: float = 60) -> list[dict]:
        self.popen.wait(timeout)
        return json.loads((self.folder / f"{self.name}.json").read_text())

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        self._log.close()


# --- the API alone ---------------------------------------------------------------------------------------
class LoneApi(ServedProcess):
    """`spkt run api` on its own, as supervisord would start it."""

    def __init__(self, settings, log_path: Path) -> None:
        self.settings = settings
        super().__init__(["spkt.cli", "run", "api"], settings, log_path, settings.api_url + "/readyz", "the API")

    def metric(self, name: str) -> float:
        text = httpx.get(self.settings.api_url + "/metrics", timeout=10).text
        found = re.search(rf"^{re.escape(name)} ([\d.e+-]+)$", text, re.M)
        return float(found[1]) if found else 0.0


# --- the events --------------------------------------------------------------------------------------------
def incident_opened(n: int, run: str) -> tuple[bytes, bytes]:
    """A real incident.opened envelope (key, value), as intake publishes it."""
    from schemas.envelope import utcnow
    from schemas.events import IncidentOpened
    from schemas.registry import make_event

    now = utcnow()
    incident_id = f"inc-live-{run}-{n:04d}"
    data = IncidentOpened(incident_id=incident_id, number=f"LIVE/{run}/{n:04d}", report_ids=[f"rpt-live-{run}-{n:04d}"],
                          category="street_robbery", priority="P2", summary="Jambret di halte, pelaku naik motor",
                          location={"lat": -6.2615, "lon": 106.8106}, jurisdiction="polsek-kebayoran-baru",
                          polres="polres-jaksel", opened_at=now, targets={"dispatch": now + timedelta(minutes=2)})
    envelope = make_event(data, source="/spkt/intake")
    return incident_id.encode(), envelope.to_bytes()


def publish(settings, events: int, rate: float, on_sent) -> list[dict]:
    """`events` incident.opened on spkt.incidents, `rate` a second; each send and acknowledgement timed."""
    from kafka import KafkaProducer

    from schemas import topics

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all", linger_ms=0)
    run, sent = uuid.uuid4().hex[:6], []
    try:
        producer.partitions_for(topics.INCIDENTS)  # the metadata fetch is the producer's, not a send's
        start = time.monotonic()
        for n in range(events):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))  # a steady rate, not bursts
            key, value = incident_opened(n, run)
            sent_at = time.time()
            metadata = producer.send(topics.INCIDENTS, key=key, value=value).get(timeout=15)
            acked_at = time.time()
            sent.append({"id": f"{metadata.topic}:{metadata.partition}:{metadata.offset}", "sent": sent_at,
                         "acked": acked_at})
            on_sent(n + 1)
    finally:
        producer.close()
    return sent


# --- the benchmark -------------------------------------------------------------------------------------
def run(work: Path, quick: bool) -> Result:
    from spkt.settings import Settings

    clients, events, rate = (20, 10, 5.0) if quick else (500, 100, 5.0)
    processes = 2
    details: dict = {"machine": machine(), "quick": quick, "clients": clients, "events": events, "rate_per_s": rate,
                     "client_processes": processes}
    # Other work on the machine (it is shared) shows here: read the figures with it.
    details["load_average_1min"] = {"before": round(os.getloadavg()[0], 2)}
    with own_broker(work) as kafka:
        state = work / "api"
        state.mkdir()
        settings = Settings(**{**kafka.model_dump(), "state_dir": state, "api_port": free_port(),
                               "database_url": f"sqlite:///{state / 'spkt.db'}"})
        api = LoneApi(settings, work / "api.log")
        procs: list[ClientProcess] = []
        try:
            api.wait_ready()
            log(f"API up (pid {api.popen.pid}); connecting {clients} consoles from {processes} processes")
            bearer = token(settings, "command_center")
            folder = work / "clients"
            folder.mkdir()
            share = [clients // processes + (i < clients % processes) for i in range(processes)]
            procs = [ClientProcess(settings.api_url, bearer, n, folder, f"clients-{i}") for i, n in enumerate(share)]

            def all_live():
                ready = sum(p.ready() for p in procs)
                return ready if ready == clients else None
            started = time.monotonic()
            wait_until(all_live, timeout=120, interval=0.2, what=f"{clients} consoles live on the stream")
            details["connect_s"] = round(time.monotonic() - started, 2)
            details["server_clients_gauge"] = api.metric("spkt_live_clients")
            log(f"{clients} consoles live in {details['connect_s']} s (server counts {details['server_clients_gauge']:.0f}); "
                f"publishing {events} events at {rate:g}/s")

            cpu = {"api": cpu_seconds(api.popen.pid), **{p.name: cpu_seconds(p.popen.pid) for p in procs}}
            wall = time.monotonic()
            step = max(1, events // 10)
            sent = publish(kafka, events, rate,
                           lambda n: n % step == 0 and log(f"{n}/{events} events sent"))
            time.sleep(2.0)  # the last event's way to every console (well beyond the target)
            wall = time.monotonic() - wall
            details["cpu_percent_of_a_core"] = {
                "api": round(100 * (cpu_seconds(api.popen.pid) - cpu["api"]) / wall, 1),
                **{p.name: round(100 * (cpu_seconds(p.popen.pid) - cpu[p.name]) / wall, 1) for p in procs}}
            details["api_cpu_ms_per_event"] = round(1000 * (cpu_seconds(api.popen.pid) - cpu["api"]) / len(sent), 2)
            details["server_dropped_total"] = api.metric("spkt_live_clients_dropped_total")
            # Profiled apart: py-spy stops the process to sample it, which would show in the latencies.
            log("profiling the API with py-spy while events go on")
            details["profile"] = profile(api.popen.pid, 3 if quick else 8, work / "live-profile.txt",
                                         lambda: publish(kafka, int(rate * (2 if quick else 6)), rate, lambda n: None))
            (folder / "stop").write_text("")
            records = [r for p in procs for r in p.results()]
        finally:
            for p in procs:
                p.stop()
            api.stop()

    details["load_average_1min"]["after"] = round(os.getloadavg()[0], 2)
    sent_at = {s["id"]: s["sent"] for s in sent}
    acked_at = {s["id"]: s["acked"] for s in sent}
    from_send, from_ack, complete, failed, dropped = [], [], 0, 0, 0
    by_event: dict[str, list[float]] = {eid: [] for eid in sent_at}
    for record in records:
        if record["status"] != 200 or record["error"]:
            failed += 1
        dropped += bool(record["ended"])
        got = {eid: at for eid, at in record["arrivals"].items() if eid in sent_at}
        complete += len(got) == len(sent_at)
        from_send += [(at - sent_at[eid]) * 1000 for eid, at in got.items()]
        from_ack += [(at - acked_at[eid]) * 1000 for eid, at in got.items()]
        for eid, at in got.items():
            by_event[eid].append(at)
    # Where the time goes: Kafka -> the first console, then the first console -> the last.
    first = percentiles_ms((min(ats) - sent_at[eid]) * 1000 for eid, ats in by_event.items() if ats)
    spread = percentiles_ms((max(ats) - min(ats)) * 1000 for ats in by_event.values() if ats)
    latency = percentiles_ms(from_send)
    details.update(latency_from_send=latency, latency_from_ack=percentiles_ms(from_ack),
                   first_console_from_send=first, first_to_last_console=spread,
                   produce_ack_ms=percentiles_ms((s["acked"] - s["sent"]) * 1000 for s in sent),
                   arrivals=len(from_send), expected_arrivals=clients * len(sent), clients_with_every_event=complete,
                   clients_failed=failed, clients_dropped=dropped,
                   split=(f"the API alone in its own process (one uvicorn worker); the {clients} consoles in "
                          f"{processes} separate client processes (asyncio + aiohttp); the broker and the "
                          "producer in others; all on the same 2 cores"))
    log(f"p99 {latency['p99_ms']:.1f} ms over {len(from_send)} arrivals; {complete}/{clients} consoles got every event")
    return Result(
        figures=[
            Figure("Kafka → every console, p99", latency["p99_ms"], "ms", target=200),
            Figure("Kafka → every console, p50", latency["p50_ms"], "ms"),
            Figure("Kafka → every console, max", latency["max_ms"], "ms"),
            Figure("consoles that got every event", complete, "", target=clients, better="higher"),
            Figure("consoles dropped", dropped + failed, "", target=0),
        ],
        details=details,
        limits=limits_text(first, spread, clients, details),
    )


def limits_text(first: dict, spread: dict, clients: int, details: dict) -> str:
    layers = (details.get("profile") or {}).get("layers_pct") or {}
    where = ", ".join(f"{pct:.0f} % {name}" for name, pct in list(layers.items())[:3])
    return (f"An event reaches the first console {first['p50_ms']:.0f} ms after it is sent (p99 {first['p99_ms']:.0f} ms: "
            f"the producer's acknowledgement and the hub's fetch from Kafka); writing it to all {clients} streams "
            f"takes {spread['p50_ms']:.0f} ms more (p99 {spread['p99_ms']:.0f} ms), one stream after another on the "
            f"API's one event loop, {details['api_cpu_ms_per_event']:.1f} ms of API CPU an event."
            + (f" py-spy (--gil) puts that CPU in: {where}." if where else ""))


def main(argv: list[str]) -> None:
    if argv[:1] == ["clients"]:
        url, bearer, count, folder, name = argv[1:6]
        asyncio.run(_clients(url, bearer, int(count), Path(folder), name))
        return
    run_alone(NAME, __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
