"""The metrics dependency: one Prometheus registry per service container.

Every entrypoint is timed (RPC and event-handler latency histograms) and every
refusal or failure counted by error type, without the service doing anything.
A service adds its own domain metrics through ``define``. Labels never carry
voter ids, IPs or other high-cardinality values.
"""
import time
import weakref

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest
from werkzeug.wrappers import Response

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    """The registry and the metrics a worker may update."""

    def __init__(self, registry, custom):
        self.registry = registry
        self.__dict__.update(custom)

    def exposition(self):
        """The ``/metrics`` response (an ``@http`` entrypoint must return a ``Response``)."""
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)


class Metrics(DependencyProvider):
    """Times each worker and counts its errors; ``define(registry)`` returns extra metrics."""

    def __init__(self, define=None):
        self.define = define

    def setup(self):
        self.registry = CollectorRegistry()
        self.rpc_seconds = Histogram(
            "pingxuan_rpc_seconds", "RPC handling time", ["method"],
            registry=self.registry, buckets=LATENCY_BUCKETS)
        self.event_seconds = Histogram(
            "pingxuan_event_handler_seconds", "Event handling time", ["handler"],
            registry=self.registry, buckets=LATENCY_BUCKETS)
        self.events = Counter(
            "pingxuan_events_total",
            "Events consumed, by handler and outcome (applied, duplicate, retried, parked)",
            ["handler", "outcome"], registry=self.registry)
        self.errors = Counter(
            "pingxuan_errors_total", "Calls and events that ended in an error, by error type",
            ["entrypoint", "error"], registry=self.registry)
        custom = self.define(self.registry) if self.define else {}
        self.service_metrics = ServiceMetrics(self.registry, custom)
        self.started = weakref.WeakKeyDictionary()

    def get_dependency(self, worker_ctx):
        return self.service_metrics

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        entrypoint = worker_ctx.entrypoint
        name = entrypoint.method_name
        if started is not None:
            elapsed = time.perf_counter() - started
            if isinstance(entrypoint, Rpc):
                self.rpc_seconds.labels(name).observe(elapsed)
            elif isinstance(entrypoint, EventHandler):
                self.event_seconds.labels(name).observe(elapsed)
        if exc_info is not None:
            self.errors.labels(name, exc_info[0].__name__).inc()
