"""The voting service's MongoDB repository, in the domain's verbs.

Collections: ``votes`` (append-only; ``_id`` = campaign|voter|candidate|day, the
once-a-day rule as a unique key), ``vote_ids`` (``_id`` = vote_id: what each
vote_id stands for, so a resend is answered as the first time), ``vote_batches``
(the outbox: one document per group commit until its ``vote_cast`` event is
published), ``fraud_ledger`` (refused votes with rule and evidence),
``candidates`` (the ballot, from nomination's events), ``ballot_syncs``,
``one_time_codes`` and ``campaigns`` (kept by the shared ``Campaigns`` provider);
``vote_voids`` (票數清零: one document per void, with its outbox of
``votes_voided``/``votes_restored``), ``publications`` (the lists aggregation
published, from ``list_published``) and ``audit`` (the trail of voids and restores).

The hot path only inserts (``insert_many(ordered=False)``); duplicates are
found from the store's answer, never by a read first.
"""
import threading
from collections import defaultdict, deque
from datetime import timedelta

import bson
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.audit import AuditTrail
from shared.campaigns import CAMPAIGNS_COLLECTION
from shared.outbox import OUTBOX_FIELD, OutboxRelay
from shared.store import Repository
from shared.timeutil import iso

DUPLICATE_KEY = 11000
#: The longest per-IP window a campaign may set (``voting.ip_window_seconds``).
MAX_IP_WINDOW = timedelta(days=1)
#: Times in a packed claim come back aware, in UTC, like every time the store returns.
CLAIM_CODEC = bson.CodecOptions(tz_aware=True)


def _unpacked(claim):
    """A claim with its vote as a document (claims written before packing hold one already)."""
    vote = claim.get("vote")
    if isinstance(vote, bytes):
        claim["vote"] = bson.decode(vote, codec_options=CLAIM_CODEC)
    return claim


def duplicates_of(documents, insert_many):
    """Insert every document; return the indexes of those whose ``_id`` already existed."""
    if not documents:
        return set()
    try:
        insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        other = [error for error in errors if error.get("code") != DUPLICATE_KEY]
        if other:
            raise
        return {error["index"] for error in errors}
    return set()


class StoreActivity:
    """The voters' days and the addresses' recent votes, read from ``votes`` (indexed).

    For a real MongoDB, which several instances of the service share.
    """

    def __init__(self, votes):
        self.votes = votes

    def recent(self, voter_days, ip_slots, since):
        today = defaultdict(set)
        if voter_days:
            for row in self.votes.find({"voter_day": {"$in": sorted(voter_days)}},
                                       {"voter_day": 1, "candidate_id": 1}):
                today[row["voter_day"]].add(row["candidate_id"])
        times = defaultdict(list)
        if ip_slots:
            for row in self.votes.find({"ip_slot": {"$in": sorted(ip_slots)},
                                        "cast_at": {"$gt": since}}, {"ip_slot": 1, "cast_at": 1}):
                times[row["ip_slot"]].append(row["cast_at"])
        return dict(today), dict(times)

    def record(self, records):
        """Nothing to do: the votes are the record."""


class MemoryActivity:
    """The same answers kept beside the embedded store, in this process.

    mongomock scans a whole collection for every query, which a flood of votes
    cannot afford; and the embedded store lives in one process, so an index
    kept here, updated by every insert of the repository, is complete.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.days = defaultdict(lambda: defaultdict(set))  # day -> voter_day -> candidates
        self.times = defaultdict(deque)  # ip_slot -> cast_at, oldest first

    def recent(self, voter_days, ip_slots, since):
        with self.lock:
            today = {}
            for key in voter_days:
                candidates = self.days.get(key.rsplit("|", 1)[1], {}).get(key)
                if candidates:
                    today[key] = set(candidates)
            times = {}
            for slot in ip_slots:
                kept = self.times.get(slot)
                if kept is None:
                    continue
                # A slot belongs to one campaign, and time moves on: older entries are done with.
                while kept and kept[0] <= since:
                    kept.popleft()
                times[slot] = list(kept)
            return today, times

    def record(self, records):
        with self.lock:
            for record in records:
                self.days[record["day"]][record["voter_day"]].add(record["candidate_id"])
                slot = self.times[record["ip_slot"]]
                slot.append(record["cast_at"])
                while slot and slot[0] < record["cast_at"] - MAX_IP_WINDOW:
                    slot.popleft()
            if len(self.days) > 3:  # a voter's day matters only while it lasts
                for day in sorted(self.days)[:-3]:
                    del self.days[day]


class StoreClaims:
    """Which vote_ids may have a claim: on a real MongoDB the ``_id`` index answers cheaply."""

    def may_be_claimed(self, vote_ids):
        return set(vote_ids)

    def add(self, vote_ids):
        """Nothing to do: the claims are the record."""


class MemoryClaims:
    """The vote_ids claimed in an embedded store, kept beside it in this process.

    mongomock reads every document of a collection to find one by ``_id``, so
    asking the store whether a refused vote was a resend would read every claim
    ever made, for each group with one refusal (a duplicate, the daily cap): at
    20,000 stored votes such groups ran eight times slower than the others. Kept
    a superset of what is stored (an id is added before its claim is written):
    a vote_id not here has no claim; one here is read from the store as before.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.vote_ids = set()

    def may_be_claimed(self, vote_ids):
        with self.lock:
            return {vote_id for vote_id in vote_ids if vote_id in self.vote_ids}

    def add(self, vote_ids):
        with self.lock:
            self.vote_ids.update(vote_ids)


_memory = {}
_memory_lock = threading.Lock()


def _is_embedded(db):
    return type(db.client).__module__.startswith("mongomock")


def activity_for(db, votes):
    """Memory beside an embedded store (shared by every repository on it), else the store."""
    if not _is_embedded(db):
        return StoreActivity(votes)
    with _memory_lock:
        return _memory.setdefault((id(db.client), db.name), MemoryActivity())


def claims_for(db):
    """Like :func:`activity_for`, for the claimed vote_ids."""
    if not _is_embedded(db):
        return StoreClaims()
    with _memory_lock:
        return _memory.setdefault((id(db.client), db.name, "claims"), MemoryClaims())


class VotingStore(Repository):
    """Votes, vote ids, the outbox of vote batches, the fraud ledger, the ballot and codes."""

    def __init__(self, db, activity=None, claimed=None):
        super().__init__(db)
        self.votes = db["votes"]
        self.vote_ids = db["vote_ids"]
        self.batches = db["vote_batches"]
        self.ledger = db["fraud_ledger"]
        self.candidates = db["candidates"]
        self.syncs = db["ballot_syncs"]
        self.codes = db["one_time_codes"]
        # Code requests per address and hour (the plain number is never here).
        self.code_requests = db["code_requests"]
        self.campaigns = db[CAMPAIGNS_COLLECTION]
        self.activity = activity or activity_for(db, self.votes)
        self.claimed = claimed or claims_for(db)
        self.voids = db["vote_voids"]
        self.publications = db["publications"]
        self.audit = AuditTrail(db)
        self.void_outbox = OutboxRelay(self.voids, self.audit)

    def ensure_indexes(self):
        # The once-a-day rule and vote_id idempotency are the two _id keys: nothing else
        # is unique, so inserting stays cheap in the embedded store too.
        self.votes.create_index([("voter_day", ASCENDING)])
        self.votes.create_index([("ip_slot", ASCENDING), ("cast_at", ASCENDING)])
        self.votes.create_index([("campaign_id", ASCENDING), ("candidate_id", ASCENDING)])
        self.votes.create_index([("receipt", ASCENDING)])
        self.ledger.create_index([("campaign_id", ASCENDING), ("at", DESCENDING)])
        self.candidates.create_index([("campaign_id", ASCENDING), ("on_ballot", ASCENDING)])
        self.votes.create_index([("void_id", ASCENDING)])
        self.voids.create_index([("campaign_id", ASCENDING), ("key", ASCENDING)])
        self.audit.ensure_indexes()

    # --- casting ---------------------------------------------------------------------------

    def recent_activity(self, voter_days, ip_slots, since):
        """``({voter_day: candidates}, {ip_slot: [cast_at]})`` as stored."""
        return self.activity.recent(voter_days, ip_slots, since)

    def claim_vote_ids(self, claims):
        """Claim each vote_id; returns the vote_ids that were claimed before.

        The claim's copy of the vote is stored as one BSON value: it is read back
        only to repair an interrupted commit, never queried, and a store walks
        one value far faster than the twenty fields of a vote (the embedded store
        inspects every field of every document it inserts).
        """
        packed = [dict(claim, vote=bson.encode(claim["vote"])) for claim in claims]
        self.claimed.add(claim["_id"] for claim in claims)
        taken = duplicates_of(packed, self.vote_ids.insert_many)
        return {claims[index]["_id"] for index in taken}

    def claims(self, vote_ids):
        """``{vote_id: claim}`` of those of ``vote_ids`` that are claimed (``vote`` unpacked)."""
        vote_ids = self.claimed.may_be_claimed(vote_ids)
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
        stored = [record for index, record in enumerate(records) if index not in taken]
        self.activity.record(stored)
        return {records[index]["_id"] for index in taken}

    def votes_by_key(self, keys):
        if not keys:
            return {}
        return {row["_id"]: row for row in self.votes.find({"_id": {"$in": sorted(keys)}})}

    def close_batch(self, batch_id):
        self.batches.delete_one({"_id": batch_id})

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

    def apply_candidate(self, candidate_id, facts, on_ballot, event_id):
        """Apply a nomination event unless a later one was applied (events may come out of order).

        Returns ``False`` for a redelivered or stale event.
        """
        try:
            result = self.candidates.update_one(
                {"_id": candidate_id, "event_id": {"$lt": event_id}},
                {"$set": dict(facts, on_ballot=on_ballot, event_id=event_id)}, upsert=True)
        except DuplicateKeyError:
            return False
        return bool(result.modified_count or result.upserted_id)

    def sync_ballot(self, campaign_id, rows, marker):
        """Catch up with nomination's list of accepted candidates (after a restart).

        Candidates learnt from events keep what the events said; the list adds the
        ones this store missed and takes off those no longer accepted.
        """
        listed = set()
        for row in rows:
            listed.add(row["id"])
            facts = {key: row.get(key) for key in (
                "campaign_id", "category", "org_type", "nominee_name", "nominee_unit",
                "deeds_summary", "unit", "submitted_at", "status")}
            try:
                self.candidates.update_one(
                    {"_id": row["id"], "event_id": {"$lt": marker}},
                    {"$set": dict(facts, on_ballot=True, event_id=marker)}, upsert=True)
            except DuplicateKeyError:
                pass
        self.candidates.update_many(
            {"campaign_id": campaign_id, "on_ballot": True, "_id": {"$nin": sorted(listed)},
             "event_id": {"$lt": marker}},
            {"$set": {"on_ballot": False, "event_id": marker}})
        self.syncs.update_one({"_id": campaign_id}, {"$set": {"marker": marker}}, upsert=True)

    def ballot_synced(self, campaign_id):
        return self.syncs.find_one({"_id": campaign_id}) is not None

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
        row = self.campaigns.find_one({"_id": campaign_id}, {"revision": 1})
        return None if row is None else row.get("revision")

    def known_campaigns(self):
        return [row["document"] for row in self.campaigns.find({}, {"document": 1})]

    # --- one-time codes ------------------------------------------------------------------------

    def code_record(self, otp_key):
        return self.codes.find_one({"_id": otp_key})

    def put_code(self, otp_key, previous, fields):
        """Store a new pending code unless another request changed the record meanwhile."""
        if previous is None:
            try:
                self.codes.insert_one(dict(fields, _id=otp_key))
                return True
            except DuplicateKeyError:
                return False
        result = self.codes.update_one({"_id": otp_key, "sent_at": previous.get("sent_at")},
                                       {"$set": fields})
        return bool(result.modified_count)

    def drop_code(self, otp_key, mac, previous):
        """Undo ``put_code`` after a refused send: the record as it was before the request
        (a refused call changes nothing: no resend wait, no daily send used)."""
        if previous is None:
            self.codes.delete_one({"_id": otp_key, "code_mac": mac})
        else:
            self.codes.replace_one({"_id": otp_key, "code_mac": mac}, previous)

    def take_code_slot(self, slot, limit):
        """Count one code request in ``slot``; ``False`` (and nothing counted) past ``limit``."""
        counted = self.code_requests.find_one_and_update(
            {"_id": slot}, {"$inc": {"requests": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        if counted["requests"] > limit:
            self.release_code_slot(slot)
            return False
        return True

    def release_code_slot(self, slot):
        self.code_requests.update_one({"_id": slot}, {"$inc": {"requests": -1}})

    def use_code(self, otp_key, mac, now):
        """Single use: the one caller whose update matches gets the record; the code is gone."""
        return self.codes.find_one_and_update(
            {"_id": otp_key, "code_mac": mac, "expires_at": {"$gt": now}},
            {"$unset": {"code_mac": "", "mobile": "", "expires_at": ""},
             "$set": {"wrong": 0, "verified_at": now}})

    def wrong_code(self, otp_key, mac, max_wrong, locked_until):
        """Count a wrong code; at ``max_wrong`` the number is locked and the code dropped."""
        record = self.codes.find_one_and_update(
            {"_id": otp_key, "code_mac": mac}, {"$inc": {"wrong": 1}},
            return_document=ReturnDocument.AFTER)
        if record and record.get("wrong", 0) >= max_wrong:
            self.codes.update_one({"_id": otp_key}, {
                "$set": {"locked_until": locked_until, "wrong": 0},
                "$unset": {"code_mac": "", "mobile": "", "expires_at": ""}})
        return record

    def purge_expired_codes(self, now):
        """A plain number is kept only while its code is pending."""
        return self.codes.update_many(
            {"expires_at": {"$lte": now}},
            {"$unset": {"code_mac": "", "mobile": "", "expires_at": ""}}).modified_count

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
