"""GPS positions a second one dispatch worker absorbs into its unit board, against a bare consumer.

    python -m benchmarks.positions [--quick]

On a broker of its own: 2,000 units registered and 300,000 recent positions of them (the last
five minutes of a busy city, every unit reporting every two seconds) on the positions topic. Then, in
the same run:

- the baseline: a bare `AIOKafkaConsumer` reading the very same partitions the board reads (the
  unit register, turjawali duties, the positions) from where the board starts, and `json.loads`
  of each value — the least any Python reader of these events does; measured before and after
  the worker, and averaged (the machine is shared);
- the subject: a real dispatch worker (`spkt run dispatch`, its own process) started on that
  broker. Its board feed (services/feeds.py) logs when it starts reading and how many messages
  wait, and when it has caught up: the time between the two is how long it took to parse,
  validate and put every fix into the board's spatial index, while the rest of the worker (the
  consumer group join, its agents) starts beside it, as it does in production.

For the record (details, not a figure): the same feed into a real Board in the benchmark's own
process, with nothing beside it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.harness import Figure, Result, print_result, wait_until
from benchmarks.system import own_broker
from deploy.stack import settings_environment
from schemas.envelope import utcnow
from schemas.events import UnitPositionReported, UnitRegistered
from schemas.registry import make_event
from schemas.topics import TURJAWALI, UNIT_POSITIONS, UNIT_STATUS
from spkt.settings import Settings

NAME = "positions"
TITLE = "GPS positions a second one dispatch worker absorbs, against a bare Kafka consumer"

LAT, LON = (-6.45, -6.05), (106.65, 107.05)  # greater Jakarta
WINDOW_S = 300  # the positions span the last five minutes (well inside SPKT_POSITION_MAX_AGE_S)


def say(text: str) -> None:
    print(f"positions: {text}", file=sys.stderr, flush=True)


# --- the fleet and its positions -------------------------------------------------------------
def _position_messages(n: int, units: int, rnd: random.Random):
    """(key, value) of `n` position events, each unit moving a little, in time order per unit.

    One envelope is made the ordinary way (make_event) and the rest follow its exact shape,
    filled in with json.dumps: making 300,000 pydantic envelopes would take longer than the
    measurement."""
    now = utcnow()
    template = make_event(UnitPositionReported(unit_id="u", lat=0.0, lon=0.0, at=now, speed_kmh=0.0, heading=0.0),
                          source="/bench/positions").model_dump(mode="json", exclude_none=True)
    where = [(rnd.uniform(*LAT), rnd.uniform(*LON)) for _ in range(units)]
    start = now - timedelta(seconds=WINDOW_S)
    for k in range(n):
        i = k % units
        lat, lon = where[i]
        lat, lon = lat + rnd.uniform(-2e-4, 2e-4), lon + rnd.uniform(-2e-4, 2e-4)
        where[i] = (lat, lon)
        at = (start + timedelta(seconds=WINDOW_S * k / n)).isoformat().replace("+00:00", "Z")
        event_id = str(uuid.uuid4())
        unit_id = f"bench-unit-{i:05d}"
        doc = {**template, "id": event_id, "correlationid": event_id, "subject": unit_id, "time": at,
               "data": {"unit_id": unit_id, "lat": round(lat, 6), "lon": round(lon, 6), "at": at,
                        "speed_kmh": round(rnd.uniform(0, 60), 1), "heading": round(rnd.uniform(0, 359.9), 1)}}
        yield unit_id.encode(), json.dumps(doc, separators=(",", ":")).encode()


async def _fill(kafka: Settings, units: int, positions: int) -> None:
    """Register the units, then write the positions in batches of our own (one `send` a message
    runs at a few thousand a second here: the fill would outlast the measurement). A unit's
    positions all go to one partition, in order, as the product's keyed producers do."""
    rnd = random.Random(9)
    # Right after the topics are made the broker can still be electing their leaders: the
    # producer retries by itself, and says so at WARNING for every batch.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        kinds = ("car", "motorcycle", "foot")
        registered = []
        for i in range(units):
            unit_id = f"bench-unit-{i:05d}"
            envelope = make_event(UnitRegistered(unit_id=unit_id, callsign=f"BENCH-{i}", kind=kinds[i % 3],
                                                 station="polsek-bench", registered_at=utcnow()), source="/bench")
            registered.append(await producer.send(UNIT_STATUS, envelope.to_bytes(), key=unit_id.encode()))
        await asyncio.gather(*registered)
        partitions = sorted(await producer.partitions_for(UNIT_POSITIONS))
        batches = {p: producer.create_batch() for p in partitions}
        sent, started, waiting = 0, time.monotonic(), []

        async def flush(p: int) -> None:
            waiting.append(await producer.send_batch(batches[p], UNIT_POSITIONS, partition=p))
            batches[p] = producer.create_batch()

        for n, (key, value) in enumerate(_position_messages(positions, units, rnd)):
            p = partitions[(n % units) % len(partitions)]
            if batches[p].append(key=key, value=value, timestamp=None) is None:  # full
                await flush(p)
                batches[p].append(key=key, value=value, timestamp=None)
            sent += 1
            if sent % 50_000 == 0:
                say(f"{sent:,}/{positions:,} positions on Kafka ({sent / (time.monotonic() - started):,.0f}/s)")
        for p in partitions:
            if batches[p].record_count():
                await flush(p)
        await asyncio.gather(*waiting)
    finally:
        await producer.stop()


# --- the baseline: a bare consumer of the same partitions --------------------------------------
async def _bare_read(kafka: Settings, window_s: float) -> dict:
    """Read what the board reads (register and duties from the beginning, positions from
    `window_s` back), json.loads of each value, nothing else."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # as the feed does: no public call for it
        whole = [TopicPartition(t, p) for t in (UNIT_STATUS, TURJAWALI) for p in cluster.partitions_for_topic(t) or ()]
        recent = [TopicPartition(UNIT_POSITIONS, p) for p in cluster.partitions_for_topic(UNIT_POSITIONS) or ()]
        consumer.assign(whole + recent)
        await consumer.seek_to_beginning(*whole)
        found = await consumer.offsets_for_times({tp: int((time.time() - window_s) * 1000) for tp in recent})
        for tp in recent:
            if found.get(tp) is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found[tp].offset)
        ends = await consumer.end_offsets(whole + recent)
        starts = {tp: await consumer.position(tp) for tp in ends}
        pending = {tp: end for tp, end in ends.items() if end > starts[tp]}
        total = sum(end - starts[tp] for tp, end in pending.items())
        count, started = 0, time.perf_counter()
        while pending:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                for message in messages:
                    json.loads(message.value)
                    count += 1
                    if tp in pending and message.offset + 1 >= pending[tp]:
                        del pending[tp]
        seconds = time.perf_counter() - started
        return {"messages": count, "expected": total, "seconds": seconds, "per_s": count / seconds}
    finally:
        await consumer.stop()


# --- the subject: a real dispatch worker ---------------------------------------------------------
def _log_lines(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def _ts(line: dict) -> float:
    return datetime.fromisoformat(line["ts"]).timestamp()


def _worker_catch_up(kafka: Settings, work: Path, expected: int, timeout_s: float) -> dict:
    """Start `spkt run dispatch`, wait for its board to catch up; the feed's two log lines give
    how many messages it read and when it started and finished."""
    settings = Settings(**{**kafka.model_dump(), "state_dir": work / "dispatch"})
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    log = work / "dispatch.log"
    env = {**os.environ, **settings_environment(settings), "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "spkt.cli", "run", "dispatch"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    say(f"dispatch worker: pid {worker.pid}, log {log}")
    try:
        def caught_up():
            if worker.poll() is not None:
                raise RuntimeError(f"the dispatch worker exited ({worker.returncode}); see {log}")
            lines = [x for x in _log_lines(log) if x.get("logger") == "services.feeds"]
            reading = next((x for x in lines if "unit board: reading" in x["msg"]), None)
            done = next((x for x in lines if "unit board caught up" in x["msg"]), None)
            return (reading, done) if reading and done else None

        reading, done = wait_until(caught_up, timeout=timeout_s, interval=0.2,
                                   what=f"the dispatch worker's board caught up (log: {log})")
        messages = int(done["msg"].split(": ", 1)[1].split()[0].replace(",", ""))
        seconds = _ts(done) - _ts(reading)
        return {"messages": messages, "expected": expected, "seconds": seconds, "per_s": messages / seconds,
                "process_start_to_caught_up_s": time.monotonic() - started, "log": str(log), "pid": worker.pid}
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, 15)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait(10)


async def _in_process(kafka: Settings, timeout_s: float) -> dict:
    """The same feed (services/feeds.py) into a real Board, in this process with nothing beside it:
    what the feed costs without the rest of a worker starting on the same cores."""
    from services.dispatch.board import Board, ranking_rules, router_for
    from services.dispatch.board_feed import follow

    lines: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record)

    feeds_log = logging.getLogger("services.feeds")
    keep, level = Keep(), feeds_log.level
    feeds_log.addHandler(keep)
    feeds_log.setLevel(logging.INFO)
    board, caught_up = Board(router_for(kafka, ranking_rules(kafka))), asyncio.Event()
    task = asyncio.create_task(follow(kafka, board, caught_up))
    try:
        await asyncio.wait_for(caught_up.wait(), timeout_s)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        feeds_log.removeHandler(keep)
        feeds_log.setLevel(level)
    reading = next(r for r in lines if "reading" in r.getMessage())
    done = next(r for r in lines if "caught up" in r.getMessage())
    messages = int(done.getMessage().split(": ", 1)[1].split()[0])
    seconds = done.created - reading.created
    return {"messages": messages, "seconds": seconds, "per_s": messages / seconds, "units_on_board": len(board.units)}


def run(work: Path, quick: bool) -> Result:
    return measure(work, *((200, 5_000) if quick else (2_000, 300_000)))


def measure(work: Path, units: int, positions: int) -> Result:
    window_s = Settings().position_max_age_s  # where the board starts reading positions
    with own_broker(work) as kafka:
        say(f"filling the positions topic: {units:,} units, {positions:,} positions")
        asyncio.run(_fill(kafka, units, positions))
        say("bare consumer (before the worker)")
        before = asyncio.run(_bare_read(kafka, window_s))
        say(f"bare consumer: {before['messages']:,} in {before['seconds']:.2f} s ({before['per_s']:,.0f}/s)")
        say("dispatch worker: starting, waiting for its board to catch up")
        worker = _worker_catch_up(kafka, work, before["expected"], timeout_s=60 + positions / 2_000)
        say(f"dispatch worker: {worker['messages']:,} in {worker['seconds']:.2f} s ({worker['per_s']:,.0f}/s)")
        after = asyncio.run(_bare_read(kafka, window_s))
        say(f"bare consumer (after): {after['messages']:,} in {after['seconds']:.2f} s ({after['per_s']:,.0f}/s)")
        alone = asyncio.run(_in_process(kafka, timeout_s=60 + positions / 2_000))
        say(f"the board feed in this process: {alone['messages']:,} in {alone['seconds']:.2f} s "
            f"({alone['per_s']:,.0f}/s)")
    if worker["messages"] != before["expected"]:
        raise RuntimeError(f"the board read {worker['messages']:,} messages, the topics held {before['expected']:,}")
    bare_per_s = (before["per_s"] + after["per_s"]) / 2
    ratio = 100 * worker["per_s"] / bare_per_s
    return Result(
        figures=[
            Figure("positions absorbed by one dispatch worker", worker["per_s"], "/s", 10_000, better="higher"),
            Figure("bare aiokafka consumer + json.loads", bare_per_s, "/s"),
            Figure("dispatch worker / bare consumer", ratio, "%", 50, better="higher"),
        ],
        details={"units": units, "positions": positions, "messages_read": worker["messages"],
                 "worker": worker, "bare_before": before, "bare_after": after,
                 "feed_in_process": {**alone, "ratio_to_bare_pct": 100 * alone["per_s"] / bare_per_s},
                 "method": ("real `spkt run dispatch` process, timed by its board feed's log from its first read to "
                            "caught up (the rest of the worker starting beside it); baseline: AIOKafkaConsumer on "
                            "the same partitions from the same offsets, json.loads of each value")},
        limits=(f"Each fix costs a pydantic pass over its envelope and data (about what json.loads costs), the "
                f"board's index update and aiokafka's work per record. The feed alone in a process reaches "
                f"{100 * alone['per_s'] / bare_per_s:.0f} % of the bare consumer, inside the worker {ratio:.0f} %: the "
                f"worker's own start (group join, the agents replaying the unit register, the offset lookups' "
                f"thread) shares the two cores with the catch-up."),
    )


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--units", type=int, default=2_000)
    parser.add_argument("--positions", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-positions-") as tmp:
        result = run(Path(tmp), True) if args.quick else measure(Path(tmp), args.units, args.positions)
    print_result(result)
