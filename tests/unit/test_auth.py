"""Signed tokens: issue, verify, refuse; roles; the unit a token acts for."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.auth import (Caller, Identity, issue_token, read_token, token_id_of)
from shared.errors import Forbidden, Unauthorized
from tests.conftest import TEST_SECRET

NOW = datetime(2026, 10, 1, 8, 0, 0, tzinfo=timezone.utc)
OTHER_SECRET = "another-secret-0123456789"

NON_ASCII_BUG = (
    "BUG: read_token signs the body with body.encode('ascii') and compares with "
    "hmac.compare_digest on str, so a token with a non-ASCII character raises "
    "UnicodeEncodeError/TypeError instead of Unauthorized (shared/auth.py:61 via :97, and :97)")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parts(token):
    prefix, body, signature = token.split(".")
    return prefix, body, signature


def test_round_trip_gives_the_identity():
    token, token_id = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    identity = read_token(TEST_SECRET, token, NOW + timedelta(days=1))
    assert identity == Identity(token_id, "unit", "城关镇党委", None)
    assert token.startswith("px1.")
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
    assert TEST_SECRET not in token
    assert payload["exp"] - payload["iat"] == 180 * 24 * 3600


def refused(token, now=NOW, **kwargs):
    with pytest.raises(Unauthorized) as caught:
        read_token(TEST_SECRET, token, now, **kwargs)
    assert caught.value.exc_type == "Unauthorized"
    return str(caught.value)


def test_forged_signature_is_refused():
    forged, _ = issue_token(OTHER_SECRET, "admin", "宣传部", now=NOW)
    assert "signature is not valid" in refused(forged)


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
    mixed = f"px1.{parts(token_b)[1]}.{parts(token_a)[2]}"
    assert "signature is not valid" in refused(mixed)


def test_wrong_prefix_is_refused():
    token, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    assert "not a pingxuan token" in refused("px2." + token[4:])


@pytest.mark.parametrize("garbage", ["garbage", "a.b", "px1.a.b.c", "px1..", "...", "Bearer x"])
def test_garbage_is_refused(garbage):
    message = refused(garbage)
    assert "not a pingxuan token" in message or "signature is not valid" in message


@pytest.mark.parametrize("missing", [None, "", 42, {"$ne": ""}, ["px1", "a", "b"]])
def test_missing_or_non_string_token_is_refused(missing):
    assert "no auth_token" in refused(missing)


@pytest.mark.parametrize("garbage", ["px1.令牌.abc", "px1.abc.签名"])
def test_non_ascii_garbage_is_refused(garbage):
    refused(garbage)


def test_expired_token_is_refused():
    token, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", ttl=timedelta(hours=1), now=NOW)
    read_token(TEST_SECRET, token, NOW + timedelta(minutes=59))
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
    assert read_token(TEST_SECRET, other, NOW, is_revoked).name == "东河乡党委"


def test_caller_require_returns_identity_for_an_allowed_role():
    token, token_id = issue_token(TEST_SECRET, "admin", "宣传部", now=NOW)
    caller = Caller(lambda t: read_token(TEST_SECRET, t, NOW), token, record_revocation=None)
    assert caller.require("admin").token_id == token_id
    assert caller.require().role == "admin"
    assert caller.require("unit", "admin").name == "宣传部"


def test_caller_require_wrong_role_is_forbidden():
    token, _ = issue_token(TEST_SECRET, "judge", "judge-07", unit="县教育局党组", now=NOW)
    caller = Caller(lambda t: read_token(TEST_SECRET, t, NOW), token, record_revocation=None)
    with pytest.raises(Forbidden) as caught:
        caller.require("unit", "admin")
    assert caught.value.exc_type == "Forbidden"
    assert "role 'judge'" in str(caught.value)
    assert "unit or admin" in str(caught.value)


def test_caller_without_token_is_unauthorized_not_forbidden():
    caller = Caller(lambda t: read_token(TEST_SECRET, t, NOW), None, record_revocation=None)
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
    assert read_token(TEST_SECRET, with_unit, NOW).unit_name == "东河乡党委"
    assert read_token(TEST_SECRET, without, NOW).unit_name == "东河乡党委"


def test_as_actor_has_no_token():
    actor = Identity("t1", "admin", "宣传部", None).as_actor()
    assert actor == {"role": "admin", "name": "宣传部", "unit": None, "token_id": "t1"}


@pytest.mark.parametrize("secret", ["", None, "short", "x" * 15])
def test_short_secret_is_refused(secret):
    with pytest.raises(RuntimeError, match="at least 16 characters"):
        issue_token(secret, "admin", "宣传部", now=NOW)


def test_sixteen_character_secret_is_enough():
    token, _ = issue_token("x" * 16, "admin", "宣传部", now=NOW)
    assert read_token("x" * 16, token, NOW).role == "admin"


@pytest.mark.parametrize("role,name", [("superuser", "x"), ("unit", ""), ("unit", "   ")])
def test_bad_role_or_empty_name_is_refused(role, name):
    with pytest.raises(ValueError):
        issue_token(TEST_SECRET, role, name, now=NOW)


def test_token_id_of_reads_the_id_without_the_secret():
    token, token_id = issue_token(TEST_SECRET, "unit", "城关镇党委", now=NOW)
    assert token_id_of(token) == token_id
    forged, forged_id = issue_token(OTHER_SECRET, "unit", "城关镇党委", now=NOW)
    assert token_id_of(forged) == forged_id


@pytest.mark.parametrize("garbage", [None, "", "garbage", "px1.!!!.x", "px1." + b64(b"{}") + ".x",
                                     "px1." + b64(b"not json") + ".x"])
def test_token_id_of_garbage_is_value_error(garbage):
    with pytest.raises(ValueError, match="not a pingxuan token"):
        token_id_of(garbage)


@pytest.mark.parametrize("body", [b"[1]", b"123", b"null"])
def test_token_id_of_non_object_payload_is_value_error(body):
    with pytest.raises(ValueError, match="not a pingxuan token"):
        token_id_of(f"px1.{b64(body)}.x")
