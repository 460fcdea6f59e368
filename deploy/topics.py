"""Creates the catalogue's topics (schemas/topics.py) on the cluster, explicitly.

Broker auto-creation is off: a topic exists because this created it, with the partitions,
replication and retention the catalogue and settings say.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import NodeNotReadyError, TopicAlreadyExistsError, UnknownBrokerIdError, for_code

from schemas.topics import CATALOGUE, CHANGELOGS, FOREVER, TopicSpec
from spkt.settings import Settings


@dataclass(frozen=True)
class PlannedTopic:
    spec: TopicSpec
    partitions: int
    replication: int
    retention_ms: int

    @property
    def configs(self) -> dict[str, str]:
        configs = {"retention.ms": str(self.retention_ms), "retention.bytes": "-1"}
        if self.spec.compact:  # a table's changelog: the latest value of each key is its state
            configs["cleanup.policy"] = "compact"
        if self.replication >= 3:
            configs["min.insync.replicas"] = "2"
            configs["unclean.leader.election.enable"] = "false"
        return configs


def plan(settings: Settings) -> list[PlannedTopic]:
    """The catalogue's topics and the tables' changelogs (partitioned like the topics they follow)."""
    return [
        PlannedTopic(spec, spec.partitions or settings.topic_partitions, settings.topic_replication,
                     settings.positions_retention_ms if spec.bounded_retention else FOREVER)
        for spec in CATALOGUE + CHANGELOGS
    ]


def admin_client(settings: Settings, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.bootstrap.split(","), client_id="spkt-admin",
                            request_timeout_ms=timeout_ms)


T = TypeVar("T")

# A cluster just started can name its controller before the client has that broker's address
# (seen on three brokers in CI): asked again after a moment, it has.
NOT_KNOWN_YET = (NodeNotReadyError, UnknownBrokerIdError)


def once_known(call: Callable[[], T], attempts: int = 5) -> T:
    """`call` (which makes its own admin client), asked again while the cluster is not known yet."""
    for attempt in range(1, attempts):
        try:
            return call()
        except NOT_KNOWN_YET:
            time.sleep(attempt)
    return call()  # the last attempt: its error is the caller's


def create_topics(settings: Settings, attempts: int = 5) -> dict[str, str]:
    """Create what is missing; returns name -> 'created' | 'exists'. Raises on any other error."""
    return once_known(lambda: _create_topics(settings), attempts)


def _create_topics(settings: Settings) -> dict[str, str]:
    wanted = plan(settings)
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [p for p in wanted if p.spec.name not in existing]
        outcome = {p.spec.name: "exists" for p in wanted if p.spec.name in existing}
        if missing:
            result = admin.create_topics(
                {p.spec.name: {"num_partitions": p.partitions, "replication_factor": p.replication,
                               "configs": p.configs} for p in missing},
                raise_errors=False, wait_for_metadata=False)
            for topic in result["topics"]:
                error = for_code(topic["error_code"])
                if topic["error_code"] == 0:
                    outcome[topic["name"]] = "created"
                elif error is TopicAlreadyExistsError:
                    outcome[topic["name"]] = "exists"
                else:
                    raise RuntimeError(f"could not create {topic['name']}: {error.__name__} "
                                       f"{topic.get('error_message') or ''}".strip())
            admin.wait_for_topics([p.spec.name for p in missing])
        return outcome
    finally:
        admin.close()


def describe(settings: Settings) -> dict[str, dict[str, object]]:
    """What the cluster actually has for each catalogue topic: partitions, replication, configs."""
    admin = admin_client(settings)
    try:
        names = [spec.name for spec in CATALOGUE + CHANGELOGS]
        found = {t["name"]: t for t in admin.describe_topics(names) if t["error_code"] == 0}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in found],
                                         config_filter="all")["topic"]
        return {
            name: {
                "partitions": len(topic["partitions"]),
                "replication": len(topic["partitions"][0]["replica_nodes"]),
                "configs": {key: entry["value"] for key, entry in configs[name].items()},
            }
            for name, topic in found.items()
        }
    finally:
        admin.close()
