"""The ``voting`` service: thin nameko entrypoints over ``domain``, ``commit`` and ``store``.

Casting: verify the caller, load each vote through its schema, hash the voter
and the address, hand the votes to the group commit (rules, one insert, one
event per group) and answer with what was stored. The page and its JSON API
verify a resident by mobile number and a one-time code, then cast the same way.
"""
import collections
import logging
import time
import uuid

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.timer import timer
from prometheus_client import Counter, Gauge, Histogram

from shared import events
from shared.ballot import FollowsBallot, candidate_of_event
from shared.auth import SERVICE_ROLE
from shared.clock import Clock
from shared.entrypoints import Audited, FollowsCampaigns, PingxuanService, client_ip, rpc
from shared.errors import NotFound, PingxuanError, Unauthorized
from shared.handlers import handles
from shared.plugins import SUSPICION_RULES, load_plugins
from shared.metrics import LATENCY_BUCKETS, Metrics
from shared.service_rpc import ServiceRpc
from shared.store import MongoStore
from shared.timeutil import iso
from shared.validation import load, require_id
from services.voting import codes, commit, domain, page, schemas, suspicion, voiding, voids
from services.voting.commit import GroupCommit
from services.voting.page_api import PAGE_VOTE_SCHEMA, PageApi
from services.voting.providers import BallotCache, CodeSender, VotingConfig
from services.voting.resident_page import ResidentPage
from services.voting.store import VotingStore

log = logging.getLogger(__name__)

OUTBOX_SWEEP_SECONDS = 5


def define_metrics(registry):
    return {
        "votes": Counter(
            "pingxuan_votes_total", "Votes answered, by outcome (accepted, resend or the "
            "refusal) and category", ["outcome", "category"], registry=registry),
        "cast_seconds": Histogram(
            "pingxuan_vote_cast_seconds", "Time from a cast's arrival to its answer",
            ["path"], registry=registry, buckets=LATENCY_BUCKETS),
        "ballot_cache_age": Gauge(
            "pingxuan_ballot_cache_age_seconds", "Age of the vote counts the ballot showed last",
            registry=registry),
        "group_size": Histogram(
            "pingxuan_vote_group_size", "Votes stored per group commit", registry=registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)),
        "commit_seconds": Histogram(
            "pingxuan_vote_commit_seconds", "Time of one group commit", registry=registry,
            buckets=LATENCY_BUCKETS),
        "codes": Counter(
            "pingxuan_one_time_codes_total", "One-time codes sent and checked, by outcome",
            ["outcome"], registry=registry),
    }


class VotingService(ResidentPage, PageApi, Audited, FollowsCampaigns, FollowsBallot,
                    PingxuanService):
    """網絡投票: casting over RPC and on the page, the ballot, receipts, the fraud ledger,
    and 票數清零 (voiding stuffed votes with a reason, and restoring them).

    The RPC entrypoints (front ends, the department, services, anyone) are here; the page's
    are ``ResidentPage`` (HTML) and ``PageApi`` (JSON). The helpers below are what they share:
    a vote request, the campaign per revision, the group commit, the ballot, the codes.
    """

    name = "voting"
    metrics = Metrics(define=define_metrics)
    store = MongoStore(VotingStore)
    commit = GroupCommit()
    dispatch = EventDispatcher()
    now = Clock()
    service_rpc = ServiceRpc()
    keys = VotingConfig()
    send_code = CodeSender()
    ballot_cache = BallotCache()
    config = Config()

    # --- casting (trusted front ends) ------------------------------------------------------

    @rpc
    def cast(self, vote):
        """One vote; returns ``{vote_id, status: "accepted", receipt, …}`` or raises the refusal."""
        started = time.perf_counter()
        identity = self.auth.require("frontend")
        try:
            request = self._vote_request(vote, identity.as_actor(), {})
        except PingxuanError as error:
            self._count_invalid(error)
            raise
        outcome = self._cast([request])[0]
        self.metrics.cast_seconds.labels("cast").observe(time.perf_counter() - started)
        if outcome.error is not None:
            raise outcome.error
        return outcome.reply

    @rpc
    def cast_many(self, votes):
        """Up to 500 votes; one result per vote, in order; each vote is judged as a single cast."""
        started = time.perf_counter()
        identity = self.auth.require("frontend")
        votes = schemas.load_batch(votes)
        actor, campaigns = identity.as_actor(), {}
        results, requests, positions = [None] * len(votes), [], []
        for index, raw in enumerate(votes):
            try:
                requests.append(self._vote_request(raw, actor, campaigns, "cast_many"))
                positions.append(index)
            except PingxuanError as error:
                self._count_invalid(error)
                results[index] = domain.refused_result(
                    raw.get("vote_id") if isinstance(raw, dict) else None, error)
        for index, outcome in zip(positions, self._cast(requests)):
            results[index] = outcome.result()
        self.metrics.cast_seconds.labels("cast_many").observe(time.perf_counter() - started)
        return results

    # --- reading ---------------------------------------------------------------------------

    @rpc
    def ballot(self, campaign_id, category=None):
        """The candidates on the ballot with their (cached) vote counts; anyone may read it."""
        query = load(schemas.BallotQuery(), {"campaign_id": campaign_id, "category": category},
                     "ballot")
        campaign = self.campaigns.get(query["campaign_id"])
        self._catch_up_ballot(campaign.id)
        return self._ballot_rows(campaign.id, query["category"])

    @rpc
    def votes_page(self, campaign_id, after=None, limit=10000):
        """The counted votes in a stable order, for aggregation's rebuild: ``{votes, next}``."""
        self.auth.require(SERVICE_ROLE, "admin")
        query = load(schemas.VotesPage(), {"campaign_id": campaign_id, "after": after,
                                           "limit": limit}, "votes_page")
        self.campaigns.get(query["campaign_id"])
        rows = self.store.votes_page(query["campaign_id"], query["after"], query["limit"])
        # Voided votes are listed and flagged, so a rebuild counts what the events counted.
        return {"votes": [dict(domain.event_vote(row), voided=bool(row.get("void_id")))
                          for row in rows],
                "next": rows[-1]["_id"] if len(rows) == query["limit"] else None}

    @rpc
    def check_receipt(self, receipt):
        """Was the vote with this receipt counted? Anyone holding the receipt may ask."""
        code = load(schemas.Receipt(), {"receipt": receipt}, "receipt")["receipt"]
        record = self.store.by_receipt(code)
        if record is None:
            raise NotFound(f"no counted vote has receipt {code}")
        entry = self.store.candidate(record["candidate_id"]) or {}
        void = self.store.find_void(record["void_id"]) if record.get("void_id") else None
        return dict(voiding.receipt_status(record, void, entry),
                    receipt=code, campaign_id=record["campaign_id"],
                    candidate_id=record["candidate_id"],
                    nominee_name=entry.get("nominee_name"), category=record["category"],
                    cast_at=iso(record["cast_at"]), day=record["day"])

    @rpc
    def fraud_ledger(self, campaign_id, rule=None, limit=1000):
        """Refused votes with the rule and the evidence, newest first (the department's view)."""
        self.auth.require("admin")
        query = load(schemas.LedgerQuery(), {"campaign_id": campaign_id, "rule": rule,
                                             "limit": limit}, "fraud_ledger")
        entries = self.store.ledger_entries(query["campaign_id"], query["rule"], query["limit"])
        by_rule, by_net = {}, {}
        for entry in entries:
            by_rule[entry["rule"]] = by_rule.get(entry["rule"], 0) + 1
            by_net[entry["ip_net"]] = by_net.get(entry["ip_net"], 0) + 1
        voids = [voiding.void_view(void) for void in self.store.voids_of(query["campaign_id"])]
        return {"campaign_id": query["campaign_id"], "entries": entries,
                "by_rule": by_rule, "by_ip_net": by_net,
                "total": self.store.count_refusals(query["campaign_id"]),
                "voids": voids,
                "voided_now": sum(v["voided"] for v in voids if v["state"] == voiding.VOIDED)}

    # --- 票數清零: suspicious votes, voids and restores (admin) ------------------------------

    @rpc
    def suspicious(self, campaign_id):
        """Findings for a person to look at (rule, threshold, evidence); nothing is voided."""
        self.auth.require("admin")
        campaign = self.campaigns.get(campaign_id)
        seen = [suspicion.SeenVote(
            vote_id=row["vote_id"], candidate_id=row["candidate_id"],
            cast_at=row["cast_at"], ip_net=row.get("ip_net") or "",
            user_agent=row.get("user_agent"), voter=row["voter_day"].split("|")[1])
            for row in self.store.counted_votes_seen(campaign.id)]
        found = suspicion.findings(seen, suspicion.SuspicionSettings.of(campaign),
                                   load_plugins(SUSPICION_RULES))
        return [finding.reply() for finding in found]

    @rpc
    def void_votes(self, campaign_id, selector, reason):
        """Void the counted votes the selector takes; ``{void_id, voided}`` (``voids.py``)."""
        identity = self.auth.require("admin")
        data = load(schemas.VoidRequest(), {"campaign_id": campaign_id, "selector": selector,
                                            "reason": reason}, "void_votes")
        chosen = schemas.load_selector(data["selector"])
        return self._voids().void(self.campaigns.get(data["campaign_id"]), chosen,
                                  data["reason"], identity.as_actor())

    @rpc
    def restore_votes(self, void_id, reason):
        """Undo exactly that void: its votes count again; ``{void_id, restored}``."""
        identity = self.auth.require("admin")
        data = load(schemas.RestoreRequest(), {"void_id": void_id, "reason": reason},
                    "restore_votes")
        return self._voids().restore(data["void_id"], data["reason"], identity.as_actor())

    @handles(events.AGGREGATION, events.LIST_PUBLISHED)
    def on_list_published(self, payload):
        """From 公示 on, voids and restores are refused (the list stands on its votes)."""
        event = events.read_event(events.LIST_PUBLISHED, payload)
        self.store.mark_published(event["campaign_id"], event["revision"],
                                  event["occurred_at"], event["event_id"])

    # --- the ballot, from nomination's events ------------------------------------------------

    @handles(events.NOMINATION, events.NOMINATION_REVIEWED)
    def on_nomination_reviewed(self, payload):
        self.store.ballot_copy.apply(candidate_of_event(
            events.read_event(events.NOMINATION_REVIEWED, payload)))

    @handles(events.NOMINATION, events.CANDIDATE_DISQUALIFIED)
    def on_candidate_disqualified(self, payload):
        self.store.ballot_copy.apply(candidate_of_event(
            events.read_event(events.CANDIDATE_DISQUALIFIED, payload)))

    @handles(events.NOMINATION, events.NOMINATION_WITHDRAWN)
    def on_nomination_withdrawn(self, payload):
        self.store.ballot_copy.apply(candidate_of_event(
            events.read_event(events.NOMINATION_WITHDRAWN, payload)))

    # --- left behind ---------------------------------------------------------------------------

    @timer(interval=OUTBOX_SWEEP_SECONDS)
    def sweep_outbox(self):
        """Publish the votes a crash left unannounced; forget expired codes' numbers and
        the counters of days and windows that are over."""
        now = self.now()
        commit.sweep(self.store, self.dispatch, now)
        self.store.purge_expired_codes(now)
        self.store.prune_counters(now)
        self._voids().sweep(now)

    # --- helpers ------------------------------------------------------------------------------

    def _vote_request(self, raw, actor, campaigns, path="cast"):
        """Validate one vote and hash its voter and address (the plain id goes no further)."""
        data = schemas.load_vote(raw)
        campaign = campaigns.get(data["campaign_id"])
        if campaign is None:
            campaign = campaigns[data["campaign_id"]] = self._voting(data["campaign_id"])
        voter = self.keys.hashes.voter(data["voter"]["channel"], data["voter"]["id"])
        return self._request(campaign[1], data["vote_id"], data["candidate_id"],
                             data["voter"]["channel"], voter, data["client"]["ip"],
                             data["client"]["user_agent"], actor, path)

    def _request(self, settings, vote_id, candidate_id, channel, voter, ip, user_agent, actor,
                 path):
        return domain.VoteRequest(
            vote_id=vote_id, campaign_id=settings.campaign_id, candidate_id=candidate_id,
            channel=channel, voter_key=voter, ip_key=self.keys.hashes.ip(ip),
            ip_net=domain.ip_net(ip), user_agent=(user_agent or "")[:200] or None,
            settings=settings, receipt=self.keys.hashes.receipt(vote_id),
            by=actor, path=path)

    def _voting(self, campaign_id):
        """``(campaign, its VotingSettings)`` for casting, the ballot caught up.

        Kept per process, with the stored revision it was read at: re-reading a
        campaign costs more than a vote. The group commit reads the revisions of
        its campaigns once per group and judges a vote whose kept settings are of
        an older revision by the current ones (``commit.current_settings``); the
        kept copy is then forgotten (:meth:`_cast`), so the next vote reads it again.
        """
        require_id(campaign_id, "campaign_id")
        found = self.ballot_cache.campaign(campaign_id)
        if found is None:
            revision = self.store.campaign_revision(campaign_id)
            campaign = self.campaigns.get(campaign_id)
            found = (campaign, domain.VotingSettings.of(campaign, revision))
            if revision is not None:
                self.ballot_cache.keep_campaign(campaign_id, revision, found)
        self._catch_up_ballot(campaign_id)
        return found

    def _cast(self, requests):
        outcomes = self.commit(requests)
        # Counted per outcome and category, not per vote: a batch has a handful of each.
        counts, stored = collections.Counter(), collections.Counter()
        judged_by = {}  # campaign -> the revision its votes were judged by
        for outcome in outcomes:
            if outcome.settings is not None:
                judged_by[outcome.settings.campaign_id] = outcome.settings.revision
            label = ("resend" if outcome.resend else "accepted") if outcome.error is None \
                else outcome.error.exc_type
            counts[label, outcome.category or "unknown"] += 1
            if label == "accepted":
                stored[outcome.reply["campaign_id"], outcome.reply["candidate_id"]] += 1
        for (label, category), count in counts.items():
            self.metrics.votes.labels(label, category).inc(count)
        for (campaign_id, candidate_id), count in stored.items():
            self.ballot_cache.add(campaign_id, candidate_id, count)
        for campaign_id, revision in judged_by.items():
            self.ballot_cache.forget_campaign_before(campaign_id, revision)
        return outcomes

    def _voids(self):
        return voids.Voids(self.store, self.dispatch, self.now, self.service_rpc,
                           self.ballot_cache)

    def _count_invalid(self, error):
        self.metrics.votes.labels(error.exc_type, "unknown").inc()

    def _ballot_changed(self, campaign_id, candidates):
        self.ballot_cache.forget(campaign_id)

    def _counts(self, campaign_id):
        counts, age = self.ballot_cache.get(campaign_id, self.keys.ballot_cache_seconds,
                                            lambda: self.store.count_by_candidate(campaign_id))
        self.metrics.ballot_cache_age.set(age)
        return counts, age

    def _ballot_rows(self, campaign_id, category=None):
        counts, _ = self._counts(campaign_id)
        return [domain.ballot_row(entry, counts.get(entry["_id"], 0))
                for entry in self.store.ballot(campaign_id, category)]

    def _ballot_view(self, campaign):
        rows = self._ballot_rows(campaign.id)
        _, age = self._counts(campaign.id)
        view = page.campaign_view(campaign, self.now())
        return {"campaign_id": campaign.id, "name": campaign.name,
                "opens": iso(campaign.voting_opens), "closes": iso(campaign.voting_closes),
                "open": view["open"], "counts_age_seconds": round(age, 3),
                "categories": [
                    {"category": category, "name": domain.category_name_zh(category),
                     "candidates": [row for row in rows if row["category"] == category]}
                    for category in campaign.categories]}

    def _client_ip(self, request):
        return client_ip(request, self.keys.trusted_proxies)

    def _send_code(self, data, ip):
        """A one-time code for ``data`` (a validated ``CodeRequest``) from address ``ip``."""
        return self._codes().request(self.campaigns.get(data["campaign_id"]), data["mobile"], ip)

    def _verify_code(self, data):
        """A voter session for ``data`` (a validated ``CodeCheck``)."""
        return self._codes().verify(self.campaigns.get(data["campaign_id"]), data["mobile"],
                                    data["code"])

    def _codes(self):
        return codes.OneTimeCodes(self.store, self.keys, self.send_code, self.metrics, self.now)

    def _resident_vote(self, request, campaign_id, data, session, loaded=False):
        """A vote from the page or its API, as the number its session verified; ``loaded``:
        ``data`` is already what ``PAGE_VOTE_SCHEMA`` loaded (the API's body)."""
        campaign, settings = self._voting(campaign_id)
        voter = self.keys.sessions.read(session, campaign.id, self.now())
        if not voter:
            raise Unauthorized("verify a mobile number first")
        if not loaded:
            data = load(PAGE_VOTE_SCHEMA, dict(
                campaign_id=campaign.id, candidate_id=data.get("candidate_id"),
                vote_id=data.get("vote_id") or None), "body")
        vote_id = data["vote_id"] or f"web-{uuid.uuid4().hex}"
        request_ = self._request(settings, vote_id, data["candidate_id"], "mobile", voter["k"],
                                 self._client_ip(request), request.headers.get("User-Agent"),
                                 {"role": "public", "name": "voting-page"}, "page")
        return self._cast([request_])[0]
