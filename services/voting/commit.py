"""Group commit: the votes that are ready together are stored together and announced once.

Every entrypoint that casts (``cast``, ``cast_many``, the page) hands its
validated votes to the container's committer and waits. The committer takes
everything queued while it was busy as one group and, for the group: applies
the rules (one read of the voters' history), claims the vote_ids, writes the
outbox entry, stores the votes with one ``insert_many``, publishes one
``vote_cast`` event per campaign, closes the outbox entry and records refusals
in the fraud ledger. Only then does each waiting caller get its answer: a vote
is acknowledged once it is stored.

The group's ``vote_cast`` is not published by the committer: its outbox entry makes
it certain, so the group is handed to the container's :class:`Announcer`, which
publishes every group stored within a window (``VOTING_ANNOUNCE_WINDOW_SECONDS``,
0.05 s: what a vote's way to the results gains, against the tally's 0.5 s cache) as one
event per campaign and then closes their outbox entries. A caller does not wait for a
broker confirm, and a flood of small groups (one vote per ``cast``) costs the broker
and every consumer one event per window instead of one per group.

Why a vote counts exactly once (the argument is in the package README):
the store decides every race (``votes._id`` = voter|candidate|day and
``vote_ids._id`` = vote_id are unique keys); the outbox entry is written before
the votes and removed only after their event is published, so a crash
anywhere leaves either no stored vote or an entry the sweep republishes; and
consumers de-duplicate on vote_id.
"""
import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta

import eventlet
import pymongo
from eventlet.event import Event
from eventlet.queue import LightQueue
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared import events
from shared.campaigns import CampaignBook
from shared.clock import Clock
from shared.errors import Conflict, DuplicateVote
from shared.metrics import Metrics
from shared.plugins import VOTE_RULES, load_plugins
from shared.store import MongoStore
from shared.timeutil import local_day
from services.voting import domain
from services.voting.store import VotingStore

log = logging.getLogger(__name__)

#: Votes per group at most (several calls' worth).
MAX_GROUP = 2000
#: A group's insert must finish (or fail) within this; the sweep waits longer (BATCH_GRACE)
#: before it republishes an outbox entry, so it never races a live commit.
COMMIT_TIMEOUT_SECONDS = 10
BATCH_GRACE = timedelta(seconds=30)
#: Votes per ``vote_cast`` at most (a window's groups of one campaign are split beyond it).
MAX_EVENT_VOTES = 5000


@dataclass
class Outcome:
    """The answer to one vote: ``reply`` when accepted, ``error`` when refused."""

    vote_id: str
    reply: dict | None = None
    error: Exception | None = None
    resend: bool = False
    category: str | None = None
    settings: object = None

    @property
    def accepted(self):
        return self.error is None

    def result(self):
        """The contract's per-vote result of ``cast_many``."""
        return self.reply if self.error is None else domain.refused_result(self.vote_id, self.error)


@dataclass
class CommitContext:
    """What a group commit works with: the committer's own store, event dispatcher and clock
    (a group holds many callers' votes, so it is no one worker's), the rules, the metrics."""

    store: object
    dispatch: object
    now: object
    rules: dict
    metrics: object = None
    #: ``announce(batch_id, records)``: how a stored group's ``vote_cast`` goes out; by
    #: default at once (tests without a container), in the service by its :class:`Announcer`.
    announce: object = None

    def __post_init__(self):
        if self.announce is None:
            self.announce = lambda batch_id, records: publish_batches(
                [(batch_id, records)], self.dispatch, self.store)


def commit_group(requests, ctx):
    """Store a group of validated votes; one :class:`Outcome` per request, in order.

    Reads, then decides, then writes, step by step: the store steps are the functions
    below taking a store; the decisions are pure (``domain.judge_group``,
    :func:`answer_resends`, :func:`answer_insert`).
    """
    if not requests:
        return []
    requests = current_settings(ctx.store, requests)
    now = ctx.now()
    first_of = {}
    for index, request in enumerate(requests):
        first_of.setdefault(request.vote_id, index)
    votes = read_votes(ctx.store, [requests[index] for index in sorted(set(first_of.values()))],
                       now)
    facts = read_facts(ctx.store, votes)
    # The rules read counters; taking them is what holds the limits across instances.
    limits = Held(ctx.store, now, facts.counters)
    decisions = limits.take(domain.judge_group(votes, facts, ctx.rules), ctx.rules)
    records, claims = claim_vote_ids(ctx.store, decisions, limits)

    known = [d for d in decisions if d.vote.vote_id in claims]
    outcomes, repairs = answer_resends(
        known, claims, ctx.store.votes_by_key({claims[d.vote.vote_id]["key"] for d in known}))
    refusals = [d for d in decisions if d.error is not None and d.vote.vote_id not in claims]
    fresh = {vote_id: record for vote_id, record in records.items() if vote_id not in claims}
    fresh.update((record["vote_id"], record) for record in repairs)
    if fresh:
        stored, refused_by_key = store_votes(ctx, fresh, decisions, limits, now)
        outcomes.update(stored)
        refusals.extend(refused_by_key)

    for decision in refusals:
        outcomes[decision.vote.vote_id] = _refused(decision.vote, decision.error)
    ctx.store.record_refusals([domain.ledger_entry(d, now) for d in refusals])
    return [_for(outcomes[request.vote_id], request, index != first_of[request.vote_id])
            for index, request in enumerate(requests)]


# --- the store steps ---------------------------------------------------------------------------

def current_settings(store, requests):
    """The group's requests, each with its campaign's settings as stored now: one read of
    the revisions for the group, and a request built from a kept copy of an older revision
    is judged by the current one (a campaign's window or limits changed meanwhile, here or
    on another instance)."""
    revisions = store.campaign_revisions({r.campaign_id for r in requests})
    fresh = {}
    for r in requests:
        stored = revisions.get(r.campaign_id)
        if stored is not None and stored != r.settings.revision and r.campaign_id not in fresh:
            try:
                fresh[r.campaign_id] = domain.VotingSettings.of(
                    CampaignBook(store.campaigns).get(r.campaign_id), stored)
            except Exception:
                # One campaign's unreadable document must not fail the other campaigns'
                # votes of the group: its votes keep the settings they were built with.
                log.exception("campaign %s (revision %s) could not be read for its votes; "
                              "they are judged by revision %s", r.campaign_id, stored,
                              r.settings.revision)
                fresh[r.campaign_id] = r.settings
    if not fresh:
        return requests
    return [replace(r, settings=fresh[r.campaign_id]) if r.campaign_id in fresh else r
            for r in requests]


def read_votes(store, requests, now):
    """The group's votes as the rules see them: each with its ballot entry (one read for the
    group, from the store, so every instance sees a disqualification at once) and its day."""
    entries = store.ballot_entries({r.candidate_id for r in requests})
    days = {}  # campaign zone -> the group's day there (its votes share one instant)
    votes = []
    for r in requests:
        zone = r.settings.timezone
        day = days.get(zone) or days.setdefault(zone, local_day(now, zone))
        votes.append(domain.Vote(r, now, _entry_for(entries.get(r.candidate_id), r), day))
    return votes


def read_facts(store, votes):
    """What the store knows of the group's voters and addresses, each read once, by ``_id``."""
    return domain.GroupFacts(stored_keys=store.stored_keys({v.key for v in votes}),
                             votes_today=store.votes_today({v.voter_day for v in votes}),
                             address_votes=store.address_votes({v.ip_window for v in votes}))


def claim_vote_ids(store, decisions, limits):
    """Claim the vote_id of each passing vote; ``(records, claims)``: the record each passing
    vote is stored as, by vote_id, and the claims recorded before this group (of its refused
    votes, which may be resends, and of the passing votes whose vote_id was taken already)."""
    refused = [d for d in decisions if d.error is not None]
    passed = [d for d in decisions if d.error is None]
    claims = store.claims({d.vote.vote_id for d in refused})
    # Each passing vote's record is built once: the claim keeps it, the insert stores it.
    records = {d.vote.vote_id: domain.vote_record(d.vote, None) for d in passed}
    # If the store fails from here on, what was taken stays taken: a claim written before the
    # failure lets a resend store its vote without taking again, so giving back could let the
    # voter past the cap; keeping it can only cost the voter a vote of the day.
    claimed_before = store.claim_vote_ids(
        [domain.claim_record(d.vote, records[d.vote.vote_id]) for d in passed])
    # A vote_id claimed before took its share of the limits then.
    limits.give_back(claimed_before)
    claims.update(store.claims(claimed_before))
    return records, claims


def store_votes(ctx, records, decisions, limits, now):
    """The outbox entry, one insert, one event per campaign; ``(outcomes, refusals)``: the
    answers of the votes stored or found stored, and the votes the store's key refused."""
    batch_id = events.new_event_id()
    batch = [dict(record, batch=batch_id) for record in records.values()]
    ctx.store.open_batch(batch_id, batch, now)
    with pymongo.timeout(COMMIT_TIMEOUT_SECONDS):
        taken = ctx.store.insert_votes(batch)
    # The store's key refused these: they take nothing from the voter's day or address.
    limits.give_back(record["vote_id"] for record in batch if record["_id"] in taken)
    stored, outcomes, refusals = answer_insert(batch, taken, ctx.store.votes_by_key(taken),
                                               {d.vote.vote_id: d.vote for d in decisions})
    ctx.announce(batch_id, stored)
    return outcomes, refusals


# --- the decisions after the rules (pure) -----------------------------------------------------

def answer_resends(known, claims, held):
    """The answers to the votes whose vote_id was claimed before, from what the claim stands
    for and ``held`` (key -> the vote stored under it); ``(outcomes, repairs)``: repairs are
    the votes an attempt decided and claimed but stopped before storing."""
    outcomes, repairs = {}, []
    for decision in known:
        vote, claim = decision.vote, claims[decision.vote.vote_id]
        if claim["fingerprint"] != vote.request.fingerprint:
            outcomes[vote.vote_id] = _refused(vote, Conflict(
                f"vote_id {vote.vote_id} was already used for a different vote"))
            continue
        stored = held.get(claim["key"])
        if stored is None:
            repairs.append(claim["vote"])
        elif stored["vote_id"] == vote.vote_id:
            outcomes[vote.vote_id] = _accepted(vote, stored, resend=True)
        else:
            outcomes[vote.vote_id] = _refused(vote, _duplicate(vote, claim["vote"]["day"]))
    return outcomes, repairs


def answer_insert(batch, taken, holders, votes):
    """What the insert of ``batch`` means for each of its votes: ``taken`` are the keys the
    store's unique key refused, ``holders`` the votes stored under them, ``votes`` the group's
    votes by vote_id; ``(stored records, outcomes, refusals)``."""
    stored, outcomes, refusals = [], {}, []
    for record in batch:
        vote = votes[record["vote_id"]]
        if record["_id"] not in taken:
            stored.append(record)
            outcomes[vote.vote_id] = _accepted(vote, record)
            continue
        holder = holders.get(record["_id"])
        if holder is not None and holder["vote_id"] == record["vote_id"]:
            outcomes[vote.vote_id] = _accepted(vote, holder, resend=True)
        else:
            # The store's unique key refused it: another vote took this voter's day.
            refusals.append(domain.Decision(vote, _duplicate(vote, record["day"]),
                                            "one_vote_per_candidate_per_day",
                                            {"enforced_by": "store"}))
    return stored, outcomes, refusals


#: The rules whose limits are held by counters in the store, and how each is taken.
HELD_RULES = ("daily_limit", "ip_throttle")


class Held:
    """The daily cap and the per-address throttle, taken atomically in the store.

    The rules judged the group against the counters as read; another instance
    may have taken from the same counters since. Each limit is taken with one
    conditional increment per counter (``k`` votes of one voter at once; one by
    one when not all fit), so N instances allow exactly the limit. A vote that
    does not get its share is refused by the rule that owns the limit, worded by
    that rule. What a vote took is given back if it is not stored after all
    (a duplicate by the store's key, a resend of a claimed vote_id); a store
    failure keeps it (see ``commit_group``).
    """

    def __init__(self, store, now, known):
        self.store = store
        self.now = now
        self.known = known  # the counters that existed when the group read them
        self.taken = {}  # vote_id -> [(kind, key)]

    def take(self, decisions, rules):
        passed = [d for d in decisions if d.error is None]
        refused = {}
        for kind in HELD_RULES:
            groups = {}
            for decision in passed:
                if decision.vote.vote_id in refused:
                    continue
                key, limit = self._limit(kind, decision.vote)
                if key is not None:
                    groups.setdefault(key, (limit, []))[1].append(decision)
            whole = self._take_all(kind, groups)
            for key, (limit, group) in groups.items():
                got = [True] * len(group) if whole[key] else self._one_by_one(kind, key, limit,
                                                                              group)
                for decision, ok in zip(group, got):
                    if ok:
                        self.taken.setdefault(decision.vote.vote_id, []).append((kind, key))
                    else:
                        refused[decision.vote.vote_id] = self._refusal(kind, decision, limit,
                                                                       rules)
        self.give_back(refused)
        return [refused.get(d.vote.vote_id, d) for d in decisions]

    def _take_all(self, kind, groups):
        """Each counter's whole share for the group at once: ``{key: taken?}``."""
        wanted = {key: (limit, len(group)) for key, (limit, group) in groups.items()}
        if kind == "daily_limit":
            return self.store.take_days(wanted, self.known, self.now)
        ends = {key: domain.window_ends(group[0].vote.cast_at,
                                        group[0].vote.request.settings.ip_window)
                for key, (_, group) in groups.items()}
        return self.store.take_windows(wanted, self.known, ends)

    def _limit(self, kind, vote):
        """The counter a vote takes from for rule ``kind`` and its limit (``None``: no limit)."""
        settings = vote.request.settings
        if kind not in settings.rules:
            return None, None
        if kind == "daily_limit":
            if settings.daily_limit is None:
                return None, None
            return vote.voter_day, settings.daily_limit
        return vote.ip_window, settings.ip_limit

    def _one_by_one(self, kind, key, limit, group):
        """Not all of ``group`` fit (another instance took some meanwhile): the first ones
        in order get what is left, as consecutive single casts would."""
        got = []
        for decision in group:
            if len(group) == 1 or (got and not got[-1]):
                got.append(False)
                continue
            got.append(bool(self._take_counter(kind, key, limit, 1, decision.vote)))
        return got

    def _take_counter(self, kind, key, limit, count, vote):
        if kind == "daily_limit":
            return self.store.take_day(key, limit, count, self.now)
        return self.store.take_window(key, limit, count, domain.window_ends(
            vote.cast_at, vote.request.settings.ip_window))

    def _refusal(self, kind, decision, limit, rules):
        vote, settings = decision.vote, decision.vote.request.settings
        full = (domain.History(votes_today=limit) if kind == "daily_limit"
                else domain.History(ip_votes=limit))
        try:
            rules[kind](vote, full, settings)
        except Exception as error:  # the rule's own refusal, as if it had read the full counter
            return domain.Decision(vote, error, kind, dict(
                domain.evidence_of(vote, full, settings), enforced_by="store"))
        raise AssertionError(f"rule {kind} did not refuse at its limit")

    def give_back(self, vote_ids):
        for vote_id in list(vote_ids):
            for kind, key in self.taken.pop(vote_id, ()):
                if kind == "daily_limit":
                    self.store.give_back_day(key)
                else:
                    self.store.give_back_window(key)


def publish_batches(batches, dispatch, store):
    """Announce stored votes, one ``vote_cast`` per campaign (of at most ``MAX_EVENT_VOTES``),
    then close the outbox entries of ``batches`` (``[(batch_id, records)]``).

    A failure to publish leaves every entry for the sweep (a consumer de-duplicates what
    was published already); the votes are stored, so their callers were answered ``accepted``.
    """
    by_campaign = {}
    for _, records in batches:
        for record in records:
            by_campaign.setdefault(record["campaign_id"], []).append(domain.event_vote(record))
    try:
        for campaign_id, votes in by_campaign.items():
            for start in range(0, len(votes), MAX_EVENT_VOTES):
                dispatch(events.VOTE_CAST, events.make_event(
                    events.VOTE_CAST, campaign_id, votes=votes[start:start + MAX_EVENT_VOTES]))
    except Exception:
        log.warning("vote_cast of batches %s not published; the outbox sweep will retry",
                    ", ".join(batch_id for batch_id, _ in batches), exc_info=True)
        return False
    store.close_batches([batch_id for batch_id, _ in batches])
    return True


def sweep(store, dispatch, now):
    """Republish the votes of outbox entries older than ``BATCH_GRACE`` (left by a crash)."""
    published = 0
    for batch in store.stale_batches(now - BATCH_GRACE):
        records = store.votes_of_batch(batch)
        if publish_batches([(batch["_id"], records)], dispatch, store):
            published += len(records)
    return published


class Announcer:
    """Publishes stored groups' ``vote_cast`` in one greenthread (:meth:`run`): whatever was
    stored within ``window`` seconds of the first group waiting goes out together."""

    def __init__(self, dispatch, store, window):
        self.dispatch, self.store, self.window = dispatch, store, window
        self.queue = LightQueue()
        self.stopping = Event()

    def announce(self, batch_id, records):
        self.queue.put((batch_id, records))

    def run(self):
        """Until :meth:`stop`; what was handed over before it is still published (a stop
        ends the window at once)."""
        while True:
            first = self.queue.get()  # a group, or None: stop
            if first is not None:
                self.stopping.wait(self.window)
            waiting = [first] + [self.queue.get_nowait() for _ in range(self.queue.qsize())]
            batches = [batch for batch in waiting if batch is not None]
            if batches:
                publish_batches(batches, self.dispatch, self.store)
            if len(batches) < len(waiting):
                return

    def stop(self):
        self.queue.put(None)
        if not self.stopping.ready():
            self.stopping.send(True)


def _entry_for(entry, request):
    """The ballot entry, if the candidate is on this campaign's ballot."""
    if entry is None or entry.get("campaign_id") != request.campaign_id:
        return None
    return entry


def _duplicate(vote, day):
    return DuplicateVote(f"this voter already voted for candidate {vote.candidate_id} on {day} "
                         f"({vote.request.settings.timezone})")


def _accepted(vote, record, resend=False):
    name = vote.candidate["nominee_name"] if vote.candidate else None
    return Outcome(vote.vote_id, reply=domain.accepted_reply(record, name), resend=resend,
                   category=record["category"], settings=vote.request.settings)


def _refused(vote, error):
    return Outcome(vote.vote_id, error=error, category=vote.category,
                   settings=vote.request.settings)


def _for(outcome, request, copy):
    """A copy of a vote_id within one group is answered as its first occurrence (a resend)."""
    if not copy:
        return outcome
    return Outcome(outcome.vote_id, outcome.reply, outcome.error, True, outcome.category,
                   outcome.settings)


class CommitQueue:
    """Commits whatever was queued while it was busy as one group, in one greenthread
    (:meth:`run`); a caller's :meth:`submit` blocks until its votes' group is stored."""

    #: A first request of this many votes or more does not wait for others (a ``cast_many``
    #: batch is a group of its own worth storing at once).
    GATHER_BELOW = 16

    def __init__(self, rules, gather=0.0):
        self.rules = rules
        self.gather = gather
        self.queue = LightQueue()
        self.context = None
        self.running = True
        self.last_size = 0

    def submit(self, requests):
        if not requests:
            return []
        done = Event()
        self.queue.put((requests, done))
        return done.wait()

    def run(self, context):
        """Commit groups with ``context`` until :meth:`stop`; what was submitted before
        waits in the queue."""
        self.context = context
        while self.running:
            item = self.queue.get()
            if item is None:
                break
            if self.gather and self.last_size > 1 and len(item[0]) < self.GATHER_BELOW:
                # Others were voting a moment ago: wait for the votes on their way, as a
                # database's commit_delay does, so that a group's ten or so store operations are
                # shared by more of them. Alone, a vote does not wait.
                eventlet.sleep(self.gather)
            group, size = [item], len(item[0])
            while size < MAX_GROUP and self.queue.qsize():
                following = self.queue.get_nowait()
                if following is None:
                    self.running = False
                    break
                group.append(following)
                size += len(following[0])
            self._commit(group)
            self.last_size = size
            eventlet.sleep(0)  # let the answered workers run before the next group

    def stop(self):
        self.running = False
        self.queue.put(None)

    def _commit(self, group):
        requests = [request for item in group for request in item[0]]
        metrics = self.context.metrics
        try:
            started = time.perf_counter()
            outcomes = commit_group(requests, self.context)
            if metrics is not None:
                metrics.group_size.observe(len(requests))
                metrics.commit_seconds.observe(time.perf_counter() - started)
        except Exception as exc:  # the store failed: nobody is told "accepted"
            log.exception("group commit of %d votes failed", len(requests))
            for _, done in group:
                done.send_exception(exc)
            return
        start = 0
        for requests_, done in group:
            done.send(outcomes[start:start + len(requests_)])
            start += len(requests_)


class GroupEvents(EventDispatcher):
    """Publishes a group's ``vote_cast`` events. A group holds many calls' votes, so no one
    call's context headers (its call id) travel with them."""

    def dispatch(self, event_type, payload):
        self.publisher.publish(payload, exchange=self.exchange, routing_key=event_type)


class GroupCommit(DependencyProvider):
    """The container's committer. It owns its store handle, its event dispatcher and its
    clock rather than borrowing a worker's: the worker that happens to be first in a group is
    only one of the callers waiting on it. A worker gets ``commit(requests)``, which blocks
    until the votes' group is stored."""

    def bind(self, container, attr_name):
        # Bound with it rather than declared as sub-extensions: nameko binds a sub-extension
        # without the attribute name a DependencyProvider needs. Their lifecycle is this one's.
        instance = super().bind(container, attr_name)
        instance.store = MongoStore(VotingStore).bind(container, f"{attr_name}.store")
        instance.events = GroupEvents().bind(container, f"{attr_name}.events")
        instance.clock = Clock().bind(container, f"{attr_name}.clock")
        return instance

    def setup(self):
        for own in (self.store, self.events, self.clock):
            own.setup()
        self.commits = CommitQueue(load_plugins(VOTE_RULES), cfg.read(
            self.container.config, cfg.COMMIT_GATHER_SECONDS))

    def start(self):
        # Every extension's setup() is done by now: the service's metrics registry (the one
        # /metrics shows) exists.
        store = self.store.get_dependency(None)
        self.announcer = Announcer(self.events.dispatch, store, cfg.read(
            self.container.config, cfg.ANNOUNCE_WINDOW_SECONDS))
        context = CommitContext(store, self.events.dispatch, self.clock.now, self.commits.rules,
                                _service_metrics(self.container), self.announcer.announce)
        self.committing = self.container.spawn_managed_thread(
            lambda: self.commits.run(context))
        self.announcing = self.container.spawn_managed_thread(self.announcer.run)

    def stop(self):
        # The groups still queued are committed, then everything stored is announced, before
        # the store and the dispatcher go: a graceful stop leaves nothing for the sweep.
        self.commits.stop()
        self.committing.wait()
        self.announcer.stop()
        self.announcing.wait()
        self.store.stop()

    def kill(self):
        self.commits.stop()
        self.announcer.stop()
        self.store.kill()

    def get_dependency(self, worker_ctx):
        return self.commits.submit


def _service_metrics(container):
    for dependency in container.dependencies:
        if isinstance(dependency, Metrics):
            return dependency.get_dependency(None)
    return None


def commit_now(context):
    """A committer without a queue (each call its own group): for worker_factory tests."""
    return lambda requests: commit_group(requests, context)
