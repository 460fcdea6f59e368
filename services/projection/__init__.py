"""The read model: a consumer that writes what the API reads, rebuildable from Kafka."""
