"""A candidate disqualified a moment ago, with two voting instances on one store (issue 12, item 9).

nomination's ``candidate_disqualified`` reaches one instance of voting (the
instances share the event queue); every instance must refuse the next vote for
that candidate, because each group commit reads the ballot from the shared
store, not from what its own process heard. A vote accepted just before stays
stored (it was valid when cast); services/voting/README.md says why it is
counted nowhere, and tests/service/test_aggregation_disqualified.py shows it
moves no ranking.
"""
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import entrypoint_hook

from services.voting.service import VotingService
from services.voting.store import VotingStore
from shared import events
from shared.errors import NotFound
from shared.store import connect
from tests.conftest import campaign_document, token
from tests.system import free_port

pytestmark = pytest.mark.broker

FRONTEND = token("frontend", "wechat-backend")


def instance_config(service_config):
    # Same vhost and database; each instance its own HTTP port, as two pods would have.
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
                OTP_SENDER="log")


@pytest.fixture
def two_instances(container_factory, service_config):
    first = container_factory(VotingService, instance_config(service_config))
    second = container_factory(VotingService, instance_config(service_config))
    first.start()
    second.start()
    return first, second


def deliver(container, handler, event_type, **facts):
    """Hand one instance an event as the broker would (only one instance gets each)."""
    payload = events.make_event(event_type, facts.pop("campaign_id", "cb-test"), **facts)
    with entrypoint_hook(container, handler) as handle:
        handle(payload)


def candidate_facts(candidate_id, status):
    return dict(nomination_id=candidate_id, unit="城关镇党委", category="advanced_unit",
                org_type="agency", nominee_name=f"候选{candidate_id}", nominee_unit="县财政局",
                deeds_summary="坚持每周集中学习。", status=status,
                submitted_at="2026-10-10T02:00:00Z")


def cast(container, vote_id, candidate_id, mobile):
    with entrypoint_hook(container, "cast", context_data={"auth_token": FRONTEND}) as call:
        return call({"vote_id": vote_id, "campaign_id": "cb-test", "candidate_id": candidate_id,
                     "voter": {"channel": "mobile", "id": mobile},
                     "client": {"ip": "203.0.113.7", "user_agent": "test"}})


def cast_many(container, votes):
    with entrypoint_hook(container, "cast_many", context_data={"auth_token": FRONTEND}) as call:
        return call([{"vote_id": vote_id, "campaign_id": "cb-test", "candidate_id": cid,
                      "voter": {"channel": "mobile", "id": mobile},
                      "client": {"ip": "203.0.113.8", "user_agent": "test"}}
                     for vote_id, cid, mobile in votes])


def ballot_ids(container):
    with entrypoint_hook(container, "ballot") as read:
        return sorted(row["candidate_id"] for row in read("cb-test"))


def test_both_instances_refuse_a_candidate_disqualified_on_one_and_keep_the_vote_before(
        two_instances, service_config):
    first, second = two_instances
    now = datetime.now(timezone.utc)
    local = lambda moment: (moment + timedelta(hours=8)).replace(  # noqa: E731
        microsecond=0, tzinfo=None).isoformat()
    document = campaign_document(
        nomination={"deadline": local(now - timedelta(days=2))},
        voting={"opens": local(now - timedelta(days=1)), "closes": local(now + timedelta(days=10)),
                "ip_limit": 1000})
    deliver(first, "on_campaign_loaded", events.CAMPAIGN_LOADED, campaign_id=document["id"],
            campaign=document, revision=1)
    for candidate_id in ("nom-a", "nom-x"):
        deliver(first, "on_nomination_reviewed", events.NOMINATION_REVIEWED,
                **candidate_facts(candidate_id, "accepted"), decision="accept", opinion="同意")

    # Both instances have voted for both candidates (their caches are warm) ...
    assert cast(first, "v-1", "nom-x", "13800000001")["status"] == "accepted"
    assert cast(second, "v-2", "nom-a", "13800000002")["status"] == "accepted"
    # ... and this vote slips in just before the disqualification arrives.
    slipped = cast(second, "v-3", "nom-x", "13800000003")
    assert slipped["status"] == "accepted"
    assert ballot_ids(first) == ballot_ids(second) == ["nom-a", "nom-x"]

    # The event reaches the first instance only.
    deliver(first, "on_candidate_disqualified", events.CANDIDATE_DISQUALIFIED,
            **candidate_facts("nom-x", "disqualified"), candidate_id="nom-x", reason="材料失实")

    for instance, mobile in ((first, "13800000004"), (second, "13800000005")):
        with pytest.raises(NotFound) as refused:
            cast(instance, f"late-{mobile}", "nom-x", mobile)
        assert "not on the ballot" in str(refused.value)
        results = cast_many(instance, [(f"batch-{mobile}-x", "nom-x", mobile),
                                       (f"batch-{mobile}-a", "nom-a", mobile)])
        assert [(r["status"], r.get("error")) for r in results] == [
            ("refused", "NotFound"), ("accepted", None)]
        assert ballot_ids(instance) == ["nom-a"]

    store = VotingStore(connect(service_config["MONGO_URI"])[service_config["MONGO_DB"]])
    # Refused votes store nothing; the two votes for nom-x from before stay as they were.
    assert sorted(v["vote_id"] for v in store.votes.find({"candidate_id": "nom-x"})) == [
        "v-1", "v-3"]
    assert store.ledger.count_documents({"candidate_id": "nom-x", "error": "NotFound"}) == 4
    # A resend of the vote that slipped in is answered as the first time, not counted again.
    assert cast(first, "v-3", "nom-x", "13800000003")["receipt"] == slipped["receipt"]
    assert store.votes.count_documents({"candidate_id": "nom-x"}) == 2
