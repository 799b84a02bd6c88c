"""Calls from one service to another, under the calling service's own identity.

nameko's ``RpcProxy`` forwards the context of the worker that makes the call,
which is the original caller's token or, in an event handler or timer, nothing.
A service asking another for shared facts (a campaign, the ballot after a
restart) acts as itself: a short-lived ``service`` credential signed with its
own private key (``SERVICE_KEY``), which the other service checks against the
public key it lists for this one and against ``shared.auth.SERVICE_CALLS``.

Inside a container every such call goes through :class:`ServiceCalls`, one per
container: nameko's own ``RpcProxy`` machinery (``MethodProxy`` publishing through
kombu's pooled connections, the container's one ``ReplyListener`` and reply queue,
consumed by the container's ``QueueConsumer``, which reconnects after a broker
restart and is stopped with the container), with the service credential as the
call's context instead of the worker's. A standalone ``ClusterRpcProxy`` is not
safe for many greenthreads at once, and one per call cost a connection and a
reply queue per one-time code.
"""
from datetime import timedelta

import eventlet
from nameko.exceptions import RpcTimeout
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.rpc import MethodProxy, ReplyListener
from nameko.standalone.rpc import ClusterRpcProxy

from shared import config as cfg
from shared.auth import CONTEXT_KEY, SERVICE_TOKEN_TTL, issue_service_token, own_service_key
from shared.timeutil import utcnow

SERVICE_RPC_TIMEOUT_SECONDS = 30


#: A credential is reused until this long before it expires (signing one per call is wasted work).
RENEW_BEFORE_EXPIRY = timedelta(minutes=10)


class ServiceCaller:
    """``call(service, method, *args, **kwargs)`` as the service ``service_name``.

    ``send(context_data, service, method, args, kwargs)`` carries the call; without one
    (a script or test outside any container) each call opens its own ``ClusterRpcProxy``.
    """

    def __init__(self, config, service_name, send=None):
        self.key = own_service_key(config, service_name)
        self.amqp = {cfg.AMQP_URI: config[cfg.AMQP_URI]}
        self.service_name = service_name
        self.send = send or self._send_standalone
        self._credential = (None, None)

    def credential(self, now=None):
        """The service's current credential, signed afresh when it is near its expiry."""
        now = now or utcnow()
        token, renew_at = self._credential
        if token is None or now >= renew_at:
            token, _ = issue_service_token(self.key, self.service_name, ttl=SERVICE_TOKEN_TTL,
                                           now=now)
            self._credential = (token, now + SERVICE_TOKEN_TTL - RENEW_BEFORE_EXPIRY)
        return token

    def call(self, service, method, *args, **kwargs):
        return self.send({CONTEXT_KEY: self.credential()}, service, method, args, kwargs)

    def _send_standalone(self, context_data, service, method, args, kwargs):
        with ClusterRpcProxy(self.amqp, context_data=context_data,
                             timeout=SERVICE_RPC_TIMEOUT_SECONDS) as proxy:
            return getattr(getattr(proxy, service), method)(*args, **kwargs)


class CallContext:
    """What ``MethodProxy`` reads of a worker context: the container, and the headers to send
    (the service credential, not the worker's caller)."""

    def __init__(self, container, context_data):
        self.container = container
        self.context_data = context_data


class ServiceCalls(SharedExtension):
    """One per container: the service's credential and the container's one reply queue,
    shared by every provider that calls another service as this one."""

    reply_listener = ReplyListener()

    def setup(self):
        self.caller = ServiceCaller(self.container.config, self.container.service_name,
                                    self.send)

    def call(self, service, method, *args, **kwargs):
        return self.caller.call(service, method, *args, **kwargs)

    def send(self, context_data, service, method, args, kwargs):
        proxy = MethodProxy(CallContext(self.container, context_data), service, method,
                            self.reply_listener)
        reply = proxy.call_async(*args, **kwargs)
        try:
            with eventlet.Timeout(SERVICE_RPC_TIMEOUT_SECONDS,
                                  RpcTimeout(SERVICE_RPC_TIMEOUT_SECONDS)):
                return reply.result()
        except RpcTimeout:
            self._forget(reply.reply_event)
            raise

    def _forget(self, reply_event):
        # The listener keeps a reply's event until the reply comes; one that never comes
        # (the callee died) would stay for the container's life.
        waiting = self.reply_listener._reply_events
        for correlation_id, event in list(waiting.items()):
            if event is reply_event:
                waiting.pop(correlation_id, None)


class ServiceRpc(DependencyProvider):
    """Injects ``call(service, method, *args, **kwargs)`` under the service's own identity."""

    calls = ServiceCalls()

    def get_dependency(self, worker_ctx):
        return self.calls.call
