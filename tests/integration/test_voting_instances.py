"""Two voting instances on one store hold the daily cap and the per-address throttle exactly.

Two containers of ``VotingService`` share one store (in embedded mode one
mongomock client: ``shared.store.connect`` caches clients per URI) and one RPC
queue, so RabbitMQ spreads the calls over both. Every store operation first
yields to other green threads, as a real MongoDB client does while it waits on
its socket: so one instance's group commit can run between another's read of
the counters and its writes, as on a real server with several pods.
"""
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.voting.service import VotingService
from shared.metrics import Metrics
from shared.store import MongoStore, connect
from services.voting.store import VotingStore
from tests.conftest import campaign_document, token
from tests.system import free_port
from tests.yielding import yielding

pytestmark = pytest.mark.broker

#: The instances' clock: mid-day and mid-window, so no limit's day or window ends in a run.
CLOCK_START = "2099-11-05T04:00:10Z"
CANDIDATES = [f"nom-{n:03d}" for n in range(40)]


def start_instances(container_factory, config, count=2):
    instances = []
    for _ in range(count):
        container = container_factory(VotingService, dict(
            config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"))
        container.start()
        yielding(next(ext for ext in container.extensions
                      if isinstance(ext, MongoStore)).repository)
        instances.append(container)
    return instances


@pytest.fixture
def config(service_config):
    return dict(service_config, CLOCK_START=CLOCK_START, max_workers=100, OTP_SENDER="log")


def load_campaign(config, **voting):
    store = VotingStore(connect(config["MONGO_URI"])[config["MONGO_DB"]])
    document = campaign_document(voting=dict(
        {"opens": "2099-11-01T08:00:00", "closes": "2099-11-20T20:00:00"}, **voting))
    store.campaigns.insert_one({"_id": "cb-test", "revision": 1, "document": document})
    store.ballot_copy.mark_caught_up("cb-test")
    store.candidates.insert_many([
        {"_id": cid, "campaign_id": "cb-test", "category": "advanced_unit", "org_type": "agency",
         "nominee_name": f"候选{cid}", "nominee_unit": "县财政局", "deeds_summary": "学习。",
         "unit": "城关镇党委", "submitted_at": "2026-10-10T02:00:00Z", "on_ballot": True}
        for cid in CANDIDATES])
    return store


def vote(n, mobile="13812345678", ip="203.0.113.7", prefix="v"):
    return {"vote_id": f"{prefix}-{n}", "campaign_id": "cb-test",
            "candidate_id": CANDIDATES[n % len(CANDIDATES)],
            "voter": {"channel": "mobile", "id": mobile},
            "client": {"ip": ip, "user_agent": "test"}}


def cast_concurrently(config, votes, per_call=20):
    """Cast ``votes`` as concurrent ``cast_many`` calls; ``(accepted, refused errors)``.

    A call's votes are judged in one group, so two overlapping groups on two
    instances that each read the counters before the other wrote would both
    accept up to the limit.
    """
    with ClusterRpcProxy(config, context_data={"auth_token": token("frontend", "wechat")},
                         timeout=120) as client:
        pending = [client.voting.cast_many.call_async(votes[start:start + per_call])
                   for start in range(0, len(votes), per_call)]
        results = [result for reply in pending for result in reply.result()]
    accepted = [r for r in results if r["status"] == "accepted"]
    return accepted, [r["error"] for r in results if r["status"] != "accepted"]


def served_by_each(instances):
    """How many votes each instance judged (its ``pingxuan_votes_total``)."""
    counts = []
    for container in instances:
        registry = next(ext for ext in container.extensions if isinstance(ext, Metrics)).registry
        counts.append(sum(sample.value for metric in registry.collect()
                          if metric.name == "pingxuan_votes"
                          for sample in metric.samples if sample.name.endswith("_total")))
    return counts


def warm_up(config, instances):
    """One call to each instance before the race (each reads the campaign and ballot once)."""
    cast_concurrently(config, [vote(n, mobile=f"137{n:08d}", ip="198.51.100.1", prefix="warm")
                               for n in range(8)], per_call=1)
    assert all(count > 0 for count in served_by_each(instances)), served_by_each(instances)


#: Races per test: each is one voter's (or address's) 200 votes at once.
ROUNDS = 3


def test_two_instances_hold_a_voters_daily_cap_exactly(container_factory, config):
    store = load_campaign(config, daily_limit=7, ip_limit=1000)
    instances = start_instances(container_factory, config)
    warm_up(config, instances)
    for round_ in range(ROUNDS):
        # 200 votes of one voter for 40 candidates (5 each), at once, over both instances.
        accepted, refused = cast_concurrently(config, [
            vote(n, mobile=f"1381234567{round_}", prefix=f"r{round_}") for n in range(200)])
        assert len(accepted) == 7, [a["candidate_id"] for a in accepted]
        assert set(refused) <= {"VoteLimitReached", "DuplicateVote"} and len(refused) == 193
    assert store.votes.count_documents({}) == 7 * ROUNDS + 8
    # The counters say what is stored: the refused votes took nothing.
    assert sorted(row["n"] for row in store.voter_days.find({})) == [1] * 8 + [7] * ROUNDS
    assert store.ledger.count_documents({"rule": "daily_limit"}) >= ROUNDS


def test_two_instances_hold_an_addresss_throttle_exactly(container_factory, config):
    store = load_campaign(config, ip_limit=9, ip_window_seconds=3600)
    instances = start_instances(container_factory, config)
    warm_up(config, instances)
    for round_ in range(ROUNDS):
        # 200 voters behind one address, each voting once, at once, over both instances.
        accepted, refused = cast_concurrently(config, [
            vote(n, mobile=f"139{round_}{n:07d}", ip=f"203.0.113.{round_ + 10}", prefix=f"r{round_}")
            for n in range(200)])
        assert len(accepted) == 9 and refused == ["RateLimited"] * 191
    assert store.votes.count_documents({}) == 9 * ROUNDS + 8
    assert sorted(row["n"] for row in store.address_windows.find({})) == [8] + [9] * ROUNDS
    assert store.ledger.count_documents({"rule": "ip_throttle"}) == 191 * ROUNDS
