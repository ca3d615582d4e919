"""Helpers shipped with hotline for its own tests, benchmarks and demo: no I/O."""
