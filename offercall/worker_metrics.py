"""The dialer worker's gauges, read from the worker at scrape time: calls in flight, dialers
running and SIP lines in use. Its counters and histograms live where they are counted
(:mod:`outbound.metrics`, :mod:`voice.metrics`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from offercall.worker import Worker


class Lines(Protocol):
    """The SIP stack as far as lines go (:class:`voice.transports.sip.SipStack`)."""

    def calls_in_flight(self) -> int: ...

    @property
    def max_calls(self) -> int: ...


class WorkerCollector(Collector):
    """Yields the worker's gauges (see the module docstring)."""

    def __init__(self, worker: Worker, lines: Lines | None = None) -> None:
        self.worker = worker
        self.lines = lines

    def collect(self) -> Iterator[Metric]:
        running = list(self.worker.dialers().values())  # a copy: the loop may change it meanwhile
        in_flight = GaugeMetricFamily(
            "offercall_calls_in_flight", "Calls this worker has in progress, by kind",
            labels=["kind"])
        in_flight.add_metric(["campaign"], sum(dialer.status.in_flight for dialer in running))
        clicks = self.worker.click_calls
        in_flight.add_metric(["click"], clicks.status()["in_flight"] if clicks is not None else 0)
        yield in_flight
        dialers = GaugeMetricFamily("offercall_dialers_running",
                                    "Campaigns this worker is dialling")
        dialers.add_metric([], len(running))
        yield dialers
        if self.lines is not None:
            used = GaugeMetricFamily(
                "offercall_sip_lines_in_use", "SIP calls (legs) this process holds now")
            used.add_metric([], self.lines.calls_in_flight())
            yield used
            most = GaugeMetricFamily(
                "offercall_sip_lines_max", "SIP calls this process's PJSIP can hold at once")
            most.add_metric([], self.lines.max_calls)
            yield most


def worker_registry(worker: Worker, lines: Lines | None = None) -> CollectorRegistry:
    """A registry with the worker's gauges, to serve beside the default one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(worker, lines))
    return registry
