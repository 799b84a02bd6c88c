"""The aggregation service's entrypoints with nameko's ``worker_factory``: no broker.

The store is the real repository on the test's database; auth, clock, dispatch,
the campaign book and the peer services are injected. Events are built with
``shared.events.make_event`` as their producers build them.
"""
import hashlib
import itertools

import pytest
from nameko.testing.services import worker_factory
from prometheus_client import CollectorRegistry

from services.aggregation import domain
from services.aggregation.providers import REBUILD_PAGE_SIZE, ExpiringCache
from services.aggregation.service import AggregationService, define_metrics
from services.aggregation.store import AggregationStore
from shared import events
from shared.auth import Caller, read_token
from shared.campaigns import CampaignBook
from shared.config import TRUSTED_PROXIES
from shared.errors import Forbidden, InvalidState, NotFound, Unauthorized, ValidationError
from shared.metrics import ServiceMetrics
from shared.timeutil import iso, utcnow
from tests.aggregation_cases import FORTY, SELECTED_BY_HAND, submitted_at
from tests.conftest import TEST_KEYS, at, campaign_document, token

CAMPAIGN = "cb-test"
CATEGORY = "advanced_unit"
DURING_VOTE = at("2099-11-10T02:00:00")
AFTER_VOTE = at("2099-11-21T02:00:00")
_ids = itertools.count(1)


class Harness:
    """Delivers events and calls entrypoints as a given token, at a given time, on one store."""

    def __init__(self, db):
        self.store = AggregationStore(db)
        self.store.ensure_indexes()
        self.book = CampaignBook(self.store.campaigns)
        self.now = DURING_VOTE
        self.dispatched = []
        self.peer_calls = []
        self.peer_data = {}
        self.cache = ExpiringCache(0)
        registry = CollectorRegistry()
        self.metrics = ServiceMetrics(registry, define_metrics(registry))

    def peers(self, service, method, *args, **kwargs):
        self.peer_calls.append((service, method, args, kwargs))
        answer = self.peer_data[(service, method)]
        return answer(*args, **kwargs) if callable(answer) else answer

    def service(self, auth_token=None):
        verify = lambda t: read_token(TEST_KEYS, t, utcnow())  # noqa: E731
        return worker_factory(
            AggregationService, store=self.store, now=lambda: self.now, campaigns=self.book,
            auth=Caller(verify, auth_token, lambda *args: None),
            dispatch=lambda event_type, payload: self.dispatched.append((event_type, payload)),
            peers=self.peers, settings={REBUILD_PAGE_SIZE: 7, TRUSTED_PROXIES: ()},
            tallies=self.cache,
            metrics=self.metrics)

    def as_admin(self):
        return self.service(token("admin", "宣传部"))

    def deliver(self, event_type, payload):
        handler = HANDLERS[event_type]
        getattr(self.service(), handler)(payload)

    def event_types(self):
        return [event_type for event_type, _ in self.dispatched]

    def metric(self, name, **labels):
        return self.metrics.registry.get_sample_value(name, labels) or 0


HANDLERS = {
    events.CAMPAIGN_LOADED: "on_campaign_loaded",
    events.NOMINATION_REVIEWED: "on_nomination_reviewed",
    events.NOMINATION_WITHDRAWN: "on_nomination_withdrawn",
    events.CANDIDATE_DISQUALIFIED: "on_candidate_disqualified",
    events.VOTE_CAST: "on_vote_cast",
    events.SCORE_SUBMITTED: "on_score_submitted",
    events.PANEL_CLOSED: "on_panel_closed",
}


# --- event builders (as nomination, voting and scoring build them) ---------------------------

def facts(cid, org_type, minute, category=CATEGORY, status="accepted"):
    return dict(nomination_id=cid, unit="城关镇党委", category=category, org_type=org_type,
                nominee_name=f"{cid}单位党组织", nominee_unit=f"{cid}单位",
                deeds_summary="坚持集中学习", status=status,
                submitted_at=iso(submitted_at(minute)))


def reviewed(cid, org_type="agency", minute=1, category=CATEGORY, decision="accept",
             occurred=None):
    status = "accepted" if decision == "accept" else "rejected"
    return events.make_event(events.NOMINATION_REVIEWED, CAMPAIGN,
                             occurred or at("2099-10-31T02:00:00"),
                             **facts(cid, org_type, minute, category, status),
                             decision=decision, opinion="同意")


def disqualified(cid, org_type="agency", minute=1, reason="事迹材料失实", occurred=None):
    return events.make_event(events.CANDIDATE_DISQUALIFIED, CAMPAIGN,
                             occurred or at("2099-11-25T02:00:00"),
                             **facts(cid, org_type, minute, status="disqualified"),
                             candidate_id=cid, reason=reason)


def vote_batch(counts, category=CATEGORY, vote_ids=None):
    """One ``vote_cast`` batch: ``counts`` maps candidate id to the number of votes."""
    votes = [{"vote_id": f"v{next(_ids)}", "candidate_id": cid, "category": category,
              "cast_at": "2099-11-10T01:00:00Z"}
             for cid, n in counts.items() for _ in range(n)]
    if vote_ids:
        for vote, vote_id in zip(votes, vote_ids):
            vote["vote_id"] = vote_id
    return events.make_event(events.VOTE_CAST, CAMPAIGN, DURING_VOTE, votes=votes)


def score(cid, judge, total, occurred, category=CATEGORY):
    return events.make_event(events.SCORE_SUBMITTED, CAMPAIGN, occurred, candidate_id=cid,
                             category=category, judge_id=judge, scores={"results": total},
                             total=total)


def panel_closed(scores, category=CATEGORY, occurred=None):
    return events.make_event(events.PANEL_CLOSED, CAMPAIGN,
                             occurred or at("2099-11-20T13:00:00"), category=category,
                             method="mean", panel_scores=scores)


@pytest.fixture
def harness(db):
    harness = Harness(db)
    harness.deliver(events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, CAMPAIGN, campaign=campaign_document(), revision=1))
    return harness


def load_forty(harness):
    """The 40 candidates of the hand computation (votes / 200), the panel closed."""
    for cid, org, _, _, _, minute in FORTY:
        harness.deliver(events.NOMINATION_REVIEWED, reviewed(cid, org, minute))
    harness.deliver(events.VOTE_CAST, vote_batch({cid: votes // 200 for cid, _, votes, _, _, _
                                                  in FORTY}))
    harness.deliver(events.PANEL_CLOSED, panel_closed(
        {cid: (None if panel is None else float(panel)) for cid, _, _, panel, _, _ in FORTY}))


def selected(rows):
    pools = {}
    for row in rows:
        if row["status"] == "selected":
            pools.setdefault(row["pool"], []).append(row["candidate_id"])
    return {pool: sorted(ids) for pool, ids in pools.items()}


def snapshot(harness):
    """What a refused call must leave unchanged."""
    state = harness.store.states.find_one({"_id": CAMPAIGN})
    return state, list(harness.store.results.find().sort("_id")), list(harness.dispatched)


# --- the 40 candidates, through events -------------------------------------------------------

def test_forty_candidates_publish_the_hand_computed_list_and_a_disqualification_revises_it(harness):
    load_forty(harness)
    admin = harness.as_admin()
    assert selected(admin.results(CAMPAIGN, CATEGORY)) == SELECTED_BY_HAND

    harness.now = AFTER_VOTE
    publication = harness.as_admin().publish(CAMPAIGN)
    assert publication["phase"] == "published" and publication["revision"] == 1
    assert harness.event_types() == [events.LIST_PUBLISHED]
    first = harness.dispatched[0][1]
    assert first["revision"] == 1 and first["inputs_hash"] == publication["inputs_hash"]
    listed = harness.service().publicity_list(CAMPAIGN)  # anyone, no token
    assert selected(listed) == SELECTED_BY_HAND
    assert {row["revision"] for row in listed} == {1}
    assert not any("submitted_at" in row or "mobile" in row for row in listed)

    harness.now = at("2099-11-25T03:00:00")
    disqualification = disqualified("A03", minute=3, reason="事迹材料失实")
    harness.deliver(events.CANDIDATE_DISQUALIFIED, disqualification)
    assert harness.event_types() == [events.LIST_PUBLISHED, events.LIST_PUBLISHED]
    second = harness.dispatched[1][1]
    assert second["revision"] == 2 and second["inputs_hash"] != first["inputs_hash"]
    rows = harness.as_admin().results(CAMPAIGN, CATEGORY)
    expected = dict(SELECTED_BY_HAND, agency=sorted(
        set(SELECTED_BY_HAND["agency"]) - {"A03"} | {"A09"}))
    assert selected(rows) == expected
    by_id = {row["candidate_id"]: row for row in rows}
    assert by_id["A03"]["status"] == "disqualified"
    assert by_id["A03"]["disqualification_reason"] == "事迹材料失实"
    assert (by_id["A09"]["promoted_in_revision"], by_id["A09"]["replaces"]) == (2, ["A03"])
    report = harness.as_admin().report(CAMPAIGN)
    assert report["revision"] == 2
    assert report["revisions"][1]["changes"] == {CATEGORY: {
        "removed": [{"candidate_id": "A03", "pool": "agency"}],
        "promoted": [{"candidate_id": "A09", "pool": "agency"}]}}
    assert report["revisions"][1]["disqualification_reason"] == "事迹材料失实"
    assert report["inputs_changed_since_publish"] is False
    # The revision is in the audit trail, with why.
    trail = harness.as_admin().audit_trail(CAMPAIGN)
    assert [entry["action"] for entry in trail] == ["publish", "revise_list"]
    assert trail[0]["actor"]["name"] == "宣传部"
    assert "事迹材料失实" in trail[1]["note"]

    # The same disqualification redelivered issues no third list.
    harness.deliver(events.CANDIDATE_DISQUALIFIED, disqualification)
    assert len(harness.dispatched) == 2

    harness.as_admin().finalize(CAMPAIGN)
    assert harness.event_types()[-1] == events.RESULTS_FINALIZED
    assert harness.dispatched[-1][1]["inputs_hash"] == second["inputs_hash"]
    # Frozen: a later disqualification is recorded and changes nothing.
    harness.deliver(events.CANDIDATE_DISQUALIFIED, disqualified("A01", minute=1))
    assert len(harness.dispatched) == 3
    assert selected(harness.as_admin().results(CAMPAIGN, CATEGORY)) == expected
    late = harness.as_admin().report(CAMPAIGN)["late_events"]
    assert [note["candidate_id"] for note in late
            if note["type"] == "candidate_disqualified"] == ["A01"]
    with pytest.raises(InvalidState):
        harness.as_admin().publish(CAMPAIGN)
    with pytest.raises(InvalidState):
        harness.as_admin().finalize(CAMPAIGN)


# --- bad input and odd order -----------------------------------------------------------------

def test_an_event_run_again_by_its_handler_changes_nothing_more(harness):
    """The entrypoint stops a redelivery of a recorded event; one that ran before the record
    (a crash in between) runs the handler again, and each effect is idempotent by itself."""
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    batch = vote_batch({"a": 3})
    for _ in range(3):
        harness.deliver(events.VOTE_CAST, batch)
    assert harness.store.candidate("a")["votes"] == 3
    assert harness.metric("pingxuan_aggregation_events_total", type="vote_cast",
                          outcome="duplicate") == 0
    # Dashboards read this counter: the re-runs counted nothing, so they add nothing to it.
    assert harness.metric("pingxuan_aggregation_votes_counted_total") == 3


def test_a_vote_republished_in_another_batch_counts_once(harness):
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 2}, vote_ids=["v-1", "v-2"]))
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 3}, vote_ids=["v-2", "v-3", "v-3"]))
    assert harness.store.candidate("a")["votes"] == 3
    assert harness.as_admin().report(CAMPAIGN)["votes_counted"] == 3


def test_a_crash_halfway_through_a_batch_then_its_redelivery_counts_each_vote_once(harness):
    for cid in "abc":
        harness.deliver(events.NOMINATION_REVIEWED, reviewed(cid))
    batch = vote_batch({"a": 2, "b": 3, "c": 1})
    # The first attempt claimed the votes and moved one counter, then the process died.
    store = harness.store
    store._claim_votes([{"_id": f"{CAMPAIGN}|{v['vote_id']}", "event_id": batch["event_id"],
                         "campaign_id": CAMPAIGN, "candidate_id": v["candidate_id"],
                         "category": CATEGORY, "cast_at": v["cast_at"]} for v in batch["votes"]])
    store.add_votes(CAMPAIGN, "b", CATEGORY, batch["event_id"], 3)
    # Meanwhile voting republished one of its votes in a new batch.
    again = vote_batch({"a": 1}, vote_ids=[batch["votes"][0]["vote_id"]])
    harness.deliver(events.VOTE_CAST, again)
    harness.deliver(events.VOTE_CAST, batch)  # RabbitMQ redelivers the unacknowledged one
    assert {cid: store.candidate(cid)["votes"] for cid in "abc"} == {"a": 2, "b": 3, "c": 1}
    assert store.votes_recounted(CAMPAIGN) == {"a": 2, "b": 3, "c": 1}
    # This process counted a's and c's; b's were counted by the run that died.
    assert harness.metric("pingxuan_aggregation_votes_counted_total") == 3


def test_a_candidate_created_by_another_instance_meanwhile_loses_no_votes(harness, monkeypatch):
    """Two instances count the first votes of a candidate at once: one upsert creates its
    document, the other's insert is then refused as a duplicate key, though its event was
    never counted. Asked again, it finds the document and counts."""
    from pymongo.errors import DuplicateKeyError

    store = harness.store
    update_one, raced = store.results.update_one, []

    def racing(filter, update, upsert=False):
        if not raced and upsert:
            raced.append(True)  # the other instance's first vote for "a" lands first
            store.add_votes(CAMPAIGN, "a", CATEGORY, "evt-other-instance", 1)
            raise DuplicateKeyError("E11000 duplicate key error: _id a")
        return update_one(filter, update, upsert=upsert)

    monkeypatch.setattr(store.results, "update_one", racing)
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 2}))
    assert raced and store.candidate("a")["votes"] == 3
    assert harness.metric("pingxuan_aggregation_votes_counted_total") == 2


def test_a_re_run_marks_the_cached_tally_changed_though_it_counts_nothing(harness, monkeypatch):
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    batch = vote_batch({"a": 2})
    harness.deliver(events.VOTE_CAST, batch)
    changed = []
    monkeypatch.setattr(harness.cache, "changed", changed.append)
    harness.deliver(events.VOTE_CAST, batch)  # the first run's writes were done, then a crash
    assert changed == [CAMPAIGN] and harness.store.candidate("a")["votes"] == 2


def test_a_new_batch_is_counted_without_reading_the_counted_votes_back(harness, monkeypatch):
    """The embedded store scans the whole collection for a read: a batch of new votes must
    not read ``counted_votes`` (each batch would cost as much as every vote counted so far);
    only votes claimed before are read back (benchmarks/system_load.py found it)."""
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 2}, vote_ids=["v-1", "v-2"]))
    reads = []
    find = harness.store.counted_votes.find
    monkeypatch.setattr(harness.store.counted_votes, "find",
                        lambda query, *args, **kwargs: reads.append(query) or find(
                            query, *args, **kwargs))
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 3}, vote_ids=["v-3", "v-4", "v-5"]))
    assert reads == []
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 2}, vote_ids=["v-5", "v-6"]))
    assert [query["_id"] for query in reads] == [{"$in": [f"{CAMPAIGN}|v-5"]}]
    assert harness.store.candidate("a")["votes"] == 6
    assert harness.store.votes_recounted(CAMPAIGN) == {"a": 6}


def test_votes_for_an_unknown_candidate_are_kept_until_the_candidate_arrives(harness):
    harness.deliver(events.VOTE_CAST, vote_batch({"late": 4}))
    report = harness.as_admin().report(CAMPAIGN)
    assert report["orphans"] == [{"candidate_id": "late", "category": CATEGORY, "votes": 4,
                                  "nomination": "not received"}]
    assert report["categories"][0]["rows"] == []
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("late"))
    rows = harness.as_admin().results(CAMPAIGN, CATEGORY)
    assert [(row["candidate_id"], row["votes"]) for row in rows] == [("late", 4)]
    assert harness.as_admin().report(CAMPAIGN)["orphans"] == []


def test_publish_catches_up_with_nomination_and_refuses_while_it_cannot_tell(harness):
    load_forty(harness)
    harness.deliver(events.VOTE_CAST, vote_batch({"ghost": 2, "nom-late": 1}))
    harness.now = AFTER_VOTE

    def nomination_down(campaign_id):
        raise TimeoutError("nomination did not answer")

    harness.peer_data[("nomination", "list")] = nomination_down
    with pytest.raises(InvalidState, match="does not know"):
        harness.as_admin().publish(CAMPAIGN)
    assert harness.dispatched == []

    def nomination_list(campaign_id):
        # Every nomination of the campaign: "ghost" is none of them, one is not reviewed yet.
        return [dict(facts("nom-late", "rural", 50), id="nom-late", campaign_id=CAMPAIGN,
                     mobile="13812345678"),
                dict(facts("nom-new", "rural", 51, status="submitted"), id="nom-new",
                     campaign_id=CAMPAIGN)]

    harness.peer_data[("nomination", "list")] = nomination_list
    harness.as_admin().publish(CAMPAIGN)
    rows = {row["candidate_id"]: row for row in harness.as_admin().results(CAMPAIGN, CATEGORY)}
    assert rows["nom-late"]["votes"] == 1 and "ghost" not in rows and "nom-new" not in rows
    orphans = harness.as_admin().report(CAMPAIGN)["orphans"]
    assert orphans == [{"candidate_id": "ghost", "category": CATEGORY, "votes": 2,
                        "nomination": "not_a_candidate"}]
    assert "mobile" not in harness.store.results.find_one({"_id": "nom-late"})


def test_a_score_after_panel_closed_changes_nothing_whichever_arrives_first(db, harness):
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    before_close = at("2099-11-20T10:00:00")
    close = panel_closed({"a": 80.0}, occurred=at("2099-11-20T13:00:00"))
    late = score("a", "j1", 10.0, at("2099-11-20T14:00:00"))
    harness.deliver(events.SCORE_SUBMITTED, score("a", "j1", 80.0, before_close))
    harness.deliver(events.PANEL_CLOSED, close)
    harness.deliver(events.SCORE_SUBMITTED, late)
    first = harness.as_admin().report(CAMPAIGN)
    assert first["categories"][0]["rows"][0]["panel_score"] == 80.0
    assert harness.metric("pingxuan_aggregation_events_total", type="score_submitted",
                          outcome="ignored") == 1

    other = Harness(db.client[db.name + "_b"])
    other.deliver(events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, CAMPAIGN, campaign=campaign_document(), revision=1))
    for event_type, payload in [(events.SCORE_SUBMITTED, late),
                                (events.NOMINATION_REVIEWED, reviewed("a")),
                                (events.SCORE_SUBMITTED, score("a", "j1", 80.0, before_close)),
                                (events.PANEL_CLOSED, close)]:
        other.deliver(event_type, payload)
    second = other.as_admin().report(CAMPAIGN)
    db.client.drop_database(db.name + "_b")
    assert second["categories"] == first["categories"]
    # The same inputs (the late score is in neither): the same hash.
    assert second["inputs_hash"] == first["inputs_hash"]


def test_a_second_panel_close_is_ignored(harness):
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    harness.deliver(events.PANEL_CLOSED, panel_closed({"a": 80.0}))
    harness.deliver(events.PANEL_CLOSED, panel_closed({"a": 20.0}))
    assert harness.as_admin().results(CAMPAIGN, CATEGORY)[0]["panel_score"] == 80.0


def test_a_vote_for_a_disqualified_candidate_corrupts_nothing(harness):
    load_forty(harness)
    harness.deliver(events.CANDIDATE_DISQUALIFIED, disqualified("A14", minute=14))
    before = harness.as_admin().results(CAMPAIGN, CATEGORY)
    harness.deliver(events.VOTE_CAST, vote_batch({"A14": 50}))  # more than anyone else
    after = harness.as_admin().results(CAMPAIGN, CATEGORY)
    strip = lambda rows: [(r["candidate_id"], r["vote_score"], r["composite"], r["status"])  # noqa
                          for r in rows]
    assert strip(after) == strip(before)
    a14 = next(row for row in after if row["candidate_id"] == "A14")
    assert a14["status"] == "disqualified" and a14["votes"] == 3 + 50


def test_an_older_nomination_event_arriving_late_does_not_undo_a_newer_one(harness):
    harness.deliver(events.CANDIDATE_DISQUALIFIED, disqualified(
        "a", occurred=at("2099-11-05T00:00:00")))
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a", occurred=at("2099-10-31T00:00:00")))
    rows = harness.as_admin().results(CAMPAIGN, CATEGORY)
    assert [(row["candidate_id"], row["status"]) for row in rows] == [("a", "disqualified")]
    assert harness.metric("pingxuan_aggregation_events_total", type="nomination_reviewed",
                          outcome="ignored") == 1


def test_rejected_and_withdrawn_nominations_are_not_candidates(harness):
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("b", decision="reject"))
    harness.deliver(events.NOMINATION_WITHDRAWN, events.make_event(
        events.NOMINATION_WITHDRAWN, CAMPAIGN, at("2099-11-01T00:00:00"),
        **facts("a", "agency", 1, status="withdrawn"), reason="改推他人"))
    assert harness.as_admin().results(CAMPAIGN) == []


def test_a_campaign_whose_weights_do_not_add_up_to_1_is_refused_at_load(harness):
    document = campaign_document()
    document["id"] = "cb-bad"
    document["weights"] = {"public": 0.5, "panel": 0.6}
    harness.deliver(events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, "cb-bad", campaign=document, revision=1))
    with pytest.raises(NotFound):
        harness.as_admin().results("cb-bad")
    assert harness.store.campaigns.count_documents({"_id": "cb-bad"}) == 0
    assert harness.metric("pingxuan_aggregation_events_total", type="campaign_loaded",
                          outcome="refused") == 1


def test_a_malformed_event_is_refused_and_stores_nothing(harness):
    harness.deliver(events.VOTE_CAST, {"event_id": "x", "votes": "all of them"})
    harness.deliver(events.SCORE_SUBMITTED, dict(score("a", "j1", 1.0, DURING_VOTE), total="NaN?"))
    assert harness.store.results.count_documents({}) == 0
    assert harness.store.judge_scores.count_documents({}) == 0
    assert harness.metric("pingxuan_aggregation_events_total", type="vote_cast",
                          outcome="refused") == 1


# --- publish and finalize --------------------------------------------------------------------

def test_publish_is_refused_while_voting_is_open_or_a_panel_is_open_and_changes_nothing(harness):
    load_forty(harness)
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("star", None, 60, "learning_star"))
    before = snapshot(harness)
    with pytest.raises(InvalidState, match="voting"):
        harness.as_admin().publish(CAMPAIGN)
    harness.now = AFTER_VOTE
    with pytest.raises(InvalidState, match="learning_star"):
        harness.as_admin().publish(CAMPAIGN)
    with pytest.raises(InvalidState, match="published"):
        harness.as_admin().finalize(CAMPAIGN)
    with pytest.raises(InvalidState):
        harness.service().publicity_list(CAMPAIGN)
    assert snapshot(harness) == before
    assert harness.store.audit.read(campaign_id=CAMPAIGN) == []


def test_a_shortfall_is_reported_with_the_published_list(harness):
    for cid, org, minute in [("s1", "school", 1), ("r1", "rural", 2)]:
        harness.deliver(events.NOMINATION_REVIEWED, reviewed(cid, org, minute))
    harness.deliver(events.PANEL_CLOSED, panel_closed({"s1": 70.0, "r1": 80.0}))
    harness.now = AFTER_VOTE
    harness.as_admin().publish(CAMPAIGN)
    section = harness.as_admin().report(CAMPAIGN, CATEGORY)["categories"][0]
    short = {s["pool"]: s["missing"] for s in section["shortfalls"]}
    assert short == {"agency": 8, "school": 1, "enterprise": 1, "community": 1, "rural": 7}
    assert [row["status"] for row in section["rows"]] == ["selected", "selected"]


# --- who may call what, and bad arguments ----------------------------------------------------

def test_results_are_for_the_department(harness):
    for bad in (None, "not-a-token", token("admin", "宣传部")[:-4] + "AAAA"):
        with pytest.raises(Unauthorized):
            harness.service(bad).results(CAMPAIGN)
    for role in ("unit", "judge", "frontend"):
        with pytest.raises(Forbidden):
            harness.service(token(role, "某人")).results(CAMPAIGN)
        with pytest.raises(Forbidden):
            harness.service(token(role, "某人")).publish(CAMPAIGN)
        with pytest.raises(Forbidden):
            harness.service(token(role, "某人")).audit_trail(CAMPAIGN)
    with pytest.raises(Unauthorized):
        harness.service().tally(CAMPAIGN)


def test_arguments_are_values_not_queries(harness):
    admin = harness.as_admin()
    with pytest.raises(ValidationError) as refused:
        admin.results({"$gt": ""})
    assert "campaign_id" in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        admin.results(CAMPAIGN, "best_unit")
    assert "category" in refused.value.messages
    with pytest.raises(ValidationError):
        admin.report(CAMPAIGN, {"$ne": None})
    with pytest.raises(NotFound):
        admin.results("cb-unknown")


# --- rebuild ---------------------------------------------------------------------------------

def mirror_peers(harness, extra_votes=None):
    """nomination, voting and scoring answering with the records behind the events delivered."""
    records = [dict(facts(cid, org, minute), id=cid, campaign_id=CAMPAIGN, mobile="13812345678",
                    email="x@example.cn")
               for cid, org, _, _, _, minute in FORTY]
    votes = [{"vote_id": f"r{i}", "candidate_id": cid, "category": CATEGORY,
              "cast_at": "2099-11-10T01:00:00Z"}
             for cid, _, n, _, _, _ in FORTY for i in range(n // 200)]
    votes += [{"vote_id": f"x{i}", "candidate_id": cid, "category": CATEGORY,
               "cast_at": "2099-11-10T01:00:00Z"} for i, cid in enumerate(extra_votes or [])]

    def listing(campaign_id, status=None):
        return [r for r in records if r["status"] == status]

    def votes_page(campaign_id, after=None, limit=10000):
        start = after or 0
        page = votes[start:start + limit]
        return {"votes": page, "next": start + limit if start + limit < len(votes) else None}

    harness.peer_data.update({
        ("nomination", "list"): listing, ("voting", "votes_page"): votes_page,
        ("scoring", "scores"): {"scores": [], "panels": {CATEGORY: {
            "closed": True, "method": "mean",
            "panel_scores": {cid: (None if p is None else float(p))
                             for cid, _, _, p, _, _ in FORTY}}}}})


def test_rebuild_from_the_other_services_equals_the_incremental_state(harness):
    load_forty(harness)
    mirror_peers(harness)
    report = harness.as_admin().rebuild(CAMPAIGN)
    assert report["equal"] is True, report["differences"]
    assert report["incremental_hash"] == report["rebuilt_hash"]
    total = sum(votes // 200 for _, _, votes, _, _, _ in FORTY)
    assert report["votes"] == {"incremental": total, "rebuilt": total, "read": total}
    pages = [call for call in harness.peer_calls if call[1] == "votes_page"]
    assert len(pages) == -(-total // 7)  # 7 votes a page (REBUILD_PAGE_SIZE)
    assert harness.metric("pingxuan_aggregation_rebuild_seconds_count") == 1
    # The rebuild changed nothing.
    assert harness.as_admin().report(CAMPAIGN)["inputs_hash"] == report["incremental_hash"]


def test_rebuild_reports_what_differs(harness):
    load_forty(harness)
    mirror_peers(harness, extra_votes=["A05", "A05"])
    report = harness.as_admin().rebuild(CAMPAIGN)
    assert report["equal"] is False
    assert report["votes"]["rebuilt"] == report["votes"]["incremental"] + 2
    assert any("A05.votes_by_day: " in line and "'counted': 6" in line and "'counted': 8" in line
               for line in report["differences"])


def test_rebuild_after_a_disqualification_after_publish_still_compares_equal(harness):
    load_forty(harness)
    harness.now = AFTER_VOTE
    harness.as_admin().publish(CAMPAIGN)
    harness.deliver(events.CANDIDATE_DISQUALIFIED, disqualified("A03", minute=3))
    mirror_peers(harness)
    records = harness.peer_data[("nomination", "list")]("x", status="accepted") + \
        harness.peer_data[("nomination", "list")]("x", status="disqualified")
    for record in records:
        if record["id"] == "A03":
            record.update(status="disqualified", disqualification={"reason": "事迹材料失实"})
    harness.peer_data[("nomination", "list")] = (
        lambda campaign_id, status=None: [r for r in records if r["status"] == status])
    report = harness.as_admin().rebuild(CAMPAIGN)
    assert report["equal"] is True, report["differences"]
    assert report["rebuilt_hash"] == report["published_hash"]


def test_a_peer_reply_of_the_wrong_shape_is_refused(harness):
    load_forty(harness)
    mirror_peers(harness)
    harness.peer_data[("voting", "votes_page")] = {"votes": [{"vote_id": "v"}], "next": None}
    with pytest.raises(InvalidState, match="candidate_id"):
        harness.as_admin().rebuild(CAMPAIGN)
    harness.peer_data[("voting", "votes_page")] = {"rows": []}
    with pytest.raises(InvalidState, match="votes_page"):
        harness.as_admin().rebuild(CAMPAIGN)


# --- derived fields, tallies, the hash -------------------------------------------------------

def test_the_refresh_writes_each_results_document_and_announces_each_category_once(harness):
    load_forty(harness)
    harness.service().refresh_results()
    assert harness.event_types() == [events.RESULTS_UPDATED]
    assert harness.dispatched[0][1]["category"] == CATEGORY
    a01 = harness.store.results.find_one({"_id": "A01"})
    assert (a01["votes"], a01["vote_score"], a01["panel_score"], a01["composite"], a01["rank"],
            a01["status"]) == (9, 90.0, 90.0, 90.0, 1, "selected")
    harness.service().refresh_results()
    assert len(harness.dispatched) == 1  # nothing changed since
    harness.deliver(events.VOTE_CAST, vote_batch({"A13": 1}))
    harness.service().refresh_results()
    assert harness.event_types() == [events.RESULTS_UPDATED] * 2
    assert harness.store.results.find_one({"_id": "A13"})["votes"] == 1


def test_the_live_tally_is_served_from_a_short_cache(harness):
    harness.cache = ExpiringCache(60, min_age=60)
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("b"))
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 1, "b": 2}))
    reader = harness.service(token("frontend", "小程序"))
    assert [(r["candidate_id"], r["votes"]) for r in reader.tally(CAMPAIGN)["rows"]] == [
        ("b", 2), ("a", 1)]
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 5}))
    assert [(r["candidate_id"], r["votes"]) for r in reader.tally(CAMPAIGN)["rows"]] == [
        ("b", 2), ("a", 1)]  # cached
    assert reader.tally(CAMPAIGN, "learning_star")["rows"] == []
    harness.cache = ExpiringCache(0)
    assert harness.service(token("judge", "j1")).tally(CAMPAIGN)["rows"][0] == {
        "candidate_id": "a", "category": CATEGORY, "nominee_name": "a单位党组织",
        "org_type": "agency", "votes": 6}


def test_a_counted_vote_marks_the_cached_tally_changed(harness):
    clock = [0.0]
    harness.cache = ExpiringCache(60, min_age=0.25, clock=lambda: clock[0])
    harness.deliver(events.NOMINATION_REVIEWED, reviewed("a"))
    reader = harness.service(token("frontend", "小程序"))
    assert reader.tally(CAMPAIGN)["rows"][0]["votes"] == 0
    clock[0] = 1.0
    assert reader.tally(CAMPAIGN)["rows"][0]["votes"] == 0  # unchanged: cached (ttl 60)
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 3}))
    assert reader.tally(CAMPAIGN)["rows"][0]["votes"] == 3  # changed and old enough: afresh
    harness.deliver(events.VOTE_CAST, vote_batch({"a": 1}))
    assert reader.tally(CAMPAIGN)["rows"][0]["votes"] == 3  # the floor: not twice at once
    clock[0] = 1.3
    assert reader.tally(CAMPAIGN)["rows"][0]["votes"] == 4


def test_anyone_can_recompute_the_hash_from_the_reported_inputs(harness):
    load_forty(harness)
    harness.deliver(events.SCORE_SUBMITTED, score("A01", "评委-1", 88.5, at("2099-11-20T10:00:00")))
    report = harness.as_admin().report(CAMPAIGN, include_inputs=True)
    import json
    text = json.dumps(report["inputs"], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == report["inputs_hash"]
    # The judge is there under an anonymous label, never by id.
    assert report["inputs"]["categories"][CATEGORY]["candidates"]["A01"]["judges"] == {
        "J1": {"results": "88.5"}}
    assert "评委-1" not in text
    assert domain.inputs_hash(report["inputs"]) == report["live_inputs_hash"]


def test_rebuild_progress_tells_how_far_the_latest_rebuild_got(harness):
    load_forty(harness)
    mirror_peers(harness)
    with pytest.raises(NotFound):
        harness.as_admin().rebuild_progress(CAMPAIGN)
    seen = []
    paging = harness.peer_data[("voting", "votes_page")]

    def votes_page(campaign_id, after=None, limit=10000):
        # What the CLI's bar reads while the rebuild runs (any instance: it is in the store).
        seen.append(harness.as_admin().rebuild_progress(campaign_id))
        return paging(campaign_id, after, limit)

    harness.peer_data[("voting", "votes_page")] = votes_page
    report = harness.as_admin().rebuild(CAMPAIGN)
    total = report["votes"]["read"]
    assert [(p["state"], p["votes_read"], p["pages"]) for p in seen[:3]] == [
        ("running", 0, 0), ("running", 7, 1), ("running", 14, 2)]
    assert {p["votes_expected"] for p in seen} == {report["votes"]["incremental"]}
    done = harness.as_admin().rebuild_progress(CAMPAIGN)
    assert (done["state"], done["votes_read"], done["pages"], done["error"]) == (
        "done", total, len(seen), None)
    assert done["finished_at"] is not None
    with pytest.raises(Forbidden):
        harness.service(token("frontend", "小程序")).rebuild_progress(CAMPAIGN)


def test_a_failed_rebuild_says_so_in_its_progress(harness):
    load_forty(harness)
    mirror_peers(harness)
    harness.peer_data[("voting", "votes_page")] = {"rows": []}
    with pytest.raises(InvalidState):
        harness.as_admin().rebuild(CAMPAIGN)
    progress = harness.as_admin().rebuild_progress(CAMPAIGN)
    assert progress["state"] == "failed" and "votes_page" in progress["error"]


class Votes(list):
    """A page's votes that a weak reference can watch (a plain list cannot be)."""


def test_rebuild_asks_one_page_at_a_time_and_keeps_no_page(harness):
    """Memory bounded: each page is asked after the previous one's ``next``, never more than
    REBUILD_PAGE_SIZE votes, and a page is let go once counted (the counts are kept)."""
    import gc
    import weakref

    load_forty(harness)
    mirror_peers(harness)
    paging = harness.peer_data[("voting", "votes_page")]
    asked, pages = [], []

    def votes_page(campaign_id, after=None, limit=10000):
        gc.collect()
        # The page before the last one is gone (the last one is still the caller's variable).
        assert all(page() is None for page in pages[:-1])
        assert after == (None if not asked else asked[-1]["next"])
        reply = paging(campaign_id, after, limit)
        asked.append(reply)
        votes = Votes(reply["votes"])
        pages.append(weakref.ref(votes))
        return {"votes": votes, "next": reply["next"]}

    harness.peer_data[("voting", "votes_page")] = votes_page
    report = harness.as_admin().rebuild(CAMPAIGN)
    assert report["equal"] is True and len(asked) > 3
    assert all(len(reply["votes"]) <= 7 for reply in asked)  # REBUILD_PAGE_SIZE
    gc.collect()
    assert all(page() is None for page in pages)
