"""Entrypoint helpers and the base every pingxuan service class extends.

The base gives each service, without repeating it five times: token
verification (``self.auth``), metrics with ``/metrics``, ``health`` over RPC and
HTTP, and recording token revocations announced by the admin CLI.
"""
import ipaddress
import json
import logging

from amqp.exceptions import ConnectionError as AmqpConnectionError
from amqp.exceptions import RecoverableConnectionError
from kombu import Connection
from kombu.exceptions import OperationalError
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from shared import events
from shared.auth import Auth
from shared.campaigns import Campaigns
from shared.errors import EXPECTED
from shared.handlers import handles
from shared.logs import CallIdTracker
from shared.metrics import Metrics
from shared.store import connect, ping, release, store_kind, store_uri
from shared.validation import require_id

log = logging.getLogger(__name__)


#: What a lost broker connection raises while a reply is sent or a request acknowledged.
BROKER_CONNECTION_ERRORS = (OSError, AmqpConnectionError, RecoverableConnectionError,
                            OperationalError)


class ResilientRpc(Rpc):
    """nameko's RPC entrypoint, surviving a broker restart between a call and its reply.

    In nameko 2.14.1 a reply or acknowledgement that fails because the broker
    connection is gone raises in the worker, and the container kills itself:
    one RabbitMQ restart could take a service down. The request was not
    acknowledged, so the broker delivers it again once the consumer reconnects;
    the methods are idempotent (``client_ref``, ``vote_id``) or refuse a repeat
    by state, so logging and going on is right.
    """

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except BROKER_CONNECTION_ERRORS as error:
            log.warning("reply to %s not sent, broker connection lost (%s); the request "
                        "will be delivered again", worker_ctx.call_id, type(error).__name__)
            return result, exc_info


def rpc(fn=None, **kwargs):
    """``@rpc`` that survives a broker restart and whose refusals
    (:class:`shared.errors.PingxuanError`) are expected, not logged as failures."""
    kwargs.setdefault("expected_exceptions", EXPECTED)
    if fn is not None:
        return ResilientRpc.decorator(**kwargs)(fn)
    return ResilientRpc.decorator(**kwargs)


def client_ip(request, trusted_proxies):
    """The connection's address, or the last hop a trusted reverse proxy reports (its
    ``X-Forwarded-For``); a header from anyone else is not believed."""
    address = request.remote_addr or "0.0.0.0"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if address in trusted_proxies and forwarded:
        candidate = forwarded.split(",")[-1].strip()
        try:
            return ipaddress.ip_address(candidate).compressed
        except ValueError:
            pass
    return address


def json_response(body, status=200):
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type="application/json; charset=utf-8")


#: Seconds each readiness check may take (a probe's timeout is a few seconds).
READY_TIMEOUT_SECONDS = 2


class Readiness(DependencyProvider):
    """What ``/health`` and ``/ready`` report: the store kind, and whether MongoDB and
    RabbitMQ answer now.

    Liveness (``/health``) stays cheap and local: a pod whose MongoDB is down is
    not restarted for it, only taken out of the Service's endpoints by readiness.
    """

    def setup(self):
        config = self.container.config
        self.uri = store_uri(config)
        self.amqp_uri = config.get(AMQP_URI_CONFIG_KEY)
        self.kind = store_kind(self.uri)
        self.client = connect(self.uri)

    def stop(self):
        release(self.uri, self.client)

    def kill(self):
        self.stop()

    def checks(self):
        """``{"mongodb": "ok" | reason, "rabbitmq": "ok" | reason}``."""
        return {"mongodb": self._check(self._mongodb), "rabbitmq": self._check(self._rabbitmq)}

    @staticmethod
    def _check(probe):
        try:
            probe()
            return "ok"
        except Exception as exc:  # whatever keeps the dependency from answering
            return f"{type(exc).__name__}: {str(exc)[:200]}"

    def _mongodb(self):
        ping(self.client)

    def _rabbitmq(self):
        with Connection(self.amqp_uri, connect_timeout=READY_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1, timeout=READY_TIMEOUT_SECONDS)

    def get_dependency(self, worker_ctx):
        return self


class PingxuanService:
    """Common entrypoints; subclasses set ``name`` and may pass ``Metrics(define=...)``."""

    name = None
    auth = Auth()
    metrics = Metrics()
    call_ids = CallIdTracker()
    readiness = Readiness()

    @rpc
    def health(self):
        """Answers while the service is up (used by ``pingxuan up`` and probes)."""
        return {"service": self.name, "status": "ok", "store": self.readiness.kind}

    @http("GET", "/health")
    def http_health(self, request):
        """Liveness: the process serves requests (no call to MongoDB or RabbitMQ)."""
        return json_response({"service": self.name, "status": "ok",
                              "store": self.readiness.kind})

    @http("GET", "/ready")
    def http_ready(self, request):
        """Readiness: MongoDB answers a ping and RabbitMQ a connection; else 503."""
        checks = self.readiness.checks()
        ready = all(value == "ok" for value in checks.values())
        return json_response({"service": self.name, "status": "ready" if ready else "not ready",
                              "store": self.readiness.kind, "checks": checks},
                             status=200 if ready else 503)

    @http("GET", "/metrics")
    def http_metrics(self, request):
        return self.metrics.exposition()

    @handles(events.ADMIN, events.TOKEN_REVOKED)
    def on_token_revoked(self, payload):
        event = events.read_event(events.TOKEN_REVOKED, payload)
        self.auth.record_revocation(event["token_id"], event["occurred_at"])


class Audited:
    """Mixin for services whose store keeps an ``audit`` trail (``shared.audit.AuditTrail``)."""

    @rpc
    def audit_trail(self, campaign_id=None, entity_id=None):
        """Every recorded change (who, when, what, before -> after), oldest first; admin only.

        ``campaign_id`` None lists changes of every campaign (and those without one,
        such as direct messages); ``entity_id`` narrows to one record.
        """
        self.auth.require("admin")
        for value, field in ((campaign_id, "campaign_id"), (entity_id, "entity_id")):
            if value is not None:
                require_id(value, field)
        return self.store.audit.read(campaign_id=campaign_id, entity_id=entity_id)


class FollowsCampaigns:
    """Mixin for services other than ``nomination``: keep a copy of every campaign announced.

    Use with ``campaigns = Campaigns()`` on the service.
    """

    campaigns = Campaigns()

    @handles(events.NOMINATION, events.CAMPAIGN_LOADED)
    def on_campaign_loaded(self, payload):
        event = events.read_event(events.CAMPAIGN_LOADED, payload)
        self.campaigns.remember(event["campaign"], event["revision"])
