"""The notification service's MongoDB repository: the outbox of messages, in the domain's verbs.

A message's ``_id`` is its key (event, recipient, channel), so storing it again
is a no-op: a redelivered event finds its messages already there. Sending is
guarded by a lease taken in one conditional update (status pending, due, not
leased), so two workers or two instances never send one message at once.
"""
import uuid
from datetime import timedelta

from pymongo import ASCENDING, ReturnDocument

from shared.audit import AuditTrail
from shared.store import Repository
from services.notification.domain import HISTORY_LIMIT, PARKED, PENDING, QUEUED, SENT, STATUSES

#: What an erased message (a sent one-time code) loses: the plain address and the text.
ERASED_FIELDS = ("recipient", "subject", "body", "params")


class NotificationStore(Repository):
    """Messages, the units' contacts, direct-message counters and the audit trail."""

    def __init__(self, db):
        super().__init__(db)
        self.messages = db["messages"]
        self.contacts = db["contacts"]
        self.rates = db["direct_rates"]
        self.audit = AuditTrail(db)

    def ensure_indexes(self):
        self.messages.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        self.messages.create_index([("campaign_id", ASCENDING), ("status", ASCENDING)])
        self.audit.ensure_indexes()

    # --- the outbox ------------------------------------------------------------------------

    def enqueue(self, message):
        """Store a new message; ``False`` when a message with its key is already there."""
        result = self.messages.update_one({"_id": message["_id"]}, {"$setOnInsert": message},
                                          upsert=True)
        return result.upserted_id is not None

    def get(self, message_id):
        return self.messages.find_one({"_id": message_id})

    def claim(self, message_id, now, lease_seconds):
        """Take a pending, due, unleased message to send it: the message with its attempt
        counted, or ``None`` when it is not to be sent now (sent, parked, leased, not due)."""
        return self.messages.find_one_and_update(
            {"_id": message_id, "status": {"$in": list(PENDING)},
             "next_attempt_at": {"$lte": now},
             "$or": [{"lease_until": None}, {"lease_until": {"$lte": now}}]},
            {"$set": {"lease_until": now + timedelta(seconds=lease_seconds),
                      "lease": uuid.uuid4().hex, "updated_at": now},
             "$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER)

    def record_attempt(self, claimed, status, next_attempt_at, outcome, now, erase=False):
        """Write the outcome of the attempt made under ``claimed``'s lease."""
        entry = {"attempt": claimed["attempts"], "at": now,
                 "outcome": SENT if outcome.sent else status, "error": outcome.error}
        changes = {"status": status, "next_attempt_at": next_attempt_at, "updated_at": now,
                   "lease_until": None, "lease": None}
        if outcome.sent:
            changes.update(sent_at=now, reference=outcome.reference)
        else:
            changes["last_error"] = outcome.error
        if status == PARKED:
            changes["parked_at"] = now
        update = {"$set": changes,
                  "$push": {"history": {"$each": [entry], "$slice": -HISTORY_LIMIT}}}
        if erase:
            update["$unset"] = {field: "" for field in ERASED_FIELDS}
            changes["erased"] = True
        result = self.messages.update_one({"_id": claimed["_id"], "lease": claimed["lease"]},
                                          update)
        return result.modified_count == 1

    def due(self, now, limit):
        """Ids of pending messages whose time has come, oldest first."""
        rows = self.messages.find(
            {"status": {"$in": list(PENDING)}, "next_attempt_at": {"$lte": now}},
            {"_id": 1}).sort([("next_attempt_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [row["_id"] for row in rows]

    def requeue(self, message_id, now, by):
        """A parked message back in the queue with a fresh schedule; ``None`` if not parked."""
        return self.messages.find_one_and_update(
            {"_id": message_id, "status": PARKED},
            {"$set": {"status": QUEUED, "attempts": 0, "next_attempt_at": now, "updated_at": now,
                      "lease_until": None, "lease": None, "parked_at": None},
             "$inc": {"resends": 1},
             "$push": {"history": {"$each": [{"at": now, "outcome": "resent", "by": by,
                                              "error": None}], "$slice": -HISTORY_LIMIT}}},
            return_document=ReturnDocument.AFTER)

    def parked(self, campaign_id=None, limit=1000):
        query = {"status": PARKED}
        if campaign_id is not None:
            query["campaign_id"] = campaign_id
        return list(self.messages.find(query).sort([("parked_at", ASCENDING), ("_id", ASCENDING)])
                    .limit(limit))

    def oldest_pending(self):
        rows = list(self.messages.find({"status": {"$in": list(PENDING)}}, {"created_at": 1})
                    .sort([("created_at", ASCENDING)]).limit(1))
        return rows[0]["created_at"] if rows else None

    def count_by_status(self):
        return {status: self.messages.count_documents({"status": status}) for status in STATUSES}

    # --- the units' contacts (from nomination_submitted, for later messages) -----------------

    def remember_contact(self, nomination_id, campaign_id, contact, replace=False):
        """Keep a nomination's contact; the events that were waiting for it.

        The first contact seen is kept unless ``replace`` (an amendment read back
        from the nomination service): a redelivered submission must not undo it.
        """
        self.contacts.update_one({"_id": nomination_id},
                                 {"$setOnInsert": {"campaign_id": campaign_id, "waiting": []}},
                                 upsert=True)
        query = {"_id": nomination_id}
        if not replace:
            query["contact"] = {"$exists": False}
        self.contacts.update_one(query, {"$set": {"contact": contact}})
        return self.contacts.find_one({"_id": nomination_id}).get("waiting", [])

    def await_contact(self, nomination_id, campaign_id, event_type, payload, now):
        """Park an event that needs the contact; the contact if it is already known.

        Either this or :meth:`remember_contact` sees both the event and the
        contact, whichever comes second (each is one atomic update then a read).
        """
        doc = self.contacts.find_one_and_update(
            {"_id": nomination_id},
            {"$setOnInsert": {"campaign_id": campaign_id, "waiting_since": now},
             "$push": {"waiting": {"event_type": event_type, "payload": payload}}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return doc.get("contact")

    def done_waiting(self, nomination_id, event_id):
        self.contacts.update_one({"_id": nomination_id},
                                 {"$pull": {"waiting": {"payload.event_id": event_id}}})

    def contact(self, nomination_id):
        doc = self.contacts.find_one({"_id": nomination_id}, {"contact": 1})
        return (doc or {}).get("contact")

    def waiting_with_contact(self, limit=100):
        """Contacts that arrived while events waited for them (a missed hand-over)."""
        return list(self.contacts.find({"contact": {"$exists": True},
                                        "waiting.0": {"$exists": True}}).limit(limit))

    def waiting_without_contact(self, since, limit=100):
        """Events that have waited since before ``since`` for a contact that never came."""
        return list(self.contacts.find({"contact": {"$exists": False},
                                        "waiting.0": {"$exists": True},
                                        "waiting_since": {"$lte": since}}).limit(limit))

    # --- the direct-message limit ------------------------------------------------------------

    def take_direct_slot(self, key, limit, expires_at):
        """Count one message in the recipient's window; ``False`` when the window is full."""
        self.rates.update_one({"_id": key}, {"$setOnInsert": {"sent": 0, "expires_at": expires_at}},
                              upsert=True)
        taken = self.rates.update_one({"_id": key, "sent": {"$lt": limit}}, {"$inc": {"sent": 1}})
        return taken.modified_count == 1

    def forget_old_windows(self, now):
        self.rates.delete_many({"expires_at": {"$lt": now}})
