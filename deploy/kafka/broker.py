"""The embedded Apache Kafka broker: fetch its jars, start, wait, stop.

A broker is only ``java -cp '<libs>/*' kafka.Kafka server.properties``. The jars are
resolved from Maven Central once (``ensure_jars``) into ``<cache_dir>/kafka-<version>/libs``;
each node of a :class:`KafkaCluster` runs in KRaft combined mode (broker and controller in
one process) from its own folder ``<kafka_data>/node-<n>``::

    node-1/
      server.properties   written by us
      data/               the broker's log dirs (formatted once by StorageTool)
      logs/               server.log, state-change.log (log4j)
      broker.out          stdout/stderr of the JVM (warnings and errors)
      broker.pid          pid of the running JVM

When ``settings.kafka_bootstrap`` names an existing cluster nothing is started or
stopped; ``up()`` only waits until that cluster answers.

See shared/design/KAFKA.md for why it is done this way.
"""
from __future__ import annotations

import base64
import collections
import contextlib
import fcntl
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from spkt.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j.properties"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
JARS_MARKER = ".complete"
CLUSTER_FILE = "cluster.json"
HOST = "127.0.0.1"

#: Port offset between consecutive nodes (node n: port + PORT_STEP*(n-1)).
PORT_STEP = 10

# Kafka 4.x logs through log4j2; its config is written into each node's folder.
_LOG4J2_CONFIG = """\
# Written by deploy/kafka/broker.py for Kafka 4.x (log4j2).
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
appender.stdout.filter.threshold.type = ThresholdFilter
appender.stdout.filter.threshold.level = warn
appender.server.type = RollingFile
appender.server.name = SERVER
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 10MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 5
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
rootLogger.appenderRef.server.ref = SERVER
"""


class KafkaError(RuntimeError):
    """Something about the embedded broker failed; the message says what and why."""


class JarDownloadError(KafkaError):
    """Maven could not fetch the broker's jars."""


class KafkaStartError(KafkaError):
    """A node died while starting, or the cluster did not become ready in time."""


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError:
        return 3


def _uses_log4j2(version: str) -> bool:
    return _major(version) >= 4


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes (flock on ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(no {path})"
    text = "\n".join(data.splitlines()[-lines:])
    return text or f"({path} is empty)"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise KafkaError(
            "Java 17 or newer is needed to run the embedded Kafka broker, but `java` is not on "
            "PATH (nor in $JAVA_HOME). Install a JDK, or point SPKT_KAFKA_BOOTSTRAP at an "
            "existing cluster."
        )
    return java


def _random_cluster_id() -> str:
    """A cluster id in the format of ``kafka-storage random-uuid`` (Kafka's ``Uuid``).

    Kafka's Uuid is a random (v4) UUID written as URL-safe base64 without padding; ids whose
    text starts with '-' are rejected by Kafka's own generator, so are skipped here too.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def _port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host:
            host, port = item, "9092"
        out.append((host.strip("[]"), int(port)))
    return out


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # The JVM's server sockets use SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port_block(brokers: int = 1, low: int = 20000, high: int = 32000) -> tuple[int, int]:
    """Free loopback ports for a ``brokers``-node cluster: ``(kafka_port, controller_port)``.

    Node n uses ``kafka_port + 10*(n-1)`` and ``controller_port + 10*(n-1)``; every one of
    those ports is checked free. The range stays below Linux's ephemeral ports (32768+).
    For tests: ``Settings(kafka_port=p, kafka_controller_port=c, ...)``.
    """
    rng = random.Random()
    span = PORT_STEP * (brokers - 1) + 2
    for _ in range(500):
        base = rng.randrange(low, high - span)
        ports = [base + PORT_STEP * i + j for i in range(brokers) for j in (0, 1)]
        if all(_port_free(p) for p in ports):
            return base, base + 1
    raise KafkaError(f"no block of free loopback ports for {brokers} broker(s) in {low}-{high}")


# --------------------------------------------------------------------------------------
# progress display (rich when a terminal, plain lines otherwise, logging without console)
# --------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, console: Console | None, text: str) -> None:
        self.console = console
        self.text = text
        self._status: Any = None

    def __enter__(self) -> _Progress:
        if self.console is not None and self.console.is_terminal:
            self._status = self.console.status(self.text)
            self._status.__enter__()
        elif self.console is not None:
            self.console.print(self.text, highlight=False)
        else:
            log.info("%s", self.text)
        return self

    def update(self, text: str) -> None:
        """Replace the live status line (terminal only; elsewhere it would be noise)."""
        if self._status is not None:
            self._status.update(text)
        else:
            log.debug("%s", text)

    def line(self, text: str) -> None:
        """A line worth keeping in a non-terminal log (shown in the status on a terminal)."""
        if self._status is not None:
            self._status.update(text)
        elif self.console is not None:
            self.console.print(text, highlight=False)
        else:
            log.info("%s", text)

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
            self._status = None


# --------------------------------------------------------------------------------------
# jars
# --------------------------------------------------------------------------------------
def jars_dir(settings: Settings) -> Path:
    """Where the jars of ``settings.kafka_version`` live (whether fetched yet or not)."""
    return Path(settings.cache_dir).expanduser().resolve() / f"kafka-{settings.kafka_version}" / "libs"


def ensure_jars(settings: Settings, console: Console | None = None) -> Path:
    """The folder holding the broker's jars for ``settings.kafka_version``; fetch them once.

    The folder is complete when it holds the marker file (written last). Otherwise Maven
    resolves ``deploy/kafka/pom.xml`` into a temporary folder beside it, which is then
    renamed into place. Concurrent callers (other processes) wait on a file lock.
    """
    version = settings.kafka_version
    libs = jars_dir(settings)
    if (libs / JARS_MARKER).is_file():
        return libs
    home = libs.parent
    home.mkdir(parents=True, exist_ok=True)
    with _file_lock(home / ".lock"):
        if (libs / JARS_MARKER).is_file():  # another process fetched them meanwhile
            return libs
        mvn = shutil.which("mvn")
        if not mvn:
            raise JarDownloadError(
                "Maven (`mvn`) is needed once to fetch the Kafka broker's jars from Maven Central, "
                f"but it is not on PATH. Install Maven, or put the jars of Kafka {version} in {libs} "
                f"(with an empty file {JARS_MARKER}), or set SPKT_KAFKA_BOOTSTRAP to an existing cluster."
            )
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=home) as tmp:
            work = Path(tmp)
            out = work / "libs"
            shutil.copyfile(POM, work / "pom.xml")
            cmd = [
                mvn,
                "-B",
                "-Dstyle.color=never",
                f"-Dkafka.version={version}",
                *(["-Dkafka.logging=log4j2"] if _uses_log4j2(version) else []),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={out}",
                "-DincludeScope=runtime",
            ]
            _run_maven(cmd, work, version, console)
            broker_jar = out / f"kafka_2.13-{version}.jar"
            if not broker_jar.is_file():
                raise JarDownloadError(
                    f"Maven finished but {broker_jar.name} is not among the fetched jars in {out}"
                )
            if libs.exists():  # a leftover without its marker: incomplete, replace it
                shutil.rmtree(libs)
            os.replace(out, libs)
        (libs / JARS_MARKER).write_text(f"kafka {version}\n")
        count = len(list(libs.glob("*.jar")))
        log.info("Kafka %s: %d jars in %s (%.1fs)", version, count, libs, time.monotonic() - started)
        return libs


_DOWNLOADING = re.compile(r"Downloading from [^:]+: (\S+)")
_DOWNLOADED = re.compile(r"Downloaded from [^:]+: (\S+)")


def _run_maven(cmd: list[str], cwd: Path, version: str, console: Console | None) -> None:
    log.debug("running %s", " ".join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=40)
    downloaded = 0
    title = f"Fetching Apache Kafka {version} from Maven Central"
    with _Progress(console, title + " …") as progress:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = _ANSI.sub("", raw.rstrip())
                tail.append(line)
                if m := _DOWNLOADING.search(line):
                    name = m.group(1).rsplit("/", 1)[-1]
                    progress.update(f"{title}: {downloaded} files downloaded · {name}")
                elif m := _DOWNLOADED.search(line):
                    downloaded += 1
                    name = m.group(1).rsplit("/", 1)[-1]
                    if name.endswith(".jar"):
                        progress.line(f"  [{downloaded}] downloaded {name}")
                    else:
                        progress.update(f"{title}: {downloaded} files downloaded · {name}")
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if rc != 0:
        raise JarDownloadError(
            f"Maven could not fetch Apache Kafka {version} (exit code {rc}). "
            f"Last lines of its output:\n" + "\n".join(list(tail)[-25:])
        )
    if console is not None:
        console.print(f"Fetched Apache Kafka {version} ({downloaded} files downloaded).", highlight=False)


# --------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------
#: JVMs started by this Python process, by pid, so that they are reaped (never left as
#: zombies) whichever KafkaCluster object stops them.
_CHILDREN: dict[int, tuple[subprocess.Popen[bytes], str]] = {}  # pid -> (process, properties)
_CHILDREN_LOCK = threading.Lock()


def _child_state(pid: int) -> str | None:
    """"running" or "exited" (now reaped) when ``pid`` is a child of this process, else None.

    An unreaped child's pid cannot be reused, so a running child in ``_CHILDREN`` is surely the
    JVM we started (right after a vfork-based exec its /proc cmdline can still read empty).
    """
    with _CHILDREN_LOCK:
        entry = _CHILDREN.get(pid)
        if entry is not None:
            if entry[0].poll() is None:
                return "running"
            del _CHILDREN[pid]
            return "exited"
    return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return []
        # no /proc (macOS): ask ps; good enough to recognise our JVM
        try:
            out = subprocess.run(
                ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return out.split()
    except (ProcessLookupError, PermissionError, OSError):
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


# --------------------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    port: int
    pid: int | None
    alive: bool


@dataclass(frozen=True)
class Node:
    node_id: int
    port: int
    controller_port: int
    dir: Path

    @property
    def properties(self) -> Path:
        return self.dir / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def out_file(self) -> Path:
        return self.dir / "broker.out"

    @property
    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()


class KafkaCluster:
    """One or more local KRaft nodes (broker+controller each), or an external cluster.

    ``up()`` starts what is not running and waits until the cluster answers; ``down()``
    stops the nodes whose pid files name a live broker of this data folder.
    """

    def __init__(self, settings: Settings, brokers: int = 1) -> None:
        if brokers < 1:
            raise ValueError("brokers must be at least 1")
        self.settings = settings
        self.brokers = brokers
        self.data = Path(settings.kafka_data).expanduser().resolve()
        self.nodes = [
            Node(
                node_id=n,
                port=settings.kafka_port + PORT_STEP * (n - 1),
                controller_port=settings.kafka_controller_port + PORT_STEP * (n - 1),
                dir=self.data / f"node-{n}",
            )
            for n in range(1, brokers + 1)
        ]

    @classmethod
    def from_data(cls, settings: Settings) -> KafkaCluster:
        """The cluster as it was created in ``settings.kafka_data`` (1 node if none yet)."""
        return cls(settings, brokers=recorded_brokers(settings) or 1)

    # --- addresses -----------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        return not self.settings.kafka_bootstrap

    @property
    def bootstrap(self) -> str:
        if self.settings.kafka_bootstrap:
            return self.settings.kafka_bootstrap
        return ",".join(f"{HOST}:{n.port}" for n in self.nodes)

    def __repr__(self) -> str:
        where = self.data if self.embedded else "external"
        return f"KafkaCluster(brokers={self.brokers}, bootstrap={self.bootstrap!r}, data={where})"

    # --- configuration -------------------------------------------------------------------
    def properties(self, node: Node) -> dict[str, str]:
        """server.properties of ``node`` (KRaft combined mode, loopback only)."""
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.nodes)
        rf = min(self.brokers, 3)
        min_isr = 2 if rf >= 3 else 1
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{node.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "num.partitions": 3,
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "unclean.leader.election.enable": "false",
            # Fewer internal partitions than the defaults (50): a local cluster, and the first
            # consumer group joins much faster.
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.num.partitions": 10,
            **broker_threads(_cores()),
        }
        return {k: str(v) for k, v in props.items()}

    def _properties_text(self, node: Node) -> str:
        lines = [
            "# Written by deploy/kafka/broker.py; rewritten at each start of this node.",
            *(f"{k}={v}" for k, v in self.properties(node).items()),
        ]
        return "\n".join(lines) + "\n"

    @property
    def _cluster_file(self) -> Path:
        return self.data / CLUSTER_FILE

    def _cluster_id(self) -> str:
        """The id shared by all nodes, created once and kept in <kafka_data>/cluster.json."""
        path = self._cluster_file
        if path.is_file():
            info = json.loads(path.read_text())
            if info.get("brokers") not in (None, self.brokers):
                raise KafkaError(
                    f"{self.data} holds a {info['brokers']}-broker cluster, not a {self.brokers}-broker one. "
                    f"Use --brokers {info['brokers']}, or stop it and remove {self.data} to start afresh."
                )
            return str(info["cluster_id"])
        self.data.mkdir(parents=True, exist_ok=True)
        cluster_id = _random_cluster_id()
        info = {"cluster_id": cluster_id, "brokers": self.brokers, "kafka_version": self.settings.kafka_version}
        _write_atomic(path, json.dumps(info, indent=2) + "\n")
        return cluster_id

    def _jvm_logging_flags(self, node: Node) -> list[str]:
        flags = [f"-Dkafka.logs.dir={node.logs_dir}"]
        if _uses_log4j2(self.settings.kafka_version):
            cfg = node.dir / "log4j2.properties"
            cfg.write_text(_LOG4J2_CONFIG)
            flags.append(f"-Dlog4j2.configurationFile={cfg}")
        else:
            flags.append(f"-Dlog4j.configuration=file:{LOG4J_CONFIG}")
        return flags

    # --- process inspection --------------------------------------------------------------
    def _is_our_broker(self, pid: int, node: Node) -> bool:
        """Is ``pid`` a live JVM running kafka.Kafka with this node's properties file?"""
        state = _child_state(pid)
        if state is not None:
            if state == "exited":
                return False
            entry = _CHILDREN.get(pid)
            if entry is not None:
                return entry[1] == str(node.properties)
        args = _cmdline(pid)
        return "kafka.Kafka" in args and str(node.properties) in args

    def _saved_pid(self, node: Node) -> int | None:
        try:
            return int(node.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _live_pid(self, node: Node) -> int | None:
        pid = self._saved_pid(node)
        if pid is not None and self._is_our_broker(pid, node):
            return pid
        return None

    def pids(self) -> list[int]:
        """Pids of the live nodes (none for an external cluster)."""
        if not self.embedded:
            return []
        return [pid for node in self.nodes if (pid := self._live_pid(node)) is not None]

    def status(self) -> list[NodeStatus]:
        """One entry per local node: its port, the pid on record, whether it runs."""
        if not self.embedded:
            return []
        out = []
        for node in self.nodes:
            pid = self._saved_pid(node)
            alive = pid is not None and self._is_our_broker(pid, node)
            out.append(NodeStatus(node_id=node.node_id, port=node.port, pid=pid, alive=alive))
        return out

    # --- readiness -----------------------------------------------------------------------
    def broker_ids(self, timeout_s: float = 5.0) -> set[int]:
        """Ids of the brokers the cluster's metadata lists (empty when it does not answer)."""
        addresses = _parse_bootstrap(self.bootstrap)
        if not any(_port_open(h, p, min(timeout_s, 1.0)) for h, p in addresses):
            return set()
        try:
            meta = _describe_cluster(self.bootstrap, timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            log.debug("metadata request to %s failed: %r", self.bootstrap, exc)
            return set()
        # Newer clients ask for fenced brokers too (Kafka 4.x answers); those are not ready.
        return {int(b["broker_id"]) for b in meta.get("brokers", []) if not b.get("is_fenced")}

    def is_ready(self, timeout_s: float = 5.0) -> bool:
        """A metadata round-trip succeeds and lists every node (at least one if external)."""
        ids = self.broker_ids(timeout_s)
        if not self.embedded:
            return bool(ids)
        return {n.node_id for n in self.nodes} <= ids

    # --- up ------------------------------------------------------------------------------
    def up(self, console: Console | None = None) -> None:
        """Start the nodes that are not running and wait until the cluster is ready.

        With an external cluster (``settings.kafka_bootstrap``) only the wait is done.
        Raises :class:`KafkaStartError` (with the tail of the node's broker.out) when a node
        dies while starting, or the cluster is not ready within ``kafka_start_timeout_s``;
        nodes this call started are stopped again in that case.
        """
        if not self.embedded:
            self._wait_ready(console, started={})
            return
        libs = ensure_jars(self.settings, console)
        java = _java()
        started: dict[int, int] = {}
        with _file_lock(self.data / ".lock"):
            try:
                cluster_id = self._cluster_id()
                todo = []
                for node in self.nodes:
                    pid = self._live_pid(node)
                    if pid is not None:
                        log.info("Kafka node %d already running (pid %d)", node.node_id, pid)
                    else:
                        todo.append(node)
                for node in todo:
                    for d in (node.dir, node.data_dir, node.logs_dir):
                        d.mkdir(parents=True, exist_ok=True)
                    _write_atomic(node.properties, self._properties_text(node))
                self._format([n for n in todo if not n.formatted], libs, java, cluster_id)
                for node in todo:
                    started[node.node_id] = self._start(node, libs, java)
            except BaseException:
                self._stop_after_failure(started)
                raise
        try:
            self._wait_ready(console, started)
        except BaseException:
            self._stop_after_failure(started)
            raise

    def _stop_after_failure(self, started: dict[int, int]) -> None:
        """Stop what a failed up() started, without hiding the failure itself."""
        try:
            self._stop_pids(started)
        except Exception:  # noqa: BLE001
            log.exception("could not stop Kafka node(s) %s after a failed start", sorted(started))

    def _format(self, nodes: list[Node], libs: Path, java: str, cluster_id: str) -> None:
        """kafka.tools.StorageTool format, once per node (in parallel)."""
        if not nodes:
            return
        procs = []
        for node in nodes:
            cmd = [
                java,
                "-Xmx256m",
                *self._jvm_logging_flags(node),
                "-cp",
                f"{libs}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node.properties),
                "--ignore-formatted",
            ]
            log.info("formatting storage of Kafka node %d in %s", node.node_id, node.data_dir)
            procs.append(
                (node, subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, cwd=node.dir))
            )
        errors = []
        for node, proc in procs:
            try:
                out, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            if proc.returncode != 0:
                text = "\n".join(out.decode("utf-8", "replace").splitlines()[-20:])
                errors.append(f"node {node.node_id} (exit code {proc.returncode}):\n{text}")
        if errors:
            raise KafkaStartError("Formatting Kafka storage failed for " + "\n".join(errors))

    def _start(self, node: Node, libs: Path, java: str) -> int:
        heap = self.settings.kafka_heap
        cmd = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *garbage_collector(_cores()),
            "-Djava.awt.headless=true",
            *self._jvm_logging_flags(node),
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(node.properties),
        ]
        if node.out_file.exists():
            os.replace(node.out_file, node.out_file.with_name(node.out_file.name + ".1"))
        with open(node.out_file, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=node.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        with _CHILDREN_LOCK:
            _CHILDREN[proc.pid] = (proc, str(node.properties))
        _write_atomic(node.pid_file, f"{proc.pid}\n")
        log.info("started Kafka node %d (pid %d, port %d)", node.node_id, proc.pid, node.port)
        return proc.pid

    def _wait_ready(self, console: Console | None, started: dict[int, int]) -> None:
        timeout = self.settings.kafka_start_timeout_s
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        by_id = {n.node_id: n for n in self.nodes}
        with _Progress(console, f"Waiting for Kafka at {self.bootstrap} …") as progress:
            while True:
                if self.embedded:
                    for node in self.nodes:
                        if self._live_pid(node) is None:
                            pid = started.get(node.node_id) or self._saved_pid(node)
                            raise KafkaStartError(
                                f"Kafka node {node.node_id} (pid {pid}, port {node.port}) exited while "
                                f"starting. Last lines of {node.out_file}:\n{_tail(node.out_file)}"
                            )
                ids = self.broker_ids(timeout_s=min(5.0, max(0.5, deadline - time.monotonic())))
                want = {n.node_id for n in self.nodes} if self.embedded else None
                if (want is not None and want <= ids) or (want is None and ids):
                    took = time.monotonic() - t0
                    log.info("Kafka ready at %s after %.1fs", self.bootstrap, took)
                    if console is not None:
                        console.print(
                            f"Kafka ready at {self.bootstrap} ({len(ids)} broker(s), {took:.1f}s).",
                            highlight=False,
                        )
                    return
                waited = time.monotonic() - t0
                if want:
                    progress.update(
                        f"Waiting for Kafka at {self.bootstrap}: {len(ids & want)}/{len(want)} "
                        f"broker(s) ready · {waited:.0f}s"
                    )
                else:
                    progress.update(f"Waiting for Kafka at {self.bootstrap} · {waited:.0f}s")
                if time.monotonic() >= deadline:
                    detail = ""
                    if self.embedded:
                        missing = sorted(want - ids) if want else []
                        detail = "".join(
                            f"\nLast lines of {by_id[i].out_file}:\n{_tail(by_id[i].out_file, 15)}"
                            for i in missing
                        )
                    raise KafkaStartError(
                        f"Kafka at {self.bootstrap} was not ready within {timeout:.0f}s "
                        f"(SPKT_KAFKA_START_TIMEOUT_S).{detail}"
                    )
                time.sleep(0.2)

    # --- down ----------------------------------------------------------------------------
    def down(self) -> list[int]:
        """Stop every live node: TERM, then KILL after ``kafka_stop_timeout_s``.

        Only a process whose command line is this node's ``kafka.Kafka <properties>`` is ever
        signalled. Returns the pids that were stopped. Nothing to do for an external cluster.
        """
        if not self.embedded:
            log.info("Kafka is external (%s); nothing to stop", self.bootstrap)
            return []
        targets: dict[int, int] = {}
        for node in self.nodes:
            pid = self._live_pid(node)
            if pid is not None:
                targets[node.node_id] = pid
        self._stop_pids(targets)
        return list(targets.values())

    def _stop_pids(self, targets: dict[int, int]) -> None:
        by_id = {n.node_id: n for n in self.nodes}
        t0 = time.monotonic()
        for node_id, pid in targets.items():
            node = by_id[node_id]
            if self._is_our_broker(pid, node):
                log.info("stopping Kafka node %d (pid %d)", node_id, pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        pending = {i: p for i, p in targets.items() if self._is_our_broker(p, by_id[i])}
        deadline = t0 + self.settings.kafka_stop_timeout_s
        pending = self._wait_gone(pending, deadline)
        for node_id, pid in pending.items():
            log.warning("Kafka node %d (pid %d) ignored TERM for %.0fs; killing it",
                        node_id, pid, self.settings.kafka_stop_timeout_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pending = self._wait_gone(pending, time.monotonic() + 10.0)
        for node_id in targets:
            if node_id not in pending:
                by_id[node_id].pid_file.unlink(missing_ok=True)
        if targets:
            log.info("stopped Kafka node(s) %s in %.1fs", sorted(set(targets) - set(pending)),
                     time.monotonic() - t0)
        if pending:
            raise KafkaError(f"Kafka node(s) {sorted(pending)} (pids {sorted(pending.values())}) would not stop")

    def _wait_gone(self, pending: dict[int, int], deadline: float) -> dict[int, int]:
        by_id = {n.node_id: n for n in self.nodes}
        pending = dict(pending)
        while pending:
            for node_id, pid in list(pending.items()):
                if not self._is_our_broker(pid, by_id[node_id]):
                    del pending[node_id]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        return pending


def _cores() -> int:
    """Cores this process may run on (what the broker beside it shares)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def broker_threads(cores: int) -> dict[str, int]:
    """Request threads for a broker that shares ``cores`` with the services.

    Kafka's defaults (3 network, 8 request-handler and 10 background threads) are sized for a
    machine of its own. On two cores shared with six Python processes, one network and two
    handler threads took a sixth less broker CPU a report for the same work, and the pipeline
    benchmark's p99 fell with it (docs/performance.md).
    """
    if cores > 2:
        return {}
    return {"num.network.threads": 1, "num.io.threads": 2, "background.threads": 2}


def garbage_collector(cores: int) -> list[str]:
    """JVM collector flags: Kafka's G1 settings, or the serial collector on two cores or fewer.

    G1 keeps concurrent threads of its own; with a heap of a few hundred MB the serial collector
    is enough, and in the pipeline benchmark it took the broker's CPU a report down by a further
    eighth (docs/performance.md).
    """
    if cores <= 2:
        return ["-XX:+UseSerialGC"]
    return [
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
    ]


def recorded_brokers(settings: Settings) -> int | None:
    """How many nodes the cluster in ``settings.kafka_data`` was created with (None: none yet)."""
    data = Path(settings.kafka_data).expanduser()
    try:
        return int(json.loads((data / CLUSTER_FILE).read_text())["brokers"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    nodes = [p for p in data.glob("node-*") if p.is_dir()] if data.is_dir() else []
    return len(nodes) or None


# --------------------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------------------
def _describe_cluster(bootstrap: str, timeout_s: float) -> dict[str, Any]:
    """One metadata round-trip with kafka-python's admin client."""
    from kafka import KafkaAdminClient

    timeout_ms = max(500, int(timeout_s * 1000))
    config = dict(
        bootstrap_servers=bootstrap,
        client_id="spkt-kafka-ready",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        reconnect_backoff_max_ms=1000,
    )
    # The client starts an IO thread in __init__ and leaks it when bootstrapping then fails;
    # build it in two steps so that a half-made client can still be shut down.
    admin = KafkaAdminClient.__new__(KafkaAdminClient)
    try:
        admin.__init__(**config)
    except BaseException:
        _close_partial(admin)
        raise
    try:
        return admin.describe_cluster()
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def _close_partial(admin: Any) -> None:
    for attr, call in (("_client", "close"), ("_net", "stop")):
        obj = getattr(admin, attr, None)
        if obj is not None:
            with contextlib.suppress(Exception):
                getattr(obj, call)()

