"""Prometheus metrics of the relay, read from its counters and figures on each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from hotline.figures import LinkFigures

if TYPE_CHECKING:
    from hotline.relay.server import Relay

__all__ = ["RelayMetrics"]


class _RelayCollector(Collector):
    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        relay = self._relay
        counters = relay.core.counters
        accepted = CounterMetricFamily(
            "hotline_envelopes_accepted", "Envelopes durably logged, by body type", labels=["type"]
        )
        for kind, count in sorted(counters.accepted.items()):
            accepted.add_metric([kind], count)
        yield accepted
        rejected = CounterMetricFamily(
            "hotline_envelopes_rejected", "Frames refused, by rejection code", labels=["code"]
        )
        for code, count in sorted(counters.rejected.items()):
            rejected.add_metric([code], count)
        yield rejected
        yield CounterMetricFamily(
            "hotline_duplicates", "Resent envelopes answered with their original receipt",
            value=counters.duplicates,
        )
        yield CounterMetricFamily(
            "hotline_deliveries", "Envelopes sent to recipients", value=counters.deliveries
        )
        yield CounterMetricFamily(
            "hotline_redeliveries", "Resends after the retry interval", value=counters.redeliveries
        )
        overdue = CounterMetricFamily(
            "hotline_overdue", "Missed deadlines, by stage", labels=["stage"]
        )
        for stage, count in sorted(counters.overdue.items()):
            overdue.add_metric([stage], count)
        yield overdue
        yield CounterMetricFamily(
            "hotline_link_tests", "Link tests sent", value=counters.link_tests
        )
        yield CounterMetricFamily(
            "hotline_refusal_floods",
            "Sessions closed (4429) for drawing signed refusals faster than their budget",
            value=counters.refusal_floods,
        )
        log = relay.log
        yield GaugeMetricFamily(
            "hotline_log_entries", "Entries in the audit log", value=log.size
        )
        yield GaugeMetricFamily(
            "hotline_checkpoint_size", "Tree size of the latest signed checkpoint",
            value=max(0, log.signed_size),
        )
        yield GaugeMetricFamily(
            "hotline_endpoints_online", "Endpoints connected now", value=len(relay.online)
        )
        yield GaugeMetricFamily(
            "hotline_relay_ready",
            "1 while the relay can log what it accepts, 0 while it answers busy (replicas)",
            value=1 if relay.ready else 0,
        )
        yield GaugeMetricFamily(
            "hotline_pending_deliveries", "Messages owed to recipients",
            value=relay.core.pending_count(),
        )
        snapshot = relay.figures.snapshot()  # the relay's current figures (a restore replaces them)
        availability = GaugeMetricFamily(
            "hotline_link_availability", "Share of link tests answered in time",
            labels=["endpoint"],
        )
        delivery = GaugeMetricFamily(
            "hotline_delivery_ms", "Delivery latency per directed link",
            labels=["from", "to", "quantile"],
        )
        hops = snapshot.get("hops", [])
        assert isinstance(hops, list)
        for hop in hops:
            if hop.get("availability") is not None:
                availability.add_metric([hop["endpoint"]], hop["availability"])
        links = snapshot.get("links", [])
        assert isinstance(links, list)
        for link in links:
            stats = link.get("delivery_ms") or {}
            for quantile in ("p50", "p99"):
                if stats.get(quantile) is not None:
                    delivery.add_metric(
                        [link["from"], link["to"], quantile[1:]], stats[quantile]
                    )
        yield availability
        yield delivery


class RelayMetrics:
    """The relay's registry; ``render`` gives the Prometheus text format."""

    content_type: Final = CONTENT_TYPE_LATEST

    def __init__(self, relay: Relay) -> None:
        self.figures = LinkFigures(relay.network)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_RelayCollector(relay))

    def render(self) -> bytes:
        return generate_latest(self.registry)
