"""Signed tokens: issue, verify, refuse; roles; service credentials; key rollover."""
import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

from shared import signing
from shared.auth import (ACCESS_PURPOSE, SERVICE_CALLS, SERVICE_PURPOSE, Caller, Identity,
                         TrustedKeys, check_service_may_call, issue_service_token, issue_token,
                         read_token, token_id_of)
from shared.errors import Forbidden, Unauthorized
from tests.conftest import TEST_KEYS, TEST_PUBLIC_KEYS, TEST_SECRET, TEST_SERVICE_KEYS

NOW = datetime(2026, 10, 1, 8, 0, 0, tzinfo=timezone.utc)
OTHER_SECRET = signing.generate_private_key()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parts(token):
    prefix, body, signature = token.split(".")
    return prefix, body, signature


def test_round_trip_gives_the_identity():
    token, token_id = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    identity = read_token(TEST_KEYS, token, NOW + timedelta(days=1))
    assert identity == Identity(token_id, "unit", "城关镇党委", None)
    header = json.loads(base64.urlsafe_b64decode(parts(token)[0] + "=="))
    assert header == {"alg": "EdDSA", "typ": ACCESS_PURPOSE, "kid": signing.key_id(TEST_PUBLIC_KEYS)}
    assert len(token_id) == 32


def test_round_trip_keeps_the_unit_and_strips_names():
    token, token_id = issue_token(TEST_SECRET, "judge", "  judge-07 ", unit=" 县教育局党组 ", now=NOW)
    identity = read_token(TEST_SECRET, token, NOW)
    assert (identity.token_id, identity.role, identity.name, identity.unit) == (
        token_id, "judge", "judge-07", "县教育局党组")


def test_each_token_has_its_own_id():
    first = issue_token(TEST_SECRET, "admin", "宣传部", now=NOW)
    second = issue_token(TEST_SECRET, "admin", "宣传部", now=NOW)
    assert first[1] != second[1]
    assert first[0] != second[0]


def test_payload_carries_no_secret():
    token, _ = issue_token(TEST_SECRET, "admin", "宣传部", now=NOW)
    payload = json.loads(base64.urlsafe_b64decode(parts(token)[1] + "=="))
    assert set(payload) == {"jti", "role", "name", "unit", "iat", "exp"}
    assert TEST_SECRET[len("pxsk_"):] not in token
    assert payload["exp"] - payload["iat"] == 180 * 24 * 3600


def refused(token, now=NOW, **kwargs):
    with pytest.raises(Unauthorized) as caught:
        read_token(TEST_KEYS, token, now, **kwargs)
    assert caught.value.exc_type == "Unauthorized"
    return str(caught.value)


def test_a_token_of_a_key_not_trusted_is_refused():
    forged, _ = issue_token(OTHER_SECRET, "admin", "宣传部", now=NOW)
    assert "a key this service does not trust" in refused(forged)


def test_a_forged_signature_under_the_trusted_kid_is_refused():
    genuine, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    forged, _ = issue_token(OTHER_SECRET, "admin", "宣传部", now=NOW)
    mixed = f"{parts(genuine)[0]}.{parts(forged)[1]}.{parts(forged)[2]}"
    assert "signature is not valid" in refused(mixed)


def test_tampered_payload_is_refused():
    token, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    prefix, body, signature = parts(token)
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["role"] = "admin"
    tampered = f"{prefix}.{b64(json.dumps(payload, sort_keys=True).encode())}.{signature}"
    assert "signature is not valid" in refused(tampered)


def test_swapped_signature_is_refused():
    token_a, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    token_b, _ = issue_token(TEST_SECRET, "admin", "宣传部", now=NOW)
    mixed = f"{parts(token_b)[0]}.{parts(token_b)[1]}.{parts(token_a)[2]}"
    assert "signature is not valid" in refused(mixed)


def header(claims):
    return b64(json.dumps(claims).encode())


@pytest.mark.parametrize("garbage", ["garbage", "a.b", "px1.a.b.c", "px1..", "...", "Bearer x",
                                     "eyJ.eyJ.x"])
def test_garbage_is_refused(garbage):
    assert "not a pingxuan token" in refused(garbage)


def test_an_unsigned_token_is_refused():
    token, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    unsigned = f"{header({'alg': 'none', 'typ': ACCESS_PURPOSE, 'kid': signing.key_id(TEST_PUBLIC_KEYS)})}.{parts(token)[1]}."
    refused(unsigned)


def test_the_public_key_as_an_hmac_secret_is_refused():
    # The classic confusion: HS256 "signed" with the public key every service holds.
    kid = signing.key_id(TEST_PUBLIC_KEYS)
    head = header({"alg": "HS256", "typ": ACCESS_PURPOSE, "kid": kid})
    body = b64(json.dumps({"jti": "x", "role": "admin", "name": "宣传部", "unit": None,
                           "iat": 0, "exp": 4102444800}).encode())
    for secret in (TEST_PUBLIC_KEYS.encode(), base64.urlsafe_b64decode(
            TEST_PUBLIC_KEYS[len("pxpk_"):] + "=")):
        signature = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        refused(f"{head}.{body}.{signature}")


@pytest.mark.parametrize("missing", [None, "", 42, {"$ne": ""}, ["px1", "a", "b"]])
def test_missing_or_non_string_token_is_refused(missing):
    assert "no auth_token" in refused(missing)


@pytest.mark.parametrize("garbage", ["px1.令牌.abc", "px1.abc.签名"])
def test_non_ascii_garbage_is_refused(garbage):
    refused(garbage)


def test_expired_token_is_refused():
    token, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", ttl=timedelta(hours=1), now=NOW)
    read_token(TEST_KEYS, token, NOW + timedelta(minutes=59))
    assert "expired" in refused(token, now=NOW + timedelta(hours=1))
    assert "expired" in refused(token, now=NOW + timedelta(days=400))


def test_revoked_token_is_refused():
    token, token_id = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    asked = []

    def is_revoked(candidate):
        asked.append(candidate)
        return candidate == token_id

    assert "revoked" in refused(token, is_revoked=is_revoked)
    assert asked == [token_id]
    other, _ = issue_token(TEST_SECRET, "unit", "东河乡党委", now=NOW)
    assert read_token(TEST_KEYS, other, NOW, is_revoked).name == "东河乡党委"


def test_caller_require_returns_identity_for_an_allowed_role():
    token, token_id = issue_token(TEST_SECRET, "admin", "宣传部", now=NOW)
    caller = Caller(lambda t: read_token(TEST_KEYS, t, NOW), token, record_revocation=None)
    assert caller.require("admin").token_id == token_id
    assert caller.require().role == "admin"
    assert caller.require("unit", "admin").name == "宣传部"


def test_caller_require_wrong_role_is_forbidden():
    token, _ = issue_token(TEST_SECRET, "judge", "judge-07", unit="县教育局党组", now=NOW)
    caller = Caller(lambda t: read_token(TEST_KEYS, t, NOW), token, record_revocation=None)
    with pytest.raises(Forbidden) as caught:
        caller.require("unit", "admin")
    assert caught.value.exc_type == "Forbidden"
    assert "role 'judge'" in str(caught.value)
    assert "unit or admin" in str(caught.value)


def test_caller_without_token_is_unauthorized_not_forbidden():
    caller = Caller(lambda t: read_token(TEST_KEYS, t, NOW), None, record_revocation=None)
    with pytest.raises(Unauthorized):
        caller.require("admin")


def test_caller_verifies_once():
    calls = []

    def verify(token):
        calls.append(token)
        return Identity("t1", "unit", "城关镇党委", None)

    caller = Caller(verify, "tok", record_revocation=None)
    caller.require("unit")
    caller.require("unit")
    assert calls == ["tok"]


def test_unit_name_is_unit_else_name():
    assert Identity("t", "unit", "城关镇党委", None).unit_name == "城关镇党委"
    assert Identity("t", "unit", "张三", "城关镇党委").unit_name == "城关镇党委"
    assert Identity("t", "unit", "张三", "").unit_name == "张三"


def test_unit_name_via_issued_token():
    with_unit, _ = issue_token(TEST_SECRET, "unit", "张三", unit="东河乡党委", now=NOW)
    without, _ = issue_token(TEST_SECRET, "unit", "东河乡党委", now=NOW)
    assert read_token(TEST_KEYS, with_unit, NOW).unit_name == "东河乡党委"
    assert read_token(TEST_KEYS, without, NOW).unit_name == "东河乡党委"


def test_as_actor_has_no_token():
    actor = Identity("t1", "admin", "宣传部", None).as_actor()
    assert actor == {"role": "admin", "name": "宣传部", "unit": None, "token_id": "t1"}


@pytest.mark.parametrize("key", ["", None, "short", "x" * 40, "0123456701234567",
                                 TEST_PUBLIC_KEYS, "pxsk_" + "A" * 10])
def test_only_a_private_key_signs(key):
    with pytest.raises(ValueError, match="private key"):
        issue_token(key, "admin", "宣传部", now=NOW)


def test_the_issuers_private_key_text_verifies_what_it_signed():
    # For the CLI and the tests; a service is given public keys only (test_providers).
    token, _ = issue_token(TEST_SECRET, "admin", "宣传部", now=NOW)
    assert read_token(TEST_SECRET, token, NOW).role == "admin"
    assert read_token(TEST_PUBLIC_KEYS, token, NOW).role == "admin"


@pytest.mark.parametrize("role,name", [("superuser", "x"), ("unit", ""), ("unit", "   "),
                                       ("service", "voting")])
def test_bad_role_or_empty_name_is_refused(role, name):
    with pytest.raises(ValueError):
        issue_token(TEST_SECRET, role, name, now=NOW)


def test_token_id_of_reads_the_id_without_the_secret():
    token, token_id = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    assert token_id_of(token) == token_id
    forged, forged_id = issue_token(OTHER_SECRET, "unit", "城关镇党委", now=NOW)
    assert token_id_of(forged) == forged_id


@pytest.mark.parametrize("garbage", [None, "", "garbage", "px1.!!!.x", "eyJ." + b64(b"{}") + ".x",
                                     "eyJ." + b64(b"not json") + ".x"])
def test_token_id_of_garbage_is_value_error(garbage):
    with pytest.raises(ValueError, match="not a pingxuan token"):
        token_id_of(garbage)


@pytest.mark.parametrize("body", [b"[1]", b"123", b"null"])
def test_token_id_of_non_object_payload_is_value_error(body):
    with pytest.raises(ValueError, match="not a pingxuan token"):
        token_id_of(f"{header({'alg': 'EdDSA'})}.{b64(body)}.x")


# --- service credentials: a service acts as itself, and as nothing else --------------------

VOTING_KEY = TEST_SERVICE_KEYS["voting"]


def claims(role, name):
    return {"jti": "t-1", "role": role, "name": name, "unit": None,
            "iat": int(NOW.timestamp()), "exp": int((NOW + timedelta(hours=1)).timestamp())}


def test_a_service_credential_is_the_service_itself():
    token, token_id = issue_service_token(VOTING_KEY, "voting", now=NOW)
    assert read_token(TEST_KEYS, token, NOW) == Identity(token_id, "service", "voting", None)


@pytest.mark.parametrize("forge", [
    # voting's key signing a person's token, an admin's above all
    lambda: issue_token(VOTING_KEY, "admin", "宣传部", now=NOW)[0],
    # a service credential of voting's key that claims another role
    lambda: signing.sign(VOTING_KEY, claims("admin", "voting"), SERVICE_PURPOSE),
    lambda: signing.sign(VOTING_KEY, claims("frontend", "voting"), SERVICE_PURPOSE),
    # or another service's name
    lambda: issue_service_token(VOTING_KEY, "aggregation", now=NOW)[0],
    lambda: issue_service_token(VOTING_KEY, "nomination", now=NOW)[0],
    # the issuer's key does not make service credentials either: they name their signer
    lambda: signing.sign(TEST_SECRET, claims("service", "voting"), SERVICE_PURPOSE),
    lambda: signing.sign(TEST_SECRET, claims("service", "voting"), ACCESS_PURPOSE),
])
def test_a_service_key_signs_nothing_but_its_own_credential(forge):
    refused(forge())


def test_a_service_credential_reaches_only_the_calls_listed_for_it():
    voting = Identity("t", "service", "voting", None)
    assert check_service_may_call("nomination", "list", voting) is voting
    assert check_service_may_call("notification", "send_direct", voting) is voting
    for service, method in [("nomination", "disqualify"), ("nomination", "review"),
                            ("nomination", "submit"), ("aggregation", "publish"),
                            ("aggregation", "results"), ("scoring", "scores"),
                            ("voting", "void_votes"), ("voting", "votes_page")]:
        with pytest.raises(Forbidden, match=f"the voting service may not call {service}.{method}"):
            check_service_may_call(service, method, voting)
    # People are judged by their role in each method, not by this list.
    admin = Identity("t", "admin", "宣传部", None)
    assert check_service_may_call("nomination", "disqualify", admin) is admin


def test_every_listed_caller_is_a_service():
    services = {"nomination", "voting", "scoring", "aggregation", "notification"}
    for methods in SERVICE_CALLS.values():
        for callers in methods.values():
            assert callers <= services


# --- key rollover: two issuer keys trusted at once, tokens name theirs ----------------------

def test_during_a_rollover_tokens_of_both_keys_are_valid_and_after_it_only_the_new():
    old, new = TEST_SECRET, signing.generate_private_key()
    old_token, _ = issue_token(old, "unit", "城关镇党委", now=NOW)
    new_token, _ = issue_token(new, "unit", "城关镇党委", now=NOW)
    both = TrustedKeys.from_config({"TOKEN_PUBLIC_KEYS": ",".join(
        [signing.public_key_of(old), signing.public_key_of(new)])})
    assert read_token(both, old_token, NOW).name == read_token(both, new_token, NOW).name
    after = TrustedKeys.from_config({"TOKEN_PUBLIC_KEYS": signing.public_key_of(new)})
    assert read_token(after, new_token, NOW).role == "unit"
    with pytest.raises(Unauthorized, match="does not trust"):
        read_token(after, old_token, NOW)


def test_a_service_key_rolls_over_the_same_way():
    new = signing.generate_private_key()
    listed = ",".join([f"voting={signing.public_key_of(VOTING_KEY)}",
                       f"voting={signing.public_key_of(new)}"])
    keys = TrustedKeys.from_config({"TOKEN_PUBLIC_KEYS": TEST_PUBLIC_KEYS,
                                    "SERVICE_PUBLIC_KEYS": listed})
    for key in (VOTING_KEY, new):
        assert read_token(keys, issue_service_token(key, "voting", now=NOW)[0], NOW).name == "voting"
