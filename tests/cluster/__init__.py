"""Tests against a real three-node NATS JetStream cluster on loopback."""
