"""The console in a real container on the real RabbitMQ, against a stand-in nomination service.

What only the broker can show: each call the console makes carries the signed-in
person's own token in its context data (and a request without a session carries
none), and a ``token_revoked`` event ends the session that holds that token.
"""
import re

import pytest
import requests
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc as nameko_rpc
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from services.console.service import ConsoleService
from shared import events
from shared.auth import read_token
from shared.timeutil import utcnow
from tests.conftest import TEST_SECRET, campaign_document, token
from tests.system import free_port

pytestmark = pytest.mark.broker


@pytest.fixture
def config(service_config):
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")


@pytest.fixture
def console(container_factory, config):
    container = container_factory(ConsoleService, config)
    container.start()
    return container


class WorkerContext(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


class TokenEcho:
    """``nomination`` stand-in whose ``get_campaign`` answers with the caller's name."""

    name = "nomination"
    worker_ctx = WorkerContext()

    @nameko_rpc
    def get_campaign(self, campaign_id):
        auth_token = self.worker_ctx.data.get("auth_token")
        caller = read_token(TEST_SECRET, auth_token, utcnow()).name if auth_token else "nobody"
        return dict(campaign_document(), name=caller)


def sign_in(base, auth_token):
    session = requests.Session()
    page = session.get(f"{base}/sign-in", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    reply = session.post(f"{base}/sign-in", data={"token": auth_token, "csrf_token": csrf},
                         allow_redirects=False, timeout=30)
    assert reply.status_code == 303, reply.text
    return session


def test_calls_carry_the_signed_in_persons_token_and_a_revocation_ends_the_session(
        console, container_factory, config):
    container_factory(TokenEcho, config).start()
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    one, other = token("admin", "宣传部张三"), token("admin", "宣传部李四")
    first, second = sign_in(base, one), sign_in(base, other)

    # Each session's page is read with its own person's token, through one shared reply queue.
    for session, name in ((first, "宣传部张三"), (second, "宣传部李四"), (first, "宣传部张三")):
        page = session.get(f"{base}/campaigns/cb-test", timeout=30)
        assert page.status_code == 200 and f'id="campaign-name">{name}<' in page.text
    # Without a session nothing is called in anyone's name.
    anonymous = requests.get(f"{base}/campaigns/cb-test", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 303 and "/sign-in" in anonymous.headers["Location"]

    # The CLI's revocation reaches the console like every service; that session ends.
    payload = events.make_event(events.TOKEN_REVOKED, None,
                                token_id=read_token(TEST_SECRET, one, utcnow()).token_id)
    with entrypoint_waiter(console, "on_token_revoked"):
        event_dispatcher(config)(events.ADMIN, events.TOKEN_REVOKED, payload)
    gone = first.get(f"{base}/campaigns/cb-test", allow_redirects=False, timeout=30)
    assert gone.status_code == 303 and "reason=revoked" in gone.headers["Location"]
    assert second.get(f"{base}/campaigns/cb-test", timeout=30).status_code == 200


def test_health_and_metrics_are_served(console, config):
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    kind = "embedded" if config["MONGO_URI"].startswith("mongomock://") else "mongodb"
    assert requests.get(f"{base}/health", timeout=10).json() == {"service": "console",
                                                                 "status": "ok", "store": kind}
    assert requests.get(f"{base}/ready", timeout=10).json()["status"] == "ready"
    assert "pingxuan_rpc_seconds" in requests.get(f"{base}/metrics", timeout=10).text
