"""How long a killed dispatch worker's incidents wait before they are handled again.

    python -m benchmarks.recovery [--quick] [--kills 3]

On a broker of its own, with the product's consumer settings (its default session timeout, not
the tests' shorter one), a steady probe flow: an `incident.opened` every 250 ms on each partition
of the incidents topic, published straight on Kafka, each answered by a `dispatch.recommended`
from the worker owning that partition. Two recoveries, each repeated:

- failover: two dispatch workers (`spkt run dispatch`, separate processes) in the `spkt-dispatch`
  group; one is killed (SIGKILL: no goodbye, no last commit). Measured: from the kill until every
  partition it owned (its own health file says which) has produced a recommendation for a probe
  published after the kill. The broker's log splits it: until the group coordinator gives up on
  the dead member (the session timeout), until the group is stable again (the rebalance), until
  the first recommendation (the new owner's table recovery and the backlog). The killed worker is
  then started again and the group left to settle before the next kill.
- restart: one dispatch worker alone, killed and started again at once (as supervisord does);
  from the kill until every partition produces again.

Also kept for each kill: the longest any probe waited for its recommendation (on every partition:
the survivor's own partitions pause during the rebalance too).
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.harness import Figure, Result, print_result, wait_until
from benchmarks.system import own_broker, stop_group
from deploy.health import health_path
from deploy.stack import group_members, settings_environment
from schemas import topics
from schemas.envelope import utcnow
from schemas.events import IncidentOpened, Location, UnitPositionReported, UnitRegistered
from schemas.registry import make_event
from spkt.settings import Settings

NAME = "recovery"
TITLE = "A killed dispatch worker: time until its partitions are handled again"

GROUP = "spkt-dispatch"
PROBE_EVERY_S = 0.25  # per partition: 12 incidents a second, ten times a busy city's peak, for a 0.25 s resolution
SCENE = (-6.2250, 106.8000)
TARGET_S = 15.0


def say(text: str) -> None:
    print(f"recovery: {text}", file=sys.stderr, flush=True)


class Worker:
    """One `spkt run dispatch` process with a state folder of its own (as on its own machine)."""

    def __init__(self, settings: Settings, work: Path, name: str, state: str | None = None) -> None:
        # A restarted worker keeps the state folder of the one it replaces (name: its log's).
        self.state = state or name
        self.settings = Settings(**{**settings.model_dump(), "state_dir": work / self.state})
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = work / f"{name}.log"
        env = {**os.environ, **settings_environment(self.settings), "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "spkt.cli", "run", "dispatch"], env=env,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.time()

    def incident_partitions(self) -> set[int]:
        """The incidents partitions this worker has now, from the health file it writes every second."""
        return self.assignment()[1]

    def assignment(self) -> tuple[int | None, set[int]]:
        """(group generation, incidents partitions) as the worker's health file says (None, set()):
        not ready, or not written in the last 3 s."""
        try:
            doc = json.loads(health_path(self.settings, "dispatch").read_text())
        except (OSError, ValueError):
            return None, set()
        if doc.get("pid") != self.popen.pid or not doc.get("ready") or time.time() - doc.get("updated_unix", 0) > 3:
            return None, set()
        return doc.get("generation"), {p["partition"] for p in doc.get("partitions", []) if p["topic"] == topics.INCIDENTS}

    def kill(self) -> float:
        os.killpg(self.popen.pid, signal.SIGKILL)
        at = time.time()
        self.popen.wait(10)
        return at

    def stop(self) -> None:
        stop_group(self.popen, 20)


class Probes:
    """An incident every PROBE_EVERY_S on each incidents partition, and when each was recommended."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent: dict[str, tuple[int, float]] = {}  # incident id -> (partition, published at)
        self.answered: dict[str, float] = {}  # incident id -> when its recommendation was read
        self._stop = threading.Event()
        self._lock = threading.Lock()
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all", linger_ms=0)
        self.partitions = sorted(producer.partitions_for(topics.INCIDENTS))
        self._producer = producer
        self._threads = [threading.Thread(target=self._publish, daemon=True),
                         threading.Thread(target=self._watch, daemon=True)]

    def __enter__(self) -> "Probes":
        self._ready = threading.Event()
        self._threads[1].start()
        self._ready.wait(30)
        self._threads[0].start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._producer.close(5)

    def _publish(self) -> None:
        n, tick = 0, time.monotonic()
        while not self._stop.is_set():
            for p in self.partitions:
                incident_id = f"probe-{p}-{n}"
                event = IncidentOpened(
                    incident_id=incident_id, number=f"KJD/BENCH/{n}", report_ids=[incident_id],
                    category="street_robbery", priority="P2", summary="Penjambretan (probe)",
                    location=Location(lat=SCENE[0], lon=SCENE[1]), opened_at=utcnow(),
                    response_plan=[{"kind": "car", "count": 1, "capabilities": []}])
                envelope = make_event(event, source="/bench/recovery")
                with self._lock:
                    self.sent[incident_id] = (p, time.time())
                self._producer.send(topics.INCIDENTS, value=envelope.to_bytes(), key=incident_id.encode(), partition=p)
            n += 1
            tick += PROBE_EVERY_S
            self._stop.wait(max(0.0, tick - time.monotonic()))

    def _watch(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap.split(","), enable_auto_commit=False,
                                 group_id=None)
        try:
            parts = [TopicPartition(topics.ASSIGNMENTS, p) for p in consumer.partitions_for_topic(topics.ASSIGNMENTS)]
            consumer.assign(parts)
            consumer.seek_to_end(*parts)
            for tp in parts:
                consumer.position(tp)  # resolve the end now, before any probe is published
            self._ready.set()
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    now = time.time()
                    for record in records:
                        if b"dispatch.recommended" not in record.value:
                            continue
                        incident_id = json.loads(record.value)["data"]["incident_id"]
                        with self._lock:
                            if incident_id in self.sent and incident_id not in self.answered:
                                self.answered[incident_id] = now
        finally:
            consumer.close()

    def resumed(self, partition: int, after: float) -> float | None:
        """When the first probe published on `partition` after `after` was recommended (None: not yet)."""
        with self._lock:
            times = [self.answered[i] for i, (p, at) in self.sent.items()
                     if p == partition and at > after and i in self.answered]
        return min(times) if times else None

    def flowing(self, within_s: float = 2.0) -> bool:
        """Every partition answers: a probe published in the last seconds was recommended, on each."""
        since = time.time() - within_s
        return all(self.resumed(p, since) is not None for p in self.partitions)

    def longest_wait(self, start: float, end: float) -> float:
        """The longest a probe published in [start, end] waited for its recommendation (any partition)."""
        with self._lock:
            waits = [self.answered.get(i, time.time()) - at for i, (p, at) in self.sent.items() if start <= at <= end]
        return max(waits, default=0.0)


# --- the broker's view of a rebalance --------------------------------------------------------------
def _broker_events(work: Path, after: float) -> dict:
    """From the broker's log, after `after`: when it removed a member of the group (session
    expired) and when the group was stable again. Empty when the log says neither."""
    found: dict = {}
    for log in sorted(work.glob("kafka/**/logs/server.log")):
        for line in log.read_text(errors="replace").splitlines():
            if GROUP not in line or not line.startswith("["):
                continue
            try:
                at = time.mktime(datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timetuple()) + \
                    int(line[21:24]) / 1000
            except ValueError:
                continue
            if at < after:
                continue
            if "expir" in line.lower() or "has failed" in line:
                found.setdefault("member_removed", at)
            if "Stabilized group" in line and "member_removed" in found:
                found.setdefault("group_stable", at)
    return found


def _failover(settings: Settings, work: Path, probes: Probes, kills: int, timeout_s: float,
              tail_s: float, exits: list[str]) -> tuple[list[dict], Worker]:
    """Two workers, one killed, `kills` times (the killed one started again between kills).
    Returns the rounds and the survivor of the last kill, alone in the group."""
    workers = [Worker(settings, work, "dispatch-a"), Worker(settings, work, "dispatch-b")]
    rounds: list[dict] = []
    try:
        for n in range(kills):
            def settled() -> bool:
                workers[:] = [supervised(settings, work, w, exits) for w in workers]
                if group_members(settings, GROUP) != 2 or not probes.flowing():
                    return False
                # Both health files written since the last rebalance: the same generation, and
                # between them every partition once (a file a second old can still show the last).
                (gen_a, parts_a), (gen_b, parts_b) = (w.assignment() for w in workers)
                return (gen_a is not None and gen_a == gen_b and not parts_a & parts_b
                        and parts_a | parts_b == set(probes.partitions))
            wait_until(settled, timeout=timeout_s, interval=0.5, what="two dispatch workers sharing the incidents")
            victim = workers[n % 2] if workers[n % 2].incident_partitions() else workers[1 - n % 2]
            owned = victim.incident_partitions()
            say(f"failover {n + 1}/{kills}: killing {victim.name} (pid {victim.popen.pid}, incidents partitions "
                f"{sorted(owned)})")
            killed_at = victim.kill()
            resumed = _wait_resumed(probes, owned, killed_at, timeout_s, tail_s)
            rounds.append(_round(work, killed_at, owned, probes, resumed))
            say(f"failover {n + 1}/{kills}: handled again after {rounds[-1]['recovered_s']:.1f} s "
                f"{rounds[-1]['parts_s']}")
            if n + 1 < kills:  # as supervisord would; after the last kill the survivor stays alone
                workers[workers.index(victim)] = Worker(settings, work, f"{victim.name}-{n + 1}", victim.state)
            else:
                workers.remove(victim)
        return rounds, workers.pop()
    finally:
        for w in workers:
            w.stop()


def _restart(settings: Settings, work: Path, probes: Probes, kills: int, timeout_s: float, tail_s: float,
             exits: list[str], worker: Worker) -> list[dict]:
    """The lone worker killed and started again at once, `kills` times."""
    rounds: list[dict] = []
    try:
        for n in range(kills):
            def settled() -> bool:
                nonlocal worker
                worker = supervised(settings, work, worker, exits)
                return (group_members(settings, GROUP) == 1 and probes.flowing()
                        and worker.incident_partitions() == set(probes.partitions))
            wait_until(settled, timeout=timeout_s, interval=0.5, what="one dispatch worker with every incidents partition")
            say(f"restart {n + 1}/{kills}: killing the lone worker (pid {worker.popen.pid}) and starting it again")
            killed_at = worker.kill()
            worker = Worker(settings, work, f"dispatch-restarted-{n + 1}", worker.state)
            resumed = _wait_resumed(probes, set(probes.partitions), killed_at, timeout_s, tail_s)
            rounds.append({**_round(work, killed_at, set(probes.partitions), probes, resumed),
                           **_restarted(worker.log, killed_at)})
            say(f"restart {n + 1}/{kills}: handled again after {rounds[-1]['recovered_s']:.1f} s "
                f"{rounds[-1]['parts_s']}")
    finally:
        worker.stop()
    return rounds


def supervised(settings: Settings, work: Path, worker: Worker, exits: list[str]) -> Worker:
    """As supervisord does: a worker that exited by itself is started again (and noted: its log
    says why, e.g. a partition it saw as stalled while the machine was busy)."""
    if worker.popen.poll() is None:
        return worker
    exits.append(f"{worker.name} exited ({worker.popen.returncode}), see {worker.log}")
    say(f"{exits[-1]}; starting it again")
    return Worker(settings, work, f"{worker.name}-again-{len(exits)}", worker.state)


def _wait_resumed(probes: Probes, owned: set[int], killed_at: float, timeout_s: float,
                  tail_s: float = 2.0) -> dict[int, float]:
    def resumed():
        found = {p: probes.resumed(p, killed_at) for p in owned}
        return found if all(found.values()) else None
    found = wait_until(resumed, timeout=timeout_s, interval=0.1,
                       what=f"partitions {sorted(owned)} handled again after the kill")
    time.sleep(tail_s)  # a few more probes answered, for the longest wait
    return found


def _restarted(log: Path, killed_at: float) -> dict:
    """What the restarted worker's log says of its start: when it first logged (Python and faust
    loaded), and its table recovery (how long, how many changelog messages it replayed)."""
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass

    def at(text: str) -> float | None:
        found = next((x for x in lines if text in x.get("msg", "")), None)
        return datetime.fromisoformat(found["ts"]).timestamp() if found else None

    out: dict = {"restarted_log": str(log)}
    if (first := at("")) is not None:
        out["first_log_line_after_s"] = round(first - killed_at, 2)
    started, done = at("active offsets at start of reading"), at("Done reading from changelog topics")
    if started is not None and done is not None:
        out["table_recovery_s"] = round(done - started, 2)
    table = next((x["msg"] for x in lines if "Highwater for active changelog" in x.get("msg", "")), "")
    rows = [row.split("|") for row in table.splitlines() if row.startswith("|") and "highwater" not in row]
    out["changelog_messages"] = sum(int(r[3]) + 1 for r in rows if len(r) > 3 and r[3].strip().lstrip("-").isdigit())
    return out


def _round(work: Path, killed_at: float, owned: set[int], probes: Probes, resumed: dict[int, float]) -> dict:
    recovered_s = max(resumed.values()) - killed_at
    broker = _broker_events(work, killed_at)
    parts = {}
    if "member_removed" in broker:
        parts["session_expired"] = broker["member_removed"] - killed_at
        if "group_stable" in broker:
            parts["rebalanced"] = broker["group_stable"] - broker["member_removed"]
            first = min(resumed.values()) - broker["group_stable"]
            if first >= 0:  # else the log's lines were another rebalance's
                parts["first_recommendation"] = first
    return {"recovered_s": recovered_s, "partitions": sorted(owned),
            "per_partition_s": {p: round(at - killed_at, 2) for p, at in sorted(resumed.items())},
            "longest_probe_wait_s": probes.longest_wait(killed_at - 1.0, killed_at + recovered_s + 1.0),
            "parts_s": {k: round(v, 2) for k, v in parts.items()}}


def _limits(session_s: float, failover: list[dict], restart: list[dict]) -> str:
    def median(rounds: list[dict], part: str) -> float | None:
        values = [r.get("parts_s", {}).get(part, r.get(part)) for r in rounds]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None
    expired, rebalanced, resumed = (median(failover, p) for p in ("session_expired", "rebalanced", "first_recommendation"))
    if expired is None or rebalanced is None or resumed is None:
        text = (f"The session timeout ({session_s:.0f} s) is most of a failover: the broker notices a killed "
                f"worker only then. ")
    else:
        text = (f"The session timeout ({session_s:.0f} s) is most of a failover: the broker gave up on the killed "
                f"worker {expired:.1f} s after the kill (median), the group was stable {rebalanced:.1f} s later, and "
                f"the first recommendation came {resumed:.1f} s after that (table recovery from the standby copy, "
                f"asking Kafka where the group stands on each partition taken over, then their backlog). ")
    loaded, replay, replayed = (median(restart, p) for p in ("first_log_line_after_s", "table_recovery_s",
                                                              "changelog_messages"))
    if loaded is not None and replay is not None and replayed is not None:
        text += (f"A restarted lone worker waits for itself instead: it logs its first line {loaded:.1f} s after the "
                 f"kill (Python and faust loading), then replays its tables' whole changelogs ({replayed:,.0f} "
                 f"messages in {replay:.1f} s, growing with the incidents handled: the memory store keeps nothing "
                 f"across a restart) before it handles the backlog.")
    return text


def _summary(rounds: list[dict]) -> dict:
    times = [r["recovered_s"] for r in rounds]
    return {"worst_s": max(times), "median_s": statistics.median(times), "rounds": rounds}


def _seed_units(settings: Settings) -> None:
    """A few units near the probes' scene, so each recommendation ranks real candidates."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all")
    try:
        for i in range(20):
            unit_id = f"bench-unit-{i:02d}"
            registered = UnitRegistered(unit_id=unit_id, callsign=f"BENCH-{i}", kind="car", station="polsek-bench",
                                        registered_at=utcnow())
            fix = UnitPositionReported(unit_id=unit_id, lat=SCENE[0] + 0.001 * i, lon=SCENE[1], at=utcnow())
            for topic, data in ((topics.UNIT_STATUS, registered), (topics.UNIT_POSITIONS, fix)):
                producer.send(topic, value=make_event(data, source="/bench").to_bytes(), key=unit_id.encode())
        producer.flush(15)
    finally:
        producer.close()


def run(work: Path, quick: bool) -> Result:
    return measure(work, kills=1, tail_s=0.5) if quick else measure(work, kills=3)


def measure(work: Path, kills: int, tail_s: float = 2.0) -> Result:
    session_s = Settings.model_fields["kafka_session_timeout_s"].default  # the product's, not own_broker's 6 s
    timeout_s = 120.0
    with own_broker(work) as kafka:
        settings = Settings(**{**kafka.model_dump(), "kafka_session_timeout_s": session_s})
        _seed_units(settings)
        with Probes(settings) as probes:
            say(f"probes: an incident every {PROBE_EVERY_S * 1000:.0f} ms on each of {len(probes.partitions)} "
                f"partitions; session timeout {session_s:.0f} s")
            exits: list[str] = []  # workers that stopped by themselves (restarted, as supervisord does)
            rounds, survivor = _failover(settings, work, probes, kills, timeout_s, tail_s, exits)
            failover = _summary(rounds)
            restart = _summary(_restart(settings, work, probes, kills, timeout_s, tail_s, exits, survivor))
    return Result(
        figures=[
            Figure("worker killed, the other takes over (worst)", failover["worst_s"], "s", TARGET_S),
            Figure("worker killed, the other takes over (median)", failover["median_s"], "s"),
            Figure("lone worker killed and restarted (worst)", restart["worst_s"], "s", TARGET_S),
            Figure("lone worker killed and restarted (median)", restart["median_s"], "s"),
        ],
        details={"session_timeout_s": session_s, "probe_every_s": PROBE_EVERY_S, "kills": kills,
                 "failover": failover, "restart": restart, "workers_exited_by_themselves": exits,
                 "method": ("real `spkt run dispatch` processes on a broker of the benchmark's own; SIGKILL; time "
                            "from the kill until each incidents partition the killed worker had (its health file) "
                            "produced a dispatch.recommended for a probe published after the kill")},
        limits=_limits(session_s, failover["rounds"], restart["rounds"]),
    )


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        result = run(Path(tmp), True) if args.quick else measure(Path(tmp), args.kills)
    print_result(result)
