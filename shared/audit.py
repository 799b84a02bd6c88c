"""The audit trail: every state change (who, when, what, before -> after), append-only."""
from shared.timeutil import iso

AUDIT_COLLECTION = "audit"


def audit_entry(actor, action, entity, entity_id, campaign_id, at, before=None, after=None,
                note=None):
    """One audit record; it is written with the event that announces the change."""
    return {
        "actor": actor, "action": action, "entity": entity, "entity_id": entity_id,
        "campaign_id": campaign_id, "at": at, "before": before, "after": after, "note": note,
    }


class AuditTrail:
    """Insert-only access to the service's ``audit`` collection."""

    def __init__(self, db):
        self.collection = db[AUDIT_COLLECTION]

    def ensure_indexes(self):
        self.collection.create_index([("campaign_id", 1), ("at", 1)])
        self.collection.create_index([("entity_id", 1), ("at", 1)])

    def append(self, audit_id, entry):
        """Append once: the id is the event id, so a replayed outbox entry is not doubled."""
        self.collection.update_one({"_id": audit_id}, {"$setOnInsert": entry}, upsert=True)

    def read(self, campaign_id=None, entity_id=None, limit=1000):
        query = {}
        if campaign_id is not None:
            query["campaign_id"] = campaign_id
        if entity_id is not None:
            query["entity_id"] = entity_id
        rows = self.collection.find(query).sort([("at", 1), ("_id", 1)]).limit(limit)
        return [dict(row, audit_id=row.pop("_id"), at=iso(row["at"])) for row in rows]
