"""The console's dependencies: token verification for sessions, and RPC as the person.

``Desk`` calls the other services with the signed-in person's own token in the
call's context data, over nameko's shared reply queue (one connection for all
workers): it writes the token into the worker's context data, which nameko's
RPC forwards with every call the worker makes. A request without a session
has no token there at all, so nothing can be done in its name.
"""
import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, ServiceProxy

from shared import config as cfg
from shared import signing
from shared.auth import CONTEXT_KEY, Auth, TrustedKeys, own_service_key
from shared.errors import Unavailable


class SessionAuth(Auth):
    """The shared ``Auth`` provider, also verifying a session's token on request
    (signature, expiry and the revocations recorded from ``token_revoked``)."""

    def get_dependency(self, worker_ctx):
        caller = super().get_dependency(worker_ctx)
        method = worker_ctx.entrypoint.method_name
        caller.verify = lambda token: self.verify(token, method)
        return caller


class Desk:
    """What a worker sees: ``act_as(token)`` then ``call(service, method, *args)``."""

    def __init__(self, worker_ctx, reply_listener, timeout):
        self.worker_ctx = worker_ctx
        self.reply_listener = reply_listener
        self.timeout = timeout
        # nameko's web entrypoint starts with no context data; make sure of it.
        self.worker_ctx.data.pop(CONTEXT_KEY, None)

    def act_as(self, token):
        self.worker_ctx.data[CONTEXT_KEY] = token

    def call(self, service, method, *args, **kwargs):
        if CONTEXT_KEY not in self.worker_ctx.data:
            raise RuntimeError("no signed-in person to act for")
        proxy = ServiceProxy(self.worker_ctx, service, self.reply_listener)
        reply = getattr(proxy, method).call_async(*args, **kwargs)
        try:
            with eventlet.Timeout(self.timeout):
                return reply.result()
        except eventlet.Timeout:
            # Shown as such (messages_zh words it); nothing is assumed done.
            raise Unavailable(f"{service}.{method} did not answer within the time allowed")


class DeskProvider(DependencyProvider):
    rpc_reply_listener = ReplyListener()

    def setup(self):
        self.timeout = cfg.read(self.container.config, cfg.CONSOLE_RPC_TIMEOUT)

    def get_dependency(self, worker_ctx):
        return Desk(worker_ctx, self.rpc_reply_listener, self.timeout)


class Settings:
    def __init__(self, secret, secure_cookies, issuer_keys):
        self.secret = secret  # CSRF tokens
        self.secure_cookies = secure_cookies
        self.issuer_keys = issuer_keys  # sign-in links: signed by the CLI with the issuer's key


class ConsoleSettings(DependencyProvider):
    """The console's CSRF key (derived from its own service key), the issuer's public keys
    (sign-in links) and cookie policy, from config."""

    def setup(self):
        config = self.container.config
        secret = signing.derive_key(own_service_key(config, self.container.service_name),
                                    "console-csrf").hex()
        secure = cfg.read(config, cfg.CONSOLE_SECURE_COOKIES)
        self.settings = Settings(secret, secure, TrustedKeys.from_config(config))

    def get_dependency(self, worker_ctx):
        return self.settings
