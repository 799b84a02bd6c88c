"""The one event-handler entrypoint: ``@handles(source, event_type)``, for every event consumed.

nameko 2.14's ``event_handler`` acknowledges a message whose handler raised
(unless ``requeue_on_error``, which puts a poisoned event back at the head of
the queue, forever). Here, each event is applied once, retried and parked:

* **Once.** A handler's ``event_id`` is recorded in the service's own
  ``processed_events`` collection after the handler returned; a redelivered or
  replayed event already recorded there is acknowledged without running it.
  Handlers stay idempotent for the moment between their writes and that record.
  Records are kept a week (``PROCESSED_KEPT``), far beyond any repeat, then removed.
* **Retried, without blocking.** A failed event is published, with confirms,
  to the handler's retry queue (``<queue>.retry``) with a per-message TTL that
  doubles with each attempt; when it expires, RabbitMQ dead-letters it to the
  queue's dead-letter exchange, the service's own ``<service>.retry``, where only
  the handler's queue is bound under its own name. Only then is the original
  acknowledged, so the events behind it go on. (Not the default exchange: write
  on it would let a service publish into any queue, another's RPC queue too.)
* **Parked.** After ``EVENT_HANDLER_ATTEMPTS`` tries the event goes to the
  service's parking queue (``<service>.parked``) with the error, the attempt
  count and its queue in headers, and ``pingxuan_events_total{outcome="parked"}``
  goes up (the ``EventParked`` alert). ``pingxuan events parked`` / ``replay``
  show it and put it back.
* **Never dropped.** If the retry or parking publish is not confirmed (the
  broker or the connection is gone), the original is not acknowledged: the
  broker delivers it again.

The handler's queue keeps nameko's name and arguments, so queues declared by
others (``pingxuan token revoke`` declares every ``on_token_revoked`` queue)
stay the same queues.
"""
import logging
import sys
from datetime import timedelta
from functools import wraps

from kombu import Exchange, Queue
from nameko.amqp.publish import get_connection, get_producer
from nameko.constants import (AMQP_SSL_CONFIG_KEY, DEFAULT_RETRY_POLICY,
                              LOGIN_METHOD_CONFIG_KEY, PERSISTENT)
from nameko.events import EventHandler
from pymongo import ASCENDING

from shared import config as cfg
from shared.timeutil import iso, utcnow

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-pingxuan-attempts"
ERROR_HEADER = "x-pingxuan-error"
QUEUE_HEADER = "x-pingxuan-queue"
HANDLER_HEADER = "x-pingxuan-handler"
PARKED_AT_HEADER = "x-pingxuan-parked-at"

PROCESSED_COLLECTION = "processed_events"

APPLIED, DUPLICATE, RETRIED, PARKED = "applied", "duplicate", "retried", "parked"
OUTCOMES = (APPLIED, DUPLICATE, RETRIED, PARKED)

#: An error text longer than this is cut in the parked message's header.
ERROR_TEXT_LIMIT = 500


def retry_queue_name(queue_name):
    return f"{queue_name}.retry"


def parking_queue_name(service_name):
    return f"{service_name}.parked"


def retry_exchange_name(service_name):
    return f"{service_name}.retry"


def retry_exchange(service_name):
    """The service's direct exchange: each of its queues is bound under its own name."""
    return Exchange(retry_exchange_name(service_name), type="direct", durable=True)


def retry_queue(service_name, queue_name):
    """A queue nobody consumes: each message waits its TTL, then is dead-lettered back."""
    name = retry_queue_name(queue_name)
    return Queue(name, exchange=retry_exchange(service_name), routing_key=name, durable=True,
                 queue_arguments={"x-dead-letter-exchange": retry_exchange_name(service_name),
                                  "x-dead-letter-routing-key": queue_name})


def parking_queue(service_name):
    name = parking_queue_name(service_name)
    return Queue(name, exchange=retry_exchange(service_name), routing_key=name, durable=True)


def retry_delay(attempt, base, cap):
    """Seconds before try ``attempt + 1`` (doubling: base, 2·base, 4·base, …, at most cap)."""
    return min(cap, base * 2 ** (attempt - 1))


def next_step(attempts_made, max_attempts):
    """A failed event is retried until it has been tried ``max_attempts`` times, then parked."""
    return RETRIED if attempts_made < max_attempts else PARKED


def attempts_of(headers):
    try:
        return max(0, int((headers or {}).get(ATTEMPTS_HEADER, 0)))
    except (TypeError, ValueError):
        return 0


def error_text(exc_info):
    kind, value = exc_info[0], exc_info[1]
    return f"{kind.__name__}: {value}"[:ERROR_TEXT_LIMIT]


def event_id_of(payload):
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    return event_id if isinstance(event_id, str) and event_id else None


#: How long a handler remembers an event it applied. A repeat comes within minutes (a
#: redelivery after a crash, the producer's outbox sweep, a retry: ``EVENT_RETRY_MAX_SECONDS``);
#: a week is far beyond any of them, and keeps the collection from growing without bound.
PROCESSED_KEPT = timedelta(days=7)
#: Records older than that are removed at most this often (a removal reads the collection on
#: the embedded store; on MongoDB it uses the ``(handler, at)`` index).
PRUNE_EVERY = timedelta(minutes=10)


class ProcessedEvents:
    """Which events each handler of a service has applied (one document per handler and event),
    for ``PROCESSED_KEPT``: marking an event also removes, now and then, the handler's records
    older than that. (Not a TTL index: on the embedded store mongomock would expire documents
    on every read of the collection.)"""

    def __init__(self, db):
        self.collection = db[PROCESSED_COLLECTION]
        self.pruned_at = {}  # handler -> when its old records were last removed
        self.collection.create_index([("handler", ASCENDING), ("at", ASCENDING)])

    @staticmethod
    def key(handler, event_id):
        return f"{handler}|{event_id}"

    def seen(self, handler, event_id):
        return self.collection.find_one({"_id": self.key(handler, event_id)}, {"_id": 1}) is not None

    def mark(self, handler, event_id, at):
        # An upsert, not an insert: two instances finishing the same event both succeed.
        self.collection.update_one(
            {"_id": self.key(handler, event_id)},
            {"$setOnInsert": {"handler": handler, "event_id": event_id, "at": at}}, upsert=True)
        last = self.pruned_at.get(handler)
        if last is None or at - last >= PRUNE_EVERY or at < last:
            self.pruned_at[handler] = at
            self.collection.delete_many({"handler": handler, "at": {"$lt": at - PROCESSED_KEPT}})


class Delivery:
    """The payload as the entrypoint hands it to the worker, so the worker checks for a repeat."""

    def __init__(self, payload, already_applied):
        self.payload = payload
        self.already_applied = already_applied


#: What a worker returns for an event it found applied already.
SKIPPED_DUPLICATE = object()


class ReliableEventHandler(EventHandler):
    """nameko's ``EventHandler`` (same queue) that de-duplicates, retries, parks and measures."""

    def __init__(self, source_service, event_type, **kwargs):
        # Retrying is this entrypoint's job; nameko's requeue would block the queue.
        kwargs.pop("requeue_on_error", None)
        super().__init__(source_service, event_type, requeue_on_error=False, **kwargs)

    def setup(self):
        super().setup()
        config = self.container.config
        self.max_attempts = cfg.read(config, cfg.EVENT_HANDLER_ATTEMPTS)
        self.retry_base = cfg.read(config, cfg.EVENT_RETRY_SECONDS)
        self.retry_cap = cfg.read(config, cfg.EVENT_RETRY_MAX_SECONDS)
        service_name = self.container.service_name
        self.retry_exchange = retry_exchange(service_name)
        self.retry_queue = retry_queue(service_name, self.queue.name)
        self.parking_queue = parking_queue(service_name)
        self._processed = None
        self._metrics = None
        # Declared now, so a retry published later finds its queue and its way back; the
        # handler's queue itself is declared as nameko declares it (others declare it too).
        with get_connection(self.amqp_uri, self._ssl, self._login_method) as connection:
            channel = connection.default_channel
            self.queue(channel).declare()
            self.retry_exchange(channel).declare()
            channel.queue_bind(self.queue.name, self.retry_exchange.name, self.queue.name)
            self.retry_queue(channel).declare()
            self.parking_queue(channel).declare()

    @property
    def amqp_uri(self):
        return self.container.config[cfg.AMQP_URI]

    @property
    def _ssl(self):
        return self.container.config.get(AMQP_SSL_CONFIG_KEY)

    @property
    def _login_method(self):
        return self.container.config.get(LOGIN_METHOD_CONFIG_KEY)

    # --- the service's store and metrics, found once the container has set them up -----------

    @property
    def processed(self):
        if self._processed is None:
            from shared.store import MongoStore

            for provider in self.container.dependencies:
                if isinstance(provider, MongoStore):
                    self._processed = ProcessedEvents(provider.repository.db)
                    break
        return self._processed

    @property
    def metrics(self):
        if self._metrics is None:
            from shared.metrics import Metrics

            for provider in self.container.dependencies:
                if isinstance(provider, Metrics):
                    self._metrics = provider
                    for outcome in OUTCOMES:  # at 0 from the start, so increase() sees the first
                        provider.events.labels(self.method_name, outcome)
                    break
        return self._metrics

    def start(self):
        self.metrics  # noqa: B018  (creates the series at 0)

    def count(self, outcome):
        if self.metrics is not None:
            self.metrics.events.labels(self.method_name, outcome).inc()

    # --- one message -------------------------------------------------------------------------

    def handle_message(self, body, message):
        event_id = event_id_of(body)
        if event_id is not None and self.processed is not None:
            body = Delivery(body, lambda: self.processed.seen(self.method_name, event_id))
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None and result is not SKIPPED_DUPLICATE:
            payload = worker_ctx.args[0] if worker_ctx.args else None
            if isinstance(payload, Delivery):
                payload = payload.payload
            event_id = event_id_of(payload)
            if event_id is not None and self.processed is not None:
                try:
                    self.processed.mark(self.method_name, event_id, utcnow())
                except Exception:  # the effect is written; a retry re-applies it harmlessly
                    exc_info = sys.exc_info()
        return super().handle_result(message, worker_ctx, result, exc_info)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.count(DUPLICATE if result is SKIPPED_DUPLICATE else APPLIED)
            self.queue_consumer.ack_message(message)
            return
        attempts = attempts_of(message.headers) + 1
        step = next_step(attempts, self.max_attempts)
        try:
            if step == RETRIED:
                self._publish(message, self.retry_queue, {ATTEMPTS_HEADER: attempts},
                              expiration=retry_delay(attempts, self.retry_base, self.retry_cap))
            else:
                self._publish(message, self.parking_queue, {
                    ATTEMPTS_HEADER: attempts, ERROR_HEADER: error_text(exc_info),
                    QUEUE_HEADER: self.queue.name, HANDLER_HEADER: self.method_name,
                    PARKED_AT_HEADER: iso(utcnow())})
        except Exception as exc:
            # Not confirmed: keep the original unacknowledged; the broker delivers it again.
            log.error("%s: event not moved to %s (%s); it goes back to its queue",
                      self.method_name, step, type(exc).__name__)
            self.queue_consumer.requeue_message(message)
            return
        if step == PARKED:
            log.error("%s: event parked after %d attempts: %s", self.method_name, attempts,
                      error_text(exc_info))
        self.count(step)
        self.queue_consumer.ack_message(message)

    def _publish(self, message, queue, headers, expiration=None):
        """Publish the message's body unchanged, and wait for the broker's confirm."""
        merged = dict(message.headers or {})
        merged.update(headers)
        with get_producer(self.amqp_uri, True, self._ssl, self._login_method) as producer:
            producer.publish(
                message.body, exchange=self.retry_exchange, routing_key=queue.name,
                headers=merged, content_type=message.content_type,
                content_encoding=message.content_encoding, delivery_mode=PERSISTENT,
                expiration=expiration, declare=[queue], retry=True,
                retry_policy=DEFAULT_RETRY_POLICY)


def _skips_duplicates(fn):
    """The handler's body runs only for an event its service has not applied yet.

    Called directly (``worker_factory`` tests), it runs on the payload as given.
    """
    @wraps(fn)
    def handler(self, payload, *args, **kwargs):
        if isinstance(payload, Delivery):
            if payload.already_applied():
                return SKIPPED_DUPLICATE
            payload = payload.payload
        return fn(self, payload, *args, **kwargs)
    return handler


def handles(source_service, event_type, **kwargs):
    """``@handles(events.VOTING, events.VOTE_CAST)``: the one way a service consumes an event."""
    entrypoint = ReliableEventHandler.decorator(source_service, event_type, **kwargs)

    def decorate(fn):
        return entrypoint(_skips_duplicates(fn))
    return decorate


# --- the operator's side: what is parked, and putting it back (``pingxuan events``) ---------

#: Headers that describe one stay in the parking queue; a replayed event starts without them.
PARKING_HEADERS = (ATTEMPTS_HEADER, ERROR_HEADER, QUEUE_HEADER, HANDLER_HEADER, PARKED_AT_HEADER)


def parked_record(service_name, message):
    """What an operator needs to know of one parked event (no payload: it may hold contacts)."""
    headers = message.headers or {}
    try:
        payload = message.decode()
    except Exception:  # an undecodable body is still shown, and can still be replayed
        payload = None
    return {"service": service_name, "handler": headers.get(HANDLER_HEADER),
            "queue": headers.get(QUEUE_HEADER), "event_id": event_id_of(payload),
            "attempts": attempts_of(headers), "error": headers.get(ERROR_HEADER),
            "parked_at": headers.get(PARKED_AT_HEADER)}


def origin_queue(service_name, message):
    """The handler's queue a parked message came from, if it is one of ``service_name``'s."""
    queue = (message.headers or {}).get(QUEUE_HEADER)
    if isinstance(queue, str) and queue.startswith("evt-") and f"--{service_name}." in queue:
        return queue
    return None


def take_parked(channel, service_name, limit):
    """Up to ``limit`` parked messages, unacknowledged: what is not acked goes back on close."""
    queue = parking_queue(service_name)(channel)
    queue.declare()
    taken = []
    while len(taken) < limit:
        message = queue.get(no_ack=False)
        if message is None:
            break
        taken.append(message)
    return taken


def replay_parked(producer, service_name, message):
    """Put a parked event back on its handler's queue with a fresh count of tries, confirmed."""
    queue = origin_queue(service_name, message)
    if queue is None:
        raise ValueError(f"parked message of {service_name} names no queue of {service_name}")
    headers = {key: value for key, value in (message.headers or {}).items()
               if key not in PARKING_HEADERS}
    producer.publish(message.body, exchange=retry_exchange(service_name), routing_key=queue,
                     headers=headers,
                     content_type=message.content_type,
                     content_encoding=message.content_encoding, delivery_mode=PERSISTENT,
                     retry=True, retry_policy=DEFAULT_RETRY_POLICY)
    message.ack()
