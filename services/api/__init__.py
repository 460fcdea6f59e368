"""The only HTTP surface: commands in to Kafka, queries from the read model."""
