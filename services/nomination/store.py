"""The nomination service's MongoDB repository, in the domain's verbs."""
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from shared.audit import AuditTrail
from shared.campaigns import CAMPAIGNS_COLLECTION
from shared.outbox import OUTBOX_FIELD, OutboxRelay
from shared.store import Repository

__all__ = ["NominationStore", "DuplicateKeyError"]


class NominationStore(Repository):
    """Nominations, intake slots, campaigns and the audit trail of this service."""

    def __init__(self, db):
        super().__init__(db)
        self.nominations = db["nominations"]
        self.slots = db["intake_slots"]
        self.campaigns = db[CAMPAIGNS_COLLECTION]
        self.audit = AuditTrail(db)
        self.nomination_outbox = OutboxRelay(self.nominations, self.audit)
        self.campaign_outbox = OutboxRelay(self.campaigns, self.audit)
        # Campaigns whose list aggregation finalized (審定), learnt from results_finalized.
        self.finalized = db["finalized_lists"]

    def ensure_indexes(self):
        # submit is idempotent on (unit, client_ref): the store enforces it, not a prior read.
        self.nominations.create_index(
            [("unit", ASCENDING), ("client_ref", ASCENDING)], unique=True,
            name="unit_client_ref_unique")
        self.nominations.create_index([("campaign_id", ASCENDING), ("category", ASCENDING),
                                       ("status", ASCENDING)])
        self.audit.ensure_indexes()

    # --- campaigns -------------------------------------------------------------------------

    def mark_finalized(self, campaign_id, finalized_at, inputs_hash):
        """Idempotent: the event may be redelivered."""
        self.finalized.update_one(
            {"_id": campaign_id},
            {"$setOnInsert": {"finalized_at": finalized_at, "inputs_hash": inputs_hash}},
            upsert=True)

    def is_finalized(self, campaign_id):
        return self.finalized.find_one({"_id": campaign_id}, {"_id": 1}) is not None

    def campaign_record(self, campaign_id):
        return self.campaigns.find_one({"_id": campaign_id}, {OUTBOX_FIELD: 0})

    def save_campaign(self, document, revision, loaded_at, pending):
        """Insert or replace a campaign's definition together with its event."""
        self.campaigns.update_one(
            {"_id": document["id"]},
            {"$set": {"document": document, "revision": revision, "loaded_at": loaded_at},
             "$push": {OUTBOX_FIELD: pending}},
            upsert=True)

    # --- intake slots ----------------------------------------------------------------------

    def claim_slot(self, key, cap, holder, now):
        """Take one of ``cap`` slots for ``holder``; ``False`` when they are all taken.

        One conditional update on one document, so two units racing for the last
        slot cannot both win, with one process or many. ``since.<holder>`` is when
        it was taken: a holder whose nomination never got stored (its worker died
        between claim and insert) is given back by :meth:`release_stale_holders`.
        """
        if cap <= 0:
            return False
        self.slots.update_one({"_id": key}, {"$setOnInsert": {"holders": []}}, upsert=True)
        taken = self.slots.update_one(
            {"_id": key, f"holders.{cap - 1}": {"$exists": False}, "holders": {"$ne": holder}},
            {"$push": {"holders": holder}, "$set": {f"since.{holder}": now}})
        if taken.modified_count:
            return True
        return self.slot_held_by(key, holder)

    def slot_held_by(self, key, holder):
        return self.slots.find_one({"_id": key, "holders": holder}, {"_id": 1}) is not None

    def release_slot(self, key, holder):
        self.slots.update_one({"_id": key}, {"$pull": {"holders": holder},
                                             "$unset": {f"since.{holder}": ""}})

    def slot_holders(self, key):
        doc = self.slots.find_one({"_id": key})
        return list(doc["holders"]) if doc else []

    def slot_claims(self, key):
        """``{holder: when it took the slot}`` (``None`` for holders older than that record)."""
        doc = self.slots.find_one({"_id": key}) or {}
        since = doc.get("since") or {}
        return {holder: since.get(holder) for holder in doc.get("holders", [])}

    def slot_records(self, holders):
        """``{nomination id: {status, slots}}`` of those holders that are stored."""
        if not holders:
            return {}
        return {row["_id"]: row for row in self.nominations.find(
            {"_id": {"$in": sorted(holders)}}, {"status": 1, "slots": 1})}

    def forget_unannounced(self, nomination_id):
        """Take back a nomination just inserted whose slot was lost (its event not yet relayed)."""
        self.nominations.delete_one({"_id": nomination_id, "version": 1})

    # --- nominations -----------------------------------------------------------------------

    def by_client_ref(self, unit, client_ref):
        return self.nominations.find_one({"unit": unit, "client_ref": client_ref})

    def get(self, nomination_id):
        return self.nominations.find_one({"_id": nomination_id})

    def insert(self, record, pending):
        """Store a new nomination with its event; ``DuplicateKeyError`` on a reused client_ref."""
        self.nominations.insert_one(dict(record, **{OUTBOX_FIELD: [pending]}))

    def update(self, record, changes, pending):
        """Apply ``changes`` if nobody changed the record since it was read.

        Returns the updated record, or ``None`` when it changed in between
        (optimistic concurrency on ``version``).
        """
        result = self.nominations.update_one(
            {"_id": record["_id"], "version": record["version"]},
            {"$set": dict(changes, version=record["version"] + 1),
             "$push": {OUTBOX_FIELD: pending}})
        if not result.modified_count:
            return None
        return self.get(record["_id"])

    def find(self, campaign_id, **filters):
        query = {"campaign_id": campaign_id, **filters}
        return list(self.nominations.find(query, {OUTBOX_FIELD: 0}).sort(
            [("submitted_at", ASCENDING), ("_id", ASCENDING)]))

    def count_holding(self, campaign_id, category, statuses, org_type=None):
        query = {"campaign_id": campaign_id, "category": category, "status": {"$in": list(statuses)}}
        if org_type:
            query["org_type"] = org_type
        return self.nominations.count_documents(query)

    # --- events ----------------------------------------------------------------------------

    def relay_nomination_events(self, nomination_id, dispatch):
        return self.nomination_outbox.relay(nomination_id, dispatch)

    def relay_campaign_events(self, campaign_id, dispatch):
        return self.campaign_outbox.relay(campaign_id, dispatch)

    def sweep_outboxes(self, dispatch, now):
        return self.nomination_outbox.sweep(dispatch, now) + self.campaign_outbox.sweep(dispatch, now)

