"""The nomination service in a real container on the real RabbitMQ.

Calls go through nameko's RPC and events through the broker, as in production.
"""

import eventlet
import pytest
import requests
from nameko.events import event_handler
from nameko.exceptions import RemoteError
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.nomination.service import NominationService
from services.nomination.store import NominationStore
from shared import events
from shared.auth import token_id_of
from shared.errors import QuotaExceeded, Unauthorized, ValidationError
from shared.store import connect
from tests.conftest import campaign_document, nomination_form, token
from tests.system import free_port

pytestmark = pytest.mark.broker

UNIT = "城关镇党委"


class EventLog:
    """A stand-in consumer that keeps what the nomination service announces."""

    name = "event_log"
    received = []

    @event_handler(events.NOMINATION, events.NOMINATION_SUBMITTED)
    def on_submitted(self, payload):
        self.received.append((events.NOMINATION_SUBMITTED, payload))

    @event_handler(events.NOMINATION, events.NOMINATION_WITHDRAWN)
    def on_withdrawn(self, payload):
        self.received.append((events.NOMINATION_WITHDRAWN, payload))


@pytest.fixture
def config(service_config):
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")


@pytest.fixture
def nomination(container_factory, config):
    container = container_factory(NominationService, config)
    container.start()
    return container


def rpc(config, auth_token, timeout=30):
    return ClusterRpcProxy(config, context_data={"auth_token": auth_token}, timeout=timeout)


@pytest.fixture
def campaign(nomination, config):
    document = campaign_document()
    with rpc(config, token("admin", "宣传部")) as admin:
        admin.nomination.load_campaign(document)
    return document


def test_submit_over_rpc_announces_the_nomination(nomination, campaign, config,
                                                  container_factory):
    EventLog.received = []
    log = container_factory(EventLog, config)
    log.start()
    with entrypoint_waiter(log, "on_submitted"):
        with rpc(config, token("unit", UNIT)) as client:
            record = client.nomination.submit(nomination_form())
    event_type, payload = EventLog.received[0]
    assert payload["nomination_id"] == record["id"]
    assert payload["campaign_id"] == "cb-test"
    assert events.read_event(event_type, payload)["unit"] == UNIT
    # Contact details travel to the receipt, never the nominee's deeds page.
    assert payload["contact"]["mobile"] == "13812345678"


def test_refusals_arrive_as_typed_remote_errors(nomination, campaign, config):
    with rpc(config, token("unit", UNIT)) as client:
        with pytest.raises(ValidationError) as refused:
            client.nomination.submit(nomination_form(mobile="12345", materials="字" * 3001))
        assert isinstance(refused.value, RemoteError)
        assert refused.value.exc_type == "ValidationError"
        assert set(refused.value.messages) == {"mobile", "materials"}
        with pytest.raises(ValidationError):
            client.nomination.submit(nomination_form(deeds_summary="x" * (5 * 1024 * 1024)))
        assert client.nomination.list("cb-test") == []
    with rpc(config, None) as anonymous:
        with pytest.raises(Unauthorized):
            anonymous.nomination.list("cb-test")


def test_fifty_units_racing_for_the_last_three_slots(container_factory, config, campaign):
    # Two instances of the service on one store, as two replicas on one MongoDB.
    first = container_factory(NominationService, config)
    second = container_factory(NominationService,
                               dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"))
    first.start()
    second.start()
    star = dict(category="learning_star", org_type=None, party_post="支部书记")
    with rpc(config, token("unit", UNIT)) as client:
        for n in range(47):
            client.nomination.submit(nomination_form(client_ref=f"early-{n}", **star))
        pending = [client.nomination.submit.call_async(
            nomination_form(client_ref=f"race-{n}", **star)) for n in range(50)]
        taken, refused = [], []
        for reply in pending:
            try:
                taken.append(reply.result()["id"])
            except QuotaExceeded:
                refused.append(reply)
        assert len(taken) == 3
        assert len(refused) == 47
        stored = client.nomination.list("cb-test", category="learning_star")
    assert len(stored) == 50
    # The cap's slot holders are exactly the stored nominations.
    store = NominationStore(connect(config["MONGO_URI"])[config["MONGO_DB"]])
    assert sorted(store.slot_holders("cb-test|learning_star")) == sorted(r["id"] for r in stored)


def test_a_revoked_token_is_refused_by_a_running_service(nomination, campaign, config):
    unit_token = token("unit", UNIT)
    with rpc(config, unit_token) as client:
        assert client.nomination.list("cb-test") == []
        payload = events.make_event(events.TOKEN_REVOKED, None, token_id=token_id_of(unit_token))
        with entrypoint_waiter(nomination, "on_token_revoked"):
            event_dispatcher(config)(events.ADMIN, events.TOKEN_REVOKED, payload)
        with pytest.raises(Unauthorized):
            client.nomination.list("cb-test")


def test_metrics_count_calls_and_refusals(nomination, campaign, config):
    with rpc(config, token("unit", UNIT)) as client:
        client.nomination.submit(nomination_form())
        with pytest.raises(ValidationError):
            client.nomination.submit(nomination_form(email="bad"))
    eventlet.sleep(0)  # let the worker's result hook run
    body = requests.get(f"http://{config['WEB_SERVER_ADDRESS']}/metrics", timeout=5).text
    assert 'pingxuan_rpc_seconds_count{method="submit"} 2.0' in body
    assert 'pingxuan_errors_total{entrypoint="submit",error="ValidationError"} 1.0' in body
    health = requests.get(f"http://{config['WEB_SERVER_ADDRESS']}/health", timeout=5).json()
    kind = "embedded" if config["MONGO_URI"].startswith("mongomock://") else "mongodb"
    assert health == {"service": "nomination", "status": "ok", "store": kind}
    ready = requests.get(f"http://{config['WEB_SERVER_ADDRESS']}/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"service": "nomination", "status": "ready", "store": kind,
                            "checks": {"mongodb": "ok", "rabbitmq": "ok"}}



def test_results_finalized_from_aggregation_makes_disqualify_refused(nomination, campaign,
                                                                      config):
    with rpc(config, token("unit", UNIT)) as unit, rpc(config, token("admin", "宣传部")) as admin:
        record = unit.nomination.submit(nomination_form())
        admin.nomination.review(record["id"], "accept", "符合条件")
        payload = events.make_event(events.RESULTS_FINALIZED, "cb-test", inputs_hash="ab" * 32)
        with entrypoint_waiter(nomination, "on_results_finalized"):
            event_dispatcher(config)(events.AGGREGATION, events.RESULTS_FINALIZED, payload)
        with pytest.raises(RemoteError) as raised:
            admin.nomination.disqualify(record["id"], "审定之后")
        assert raised.value.exc_type == "InvalidState"
        assert admin.nomination.get(record["id"])["status"] == "accepted"
