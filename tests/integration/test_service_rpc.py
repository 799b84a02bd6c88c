"""Service-to-service calls on the real RabbitMQ: one reply queue per container, whatever the
number of concurrent calls, the service's own credential on each, and a call after the
connection broke still answered."""
import eventlet
import pytest
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from shared import signing
from shared.auth import CONTEXT_KEY, TrustedKeys, verified_claims
from shared.service_rpc import ServiceCalls, ServiceRpc
from tests.conftest import TEST_KEY_CONFIG

CONCURRENT_CALLS = 15


class ContextData(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx.context_data


class Peer:
    """Answers with the credential it was called with, each call held until ``release``."""

    name = "peer"
    context = ContextData()
    arrived = []
    release = None

    @rpc
    def echo(self, n):
        Peer.arrived.append(n)
        if Peer.release is not None:
            Peer.release.wait()
        return {"n": n, "token": self.context.get(CONTEXT_KEY)}


class Caller:
    """Calls the peer as itself (named voting: the test keys hold voting's key)."""

    name = "voting"
    service_rpc = ServiceRpc()

    @rpc
    def ask(self, n):
        return self.service_rpc("peer", "echo", n)


@pytest.fixture
def config(rabbit_config):
    return dict(rabbit_config, **TEST_KEY_CONFIG, max_workers=CONCURRENT_CALLS + 5)


@pytest.fixture
def running(container_factory, config):
    Peer.arrived, Peer.release = [], None
    peer = container_factory(Peer, config)
    caller = container_factory(Caller, config)
    peer.start()
    caller.start()
    calls = next(ext for ext in caller.extensions if isinstance(ext, ServiceCalls))
    return caller, calls


def reply_queues(rabbit_manager, vhost, service):
    return [queue["name"] for queue in rabbit_manager.get_queues(vhost)
            if queue["name"].startswith(f"rpc.reply-{service}-")]


def wait_until(condition, seconds=10):
    with eventlet.Timeout(seconds):
        while not condition():
            eventlet.sleep(0.01)


def test_many_concurrent_calls_share_one_reply_queue(running, rabbit_manager, rabbit_config):
    _, calls = running
    Peer.release = Event()
    pending = [eventlet.spawn(calls.call, "peer", "echo", n) for n in range(CONCURRENT_CALLS)]
    wait_until(lambda: len(Peer.arrived) == CONCURRENT_CALLS)   # all in flight at once
    vhost = rabbit_config["vhost"]
    assert len(reply_queues(rabbit_manager, vhost, "voting")) == 1
    assert reply_queues(rabbit_manager, vhost, "standalone_rpc_proxy") == []
    Peer.release.send(True)
    replies = [thread.wait() for thread in pending]
    assert sorted(reply["n"] for reply in replies) == list(range(CONCURRENT_CALLS))
    keys = TrustedKeys(signing.PublicKeys(),
                       signing.PublicKeys.parse_owned(TEST_KEY_CONFIG["SERVICE_PUBLIC_KEYS"]))
    claims = {(verified_claims(keys, reply["token"])["role"],
               verified_claims(keys, reply["token"])["name"]) for reply in replies}
    assert claims == {("service", "voting")}


def test_the_providers_of_a_container_share_one_caller(running):
    caller, calls = running
    assert [ext for ext in caller.extensions if isinstance(ext, ServiceCalls)] == [calls]


def test_a_call_after_the_connection_broke_still_works(running, rabbit_manager, rabbit_config):
    caller, calls = running
    assert calls.call("peer", "echo", 1)["n"] == 1
    vhost = rabbit_config["vhost"]
    # The management API lists a new connection after its next statistics round.
    wait_until(lambda: connections_of(rabbit_manager, vhost), seconds=30)
    broken = connections_of(rabbit_manager, vhost)
    for name in broken:   # only this test's vhost: as a broker restart looks to these containers
        rabbit_manager.delete_connection(name)
    # The container's consumer reconnects and declares the reply queue again; the publisher's
    # pooled connection is replaced on its next use.
    wait_until(lambda: consuming(rabbit_manager, vhost, "rpc.reply-voting-")
               and consuming(rabbit_manager, vhost, "rpc-peer"), seconds=30)
    assert calls.call("peer", "echo", 2)["n"] == 2
    with ServiceRpcProxy("voting", caller.config, timeout=30) as voting:
        assert voting.ask(3)["n"] == 3   # through a worker and the injected provider


def connections_of(rabbit_manager, vhost):
    return [connection["name"] for connection in rabbit_manager.get_connections()
            if connection.get("vhost") == vhost]


def consuming(rabbit_manager, vhost, prefix):
    queues = [queue for queue in rabbit_manager.get_queues(vhost)
              if queue["name"].startswith(prefix)]
    return len(queues) == 1 and queues[0].get("consumers", 0) >= 1
