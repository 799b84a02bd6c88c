"""票數清零 across real containers on the real RabbitMQ: voting voids, aggregation follows.

A burst is cast over RPC, found by ``voting.suspicious``, voided and restored; each
step travels as an event to a running aggregation, whose results follow exactly.
Waits are on entrypoints (``entrypoint_waiter``), never sleeps.
"""
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from services.aggregation.service import AggregationService
from services.aggregation.store import AggregationStore
from services.voting.service import VotingService
from shared import events
from shared.errors import InvalidState
from shared.store import connect
from tests.conftest import campaign_document, token
from tests.integration.test_voting_container import rpc
from tests.system import free_port

pytestmark = pytest.mark.broker

ADMIN = token("admin", "宣传部")


@pytest.fixture
def configs(service_config):
    voting = dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
                  OTP_SENDER="log")
    aggregation = dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
                       MONGO_DB=f"{service_config['MONGO_DB']}_agg")
    yield voting, aggregation
    connect(aggregation["MONGO_URI"]).drop_database(aggregation["MONGO_DB"])


@pytest.fixture
def running(container_factory, configs):
    voting_config, aggregation_config = configs
    aggregation = container_factory(AggregationService, aggregation_config)
    voting = container_factory(VotingService, voting_config)
    aggregation.start()
    voting.start()
    today = datetime.now(timezone.utc)
    local = lambda moment: (moment + timedelta(hours=8)).replace(microsecond=0, tzinfo=None)
    document = campaign_document(
        nomination={"deadline": local(today - timedelta(days=2)).isoformat()},
        voting={"opens": local(today - timedelta(days=1)).isoformat(),
                "closes": local(today + timedelta(days=10)).isoformat(), "ip_limit": 1000,
                "suspicion": {"burst_votes": 10, "burst_minutes": 5}})
    dispatch = event_dispatcher(voting_config)
    with entrypoint_waiter(voting, "on_campaign_loaded"), \
            entrypoint_waiter(aggregation, "on_campaign_loaded"):
        dispatch(events.NOMINATION, events.CAMPAIGN_LOADED, events.make_event(
            events.CAMPAIGN_LOADED, document["id"], campaign=document, revision=1))
    for minute, candidate_id in enumerate(("nom-a", "nom-b")):
        with entrypoint_waiter(voting, "on_nomination_reviewed"), \
                entrypoint_waiter(aggregation, "on_nomination_reviewed"):
            dispatch(events.NOMINATION, events.NOMINATION_REVIEWED, events.make_event(
                events.NOMINATION_REVIEWED, "cb-test", nomination_id=candidate_id,
                unit="城关镇党委", category="advanced_unit", org_type="agency",
                nominee_name=f"候选{candidate_id}", nominee_unit="县财政局",
                deeds_summary="坚持每周集中学习。", status="accepted",
                submitted_at=f"2026-10-10T02:0{minute}:00Z", decision="accept",
                opinion="符合条件"))
    return voting, aggregation, voting_config, AggregationStore(
        connect(aggregation_config["MONGO_URI"])[aggregation_config["MONGO_DB"]])


def votes_of(config):
    with rpc(config, ADMIN) as client:
        return {row["candidate_id"]: (row["votes"], row["voided_votes"])
                for row in client.aggregation.results("cb-test", "advanced_unit")}


def test_a_burst_voided_and_restored_moves_aggregations_results_exactly(running):
    voting, aggregation, config, agg_store = running
    burst = [{"vote_id": f"burst-{n}", "campaign_id": "cb-test", "candidate_id": "nom-a",
              "voter": {"channel": "mobile", "id": f"1390000{n:04d}"},
              "client": {"ip": f"203.0.113.{n + 1}", "user_agent": "test"}} for n in range(12)]
    others = [dict(vote, vote_id=f"other-{n}", candidate_id="nom-b",
                   client={"ip": f"198.51.{100 + n}.7", "user_agent": "test"})
              for n, vote in enumerate(burst[:3])]
    all_counted = lambda *args: agg_store.counted_votes.count_documents({}) == 15  # noqa: E731
    with entrypoint_waiter(aggregation, "on_vote_cast", callback=all_counted, timeout=30):
        with rpc(config, token("frontend", "wechat-backend")) as client:
            replies = client.voting.cast_many(burst + others)
    assert {reply["status"] for reply in replies} == {"accepted"}
    assert votes_of(config) == {"nom-a": (12, 0), "nom-b": (3, 0)}

    with rpc(config, ADMIN) as client:
        [finding] = [f for f in client.voting.suspicious("cb-test")
                     if f["rule"] == "network_burst"]
        assert finding["votes"] == 12 and finding["network"] == "203.0.113.0/24"
        selector = {key: finding[key] for key in ("candidate_id", "network", "from", "to")}
        with entrypoint_waiter(aggregation, "on_votes_voided"):
            voided = client.voting.void_votes("cb-test", selector, "同一网段集中投票")
    assert voided["voided"] == 12
    assert votes_of(config) == {"nom-a": (0, 12), "nom-b": (3, 0)}

    with rpc(config, ADMIN) as client:
        with entrypoint_waiter(aggregation, "on_votes_restored"):
            assert client.voting.restore_votes(voided["void_id"], "复核无误")["restored"] == 12
    assert votes_of(config) == {"nom-a": (12, 0), "nom-b": (3, 0)}
    assert sum(row["voided"] for row in agg_store.daily_votes("cb-test")) == 0
    assert sum(row["counted"] for row in agg_store.daily_votes("cb-test")) == 15

    # Once aggregation has published the list, voting refuses to void.
    with entrypoint_waiter(voting, "on_list_published"):
        event_dispatcher(config)(events.AGGREGATION, events.LIST_PUBLISHED, events.make_event(
            events.LIST_PUBLISHED, "cb-test", revision=1, inputs_hash="ab" * 32))
    with rpc(config, ADMIN) as client:
        with pytest.raises(InvalidState):
            client.voting.void_votes("cb-test", selector, "同一网段集中投票")
    assert votes_of(config) == {"nom-a": (12, 0), "nom-b": (3, 0)}
