"""Deployment helpers: the embedded Kafka broker and its configuration files."""
