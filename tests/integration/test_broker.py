"""The embedded Kafka broker on free loopback ports and a temporary data folder.

The jars come from the real cache (``Settings().cache_dir``) so they are fetched once.
Every broker started here is stopped in the fixture's teardown.
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import suppress
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from typer.testing import CliRunner

from deploy.kafka import (
    KafkaCluster,
    KafkaStartError,
    NodeStatus,
    ensure_jars,
    free_port_block,
    jars_dir,
)
from deploy.topics import once_known
from spkt.settings import Settings, get_settings

pytestmark = pytest.mark.integration

# Keep the real cache so the jars are downloaded once, whatever the test's tmp folder.
REAL_CACHE = Settings().cache_dir


def make_settings(tmp_path: Path, brokers: int = 1, **overrides) -> Settings:
    port, controller_port = free_port_block(brokers)
    values = dict(
        kafka_bootstrap=None,
        kafka_port=port,
        kafka_controller_port=controller_port,
        kafka_data_dir=tmp_path / "kafka",
        state_dir=tmp_path,
        cache_dir=REAL_CACHE,
        kafka_start_timeout_s=120.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clusters():
    """Make clusters; whatever they started is stopped afterwards, whatever happened."""
    made: list[KafkaCluster] = []

    def make(settings: Settings, brokers: int = 1) -> KafkaCluster:
        cluster = KafkaCluster(settings, brokers=brokers)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        with suppress(Exception):
            cluster.down()


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate, what: str, timeout_s: float = 30.0):
    """Poll ``predicate`` until it returns something truthy (errors count as not yet)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with suppress(Exception):
            if value := predicate():
                return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


def topic_partitions(client: KafkaAdminClient, name: str) -> list[dict]:
    """The topic's partitions once every broker's metadata knows it (else [])."""
    (topic,) = client.describe_topics([name])
    return topic["partitions"] if topic.get("error_code", 0) == 0 else []


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000, client_id="spkt-test")


def create_replicated_topic(bootstrap: str, topic: NewTopic) -> None:
    """On a new client each time, as deploy.topics.create_topics does on a cluster just started:
    describe_cluster's answer comes from one broker, which may know all three before the admin
    client's own metadata does (the client then names a controller it has no address for)."""
    def create() -> None:
        client = admin(bootstrap)
        try:
            client.create_topics([topic])
        finally:
            client.close()

    once_known(create)


def test_single_broker_lifecycle(tmp_path: Path, clusters) -> None:
    settings = make_settings(tmp_path)
    cluster = clusters(settings)
    assert cluster.bootstrap == f"127.0.0.1:{settings.kafka_port}"
    assert cluster.status() == [NodeStatus(node_id=1, port=settings.kafka_port, pid=None, alive=False)]
    assert not cluster.is_ready(timeout_s=1.0)

    started = time.monotonic()
    cluster.up()
    print(f"single broker up in {time.monotonic() - started:.1f}s")

    libs = jars_dir(settings)
    assert (libs / ".complete").is_file()
    assert (libs / f"kafka_2.13-{settings.kafka_version}.jar").is_file()
    assert ensure_jars(settings) == libs  # cached: returns at once

    assert cluster.is_ready()
    pids = cluster.pids()
    assert len(pids) == 1
    pid = pids[0]
    assert pid_exists(pid)
    assert cluster.status() == [NodeStatus(node_id=1, port=settings.kafka_port, pid=pid, alive=True)]

    node_dir = settings.kafka_data / "node-1"
    props = (node_dir / "server.properties").read_text()
    assert "auto.create.topics.enable=false" in props
    assert f"listeners=PLAINTEXT://127.0.0.1:{settings.kafka_port},CONTROLLER://127.0.0.1:" in props
    assert "log.retention.hours" not in props
    assert (node_dir / "broker.pid").read_text().strip() == str(pid)

    # A topic can be created and listed.
    client = admin(cluster.bootstrap)
    try:
        client.create_topics([NewTopic("spkt.test.events", num_partitions=3, replication_factor=1)])
        wait_for(lambda: "spkt.test.events" in client.list_topics(), "the topic to be listed")
        partitions = wait_for(lambda: topic_partitions(client, "spkt.test.events"), "its partitions")
        assert len(partitions) == 3
    finally:
        client.close()

    # up() again, even from another object, starts nothing new.
    cluster.up()
    KafkaCluster(settings).up()
    assert cluster.pids() == [pid]

    # With an external bootstrap nothing is started or stopped.
    external = KafkaCluster(settings.model_copy(update={"kafka_bootstrap": cluster.bootstrap}))
    external.up()
    assert external.is_ready()
    assert external.pids() == [] and external.status() == []
    assert external.down() == []
    assert cluster.pids() == [pid]

    # down() stops it (a fresh object finds it through the pid file).
    started = time.monotonic()
    assert KafkaCluster(settings).down() == [pid]
    print(f"single broker down in {time.monotonic() - started:.1f}s")
    assert not pid_exists(pid)
    assert cluster.pids() == []
    assert cluster.status() == [NodeStatus(node_id=1, port=settings.kafka_port, pid=None, alive=False)]
    assert not (node_dir / "broker.pid").exists()
    assert not cluster.is_ready(timeout_s=1.0)
    assert cluster.down() == []  # nothing left to stop


def test_pid_file_naming_another_process_is_never_signalled(tmp_path: Path, clusters) -> None:
    settings = make_settings(tmp_path)
    cluster = clusters(settings)
    node_dir = settings.kafka_data / "node-1"
    node_dir.mkdir(parents=True)
    (node_dir / "broker.pid").write_text(f"{os.getpid()}\n")  # alive, but not a broker

    assert cluster.status() == [NodeStatus(node_id=1, port=settings.kafka_port, pid=os.getpid(), alive=False)]
    assert cluster.pids() == []
    assert cluster.down() == []  # and we are still here


def test_start_failure_reports_the_broker_output(tmp_path: Path, clusters) -> None:
    settings = make_settings(tmp_path)
    cluster = clusters(settings)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", settings.kafka_port))
        squatter.listen()
        with pytest.raises(KafkaStartError) as info:
            cluster.up()
    message = str(info.value)
    assert "exited while starting" in message
    assert "broker.out" in message
    assert "Address already in use" in message
    assert cluster.pids() == []


def test_three_broker_cluster(tmp_path: Path, clusters) -> None:
    settings = make_settings(tmp_path, brokers=3)
    cluster = clusters(settings, brokers=3)
    ports = [settings.kafka_port + 10 * i for i in range(3)]
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{p}" for p in ports)

    started = time.monotonic()
    cluster.up()
    print(f"three brokers up in {time.monotonic() - started:.1f}s")

    pids = cluster.pids()
    assert len(set(pids)) == 3 and all(pid_exists(p) for p in pids)
    assert [s.port for s in cluster.status()] == ports
    assert all(s.alive for s in cluster.status())

    props = (settings.kafka_data / "node-2" / "server.properties").read_text()
    assert "min.insync.replicas=2" in props
    assert "default.replication.factor=3" in props
    assert "unclean.leader.election.enable=false" in props

    client = admin(cluster.bootstrap)
    try:
        # Each broker answers metadata from its own view, which may lag the controller a moment.
        def all_three():
            found = client.describe_cluster()
            return found if len(found["brokers"]) == 3 else None

        meta = wait_for(all_three, "all three brokers in the metadata")
        assert sorted(b["broker_id"] for b in meta["brokers"]) == [1, 2, 3]
        assert sorted(b["port"] for b in meta["brokers"]) == ports
        create_replicated_topic(cluster.bootstrap, NewTopic("spkt.test.replicated", num_partitions=3,
                                                            replication_factor=3))
        partitions = wait_for(lambda: topic_partitions(client, "spkt.test.replicated"), "the topic's partitions")
        assert len(partitions) == 3
        assert all(sorted(p["replica_nodes"]) == [1, 2, 3] for p in partitions)
        wait_for(lambda: "spkt.test.replicated" in client.list_topics(), "the topic listed by the cluster")
    finally:
        client.close()

    started = time.monotonic()
    assert sorted(cluster.down()) == sorted(pids)
    print(f"three brokers down in {time.monotonic() - started:.1f}s")
    assert not any(pid_exists(p) for p in pids)
    assert cluster.pids() == []
    assert not any(s.alive for s in cluster.status())


def test_cli_up_status_down(tmp_path: Path, clusters, monkeypatch) -> None:
    from spkt.cli_kafka import kafka_app

    settings = make_settings(tmp_path)
    clusters(settings)  # for the teardown
    for name, value in {
        "SPKT_KAFKA_PORT": settings.kafka_port,
        "SPKT_KAFKA_CONTROLLER_PORT": settings.kafka_controller_port,
        "SPKT_KAFKA_DATA_DIR": settings.kafka_data,
        "SPKT_STATE_DIR": tmp_path,
        "SPKT_CACHE_DIR": REAL_CACHE,
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("SPKT_KAFKA_BOOTSTRAP", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(kafka_app, ["status"])
        assert result.exit_code == 1, result.output

        result = runner.invoke(kafka_app, ["up"])
        assert result.exit_code == 0, result.output
        assert f"127.0.0.1:{settings.kafka_port}" in result.output
        (pid,) = KafkaCluster(settings).pids()

        result = runner.invoke(kafka_app, ["status"])
        assert result.exit_code == 0, result.output
        assert str(pid) in result.output and "yes" in result.output

        result = runner.invoke(kafka_app, ["up", "--brokers", "3"])
        assert result.exit_code == 1
        assert "1-broker cluster" in result.output

        result = runner.invoke(kafka_app, ["down"])
        assert result.exit_code == 0, result.output
        assert not pid_exists(pid)

        result = runner.invoke(kafka_app, ["status"])
        assert result.exit_code == 1, result.output
    finally:
        get_settings.cache_clear()
