"""Helpers shipped with hotline for its own tests, benchmarks, demos and fault runs.

``traffic`` makes valid signed traffic without I/O; ``ports`` picks loopback ports.
"""
