"""Calls from one service to another, under the calling service's own identity.

nameko's ``RpcProxy`` forwards the context of the worker that makes the call,
which is the original caller's token or, in an event handler or timer, nothing.
A service asking another for shared facts (a campaign, the ballot after a
restart) acts as itself: a short-lived ``service`` credential signed with its
own private key (``SERVICE_KEY``), which the other service checks against the
public key it lists for this one and against ``shared.auth.SERVICE_CALLS``.
"""
from datetime import timedelta

from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcProxy

from shared import config as cfg
from shared.auth import CONTEXT_KEY, SERVICE_TOKEN_TTL, issue_service_token, own_service_key
from shared.timeutil import utcnow

SERVICE_RPC_TIMEOUT_SECONDS = 30


#: A credential is reused until this long before it expires (signing one per call is wasted work).
RENEW_BEFORE_EXPIRY = timedelta(minutes=10)


class ServiceCaller:
    """``call(service, method, *args, **kwargs)`` as the service ``service_name``."""

    def __init__(self, config, service_name):
        self.key = own_service_key(config, service_name)
        self.amqp = {cfg.AMQP_URI: config[cfg.AMQP_URI]}
        self.service_name = service_name
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
        token = self.credential()
        with ClusterRpcProxy(self.amqp, context_data={CONTEXT_KEY: token},
                             timeout=SERVICE_RPC_TIMEOUT_SECONDS) as proxy:
            return getattr(getattr(proxy, service), method)(*args, **kwargs)


class ServiceRpc(DependencyProvider):
    """Injects ``call(service, method, *args, **kwargs)`` under the service's own identity."""

    def setup(self):
        self.caller = ServiceCaller(self.container.config, self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self.caller.call
