"""Sign-in, sessions and CSRF of the console: plain functions and one small repository.

A session is a random key in an HttpOnly, SameSite=Strict cookie; the store
keeps only the key's SHA-256, the person's token (the console calls every
service with it) and when the session ends. The token is verified again on
every request, so a revoked or expired token ends the session at once.
A form's CSRF token is an HMAC of the session key: nothing to store, and a
form from another session (or none) never matches.
"""
import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from shared import signing
from shared.auth import trusted_keys
from shared.store import Repository
from shared.timeutil import as_utc

SESSION_COOKIE = "px_console"
#: Before sign-in: the key the sign-in form's CSRF token is bound to.
PRE_SESSION_COOKIE = "px_console_pre"
SESSION_TTL = timedelta(hours=8)
PRE_SESSION_TTL = timedelta(hours=1)
LINK_TTL = timedelta(minutes=10)
LINK_PURPOSE = "console-sign-in"
CSRF_FIELD = "csrf_token"
ADMIN_ROLE = "admin"

ROLE_NAMES_ZH = {"unit": "推荐单位", "judge": "评委", "frontend": "投票前端",
                 "service": "服务", "admin": "管理员"}


class SignInRefused(Exception):
    """Why a token or a sign-in link does not open a session, in plain Chinese."""


def new_key():
    return secrets.token_urlsafe(32)


def key_hash(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _mac(secret, text):
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_token(secret, key):
    """The CSRF token of every form shown to the holder of ``key`` (session or pre-session)."""
    return _mac(secret, f"csrf|{key}")


def csrf_valid(secret, key, presented):
    """A form is accepted only with the token of the session that posts it."""
    if not key or not isinstance(presented, str) or not presented or not presented.isascii():
        return False
    return hmac.compare_digest(csrf_token(secret, key), presented)


def served_over_tls(forwarded_proto, scheme, force_secure):
    """Secure cookies when the browser reached us over TLS (directly or through a proxy)."""
    if force_secure:
        return True
    proto = (forwarded_proto or "").split(",")[0].strip().lower()
    return proto == "https" or scheme == "https"


def cookie_options(secure, max_age):
    """The attributes of every cookie the console sets (werkzeug ``set_cookie`` keywords)."""
    return {"max_age": max_age, "httponly": True, "samesite": "Strict", "secure": secure,
            "path": "/"}


def check_admin(identity):
    """The console acts only for the department: any other role is refused at the door."""
    if identity.role != ADMIN_ROLE:
        role = ROLE_NAMES_ZH.get(identity.role, identity.role)
        raise SignInRefused(f"这是“{role}”令牌，控制台只接受宣传部的管理员令牌。"
                            "请使用 pingxuan token issue --role admin 签发的令牌登录。")
    return identity


def sign_in_code(issuer_key, token, now, ttl=LINK_TTL):
    """The code of a one-time sign-in link: the token, an expiry and a nonce, signed with the
    token issuer's private key (only the CLI holds it; the console checks the public key)."""
    return signing.sign(issuer_key, {"token": token, "exp": int((now + ttl).timestamp()),
                                     "nonce": secrets.token_hex(16)}, LINK_PURPOSE)


def read_sign_in_code(issuer_keys, code, now):
    """``(token, nonce, expires)`` of a genuine, unexpired link code, else ``SignInRefused``.

    ``issuer_keys``: the issuer's public keys (``auth.TrustedKeys``, or their text)."""
    code = code.strip() if isinstance(code, str) else code
    try:
        claims, _ = signing.verify(trusted_keys(issuer_keys).issuer, code, LINK_PURPOSE)
    except signing.BadSignature as exc:
        raise SignInRefused("登录链接无效（不完整、签名不符或不是本系统签发的），请重新签发。") from exc
    try:
        token, nonce, expires = claims["token"], claims["nonce"], int(claims["exp"])
    except (ValueError, KeyError, TypeError):
        raise SignInRefused("登录链接无法读取，请重新签发。")
    if expires <= now.timestamp():
        raise SignInRefused("登录链接已过期（有效期10分钟），请重新签发。")
    return token, nonce, expires


class SessionStore(Repository):
    """The console's only records: sessions, the one-time nonces already used (sign-in links,
    renewal confirmations) and the menu of campaign names."""

    def __init__(self, db):
        super().__init__(db)
        self.sessions = db["sessions"]
        self.used_links = db["used_links"]
        self.known = db["known_campaigns"]

    def ensure_indexes(self):
        self.sessions.create_index("expires_at")

    def open(self, key, token, identity, now):
        # Ended sessions and spent links go at each sign-in: no timer, no TTL index (mongomock).
        self.sessions.delete_many({"expires_at": {"$lte": now}})
        self.used_links.delete_many({"expires": {"$lte": int(now.timestamp())}})
        self.sessions.insert_one({
            "_id": key_hash(key), "token": token, "token_id": identity.token_id,
            "name": identity.name, "created_at": now, "expires_at": now + SESSION_TTL})

    def find(self, key, now):
        """The live session of ``key`` (expired ones are removed), or ``None``."""
        if not key or not isinstance(key, str):
            return None
        doc = self.sessions.find_one({"_id": key_hash(key)})
        if doc is None:
            return None
        if as_utc(doc["expires_at"]) <= now:
            self.close(key)
            return None
        return doc

    def close(self, key):
        if key:
            self.sessions.delete_one({"_id": key_hash(key)})

    def use_link(self, nonce, expires):
        """True the first time a one-time nonce is used (a sign-in link's, a renewal's
        confirmation), until ``expires`` (seconds); a second use is refused."""
        try:
            self.used_links.insert_one({"_id": nonce, "expires": expires})
        except DuplicateKeyError:
            return False
        return True

    def release_link(self, nonce):
        """Make a nonce usable again (what it confirmed was refused, nothing was done)."""
        self.used_links.delete_one({"_id": nonce})

    def remember_campaign(self, campaign_id, name, revision):
        self.known.update_one({"_id": campaign_id},
                              {"$set": {"name": name, "revision": revision}}, upsert=True)

    def campaigns(self):
        return [{"id": doc["_id"], "name": doc.get("name") or doc["_id"]}
                for doc in self.known.find().sort("_id", 1)]
