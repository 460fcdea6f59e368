"""Topics exist as the catalogue says, on the real broker, and nothing else is auto-created."""
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from deploy.topics import create_topics, describe, plan
from schemas.topics import CATALOGUE

pytestmark = pytest.mark.integration


def test_every_catalogue_topic_exists_with_its_partitions_and_retention(kafka_settings):
    actual = describe(kafka_settings)
    assert set(actual) == {p.spec.name for p in plan(kafka_settings)} > {spec.name for spec in CATALOGUE}
    for planned in plan(kafka_settings):
        topic = actual[planned.spec.name]
        assert topic["partitions"] == planned.partitions, planned.spec.name
        assert topic["replication"] == planned.replication, planned.spec.name
        assert int(topic["configs"]["retention.ms"]) == planned.retention_ms, planned.spec.name
    assert actual["spkt.reports"]["configs"]["retention.ms"] == "-1"
    assert actual["spkt-dispatch-unit-holds-changelog"]["configs"]["cleanup.policy"] == "compact"
    assert actual["spkt.reports"]["configs"]["cleanup.policy"] == "delete"
    assert actual["spkt.unit-positions"]["configs"]["retention.ms"] == str(kafka_settings.positions_retention_ms)


def test_creating_again_changes_nothing(kafka_settings):
    outcome = create_topics(kafka_settings)
    assert set(outcome.values()) == {"exists"} and len(outcome) == len(plan(kafka_settings))


def test_the_broker_does_not_create_topics_by_itself(kafka_settings):
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all", max_block_ms=3000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send("spkt.no-such-topic", b"x").get(timeout=5)
    finally:
        producer.close(timeout=2)
    assert "spkt.no-such-topic" not in describe(kafka_settings)
