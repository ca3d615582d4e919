"""Peers for the hotline benchmark: the same request/acknowledge workload on other systems.

``bench/compare.py`` runs one workload — A sends a ~550-byte warning, it reaches
B, B's acknowledgement reaches A — on hotline's relay (alone and as a cluster), on
a minimal relay in the same stack (the floor), on NATS JetStream (as it is, and
with hotline's Ed25519 work in its clients) and on Mosquitto, and reports each
system's rate, latency and server CPU per message, beside the machine's
signature ceiling.

The parts, one module each:

- :mod:`peers.procstat` — CPU time and peak memory of a process from ``/proc``;
- :mod:`peers.servers` — install, start on loopback and stop (by PID) the servers;
- :mod:`peers.workload` — what every system implements (:class:`~peers.workload.Peer`)
  and the driver that keeps 1 or up to 100 round trips in flight and times them;
- :mod:`peers.hotline_peer`, :mod:`peers.cluster_peer`, :mod:`peers.nats_peer`,
  :mod:`peers.nats_ed25519_peer`, :mod:`peers.mqtt_peer` — the two clients of each
  system (:mod:`peers.mqtt_wire` is the small MQTT 3.1.1 codec);
- :mod:`peers.floor_relay` — the floor: a relay that does only the protocol's mandatory
  per-message work in hotline's stack; :mod:`peers.floor_peer` runs hotline's clients on it;
- :mod:`peers.signatures` — the Ed25519 operations of one hotline round trip, the
  relay's share of them per run, and the signature ceiling (a loop per core);
- :mod:`peers.report` — medians, same-round ratios, the Markdown table;
- :mod:`peers.chart` — the SVG chart for ``docs/``;
- :mod:`peers.profile` — a py-spy profile of the relay, folded into a table.

Everything talks to 127.0.0.1 only, and every run is bounded in messages and time.
"""
