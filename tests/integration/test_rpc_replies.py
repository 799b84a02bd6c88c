"""Every service's RPC replies (``shared.entrypoints.ReplyingRpcConsumer``) on the real
RabbitMQ: without publisher confirms, through one connection, yet each caller still gets its
own answer, a refusal as its typed error, and a result that cannot be encoded as the error
that says so, as nameko's own replies give them."""
import eventlet
import pytest
from nameko.exceptions import MethodNotFound, RemoteError
from nameko.rpc import rpc as nameko_rpc
from nameko.standalone.rpc import ServiceRpcProxy

from shared.entrypoints import ReplyingRpcConsumer, ResilientRpc, rpc
from shared.errors import NotFound

CALLS = 200


class Answering:
    name = "answering"

    @rpc
    def double(self, n):
        eventlet.sleep(0.001 * (n % 7))  # replies leave in another order than calls came
        return {"n": n, "double": 2 * n, "text": "第" + str(n) + "票"}

    @rpc
    def refuse(self, what):
        raise NotFound(f"no {what}")

    @rpc
    def unencodable(self):
        return object()


@pytest.fixture
def answering(container_factory, rabbit_config):
    container = container_factory(Answering, dict(rabbit_config, max_workers=50))
    container.start()
    return container


def test_every_caller_gets_its_own_answer(answering, rabbit_config):
    with ServiceRpcProxy("answering", rabbit_config) as proxy:
        pending = [(n, proxy.double.call_async(n)) for n in range(CALLS)]
        answers = [(n, reply.result()) for n, reply in pending]
    assert answers == [(n, {"n": n, "double": 2 * n, "text": f"第{n}票"}) for n in range(CALLS)]


def test_a_refusal_arrives_as_its_typed_error(answering, rabbit_config):
    with ServiceRpcProxy("answering", rabbit_config) as proxy:
        with pytest.raises(NotFound) as raised:
            proxy.refuse("campaign c1")
    assert str(raised.value) == "no campaign c1"


def test_a_result_that_cannot_be_encoded_is_the_error_saying_so(answering, rabbit_config):
    with ServiceRpcProxy("answering", rabbit_config) as proxy:
        with pytest.raises(RemoteError) as raised:
            proxy.unencodable()
        assert raised.value.exc_type == "UnserializableValueError"
        assert proxy.double(3)["double"] == 6  # the service lives on


def test_an_unknown_method_is_answered_too(answering, rabbit_config):
    with ServiceRpcProxy("answering", rabbit_config) as proxy:
        with pytest.raises(MethodNotFound, match="no_such_method"):
            proxy.no_such_method()


def test_replies_go_without_publisher_confirms(answering):
    consumer = next(extension for extension in answering.extensions
                    if isinstance(extension, ReplyingRpcConsumer))
    assert consumer.reply_producers.connections.connection.transport_options["confirm_publish"] is False
    assert all(isinstance(entrypoint, ResilientRpc) for entrypoint in answering.entrypoints)



class Mixed:
    name = "mixed"

    @rpc
    def ours(self):
        return 1

    @nameko_rpc
    def framework_s(self):
        return 2


def test_a_service_mixing_both_rpc_entrypoints_does_not_start(container_factory, rabbit_config):
    with pytest.raises(TypeError, match="framework_s use nameko's own @rpc"):
        container_factory(Mixed, rabbit_config).start()
