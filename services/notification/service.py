"""The ``notification`` service: thin nameko entrypoints over ``domain``, ``store`` and the courier.

Every message first lands in the outbox (keyed by event, recipient and
channel), then one attempt is made at once; a timer retries failed ones with
backoff and parks them after the last retry, for an admin to resend.
"""
import logging
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from shared import events
from shared.audit import audit_entry
from shared.auth import SERVICE_ROLE
from shared.clock import Clock
from shared.entrypoints import Audited, FollowsCampaigns, PingxuanService, rpc
from shared.errors import Forbidden, InvalidState, NotFound, ValidationError
from shared.handlers import handles
from shared.metrics import Metrics
from shared.service_rpc import ServiceRpc
from shared.store import MongoStore
from shared.timeutil import UTC
from shared.validation import load, require_id
from services.notification import domain, schemas
from services.notification.courier import Courier, configured_timer
from services.notification.render import MissingVariables
from services.notification.store import NotificationStore

log = logging.getLogger(__name__)

# Only the store can fail a handler (malformed payloads, unknown campaigns, templates and
# channels are handled and recorded inside it); ``@handles`` retries and parks such an event.
DELIVERY_BUCKETS = (1, 5, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)


def define_metrics(registry):
    return {
        "notifications": Counter(
            "pingxuan_notifications_total",
            "Messages sent, attempts failed and messages parked, by channel",
            ["channel", "outcome"], registry=registry),
        "delivery_seconds": Histogram(
            "pingxuan_notification_delivery_seconds",
            "Time from a message entering the outbox to its delivery", ["channel"],
            registry=registry, buckets=DELIVERY_BUCKETS),
        "queue_age": Gauge(
            "pingxuan_notification_queue_age_seconds",
            "Age of the oldest message waiting to be sent (queued or failed)", registry=registry),
        "outbox": Gauge(
            "pingxuan_notification_messages", "Messages in the outbox by status", ["status"],
            registry=registry),
    }


class NotificationService(Audited, FollowsCampaigns, PingxuanService):
    """Receipts, review results, disqualification notices, one-time codes, judges' messages."""

    name = "notification"

    metrics = Metrics(define=define_metrics)
    store = MongoStore(NotificationStore)
    courier = Courier()
    service_rpc = ServiceRpc()
    now = Clock()

    # --- events of the nomination service ------------------------------------------------------

    @handles(events.NOMINATION, events.NOMINATION_SUBMITTED)
    def on_nomination_submitted(self, payload):
        """The unit's receipt; the contact is kept for the messages that follow."""
        event = self._read(events.NOMINATION_SUBMITTED, payload)
        if event is None:
            return
        waiting = self.store.remember_contact(event["nomination_id"], event["campaign_id"],
                                              event["contact"])
        self._announce(events.NOMINATION_SUBMITTED, event, event["contact"])
        # Waiting events take the contact as kept (an amendment may have come first).
        self._hand_over(event["nomination_id"], waiting, self.store.contact(event["nomination_id"]))

    @handles(events.NOMINATION, events.NOMINATION_REVIEWED)
    def on_nomination_reviewed(self, payload):
        """The review result, to the contact of the submission (waits for it if out of order)."""
        event = self._read(events.NOMINATION_REVIEWED, payload)
        if event is None:
            return
        contact = self.store.await_contact(event["nomination_id"], event["campaign_id"],
                                           events.NOMINATION_REVIEWED, payload, self.now())
        if contact is None:
            log.info("review of %s waits for its submission's contact", event["nomination_id"])
            return
        self._announce(events.NOMINATION_REVIEWED, event, contact)
        self.store.done_waiting(event["nomination_id"], event["event_id"])

    @handles(events.NOMINATION, events.NOMINATION_AMENDED)
    def on_nomination_amended(self, payload):
        """An amended contact is read back from the nomination service (events carry none)."""
        event = self._read(events.NOMINATION_AMENDED, payload)
        if event is None or not set(event["changed_fields"]) & set(domain.CONTACT_FIELDS):
            return
        self._fetch_contact(event["nomination_id"], event["campaign_id"], replace=True)

    @handles(events.NOMINATION, events.CANDIDATE_DISQUALIFIED)
    def on_candidate_disqualified(self, payload):
        """The department's notice: who was disqualified, why, and that the list is revised."""
        event = self._read(events.CANDIDATE_DISQUALIFIED, payload)
        if event is not None:
            self._announce(events.CANDIDATE_DISQUALIFIED, event, None)

    # --- other services' messages --------------------------------------------------------------

    @rpc
    def send_direct(self, kind, recipient, template, params, idempotency_key):
        """A message another service asks for (the voter's one-time code, a judge's link).

        Idempotent on ``idempotency_key``; rate-limited per recipient.
        """
        identity = self.auth.require(SERVICE_ROLE, "admin")
        data = load(schemas.DirectMessage(), {
            "kind": kind, "recipient": recipient, "template": template, "params": params,
            "idempotency_key": idempotency_key}, "message")
        post = self.courier
        settings = post.settings
        try:
            address = domain.normalise_recipient(data["kind"], data["recipient"])
        except domain.BadRecipient as exc:
            raise ValidationError({"recipient": [str(exc)]})
        if data["template"] not in post.templates():
            raise ValidationError({"template": [
                f"no template {data['template']} (known: {', '.join(sorted(post.templates()))})"]})
        message_id = domain.direct_message_key(identity.name, data["idempotency_key"])
        content = domain.fingerprint(settings.hash_key, data["kind"], address, data["template"],
                                     data["params"])
        existing = self.store.get(message_id)
        if existing is not None:
            return domain.direct_reply(domain.resend_of(existing, content))
        try:
            rendered = post.render(data["template"], data["params"])
        except MissingVariables as exc:
            raise ValidationError({f"params.{name}": [f"required by template {exc.template}"]
                                   for name in exc.names})
        now = self.now()
        self._take_direct_slot(settings, address, now)
        channel = settings.direct_channels[data["kind"]]
        message = domain.message_record(
            message_id, source="direct",
            ref=domain.direct_reference(identity.name, data["idempotency_key"]), event_type=None,
            campaign_id=None, template=data["template"], channel=channel, kind=data["kind"],
            recipient=address, rendered=rendered,
            params=domain.sms_params(data["params"], post.variables(data["template"])),
            now=now, hash_key=settings.hash_key, requested_by=identity.name,
            content_fingerprint=content)
        if not self.store.enqueue(message):  # the same key raced this call and won
            return domain.direct_reply(domain.resend_of(self.store.get(message_id), content))
        self._attempt(message_id)
        return domain.direct_reply(self.store.get(message_id))

    # --- the dead letters ----------------------------------------------------------------------

    @rpc
    def parked(self, campaign_id=None):
        """Messages no retry will send (the dead letter), oldest first, addresses masked."""
        self.auth.require("admin")
        query = load(schemas.MessageQuery(), {"campaign_id": campaign_id}, "query")
        return [domain.message_row(message)
                for message in self.store.parked(query["campaign_id"])]

    @rpc
    def resend(self, message_id):
        """Put a parked message back in the queue with a fresh schedule, and try it now."""
        identity = self.auth.require("admin")
        message = self._message(message_id)
        domain.check_resendable(message)
        now = self.now()
        requeued = self.store.requeue(message["_id"], now, identity.name)
        if requeued is None:
            raise InvalidState(f"message {message['_id']} changed meanwhile; read it and retry")
        self.store.audit.append(
            f"resend-{message['_id']}-{requeued['resends']}",
            audit_entry(identity.as_actor(), "resend", "message", message["_id"],
                        message.get("campaign_id"), now,
                        before={"status": message["status"], "attempts": message["attempts"],
                                "last_error": message.get("last_error")},
                        after={"status": domain.QUEUED}))
        self._attempt(message["_id"])
        return domain.message_row(self.store.get(message["_id"]), with_history=True)

    @rpc
    def message(self, message_id):
        """One message and its attempts; a service sees only the messages it asked for."""
        identity = self.auth.require("admin", SERVICE_ROLE)
        message = self._message(message_id)
        if identity.role == SERVICE_ROLE and message.get("requested_by") != identity.name:
            raise Forbidden(f"message {message_id} was not requested by {identity.name}")
        return domain.message_row(message, with_history=True)

    # --- retries -------------------------------------------------------------------------------

    @configured_timer(domain.SWEEP_SECONDS, interval=domain.DEFAULT_SWEEP_SECONDS)
    def retry_due(self):
        """Retry the messages whose backoff has passed; hand over events that waited."""
        settings = self.courier.settings
        for message_id in self.store.due(self.now(), settings.sweep_batch):
            self._attempt(message_id)
        for doc in self.store.waiting_with_contact():
            self._hand_over(doc["_id"], doc["waiting"], doc["contact"])
        for doc in self.store.waiting_without_contact(self.now() - domain.CONTACT_WAIT):
            self._fetch_contact(doc["_id"], doc["campaign_id"])
        now = self.now()
        self.store.forget_old_windows(now)
        self._measure_outbox(now)

    # --- helpers -------------------------------------------------------------------------------

    def _read(self, event_type, payload):
        try:
            return events.read_event(event_type, payload)
        except events.EventSchemaError as exc:
            log.error("ignored a malformed %s event: %s", event_type, exc)
            return None

    def _fetch_contact(self, nomination_id, campaign_id, replace=False):
        """Read a nomination's contact from the nomination service (events carry it only on
        submission); the events waiting for it go out."""
        try:
            record = self.service_rpc("nomination", "get", nomination_id)
        except Exception as exc:  # tried again on the next sweep or event; nothing is lost
            log.warning("cannot read the contact of %s from nomination: %s", nomination_id,
                        type(exc).__name__)
            return
        contact = {key: record.get(key) for key in domain.CONTACT_FIELDS}
        waiting = self.store.remember_contact(nomination_id, campaign_id, contact, replace=replace)
        self._hand_over(nomination_id, waiting, self.store.contact(nomination_id))

    def _campaign(self, campaign_id):
        """The campaign for a message's wording; an unknown one does not stop the message."""
        try:
            return self.campaigns.get(campaign_id)
        except Exception as exc:
            log.warning("campaign %s unknown for a message (%s); its id stands for its name",
                        campaign_id, type(exc).__name__)
            return None

    def _announce(self, event_type, event, contact):
        """Store every message the event's routes ask for, then try each new one once."""
        post = self.courier
        settings = post.settings
        facts = domain.campaign_facts(self._campaign(event["campaign_id"]), event["campaign_id"])
        params = domain.event_params(event_type, event, facts, contact)
        now = self.now()
        created = []
        for delivery in domain.deliveries(settings.routes_for(event_type), contact,
                                          settings.admin_recipients):
            route = delivery.route
            rendered, problem = None, delivery.problem
            try:
                rendered = post.render(route.template, params)
            except MissingVariables as exc:
                problem = problem or f"template {exc.template}: missing {', '.join(exc.names)}"
            message = domain.message_record(
                domain.message_key(event["event_id"], delivery.key_address, route.channel),
                source="event", ref=event["event_id"], event_type=event_type,
                campaign_id=event["campaign_id"], template=route.template, channel=route.channel,
                kind=route.kind, recipient=delivery.address, rendered=rendered,
                params=domain.sms_params(params, post.variables(route.template)), now=now,
                hash_key=settings.hash_key, problem=problem)
            if self.store.enqueue(message):
                if problem:
                    log.warning("message %s parked at once: %s", message["_id"], problem)
                    self.metrics.notifications.labels(route.channel, domain.PARKED).inc()
                else:
                    created.append(message["_id"])
        for message_id in created:
            self._attempt(message_id)

    def _hand_over(self, nomination_id, waiting, contact):
        """Events that waited for the contact (a review before its submission) go out now."""
        for entry in waiting:
            event = self._read(entry["event_type"], entry["payload"])
            if event is not None:
                self._announce(entry["event_type"], event, contact)
                self.store.done_waiting(nomination_id, event["event_id"])

    def _attempt(self, message_id):
        """One attempt, if the message is due and nobody else holds it; its outcome recorded."""
        settings = self.courier.settings
        claimed = self.store.claim(message_id, self.now(), settings.send_lease_seconds)
        if claimed is None:
            return
        outcome = self.courier.deliver(claimed)
        now = self.now()
        after = domain.after_attempt(claimed["attempts"], outcome, now, settings.retry_delays,
                                     claimed["template"])
        erase = domain.must_erase(claimed["template"], after.status)
        if not self.store.record_attempt(claimed, after.status, after.next_attempt_at, outcome,
                                         now, erase=erase):
            log.warning("message %s: lease lost while sending; outcome not recorded", message_id)
            return
        channel = claimed["channel"]
        if outcome.sent:
            self.metrics.notifications.labels(channel, domain.SENT).inc()
            self.metrics.delivery_seconds.labels(channel).observe(
                max((now - claimed["created_at"]).total_seconds(), 0))
            return
        self.metrics.notifications.labels(channel, domain.FAILED).inc()
        if after.status == domain.PARKED:
            self.metrics.notifications.labels(channel, domain.PARKED).inc()
            log.warning("message %s parked after attempt %d: %s", message_id,
                        claimed["attempts"], outcome.error)
        else:
            log.info("message %s attempt %d failed, next at %s: %s", message_id,
                     claimed["attempts"], after.next_attempt_at, outcome.error)

    def _take_direct_slot(self, settings, address, now):
        index, window_end = domain.rate_window(now, settings.direct_window_seconds)
        key = f"{domain.recipient_hash(settings.hash_key, address)}|{index}"
        if not self.store.take_direct_slot(key, settings.direct_limit,
                                           datetime.fromtimestamp(window_end, UTC)):
            raise domain.rate_limited(settings.direct_limit, settings.direct_window_seconds)

    def _message(self, message_id):
        message = self.store.get(require_id(message_id, "message_id"))
        if message is None:
            raise NotFound(f"no message {message_id}")
        return message

    def _measure_outbox(self, now):
        for status, count in self.store.count_by_status().items():
            self.metrics.outbox.labels(status).set(count)
        oldest = self.store.oldest_pending()
        self.metrics.queue_age.set(max((now - oldest).total_seconds(), 0) if oldest else 0)
