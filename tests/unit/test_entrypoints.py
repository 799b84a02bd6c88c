"""The RPC entrypoint every service uses survives a broker connection lost mid-reply."""
from unittest.mock import Mock

import pytest
from amqp.exceptions import ConnectionError as AmqpConnectionError

from shared.entrypoints import ResilientRpc


def entrypoint_whose_reply_fails(error):
    entrypoint = ResilientRpc()
    entrypoint.rpc_consumer = Mock(handle_result=Mock(side_effect=error))
    return entrypoint


@pytest.mark.parametrize("error", [ConnectionResetError("reset"), BrokenPipeError(),
                                   AmqpConnectionError("connection closed")])
def test_a_reply_lost_with_the_broker_does_not_kill_the_worker(error):
    entrypoint = entrypoint_whose_reply_fails(error)
    result = entrypoint.handle_result(Mock(), Mock(call_id="voting.cast.1"), {"ok": 1}, None)
    assert result == ({"ok": 1}, None)


def test_other_failures_still_propagate():
    entrypoint = entrypoint_whose_reply_fails(ValueError("a bug"))
    with pytest.raises(ValueError):
        entrypoint.handle_result(Mock(), Mock(call_id="x"), None, None)
