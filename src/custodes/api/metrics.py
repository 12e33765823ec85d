"""Prometheus metrics: the node's ``custodes.metrics.Metrics``, served at ``/metrics``.

Events (appends, checkpoints, witness failures, lease answers, kill orders) are counted
as they happen; states (tree size, queue depth, checkpoint age and lag, the alarm, open
kill-order streams) are read when Prometheus scrapes. Each app has its own
``CollectorRegistry``: several nodes in one process (the demo, the tests) never share
or collide on a series.

Series (all prefixed ``custodes_``): ``tree_size``, ``sequenced``,
``checkpoint_age_seconds``, ``integrity_alarm`` (the gauges served before this module,
names kept), ``checkpoint_lag_seconds``, ``sequencer_queue_depth``, ``sse_subscribers``,
``append_seconds`` and ``checkpoint_seconds`` (histograms), ``appended_entries_total``,
``witness_failures_total{witness}``, ``lease_renewals_total{outcome}``,
``kill_orders_total{action}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from custodes.api.readiness import read_figures
from custodes.errors import CustodesError
from custodes.node import Node
from custodes.registry.models import KillOrder

__all__ = ["CONTENT_TYPE", "NodeCollector", "PrometheusMetrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what every Prometheus version scrapes
log = logging.getLogger("custodes.api.metrics")
# ``*_created`` series (a timestamp per counter) double the page and no dashboard reads
# them; the switch is the library's, process-wide.
disable_created_metrics()  # type: ignore[no-untyped-call]


class PrometheusMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._append = Histogram(
            "custodes_append_seconds", "Time to verify and durably sequence a batch", registry=r
        )
        self._entries = Counter(
            "custodes_appended_entries", "Entries appended through the API", registry=r
        )
        self._checkpoint = Histogram(
            "custodes_checkpoint_seconds", "Time to grow the tree and sign a checkpoint", registry=r
        )
        self._witness = Counter(
            "custodes_witness_failures",
            "Checkpoints a witness did not cosign when asked",
            ["witness"],
            registry=r,
        )
        self._leases = Counter(
            "custodes_lease_renewals",
            "Lease requests answered, by outcome (issued, or the refusal's code)",
            ["outcome"],
            registry=r,
        )
        self._orders = Counter(
            "custodes_kill_orders", "Kill orders logged, by action", ["action"], registry=r
        )

    # -- custodes.metrics.Metrics -------------------------------------------------
    def appended(self, entries: int, seconds: float) -> None:
        self._append.observe(seconds)
        self._entries.inc(entries)

    def checkpointed(self, seconds: float) -> None:
        self._checkpoint.observe(seconds)

    def witness_failed(self, witness: str) -> None:
        self._witness.labels(witness=witness).inc()

    def lease_answered(self, outcome: str) -> None:
        self._leases.labels(outcome=outcome).inc()

    def order_issued(self, action: str) -> None:
        self._orders.labels(action=action).inc()

    # -- wiring and exposition ----------------------------------------------------
    def watch(self, node: Node) -> None:
        """Read ``node``'s state on every scrape and count the orders it logs."""
        self.registry.register(NodeCollector(node))
        node.registry.on_order(self._order_logged)

    def _order_logged(
        self, _index: int, order: KillOrder, _envelope: dict[str, Any], _covered: Any
    ) -> None:
        self.order_issued(order.op)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"custodes_{name}", documentation, value=value)


class NodeCollector(Collector):
    """The node's state gauges, read at scrape time (database reads in one go)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def describe(self) -> list[Metric]:
        return []  # read only when scraped: registering must not touch the database

    def collect(self) -> Iterator[Metric]:
        node = self._node
        yield _gauge(
            "integrity_alarm",
            "1 while an integrity alarm stops appends",
            1 if node.alarm.tripped else 0,
        )
        yield _gauge(
            "sequencer_queue_depth", "Entries waiting to be sequenced", node.log.sequencer.pending
        )
        yield _gauge("sse_subscribers", "Open kill-order streams", node.broadcaster.subscribers)
        yield from self._split_view_gauges(node)
        yield from self._log_gauges(node)

    def _split_view_gauges(self, node: Node) -> Iterator[Metric]:
        try:
            alerts = node.split_views.alerts()
        except CustodesError:
            return
        yield _gauge(
            "split_view_alerts_open",
            "Proved split views not yet resolved (the witness refuses those logs)",
            sum(1 for a in alerts if a.open),
        )

    def _log_gauges(self, node: Node) -> Iterator[Metric]:
        try:
            figures = read_figures(node, time.time())
        except CustodesError as exc:  # the database is down: serve what needs no database
            log.warning("metrics without the log's figures: %s", exc.message)
            return
        age = figures.checkpoint_age
        yield _gauge("tree_size", "Entries integrated into the tree", figures.tree_size)
        yield _gauge("sequenced", "Entries durably sequenced", figures.sequenced)
        yield _gauge(
            "checkpoint_age_seconds",
            "Age of the newest checkpoint (-1: none yet)",
            -1.0 if age is None else round(age, 3),
        )
        yield _gauge(
            "checkpoint_lag_seconds",
            "How long the oldest entry not yet in a checkpoint has waited (0: none)",
            round(figures.checkpoint_lag, 3),
        )
