"""How many incident reads a second one API worker answers, against bare Starlette beside it.

    python -m benchmarks.api [--quick]          # the benchmark (prints the figures)
    python -m benchmarks.api bare PORT BODY     # the baseline server (started by the benchmark)

The real system (own broker, every process of `spkt up`) is given units and a few hundred reports
through the API; once they are incidents with recommendations every worker is stopped, so only
the API (one uvicorn worker, exactly as `spkt run api` serves it) is left on the read model. `wrk`
then asks `GET /api/v1/incidents/{id}` for a spread of incident ids with a dispatcher's token, and
the same `wrk` (same threads, connections, duration, Lua script) asks a bare Starlette endpoint on
uvicorn with the same options that answers a real incident's JSON. A warm-up precedes each run;
the two alternate (rounds) so drift on the shared machine falls on both. py-spy profiles our API
in a run of its own (its sampling would slow the measured ones).

Nothing changes while wrk asks, so the API answers pages it keeps built (services/api/pages.py):
the figure is a console re-reading incidents. How many reads were answered that way, and what
building a page costs (each read after its incident changes), are in the details (`pages`).
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.harness import Figure, Result, run_alone, wait_until
from benchmarks.system import (
    ServedProcess, cpu_seconds, free_port, machine, own_broker, running_system, token,
)

NAME = "api"
TITLE = "GET /api/v1/incidents/{id} on one uvicorn worker, against bare Starlette"

WORKERS = ("intake", "dispatch", "tkp", "notify", "projection")
# Spread over greater Jakarta, ~1.5 km apart so intake does not take them for one incident.
LAT, LON = (-6.36, -6.10), (106.70, 106.96)
CATEGORIES = ("street_robbery", "vehicle_theft", "theft", "burglary", "assault", "traffic_accident", "brawl",
              "fire", "fraud", "suspicious_activity", "domestic_violence", "public_order")
WHAT = ("pelaku kabur ke arah jalan raya", "korban luka ringan", "saksi melihat dua orang", "terjadi dini hari",
        "warga berkumpul di lokasi", "kendaraan pelaku motor hitam", "korban seorang pedagang", "dekat pasar")
STATIONS = ("polsek-kebayoran-baru", "polsek-cilandak", "polsek-tanjung-priok", "polsek-gambir")
KINDS = ("car", "motorcycle", "foot")


def log(message: str) -> None:
    print(f"api: {message}", file=sys.stderr, flush=True)


# --- wrk ---------------------------------------------------------------------------------------------
def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("the api benchmark needs wrk: install the Debian package `wrk` (apt-get install wrk)")
    log("installing wrk (apt-get install -y -qq wrk)")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL, timeout=300)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed the package `wrk` but no wrk is on PATH")
    return found


def lua_script(incident_ids: list[str], bearer: str) -> str:
    """Each request asks for the next incident of the list (each wrk thread cycles on its own)."""
    ids = ",".join(json.dumps(i) for i in incident_ids)
    return (f'wrk.headers["Authorization"] = "Bearer {bearer}"\n'
            f'wrk.headers["Accept"] = "application/json"\n'
            f"local ids = {{{ids}}}\n"
            "local i = math.random(#ids)\n"
            "request = function()\n"
            "  i = i % #ids + 1\n"
            '  return wrk.format("GET", "/api/v1/incidents/" .. ids[i])\n'
            "end\n")


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNIT_MS[unit]


def parse_wrk(out: str) -> dict:
    """Requests/s, the latency percentiles of --latency, and what went wrong."""
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
              "requests": int(re.search(r"(\d+) requests in", out)[1])}
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.M)
        result[f"p{pct}_ms"] = _ms(found[1]) if found else float("nan")
    latency = re.search(r"Latency\s+([\d.]+(?:us|ms|s|m))\s+([\d.]+(?:us|ms|s|m))\s+([\d.]+(?:us|ms|s|m))", out)
    if latency:
        result.update(mean_ms=_ms(latency[1]), max_ms=_ms(latency[3]))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(non_2xx[1]) if non_2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    return result


def run_wrk(wrk: str, url: str, script: Path, *, threads: int, connections: int, seconds: float,
            server_pid: int | None = None) -> dict:
    """One wrk run; with the server's pid, also the server's CPU time per request (a figure the
    other load on a shared machine disturbs far less than requests per second)."""
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url]
    before = cpu_seconds(server_pid) if server_pid else None
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    if server_pid:
        result["server_cpu_ms_per_request"] = 1000 * (cpu_seconds(server_pid) - before) / max(result["requests"], 1)
    return result


# --- the baseline ---------------------------------------------------------------------------------------
def serve_bare(port: int, body_file: str) -> None:
    """Bare Starlette answering one real incident's JSON for any id, on uvicorn exactly as
    spkt/runner.py serves the API (same options, one worker, same host)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from spkt.runner import serve_http
    from spkt.settings import get_settings

    settings = get_settings()
    body = json.loads(Path(body_file).read_text())

    async def incident(request):
        return JSONResponse(body)  # serialised per request, as our API does

    app = Starlette(routes=[Route("/api/v1/incidents/{incident_id}", incident)])
    serve_http(app, settings, port)


class Bare(ServedProcess):
    """The baseline: bare Starlette serving `body` as JSON, served like our API (spkt.runner.serve_http)."""

    def __init__(self, settings, body: dict, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://{settings.api_host}:{self.port}"
        body_file = work / "bare-body.json"
        body_file.write_text(json.dumps(body))
        super().__init__(["benchmarks.api", "bare", str(self.port), str(body_file)], settings, work / "bare.log",
                         f"{self.url}/api/v1/incidents/x", "the bare Starlette server")


# --- the read model ------------------------------------------------------------------------------------
def seed(settings, *, units: int, reports: int) -> tuple[list[str], list[str]]:
    """Units with positions and reports through the API; returns (report ids, unit ids)."""
    rng = random.Random(9)
    headers = lambda role, **claims: {"Authorization": f"Bearer {token(settings, role, **claims)}"}  # noqa: E731
    unit_ids = []
    with httpx.Client(base_url=settings.api_url, timeout=30, headers=headers("admin")) as admin:
        for n in range(units):
            unit_id = f"bench-unit-{n:03d}"
            r = admin.post("/api/v1/units", json={"unit_id": unit_id, "callsign": f"B-{n:03d}",
                                                   "kind": KINDS[n % len(KINDS)], "station": STATIONS[n % len(STATIONS)],
                                                   "capabilities": ["first_aid"] if n % 4 == 0 else []})
            if r.status_code != 201:
                raise RuntimeError(f"registering {unit_id}: {r.status_code} {r.text}")
            unit_ids.append(unit_id)
        for unit_id in unit_ids:
            r = admin.post(f"/api/v1/units/{unit_id}/position",
                           json={"lat": rng.uniform(*LAT), "lon": rng.uniform(*LON)})
            if r.status_code != 202:
                raise RuntimeError(f"position of {unit_id}: {r.status_code} {r.text}")
    # A grid over the city, shuffled: no two reports close enough to be one incident.
    side = int(reports ** 0.5) + 1
    cells = [(i, j) for i in range(side) for j in range(side)]
    rng.shuffle(cells)
    report_ids = []
    with httpx.Client(base_url=settings.api_url, timeout=30, headers=headers("call_taker")) as taker:
        for n, (i, j) in enumerate(cells[:reports]):
            lat = LAT[0] + (LAT[1] - LAT[0]) * (i + 0.5) / side
            lon = LON[0] + (LON[1] - LON[0]) * (j + 0.5) / side
            category = CATEGORIES[n % len(CATEGORIES)]
            r = taker.post("/api/v1/reports", json={
                "channel": "phone_110", "category": category,
                "reporter": {"name": f"Pelapor {n}", "phone": f"+62812{n:08d}"},
                "description": f"Laporan {n}: {category.replace('_', ' ')}, {rng.choice(WHAT)}, {rng.choice(WHAT)}",
                "location": {"lat": round(lat, 5), "lon": round(lon, 5), "address": f"Jl. Contoh No. {n}"}})
            if r.status_code != 202:
                raise RuntimeError(f"report {n}: {r.status_code} {r.text}")
            report_ids.append(r.json()["report_id"])
            if (n + 1) % 100 == 0:
                log(f"{n + 1}/{reports} reports posted")
    return report_ids, unit_ids


def incidents_with_recommendations(settings, report_ids: list[str], timeout: float) -> list[str]:
    """Wait until every report is on an incident that has its recommendation; the incidents."""
    pending, incidents, recommended = set(report_ids), {}, set()
    auth = {"Authorization": f"Bearer {token(settings, 'dispatcher')}"}
    with httpx.Client(base_url=settings.api_url, timeout=30, headers=auth) as client:
        def all_done():
            for report_id in sorted(pending):
                incident_id = client.get(f"/api/v1/reports/{report_id}").json().get("incident_id")
                if incident_id:
                    incidents[report_id] = incident_id
                    pending.discard(report_id)
            for incident_id in set(incidents.values()) - recommended:
                if client.get(f"/api/v1/incidents/{incident_id}").json().get("recommendation"):
                    recommended.add(incident_id)
            log(f"{len(report_ids) - len(pending)}/{len(report_ids)} reports on incidents, "
                f"{len(recommended)} incidents recommended")
            return not pending and recommended == set(incidents.values())
        wait_until(all_done, timeout=timeout, interval=2.0, what="every report on an incident with a recommendation")
    return sorted(recommended)


# --- profiling ------------------------------------------------------------------------------------------
# Where a sample's time goes, by the innermost frame of a package we can name (first match wins).
LAYERS = (("database (SQLAlchemy, sqlite3)", ("sqlalchemy/", "sqlite3")),
          ("our code (services/, schemas/, spkt/)", ("services/", "schemas/", "spkt/")),
          ("JSON and models (pydantic)", ("pydantic",)),
          ("tokens (PyJWT, hmac)", ("jwt/", "hmac.py", "hashlib")),
          ("framework (FastAPI, Starlette, anyio)", ("fastapi/", "starlette/", "anyio/")),
          ("server (uvicorn, h11, asyncio)", ("uvicorn/", "h11/", "asyncio/", "selectors.py", "threading.py",
                                             "queue.py", "concurrent/")))


def profile(pid: int, seconds: float, out: Path, load) -> dict:
    """py-spy on the API while `load()` runs. --gil: only the thread holding the GIL is sampled,
    i.e. where the worker's one core of Python goes (threads waiting are not work)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return {"skipped": "py-spy not installed (.venv/bin/pip install py-spy)"}
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--gil",
                             "--rate", "250", "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # py-spy attaches
        load()
        proc.wait(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if not out.exists():
        return {"skipped": f"py-spy wrote nothing: {proc.stderr.read().decode(errors='replace')[-300:]}"}
    return summarise_profile(out)


def summarise_profile(path: Path, top: int = 12) -> dict:
    """Collapsed stacks -> share of samples per layer (innermost named frame), and the busiest
    functions by own and by inclusive samples."""
    own, inclusive, layers, total = Counter(), Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += n
        layers[next((name for frame in reversed(frames) for name, marks in LAYERS
                     if any(m in frame for m in marks)), "other")] += n
    pct = lambda c, k=top: {key: round(100 * v / max(total, 1), 1) for key, v in c.most_common(k)}  # noqa: E731
    return {"samples": total, "layers_pct": pct(layers, len(LAYERS) + 1), "own_pct": pct(own),
            "inclusive_pct": pct(inclusive, 40), "collapsed_stacks": str(path)}


def _short(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py:12)`."""
    return re.sub(r"\((?:[^()]*/(?:site-packages|lib/python3\.\d+|main)/)", "(", frame)


# --- the benchmark -------------------------------------------------------------------------------------
def run(work: Path, quick: bool) -> Result:
    wrk = wrk_binary()
    units, reports = (6, 20) if quick else (40, 300)
    seconds, warmup, rounds = (3, 1, 1) if quick else (15, 5, 2)
    threads, connections = 1, 20
    details: dict = {"machine": machine(), "quick": quick, "wrk": {"threads": threads, "connections": connections,
                                                                      "seconds": seconds, "warmup_s": warmup,
                                                                      "rounds": rounds}}
    # Other work on the machine (it is shared) shows here: read the figures with it.
    details["load_average_1min"] = {"before": round(os.getloadavg()[0], 2)}
    runs: dict[str, list[dict]] = {"ours": [], "bare": []}
    with own_broker(work) as kafka:
        log("broker up; starting every process of the system")
        overrides = {"token_limit_per_minute": 100_000, "caller_limit_per_minute": 100_000}
        with running_system(kafka, work / "system", **overrides) as (settings, stack):
            started = time.monotonic()
            report_ids, unit_ids = seed(settings, units=units, reports=reports)
            incident_ids = incidents_with_recommendations(settings, report_ids, timeout=90 if quick else 300)
            details["read_model"] = {"units": len(unit_ids), "reports": len(report_ids), "incidents": len(incident_ids),
                                     "seeded_in_s": round(time.monotonic() - started, 1)}
            for name in WORKERS:  # only the API on the read model while measuring
                stack.rpc().supervisor.stopProcess(name)
            api_pid = next(p.pid for p in stack.processes() if p.name == "api")
            log(f"{len(incident_ids)} incidents with recommendations; workers stopped, API pid {api_pid}")

            bearer = token(settings, "dispatcher")
            with httpx.Client(base_url=settings.api_url, headers={"Authorization": f"Bearer {bearer}"}) as client:
                bodies = sorted((client.get(f"/api/v1/incidents/{i}") for i in incident_ids), key=lambda b: len(b.content))
            median = bodies[len(bodies) // 2].json()  # the baseline answers this one
            details["body_bytes"] = {"ours_p50": len(bodies[len(bodies) // 2].content),
                                     "ours_min": len(bodies[0].content), "ours_max": len(bodies[-1].content)}

            script = work / "incidents.lua"
            script.write_text(lua_script(incident_ids, bearer))
            bare = Bare(settings, median, work)
            try:
                bare.wait_ready(timeout=30, interval=0.05)
                servers = {"bare": (bare.url + "/", bare.popen.pid), "ours": (settings.api_url + "/", api_pid)}
                for r in range(rounds):
                    for side, (url, pid) in servers.items():
                        run_wrk(wrk, url, script, threads=threads, connections=connections, seconds=warmup)
                        result = run_wrk(wrk, url, script, threads=threads, connections=connections, seconds=seconds,
                                         server_pid=pid)
                        runs[side].append(result)
                        log(f"round {r + 1}/{rounds} {side}: {result['rps']:,.0f} req/s, p99 {result['p99_ms']:.1f} ms, "
                            f"{result['server_cpu_ms_per_request']:.2f} ms CPU a request"
                            + (f", {result['non_2xx']} non-2xx" if result["non_2xx"] else ""))
                details["body_bytes"]["bare"] = len(httpx.get(bare.url + "/api/v1/incidents/x", timeout=10).content)
            finally:
                bare.stop(15)
            for side in runs:
                if any(x["non_2xx"] or x["socket_errors"] for x in runs[side]):
                    raise RuntimeError(f"{side} answered errors under load: {runs[side]}")

            details["pages"] = {**pages_answered(settings.api_url, bearer),
                                **page_building_ms(settings.db_url, incident_ids)}
            log(f"pages: {details['pages']}")
            log("profiling our API with py-spy")
            details["profile"] = profile(api_pid, 3 if quick else 10, work / "api-profile.txt",
                                         lambda: run_wrk(wrk, servers["ours"][0], script, threads=threads,
                                                         connections=connections, seconds=1 if quick else 8))
    details["load_average_1min"]["after"] = round(os.getloadavg()[0], 2)
    mean = lambda side, key: sum(x[key] for x in runs[side]) / len(runs[side])  # noqa: E731
    ours_rps, bare_rps = mean("ours", "rps"), mean("bare", "rps")
    ours_cpu, bare_cpu = mean("ours", "server_cpu_ms_per_request"), mean("bare", "server_cpu_ms_per_request")
    details["runs"] = runs
    details["server_cpu_ms_per_request"] = {"ours": round(ours_cpu, 3), "bare": round(bare_cpu, 3)}
    return Result(
        figures=[
            Figure("GET /incidents/{id}, requests/s", ours_rps, "/s", better="higher"),
            Figure("bare Starlette, requests/s", bare_rps, "/s", better="higher"),
            Figure("ours / bare Starlette", 100 * ours_rps / bare_rps, "%", target=70, better="higher"),
            Figure("GET /incidents/{id}, p99", mean("ours", "p99_ms"), "ms"),
            Figure("bare Starlette, p99", mean("bare", "p99_ms"), "ms"),
        ],
        details=details,
        limits=limits_text(ours_cpu, bare_cpu, details["profile"], details["pages"]),
    )


def pages_answered(api_url: str, bearer: str) -> dict:
    """How the API answered incident pages so far: kept (unchanged since built) or built."""
    text = httpx.get(api_url + "/metrics", headers={"Authorization": f"Bearer {bearer}"}, timeout=10).text
    found = dict(re.findall(r'^spkt_incident_pages_total\{how="(\w+)"\} ([0-9.e+]+)$', text, re.M))
    return {how: int(float(found.get(how, 0))) for how in ("kept", "built")}


def page_building_ms(db_url: str, incident_ids: list[str]) -> dict:
    """What a read costs when the page is not kept (the incident changed): building it, in this
    process on the same read model, once for each incident."""
    from services.api.routes.incidents import incident_page
    from services.projection.tables import prepare

    sessions = prepare(db_url)
    took = []
    try:
        with sessions() as session:
            for incident_id in incident_ids:
                started = time.perf_counter()
                incident_page(session, incident_id)
                took.append(1000 * (time.perf_counter() - started))
    finally:
        sessions.kw["bind"].dispose()
    took.sort()
    return {"build_ms_p50": round(took[len(took) // 2], 2), "build_ms_max": round(took[-1], 2)}


def limits_text(ours_cpu: float, bare_cpu: float, profile: dict, pages: dict) -> str:
    layers = profile.get("layers_pct") or {}
    where = ", ".join(f"{pct:.0f} % {name}" for name, pct in list(layers.items())[:4])
    answered = pages["kept"] + pages["built"]
    kept = 100 * pages["kept"] / answered if answered else 0
    return (f"One read costs the API worker {ours_cpu:.2f} ms of CPU against {bare_cpu:.2f} ms for the baseline. "
            f"{kept:.1f} % of the pages were answered as kept (nothing changes while the workers are stopped): the "
            "token (cached), one read of the incident's revision and jurisdiction, and the bytes. A page built "
            "afresh, as after every change to its incident, is twelve SQL reads and both hash chains checked: "
            f"{pages['build_ms_p50']:.1f} ms (median) in the benchmark's own process."
            + (f" py-spy (--gil) puts the worker's Python time in: {where}." if where else ""))


def main(argv: list[str]) -> None:
    if argv[:1] == ["bare"]:
        serve_bare(int(argv[1]), argv[2])
        return
    run_alone(NAME, __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
