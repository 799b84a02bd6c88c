"""The voting service in a real container on the real RabbitMQ.

Votes arrive over nameko RPC, concurrently; the campaign and the ballot arrive
as nomination's events; ``vote_cast`` batches go out through the broker to a
stand-in consumer that de-duplicates on vote_id, as aggregation must.
"""
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook, entrypoint_waiter, replace_dependencies

from services.voting import domain
from services.voting.commit import BATCH_GRACE, GroupCommit
from services.voting.service import VotingService
from services.voting.store import VotingStore
from shared import events
from shared.errors import DuplicateVote
from shared.store import connect
from tests.conftest import campaign_document, token
from tests.system import free_port

pytestmark = pytest.mark.broker


class VoteLog:
    """A stand-in consumer of ``vote_cast``: keeps every event and counts each vote_id once."""

    name = "vote_log"
    events_seen = []
    counted = {}

    @event_handler(events.VOTING, events.VOTE_CAST)
    def on_vote_cast(self, payload):
        event = events.read_event(events.VOTE_CAST, payload)
        self.events_seen.append(event)
        for vote in event["votes"]:
            self.counted.setdefault(vote["vote_id"], vote)


@pytest.fixture
def config(service_config):
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}", max_workers=50,
                OTP_SENDER="log")


@pytest.fixture
def vote_log(container_factory, config):
    VoteLog.events_seen, VoteLog.counted = [], {}
    container = container_factory(VoteLog, config)
    container.start()
    return container


@pytest.fixture
def voting(container_factory, config, vote_log):
    """A running voting service that has heard of an open campaign and two candidates."""
    container = container_factory(VotingService, config)
    container.start()
    return hear_campaign(container, config)


def hear_campaign(container, config):
    """Tell the container of an open campaign and two candidates, as nomination would."""
    today = datetime.now(timezone.utc)
    local = lambda moment: (moment + timedelta(hours=8)).replace(microsecond=0, tzinfo=None)
    document = campaign_document(
        nomination={"deadline": local(today + timedelta(days=5)).isoformat()},
        voting={"opens": local(today - timedelta(days=1)).isoformat(),
                "closes": local(today + timedelta(days=10)).isoformat(), "daily_limit": 5,
                "ip_limit": 1000})
    dispatch = event_dispatcher(config)
    with entrypoint_waiter(container, "on_campaign_loaded"):
        dispatch(events.NOMINATION, events.CAMPAIGN_LOADED, events.make_event(
            events.CAMPAIGN_LOADED, document["id"], campaign=document, revision=1))
    for candidate_id in ("nom-a", "nom-b"):
        with entrypoint_waiter(container, "on_nomination_reviewed"):
            dispatch(events.NOMINATION, events.NOMINATION_REVIEWED, events.make_event(
                events.NOMINATION_REVIEWED, "cb-test", nomination_id=candidate_id,
                unit="城关镇党委", category="advanced_unit", org_type="agency",
                nominee_name=f"候选{candidate_id}", nominee_unit="县财政局",
                deeds_summary="坚持每周集中学习。", status="accepted",
                submitted_at="2026-10-10T02:00:00Z", decision="accept", opinion="符合条件"))
    return container


def rpc(config, auth_token, timeout=60):
    return ClusterRpcProxy(config, context_data={"auth_token": auth_token}, timeout=timeout)


def vote(vote_id, candidate_id="nom-a", mobile="13812345678"):
    return {"vote_id": vote_id, "campaign_id": "cb-test", "candidate_id": candidate_id,
            "voter": {"channel": "mobile", "id": mobile},
            "client": {"ip": "203.0.113.7", "user_agent": "test"}}


def test_the_group_commit_stores_and_announces_with_its_own_store_dispatcher_and_clock(
        container_factory, config, vote_log):
    """A group holds many callers' votes: it is stored and announced by the committer's own
    store handle and dispatcher, not the first waiting worker's."""
    container = container_factory(VotingService, config)
    workers_dispatch = replace_dependencies(container, "dispatch")
    container.start()
    hear_campaign(container, config)
    committer = next(ext for ext in container.extensions if isinstance(ext, GroupCommit))
    assert committer.store not in container.dependencies
    assert committer.events not in container.dependencies
    with entrypoint_waiter(vote_log, "on_vote_cast"):
        with rpc(config, token("frontend", "wechat-backend")) as proxy:
            assert proxy.voting.cast_many([vote("own-1"), vote("own-2", "nom-b")])[1][
                "status"] == "accepted"
    assert set(VoteLog.counted) == {"own-1", "own-2"}
    assert not [call for call in workers_dispatch.call_args_list
                if call.args and call.args[0] == events.VOTE_CAST]
    assert store_of(config).votes.count_documents({}) == 2
    registry = committer.commits.context.metrics.registry
    assert registry.get_sample_value("pingxuan_vote_group_size_count") == 1
    assert registry.get_sample_value("pingxuan_vote_group_size_sum") == 2


def store_of(config):
    return VotingStore(connect(config["MONGO_URI"])[config["MONGO_DB"]])


def test_200_concurrent_casts_of_one_voter_candidate_and_day_accept_exactly_one(
        voting, vote_log, config):
    with entrypoint_waiter(vote_log, "on_vote_cast"):
        with rpc(config, token("frontend", "wechat-backend")) as client:
            pending = [client.voting.cast.call_async(vote(f"race-{n}")) for n in range(200)]
            accepted, refused = [], []
            for reply in pending:
                try:
                    accepted.append(reply.result())
                except DuplicateVote:
                    refused.append(reply)
    assert len(accepted) == 1 and len(refused) == 199
    assert list(VoteLog.counted) == [accepted[0]["vote_id"]]
    store = store_of(config)
    assert store.votes.count_documents({}) == 1
    assert store.ledger.count_documents({"error": "DuplicateVote"}) == 199
    # The announcer closes the outbox entry once the broker confirmed the event.
    outbox_closed = time.monotonic() + 5
    while store.batches.count_documents({}) and time.monotonic() < outbox_closed:
        time.sleep(0.02)
    assert store.batches.count_documents({}) == 0


def test_200_resends_of_one_vote_id_are_counted_once(voting, vote_log, config):
    with entrypoint_waiter(vote_log, "on_vote_cast"):
        with rpc(config, token("frontend", "wechat-backend")) as client:
            pending = [client.voting.cast.call_async(vote("same-vote")) for _ in range(200)]
            replies = [reply.result() for reply in pending]
    assert {r["status"] for r in replies} == {"accepted"}
    assert len({r["receipt"] for r in replies}) == 1
    assert list(VoteLog.counted) == ["same-vote"]
    assert sum(len(event["votes"]) for event in VoteLog.events_seen) == 1
    assert store_of(config).votes.count_documents({}) == 1


def test_cast_many_is_one_event_and_the_ballot_counts_it(voting, vote_log, config):
    batch = [vote(f"b-{n}", "nom-a" if n % 2 else "nom-b", mobile=f"1390000{n:04d}")
             for n in range(100)]
    with entrypoint_waiter(vote_log, "on_vote_cast"):
        with rpc(config, token("frontend", "wechat-backend")) as client:
            results = client.voting.cast_many(batch)
    assert [r["status"] for r in results] == ["accepted"] * 100
    assert len(VoteLog.events_seen) == 1 and len(VoteLog.counted) == 100
    with rpc(config, None) as anyone:
        rows = anyone.voting.ballot("cb-test", "advanced_unit")
    assert {r["candidate_id"]: r["votes"] for r in rows} == {"nom-a": 50, "nom-b": 50}


def test_casts_one_after_another_within_the_window_are_announced_in_one_event(
        container_factory, config, vote_log):
    """Each cast is its own group here (it waits for its answer before the next), yet the
    groups stored within the announce window go out as one vote_cast; a stop announces
    what is still waiting, so nothing is left for the sweep."""
    container = container_factory(VotingService, dict(config, ANNOUNCE_WINDOW_SECONDS=5))
    container.start()
    hear_campaign(container, config)
    with rpc(config, token("frontend", "wechat-backend")) as client:
        replies = [client.voting.cast(vote(f"seq-{n}", mobile=f"1391111{n:04d}"))
                   for n in range(5)]
    assert {reply["status"] for reply in replies} == {"accepted"}
    assert VoteLog.events_seen == []                 # stored and answered; the window is open
    assert store_of(config).batches.count_documents({}) == 5
    with entrypoint_waiter(vote_log, "on_vote_cast"):
        container.stop()
    [event] = VoteLog.events_seen
    assert [v["vote_id"] for v in event["votes"]] == [f"seq-{n}" for n in range(5)]
    assert store_of(config).batches.count_documents({}) == 0


def test_the_outbox_sweep_republishes_an_unpublished_vote(voting, vote_log, config):
    # As if the service had died after storing a group and before announcing it.
    store = store_of(config)
    settings = domain.VotingSettings("cb-test", "Asia/Shanghai", None, None, None, 60,
                                     timedelta(seconds=60), domain.DEFAULT_RULES)
    request = domain.VoteRequest(
        vote_id="orphan-1", campaign_id="cb-test", candidate_id="nom-b", channel="mobile",
        voter_key="f" * 32, ip_key="e" * 24, ip_net="203.0.113.0/24", user_agent=None,
        settings=settings, receipt="AAAA-BBBB-CCCC-DDDD", by={"role": "frontend"})
    long_ago = datetime.now(timezone.utc) - BATCH_GRACE - timedelta(seconds=1)
    record = domain.vote_record(domain.Vote(request, long_ago, {"category": "advanced_unit"}),
                                "batch-orphan")
    store.open_batch("batch-orphan", [record], long_ago)
    store.insert_votes([record])
    with entrypoint_waiter(vote_log, "on_vote_cast"):
        with entrypoint_hook(voting, "sweep_outbox") as sweep:
            sweep()
    assert list(VoteLog.counted) == ["orphan-1"]
    assert store.batches.count_documents({}) == 0


def test_the_page_and_metrics_are_served(voting, config):
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    with rpc(config, token("frontend", "wechat-backend")) as client:
        client.voting.cast(vote("m-1"))
    page = requests.get(f"{base}/campaigns/cb-test", timeout=10)
    assert page.status_code == 200 and "候选nom-a" in page.text and "当前票数" in page.text
    too_big = requests.post(f"{base}/api/codes", data=b"x" * (5 * 1024 * 1024),
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert too_big.status_code == 413 and "过大" in too_big.json()["message"]
    not_object = requests.post(f"{base}/api/votes", json=[1], timeout=10)
    assert not_object.status_code == 400
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    assert 'pingxuan_votes_total{category="advanced_unit",outcome="accepted"} 1.0' in metrics
    assert "pingxuan_vote_cast_seconds_bucket" in metrics
    assert "pingxuan_ballot_cache_age_seconds" in metrics
