"""The candidates as voting, scoring and aggregation each keep them, from nomination.

Each of the three keeps its own copy of the ballot in its own database, learnt
from nomination's events (``nomination_reviewed``, ``nomination_withdrawn``,
``candidate_disqualified``) and caught up from ``nomination.list``. This module
is the one way to do both: :func:`candidate_of_event` and
:func:`candidate_of_record` read either source into a :class:`Candidate`, and a
:class:`BallotCopy` applies it to the service's collection through the
service's own projection (the fields that service keeps).

**The ordering rule.** A nomination moves forward only: ``submitted`` →
``accepted`` or ``rejected`` (review, once) → ``withdrawn`` or ``disqualified``
(final; nothing leaves them, nothing puts a candidate back). So each state has
a stage (1: reviewed, 2: off the ballot for good), and a candidate's stored
state is the one with the greatest key ``stage|occurred_at|event_id``
(``occurred_at`` at fixed width; a ``nomination.list`` row counts as of its
``updated_at`` with an empty event id). Taking the greatest key is
commutative, associative and idempotent, so a candidate's state is a function
of the set of events and rows seen: duplicates, redeliveries, retries that
arrive after later events, and a catch-up interleaved with events in any
order all give the same ballot. Within one stage the key only picks between
two descriptions of the same state (an event and a row of the same review).
The stage comes first so that a withdrawal wins even when the clock of the
nomination instance that made it ran behind the one that made the review.
A document stored before this rule (no ``ballot_key``) takes the next event or
row; ``@handles`` already keeps an applied event from being applied again.

**Catching up.** A copy catches up with ``nomination.list(campaign_id)`` (every
nomination of the campaign; those not yet reviewed are skipped) once per
campaign and store (recorded in ``ballot_syncs``), on first use and, while it
fails, again at most every :data:`CATCH_UP_RETRY_SECONDS` (a timer of each
service also catches up the campaigns it knows and has not caught up yet).
A decision that must see every candidate (closing a panel, publishing)
catches up again there and then. Events keep the copy current
in between: they are never lost (durable queues), so the catch-up is for a
store that forgot (the embedded store restarted) or a service deployed late.
"""
import logging
import threading
import time
from dataclasses import dataclass

from nameko.timer import timer

from shared.campaigns import CAMPAIGNS_COLLECTION
from shared.store import upsert_unless_refused
from shared.timeutil import canonical_time, iso, parse_iso

log = logging.getLogger(__name__)

ACCEPTED, REJECTED, WITHDRAWN, DISQUALIFIED = "accepted", "rejected", "withdrawn", "disqualified"
#: How far along its life a nomination in each state is; it only ever moves to a later stage.
STAGES = {ACCEPTED: 1, REJECTED: 1, WITHDRAWN: 2, DISQUALIFIED: 2}
#: The stored field holding the key of the state a candidate document shows.
KEY_FIELD = "ballot_key"
#: A key below every event's and row's: what a service writes on its own (aggregation's
#: "not a candidate") gives way to anything nomination says.
BELOW_EVERY_KEY = ""
#: Per campaign: this store caught up with nomination once (events keep it current since).
SYNCS_COLLECTION = "ballot_syncs"
#: A catch-up that failed (nomination unreachable) is tried again after this long.
CATCH_UP_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Candidate:
    """A nomination as the ballot sees it (never contact details), with its ordering key;
    ``submitted_at`` is ISO text in the one form of :func:`shared.timeutil.iso`."""

    candidate_id: str
    campaign_id: str
    category: str
    org_type: str
    nominee_name: str
    nominee_unit: str
    unit: str
    deeds_summary: str
    submitted_at: str
    status: str
    disqualification_reason: str
    key: str

    @property
    def on_ballot(self):
        return self.status == ACCEPTED


def ordering_key(status, occurred_at, event_id):
    return f"{STAGES[status]}|{canonical_time(occurred_at)}|{event_id}"


def candidate_of_event(event):
    """The candidate a nomination event (read through its schema) describes, or ``None``
    for a state that is not the ballot's (a nomination still ``submitted``)."""
    status = event["status"]
    if status not in STAGES:
        return None
    return Candidate(
        candidate_id=event["nomination_id"], campaign_id=event["campaign_id"],
        category=event["category"], org_type=event.get("org_type"),
        nominee_name=event["nominee_name"], nominee_unit=event.get("nominee_unit"),
        unit=event.get("unit"), deeds_summary=event.get("deeds_summary"),
        submitted_at=iso(parse_iso(event["submitted_at"])), status=status,
        disqualification_reason=event.get("reason") if status == DISQUALIFIED else None,
        key=ordering_key(status, event["occurred_at"], event["event_id"]))


def candidate_of_record(record):
    """The candidate a ``nomination.list`` / ``nomination.get`` record describes, or ``None``
    for one not reviewed yet."""
    status = record["status"]
    if status not in STAGES:
        return None
    disqualification = record.get("disqualification") or {}
    return Candidate(
        candidate_id=record["id"], campaign_id=record.get("campaign_id"),
        category=record["category"], org_type=record.get("org_type"),
        nominee_name=record["nominee_name"], nominee_unit=record.get("nominee_unit"),
        unit=record.get("unit"), deeds_summary=record.get("deeds_summary"),
        submitted_at=iso(parse_iso(record["submitted_at"])), status=status,
        disqualification_reason=disqualification.get("reason") if status == DISQUALIFIED
        else None,
        key=ordering_key(status, record.get("updated_at") or record["submitted_at"],
                         BELOW_EVERY_KEY))


class BallotCopy:
    """One service's copy of the candidates, in the collection ``collection_name`` of its
    own database ``db``.

    ``project(candidate)`` gives the fields that service keeps of a candidate, or
    ``None`` for one it does not keep at all; ``on_insert`` are fields a new
    document starts with. Which campaigns were caught up is kept in the same
    database (``ballot_syncs``, one document per campaign) and remembered in this
    process (the store object lives as long as the service's container).
    """

    def __init__(self, db, collection_name, project, on_insert=None,
                 retry_seconds=CATCH_UP_RETRY_SECONDS, clock=time.monotonic):
        self.collection = db[collection_name]
        self.syncs = db[SYNCS_COLLECTION]
        self.campaigns = db[CAMPAIGNS_COLLECTION]
        self.project = project
        self.on_insert = on_insert or {}
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.caught_up = set()
        self.tried_at = {}
        self.lock = threading.Lock()

    def apply(self, candidate):
        """Apply what an event or a row says; ``False`` if a later state was applied (or this
        one already was), or the service does not keep this candidate."""
        if candidate is None:
            return False
        fields = self.project(candidate)
        if fields is None:
            return False
        return self.write(candidate.candidate_id, fields, candidate.key)

    def write(self, candidate_id, fields, key):
        """Set ``fields`` unless a state of a key not below ``key`` is stored (one conditional
        upsert)."""
        # Another writer may create the document meanwhile: another instance, or
        # aggregation's first vote for the candidate (upsert_unless_refused).
        return upsert_unless_refused(
            self.collection,
            {"_id": candidate_id,
             "$or": [{KEY_FIELD: {"$exists": False}}, {KEY_FIELD: {"$lt": key}}]},
            {"$set": dict(fields, **{KEY_FIELD: key})}, self.on_insert)

    def catch_up(self, campaign_id, list_nominations, now=False):
        """Apply ``list_nominations(campaign_id)`` (``nomination.list``) if this campaign is due
        (or ``now``). Returns the candidates it changed, or ``None`` when it did not run or
        nomination did not answer (the events still come)."""
        if not now and not self.due(campaign_id):
            return None
        with self.lock:
            self.tried_at[campaign_id] = self.clock()
        try:
            rows = list_nominations(campaign_id)
        except Exception as exc:  # nomination down or slow: try again later
            log.warning("could not catch up the ballot of %s: %s", campaign_id,
                        type(exc).__name__)
            return None
        changed = [candidate for candidate in map(candidate_of_record, rows)
                   if candidate is not None and candidate.campaign_id == campaign_id
                   and self.apply(candidate)]
        self.mark_caught_up(campaign_id)
        return changed

    def mark_caught_up(self, campaign_id):
        self.syncs.update_one({"_id": campaign_id}, {"$set": {"caught_up": True}}, upsert=True)
        with self.lock:
            self.caught_up.add(campaign_id)

    def due(self, campaign_id):
        """Never caught up in this store, and not tried within ``retry_seconds``."""
        if campaign_id in self.caught_up:
            return False
        tried = self.tried_at.get(campaign_id)
        if tried is not None and self.clock() - tried < self.retry_seconds:
            return False
        if self.syncs.find_one({"_id": campaign_id}, {"_id": 1}) is not None:
            with self.lock:
                self.caught_up.add(campaign_id)
            return False
        return True

    def due_campaigns(self):
        """The known campaigns :meth:`due` for a catch-up."""
        return [row["_id"] for row in self.campaigns.find({}, {"_id": 1})
                if self.due(row["_id"])]


class FollowsBallot:
    """Mixin for the services that keep a ballot: ``self.store.ballot_copy`` is their
    :class:`BallotCopy`, caught up on first use and by this timer while it fails.

    A service that asks nomination through another dependency than ``service_rpc``
    overrides :meth:`_list_nominations`; :meth:`_ballot_changed` is told what a
    catch-up changed (a cache to drop, results to refresh).
    """

    @timer(interval=CATCH_UP_RETRY_SECONDS)
    def catch_up_ballots(self):
        """Catch up the campaigns not caught up yet in this process (a service started, or
        nomination did not answer last time)."""
        for campaign_id in self.store.ballot_copy.due_campaigns():
            self._catch_up_ballot(campaign_id)

    def _catch_up_ballot(self, campaign_id, now=False):
        """Catch up once per campaign (``now``: again, for a decision that needs every
        candidate); the candidates changed, or ``None`` if it did not run or failed."""
        changed = self.store.ballot_copy.catch_up(campaign_id, self._list_nominations, now)
        if changed:
            self._ballot_changed(campaign_id, changed)
        return changed

    def _list_nominations(self, campaign_id):
        return self.service_rpc("nomination", "list", campaign_id)

    def _ballot_changed(self, campaign_id, candidates):
        """What else follows from the candidates a catch-up changed (nothing by default)."""
