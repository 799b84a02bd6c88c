"""A transactional outbox without transactions: events ride inside the changed document.

A change and the events announcing it are written in the same single-document
update (``$push`` to the document's ``outbox`` array), which MongoDB and
mongomock both apply atomically. Relaying then writes the audit entry
(idempotent on the event id), publishes the event and pulls it from the array.
A crash between the write and the publish leaves the event in the array; the
periodic sweep republishes it. A crash after the publish and before the pull
publishes it twice, so every consumer de-duplicates on ``event_id``.
"""
from datetime import timedelta

OUTBOX_FIELD = "outbox"


def outbox_entry(event_type, payload, audit, created_at):
    return {
        "event_id": payload["event_id"], "event_type": event_type, "payload": payload,
        "audit": audit, "created_at": created_at,
    }


class OutboxRelay:
    """Publishes the pending events of documents in ``collection``."""

    def __init__(self, collection, audit_trail):
        self.collection = collection
        self.audit_trail = audit_trail

    def relay(self, doc_id, dispatch):
        """Publish every pending event of one document, oldest first."""
        doc = self.collection.find_one({"_id": doc_id}, {OUTBOX_FIELD: 1})
        sent = 0
        for entry in (doc or {}).get(OUTBOX_FIELD, []):
            self._relay_entry(doc_id, entry, dispatch)
            sent += 1
        return sent

    def sweep(self, dispatch, now, grace=timedelta(seconds=5)):
        """Republish events left behind by a crash (older than ``grace``)."""
        cutoff = now - grace
        sent = 0
        for doc in self.collection.find({f"{OUTBOX_FIELD}.0": {"$exists": True}},
                                        {OUTBOX_FIELD: 1}):
            for entry in doc[OUTBOX_FIELD]:
                if entry["created_at"] <= cutoff:
                    self._relay_entry(doc["_id"], entry, dispatch)
                    sent += 1
        return sent

    def _relay_entry(self, doc_id, entry, dispatch):
        if entry.get("audit") is not None:
            self.audit_trail.append(entry["event_id"], entry["audit"])
        dispatch(entry["event_type"], entry["payload"])
        self.collection.update_one(
            {"_id": doc_id}, {"$pull": {OUTBOX_FIELD: {"event_id": entry["event_id"]}}})
