"""Test-wide settings.

Hypothesis runs without per-example deadlines: speed is measured by the
benchmarks in bench/, never by unit tests, and a loaded CI machine must not
turn a slow example into a failure.
"""

from hypothesis import settings

settings.register_profile("hotline", deadline=None)
settings.load_profile("hotline")
