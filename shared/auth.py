"""Identity: signed tokens any service verifies alone, roles, service credentials, revocation.

A person's token (roles ``unit``, ``judge``, ``admin``, ``frontend``) is an
Ed25519-signed JWT (shared/signing.py) that only the admin CLI can sign: it
holds the issuer's private key; every service holds only the issuer's public
keys (``TOKEN_PUBLIC_KEYS``; two during a key rollover). Its claims: token id
(``jti``), role, name, unit, issued and expiry times.

A service calling another acts as itself with a **service credential**: a
short-lived token signed with that service's own private key (``SERVICE_KEY``),
which the receiving service checks against the public key it lists for that
service (``SERVICE_PUBLIC_KEYS``). Such a token can only be role ``service``
under the name of the key's owner, and only for the calls that service is
listed for in :data:`SERVICE_CALLS`: a stolen voting credential can read the
accepted nominations and send one-time codes, nothing an admin can.

Revocation travels as a ``token_revoked`` event that each service records in
its own store. No token, key or secret is ever logged.
"""
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared import signing
from shared.errors import Forbidden, Unauthorized
from shared.store import connect, release, store_uri
from shared.timeutil import utcnow

ROLES = ("unit", "judge", "admin", "frontend")
#: Not a person: one service calling another (signed by that service's own key, never by the CLI).
SERVICE_ROLE = "service"
#: What a signed string is for (its JWT ``typ``): a person's token, a service credential.
ACCESS_PURPOSE = "px-access"
SERVICE_PURPOSE = "px-service"
CONTEXT_KEY = "auth_token"
REVOKED_COLLECTION = "revoked_tokens"
DEFAULT_TTL_DAYS = 180
SERVICE_TOKEN_TTL = timedelta(hours=1)
#: Verified tokens a service remembers (each a few hundred bytes).
VERIFIED_CACHE_SIZE = 4096

#: Which service may make which call under its own identity (receiving service → method →
#: callers); any other call under a service credential is ``Forbidden``, whatever the
#: method's roles say. A new service-to-service call is one line here.
SERVICE_CALLS = {
    "nomination": {
        # a campaign a service has not heard of (shared/campaigns.py)
        "get_campaign": frozenset(["aggregation", "notification", "scoring", "voting"]),
        "get": frozenset(["aggregation", "notification"]),
        "list": frozenset(["aggregation", "scoring", "voting"]),
        # an objection upheld during 公示 (aggregation.resolve_objection)
        "disqualify": frozenset(["aggregation"]),
    },
    "notification": {
        # one-time codes (voting's page, aggregation's 公示 page), judges' links and reminders
        # (scoring), the verdict of an objection (aggregation)
        "send_direct": frozenset(["voting", "scoring", "aggregation"]),
        "message": frozenset(["voting", "scoring", "aggregation"]),
    },
    "aggregation": {
        # whether the list is published, for a service that missed list_published (voting)
        "publication": frozenset(["voting"]),
    },
    "scoring": {
        "progress": frozenset(["aggregation"]),
        "scores": frozenset(["aggregation"]),
    },
    "voting": {
        "votes_page": frozenset(["aggregation"]),
    },
}


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


class TrustedKeys:
    """The public keys a service verifies with: the issuer's, and each peer service's."""

    def __init__(self, issuer, services=None):
        self.issuer = issuer
        self.services = services or signing.PublicKeys()

    @classmethod
    def from_config(cls, config):
        """From ``TOKEN_PUBLIC_KEYS`` and ``SERVICE_PUBLIC_KEYS``; a private key is refused."""
        issuer_text = cfg.read(config, cfg.TOKEN_PUBLIC_KEYS)
        services_text = cfg.read(config, cfg.SERVICE_PUBLIC_KEYS)
        for key, text in ((cfg.TOKEN_PUBLIC_KEYS, issuer_text),
                          (cfg.SERVICE_PUBLIC_KEYS, services_text)):
            if signing.PRIVATE_PREFIX in str(text):
                raise RuntimeError(f"{key} holds a private key: a service needs public keys only")
        try:
            issuer = signing.PublicKeys.parse(issuer_text)
            services = signing.PublicKeys.parse_owned(services_text)
        except ValueError as exc:
            raise RuntimeError(f"{cfg.TOKEN_PUBLIC_KEYS} / {cfg.SERVICE_PUBLIC_KEYS}: {exc}")
        if not len(issuer):
            raise RuntimeError(f"{cfg.TOKEN_PUBLIC_KEYS} must name the token issuer's public key "
                               "(`pingxuan up` writes it to $PINGXUAN_HOME/keys/issuer.pub)")
        return cls(issuer, services)


def trusted_keys(keys):
    """``keys`` as :class:`TrustedKeys`: itself, or text of issuer keys.

    Text may hold the issuer's private key (the CLI and tests verify what they
    signed); a service never gets one (:meth:`TrustedKeys.from_config`).
    """
    if isinstance(keys, TrustedKeys):
        return keys
    items = [item.strip() for item in str(keys or "").split(",") if item.strip()]
    public = [signing.public_key_of(k) if signing.is_private_key(k) else k for k in items]
    return TrustedKeys(signing.PublicKeys.parse(",".join(public)))


def _claims(role, name, unit, ttl, now):
    now = now or utcnow()
    token_id = uuid.uuid4().hex
    return token_id, {
        "jti": token_id, "role": role, "name": name.strip(),
        "unit": unit.strip() if unit else None,
        "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
    }


def _check_name(name):
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must not be empty")


def issue_token(private_key, role, name, unit=None, ttl=timedelta(days=DEFAULT_TTL_DAYS), now=None):
    """Sign a person's token with the issuer's private key; returns ``(token, token_id)``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    _check_name(name)
    token_id, claims = _claims(role, name, unit, ttl, now)
    return signing.sign(private_key, claims, ACCESS_PURPOSE), token_id


def issue_service_token(service_key, service_name, ttl=SERVICE_TOKEN_TTL, now=None):
    """A service credential: ``service_name`` acting as itself, signed with its own key."""
    _check_name(service_name)
    token_id, claims = _claims(SERVICE_ROLE, service_name, None, ttl, now)
    return signing.sign(service_key, claims, SERVICE_PURPOSE), token_id


def verified_claims(keys, token):
    """The claims of a genuinely signed token, expiry not yet checked; else ``Unauthorized``.

    A person's token must be signed by the issuer and carry a person's role; a
    service credential by the key of the very service it names, as role ``service``.
    """
    keys = trusted_keys(keys)
    if not isinstance(token, str) or not token:
        raise Unauthorized("no auth_token in the call's context data")
    try:
        purpose = jwt.get_unverified_header(token).get("typ") if token.count(".") == 2 else None
    except (jwt.PyJWTError, ValueError):
        purpose = None
    try:
        if purpose == ACCESS_PURPOSE:
            payload, _ = signing.verify(keys.issuer, token, ACCESS_PURPOSE)
            role_ok = payload.get("role") in ROLES
        elif purpose == SERVICE_PURPOSE:
            payload, owner = signing.verify(keys.services, token, SERVICE_PURPOSE)
            role_ok = payload.get("role") == SERVICE_ROLE and payload.get("name") == owner
        else:
            raise Unauthorized("the auth_token is not a pingxuan token")
    except signing.BadSignature as exc:
        raise Unauthorized(f"the auth_token is not valid: {exc}")
    if not {"jti", "role", "name", "exp"} <= payload.keys() or not role_ok \
            or not all(isinstance(payload[k], str) for k in ("jti", "role", "name")) \
            or not isinstance(payload["exp"], int) or isinstance(payload["exp"], bool):
        raise Unauthorized("the auth_token cannot be read")
    return payload


def identity_of(payload, now, is_revoked=lambda token_id: False):
    """The :class:`Identity` of verified claims that have not expired nor been revoked."""
    if payload["exp"] <= now.timestamp():
        raise Unauthorized("the auth_token is not valid: it has expired")
    if is_revoked(payload["jti"]):
        raise Unauthorized("the auth_token has been revoked")
    return Identity(payload["jti"], payload["role"], payload["name"], payload.get("unit"))


def read_token(keys, token, now, is_revoked=lambda token_id: False):
    """Verify ``token`` against ``keys`` and return its :class:`Identity`, or ``Unauthorized``."""
    return identity_of(verified_claims(keys, token), now, is_revoked)


def token_id_of(token):
    """The id inside a token (without verifying it), for revocation by token."""
    try:
        token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    except (jwt.PyJWTError, ValueError, KeyError, AttributeError, TypeError):
        raise ValueError("not a pingxuan token")
    if not isinstance(token_id, str):
        raise ValueError("not a pingxuan token")
    return token_id


def own_service_key(config, service_name):
    """This service's private key from ``SERVICE_KEY``: one key, or ``name=key,…`` entries.

    The entries serve several services run in one process (the fault tier, the
    tests); a deployed service is given its own key only.
    """
    text = cfg.read(config, cfg.SERVICE_KEY).strip()
    if "=" in text:
        entries = dict(item.strip().partition("=")[::2] for item in text.split(",") if item.strip())
        text = entries.get(service_name, "").strip()
    if not signing.is_private_key(text):
        raise RuntimeError(f"{cfg.SERVICE_KEY} must be the {service_name} service's own private "
                           f"key (pxsk_…; `pingxuan up` writes it to "
                           f"$PINGXUAN_HOME/keys/{service_name}.key)")
    signing.private_key(text)  # a malformed key fails at start, not at the first call
    return text


def may_call(service, method, caller):
    """The service ``caller`` is listed in :data:`SERVICE_CALLS` for ``service.method``."""
    allowed = SERVICE_CALLS.get(service, {}).get(method, frozenset())
    return caller in allowed


def check_service_may_call(service, method, identity):
    """A service credential reaches only the calls :data:`SERVICE_CALLS` lists for its owner."""
    if identity.role == SERVICE_ROLE and not may_call(service, method, identity.name):
        raise Forbidden(f"the {identity.name} service may not call {service}.{method}")
    return identity


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


class VerifiedTokens(signing.Verified):
    """Claims of tokens whose signature was checked (``signing.Verified``), so a front end's or
    the CLI's token, sent with every call, costs one Ed25519 verification per process;
    expiry and revocation are still checked on every call (``identity_of``)."""

    def __init__(self, size=VERIFIED_CACHE_SIZE):
        super().__init__(size)

    def get(self, keys, token):
        return self.read(token, lambda token_: verified_claims(keys, token_))


class Auth(DependencyProvider):
    """Verifies the ``auth_token`` of each call against the trusted public keys and the revocations."""

    def setup(self):
        config = self.container.config
        self.keys = TrustedKeys.from_config(config)
        self.verified = VerifiedTokens()
        self.service_name = self.container.service_name
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

    def verify(self, token, method):
        identity = identity_of(self.verified.get(self.keys, token), utcnow(), self.is_revoked)
        return check_service_may_call(self.service_name, method, identity)

    def get_dependency(self, worker_ctx):
        method = worker_ctx.entrypoint.method_name
        return Caller(lambda token: self.verify(token, method),
                      worker_ctx.context_data.get(CONTEXT_KEY), self.revoke)
