"""票數清零 with ``worker_factory``: suspicious findings, void_votes, restore_votes, receipts.

Every refusal is checked to change nothing: no vote marked, no void stored, no event.
"""
import json
from datetime import timedelta

import pytest

from shared import events
from shared.errors import Forbidden, InvalidState, NotFound, ValidationError
from tests.conftest import campaign_document, token
from tests.service.test_voting_service import CANDIDATES, Harness, reviewed, vote

VOTING = {"opens": "2099-11-01T08:00:00", "closes": "2099-11-20T20:00:00",
          "suspicion": {"burst_votes": 8, "burst_minutes": 5, "agent_voters": 6,
                        "agent_minutes": 5, "spike_min_votes": 8, "spike_factor": 4}}
BURST_NET = "203.0.113.0/24"
REASON = "同一网段5分钟内集中投票，经核实为刷票"


class VoidHarness(Harness):
    """Also answers aggregation.publication, as a deployed aggregation would."""

    phase = "open"

    def nomination(self, service, method, campaign_id, **filters):
        if (service, method) == ("aggregation", "publication"):
            return {"campaign_id": campaign_id, "phase": self.phase, "revision": 1,
                    "published_at": "2099-11-21T02:00:00Z"}
        return super().nomination(service, method, campaign_id, **filters)


@pytest.fixture
def harness(db):
    harness = VoidHarness(db)
    harness.store.campaigns.insert_one({"_id": "cb-test", "revision": 1,
                                        "document": campaign_document(voting=VOTING)})
    harness.store.ballot_copy.mark_caught_up("cb-test")
    for candidate_id in CANDIDATES:
        harness.service().on_nomination_reviewed(reviewed(candidate_id))
    return harness


def burst(harness, count=10, candidate_id="nom-a", prefix="203.0.113", start=0):
    """``count`` voters from one /24 within a minute, each from its own address."""
    replies = harness.frontend().cast_many([
        vote(f"burst-{start + n}", candidate_id, mobile=f"1390000{start + n:04d}",
             ip=f"{prefix}.{start + n + 1}") for n in range(count)])
    assert {reply["status"] for reply in replies} == {"accepted"}, replies
    return replies


def background(harness, count=3):
    """Ordinary votes from several networks, some later."""
    for n in range(count):
        harness.now += timedelta(minutes=7)
        harness.frontend().cast(vote(f"bg-{n}", CANDIDATES[n % 2], mobile=f"1370000{n:04d}",
                                     ip=f"198.51.{100 + n}.9"))


def ballot_votes(harness, candidate_id="nom-a"):
    harness.cache.forget("cb-test")
    return {row["candidate_id"]: row["votes"] for row in
            harness.service().ballot("cb-test")}[candidate_id]


def events_of(harness, event_type):
    return [payload for kind, payload in harness.dispatched if kind == event_type]


def state(harness):
    """Everything a refused void or restore must leave as it was."""
    return (sorted((row["_id"], row.get("void_id")) for row in harness.store.votes.find()),
            sorted(json.dumps(row, default=str, sort_keys=True)
                   for row in harness.store.voids.find()),
            len(harness.dispatched), harness.store.audit.collection.count_documents({}))


def test_a_burst_is_found_voided_and_restored_exactly(harness):
    replies = burst(harness)
    background(harness)
    admin = harness.admin()
    found = [f for f in admin.suspicious("cb-test") if f["rule"] == "network_burst"]
    assert len(found) == 1
    finding = found[0]
    assert (finding["network"], finding["candidate_id"], finding["votes"]) == (BURST_NET,
                                                                              "nom-a", 10)
    assert "8 or more votes from one network within 5 minutes" in finding["evidence"]
    assert finding["threshold"] == {"burst_votes": 8, "burst_minutes": 5}
    assert state(harness)[1] == []  # suspicious voids nothing
    assert ballot_votes(harness) == 12

    selector = {key: finding[key] for key in ("candidate_id", "network", "from", "to")}
    voided = admin.void_votes("cb-test", selector, REASON)
    assert voided["voided"] == 10 and voided["void_id"]
    assert ballot_votes(harness) == 2
    [event] = events_of(harness, events.VOTES_VOIDED)
    assert event["void_id"] == voided["void_id"] and event["voided"] == 10
    assert event["counts"] == [{"candidate_id": "nom-a", "category": "advanced_unit",
                                "day": "2099-11-02", "votes": 10}]
    assert sorted(event["vote_ids"]) == sorted(r["vote_id"] for r in replies)
    # The receipt says voided, and why; the page too.
    receipt = admin.check_receipt(replies[0]["receipt"])
    assert receipt["counted"] is False and receipt["status"] == "voided"
    assert receipt["void"]["reason"] == REASON
    # Voided votes are flagged for the rebuild, and leave the findings.
    page = admin.votes_page("cb-test")["votes"]
    assert sum(v["voided"] for v in page) == 10 and len(page) == 13
    assert [f for f in admin.suspicious("cb-test") if f["rule"] == "network_burst"] == []

    # The same call again answers the same void and announces nothing new.
    assert admin.void_votes("cb-test", dict(selector), REASON) == voided
    assert len(events_of(harness, events.VOTES_VOIDED)) == 1

    # The once-a-day claim stays: the voter cannot vote for nom-a again today.
    again = harness.frontend().cast_many([vote("again-0", "nom-a", mobile="13900000000",
                                               ip="192.0.2.1")])
    assert again[0]["error"] == "DuplicateVote"

    restored = admin.restore_votes(voided["void_id"], "复核后确认为单位集中组织的正常投票")
    assert restored == {"void_id": voided["void_id"], "restored": 10}
    assert ballot_votes(harness) == 12
    [back] = events_of(harness, events.VOTES_RESTORED)
    assert back["counts"] == event["counts"] and back["vote_ids"] == event["vote_ids"]
    assert admin.check_receipt(replies[0]["receipt"])["status"] == "counted"

    before = state(harness)
    with pytest.raises(InvalidState):
        admin.restore_votes(voided["void_id"], "再次恢复")
    assert state(harness) == before

    trail = admin.audit_trail("cb-test")
    assert [entry["action"] for entry in trail] == ["void_votes", "restore_votes"]
    assert trail[0]["actor"]["name"] == "宣传部" and trail[0]["note"] == REASON
    ledger = admin.fraud_ledger("cb-test")
    assert [(v["void_id"], v["state"], v["voided"]) for v in ledger["voids"]] == [
        (voided["void_id"], "restored", 10)]

    # Voiding the same votes again after the restore is a new void.
    second = admin.void_votes("cb-test", selector, REASON)
    assert second["void_id"] != voided["void_id"] and second["voided"] == 10


def test_a_vote_already_voided_is_not_voided_twice(harness):
    burst(harness, 6)
    admin = harness.admin()
    first = admin.void_votes("cb-test", {"vote_ids": ["burst-0", "burst-1"]}, REASON)
    wider = admin.void_votes("cb-test", {"network": "203.0.0.0/16"}, REASON)
    assert (first["voided"], wider["voided"]) == (2, 4)
    before = state(harness)
    with pytest.raises(NotFound) as refused:
        admin.void_votes("cb-test", {"candidate_id": "nom-a"}, REASON)
    assert "not voided twice" in str(refused.value)
    assert state(harness) == before
    # Restoring the first brings back exactly its two votes.
    admin.restore_votes(first["void_id"], "误作废")
    assert ballot_votes(harness) == 2


@pytest.mark.parametrize("selector, reason, field", [
    ({"network": BURST_NET}, None, "reason"),
    ({"network": BURST_NET}, "", "reason"),
    ({"network": BURST_NET}, "   ", "reason"),
    ({"network": BURST_NET}, {"$ne": ""}, "reason"),
    ({}, REASON, "selector"),
    ("203.0.113.0/24", REASON, "selector"),
    ({"network": "203.0.113.0/33"}, REASON, "selector.network"),
    ({"network": "not-a-network"}, REASON, "selector.network"),
    ({"network": "203.0.113.7"}, REASON, "selector.network"),
    ({"network": "203.0.113.0/28"}, REASON, "selector.network"),
    ({"network": {"$regex": "."}}, REASON, "selector.network"),
    ({"from": "yesterday"}, REASON, "selector.from"),
    ({"from": "2099-11-02T10:00:00"}, REASON, "selector.from"),
    ({"from": "2099-11-02T03:00:00Z", "to": "2099-11-02T02:00:00Z"}, REASON, "selector.to"),
    ({"vote_ids": []}, REASON, "selector.vote_ids"),
    ({"vote_ids": ["burst-0"], "candidate_id": "nom-a"}, REASON, "selector"),
    ({"ip": "203.0.113.7"}, REASON, "selector.ip"),
])
def test_bad_void_input_is_a_validation_error_and_changes_nothing(harness, selector, reason,
                                                                  field):
    burst(harness, 3)
    before = state(harness)
    with pytest.raises(ValidationError) as refused:
        harness.admin().void_votes("cb-test", selector, reason)
    assert field in refused.value.messages, refused.value.messages
    assert state(harness) == before


@pytest.mark.parametrize("selector", [
    {"candidate_id": "nom-unknown"}, {"vote_ids": ["burst-0", "no-such-vote"]},
    {"network": "192.0.2.0/24"}])
def test_an_unknown_candidate_vote_or_empty_match_is_not_found(harness, selector):
    burst(harness, 3)
    before = state(harness)
    with pytest.raises(NotFound):
        harness.admin().void_votes("cb-test", selector, REASON)
    assert state(harness) == before


def test_restore_of_an_unknown_void_or_without_a_reason(harness):
    burst(harness, 3)
    voided = harness.admin().void_votes("cb-test", {"network": BURST_NET}, REASON)
    before = state(harness)
    with pytest.raises(NotFound):
        harness.admin().restore_votes("void-none-1", "误作废")
    with pytest.raises(ValidationError) as refused:
        harness.admin().restore_votes(voided["void_id"], "")
    assert "reason" in refused.value.messages
    assert state(harness) == before


def test_after_publication_nothing_is_voided_or_restored(harness):
    burst(harness, 3)
    admin = harness.admin()
    voided = admin.void_votes("cb-test", {"network": BURST_NET}, REASON)
    harness.service().on_list_published(events.make_event(
        events.LIST_PUBLISHED, "cb-test", revision=1, inputs_hash="ab" * 32))
    before = state(harness)
    with pytest.raises(InvalidState):
        admin.void_votes("cb-test", {"candidate_id": "nom-b"}, REASON)
    with pytest.raises(InvalidState):
        admin.restore_votes(voided["void_id"], "误作废")
    assert state(harness) == before


@pytest.mark.parametrize("role, name", [("unit", "城关镇党委"), ("judge", "j-zhang"),
                                        ("frontend", "wechat-backend")])
def test_only_the_department_looks_for_suspicious_votes_and_voids(harness, role, name):
    burst(harness, 3)
    voided = harness.admin().void_votes("cb-test", {"network": BURST_NET}, REASON)
    before = state(harness)
    caller = harness.service(token(role, name, unit="城关镇党委" if role != "frontend" else None))
    with pytest.raises(Forbidden):
        caller.suspicious("cb-test")
    with pytest.raises(Forbidden):
        caller.void_votes("cb-test", {"candidate_id": "nom-a"}, REASON)
    with pytest.raises(Forbidden):
        caller.restore_votes(voided["void_id"], "误作废")
    assert state(harness) == before


def test_a_receipt_for_a_disqualified_candidate_says_so(harness):
    [reply] = burst(harness, 1, candidate_id="nom-b")
    harness.service().on_candidate_disqualified(events.make_event(
        events.CANDIDATE_DISQUALIFIED, "cb-test", nomination_id="nom-b", candidate_id="nom-b",
        unit="城关镇党委", category="advanced_unit", org_type="agency", nominee_name="候选nom-b",
        nominee_unit="县财政局", deeds_summary="…", status="disqualified",
        submitted_at="2099-10-10T02:00:00Z", reason="公示期间查实材料不实"))
    receipt = harness.service().check_receipt(reply["receipt"])
    assert receipt["counted"] is False and receipt["status"] == "candidate_disqualified"
    assert receipt["disqualification_reason"] == "公示期间查实材料不实"


def test_a_void_whose_event_failed_is_announced_by_the_sweep(harness):
    burst(harness, 3)
    harness.fail_dispatch = True
    voided = harness.admin().void_votes("cb-test", {"network": BURST_NET}, REASON)
    assert voided["voided"] == 3 and events_of(harness, events.VOTES_VOIDED) == []
    harness.fail_dispatch = False
    harness.service().sweep_outbox()
    assert events_of(harness, events.VOTES_VOIDED) == []  # within the grace: a live call
    harness.now += timedelta(minutes=1)
    harness.service().sweep_outbox()
    [event] = events_of(harness, events.VOTES_VOIDED)
    assert event["voided"] == 3
    harness.service().sweep_outbox()
    assert len(events_of(harness, events.VOTES_VOIDED)) == 1


def test_a_void_left_half_done_is_completed(harness):
    """A crash after the votes were marked and before the event: the resend completes it."""
    burst(harness, 3)
    admin = harness.admin()
    original = harness.store.finish_void
    harness.store.finish_void = lambda *args: (_ for _ in ()).throw(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        admin.void_votes("cb-test", {"network": BURST_NET}, REASON)
    harness.store.finish_void = original
    assert events_of(harness, events.VOTES_VOIDED) == []
    assert admin.void_votes("cb-test", {"network": BURST_NET}, REASON)["voided"] == 3
    assert len(events_of(harness, events.VOTES_VOIDED)) == 1


def test_a_voting_that_missed_list_published_asks_aggregation(harness):
    burst(harness, 3)
    harness.phase = "published"
    before = state(harness)
    with pytest.raises(InvalidState):
        harness.admin().void_votes("cb-test", {"network": BURST_NET}, REASON)
    assert state(harness) == before
    harness.phase = "open"   # remembered: aggregation is not asked again
    with pytest.raises(InvalidState):
        harness.admin().void_votes("cb-test", {"network": BURST_NET}, REASON)


def test_when_aggregation_cannot_answer_the_events_decide(harness):
    burst(harness, 3)
    harness.phase = None
    harness.nomination = lambda *args, **kwargs: (_ for _ in ()).throw(TimeoutError("down"))
    assert harness.admin().void_votes("cb-test", {"network": BURST_NET}, REASON)["voided"] == 3
