"""Service credentials over the real RabbitMQ: a service acts as itself, within its list, only."""
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from services.nomination.service import NominationService
from shared import signing
from shared.auth import SERVICE_PURPOSE, issue_token
from shared.errors import Forbidden, Unauthorized
from shared.service_rpc import ServiceCaller
from tests.conftest import TEST_SERVICE_KEYS, campaign_document, nomination_form, token
from tests.system import free_port

pytestmark = pytest.mark.broker


@pytest.fixture
def config(service_config):
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")


@pytest.fixture
def nomination(container_factory, config):
    container = container_factory(NominationService, config)
    container.start()
    with ClusterRpcProxy(config, context_data={"auth_token": token("admin", "宣传部")},
                         timeout=30) as admin:
        admin.nomination.load_campaign(campaign_document())
    with ClusterRpcProxy(config, context_data={"auth_token": token("unit", "城关镇党委")},
                         timeout=30) as unit:
        record = unit.nomination.submit(nomination_form())
    return record


def refusal(error):
    return getattr(error, "exc_type", type(error).__name__)


def test_voting_reads_the_ballot_as_itself_but_cannot_disqualify(nomination, config):
    voting = ServiceCaller(config, "voting")
    assert voting.call("nomination", "list", "cb-test", status="accepted") == []
    with pytest.raises((Forbidden, RemoteError)) as refused:
        voting.call("nomination", "disqualify", nomination["id"], "伪造的异议")
    assert refusal(refused.value) == "Forbidden"
    with pytest.raises((Forbidden, RemoteError)) as refused:
        voting.call("nomination", "get", nomination["id"])     # aggregation's, not voting's
    assert refusal(refused.value) == "Forbidden"


@pytest.mark.parametrize("forge", [
    lambda: issue_token(TEST_SERVICE_KEYS["voting"], "admin", "宣传部")[0],
    lambda: signing.sign(TEST_SERVICE_KEYS["voting"],
                         {"jti": "x", "role": "admin", "name": "voting", "exp": 4102444800},
                         SERVICE_PURPOSE),
    lambda: signing.sign(TEST_SERVICE_KEYS["voting"],
                         {"jti": "x", "role": "service", "name": "aggregation",
                          "exp": 4102444800}, SERVICE_PURPOSE),
])
def test_what_voting_signs_as_anyone_else_is_unauthorized(nomination, config, forge):
    with ClusterRpcProxy(config, context_data={"auth_token": forge()}, timeout=30) as forged:
        with pytest.raises((Unauthorized, RemoteError)) as refused:
            forged.nomination.disqualify(nomination["id"], "伪造的异议")
    assert refusal(refused.value) == "Unauthorized"
    with ClusterRpcProxy(config, context_data={"auth_token": token("admin", "宣传部")},
                         timeout=30) as admin:
        assert admin.nomination.get(nomination["id"])["status"] == "submitted"
