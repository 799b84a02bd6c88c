"""The voting service's MongoDB repository, in the domain's verbs.

Collections: ``votes`` (append-only; ``_id`` = campaign|voter|candidate|day, the
once-a-day rule as a unique key), ``vote_ids`` (``_id`` = vote_id: what each
vote_id stands for, so a resend is answered as the first time), ``vote_batches``
(the outbox: one document per group commit until its ``vote_cast`` event is
published), ``voter_days`` (``_id`` = campaign|voter|day, ``n`` = votes taken
against the daily cap) and ``address_windows`` (``_id`` = campaign|address|window,
``n`` = votes taken against the throttle): counters that a conditional increment
takes, so any number of instances hold the limits exactly;
``fraud_ledger`` (refused votes with rule and evidence),
``candidates`` and ``ballot_syncs`` (the ballot, from nomination's events and list:
``shared/ballot.py``),
``one_time_codes`` and ``campaigns`` (kept by the shared ``Campaigns`` provider);
``vote_voids`` (票數清零: one document per void, with its outbox of
``votes_voided``/``votes_restored``), ``publications`` (the lists aggregation
published, from ``list_published``) and ``audit`` (the trail of voids and restores).

Every read and update of the hot path names ``_id`` (a lookup on both stores,
see ``shared/store.py``); votes and claims are inserted with
``insert_many(ordered=False)`` and duplicates are found from the store's answer.
One implementation for MongoDB and the embedded store: nothing here depends on
which it is.
"""
from collections import defaultdict
from datetime import timedelta

import bson
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from shared.audit import AuditTrail
from shared.ballot import BallotCopy
from shared.campaigns import CAMPAIGNS_COLLECTION
from shared.one_time_codes import OneTimeCodeStore
from shared.outbox import OUTBOX_FIELD, OutboxRelay
from shared.store import Repository, counted, duplicates_of, give_back, take, take_many
from shared.timeutil import iso

#: How long a voter's day counter is kept after it was created (a local day is over by then,
#: in any zone) and an address's window counter after its window ended.
DAY_COUNTER_KEPT = timedelta(days=2)
WINDOW_COUNTER_KEPT = timedelta(hours=1)
#: Counters are pruned at most this often (a prune reads every counter on the embedded store).
PRUNE_EVERY = timedelta(minutes=10)
#: Times in a packed claim come back aware, in UTC, like every time the store returns.
CLAIM_CODEC = bson.CodecOptions(tz_aware=True)


def ballot_entry(candidate):
    """What voting keeps of a candidate (``shared.ballot.Candidate``): the ballot's facts, and
    its status and reason, since a receipt of a vote for a disqualified candidate says so."""
    return {"campaign_id": candidate.campaign_id, "category": candidate.category,
            "org_type": candidate.org_type, "nominee_name": candidate.nominee_name,
            "nominee_unit": candidate.nominee_unit, "deeds_summary": candidate.deeds_summary,
            "unit": candidate.unit, "submitted_at": candidate.submitted_at,
            "status": candidate.status,
            "disqualification_reason": candidate.disqualification_reason,
            "on_ballot": candidate.on_ballot}


def _unpacked(claim):
    """A claim with its vote as a document (claims written before packing hold one already)."""
    vote = claim.get("vote")
    if isinstance(vote, bytes):
        claim["vote"] = bson.decode(vote, codec_options=CLAIM_CODEC)
    return claim


class VotingStore(OneTimeCodeStore, Repository):
    """Votes, vote ids, the outbox of vote batches, the fraud ledger, the ballot and codes."""

    def __init__(self, db):
        super().__init__(db)
        self.votes = db["votes"]
        self.vote_ids = db["vote_ids"]
        self.batches = db["vote_batches"]
        self.ledger = db["fraud_ledger"]
        self.candidates = db["candidates"]
        self.codes = db["one_time_codes"]
        # Code requests per address and hour (the plain number is never here).
        self.code_requests = db["code_requests"]
        self.campaigns = db[CAMPAIGNS_COLLECTION]
        self.ballot_copy = BallotCopy(db, "candidates", ballot_entry)
        self.voter_days = db["voter_days"]
        self.address_windows = db["address_windows"]
        self.pruned_at = None
        self.voids = db["vote_voids"]
        self.publications = db["publications"]
        self.audit = AuditTrail(db)
        self.void_outbox = OutboxRelay(self.voids, self.audit)

    def ensure_indexes(self):
        # The once-a-day rule and vote_id idempotency are the two _id keys: nothing else
        # is unique, so inserting stays cheap in the embedded store too.
        self.votes.create_index([("campaign_id", ASCENDING), ("candidate_id", ASCENDING)])
        self.votes.create_index([("receipt", ASCENDING)])
        self.ledger.create_index([("campaign_id", ASCENDING), ("at", DESCENDING)])
        self.candidates.create_index([("campaign_id", ASCENDING), ("on_ballot", ASCENDING)])
        self.votes.create_index([("void_id", ASCENDING)])
        self.voids.create_index([("campaign_id", ASCENDING), ("key", ASCENDING)])
        self.audit.ensure_indexes()

    # --- casting ---------------------------------------------------------------------------

    def stored_keys(self, keys):
        """Those of the once-a-day ``keys`` (campaign|voter|candidate|day) already voted."""
        if not keys:
            return set()
        return {row["_id"] for row in self.votes.find({"_id": {"$in": sorted(keys)}}, {"_id": 1})}

    def votes_today(self, voter_days):
        """``{voter_day: votes taken against the daily cap}`` (absent: none yet)."""
        return counted(self.voter_days, voter_days)

    def address_votes(self, windows):
        """``{address window: votes taken against the throttle}`` (absent: none yet)."""
        return counted(self.address_windows, windows)

    def take_day(self, voter_day, limit, count, now):
        """Take ``count`` of the voter's ``limit`` votes today; ``False`` (nothing taken) if
        fewer are left. Exact across instances: one conditional update of one counter."""
        return take(self.voter_days, voter_day, limit, count,
                    on_insert={"until": now + DAY_COUNTER_KEPT})

    def take_days(self, wanted, known, now):
        """:meth:`take_day` for many voter-days at once: ``{voter_day: (limit, count)}`` ->
        ``{voter_day: taken?}``; ``known`` are those whose counter existed when read."""
        return take_many(self.voter_days, wanted, known,
                         lambda key: {"until": now + DAY_COUNTER_KEPT})

    def take_windows(self, wanted, known, ends):
        """Like :meth:`take_days`, for address windows (``ends``: ``{window: its end}``)."""
        return take_many(self.address_windows, wanted, known,
                         lambda key: {"until": ends[key] + WINDOW_COUNTER_KEPT})

    def give_back_day(self, voter_day, count=1):
        give_back(self.voter_days, voter_day, count)

    def take_window(self, window, limit, count, window_ends):
        """Like :meth:`take_day`, for an address's votes in one throttle window."""
        return take(self.address_windows, window, limit, count,
                    on_insert={"until": window_ends + WINDOW_COUNTER_KEPT})

    def give_back_window(self, window, count=1):
        give_back(self.address_windows, window, count)

    def prune_counters(self, now):
        """Drop counters of days and windows that are over (at most every ``PRUNE_EVERY``)."""
        if self.pruned_at is not None and now - self.pruned_at < PRUNE_EVERY:
            return 0
        self.pruned_at = now
        return sum(collection.delete_many({"until": {"$lte": now}}).deleted_count
                   for collection in (self.voter_days, self.address_windows, self.code_requests))

    def claim_vote_ids(self, claims):
        """Claim each vote_id; returns the vote_ids that were claimed before.

        The claim's copy of the vote is stored as one BSON value: it is read back
        only to repair an interrupted commit, never queried, and a store walks
        one value far faster than the twenty fields of a vote (the embedded store
        inspects every field of every document it inserts).
        """
        packed = [dict(claim, vote=bson.encode(claim["vote"])) for claim in claims]
        taken = duplicates_of(packed, self.vote_ids.insert_many)
        return {claims[index]["_id"] for index in taken}

    def claims(self, vote_ids):
        """``{vote_id: claim}`` of those of ``vote_ids`` that are claimed (``vote`` unpacked)."""
        if not vote_ids:
            return {}
        return {row["_id"]: _unpacked(row)
                for row in self.vote_ids.find({"_id": {"$in": sorted(vote_ids)}})}

    def open_batch(self, batch_id, records, now):
        """The outbox entry of a group commit, written before its votes."""
        self.batches.insert_one({"_id": batch_id, "keys": [r["_id"] for r in records],
                                 "created_at": now})

    def insert_votes(self, records):
        """Store the votes; returns the keys that were already taken (the once-a-day rule)."""
        taken = duplicates_of(records, self.votes.insert_many)
        return {records[index]["_id"] for index in taken}

    def votes_by_key(self, keys):
        if not keys:
            return {}
        return {row["_id"]: row for row in self.votes.find({"_id": {"$in": sorted(keys)}})}

    def close_batches(self, batch_ids):
        """The outbox entries whose votes were announced."""
        if batch_ids:
            self.batches.delete_many({"_id": {"$in": list(batch_ids)}})

    def stale_batches(self, cutoff):
        return list(self.batches.find({"created_at": {"$lte": cutoff}}).sort("created_at", ASCENDING))

    def votes_of_batch(self, batch):
        """The votes a group commit stored (a crash may have stopped it part-way)."""
        return list(self.votes.find({"_id": {"$in": batch["keys"]}, "batch": batch["_id"]}))

    def record_refusals(self, entries):
        if entries:
            self.ledger.insert_many(entries, ordered=False)

    # --- reading votes ----------------------------------------------------------------------

    def by_receipt(self, receipt):
        return self.votes.find_one({"receipt": receipt})

    def votes_page(self, campaign_id, after, limit):
        """Accepted votes in ``_id`` order, from just after the cursor ``after``."""
        query = {"campaign_id": campaign_id}
        if after:
            query["_id"] = {"$gt": after}
        rows = list(self.votes.find(query, {"vote_id": 1, "candidate_id": 1, "category": 1,
                                            "cast_at": 1, "void_id": 1}
                                    ).sort("_id", ASCENDING).limit(limit))
        return rows

    def count_by_candidate(self, campaign_id):
        counts = defaultdict(int)
        for row in self.votes.find({"campaign_id": campaign_id, "void_id": None},
                                   {"candidate_id": 1, "_id": 0}):
            counts[row["candidate_id"]] += 1
        return dict(counts)

    def ledger_entries(self, campaign_id, rule=None, limit=1000):
        query = {"campaign_id": campaign_id}
        if rule:
            query["rule"] = rule
        rows = self.ledger.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [dict(row, _id=str(row["_id"]), at=iso(row["at"])) for row in rows]

    def count_refusals(self, campaign_id):
        return self.ledger.count_documents({"campaign_id": campaign_id})

    # --- the ballot --------------------------------------------------------------------------

    def ballot(self, campaign_id, category=None):
        query = {"campaign_id": campaign_id, "on_ballot": True}
        if category:
            query["category"] = category
        return list(self.candidates.find(query).sort([("submitted_at", ASCENDING),
                                                      ("_id", ASCENDING)]))

    def ballot_entries(self, candidate_ids):
        """``{candidate_id: entry}`` for those of ``candidate_ids`` that are on a ballot."""
        if not candidate_ids:
            return {}
        return {row["_id"]: row for row in self.candidates.find(
            {"_id": {"$in": sorted(candidate_ids)}, "on_ballot": True})}

    def candidate(self, candidate_id):
        return self.candidates.find_one({"_id": candidate_id})

    def campaign_revision(self, campaign_id):
        """The stored revision of a campaign (``None`` when unknown): tells a kept copy is current."""
        return self.campaign_revisions({campaign_id}).get(campaign_id)

    def campaign_revisions(self, campaign_ids):
        """``{campaign_id: stored revision}`` of those known (one read for a group's campaigns)."""
        return {row["_id"]: row.get("revision") for row in self.campaigns.find(
            {"_id": {"$in": sorted(campaign_ids)}}, {"revision": 1})}

    def known_campaigns(self):
        return [row["document"] for row in self.campaigns.find({}, {"document": 1})]
    # --- voiding votes (票數清零) -------------------------------------------------------------

    def publication(self, campaign_id):
        """The first list aggregation published for the campaign (``None`` before 公示)."""
        return self.publications.find_one({"_id": campaign_id})

    def mark_published(self, campaign_id, revision, at, event_id):
        self.publications.update_one(
            {"_id": campaign_id},
            {"$setOnInsert": {"revision": revision, "at": at, "event_id": event_id}},
            upsert=True)

    def votes_for_void(self, query):
        """The votes a selector's query finds (voided ones too, so unknown ids can be told)."""
        query = {key: value for key, value in query.items() if key != "void_id"}
        return list(self.votes.find(query, {"vote_id": 1, "candidate_id": 1, "category": 1,
                                            "day": 1, "ip_net": 1, "void_id": 1}))

    def counted_votes_seen(self, campaign_id):
        """The counted (not voided) votes with what the suspicion rules read of them."""
        return list(self.votes.find(
            {"campaign_id": campaign_id, "void_id": None},
            {"vote_id": 1, "candidate_id": 1, "cast_at": 1, "ip_net": 1, "user_agent": 1,
             "voter_day": 1}))

    def current_void(self, campaign_id, key):
        """The void of this selector still in force (being applied or applied), if any."""
        return self.voids.find_one({"campaign_id": campaign_id, "key": key,
                                    "state": {"$in": ["voiding", "voided"]}})

    def count_voids(self, campaign_id, key):
        return self.voids.count_documents({"campaign_id": campaign_id, "key": key})

    def create_void(self, document):
        """Write a new void (state ``voiding``); ``False`` if that void_id exists already."""
        try:
            self.voids.insert_one(dict(document, **{OUTBOX_FIELD: []}))
        except DuplicateKeyError:
            return False
        return True

    def find_void(self, void_id):
        return self.voids.find_one({"_id": void_id}, {OUTBOX_FIELD: 0})

    def mark_voided(self, void_id, keys):
        """Each vote is voided by one void at most: a vote another void took stays with it."""
        if keys:
            self.votes.update_many({"_id": {"$in": sorted(keys)}, "void_id": None},
                                   {"$set": {"void_id": void_id}})

    def votes_of_void(self, void_id):
        return list(self.votes.find({"void_id": void_id},
                                    {"vote_id": 1, "candidate_id": 1, "category": 1, "day": 1}))

    def finish_void(self, void_id, changes, pending):
        """The void applied, with its ``votes_voided`` in the outbox (once: from ``voiding``)."""
        done = self.voids.update_one({"_id": void_id, "state": "voiding"},
                                     {"$set": dict(changes, state="voided"),
                                      "$push": {OUTBOX_FIELD: pending}})
        return bool(done.modified_count)

    def drop_void(self, void_id):
        """A void whose votes another void took meanwhile: nothing was voided by it."""
        self.voids.delete_one({"_id": void_id, "state": "voiding"})

    def start_restore(self, void_id, restore, pending):
        """``voided`` → ``restored`` with ``votes_restored`` in the outbox; ``False`` if not voided."""
        done = self.voids.update_one({"_id": void_id, "state": "voided"},
                                     {"$set": {"state": "restored", "restore": restore},
                                      "$push": {OUTBOX_FIELD: pending}})
        return bool(done.modified_count)

    def unmark_voided(self, void_id):
        return self.votes.update_many({"void_id": void_id},
                                      {"$unset": {"void_id": ""}}).modified_count

    def relay_void(self, void_id, dispatch):
        return self.void_outbox.relay(void_id, dispatch)

    def stale_voids(self, cutoff):
        """Voids a crash left half done: still ``voiding``, or with an event not yet relayed."""
        return list(self.voids.find(
            {"$or": [{"state": "voiding", "at": {"$lte": cutoff}},
                     {f"{OUTBOX_FIELD}.created_at": {"$lte": cutoff}}]},
            {"_id": 1, "state": 1, "campaign_id": 1}))

    def voids_of(self, campaign_id):
        return list(self.voids.find({"campaign_id": campaign_id}, {OUTBOX_FIELD: 0})
                    .sort([("at", DESCENDING), ("_id", DESCENDING)]))
