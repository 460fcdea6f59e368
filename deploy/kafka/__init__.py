"""The embedded Apache Kafka broker (KRaft, jars from Maven Central). See broker.py."""
from deploy.kafka.broker import (
    JarDownloadError,
    KafkaCluster,
    KafkaError,
    KafkaStartError,
    Node,
    NodeStatus,
    ensure_jars,
    free_port_block,
    jars_dir,
    recorded_brokers,
)

__all__ = [
    "JarDownloadError",
    "KafkaCluster",
    "KafkaError",
    "KafkaStartError",
    "Node",
    "NodeStatus",
    "ensure_jars",
    "free_port_block",
    "jars_dir",
    "recorded_brokers",
]
