"""The embedded broker is sized to the cores it shares with the services."""
import pytest

from deploy.kafka import broker
from spkt.settings import Settings


@pytest.mark.parametrize("cores", [1, 2])
def test_on_two_cores_or_fewer_the_broker_runs_few_threads_and_the_serial_collector(monkeypatch, tmp_path, cores):
    monkeypatch.setattr(broker, "_cores", lambda: cores)
    cluster = broker.KafkaCluster(Settings(state_dir=tmp_path))
    props = cluster.properties(cluster.nodes[0])
    assert (props["num.network.threads"], props["num.io.threads"], props["background.threads"]) == ("1", "2", "2")
    assert broker.garbage_collector(cores) == ["-XX:+UseSerialGC"]


def test_on_more_cores_kafkas_own_defaults_and_g1_stay(monkeypatch, tmp_path):
    monkeypatch.setattr(broker, "_cores", lambda: 8)
    cluster = broker.KafkaCluster(Settings(state_dir=tmp_path))
    props = cluster.properties(cluster.nodes[0])
    assert not {"num.network.threads", "num.io.threads", "background.threads"} & set(props)
    assert "-XX:+UseG1GC" in broker.garbage_collector(8) and "-XX:+UseSerialGC" not in broker.garbage_collector(8)


def test_the_cores_counted_are_those_this_process_may_use(monkeypatch):
    monkeypatch.setattr(broker.os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert broker._cores() == 3
