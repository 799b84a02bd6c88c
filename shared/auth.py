"""Identity: signed tokens any service verifies alone, roles, and revocation.

A token is ``px1.<payload>.<signature>``: the payload (base64url JSON: token id,
role, name, unit, issued and expiry times) signed with HMAC-SHA256 under the
``AUTH_SECRET`` every service and the admin CLI share. Verifying needs no call
to another service. Revocation travels as a ``token_revoked`` event that each
service records in its own store. No token or secret is ever logged.
"""
import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared.errors import Forbidden, Unauthorized
from shared.store import connect, release, store_uri
from shared.timeutil import utcnow

ROLES = ("unit", "judge", "admin", "frontend")
#: Not a person: one service calling another (minted by the service itself, never by the CLI).
SERVICE_ROLE = "service"
TOKEN_PREFIX = "px1"
CONTEXT_KEY = "auth_token"
REVOKED_COLLECTION = "revoked_tokens"
DEFAULT_TTL_DAYS = 180


@dataclass(frozen=True)
class Identity:
    """Who is calling: the verified content of a token."""

    token_id: str
    role: str
    name: str
    unit: str | None

    @property
    def unit_name(self):
        """The nominating unit a ``unit`` token acts for: ``--unit``, else ``--name``."""
        return self.unit or self.name

    def as_actor(self):
        """The identity as recorded in the audit trail (no token, no secret)."""
        return {"role": self.role, "name": self.name, "unit": self.unit, "token_id": self.token_id}


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret, body):
    return _b64(hmac.new(secret.encode("utf-8"), body.encode("ascii"), hashlib.sha256).digest())


def check_secret(secret):
    if not secret or len(secret) < cfg.MIN_SECRET_LENGTH:
        raise RuntimeError(
            f"{cfg.AUTH_SECRET} must be set to at least {cfg.MIN_SECRET_LENGTH} characters"
        )


def issue_token(secret, role, name, unit=None, ttl=timedelta(days=DEFAULT_TTL_DAYS), now=None):
    """Sign a new token; returns ``(token, token_id)``."""
    check_secret(secret)
    if role not in ROLES + (SERVICE_ROLE,):
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or not name.strip():
        raise ValueError("name must not be empty")
    now = now or utcnow()
    token_id = uuid.uuid4().hex
    payload = {
        "jti": token_id, "role": role, "name": name.strip(),
        "unit": unit.strip() if unit else None,
        "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
    }
    body = _b64(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return f"{TOKEN_PREFIX}.{body}.{_sign(secret, body)}", token_id


def read_token(secret, token, now, is_revoked=lambda token_id: False):
    """Verify ``token`` and return its :class:`Identity`, or raise ``Unauthorized``."""
    if not isinstance(token, str) or not token:
        raise Unauthorized("no auth_token in the call's context data")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise Unauthorized("the auth_token is not a pingxuan token")
    _, body, signature = parts
    if not (body.isascii() and signature.isascii()):
        raise Unauthorized("the auth_token is not a pingxuan token")
    if not hmac.compare_digest(_sign(secret, body), signature):
        raise Unauthorized("the auth_token's signature is not valid")
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        raise Unauthorized("the auth_token cannot be read")
    if not isinstance(payload, dict) or not {"jti", "role", "name", "exp"} <= payload.keys():
        raise Unauthorized("the auth_token cannot be read")
    if payload.get("exp", 0) <= now.timestamp():
        raise Unauthorized("the auth_token has expired")
    if is_revoked(payload["jti"]):
        raise Unauthorized("the auth_token has been revoked")
    return Identity(payload["jti"], payload["role"], payload["name"], payload.get("unit"))


def token_id_of(token):
    """The id inside a token (without verifying it), for revocation by token."""
    try:
        return json.loads(_unb64(token.split(".")[1]))["jti"]
    except (IndexError, ValueError, KeyError, AttributeError, TypeError):
        raise ValueError("not a pingxuan token")


class Caller:
    """What a worker sees: ``require(*roles)`` returns the verified identity."""

    def __init__(self, verify, token, record_revocation):
        self._verify = verify
        self._token = token
        self._identity = None
        self.record_revocation = record_revocation

    @property
    def identity(self):
        if self._identity is None:
            self._identity = self._verify(self._token)
        return self._identity

    def require(self, *roles):
        """The caller's identity; ``Unauthorized`` without a valid token, ``Forbidden`` for other roles."""
        identity = self.identity
        if roles and identity.role not in roles:
            raise Forbidden(
                f"role '{identity.role}' may not make this call (needs {' or '.join(roles)})"
            )
        return identity


class Auth(DependencyProvider):
    """Verifies the ``auth_token`` of each call against the shared secret and the revocations."""

    def setup(self):
        config = self.container.config
        # str(): nameko's YAML loader turns an all-digit secret into a number.
        self.secret = str(config.get(cfg.AUTH_SECRET) or "")
        check_secret(self.secret)
        self.uri = store_uri(config)
        self.client = connect(self.uri)
        db = self.client[cfg.database_name(config, self.container.service_name)]
        self.revoked = db[REVOKED_COLLECTION]

    def stop(self):
        release(self.uri, self.client)

    def kill(self):
        self.stop()

    def is_revoked(self, token_id):
        return self.revoked.find_one({"_id": token_id}, {"_id": 1}) is not None

    def revoke(self, token_id, revoked_at):
        """Record a revocation (idempotent: the event may be redelivered)."""
        self.revoked.update_one(
            {"_id": token_id}, {"$setOnInsert": {"revoked_at": revoked_at}}, upsert=True
        )

    def verify(self, token):
        return read_token(self.secret, token, utcnow(), self.is_revoked)

    def get_dependency(self, worker_ctx):
        return Caller(self.verify, worker_ctx.context_data.get(CONTEXT_KEY), self.revoke)
