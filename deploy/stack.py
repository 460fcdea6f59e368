"""Runs every process of the system under supervisord: what `spkt up` and the end-to-end tests use.

supervisord (a well-kept process manager) starts each program, restarts one that dies, logs each
to its own file under <state_dir>/logs, and stops them all (TERM, then KILL after a bound, whole
process groups). This module writes its configuration, starts it, waits until every process is
ready, and shuts it down.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
from supervisor.xmlrpc import SupervisorTransport

from spkt.settings import Settings

WORKERS = ("projection", "intake", "dispatch", "tkp", "notify")

# kafka-python cannot decode faust's group metadata and says so at WARNING on every look.
logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
STOP_WAIT_S = 15


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    state: str
    pid: int
    log: Path


def settings_environment(settings: Settings) -> dict[str, str]:
    """The settings in force, as SPKT_* variables, so every child sees exactly the same ones."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            # pydantic-settings reads complex values (dicts, lists) as JSON
            env[f"SPKT_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env["SPKT_KAFKA_BOOTSTRAP"] = settings.bootstrap
    env["SPKT_DATABASE_URL"] = settings.db_url
    return env


class Stack:
    def __init__(self, settings: Settings, *, demo: bool = False) -> None:
        self.settings = settings
        self.demo = demo
        self.run_dir = settings.state_dir / "run"
        self.log_dir = settings.state_dir / "logs"
        self.conf = self.run_dir / "supervisord.conf"
        self.pidfile = self.run_dir / "supervisord.pid"
        self.socket = self.run_dir / "supervisor.sock"

    @property
    def programs(self) -> tuple[str, ...]:
        return WORKERS + ("api",) + (("demo",) if self.demo else ())

    # --- configuration -------------------------------------------------------------------
    def config_text(self) -> str:
        lines = [
            "[unix_http_server]", f"file={self.socket}", "chmod=0700", "",
            "[supervisord]", f"logfile={self.log_dir / 'supervisord.log'}", f"pidfile={self.pidfile}",
            f"childlogdir={self.log_dir}", "loglevel=info", f"directory={Path.cwd()}", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{self.socket}", "",
        ]
        for priority, name in enumerate(self.programs, start=1):
            lines += [
                f"[program:{name}]",
                f"command={sys.executable} -m spkt.cli run {name}",
                f"priority={priority}",
                "autostart=true", "autorestart=true", "startsecs=3", "startretries=5",
                f"stopwaitsecs={STOP_WAIT_S}", "stopasgroup=true", "killasgroup=true",
                "redirect_stderr=true", f"stdout_logfile={self.log_dir / (name + '.log')}",
                "stdout_logfile_maxbytes=20MB", "stdout_logfile_backups=3", "",
            ]
        return "\n".join(lines)

    # --- lifecycle -----------------------------------------------------------------------
    def supervisord_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and _is_supervisord(pid, self.conf) else None

    def start(self) -> None:
        """Start supervisord and with it every program (returns once it has forked)."""
        if self.supervisord_pid():
            raise StackError(f"already running (supervisord pid {self.supervisord_pid()}); `spkt down` first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config_text())
        # A socket left by a killed supervisord would make the new one refuse to start.
        self.socket.unlink(missing_ok=True)
        # The children inherit supervisord's environment: the settings in force, exactly.
        env = {**os.environ, **settings_environment(self.settings), "PYTHONUNBUFFERED": "1"}
        subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)], check=True,
                       stdin=subprocess.DEVNULL, env=env)

    def rpc(self) -> xmlrpc.client.ServerProxy:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def processes(self) -> list[ProcessInfo]:
        try:
            infos = self.rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error):
            return []
        return [ProcessInfo(i["name"], i["statename"], i["pid"], Path(i["stdout_logfile"])) for i in infos]

    def pids(self) -> list[int]:
        """supervisord and every child it runs."""
        pids = [p.pid for p in self.processes() if p.pid]
        if sid := self.supervisord_pid():
            pids.append(sid)
        return pids

    def wait_ready(self, on_progress: Callable[[str], None] = lambda _: None) -> None:
        """Until the API answers /readyz and every worker's consumer group has its partitions."""
        deadline = time.monotonic() + self.settings.ready_timeout_s
        waiting: list[str] = list(self.programs)
        while waiting:
            for info in self.processes():
                if info.state in ("FATAL", "BACKOFF", "EXITED"):
                    raise StackError(f"{info.name} failed to start ({info.state}); see {info.log}:\n"
                                     + _tail(info.log))
            waiting = [name for name in waiting if not self._ready(name)]
            if not waiting:
                return
            on_progress("waiting for: " + ", ".join(waiting))
            if time.monotonic() > deadline:
                raise StackError(f"not ready after {self.settings.ready_timeout_s:.0f} s: {', '.join(waiting)}; "
                                 f"logs in {self.log_dir}")
            time.sleep(0.5)

    def _ready(self, name: str) -> bool:
        if name == "api":
            try:
                return httpx.get(self.settings.api_url + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        if name == "demo":
            return any(p.name == "demo" and p.state == "RUNNING" for p in self.processes())
        return group_has_members(self.settings, f"spkt-{name}")

    def stop(self) -> list[int]:
        """Stop every program and supervisord itself; returns the pids that were running."""
        pids = self.pids()
        sid = self.supervisord_pid()
        if sid is None:
            return pids
        try:
            self.rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(sid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S * 2 + 5
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        for pid in pids:  # supervisord gave up on something: last resort, by pid
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        return pids


def group_has_members(settings: Settings, group: str) -> bool:
    """A worker is ready when its consumer group is stable with partitions assigned."""
    return group_members(settings, group) > 0


def group_members(settings: Settings, group: str) -> int:
    """How many members a stable consumer group has (0 while it rebalances, or cannot be asked)."""
    from deploy.topics import admin_client

    try:
        admin = admin_client(settings, timeout_ms=3000)
    except Exception:
        return 0
    try:
        doc = admin.describe_groups([group]).get(group) or {}
        return len(doc.get("members") or []) if doc.get("group_state") == "Stable" else 0
    except Exception:  # no coordinator yet, broker restarting: not ready, ask again
        return 0
    finally:
        admin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _is_supervisord(pid: int, conf: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"supervisord" in part for part in cmdline) and str(conf).encode() in cmdline


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_system(settings: Settings, *, demo: bool = False, console=None,
                 on_progress: Callable[[str], None] = lambda _: None) -> Stack:
    """Everything `spkt up` does: broker (unless external), topics, read-model schema, every process.

    Returns once every process is ready; on failure stops what it started and raises.
    """
    from deploy.kafka import KafkaCluster
    from deploy.topics import create_topics
    from services.projection.tables import prepare

    settings.signing_key()  # made once here, before the processes that read it start together
    KafkaCluster.from_data(settings).up(console=console)
    outcome = create_topics(settings)
    created = sum(1 for state in outcome.values() if state == "created")
    on_progress(f"topics: {created} created, {len(outcome) - created} already there")
    prepare(settings.db_url).kw["bind"].dispose()
    stack = Stack(settings, demo=demo)
    stack.start()
    try:
        stack.wait_ready(on_progress)
    except BaseException:
        stack.stop()
        raise
    return stack


def stop_system(settings: Settings) -> tuple[list[int], list[int]]:
    """Everything `spkt down` does: every process, then the embedded broker. Returns the pids stopped."""
    from deploy.kafka import KafkaCluster

    services = Stack(settings, demo=True).stop()
    cluster = KafkaCluster.from_data(settings)
    return services, (cluster.down() if cluster.embedded else [])
