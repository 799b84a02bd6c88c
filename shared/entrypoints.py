"""Entrypoint helpers and the base every pingxuan service class extends.

The base gives each service, without repeating it five times: token
verification (``self.auth``), metrics with ``/metrics``, ``health`` over RPC and
HTTP, and recording token revocations announced by the admin CLI.
"""
import ipaddress
import json
import logging
import sys

import kombu.serialization
from amqp.exceptions import ConnectionError as AmqpConnectionError
from amqp.exceptions import RecoverableConnectionError
from kombu import Connection
from kombu.exceptions import OperationalError
from kombu.pools import producers
from nameko.constants import (AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_RETRY_POLICY,
                              DEFAULT_TRANSPORT_OPTIONS, LOGIN_METHOD_CONFIG_KEY, PERSISTENT)
from nameko.exceptions import UnserializableValueError, serialize
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcConsumer, get_rpc_exchange
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


class ReplyingRpcConsumer(RpcConsumer):
    """nameko's RPC consumer, sending each reply without a publisher confirm, through one
    connection made at setup, serialised once.

    nameko 2.14 waits for the broker to confirm every reply (a round trip per call, and a
    confirm for the broker to send) and builds a kombu ``Connection`` per reply to find its
    producer pool: with the framework's other per-call costs, about a fifth of a one-vote
    ``cast``'s time in the service. The confirm protects nothing a caller relies on: a reply
    goes to the caller's non-durable reply queue, so a broker failing after the confirm loses
    it just as one failing before; the caller's timeout and its repeat of the call (every
    method is idempotent or refuses a repeat by state) cover both. A connection lost while
    the reply is written still raises, and is retried as nameko retries it.
    """

    def setup(self):
        mixed = sorted(entrypoint.method_name for entrypoint in self.container.entrypoints
                       if isinstance(entrypoint, Rpc)
                       and not isinstance(entrypoint.rpc_consumer, ReplyingRpcConsumer))
        if mixed:
            # Both consumers would take calls from the service's one queue, and each answers
            # a method it does not hold with MethodNotFound: half the calls would fail.
            raise TypeError(f"{self.container.service_name}: {', '.join(mixed)} use nameko's "
                            f"own @rpc beside shared.entrypoints.rpc; use one for all")
        super().setup()
        config = self.container.config
        self.exchange = get_rpc_exchange(config)
        self.reply_producers = producers[Connection(
            config[AMQP_URI_CONFIG_KEY],
            transport_options=dict(DEFAULT_TRANSPORT_OPTIONS, confirm_publish=False),
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY))]

    def handle_result(self, message, result, exc_info):
        # What nameko's Responder sends: the reply encoded as the request was, and a result
        # that cannot be encoded replaced by the error saying so.
        serializer = kombu.serialization.registry.type_to_name[
            message.properties["content_type"]]
        error = serialize(exc_info[1]) if exc_info is not None else None
        try:
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": None, "error": serialize(UnserializableValueError(result))},
                serializer)
            result = None
        with self.reply_producers.acquire(block=True) as producer:
            producer.publish(
                body, content_type=content_type, content_encoding=encoding,
                exchange=self.exchange, routing_key=message.properties["reply_to"],
                correlation_id=message.properties.get("correlation_id"),
                delivery_mode=PERSISTENT, retry=True, retry_policy=DEFAULT_RETRY_POLICY)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class ResilientRpc(Rpc):
    """nameko's RPC entrypoint, surviving a broker restart between a call and its reply,
    and replying through :class:`ReplyingRpcConsumer`.

    In nameko 2.14.1 a reply or acknowledgement that fails because the broker
    connection is gone raises in the worker, and the container kills itself:
    one RabbitMQ restart could take a service down. The request was not
    acknowledged, so the broker delivers it again once the consumer reconnects;
    the methods are idempotent (``client_ref``, ``vote_id``) or refuse a repeat
    by state, so logging and going on is right.
    """

    rpc_consumer = ReplyingRpcConsumer()

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
