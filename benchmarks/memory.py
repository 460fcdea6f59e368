"""Resident memory of each service at a city's scale: 10,000 units with positions, 1,000 open incidents.

    python -m benchmarks.memory [--quick] [--work DIR]

The broker and every service of `spkt up` (benchmarks.system.running_system). 10,000 units are
registered on Kafka and each reports its position three times (straight on the unit-positions
topic, as trackers do: 30,000 fixes, more than the API's live-stream buffer holds, so every
in-memory window is full). Call takers then file reports through `POST /api/v1/reports` until
1,000 incidents are open (the real path: intake opens them, dispatch recommends for each, notify
sends the receipts to an SMS gateway on loopback, the projection writes them all).

Then it waits until every service has processed everything: each consumer group's lag is zero
and the read model holds the 1,000 incidents, each with its recommendation, and the 10,000 units
with their positions. And reads, from /proc, each process's resident memory now (VmRSS, with any
children) and at its peak (VmHWM).

Target (issue 9): each service <= 300 MB. Quick mode: 200 units, 20 incidents.
"""
from __future__ import annotations

import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from deploy.stack import WORKERS
from .harness import Figure, Result, run_alone, wait_until
from .load import LAT, LON, CallCentre, Fleet, GatewayStub, group_lag, say
from .system import machine, own_broker, running_system, tree_rss_mb

NAME = "memory"
TITLE = "Resident memory of each service at 10,000 units and 1,000 open incidents"

SERVICES = ("intake", "dispatch", "tkp", "notify", "projection", "api")
TARGET_MB = 300.0
POSITION_ROUNDS = 3
FILERS = 8  # call takers filing at once (below the API's 15 database connections)
WAIT_S = 420.0  # for every service to process it all


def status_mb(pid: int, field: str) -> float:
    """A VmXXX line of /proc/<pid>/status, in MB (2^20 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise ProcessLookupError(pid)


def spread(count: int) -> list[tuple[float, float]]:
    """`count` places on a grid over the area, as far apart as it allows: each report is a new
    event, not another account of one already open (intake would attach it)."""
    side = 1
    while side * side < count:
        side += 1
    cells = [((i + 0.5) / side, (j + 0.5) / side) for i in range(side) for j in range(side)]
    return [(LAT[0] + a * (LAT[1] - LAT[0]), LON[0] + b * (LON[1] - LON[0])) for a, b in cells[:count]]


class ReadModel:
    """Counts straight from the SQLite read model (read-only): what every API query is served from."""

    def __init__(self, database: Path) -> None:
        self.database = database

    def _one(self, sql: str) -> int:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql).fetchone()[0]

    def incidents(self) -> int:
        return self._one("select count(*) from incidents where status not in ('closed', 'duplicate')")

    def recommended(self) -> int:
        return self._one("select count(*) from recommendations")

    def units_positioned(self) -> int:
        return self._one("select count(*) from units where lat is not null")


def file_reports(settings, centre: CallCentre, places: list[tuple[float, float]]) -> dict[int, int]:
    """Each place's report through the API, a few call takers at once; the answers' statuses."""
    statuses: dict[int, int] = {}
    # Each place its own wording, in turn: the same words in neighbouring cells (1-2 km apart) are
    # one event to intake for categories with a wide radius (a flood, a missing person), and it
    # rightly attached such reports to one incident instead of opening 1,000.
    bodies = [centre.report(place, text_no=n) for n, place in enumerate(places)]
    heads = [centre.headers() for _ in places]
    with httpx.Client(base_url=settings.api_url, timeout=30) as api:
        def one(n: int) -> int:
            return api.post("/api/v1/reports", json=bodies[n], headers=heads[n]).status_code

        with ThreadPoolExecutor(FILERS) as pool:
            for n, status in enumerate(pool.map(one, range(len(places))), start=1):
                statuses[status] = statuses.get(status, 0) + 1
                if n % 200 == 0:
                    say(f"memory: {n}/{len(places)} reports filed")
    return statuses


def run(work: Path, quick: bool) -> Result:
    units, incidents = (200, 20) if quick else (10_000, 1_000)
    say(f"memory: starting a broker and every service in {work}")
    with GatewayStub() as gateway, own_broker(work / "kafka-base") as kafka, \
            running_system(kafka, work / "system", **gateway.settings()) as (settings, stack):
        read_model = ReadModel(Path(settings.db_url.removeprefix("sqlite:///")))
        # Before any data: the interpreter and the libraries each process imports.
        started_as = {p.name: p.pid for p in stack.processes() if p.name in SERVICES and p.pid}
        at_start = {name: round(tree_rss_mb(pid), 1) for name, pid in started_as.items()}
        fleet = Fleet(settings, units)
        try:
            say(f"memory: registering {units} units on Kafka, then {POSITION_ROUNDS - 1} more positions each")
            fleet.register(timeout=120)
            for _ in range(POSITION_ROUNDS - 1):
                time.sleep(1.0)
                fleet.move_all(5.0, timeout=120)
        finally:
            fleet.stop()
        centre = CallCentre(settings, seed=2)
        started = time.monotonic()
        say(f"memory: filing {incidents} reports through the API, each at a place of its own")
        statuses = file_reports(settings, centre, spread(incidents))
        filing_s = time.monotonic() - started

        def progress():
            lags = {service: group_lag(settings, f"spkt-{service}") for service in WORKERS}
            seen = (read_model.incidents(), read_model.recommended(), read_model.units_positioned())
            return lags, seen

        said = [time.monotonic()]

        def everything_processed():
            lags, seen = progress()
            if time.monotonic() - said[0] >= 30:
                said[0] = time.monotonic()
                say(f"memory: read model has {seen[0]}/{incidents} incidents, {seen[1]} recommendations, "
                    f"{seen[2]}/{units} units with a position; lag " + ", ".join(f"{k} {v}" for k, v in lags.items()))
            return all(lag == 0 for lag in lags.values()) and seen[0] >= incidents and seen[1] >= incidents \
                and seen[2] >= units

        say("memory: waiting until every service has processed everything (lag zero, read model complete)")
        try:
            wait_until(everything_processed, timeout=WAIT_S if not quick else 60, interval=2.0,
                       what="every consumer group at lag zero and the read model complete")
            complete = True
        except TimeoutError as exc:
            # Measured all the same, and said: a service that could not keep up holds a backlog,
            # not the steady state this figure is about.
            say(f"memory: {exc}; measuring as it is")
            complete = False
        lags, seen = progress()
        time.sleep(3.0)  # the last timers (flushes, commits, the API's live buffer) have run
        memory = {}
        for p in stack.processes():
            if p.name in SERVICES and p.pid:
                memory[p.name] = {"pid": p.pid, "rss_mb": round(tree_rss_mb(p.pid), 1),
                                  "peak_rss_mb": round(status_mb(p.pid, "VmHWM"), 1),
                                  "rss_at_start_mb": at_start.get(p.name) if started_as.get(p.name) == p.pid else None}
        say("memory: " + ", ".join(f"{name} {m['rss_mb']:.0f} MB" for name, m in memory.items()))
    missing = [s for s in SERVICES if s not in memory]
    if missing:
        raise RuntimeError(f"no process found for {', '.join(missing)}")
    figures = [Figure(f"{name} resident memory", memory[name]["rss_mb"], "MB", target=TARGET_MB) for name in SERVICES]
    total = sum(m["rss_mb"] for m in memory.values())
    figures.append(Figure("all six services, total", round(total, 1), "MB"))
    details = {
        "units": units, "position_rounds": POSITION_ROUNDS, "positions_sent": fleet.positions_sent,
        "everything_processed": complete,
        "incidents_open": seen[0], "recommendations": seen[1], "units_with_position": seen[2],
        "reports": statuses, "filing_s": round(filing_s, 1), "consumer_lag": lags,
        "memory": memory, "total_rss_mb": round(total, 1),
        "restarted": sorted(name for name, pid in started_as.items() if memory.get(name, {}).get("pid") != pid),
        "peak_total_mb": round(sum(m["peak_rss_mb"] for m in memory.values()), 1),
        "gateway_messages": gateway.received,
        "note": "rss_mb: VmRSS of the process and its children once everything was processed (or, when "
                "everything_processed is false, at the end of the wait); "
                "peak_rss_mb: VmHWM, the most it held at any time. MB = 2^20 bytes.",
        "machine": machine(),
    }
    biggest = max(memory, key=lambda name: memory[name]["rss_mb"])
    big = memory[biggest]
    start = big["rss_at_start_mb"]
    limits = (f"The largest is {biggest} at {big['rss_mb']:.0f} MB (peak {big['peak_rss_mb']:.0f} MB), of which "
              f"{start:.0f} MB it held before any data: the interpreter and its libraries (faust, aiokafka, pydantic, "
              f"SQLAlchemy, FastAPI), loaded by each of the six processes; the data at this scale added "
              f"{big['rss_mb'] - start:.0f} MB.") if start else f"The largest is {biggest} at {big['rss_mb']:.0f} MB."
    if not complete:
        limits = (f"Not everything was processed within {WAIT_S:.0f} s (read model: {seen[0]} incidents, {seen[2]} "
                  f"units with a position; lags {lags}): a worker with lag left stopped receiving messages (its "
                  f"event loop idle, nothing delivered by faust's consumer), so the figures are at less than "
                  f"this scale. " + limits)
    return Result(figures, details, limits)


def main(argv: list[str] | None = None) -> None:
    run_alone(NAME, __doc__, run, argv if argv is not None else sys.argv[1:], "a smoke run: 200 units, 20 incidents")


if __name__ == "__main__":
    main(sys.argv[1:])
