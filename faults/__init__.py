"""Fault-injection harness for hotline: real processes on loopback, killed and restarted."""
