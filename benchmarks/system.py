"""The real system for the benchmarks that need one: a broker of the benchmark's own and every
process `spkt up` runs, on free loopback ports, in the benchmark's work folder.

The same deploy code as `spkt up` (deploy.kafka, deploy.topics, deploy.stack): what is measured
is what a police centre runs.
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from deploy.kafka import KafkaCluster, free_port_block
from deploy.stack import Stack, start_system
from deploy.topics import create_topics
from spkt.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def own_broker(base: Path, external: str | None = None) -> Iterator[Settings]:
    """A one-broker cluster on free ports with the topics created; stopped at the end.
    `external`: a running cluster's bootstrap to use instead (the topics are created there)."""
    port, controller = free_port_block(1)
    broker = Settings(kafka_bootstrap=external or None, kafka_port=port, kafka_controller_port=controller,
                      kafka_data_dir=base / "kafka", state_dir=base, cache_dir=Settings().cache_dir)
    cluster = KafkaCluster(broker)
    cluster.up()
    try:
        create_topics(broker)
        yield Settings(kafka_bootstrap=broker.bootstrap, state_dir=base, kafka_session_timeout_s=6.0,
                       jwt_secret="own-broker-secret-" + "x" * 32)
    finally:
        cluster.down()


@contextmanager
def running_system(kafka: Settings, state: Path, **overrides) -> Iterator[tuple[Settings, Stack]]:
    """Every process of the system on `kafka`'s broker, with its own state folder, SQLite read
    model and API port (overrides: any Settings field); stopped at the end."""
    state.mkdir(parents=True, exist_ok=True)
    settings = Settings(**{**kafka.model_dump(), "state_dir": state, "api_port": free_port(),
                           "database_url": f"sqlite:///{state / 'spkt.db'}", **overrides})
    stack = start_system(settings)
    try:
        yield settings, stack
    finally:
        stack.stop()


def token(settings: Settings, role: str = "dispatcher", **claims) -> str:
    """A signed token for the running API (`spkt token`'s)."""
    from services.api.auth import Role, mint

    return mint(settings, sub=f"bench-{role}", role=Role(role), **claims)


def rss_mb(pid: int) -> float:
    """Resident memory of one process, from /proc (MB = 2^20 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ProcessLookupError(pid)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a worker's own subprocesses, if any)."""
    total = rss_mb(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(tree_rss_mb(int(c)) for c in children if Path(f"/proc/{c}").exists())


def machine() -> dict:
    """The machine the figures were measured on."""
    import platform
    import subprocess
    import sys

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "platform": platform.platform(),
            "python": sys.version.split()[0], "commit": commit}


def stop_group(popen, wait_s: float = 20) -> None:
    """Stop a child started in a session of its own, and what it started: TERM, then KILL after `wait_s`."""
    import signal
    import subprocess

    if popen.poll() is not None:
        return
    os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(wait_s)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (every thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def processes_mentioning(*texts: str) -> list[int]:
    """Pids whose command line mentions every one of `texts` (e.g. the broker's JVM and its work folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if all(text in cmdline for text in texts):
                pids.append(int(entry.name))
    return pids


class CpuShares:
    """How much CPU named processes (and the machine) use from now until `shares()`: what a
    benchmark that misses its target ran out of."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids, **{"load generator": os.getpid()})
        self.started = time.perf_counter()
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.machine_before = _machine_busy_jiffies()

    def shares(self) -> dict[str, float]:
        """Per cent of one core per process, and "machine": per cent of all cores busy."""
        wall = time.perf_counter() - self.started
        out = {}
        for name, pid in self.pids.items():
            try:
                out[name] = round(100 * (cpu_seconds(pid) - self.before[name]) / wall, 1)
            except OSError:  # ended meanwhile (restarted): its share is unknown
                continue
        busy, total = _machine_busy_jiffies()
        out["machine"] = round(100 * (busy - self.machine_before[0]) / max(1, total - self.machine_before[1]), 1)
        return out


class ServedProcess:
    """A server in a process (and session) of its own: `python -m <args>` with the settings in its
    environment and its output in `log_path`; ready once `ready_url` answers 200."""

    def __init__(self, args: list[str], settings: Settings, log_path: Path, ready_url: str, what: str) -> None:
        import subprocess
        import sys

        from deploy.stack import settings_environment

        env = {**os.environ, **settings_environment(settings), "PYTHONUNBUFFERED": "1"}
        self.ready_url, self.what = ready_url, what
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      cwd=Path(__file__).resolve().parent.parent)

    def wait_ready(self, timeout: float = 90, interval: float = 0.2) -> None:
        import httpx

        from .harness import wait_until

        def answers():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.what} exited ({self.popen.returncode}); see {self._log.name}")
            try:
                return httpx.get(self.ready_url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(answers, timeout=timeout, interval=interval, what=f"{self.what} answers {self.ready_url}")

    def stop(self, wait_s: float = 20) -> None:
        stop_group(self.popen, wait_s)
        self._log.close()
