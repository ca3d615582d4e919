"""``hotline demo``: the whole network on loopback with a scenario of drone incidents."""
