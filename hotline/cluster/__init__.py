"""Running hotline's NATS JetStream cluster on one machine: for tests, demos and fault runs."""
