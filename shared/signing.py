"""The one signer: every signed string of the system (tokens, voting sessions, judge links).

Two kinds of signature, both as JWTs through PyJWT, and nothing hand-written:

* **Ed25519** (``EdDSA``) for what one party signs and others verify: the admin
  CLI's tokens and each service's own service credential. Verifiers hold only
  public keys, so a service that is broken into cannot sign anything another
  service believes, except as itself.
* **HMAC-SHA256** (``HS256``) for what a service signs for itself and reads back
  itself (the voting page's session, a judge's personal link): a key that never
  leaves that service, derived from its own secret with :func:`derive_key`.

Every signed string says what it is for (its header's ``typ``, covered by the
signature), and a reader names the purpose it expects, so a judge link can
never pass as a token nor a session as a link.

Keys are short text, so they fit an environment variable or a Kubernetes Secret
key: ``pxsk_<base64url seed>`` (private, 32 bytes) and ``pxpk_<base64url key>``
(public, 32 bytes). A public key's id, its ``kid``, is the first 16 hex digits
of its SHA-256; a token names the key that signed it, so during a rollover
verifiers trust two public keys at once (README "Security": rotation).
"""
import base64
import hashlib
import hmac
import threading
from collections import OrderedDict

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

PRIVATE_PREFIX = "pxsk_"
PUBLIC_PREFIX = "pxpk_"
#: Longer than any signed string we make: refuse to parse junk of arbitrary size.
MAX_SIGNED_LENGTH = 4096
_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class BadSignature(Exception):
    """A signed string that is missing, malformed, forged, for another purpose or expired."""


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_bytes(text, prefix, what):
    if not isinstance(text, str) or not text.strip().startswith(prefix):
        raise ValueError(f"not an Ed25519 {what} key (it must start with {prefix})")
    try:
        raw = _unb64(text.strip()[len(prefix):])
    except ValueError:
        raise ValueError(f"the {what} key is not valid base64url")
    if len(raw) != 32:
        raise ValueError(f"the {what} key must be 32 bytes")
    return raw


def generate_private_key():
    """A new private key as text (``pxsk_…``)."""
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return PRIVATE_PREFIX + _b64(seed)


def is_private_key(text):
    return isinstance(text, str) and text.strip().startswith(PRIVATE_PREFIX)


def private_key(text):
    return Ed25519PrivateKey.from_private_bytes(_key_bytes(text, PRIVATE_PREFIX, "private"))


def public_key_of(private_text):
    """The public key (``pxpk_…``) of a private key."""
    return PUBLIC_PREFIX + _b64(private_key(private_text).public_key().public_bytes(*_RAW))


def key_id(public_text):
    """The ``kid`` tokens signed by this key carry."""
    return hashlib.sha256(_key_bytes(public_text, PUBLIC_PREFIX, "public")).hexdigest()[:16]


class PublicKeys:
    """Trusted public keys by ``kid``, each with its owner (``None``: the token issuer)."""

    def __init__(self, entries=()):
        self.keys = {}
        for owner, text in entries:
            public = Ed25519PublicKey.from_public_bytes(_key_bytes(text, PUBLIC_PREFIX, "public"))
            self.keys[key_id(text)] = (public, owner)

    @classmethod
    def parse(cls, text, owner=None):
        """Comma-separated public keys (two during a rollover), all of one owner."""
        return cls((owner, item) for item in _items(text))

    @classmethod
    def parse_owned(cls, text):
        """Comma-separated ``owner=public key`` entries (a service's name and its key)."""
        entries = []
        for item in _items(text):
            owner, _, key = item.partition("=")
            if not owner.strip() or not key.strip():
                # The entry itself is not repeated: a misplaced private key must not reach a log.
                raise ValueError(f"entry {len(entries) + 1} is not owner=public key")
            entries.append((owner.strip(), key.strip()))
        return cls(entries)

    def __add__(self, other):
        joined = PublicKeys()
        joined.keys = {**self.keys, **other.keys}
        return joined

    def __len__(self):
        return len(self.keys)

    def lookup(self, kid):
        """``(public key, owner)`` for ``kid``; ``BadSignature`` for a key not trusted here."""
        if not isinstance(kid, str) or kid not in self.keys:
            raise BadSignature("it is signed by a key this service does not trust")
        return self.keys[kid]


def _items(text):
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError("keys must be given as text")
    return [item.strip() for item in text.split(",") if item.strip()]


def sign(private_text, claims, purpose):
    """An Ed25519-signed JWT of ``claims`` for ``purpose``, naming its key's ``kid``."""
    kid = key_id(public_key_of(private_text))
    return jwt.encode(claims, private_key(private_text), algorithm="EdDSA",
                      headers={"kid": kid, "typ": purpose})


def verify(keys, token, purpose, now=None):
    """``(claims, owner)`` of a genuine token for ``purpose`` signed by one of ``keys``.

    Given ``now`` (an aware datetime), an ``exp`` claim is checked against it;
    without, the caller checks expiry itself (shared/auth.py, per call).
    """
    header = _header(token, purpose)
    public, owner = keys.lookup(header.get("kid"))
    return _decode(token, public, "EdDSA", now), owner


def derive_key(secret, purpose):
    """A key for one use of a service's own secret (never the secret itself)."""
    if not isinstance(secret, str) or not secret:
        raise ValueError("no secret to derive a key from")
    return hmac.new(secret.encode("utf-8"), f"pingxuan|{purpose}".encode("utf-8"),
                    hashlib.sha256).digest()


def sign_mac(key, claims, purpose):
    """An HMAC-SHA256-signed JWT of ``claims``: for a service to read back itself."""
    return jwt.encode(claims, key, algorithm="HS256", headers={"typ": purpose})


def verify_mac(key, token, purpose, now=None):
    """The claims of a genuine :func:`sign_mac` string for ``purpose``, else ``BadSignature``."""
    _header(token, purpose)
    return _decode(token, key, "HS256", now)


def _header(token, purpose):
    if not isinstance(token, str) or not token:
        raise BadSignature("there is none")
    if len(token) > MAX_SIGNED_LENGTH or not token.isascii() or token.count(".") != 2:
        raise BadSignature("it is not one of ours")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise BadSignature("it is not one of ours")
    if header.get("typ") != purpose:
        raise BadSignature("it is not one of ours")
    return header


def _decode(token, key, algorithm, now):
    try:
        # Expiry is checked against the caller's clock (the rehearsal clock too), not PyJWT's.
        claims = jwt.decode(token, key, algorithms=[algorithm],
                            options={"verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False, "verify_aud": False,
                                     "verify_iss": False, "verify_sub": False,
                                     "verify_jti": False})
    except jwt.InvalidSignatureError:
        raise BadSignature("its signature is not valid")
    except jwt.PyJWTError:
        raise BadSignature("it cannot be read")
    if not isinstance(claims, dict):
        raise BadSignature("it cannot be read")
    return unexpired(claims, now)


def unexpired(claims, now):
    """``claims`` unless their ``exp`` is past at ``now`` (``None``: not checked here)."""
    expiry = claims.get("exp")
    if expiry is not None:
        if not isinstance(expiry, (int, float)) or isinstance(expiry, bool):
            raise BadSignature("it cannot be read")
        if now is not None and expiry <= now.timestamp():
            raise BadSignature("it has expired")
    return claims


class Verified:
    """The claims of signed strings whose signature was checked, kept by the exact string: a
    token or a voter's session sent with every call costs one verification per process, not
    one per call. Any change to the string is another key, verified afresh; expiry is checked
    on every read, against the caller's clock. Bounded: the least recently read go first.
    """

    def __init__(self, size):
        self.size = size
        self.claims = OrderedDict()
        self.lock = threading.Lock()

    def read(self, token, verify, now=None):
        """``verify(token)``'s claims (raising as it does), remembered; unexpired at ``now``."""
        with self.lock:
            payload = self.claims.get(token) if isinstance(token, str) else None
            if payload is not None:
                self.claims.move_to_end(token)
        if payload is None:
            payload = verify(token)
            with self.lock:
                self.claims[token] = payload
                while len(self.claims) > self.size:
                    self.claims.popitem(last=False)
        return unexpired(payload, now)
