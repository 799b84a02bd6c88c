"""The aggregation service's MongoDB repository, in the domain's verbs.

Collections:

* ``results`` — one document per candidate (``_id`` = candidate id): the
  nomination facts (kept by ``shared/ballot.py``, with its ``ballot_key``), ``votes`` (a counter), ``vote_events`` (the ``vote_cast``
  events already counted into it) and the derived ``vote_score``,
  ``panel_score``, ``composite``, ``rank``, ``pool``, ``status``.
* ``counted_votes`` — one document per counted vote (``_id`` = campaign|vote_id),
  naming the event that counts it.
* ``judge_scores`` — one document per ``score_submitted`` event.
* ``campaign_results`` — per campaign: phase, panels, the published snapshot,
  revisions, the categories awaiting a refresh, and the outbox of our events.
* ``inputs_documents`` — the inputs document of each published revision, as published
  (``_id`` = campaign|revision|inputs hash), kept after later revisions.
* ``objections`` — one document per objection (``_id`` = its receipt number): the objector
  (name; the plain mobile only until the verdict notice is sent, then its keyed hash), the
  grounds, the verdict, the notice's state and the outbox of its events.
* ``objection_codes``, ``objection_code_requests`` — the 公示 page's one-time codes.
* ``vote_voids`` — per void of voting's (票數清零): which of its two events arrived.
* ``rebuild_progress`` — per campaign (``_id`` = campaign id): how far its latest rebuild
  got (votes read, pages, running / done / failed), for ``rebuild_progress``; any
  instance's rebuild writes it, any instance's RPC reads it.
* ``void_marks`` — one document per vote and void in force
  (``_id`` = campaign|vote_id|void_id), completed with the vote's candidate and
  local day once the vote is counted, whichever of the two events came first.

Every write is a single-document atomic update, so a crash between two writes
leaves nothing that a redelivery of the same event does not repair.
"""
import secrets
from collections import defaultdict

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.audit import AuditTrail
from shared.ballot import BELOW_EVERY_KEY, KEY_FIELD, BallotCopy
from shared.campaigns import CAMPAIGNS_COLLECTION
from shared.one_time_codes import OneTimeCodeStore
from shared.outbox import OUTBOX_FIELD, OutboxRelay
from shared.store import Repository, upsert_unless_refused
from shared.timeutil import canonical_time
from services.aggregation import domain

DUPLICATE_KEY = 11000
#: Events noted after publication that are kept for the department (the latest ones).
LATE_EVENTS_KEPT = 500
#: Fields of a results document that are bookkeeping, never part of a reply.
BOOKKEEPING = {"vote_events": 0, KEY_FIELD: 0, "daily": 0}


#: Recent vote_cast event ids kept per candidate (see ``add_votes``).
VOTE_EVENTS_KEPT = 1000


def candidate_entry(candidate):
    """What aggregation keeps of a candidate (``shared.ballot.Candidate``) in its results
    document: the facts a row shows and ranks by (never contact details)."""
    return {"candidate_id": candidate.candidate_id, "campaign_id": candidate.campaign_id,
            "category": candidate.category, "org_type": candidate.org_type,
            "nominee_name": candidate.nominee_name, "nominee_unit": candidate.nominee_unit,
            "submitted_at": canonical_time(candidate.submitted_at),
            "candidate_status": candidate.status,
            "disqualification_reason": candidate.disqualification_reason, "known": True}


class AggregationStore(OneTimeCodeStore, Repository):
    """Results, counted votes, judge scores, campaign state, objections, the 公示 page's
    one-time codes and the audit trail."""

    def __init__(self, db):
        super().__init__(db)
        self.results = db["results"]
        # A vote or a score may come first: its document is then completed with the facts.
        self.ballot_copy = BallotCopy(db, "results", candidate_entry,
                                      on_insert={"votes": 0, "vote_events": []})
        self.counted_votes = db["counted_votes"]
        self.judge_scores = db["judge_scores"]
        self.states = db["campaign_results"]
        self.documents = db["inputs_documents"]
        self.voids = db["vote_voids"]
        self.void_marks = db["void_marks"]
        self.campaigns = db[CAMPAIGNS_COLLECTION]
        self.audit = AuditTrail(db)
        self.outbox = OutboxRelay(self.states, self.audit)
        self.objections = db["objections"]
        self.objection_outbox = OutboxRelay(self.objections, self.audit)
        # The 公示 page's one-time codes (shared/one_time_codes.py): the plain mobile only
        # while a code is pending; requests per address and hour.
        self.codes = db["objection_codes"]
        self.code_requests = db["objection_code_requests"]
        self.rebuilds = db["rebuild_progress"]

    def ensure_indexes(self):
        self.results.create_index([("campaign_id", ASCENDING), ("category", ASCENDING)])
        self.counted_votes.create_index([("campaign_id", ASCENDING),
                                         ("candidate_id", ASCENDING)])
        self.judge_scores.create_index([("campaign_id", ASCENDING)])
        self.objections.create_index([("campaign_id", ASCENDING), ("status", ASCENDING)])
        self.objections.create_index([("notice.status", ASCENDING)])
        self.void_marks.create_index([("campaign_id", ASCENDING)])
        self.void_marks.create_index([("vote_key", ASCENDING)])
        self.void_marks.create_index([("void_id", ASCENDING)])
        self.audit.ensure_indexes()


    # --- candidates --------------------------------------------------------------------------

    def mark_not_a_candidate(self, campaign_id, candidate_id, category):
        """Nomination has no candidate of this id: what votes or scores it holds count for
        nobody (below every key of nomination's, so a nomination event arriving later wins)."""
        self.ballot_copy.write(candidate_id, {
            "candidate_id": candidate_id, "campaign_id": campaign_id, "category": category,
            "candidate_status": domain.NOT_A_CANDIDATE, "known": True}, BELOW_EVERY_KEY)

    def candidate(self, candidate_id):
        return self.results.find_one({"_id": candidate_id}, BOOKKEEPING)

    def candidates(self, campaign_id, category=None):
        query = {"campaign_id": campaign_id}
        if category is not None:
            query["category"] = category
        return list(self.results.find(query, BOOKKEEPING).sort("_id", ASCENDING))

    def votes_held(self, campaign_id):
        """Votes the incremental state counted, voided ones included: what a rebuild reads."""
        return sum(doc.get("votes", 0) for doc in self.results.find(
            {"campaign_id": campaign_id}, {"votes": 1}))

    # --- rebuild progress --------------------------------------------------------------------

    def start_rebuild(self, campaign_id, rebuild_id, votes_expected, at):
        """The campaign's latest rebuild is this one (an older one's progress is replaced)."""
        self.rebuilds.replace_one({"_id": campaign_id}, {
            "_id": campaign_id, "rebuild_id": rebuild_id, "state": "running", "votes_read": 0,
            "pages": 0, "votes_expected": votes_expected, "started_at": at, "updated_at": at,
            "finished_at": None, "error": None}, upsert=True)

    def rebuild_read(self, campaign_id, rebuild_id, votes_read, pages, at):
        """One more page read (only while this rebuild is the campaign's latest)."""
        self.rebuilds.update_one({"_id": campaign_id, "rebuild_id": rebuild_id}, {"$set": {
            "votes_read": votes_read, "pages": pages, "updated_at": at}})

    def finish_rebuild(self, campaign_id, rebuild_id, at, error=None):
        self.rebuilds.update_one({"_id": campaign_id, "rebuild_id": rebuild_id}, {"$set": {
            "state": "failed" if error else "done", "error": error, "updated_at": at,
            "finished_at": at}})

    def rebuild_progress(self, campaign_id):
        return self.rebuilds.find_one({"_id": campaign_id})

    def orphans(self, campaign_id):
        """Votes or scores held for ids that are not known candidates.

        Either the nomination has not arrived (``known`` false; applied when it
        does), or nomination said the id is not a candidate (``not_a_candidate``).
        """
        found = {doc["_id"]: doc for doc in self.results.find(
            {"campaign_id": campaign_id,
             "$or": [{"known": False}, {"candidate_status": domain.NOT_A_CANDIDATE}]},
            BOOKKEEPING)}
        present = {doc["_id"] for doc in self.results.find({"campaign_id": campaign_id},
                                                           {"_id": 1})}
        for record in self.judge_scores.find({"campaign_id": campaign_id},
                                             {"candidate_id": 1, "category": 1}):
            cid = record["candidate_id"]
            if cid not in present and cid not in found:
                found[cid] = {"_id": cid, "campaign_id": campaign_id,
                              "category": record["category"], "votes": 0, "known": False}
        return [found[cid] for cid in sorted(found)]

    # --- votes -------------------------------------------------------------------------------

    def count_votes(self, campaign_id, event_id, votes, day_of=None):
        """Count a ``vote_cast`` batch once per vote and once per event, crash or not.

        1. Each vote is claimed for this event by inserting ``campaign|vote_id``;
           a vote already claimed (by this event before a crash, or by another
           event carrying the same vote) is not claimed again.
        2. The votes this event owns: those it claimed now, and those of the
           already-claimed ones whose claim names this event (read back, so a
           redelivery after a crash finds the same ones). Only already-claimed
           votes are read: the embedded store answers a read by scanning the
           whole collection, which would make each batch cost as much as every
           vote counted so far.
        3. Each candidate's counter moves by its share in one update that also
           records the event id: applying it twice is impossible.

        ``day_of(cast_at)`` gives a vote's local day (the campaign's zone): each
        candidate's counter per day moves in the same update as its total.

        Returns ``(counted, per_candidate)``: the votes this run counted (none of a
        candidate whose counter an earlier run of this event moved already), and the votes
        this event owns per candidate (counted now or by that earlier run).
        """
        day_of = day_of or (lambda cast_at: cast_at[:10])
        batch, seen = [], set()
        for vote in votes:
            vote_key = f"{campaign_id}|{vote['vote_id']}"
            if vote_key in seen:
                continue
            seen.add(vote_key)
            batch.append({"_id": vote_key, "event_id": event_id, "campaign_id": campaign_id,
                          "candidate_id": vote["candidate_id"], "category": vote["category"],
                          "cast_at": vote["cast_at"], "day": day_of(vote["cast_at"])})
        taken = self._claim_votes(batch)
        owned = [vote for index, vote in enumerate(batch) if index not in taken]
        if taken:
            owned.extend(self.counted_votes.find(
                {"_id": {"$in": [batch[index]["_id"] for index in sorted(taken)]},
                 "event_id": event_id},
                {"candidate_id": 1, "category": 1, "day": 1, "cast_at": 1}))
        per_candidate, categories, days = {}, {}, defaultdict(lambda: defaultdict(int))
        for vote in owned:
            per_candidate[vote["candidate_id"]] = per_candidate.get(vote["candidate_id"], 0) + 1
            categories[vote["candidate_id"]] = vote["category"]
            days[vote["candidate_id"]][vote.get("day") or day_of(vote["cast_at"])] += 1
        # Only the counters this run moved are counted: on a re-run after a crash, a counter
        # the first run moved already is not moved again, and not reported again either.
        counted = sum(count for cid, count in per_candidate.items()
                      if self.add_votes(campaign_id, cid, categories[cid], event_id, count,
                                        days[cid]))
        self.complete_marks(campaign_id, batch)
        return counted, per_candidate

    def _claim_votes(self, batch):
        """Insert the claims; returns the indexes in ``batch`` of those claimed before."""
        if not batch:
            return set()
        try:
            self.counted_votes.insert_many(batch, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            others = [error for error in errors if error.get("code") != DUPLICATE_KEY]
            if others:
                raise
            return {error["index"] for error in errors}
        return set()

    def add_votes(self, campaign_id, candidate_id, category, event_id, count, days=None):
        """``votes += count`` (and each local day's count) unless this event was already
        counted for this candidate."""
        increments = {"votes": count}
        for day, n in (days or {}).items():
            increments[f"daily.{day}"] = n
        # Refused: counted before a crash or by a redelivery. Another writer (another
        # instance's votes, the candidate's nomination facts) may create the document
        # meanwhile (upsert_unless_refused).
        return upsert_unless_refused(
            self.results, {"_id": candidate_id, "vote_events": {"$ne": event_id}},
            # Only a redelivery after a crash before the entrypoint's processed_events
            # record needs this list (recorded events are refused before the handler), so
            # the recent ones suffice and the document stays small.
            {"$inc": increments,
             "$push": {"vote_events": {"$each": [event_id], "$slice": -VOTE_EVENTS_KEPT}}},
            {"campaign_id": campaign_id, "category": category, "known": False})

    def votes_recounted(self, campaign_id):
        """Votes per candidate counted from ``counted_votes`` (a check of the counters)."""
        counts = {}
        for vote in self.counted_votes.find({"campaign_id": campaign_id}, {"candidate_id": 1}):
            counts[vote["candidate_id"]] = counts.get(vote["candidate_id"], 0) + 1
        return counts

    # --- voided votes (票數清零) -------------------------------------------------------------
    #
    # A vote is voided while a mark of a void in force names it. Marks are kept
    # apart from the counters: ``votes_voided`` may come before the ``vote_cast``
    # of its votes, and ``votes_restored`` before its ``votes_voided`` (they travel
    # on separate queues). Each side writes its own fact first and then reads the
    # other's, so whichever comes second completes the picture; every step is
    # idempotent, so a redelivery after a crash repairs a half-applied event.

    def apply_void(self, campaign_id, void_id, vote_ids, event_id):
        """Mark the void's votes (unless its restore came first); returns the marks made."""
        self.voids.update_one({"_id": void_id},
                              {"$set": {"campaign_id": campaign_id, "voided_event": event_id}},
                              upsert=True)
        if self._restored(void_id):
            return 0
        keys = [f"{campaign_id}|{vote_id}" for vote_id in sorted(set(vote_ids))]
        marks = [{"_id": f"{key}|{void_id}", "campaign_id": campaign_id, "vote_key": key,
                  "void_id": void_id} for key in keys]
        self._insert_new(self.void_marks, marks)
        counted = list(self.counted_votes.find({"_id": {"$in": keys}},
                                               {"candidate_id": 1, "category": 1, "day": 1,
                                                "cast_at": 1}))
        self._complete(campaign_id, counted, void_id)
        if self._restored(void_id):  # the restore ran meanwhile: its delete may have missed these
            self.void_marks.delete_many({"void_id": void_id})
        return len(marks)

    def apply_restore(self, campaign_id, void_id, event_id):
        """The void's votes count again (also when its ``votes_voided`` comes later)."""
        self.voids.update_one({"_id": void_id},
                              {"$set": {"campaign_id": campaign_id, "restored_event": event_id}},
                              upsert=True)
        return self.void_marks.delete_many({"void_id": void_id}).deleted_count

    def _restored(self, void_id):
        doc = self.voids.find_one({"_id": void_id}, {"restored_event": 1})
        return bool(doc and doc.get("restored_event"))

    def complete_marks(self, campaign_id, batch):
        """Votes just counted that a void named before they arrived: complete their marks."""
        if not batch or self.void_marks.find_one({"campaign_id": campaign_id}, {"_id": 1}) is None:
            return
        self._complete(campaign_id, batch)

    def _complete(self, campaign_id, counted, void_id=None):
        by_key = {vote["_id"]: vote for vote in counted}
        query = {"vote_key": {"$in": sorted(by_key)}, "candidate_id": {"$exists": False}}
        if void_id is not None:
            query["void_id"] = void_id
        for mark in self.void_marks.find(query, {"vote_key": 1}):
            vote = by_key[mark["vote_key"]]
            self.void_marks.update_one(
                {"_id": mark["_id"]},
                {"$set": {"candidate_id": vote["candidate_id"], "category": vote["category"],
                          "day": vote.get("day") or vote["cast_at"][:10]}})

    def _insert_new(self, collection, documents):
        if not documents:
            return
        try:
            collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    def voided_daily(self, campaign_id):
        """``{(candidate_id, day): voided}`` over counted votes (a vote voided twice counts once)."""
        seen, counts = set(), defaultdict(int)
        for mark in self.void_marks.find({"campaign_id": campaign_id,
                                          "candidate_id": {"$exists": True}},
                                         {"vote_key": 1, "candidate_id": 1, "day": 1}):
            if mark["vote_key"] in seen:
                continue
            seen.add(mark["vote_key"])
            counts[mark["candidate_id"], mark["day"]] += 1
        return dict(counts)

    def voided_by_candidate(self, campaign_id):
        counts = defaultdict(int)
        for (cid, _), n in self.voided_daily(campaign_id).items():
            counts[cid] += n
        return dict(counts)

    def daily_votes(self, campaign_id):
        """Per candidate and local day (campaign zone): ``counted`` (in the results) and
        ``voided`` votes, ``[{"candidate_id", "day", "counted", "voided"}]`` sorted."""
        voided = self.voided_daily(campaign_id)
        rows = []
        for doc in self.results.find({"campaign_id": campaign_id},
                                     {"daily": 1, "known": 1, "candidate_status": 1}):
            if not doc.get("known") or doc.get("candidate_status") not in domain.CANDIDATE_STATES:
                continue
            for day, cast in sorted((doc.get("daily") or {}).items()):
                off = voided.get((doc["_id"], day), 0)
                rows.append({"candidate_id": doc["_id"], "day": day, "counted": cast - off,
                             "voided": off})
        return sorted(rows, key=lambda row: (row["candidate_id"], row["day"]))

    # --- judge scores ------------------------------------------------------------------------

    def record_score(self, campaign_id, event_id, score, key):
        """One document per ``score_submitted``; the latest before the close counts. It keeps
        scoring's provisional panel scores the event carried, when it carried them."""
        self.judge_scores.update_one(
            {"_id": event_id},
            {"$setOnInsert": {"campaign_id": campaign_id, "candidate_id": score["candidate_id"],
                              "category": score["category"], "judge_id": score["judge_id"],
                              "total": score["total"], "scores": score["scores"],
                              "order_key": key, "panel_scores": score.get("panel_scores"),
                              "panel_version": score.get("panel_version")}},
            upsert=True)

    def score_records(self, campaign_id):
        return list(self.judge_scores.find({"campaign_id": campaign_id}))

    # --- inputs documents --------------------------------------------------------------------

    def judge_label_key(self, campaign_id):
        """The campaign's secret for anonymous judge labels (made once, never replied)."""
        self.state(campaign_id)
        self.states.update_one({"_id": campaign_id, "judge_label_key": {"$exists": False}},
                               {"$set": {"judge_label_key": secrets.token_hex(16)}})
        return self.states.find_one({"_id": campaign_id}, {"judge_label_key": 1})["judge_label_key"]

    def save_inputs_document(self, campaign_id, revision, digest, document_json):
        """Keep a revision's inputs document as published (before its revision is recorded:
        a document whose revision never got recorded is never read)."""
        self.documents.update_one(
            {"_id": f"{campaign_id}|{revision}|{digest}"},
            {"$setOnInsert": {"campaign_id": campaign_id, "revision": revision,
                              "inputs_hash": digest, "document_json": document_json}},
            upsert=True)

    def inputs_document(self, campaign_id, revision, digest):
        found = self.documents.find_one({"_id": f"{campaign_id}|{revision}|{digest}"})
        return None if found is None else found["document_json"]

    # --- campaign state ----------------------------------------------------------------------

    def state(self, campaign_id):
        """The campaign's results state (created on first use)."""
        state = self.states.find_one({"_id": campaign_id}, {OUTBOX_FIELD: 0})
        if state is not None:
            return state
        self.states.update_one(
            {"_id": campaign_id},
            {"$setOnInsert": {"phase": domain.OPEN, "revision": 0, "panels": {}, "dirty": [],
                              "revisions": [], "late_events": [], OUTBOX_FIELD: []}},
            upsert=True)
        return self.states.find_one({"_id": campaign_id}, {OUTBOX_FIELD: 0})

    def close_panel(self, campaign_id, category, panel):
        """Record a category's final panel scores; the first close stands (``False`` after it)."""
        self.state(campaign_id)
        done = self.states.update_one(
            {"_id": campaign_id, f"panels.{category}": {"$exists": False}},
            {"$set": {f"panels.{category}": panel}})
        return bool(done.modified_count)

    def mark_dirty(self, campaign_id, categories):
        """Categories whose derived fields and ``results_updated`` are due at the next refresh."""
        if categories:
            self.state(campaign_id)
            self.states.update_one({"_id": campaign_id},
                                   {"$addToSet": {"dirty": {"$each": sorted(categories)}}})

    def dirty_campaigns(self):
        return [doc["_id"] for doc in self.states.find({"dirty.0": {"$exists": True}}, {"_id": 1})]

    def take_dirty(self, campaign_id, category, pending):
        """Take a category off the refresh list together with its ``results_updated`` event."""
        done = self.states.update_one(
            {"_id": campaign_id, "dirty": category},
            {"$pull": {"dirty": category}, "$push": {OUTBOX_FIELD: pending}})
        return bool(done.modified_count)

    def save_derived(self, rows):
        """Write the derived fields of each row whose stored values differ."""
        fields = ("vote_score", "panel_score", "composite", "rank", "pool", "pool_rank", "status")
        ids = [row["candidate_id"] for row in rows]
        stored = {doc["_id"]: doc for doc in self.results.find(
            {"_id": {"$in": ids}}, {name: 1 for name in fields})}
        written = 0
        for row in rows:
            changes = {name: row.get(name) for name in fields}
            current = stored.get(row["candidate_id"], {})
            if any(current.get(name) != value for name, value in changes.items()):
                self.results.update_one({"_id": row["candidate_id"]}, {"$set": changes})
                written += 1
        return written

    def publish(self, campaign_id, published, revision_entry, pending):
        """公示: store the snapshot and revision 1 with ``list_published``, once."""
        self.state(campaign_id)
        done = self.states.update_one(
            {"_id": campaign_id, "phase": domain.OPEN},
            {"$set": {"phase": domain.PUBLISHED, "revision": revision_entry["revision"],
                      "published": published, "current": revision_entry},
             "$push": {"revisions": revision_entry, OUTBOX_FIELD: pending}})
        return bool(done.modified_count)

    def revise(self, campaign_id, expected_revision, revision_entry, pending):
        """A revised list (another 公示) if nobody revised it since ``expected_revision``."""
        done = self.states.update_one(
            {"_id": campaign_id, "phase": domain.PUBLISHED, "revision": expected_revision},
            {"$set": {"revision": revision_entry["revision"], "current": revision_entry},
             "$push": {"revisions": revision_entry, OUTBOX_FIELD: pending}})
        return bool(done.modified_count)

    def finalize(self, campaign_id, finalized, pending):
        done = self.states.update_one(
            {"_id": campaign_id, "phase": domain.PUBLISHED},
            {"$set": {"phase": domain.FINALIZED, "finalized": finalized},
             "$push": {OUTBOX_FIELD: pending}})
        return bool(done.modified_count)

    def note_late_event(self, campaign_id, note):
        """An event after publication: kept for the department; it changes no list."""
        self.states.update_one(
            {"_id": campaign_id, "late_events.event_id": {"$ne": note["event_id"]}},
            {"$push": {"late_events": {"$each": [note], "$slice": -LATE_EVENTS_KEPT}}})

    # --- our events --------------------------------------------------------------------------

    def relay_events(self, campaign_id, dispatch):
        return self.outbox.relay(campaign_id, dispatch)

    def sweep_outbox(self, dispatch, now):
        return (self.outbox.sweep(dispatch, now)
                + self.objection_outbox.sweep(dispatch, now))

    # --- objections (異議) -------------------------------------------------------------------

    def lodge_objection(self, record, pending):
        """Store a new objection with its ``objection_received``; ``False`` if it exists."""
        try:
            self.objections.insert_one(dict(record, **{OUTBOX_FIELD: [pending]}))
        except DuplicateKeyError:
            return False
        return True

    def objection(self, objection_id):
        return self.objections.find_one({"_id": objection_id}, {OUTBOX_FIELD: 0})

    def objections_of(self, campaign_id, status=None):
        query = {"campaign_id": campaign_id}
        if status is not None:
            query["status"] = status
        return list(self.objections.find(query, {OUTBOX_FIELD: 0})
                    .sort([("received_at", ASCENDING), ("_id", ASCENDING)]))

    def open_objections(self, campaign_id):
        return self.objections.count_documents({"campaign_id": campaign_id,
                                                "status": "received"})

    def resolve_objection(self, objection_id, changes, pending):
        """Record the verdict once (only a ``received`` objection); ``False`` otherwise."""
        done = self.objections.update_one(
            {"_id": objection_id, "status": "received"},
            {"$set": changes, "$push": {OUTBOX_FIELD: pending}})
        return bool(done.modified_count)

    def relay_objection_events(self, objection_id, dispatch):
        return self.objection_outbox.relay(objection_id, dispatch)

    def notice_sent(self, objection_id, mobile_hash, at):
        """The verdict notice is with notification: from now on only the mobile's hash."""
        self.objections.update_one(
            {"_id": objection_id},
            {"$set": {"notice.status": "sent", "notice.sent_at": at,
                      "objector.mobile_hash": mobile_hash},
             "$unset": {"objector.mobile": ""}})

    def notice_failed(self, objection_id, error, at):
        self.objections.update_one(
            {"_id": objection_id},
            {"$set": {"notice.last_error": error, "notice.tried_at": at},
             "$inc": {"notice.attempts": 1}})

    def notices_due(self, max_attempts):
        return list(self.objections.find(
            {"notice.status": "pending", "notice.attempts": {"$lt": max_attempts}},
            {OUTBOX_FIELD: 0}))

    # --- the live inputs ---------------------------------------------------------------------

    def live_inputs(self, campaign_id, state=None):
        """The ``live`` mapping of :mod:`domain` from the incremental state."""
        state = state or self.state(campaign_id)
        panels = state.get("panels") or {}
        candidates, votes, voided = {}, {}, {}
        off = self.voided_by_candidate(campaign_id)
        for doc in self.candidates(campaign_id):
            if not doc.get("known") or doc.get("candidate_status") not in domain.CANDIDATE_STATES:
                continue
            candidates[doc["_id"]] = {
                "candidate_id": doc["_id"], "category": doc["category"],
                "org_type": doc.get("org_type"), "nominee_name": doc.get("nominee_name"),
                "nominee_unit": doc.get("nominee_unit"), "submitted_at": doc["submitted_at"],
                "status": doc["candidate_status"],
                "disqualification_reason": doc.get("disqualification_reason")}
            # Voided votes leave the count (CONTRACT.md) and are shown beside it.
            voided[doc["_id"]] = off.get(doc["_id"], 0)
            votes[doc["_id"]] = doc.get("votes", 0) - voided[doc["_id"]]
        records = self.score_records(campaign_id)
        criterion_scores = domain.current_judge_scores(records, panels, "scores")
        provisional = domain.provisional_panel_scores(records, panels)
        return {
            "candidates": candidates, "votes": votes, "voided": voided,
            "criterion_scores": {cid: scores for cid, scores in criterion_scores.items()
                                 if cid in candidates},
            "panels": dict(
                {category: {"closed": False, "panel_scores": scores}
                 for category, scores in provisional.items()},
                **{category: {"closed": True, "closed_key": panel["closed_key"],
                              "method": panel.get("method"),
                              "panel_scores": dict(panel.get("panel_scores") or [])}
                   for category, panel in panels.items()}),
        }
