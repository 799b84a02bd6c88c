"""The scoring service's MongoDB repository, in the domain's verbs.

A panel is one document (``_id`` = ``campaign|category``) holding its judges,
every score of its judges and, once closed, the final panel scores. So the
rules that must hold together are single-document conditional updates: a score
is stored only while the panel is open (no score slips in after close), and a
close is stored only if no score arrived since the panel scores were computed.
"""
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from shared.audit import AuditTrail
from shared.ballot import BallotCopy, REJECTED
from shared.campaigns import CAMPAIGNS_COLLECTION
from shared.events import new_event_id
from shared.outbox import OUTBOX_FIELD, OutboxRelay, outbox_entry
from shared.store import Repository
from services.scoring.domain import ACCEPTED, panel_id, score_key

__all__ = ["ScoringStore", "DuplicateKeyError", "audit_only"]

PENDING, SENT, SKIPPED, FAILED = "pending", "sent", "skipped", "failed"


def audit_only(audit, now):
    """An outbox entry that only writes its audit entry (a change no event announces)."""
    return outbox_entry(None, {"event_id": new_event_id()}, audit, now)


def ballot_entry(candidate):
    """What scoring keeps of a candidate (``shared.ballot.Candidate``): what a judge's sheet
    shows and the status that says whether it is scored. A rejected nomination is not kept:
    it never reaches the ballot (``submit`` answers ``NotFound`` for it, as for any id)."""
    if candidate.status == REJECTED:
        return None
    return {"campaign_id": candidate.campaign_id, "category": candidate.category,
            "org_type": candidate.org_type, "nominee_name": candidate.nominee_name,
            "nominee_unit": candidate.nominee_unit, "unit": candidate.unit,
            "deeds_summary": candidate.deeds_summary, "status": candidate.status}


def _publisher(dispatch):
    def publish(event_type, payload):
        if event_type is not None:
            dispatch(event_type, payload)
    return publish


class ScoringStore(Repository):
    """Panels (with their scores), the candidates on the ballot, judge notices, the audit trail."""

    def __init__(self, db):
        super().__init__(db)
        self.panels = db["panels"]
        self.candidates = db["candidates"]
        self.ballot_copy = BallotCopy(db, "candidates", ballot_entry)
        self.notices = db["judge_notices"]
        self.campaigns = db[CAMPAIGNS_COLLECTION]
        self.audit = AuditTrail(db)
        self.panel_outbox = OutboxRelay(self.panels, self.audit)

    def ensure_indexes(self):
        self.panels.create_index([("campaign_id", ASCENDING), ("category", ASCENDING)])
        self.candidates.create_index([("campaign_id", ASCENDING), ("category", ASCENDING),
                                      ("status", ASCENDING)])
        self.notices.create_index([("status", ASCENDING), ("next_at", ASCENDING)])
        self.notices.create_index([("panel_id", ASCENDING), ("judge_id", ASCENDING)])
        self.audit.ensure_indexes()

    # --- panels ----------------------------------------------------------------------------

    def panel(self, campaign_id, category):
        return self.panels.find_one({"_id": panel_id(campaign_id, category)}, {OUTBOX_FIELD: 0})

    def panels_of(self, campaign_id, category=None):
        query = {"campaign_id": campaign_id}
        if category is not None:
            query["category"] = category
        return list(self.panels.find(query, {OUTBOX_FIELD: 0}).sort("_id", ASCENDING))

    def open_panels(self):
        return list(self.panels.find({"closed": False}, {OUTBOX_FIELD: 0}))

    def create_panel(self, campaign_id, category, judges, now, pending):
        """A new panel; ``False`` if another call created it first."""
        try:
            self.panels.insert_one({
                "_id": panel_id(campaign_id, category), "campaign_id": campaign_id,
                "category": category, "judges": judges, "scores": {}, "closed": False,
                "created_at": now, "version": 1, OUTBOX_FIELD: [pending],
            })
        except DuplicateKeyError:
            return False
        return True

    def replace_judges(self, panel, judges, pending):
        """Set the judge list if the panel is open and unchanged since read."""
        done = self.panels.update_one(
            {"_id": panel["_id"], "version": panel["version"], "closed": False},
            {"$set": {"judges": judges}, "$inc": {"version": 1},
             "$push": {OUTBOX_FIELD: pending}})
        return done.modified_count == 1

    def save_score(self, panel, record, previous, pending):
        """Store one judge's score of one candidate, replacing ``previous``.

        Only while the panel is open, the judge is on it, and nothing in the panel changed
        since it was read (``version``: the event's panel scores are computed from that
        read). ``False`` otherwise (nothing stored).
        """
        key = f"scores.{score_key(record['candidate_id'], record['judge_id'])}"
        query = {"_id": panel["_id"], "version": panel["version"], "closed": False,
                 "judges.judge_id": record["judge_id"],
                 f"{key}.revision": previous["revision"] if previous else {"$exists": False}}
        done = self.panels.update_one(query, {
            "$set": {key: record}, "$inc": {"version": 1}, "$push": {OUTBOX_FIELD: pending}})
        return done.modified_count == 1

    def close_panel(self, panel, changes, pending):
        """Close with the panel scores computed from ``panel`` as read (``version``)."""
        done = self.panels.update_one(
            {"_id": panel["_id"], "version": panel["version"], "closed": False},
            {"$set": dict(changes, closed=True), "$inc": {"version": 1},
             "$push": {OUTBOX_FIELD: pending}})
        return done.modified_count == 1

    def record_audit(self, entry):
        """An audit entry of a change no panel write carries (a link sent again)."""
        self.audit.append(new_event_id(), entry)

    def relay_panel_events(self, panel_id_, dispatch):
        return self.panel_outbox.relay(panel_id_, _publisher(dispatch))

    def sweep_outboxes(self, dispatch, now):
        return self.panel_outbox.sweep(_publisher(dispatch), now)

    # --- candidates ------------------------------------------------------------------------

    def candidate(self, candidate_id):
        return self.candidates.find_one({"_id": candidate_id})

    def ballot(self, campaign_id, category):
        """The candidates on the ballot of one category, in a stable order."""
        return list(self.candidates.find(
            {"campaign_id": campaign_id, "category": category, "status": ACCEPTED}
        ).sort([("nominee_name", ASCENDING), ("_id", ASCENDING)]))

    def candidates_by_id(self, ids):
        return {doc["_id"]: doc for doc in self.candidates.find({"_id": {"$in": list(ids)}})}

    # --- judge notices ---------------------------------------------------------------------

    def queue_notice(self, key, notice):
        """Queue a message once: the key is also the notification service's idempotency key.

        ``True`` if this call queued it, ``False`` if the key was already there.
        """
        done = self.notices.update_one({"_id": key}, {"$setOnInsert": dict(
            notice, status=PENDING, attempts=0)}, upsert=True)
        return done.upserted_id is not None

    def notices_of_panel(self, panel_id_, judge_ids=None):
        """Every notice of a panel (or of some of its judges), oldest first."""
        query = {"panel_id": panel_id_}
        if judge_ids is not None:
            query["judge_id"] = {"$in": list(judge_ids)}
        return list(self.notices.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)]))

    def due_notices(self, now, limit=100):
        return list(self.notices.find({"status": PENDING, "next_at": {"$lte": now}})
                    .sort([("next_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))

    def notice(self, key):
        return self.notices.find_one({"_id": key})

    def notice_done(self, key, status, now, detail=None):
        self.notices.update_one({"_id": key}, {"$set": {"status": status, "done_at": now,
                                                         "detail": detail}})

    def notice_retry(self, key, next_at, detail):
        self.notices.update_one({"_id": key}, {"$set": {"next_at": next_at, "detail": detail},
                                               "$inc": {"attempts": 1}})
