"""The voting service's entrypoints with nameko's ``worker_factory``: no broker.

The store is the real repository on the test's database; auth, clock, dispatch
and the one-time code channel are injected, and each call is its own group
commit (``commit_now``). Every refusal is checked to leave nothing counted.
"""
import json
from datetime import timedelta

import eventlet
import pytest
from nameko.testing.services import worker_factory
from prometheus_client import CollectorRegistry
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.voting import commit as commit_module
from services.voting import domain
from services.voting.commit import CommitContext, commit_now
from services.voting.providers import BallotCache, Keys
from services.voting.service import VotingService, define_metrics
from services.voting.store import VotingStore
from shared import events
from shared.auth import Caller, read_token
from shared.campaigns import CampaignBook
from shared.campaign import Campaign
from shared.errors import (Conflict, DuplicateVote, Forbidden, NotFound, RateLimited,
                           Unauthorized, ValidationError, VoteLimitReached, VotingClosed)
from shared.metrics import ServiceMetrics
from shared.plugins import VOTE_RULES, load_plugins
from shared.timeutil import utcnow
from tests.conftest import TEST_KEYS, at, campaign_document, token
from tests.yielding import yielding

OPEN = at("2099-11-02T02:00:00")          # 10:00 on 2 November in Asia/Shanghai
NEXT_DAY = at("2099-11-02T16:00:00")      # 00:00 on 3 November in Asia/Shanghai
VOTING = {"opens": "2099-11-01T08:00:00", "closes": "2099-11-20T20:00:00",
          "daily_limit": 3, "ip_limit": 5, "ip_window_seconds": 60}
CANDIDATES = ["nom-a", "nom-b", "nom-c", "nom-d"]
MOBILE = "13812345678"


class Harness:
    """Calls the service as a given token, at a given time, on one store."""

    def __init__(self, db):
        self.store = VotingStore(db)
        self.store.ensure_indexes()
        self.now = OPEN
        self.dispatched = []
        self.sent = []
        self.fail_dispatch = False
        self.registry = CollectorRegistry()
        self.metrics = ServiceMetrics(self.registry, define_metrics(self.registry))
        self.cache = BallotCache()
        self.cache.setup()
        self.keys = Keys("voter-secret-0123456789abcdef", "log", 0, set())
        # The committer has its own store handle, dispatcher and clock (here: the test's).
        self.commit = commit_now(CommitContext(self.store, self.dispatch, lambda: self.now,
                                               load_plugins(VOTE_RULES), self.metrics))
        self.listed = []        # what nomination.list answers (every nomination)

    def nomination(self, service, method, campaign_id, **filters):
        assert (service, method, filters) == ("nomination", "list", {})
        return [row for row in self.listed if row["campaign_id"] == campaign_id]

    def dispatch(self, event_type, payload):
        if self.fail_dispatch:
            raise ConnectionError("broker gone")
        self.dispatched.append((event_type, payload))

    def service(self, auth_token=None):
        verify = lambda t: read_token(TEST_KEYS, t, utcnow())
        return worker_factory(
            VotingService, store=self.store, now=lambda: self.now,
            campaigns=CampaignBook(self.store.campaigns),
            auth=Caller(verify, auth_token, lambda token_id, at: None),
            dispatch=self.dispatch, commit=self.commit, keys=self.keys,
            send_code=lambda *args: self.sent.append(args), ballot_cache=self.cache,
            service_rpc=self.nomination, metrics=self.metrics)

    def frontend(self):
        return self.service(token("frontend", "wechat-backend"))

    def admin(self):
        return self.service(token("admin", "宣传部"))

    def stored(self):
        return self.store.votes.count_documents({})

    def counted_votes(self):
        """Every vote announced in vote_cast events (a consumer would count these)."""
        return [vote["vote_id"] for event_type, payload in self.dispatched
                if event_type == events.VOTE_CAST for vote in payload["votes"]]

    def metric(self, name, **labels):
        return self.registry.get_sample_value(name, labels) or 0


def reviewed(candidate_id, decision="accept", campaign_id="cb-test", category="advanced_unit",
             name=None):
    return events.make_event(
        events.NOMINATION_REVIEWED, campaign_id, nomination_id=candidate_id, unit="城关镇党委",
        category=category, org_type="agency" if category == "advanced_unit" else None,
        nominee_name=name or f"候选{candidate_id}", nominee_unit="县财政局",
        deeds_summary="坚持每周集中学习。", status="accepted" if decision == "accept" else "rejected",
        submitted_at="2099-10-10T02:00:00Z", decision=decision, opinion="符合条件")


def vote(vote_id="v-1", candidate_id="nom-a", mobile=MOBILE, ip="203.0.113.7", **overrides):
    body = {"vote_id": vote_id, "campaign_id": "cb-test", "candidate_id": candidate_id,
            "voter": {"channel": "mobile", "id": mobile},
            "client": {"ip": ip, "user_agent": "Mozilla/5.0"}}
    body.update(overrides)
    return body


@pytest.fixture
def harness(db):
    harness = Harness(db)
    harness.store.campaigns.insert_one({"_id": "cb-test", "revision": 1,
                                        "document": campaign_document(voting=VOTING)})
    harness.store.ballot_copy.mark_caught_up("cb-test")  # caught up already
    service = harness.service()
    for candidate_id in CANDIDATES:
        service.on_nomination_reviewed(reviewed(candidate_id))
    return harness


def test_after_a_restart_the_ballot_catches_up_with_nomination(db):
    harness = Harness(db)
    harness.store.campaigns.insert_one({"_id": "cb-test", "revision": 1,
                                        "document": campaign_document(voting=VOTING)})
    harness.service().on_nomination_reviewed(reviewed("nom-gone"))   # withdrawn while down
    harness.listed = [dict(reviewed("nom-a"), id="nom-a", status="accepted"),
                      dict(reviewed("nom-gone"), id="nom-gone", status="withdrawn",
                           updated_at="2099-10-20T02:00:00Z"),
                      dict(reviewed("nom-new"), id="nom-new", status="submitted")]
    assert [r["candidate_id"] for r in harness.service().ballot("cb-test")] == ["nom-a"]
    assert harness.frontend().cast(vote())["status"] == "accepted"
    # Caught up once: later events keep it current.
    harness.listed = []
    harness.service().on_nomination_reviewed(reviewed("nom-b"))
    assert [r["candidate_id"] for r in harness.service().ballot("cb-test")] == ["nom-a", "nom-b"]


def test_cast_stores_the_vote_and_announces_it(harness):
    reply = harness.frontend().cast(vote())
    assert reply["status"] == "accepted"
    assert reply["vote_id"] == "v-1" and reply["candidate_id"] == "nom-a"
    assert reply["category"] == "advanced_unit" and reply["day"] == "2099-11-02"
    assert len(reply["receipt"]) == 19
    [(event_type, payload)] = harness.dispatched
    assert event_type == events.VOTE_CAST
    assert events.read_event(event_type, payload)["votes"] == [
        {"vote_id": "v-1", "candidate_id": "nom-a", "category": "advanced_unit",
         "cast_at": "2099-11-02T02:00:00Z"}]
    # 个人信息保护: neither the number nor the address is stored in plain.
    dump = json.dumps(list(harness.store.db["votes"].find()) +
                      list(harness.store.db["vote_ids"].find()) +
                      list(harness.store.claims({"v-1"}).values()), default=str)
    assert harness.store.claims({"v-1"})["v-1"]["vote"]["receipt"] == reply["receipt"]
    assert MOBILE not in dump and "203.0.113.7" not in dump
    assert harness.store.batches.count_documents({}) == 0   # the outbox entry was closed
    assert harness.service().check_receipt(reply["receipt"])["counted"] is True
    assert harness.metric("pingxuan_votes_total", outcome="accepted",
                          category="advanced_unit") == 1


def test_a_resend_is_answered_as_the_first_time_and_counted_once(harness):
    first = harness.frontend().cast(vote())
    for _ in range(3):
        assert harness.frontend().cast(vote(client={"ip": "198.51.100.1"})) == first
    harness.now = NEXT_DAY + timedelta(hours=5)  # a resend on the next day is still a resend
    assert harness.frontend().cast(vote()) == first
    assert harness.stored() == 1
    assert harness.counted_votes() == ["v-1"]
    assert harness.metric("pingxuan_votes_total", outcome="resend", category="advanced_unit") == 4


def test_one_vote_per_candidate_per_day_in_the_campaign_zone(harness):
    harness.frontend().cast(vote("v-1"))
    with pytest.raises(DuplicateVote):
        harness.frontend().cast(vote("v-2"))
    harness.now = NEXT_DAY - timedelta(seconds=1)   # 23:59:59 local: still the same day
    with pytest.raises(DuplicateVote):
        harness.frontend().cast(vote("v-3"))
    harness.now = NEXT_DAY
    assert harness.frontend().cast(vote("v-4"))["day"] == "2099-11-03"
    assert harness.counted_votes() == ["v-1", "v-4"]
    [entry, _] = harness.admin().fraud_ledger("cb-test")["entries"]
    assert entry["rule"] == "one_vote_per_candidate_per_day"
    assert entry["error"] == "DuplicateVote"
    assert entry["evidence"]["voter_votes_today"] == 1
    assert entry["ip_net"] == "203.0.113.0/24"


def test_the_store_refuses_a_second_vote_of_the_day_when_the_history_missed_it(db):
    # Two instances on one MongoDB: this one's history did not see the other's vote.
    harness = Harness(db)
    harness.store.stored_keys = lambda keys: set()
    harness.store.campaigns.insert_one({"_id": "cb-test", "revision": 1,
                                        "document": campaign_document(voting=VOTING)})
    harness.store.ballot_copy.mark_caught_up("cb-test")
    harness.service().on_nomination_reviewed(reviewed("nom-a"))
    harness.frontend().cast(vote("v-1"))
    with pytest.raises(DuplicateVote):
        harness.frontend().cast(vote("v-2"))
    assert harness.stored() == 1
    assert harness.counted_votes() == ["v-1"]
    [entry] = harness.admin().fraud_ledger("cb-test")["entries"]
    assert entry["evidence"] == {"enforced_by": "store"}
    # The refused vote_id keeps its answer.
    with pytest.raises(DuplicateVote):
        harness.frontend().cast(vote("v-2"))


def test_the_daily_cap_per_voter(harness):
    for n, candidate_id in enumerate(CANDIDATES[:3]):
        harness.frontend().cast(vote(f"v-{n}", candidate_id))
    with pytest.raises(VoteLimitReached):
        harness.frontend().cast(vote("v-9", "nom-d"))
    assert harness.stored() == 3
    # Another voter is not capped by this one.
    assert harness.frontend().cast(vote("w-1", "nom-d", mobile="13900001111"))["status"] == "accepted"


def test_the_per_ip_throttle(harness):
    for n in range(5):
        harness.frontend().cast(vote(f"v-{n}", mobile=f"1390000{n:04d}"))
    with pytest.raises(RateLimited):
        harness.frontend().cast(vote("v-9", mobile="13900009999"))
    harness.now = OPEN + timedelta(seconds=61)
    assert harness.frontend().cast(vote("v-10", mobile="13900009999"))["status"] == "accepted"
    entry = harness.admin().fraud_ledger("cb-test", rule="ip_throttle")["entries"][0]
    assert entry["evidence"]["ip_votes_in_window"] == 5


@pytest.mark.parametrize("moment", [at("2099-10-31T23:59:59"), at("2099-11-20T12:00:00"),
                                    at("2100-01-01T00:00:00")])
def test_votes_outside_the_window_are_refused(harness, moment):
    harness.now = moment
    with pytest.raises(VotingClosed):
        harness.frontend().cast(vote())
    assert harness.stored() == 0 and harness.dispatched == []


def test_a_candidate_not_on_this_ballot_is_not_found(harness):
    service = harness.service()
    service.on_nomination_reviewed(reviewed("nom-rejected", decision="reject"))
    service.on_nomination_reviewed(reviewed("nom-other", campaign_id="cb-other"))
    for candidate_id in ("nom-unknown", "nom-rejected", "nom-other"):
        with pytest.raises(NotFound):
            harness.frontend().cast(vote(f"v-{candidate_id}", candidate_id))
    assert harness.stored() == 0


def test_a_disqualified_candidate_leaves_the_ballot(harness):
    harness.frontend().cast(vote("v-1", "nom-b"))
    late = reviewed("nom-b")     # published before the disqualification, delivered after it
    payload = events.make_event(
        events.CANDIDATE_DISQUALIFIED, "cb-test", nomination_id="nom-b", candidate_id="nom-b",
        unit="城关镇党委", category="advanced_unit", org_type="agency", nominee_name="候选nom-b",
        nominee_unit="县财政局", deeds_summary="…", status="disqualified",
        submitted_at="2099-10-10T02:00:00Z", reason="公示期间查实问题")
    harness.service().on_candidate_disqualified(payload)
    with pytest.raises(NotFound):
        harness.frontend().cast(vote("v-2", "nom-b", mobile="13900001111"))
    assert "nom-b" not in [row["candidate_id"] for row in harness.service().ballot("cb-test")]
    # A stale acceptance delivered late does not put it back; a redelivery changes nothing.
    harness.service().on_nomination_reviewed(late)
    harness.service().on_candidate_disqualified(payload)
    assert "nom-b" not in [row["candidate_id"] for row in harness.service().ballot("cb-test")]


@pytest.mark.parametrize("body, field", [
    (vote(vote_id=""), "vote_id"),
    (vote(vote_id="bad id with spaces"), "vote_id"),
    (vote(vote_id={"$gt": ""}), "vote_id"),
    ({k: v for k, v in vote().items() if k != "vote_id"}, "vote_id"),
    (vote(mobile=""), "voter.id"),
    (vote(mobile="1" * 10240), "voter.id"),
    (vote(voter={"channel": "wechat", "id": "x" * 10240}), "voter.id"),
    (vote(voter={"channel": "qq", "id": "12345678"}), "voter.channel"),
    (vote(ip="not-an-ip"), "client.ip"),
    (vote(ip="999.1.1.1"), "client.ip"),
    (vote(client={}), "client.ip"),
    (vote(candidate_id="x" * 200), "candidate_id"),
    (vote(campaign_id="CB TEST"), "campaign_id"),
    (vote(extra="field"), "extra"),
    ("not an object", "vote"),
    ([vote()], "vote"),
])
def test_bad_input_names_the_field_and_counts_nothing(harness, body, field):
    with pytest.raises(ValidationError) as refused:
        harness.frontend().cast(body)
    assert field in refused.value.messages
    assert harness.stored() == 0 and harness.dispatched == []
    assert harness.store.vote_ids.count_documents({}) == 0


def test_an_unknown_campaign_is_not_found(harness):
    with pytest.raises(NotFound):
        harness.frontend().cast(vote(campaign_id="cb-none"))
    assert harness.stored() == 0


def test_a_vote_id_reused_for_another_vote_is_a_conflict(harness):
    harness.frontend().cast(vote("v-1", "nom-a"))
    with pytest.raises(Conflict):
        harness.frontend().cast(vote("v-1", "nom-b"))
    assert harness.counted_votes() == ["v-1"]


def test_a_campaign_loaded_again_applies_to_the_next_vote(harness):
    assert harness.frontend().cast(vote("v-1"))["status"] == "accepted"
    # The department moves the close of voting to before now: revision 2.
    closed = campaign_document(voting=dict(VOTING, closes="2099-11-02T09:00:00"))
    harness.service().on_campaign_loaded(events.make_event(
        events.CAMPAIGN_LOADED, "cb-test", campaign=closed, revision=2))
    with pytest.raises(VotingClosed):
        harness.frontend().cast(vote("v-2", "nom-b"))
    results = harness.frontend().cast_many([vote("v-3", "nom-c")])
    assert results[0]["error"] == "VotingClosed"
    assert harness.counted_votes() == ["v-1"]


def test_a_campaign_changed_by_another_instance_applies_to_the_next_group(harness, monkeypatch):
    """The campaign is kept per process and not read per vote: each group commit reads the
    revisions of its campaigns and judges by the current one."""
    reads = []
    revision_of = harness.store.campaign_revision
    monkeypatch.setattr(harness.store, "campaign_revision",
                        lambda campaign_id: reads.append(campaign_id) or revision_of(campaign_id))
    for n in range(3):
        assert harness.frontend().cast(vote(f"v-{n}", "nom-a", mobile=f"1390000000{n}"))[
            "status"] == "accepted"
    assert len(reads) <= 1  # at most the first vote reads it (a kept copy then)
    # Another voting instance handled the campaign_loaded: only the shared store changed.
    closed = campaign_document(voting=dict(VOTING, closes="2099-11-02T09:00:00"))
    CampaignBook(harness.store.campaigns).remember(closed, 2)
    with pytest.raises(VotingClosed):
        harness.frontend().cast(vote("v-9", "nom-b"))
    # The kept copy was older: forgotten, and the next vote reads revision 2.
    assert harness.cache.campaign("cb-test") is None
    assert harness.frontend().cast_many([vote("v-10", "nom-c")])[0]["error"] == "VotingClosed"
    assert harness.cache.campaign("cb-test")[1].revision == 2
    assert harness.counted_votes() == ["v-0", "v-1", "v-2"]


def test_a_campaign_whose_new_revision_cannot_be_read_keeps_its_votes_on_the_kept_settings(
        harness, caplog):
    """One campaign's unreadable document does not fail the group (other campaigns' votes
    share it): its votes keep the settings they were built with, and the failure is logged."""
    assert harness.frontend().cast(vote("v-1"))["status"] == "accepted"
    # Revision 2 stored without its voting block: its settings cannot be read.
    unreadable = {key: value for key, value in campaign_document().items() if key != "voting"}
    harness.store.campaigns.update_one({"_id": "cb-test"},
                                       {"$set": {"document": unreadable, "revision": 2}})
    assert harness.frontend().cast(vote("v-2", "nom-b"))["status"] == "accepted"
    assert "could not be read for its votes" in caplog.text
    assert harness.counted_votes() == ["v-1", "v-2"]


def test_a_group_of_two_campaigns_judges_each_by_its_own_current_revision(harness):
    """One cast_many batch is one group: the campaign that changed meanwhile is judged by its
    new revision, the other by its kept one."""
    two = dict(campaign_document(voting=VOTING), id="cb-two")
    CampaignBook(harness.store.campaigns).remember(two, 1)
    harness.store.ballot_copy.mark_caught_up("cb-two")
    harness.service().on_nomination_reviewed(reviewed("two-a", campaign_id="cb-two"))
    first = harness.frontend().cast_many([vote("v-1"), vote("w-1", "two-a", campaign_id="cb-two")])
    assert [r["status"] for r in first] == ["accepted", "accepted"]
    # Another instance closes voting in cb-two only (revision 2).
    closed = dict(campaign_document(voting=dict(VOTING, closes="2099-11-02T09:00:00")), id="cb-two")
    CampaignBook(harness.store.campaigns).remember(closed, 2)
    results = harness.frontend().cast_many([
        vote("v-2", "nom-b"), vote("w-2", "two-a", mobile="13900000001", campaign_id="cb-two")])
    assert results[0]["status"] == "accepted" and results[1]["error"] == "VotingClosed"
    assert harness.cache.campaign("cb-two") is None         # forgotten: read again next time
    assert harness.cache.campaign("cb-test")[1].revision == 1  # kept, still current


def test_a_kept_campaign_gives_way_only_to_a_later_revision():
    cache = BallotCache()
    cache.setup()
    cache.keep_campaign("cb-test", 2, "revision 2")
    cache.keep_campaign("cb-test", 1, "revision 1")  # a worker that read before the other
    assert cache.campaign("cb-test") == "revision 2"
    cache.forget_campaign_before("cb-test", 2)
    assert cache.campaign("cb-test") == "revision 2"
    cache.forget_campaign_before("cb-test", 3)
    assert cache.campaign("cb-test") is None


def test_a_second_vote_of_the_day_reads_claims_by_id_only(harness):
    """A refusal's "was it a resend?" is an ``_id`` lookup (cheap on both stores), once."""
    harness.frontend().cast(vote("v-1"))
    reads = []
    find = harness.store.vote_ids.find
    harness.store.vote_ids.find = lambda *args, **kwargs: reads.append(args) or find(*args,
                                                                                   **kwargs)
    with pytest.raises(DuplicateVote):
        harness.frontend().cast(vote("v-2"))
    assert reads == [({"_id": {"$in": ["v-2"]}},)]
    assert harness.frontend().cast(vote("v-1"))["status"] == "accepted"     # a resend
    assert all(set(args[0]) == {"_id"} for args in reads)


def test_only_front_ends_cast(harness):
    for caller in (harness.service(None), harness.service("forged")):
        with pytest.raises(Unauthorized):
            caller.cast(vote())
    with pytest.raises(Forbidden):
        harness.admin().cast(vote())
    with pytest.raises(Forbidden):
        harness.service(token("unit", "城关镇党委")).cast_many([vote()])
    assert harness.stored() == 0


def test_cast_many_answers_each_vote_in_order_by_the_same_rules(harness):
    votes = [vote("m-1", "nom-a"), vote("m-2", "nom-a"),             # the second is a duplicate
             vote("m-3", "nom-b"), vote("m-4", "nom-c"),
             vote("m-5", "nom-d"),                                   # over the daily cap of 3
             vote("m-6", "nom-zzz", mobile="13900001111"),           # not on the ballot
             vote("m-7", ip="bad"),                                  # bad input
             "not an object",
             vote("m-1", "nom-a")]                                   # a resend within the batch
    results = harness.frontend().cast_many(votes)
    assert [(r["vote_id"], r["status"], r.get("error")) for r in results] == [
        ("m-1", "accepted", None), ("m-2", "refused", "DuplicateVote"),
        ("m-3", "accepted", None), ("m-4", "accepted", None),
        ("m-5", "refused", "VoteLimitReached"), ("m-6", "refused", "NotFound"),
        ("m-7", "refused", "ValidationError"), (None, "refused", "ValidationError"),
        ("m-1", "accepted", None)]
    assert results[8] == results[0]
    assert "client.ip" in json.loads(results[6]["message"])
    # One event for the whole batch, holding each stored vote once.
    assert [t for t, _ in harness.dispatched] == [events.VOTE_CAST]
    assert harness.counted_votes() == ["m-1", "m-3", "m-4"]
    # Sent again: answered the same, nothing more counted.
    assert harness.frontend().cast_many(votes) == results
    assert harness.counted_votes() == ["m-1", "m-3", "m-4"]


@pytest.mark.parametrize("votes", [[], [vote()] * 501, "votes", None, {"vote_id": "x"}])
def test_cast_many_refuses_a_malformed_batch_whole(harness, votes):
    with pytest.raises(ValidationError) as refused:
        harness.frontend().cast_many(votes)
    assert "votes" in refused.value.messages
    assert harness.stored() == 0


def test_a_vote_claimed_by_an_attempt_that_died_is_stored_by_its_resend(harness):
    harness.frontend().cast(vote("v-1"))
    claim = harness.store.claims({"v-1"})["v-1"]
    # As if the process had died after claiming the vote_id, before storing the vote.
    harness.store.votes.delete_many({})
    harness.dispatched.clear()
    again = harness.frontend().cast(vote("v-1"))
    assert again["receipt"] == claim["vote"]["receipt"]
    assert harness.stored() == 1
    assert harness.counted_votes() == ["v-1"]


def test_a_vote_whose_event_failed_is_acknowledged_and_the_sweep_publishes_it(harness):
    harness.fail_dispatch = True
    reply = harness.frontend().cast(vote())
    assert reply["status"] == "accepted"            # stored: the caller is told
    assert harness.counted_votes() == []
    assert harness.store.batches.count_documents({}) == 1
    harness.fail_dispatch = False
    harness.service().sweep_outbox()                # too early: a live commit may own it
    assert harness.counted_votes() == []
    harness.now = OPEN + commit_module.BATCH_GRACE
    harness.service().sweep_outbox()
    assert harness.counted_votes() == ["v-1"]
    assert harness.store.batches.count_documents({}) == 0
    harness.service().sweep_outbox()
    assert harness.counted_votes() == ["v-1"]


def test_votes_page_lists_the_counted_votes_in_a_stable_order(harness):
    harness.frontend().cast_many([vote(f"p-{n}", CANDIDATES[n % 3], mobile=f"1390000{n:04d}",
                                       ip=f"198.51.100.{n}") for n in range(7)])
    reader = harness.service(token("admin", "宣传部"))
    first = reader.votes_page("cb-test", limit=3)
    assert len(first["votes"]) == 3 and first["next"]
    second = reader.votes_page("cb-test", after=first["next"], limit=3)
    third = reader.votes_page("cb-test", after=second["next"], limit=3)
    assert third["next"] is None
    ids = [v["vote_id"] for page_ in (first, second, third) for v in page_["votes"]]
    assert sorted(ids) == [f"p-{n}" for n in range(7)]
    assert reader.votes_page("cb-test") == {"votes": first["votes"] + second["votes"] +
                                            third["votes"], "next": None}
    with pytest.raises(Forbidden):
        harness.frontend().votes_page("cb-test")
    with pytest.raises(ValidationError):
        reader.votes_page("cb-test", limit=0)
    with pytest.raises(NotFound):
        reader.votes_page("cb-none")


def test_the_ballot_shows_candidates_and_counts(harness):
    harness.frontend().cast_many([vote("b-1", "nom-a"), vote("b-2", "nom-b"),
                                  vote("b-3", "nom-a", mobile="13900001111")])
    rows = harness.service().ballot("cb-test", "advanced_unit")
    assert [(r["candidate_id"], r["votes"]) for r in rows] == [
        ("nom-a", 2), ("nom-b", 1), ("nom-c", 0), ("nom-d", 0)]
    assert set(rows[0]) == {"candidate_id", "nominee_name", "nominee_unit", "category",
                            "org_type", "deeds_summary", "votes"}
    assert harness.service().ballot("cb-test", "learning_star") == []
    with pytest.raises(ValidationError):
        harness.service().ballot("cb-test", "best_unit")
    with pytest.raises(NotFound):
        harness.service().ballot("cb-none")


def test_the_fraud_ledger_is_for_the_department(harness):
    harness.frontend().cast(vote("v-1"))
    with pytest.raises(DuplicateVote):
        harness.frontend().cast(vote("v-2"))
    ledger = harness.admin().fraud_ledger("cb-test")
    assert ledger["total"] == 1 and ledger["by_rule"] == {"one_vote_per_candidate_per_day": 1}
    assert MOBILE not in json.dumps(ledger, default=str)
    with pytest.raises(Forbidden):
        harness.frontend().fraud_ledger("cb-test")


# --- the page's JSON API --------------------------------------------------------------------

def request(method, path, json_body=None, data=None, headers=None, remote="192.0.2.10", **kw):
    builder = EnvironBuilder(method=method, path=path, json=json_body, data=data,
                             headers=headers or {}, environ_base={"REMOTE_ADDR": remote}, **kw)
    return Request(builder.get_environ())


def answer(response):
    return response.status_code, json.loads(response.get_data(as_text=True))


def send_code(harness, mobile=MOBILE):
    status, body = answer(harness.service().api_send_code(
        request("POST", "/api/codes", {"campaign_id": "cb-test", "mobile": mobile})))
    assert status == 200, body
    return harness.sent[-1][1]


def verify(harness, code, mobile=MOBILE):
    return answer(harness.service().api_verify(request(
        "POST", "/api/codes/verify", {"campaign_id": "cb-test", "mobile": mobile, "code": code})))


def test_a_resident_verifies_a_number_votes_and_checks_the_receipt(harness):
    code = send_code(harness)
    assert harness.sent[-1][0] == MOBILE
    assert harness.store.codes.find_one()["mobile"] == MOBILE      # plain only while pending
    status, session = verify(harness, code)
    assert status == 200
    assert "mobile" not in harness.store.codes.find_one()           # gone once verified
    auth = {"Authorization": f"Bearer {session['session']}"}
    status, reply = answer(harness.service().api_vote(request(
        "POST", "/api/votes", {"campaign_id": "cb-test", "candidate_id": "nom-a",
                               "vote_id": "page-1"}, headers=auth)))
    assert status == 200 and reply["status"] == "accepted"
    status, again = answer(harness.service().api_vote(request(
        "POST", "/api/votes", {"campaign_id": "cb-test", "candidate_id": "nom-a"}, headers=auth)))
    assert status == 409 and again["error"] == "DuplicateVote"
    assert "今天已经" in again["message"]
    status, checked = answer(harness.service().api_receipt(
        request("GET", "/"), reply["receipt"]))
    assert status == 200 and checked["counted"] is True
    # The page's voter and a front end's voter with the same number are one voter.
    with pytest.raises(DuplicateVote):
        harness.frontend().cast(vote("fe-1", "nom-a"))


def test_a_code_is_single_use_and_expires(harness):
    code = send_code(harness)
    assert verify(harness, code)[0] == 200
    status, body = verify(harness, code)
    assert status == 400 and "已使用" in body["message"]
    harness.now += timedelta(minutes=2)
    code = send_code(harness)
    harness.now += timedelta(minutes=6)
    status, body = verify(harness, code)
    assert status == 400 and "过期" in body["message"]


def test_a_hundred_wrong_codes_lock_the_number(harness):
    code = send_code(harness)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    answers = [verify(harness, wrong) for _ in range(100)]
    assert [s for s, _ in answers[:5]] == [400] * 5
    assert {s for s, _ in answers[5:]} == {429}
    assert "锁定" in answers[-1][1]["message"]
    status, body = verify(harness, code)            # even the right code, now
    assert status == 429
    status, body = answer(harness.service().api_send_code(
        request("POST", "/api/codes", {"campaign_id": "cb-test", "mobile": MOBILE})))
    assert status == 429 and len(harness.sent) == 1
    assert harness.stored() == 0


def test_codes_are_not_sent_too_often(harness):
    send_code(harness)
    status, body = answer(harness.service().api_send_code(
        request("POST", "/api/codes", {"campaign_id": "cb-test", "mobile": MOBILE})))
    assert status == 429 and "秒后" in body["message"]


def test_a_code_the_channel_refuses_leaves_the_number_as_it_was(harness):
    def refuse(*args):
        raise RateLimited("too many messages to this number")

    service = harness.service()
    service.send_code = refuse
    status, body = answer(service.api_send_code(
        request("POST", "/api/codes", {"campaign_id": "cb-test", "mobile": MOBILE})))
    assert status == 429
    assert harness.store.codes.find_one({"_id": {"$regex": "^cb-test[|]"}}) is None
    # No resend wait and no daily send used up by the refused request.
    assert send_code(harness)


def test_one_address_cannot_make_the_county_text_thousands_of_numbers(harness):
    numbers = [f"1390000{n:04d}" for n in range(domain.OTP_MAX_PER_IP_PER_HOUR + 1)]
    statuses = [answer(harness.service().api_send_code(request(
        "POST", "/api/codes", {"campaign_id": "cb-test", "mobile": number})))[0]
        for number in numbers]
    assert statuses[:-1] == [200] * domain.OTP_MAX_PER_IP_PER_HOUR
    assert statuses[-1] == 429
    assert len(harness.sent) == domain.OTP_MAX_PER_IP_PER_HOUR
    # Another address is not held back.
    status, _ = answer(harness.service().api_send_code(request(
        "POST", "/api/codes", {"campaign_id": "cb-test", "mobile": "13700000000"},
        remote="198.51.100.7")))
    assert status == 200


def test_a_campaign_may_raise_the_per_address_code_limit_for_shared_addresses():
    voting = dict(campaign_document()["voting"], code_ip_limit=domain.OTP_MAX_PER_IP_PER_HOUR + 5)
    raised = Campaign(campaign_document(voting=voting))
    assert domain.code_ip_limit(raised) == domain.OTP_MAX_PER_IP_PER_HOUR + 5
    assert domain.code_ip_limit(Campaign(campaign_document())) == domain.OTP_MAX_PER_IP_PER_HOUR
    with pytest.raises(ValidationError) as refused:
        campaign_document(voting=dict(voting, code_ip_limit=0))
    assert "voting.code_ip_limit" in refused.value.messages


@pytest.mark.parametrize("kwargs, status, field", [
    ({"data": "x" * (5 * 1024 * 1024), "content_type": "application/json"}, 413, "body"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "body"),
    ({"data": "[1, 2]", "content_type": "application/json"}, 400, "body"),
    ({"data": b"\xff\xfe", "content_type": "application/json"}, 400, "body"),
    ({"json_body": {"campaign_id": "cb-test", "mobile": "12345"}}, 400, "mobile"),
    ({"json_body": {"campaign_id": "cb-test", "mobile": {"$gt": ""}}}, 400, "mobile"),
    ({"json_body": {"campaign_id": "cb-none", "mobile": MOBILE}}, 404, None),
])
def test_bad_page_input_is_a_4xx_in_chinese(harness, kwargs, status, field):
    response = harness.service().api_send_code(request("POST", "/api/codes", **kwargs))
    code, body = answer(response)
    assert code == status
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"])
    if field:
        assert field in body["fields"]
    assert harness.sent == [] and harness.store.codes.count_documents({}) == 0


def test_a_page_vote_needs_a_verified_number(harness):
    for headers in ({}, {"Authorization": "Bearer pxv1.forged.sig"}):
        status, body = answer(harness.service().api_vote(request(
            "POST", "/api/votes", {"campaign_id": "cb-test", "candidate_id": "nom-a"},
            headers=headers)))
        assert status == 401 and "验证" in body["message"]
    assert harness.stored() == 0


def test_the_page_renders_in_chinese_and_refuses_outside_the_window(harness):
    response = harness.service().page_campaign(request("GET", "/campaigns/cb-test"), "cb-test")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'lang="zh-CN"' in text and "获取验证码" in text and "候选nom-a" in text
    assert '<label for="mobile">' in text
    harness.now = at("2099-12-01T00:00:00")
    response = harness.service().page_send_code(
        request("POST", "/campaigns/cb-test/code", data={"mobile": MOBILE}), "cb-test")
    assert response.status_code == 403
    assert "不在投票时间" in response.get_data(as_text=True)
    missing = harness.service().page_campaign(request("GET", "/campaigns/x"), "cb-none")
    assert missing.status_code == 404
    index = harness.service().page_index(request("GET", "/", query_string={"size": "large"}))
    assert "测试活动" in index.get_data(as_text=True)
    assert '<body class="large">' in index.get_data(as_text=True)
    assert "pxsize=large" in index.headers["Set-Cookie"]
    receipt = harness.service().page_receipt(request("GET", "/receipts",
                                                     query_string={"code": "nope"}))
    assert receipt.status_code == 400 and "格式" in receipt.get_data(as_text=True)


def test_the_page_links_its_style_sheet_which_is_served_and_nothing_else(harness):
    index = harness.service().page_index(request("GET", "/")).get_data(as_text=True)
    assert ('<link rel="stylesheet" href="/static/residents.css">\n'
            '<link rel="stylesheet" href="/static/voting.css">') in index
    style = harness.service().page_static(request("GET", "/static/voting.css"), "voting.css")
    assert style.status_code == 200 and style.content_type == "text/css; charset=utf-8"
    assert "ul.candidates{" in style.get_data(as_text=True)
    assert "max-age" in style.headers["Cache-Control"]
    shared = harness.service().page_static(request("GET", "/static/residents.css"),
                                           "residents.css")
    assert shared.status_code == 200 and "body.large{font-size:24px}" in shared.get_data(
        as_text=True)
    other = harness.service().page_static(request("GET", "/static/config.yml"), "config.yml")
    assert other.status_code == 404


def test_the_openapi_document_is_generated_from_the_schemas(harness):
    status, document = answer(harness.service().api_openapi(request("GET", "/")))
    assert status == 200 and document["openapi"].startswith("3.")
    schemas_ = document["components"]["schemas"]
    assert schemas_["CodeCheck"]["properties"]["code"]["pattern"] == r"^\d{6}$"
    refs = json.dumps(document).count("#/components/schemas/")
    assert refs > 10
    for ref in {part.split('"')[0] for part in json.dumps(document).split(
            "#/components/schemas/")[1:]}:
        assert ref in schemas_


def test_guesses_racing_on_several_instances_get_five_tries_in_all(harness):
    """100 guesses at once (each worker an instance on one store whose every operation
    yields, as on a real server): 5 are compared, and the right code as the 51st is not."""
    code = send_code(harness)
    yielding(harness.store)
    guesses = [f"{(int(code) + 1 + n) % 1000000:06d}" for n in range(100)]
    guesses[50] = code
    pool = eventlet.GreenPool(100)
    answers = list(pool.imap(lambda guess: verify(harness, guess), guesses))
    statuses = [status for status, _ in answers]
    assert statuses.count(400) == domain.OTP_MAX_WRONG, statuses
    assert statuses.count(429) == 100 - domain.OTP_MAX_WRONG
    assert 200 not in statuses
    assert harness.store.codes.find_one()["locked_until"] > harness.now


def test_a_failed_insert_keeps_its_share_of_the_cap_and_its_resend_takes_none(harness):
    harness.frontend().cast(vote("v-1", "nom-a"))
    harness.frontend().cast(vote("v-2", "nom-b"))
    insert = harness.store.insert_votes

    def fail(records):
        raise ConnectionError("the store went away")

    harness.store.insert_votes = fail
    with pytest.raises(ConnectionError):
        harness.frontend().cast(vote("v-3", "nom-c"))
    harness.store.insert_votes = insert
    voter_day = harness.store.claims({"v-3"})["v-3"]["vote"]["voter_day"]
    assert harness.store.votes_today({voter_day}) == {voter_day: 3}
    assert harness.frontend().cast(vote("v-3", "nom-c"))["status"] == "accepted"  # the resend
    assert harness.store.votes_today({voter_day}) == {voter_day: 3}
    with pytest.raises(VoteLimitReached):
        harness.frontend().cast(vote("v-4", "nom-d"))
    assert harness.stored() == 3


def test_code_requests_racing_on_several_instances_hold_the_per_address_limit(harness):
    yielding(harness.store)
    numbers = [f"1390000{n:04d}" for n in range(domain.OTP_MAX_PER_IP_PER_HOUR + 20)]
    pool = eventlet.GreenPool(len(numbers))
    statuses = list(pool.imap(lambda number: answer(harness.service().api_send_code(request(
        "POST", "/api/codes", {"campaign_id": "cb-test", "mobile": number})))[0], numbers))
    assert statuses.count(200) == domain.OTP_MAX_PER_IP_PER_HOUR
    assert statuses.count(429) == 20
    assert len(harness.sent) == domain.OTP_MAX_PER_IP_PER_HOUR
    [counter] = list(harness.store.code_requests.find({}))
    assert counter["n"] == domain.OTP_MAX_PER_IP_PER_HOUR
