"""The sidecar's Prometheus metrics (``GET /metrics``).

Counters and histograms are updated where things happen (the webhook endpoint, the worker, the
measuring transport under every connector); the inbox's depth and the HTTP clients' retry
counters are read when Prometheus scrapes, so they are never stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ticketwarden.core.http import ClientStats
from ticketwarden.core.inbox import InboxDepth

__all__ = ["CONTENT_TYPE", "MeasuredTransport", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric of one sidecar, in a registry of its own (several sidecars in one test
    process do not share counters)."""

    def __init__(
        self,
        depth: Callable[[], InboxDepth] | None = None,
        http_stats: Callable[[], Mapping[str, ClientStats]] | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks_received = Counter(
            "ticketwarden_webhooks_received",
            "Webhook deliveries accepted and stored (202), by desk.",
            ["desk"],
            registry=r,
        )
        self.webhooks_duplicate = Counter(
            "ticketwarden_webhooks_duplicate",
            "Events of accepted deliveries that were already stored (helpdesk redeliveries).",
            ["desk"],
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "ticketwarden_webhooks_rejected",
            "Webhook deliveries refused with a 4xx, by desk and reason.",
            ["desk", "reason"],
            registry=r,
        )
        self.events_processed = Counter(
            "ticketwarden_events_processed",
            "Inbox events carried out, by desk.",
            ["desk"],
            registry=r,
        )
        self.events_failed = Counter(
            "ticketwarden_events_failed",
            "Attempts at inbox events that failed (retried or dead-lettered), by desk.",
            ["desk"],
            registry=r,
        )
        self.events_dead = Counter(
            "ticketwarden_events_dead_lettered",
            "Inbox events given up after the last attempt, by desk.",
            ["desk"],
            registry=r,
        )
        self.actions = Counter(
            "ticketwarden_actions",
            "Actions carried out on tickets, by desk, rule and outcome.",
            ["desk", "rule", "outcome"],
            registry=r,
        )
        self.webhook_to_action = Histogram(
            "ticketwarden_webhook_to_action_seconds",
            "From a webhook's arrival to its ticket's actions being applied.",
            ["desk"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.helpdesk_latency = Histogram(
            "ticketwarden_helpdesk_request_seconds",
            "Helpdesk API request latency, by desk and status class (2xx, 4xx, 429, 5xx, error).",
            ["desk", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.helpdesk_rate_limited = Counter(
            "ticketwarden_helpdesk_rate_limited",
            "429 responses from the helpdesk, by desk.",
            ["desk"],
            registry=r,
        )
        self.timer_passes = Counter(
            "ticketwarden_scheduler_passes",
            "Scheduler passes (due timers; catch-up through the change feed), by desk and kind.",
            ["desk", "kind"],
            registry=r,
        )
        if depth is not None or http_stats is not None:
            r.register(_LiveCollector(depth, http_stats, wall_clock))

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)

    def transport(self, desk: str, inner: httpx.AsyncBaseTransport) -> MeasuredTransport:
        """``inner`` with this desk's request latencies and 429s recorded."""
        return MeasuredTransport(inner, desk, self)


class _LiveCollector(Collector):
    """Values read at scrape time: the inbox and the HTTP clients' own counters."""

    def __init__(
        self,
        depth: Callable[[], InboxDepth] | None,
        http_stats: Callable[[], Mapping[str, ClientStats]] | None,
        wall_clock: Callable[[], datetime],
    ) -> None:
        self._depth = depth
        self._http_stats = http_stats
        self._wall_clock = wall_clock

    def describe(self) -> Iterable[Metric]:
        """The families without values (so registering reads neither store nor clients)."""
        return self._families(values=False)

    def collect(self) -> Iterable[Metric]:
        return self._families(values=True)

    def _families(self, *, values: bool) -> Iterator[Metric]:
        if self._depth is not None:
            by_status = GaugeMetricFamily(
                "ticketwarden_inbox_depth", "Inbox events by status.", labels=["status"]
            )
            oldest = GaugeMetricFamily(
                "ticketwarden_inbox_oldest_age_seconds",
                "Age of the oldest event not yet carried out (0 when none waits).",
                labels=[],
            )
            if values:
                depth = self._depth()
                by_status.add_metric(["pending"], depth.pending)
                by_status.add_metric(["processing"], depth.processing)
                by_status.add_metric(["dead"], depth.dead)
                age = 0.0
                if depth.oldest_pending is not None:
                    age = max((self._wall_clock() - depth.oldest_pending).total_seconds(), 0.0)
                oldest.add_metric([], age)
            yield by_status
            yield oldest
        if self._http_stats is not None:
            retries = CounterMetricFamily(
                "ticketwarden_helpdesk_retries",
                "Helpdesk API requests retried after an error or 429, by desk.",
                labels=["desk"],
            )
            requests = CounterMetricFamily(
                "ticketwarden_helpdesk_requests",
                "Helpdesk API requests sent (every attempt), by desk.",
                labels=["desk"],
            )
            if values:
                for desk, s in sorted(self._http_stats().items()):
                    retries.add_metric([desk], s.retries)
                    requests.add_metric([desk], s.requests)
            yield retries
            yield requests


class MeasuredTransport(httpx.AsyncBaseTransport):
    """An httpx transport that times every request it carries for :class:`Metrics`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, desk: str, metrics: Metrics) -> None:
        self.inner = inner
        self.desk = desk
        self.metrics = metrics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self.metrics.helpdesk_latency.labels(self.desk, "error").observe(
                time.perf_counter() - started
            )
            raise
        status = response.status_code
        label = "429" if status == 429 else f"{status // 100}xx"
        self.metrics.helpdesk_latency.labels(self.desk, label).observe(
            time.perf_counter() - started
        )
        if status == 429:
            self.metrics.helpdesk_rate_limited.labels(self.desk).inc()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
