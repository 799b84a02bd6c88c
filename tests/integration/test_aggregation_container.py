"""The aggregation service in real containers on the real RabbitMQ.

Events go in through the broker as their producers publish them; calls go
through nameko's RPC. Waiting is on entrypoints (``entrypoint_waiter``), never
on the clock.
"""
import itertools
from contextlib import ExitStack, contextmanager

import eventlet
import pytest
import requests
from nameko.events import event_handler
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.aggregation.service import AggregationService
from services.aggregation.store import AggregationStore
from shared import events
from shared.handlers import ProcessedEvents
from shared.store import MongoStore, connect
from shared.timeutil import iso
from tests.aggregation_cases import submitted_at
from tests.conftest import at, campaign_document, token
from tests.system import free_port

pytestmark = pytest.mark.broker

CAMPAIGN = "cb-test"
CATEGORY = "advanced_unit"
#: The rehearsal clock: after voting closed (20 November 2099, 20:00 in Asia/Shanghai).
AFTER_VOTE = "2099-11-21T02:00:00Z"
CANDIDATES = [("nom-a1", "agency", 90.0), ("nom-a2", "agency", 70.0), ("nom-s1", "school", 85.0),
              ("nom-r1", "rural", 60.0), ("nom-r2", "rural", 75.0), ("nom-c1", "community", 80.0)]


@pytest.fixture
def config(service_config):
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
                CLOCK_START=AFTER_VOTE, TALLY_CACHE_SECONDS=0)


def rpc_client(config, auth_token="admin"):
    if auth_token == "admin":
        auth_token = token("admin", "宣传部")
    return ClusterRpcProxy(config, context_data={"auth_token": auth_token}, timeout=30)


@contextmanager
def fired(container, **counts):
    """Wait until each named entrypoint has fired the given number of times."""
    with ExitStack() as stack:
        for method, expected in counts.items():
            seen = itertools.count(1)
            stack.enter_context(entrypoint_waiter(
                container, method, timeout=30,
                callback=lambda *args, seen=seen, expected=expected: next(seen) >= expected))
        yield


# --- the events of one small campaign --------------------------------------------------------

def campaign_loaded():
    return events.make_event(events.CAMPAIGN_LOADED, CAMPAIGN, campaign=campaign_document(),
                             revision=1)


def reviewed(cid, org_type, minute):
    return events.make_event(
        events.NOMINATION_REVIEWED, CAMPAIGN, at("2099-10-31T02:00:00"), nomination_id=cid,
        unit="城关镇党委", category=CATEGORY, org_type=org_type, nominee_name=f"{cid}党组织",
        nominee_unit=f"{cid}单位", deeds_summary="集中学习", status="accepted",
        submitted_at=iso(submitted_at(minute)), decision="accept", opinion="同意")


def disqualified(cid, org_type, minute, reason):
    return events.make_event(
        events.CANDIDATE_DISQUALIFIED, CAMPAIGN, at("2099-11-25T02:00:00"), nomination_id=cid,
        unit="城关镇党委", category=CATEGORY, org_type=org_type, nominee_name=f"{cid}党组织",
        nominee_unit=f"{cid}单位", deeds_summary="集中学习", status="disqualified",
        submitted_at=iso(submitted_at(minute)), candidate_id=cid, reason=reason)


def panel_closed():
    return events.make_event(events.PANEL_CLOSED, CAMPAIGN, at("2099-11-20T13:00:00"),
                             category=CATEGORY, method="mean",
                             panel_scores={cid: score for cid, _, score in CANDIDATES})


def vote_batches():
    """12 batches of 20 votes, one of them sent twice, one republishing 5 earlier votes."""
    ids = itertools.count(1)
    batches = []
    for b in range(12):
        votes = [{"vote_id": f"v{next(ids)}", "candidate_id": CANDIDATES[(b + i * i) % 6][0],
                  "category": CATEGORY, "cast_at": "2099-11-10T01:00:00Z"} for i in range(20)]
        batches.append(events.make_event(events.VOTE_CAST, CAMPAIGN, at("2099-11-10T01:00:01"),
                                         votes=votes))
    republished = events.make_event(events.VOTE_CAST, CAMPAIGN, at("2099-11-10T01:00:02"),
                                    votes=batches[3]["votes"][:5])
    deliveries = batches[:6] + [batches[2]] + batches[6:] + [republished, batches[9]]
    return deliveries, len(batches) + 1, 12 * 20


def send(config, source, event_type, payloads):
    dispatch = event_dispatcher(config)
    for payload in payloads:
        dispatch(source, event_type, payload)


def load_candidates(container, config):
    with fired(container, on_campaign_loaded=1):
        send(config, events.NOMINATION, events.CAMPAIGN_LOADED, [campaign_loaded()])
    with fired(container, on_nomination_reviewed=len(CANDIDATES), on_panel_closed=1):
        send(config, events.NOMINATION, events.NOMINATION_REVIEWED,
             [reviewed(cid, org, n) for n, (cid, org, _) in enumerate(CANDIDATES)])
        send(config, events.SCORING, events.PANEL_CLOSED, [panel_closed()])


class ListWatcher:
    """A stand-in consumer of the lists aggregation publishes."""

    name = "list_watcher"
    received = []

    @event_handler(events.AGGREGATION, events.LIST_PUBLISHED)
    def on_list_published(self, payload):
        self.received.append(payload)


# --- tests -----------------------------------------------------------------------------------

def test_events_in_results_out_publish_and_a_revised_list(container_factory, config):
    aggregation = container_factory(AggregationService, config)
    aggregation.start()
    ListWatcher.received = []
    watcher = container_factory(ListWatcher, config)
    watcher.start()
    load_candidates(aggregation, config)
    deliveries, _, counted = vote_batches()
    with fired(aggregation, on_vote_cast=len(deliveries)):
        send(config, events.VOTING, events.VOTE_CAST, deliveries)

    with rpc_client(config) as admin:
        rows = admin.aggregation.results(CAMPAIGN, CATEGORY)
        assert sum(row["votes"] for row in rows) == counted
        assert {row["status"] for row in rows} == {"selected"}  # 6 candidates, 20 slots
        with entrypoint_waiter(watcher, "on_list_published"):
            publication = admin.aggregation.publish(CAMPAIGN)
        assert ListWatcher.received[0]["revision"] == 1
        assert ListWatcher.received[0]["inputs_hash"] == publication["inputs_hash"]
        report = admin.aggregation.report(CAMPAIGN, CATEGORY)
        shortfall = {s["pool"]: s["missing"] for s in report["categories"][0]["shortfalls"]}
        assert shortfall == {"agency": 6, "school": 1, "enterprise": 1, "rural": 6}

        with entrypoint_waiter(watcher, "on_list_published"):
            send(config, events.NOMINATION, events.CANDIDATE_DISQUALIFIED,
                 [disqualified("nom-a1", "agency", 0, "材料失实")])
        assert ListWatcher.received[1]["revision"] == 2
    with rpc_client(config, None) as public:
        listed = public.aggregation.publicity_list(CAMPAIGN)
    assert {row["candidate_id"] for row in listed} == {cid for cid, _, _ in CANDIDATES} - {"nom-a1"}
    assert {row["revision"] for row in listed} == {2}


class BlockingStore(AggregationStore):
    """Stops inside a vote batch, after one candidate's counter moved, until killed."""

    target = None
    reached = None

    def add_votes(self, campaign_id, candidate_id, category, event_id, count, days=None):
        if event_id == BlockingStore.target and BlockingStore.reached is not None:
            if BlockingStore.reached.ready():
                eventlet.Event().wait()  # the second candidate of the batch: hang here
            BlockingStore.reached.send(candidate_id)
        return super().add_votes(campaign_id, candidate_id, category, event_id, count, days)


class CrashingAggregation(AggregationService):
    store = MongoStore(BlockingStore)


def outcome(config):
    with rpc_client(config) as admin:
        report = admin.aggregation.report(CAMPAIGN)
    return report["votes_counted"], report["inputs_hash"], report["categories"]


def test_killing_the_container_mid_stream_and_restarting_gives_the_same_results(
        container_factory, config, db_name, mongo_uri):
    deliveries, distinct, counted = vote_batches()

    # The undisturbed run.
    undisturbed = container_factory(AggregationService, config)
    undisturbed.start()
    load_candidates(undisturbed, config)
    with fired(undisturbed, on_vote_cast=len(deliveries)):
        send(config, events.VOTING, events.VOTE_CAST, deliveries)
    expected = outcome(config)
    assert expected[0] == counted
    undisturbed.stop()

    # The same events into a fresh database, the container killed inside a batch.
    second = dict(config, MONGO_DB=db_name + "_killed",
                  WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
    try:
        crashing = container_factory(CrashingAggregation, second)
        crashing.start()
        load_candidates(crashing, second)
        BlockingStore.target = deliveries[4]["event_id"]
        BlockingStore.reached = eventlet.Event()
        send(config, events.VOTING, events.VOTE_CAST, deliveries)
        with eventlet.Timeout(30):
            BlockingStore.reached.wait()
        crashing.kill()
        BlockingStore.reached = None

        store = AggregationStore(connect(mongo_uri)[second["MONGO_DB"]])
        # How far the killed run got: the entrypoint's record of each event done.
        processed = ProcessedEvents(connect(mongo_uri)[second["MONGO_DB"]])

        def vote_casts_done():
            return processed.collection.count_documents({"handler": "on_vote_cast"})

        target = BlockingStore.target
        # Killed halfway: the batch's votes claimed, one counter moved, the event not done.
        assert not processed.seen("on_vote_cast", target)
        assert store.counted_votes.count_documents({"event_id": target}) > 0
        assert store.results.count_documents({"vote_events": target}) == 1
        assert vote_casts_done() < distinct
        restarted = container_factory(AggregationService,
                                      dict(second, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"))
        all_applied = (lambda *args: vote_casts_done() == distinct)
        with entrypoint_waiter(restarted, "on_vote_cast", callback=all_applied, timeout=30):
            restarted.start()
        assert outcome(second) == expected
        assert store.votes_recounted(CAMPAIGN) == {
            row["candidate_id"]: row["votes"] for section in expected[2] for row in section["rows"]}
    finally:
        connect(mongo_uri).drop_database(second["MONGO_DB"])


# --- rebuild over RPC, against stand-ins of the other services -------------------------------

class Records:
    """What the stand-ins answer (filled by the test)."""

    nominations = []
    votes = []
    panel_scores = {}


class NominationStandIn:
    name = "nomination"

    @rpc
    def list(self, campaign_id, status=None, **filters):
        return [record for record in Records.nominations if record["status"] == status]

    @rpc
    def get_campaign(self, campaign_id):
        return campaign_document()


class VotingStandIn:
    name = "voting"

    @rpc
    def votes_page(self, campaign_id, after=None, limit=10000):
        start = after or 0
        page = Records.votes[start:start + limit]
        end = start + limit
        return {"votes": page, "next": end if end < len(Records.votes) else None}


class ScoringStandIn:
    name = "scoring"

    @rpc
    def scores(self, campaign_id, category=None):
        closed = bool(Records.panel_scores)  # no scores yet: the panel is still open
        return {"scores": [], "panels": {CATEGORY: {"closed": closed, "method": "mean",
                                                    "panel_scores": Records.panel_scores}}}


def test_rebuild_over_rpc_equals_the_incremental_state(container_factory, config):
    aggregation = container_factory(AggregationService, dict(config, REBUILD_PAGE_SIZE=50))
    aggregation.start()
    load_candidates(aggregation, config)
    deliveries, _, _ = vote_batches()
    with fired(aggregation, on_vote_cast=len(deliveries)):
        send(config, events.VOTING, events.VOTE_CAST, deliveries)
    Records.nominations = [
        {"id": cid, "campaign_id": CAMPAIGN, "category": CATEGORY, "org_type": org,
         "nominee_name": f"{cid}党组织", "nominee_unit": f"{cid}单位", "status": "accepted",
         "submitted_at": iso(submitted_at(n)), "mobile": "13812345678"}
        for n, (cid, org, _) in enumerate(CANDIDATES)]
    unique = {vote["vote_id"]: vote for payload in deliveries for vote in payload["votes"]}
    Records.votes = list(unique.values())
    Records.panel_scores = {cid: score for cid, _, score in CANDIDATES}
    for stand_in in (NominationStandIn, VotingStandIn, ScoringStandIn):
        container_factory(stand_in, config).start()

    with rpc_client(config) as admin:
        report = admin.aggregation.rebuild(CAMPAIGN)
        assert report["equal"] is True, report["differences"]
        assert report["votes"]["read"] == 240
        Records.votes = Records.votes[:-3]  # voting knows three votes fewer
        report = admin.aggregation.rebuild(CAMPAIGN)
        assert report["equal"] is False
        assert report["votes"]["rebuilt"] == 237


def test_metrics_and_the_live_tally_over_http(container_factory, config):
    aggregation = container_factory(AggregationService, config)
    aggregation.start()
    load_candidates(aggregation, config)
    deliveries, _, _ = vote_batches()
    with fired(aggregation, on_vote_cast=len(deliveries)):
        send(config, events.VOTING, events.VOTE_CAST, deliveries)
    with rpc_client(config) as admin:
        admin.aggregation.results(CAMPAIGN)
    eventlet.sleep(0)  # let the worker's result hook run
    address = config["WEB_SERVER_ADDRESS"]
    body = requests.get(f"http://{address}/metrics", timeout=5).text
    assert 'pingxuan_aggregation_events_total{outcome="applied",type="vote_cast"} 13.0' in body
    # The two redeliveries stop at the event-handler entrypoint (shared/handlers.py).
    assert 'pingxuan_events_total{handler="on_vote_cast",outcome="duplicate"} 2.0' in body
    assert 'pingxuan_aggregation_event_lag_seconds_count{type="vote_cast"} 13.0' in body
    assert "pingxuan_aggregation_votes_counted_total 240.0" in body
    assert 'pingxuan_rpc_seconds_count{method="results"} 1.0' in body
    tally = requests.get(f"http://{address}/tally/{CAMPAIGN}", timeout=5).json()
    assert sum(row["votes"] for row in tally["rows"]) == 240
    assert requests.get(f"http://{address}/tally/%24gt", timeout=5).status_code == 400


# --- with the real nomination service ------------------------------------------------------------

def test_candidates_come_from_the_real_nomination_service(container_factory, config):
    """Events and ``nomination.list`` records as nomination really produces them."""
    from services.nomination.service import NominationService
    from tests.conftest import nomination_form

    nomination = container_factory(NominationService, dict(
        config, CLOCK_START="", WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"))
    nomination.start()
    aggregation = container_factory(AggregationService, config)
    aggregation.start()
    for stand_in in (VotingStandIn, ScoringStandIn):
        container_factory(stand_in, config).start()

    with rpc_client(config) as admin, rpc_client(config, token("unit", "城关镇党委")) as unit:
        with fired(aggregation, on_campaign_loaded=1):
            admin.nomination.load_campaign(campaign_document())
        ids = [unit.nomination.submit(nomination_form(org_type=org))["id"]
               for org in ("agency", "school", "rural")]
        with fired(aggregation, on_nomination_reviewed=3):
            for cid in ids:
                admin.nomination.review(cid, "accept", {"opinion": "同意"})
        with fired(aggregation, on_candidate_disqualified=1):
            admin.nomination.disqualify(ids[1], "材料失实")
        rows = {row["candidate_id"]: row for row in admin.aggregation.results(CAMPAIGN)}
        assert set(rows) == set(ids)
        assert rows[ids[1]]["status"] == "disqualified"
        assert rows[ids[1]]["disqualification_reason"] == "材料失实"
        assert "mobile" not in rows[ids[0]] and rows[ids[0]]["nominee_name"] == "县财政局机关党委"

        Records.votes, Records.panel_scores = [], {}
        report = admin.aggregation.rebuild(CAMPAIGN)
        assert report["equal"] is True, report["differences"]
        assert report["candidates"] == {"incremental": 3, "rebuilt": 3}


def test_the_inputs_of_each_revision_cross_the_wire_and_verify(container_factory, config):
    from services.aggregation.verify import verify

    aggregation = container_factory(AggregationService, config)
    aggregation.start()
    ListWatcher.received = []
    watcher = container_factory(ListWatcher, config)
    watcher.start()
    load_candidates(aggregation, config)
    deliveries, _, counted = vote_batches()
    with fired(aggregation, on_vote_cast=len(deliveries)):
        send(config, events.VOTING, events.VOTE_CAST, deliveries)
    with rpc_client(config) as admin:
        with entrypoint_waiter(watcher, "on_list_published"):
            admin.aggregation.publish(CAMPAIGN)
        with entrypoint_waiter(watcher, "on_list_published"):
            send(config, events.NOMINATION, events.CANDIDATE_DISQUALIFIED,
                 [disqualified("nom-a1", "agency", 0, "材料失实")])
    with rpc_client(config, None) as public:  # anyone, no token
        first = public.aggregation.inputs(CAMPAIGN, 1)
        second = public.aggregation.inputs(CAMPAIGN)
    assert (first["revision"], second["revision"]) == (1, 2)
    assert verify(first)["match"] and verify(second)["match"]
    assert sum(day["counted"] for data in first["inputs"]["categories"].values()
               for c in data["candidates"].values() for day in c["votes_by_day"]) == counted
    assert second["inputs_hash"] == ListWatcher.received[-1]["inputs_hash"]


# --- objections (異議) over the broker -------------------------------------------------------

class ObjectionWatcher:
    name = "objection_watcher"
    received = []

    @event_handler(events.AGGREGATION, events.OBJECTION_RECEIVED)
    def on_received(self, payload):
        self.received.append(payload)

    @event_handler(events.AGGREGATION, events.OBJECTION_RESOLVED)
    def on_resolved(self, payload):
        self.received.append(payload)


class NotificationStandIn:
    name = "notification"
    sent = []

    @rpc
    def send_direct(self, kind, recipient, template, params, idempotency_key):
        self.sent.append((kind, recipient, template, params))
        return {"message_id": f"msg-{len(self.sent)}", "status": "sent"}


class DisqualifyingNomination(NominationStandIn):
    disqualified = []

    @rpc
    def disqualify(self, nomination_id, reason, objection_id=None):
        self.disqualified.append((nomination_id, objection_id))
        n, (cid, org, _) = next((n, c) for n, c in enumerate(CANDIDATES) if c[0] == nomination_id)
        record = reviewed(cid, org, n)
        return {"id": cid, "campaign_id": CAMPAIGN, "category": CATEGORY, "org_type": org,
                "nominee_name": record["nominee_name"], "nominee_unit": record["nominee_unit"],
                "status": "disqualified", "submitted_at": record["submitted_at"],
                "updated_at": AFTER_VOTE, "disqualification": {"reason": reason}}


def test_objections_over_rpc_announce_events_disqualify_and_notify(container_factory, config):
    aggregation = container_factory(AggregationService, config)
    aggregation.start()
    ObjectionWatcher.received, NotificationStandIn.sent = [], []
    DisqualifyingNomination.disqualified = []
    watcher = container_factory(ObjectionWatcher, config)
    watcher.start()
    for stand_in in (NotificationStandIn, DisqualifyingNomination):
        container_factory(stand_in, config).start()
    load_candidates(aggregation, config)
    objector = {"name": "张三", "mobile": "13812345678"}
    with rpc_client(config) as admin, \
            rpc_client(config, token("frontend", "县融媒体中心")) as front:
        admin.aggregation.publish(CAMPAIGN)
        with entrypoint_waiter(watcher, "on_received"):
            lodged = front.aggregation.lodge_objection({
                "campaign_id": CAMPAIGN, "candidate_id": "nom-a1", "objector": objector,
                "grounds": "材料失实"})
        assert ObjectionWatcher.received[-1]["channel"] == "frontend"
        with entrypoint_waiter(watcher, "on_resolved"):
            resolved = admin.aggregation.resolve_objection(lodged["objection_id"], "upheld",
                                                           "经核实属实")
        assert resolved["status"] == "upheld"
        assert DisqualifyingNomination.disqualified == [("nom-a1", lodged["objection_id"])]
        assert admin.aggregation.publication(CAMPAIGN)["revision"] == 2
        [(kind, recipient, template, params)] = NotificationStandIn.sent
        assert (kind, recipient, template) == ("sms", "13812345678", "objection_verdict")
        row = admin.aggregation.objections(CAMPAIGN)[0]
        assert row["objector"]["mobile"] is None and row["objector"]["name"] == "张三"
    assert "13812345678" not in str(ObjectionWatcher.received)
    assert "张三" not in str(ObjectionWatcher.received)
