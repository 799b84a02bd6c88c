"""The Auth provider as a service runs it: public keys only, service credentials confined."""
from unittest.mock import Mock

import pytest

from shared import signing
from shared.auth import Auth, issue_service_token, issue_token
from shared.errors import Forbidden, Unauthorized
from shared.service_rpc import ServiceCaller
from tests.conftest import (TEST_KEY_CONFIG, TEST_PUBLIC_KEYS, TEST_SECRET, TEST_SERVICE_KEYS,
                            TEST_SERVICE_PUBLIC_KEYS, token)

#: What the voting service's pod holds, as `pingxuan up` and the deploy files give it.
VOTING_CONFIG = {"TOKEN_PUBLIC_KEYS": TEST_PUBLIC_KEYS,
                 "SERVICE_KEY": TEST_SERVICE_KEYS["voting"],
                 "SERVICE_PUBLIC_KEYS": TEST_SERVICE_PUBLIC_KEYS,
                 "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/"}


@pytest.fixture
def nomination_auth(mongo_uri, db_name):
    config = {"MONGO_URI": mongo_uri, "MONGO_DB": db_name, "TOKEN_PUBLIC_KEYS": TEST_PUBLIC_KEYS,
              "SERVICE_PUBLIC_KEYS": TEST_SERVICE_PUBLIC_KEYS}
    container = Mock(config=config, service_name="nomination")
    auth = Auth().bind(container, "auth")
    auth.setup()
    auth.kept_container = container   # bind keeps only a weakref
    yield auth
    auth.stop()


def caller(auth, auth_token, method):
    return auth.get_dependency(Mock(context_data={"auth_token": auth_token},
                                    entrypoint=Mock(method_name=method)))


def forgeries(value):
    """Every token the holder of ``value`` could sign that claims to be an admin."""
    made = []
    for sign in (lambda: issue_token(value, "admin", "宣传部")[0],
                 lambda: issue_service_token(value, "voting")[0],
                 lambda: signing.sign(value, {"jti": "x", "role": "admin", "name": "voting",
                                              "exp": 4102444800}, "px-service"),
                 lambda: signing.sign_mac(str(value).encode(), {"jti": "x", "role": "admin",
                                                                "name": "宣传部",
                                                                "exp": 4102444800},
                                          "px-access")):
        try:
            made.append(sign())
        except ValueError:   # a public key signs nothing
            pass
    return made


def test_nothing_a_voting_pod_holds_mints_a_token_nomination_takes_as_admin(nomination_auth):
    for key, value in VOTING_CONFIG.items():
        for forged in forgeries(value):
            with pytest.raises((Unauthorized, Forbidden)):
                caller(nomination_auth, forged, "disqualify").require("admin")


def test_a_voting_credential_reads_the_ballot_but_cannot_disqualify(nomination_auth):
    credential = issue_service_token(ServiceCaller(VOTING_CONFIG, "voting").key, "voting")[0]
    assert caller(nomination_auth, credential, "list").require("unit", "admin", "service").name \
        == "voting"
    with pytest.raises(Forbidden):
        caller(nomination_auth, credential, "disqualify").require("admin")
    # Even a method that named `service` among its roles would not let voting in unlisted.
    with pytest.raises(Forbidden, match="the voting service may not call nomination.disqualify"):
        caller(nomination_auth, credential, "disqualify").require("admin", "service")
    with pytest.raises(Forbidden):
        caller(nomination_auth, credential, "get").require("unit", "admin", "service")


def test_people_are_judged_by_role_and_the_admin_still_disqualifies(nomination_auth):
    assert caller(nomination_auth, token("admin", "宣传部"), "disqualify").require("admin").name \
        == "宣传部"
    with pytest.raises(Forbidden):
        caller(nomination_auth, token("frontend", "微信"), "disqualify").require("admin")


def test_a_service_not_listed_by_the_receiver_is_not_believed(mongo_uri, db_name):
    # nomination lists only voting's public key: aggregation's credential is a stranger.
    config = {"MONGO_URI": mongo_uri, "MONGO_DB": db_name, "TOKEN_PUBLIC_KEYS": TEST_PUBLIC_KEYS,
              "SERVICE_PUBLIC_KEYS": f"voting={signing.public_key_of(TEST_SERVICE_KEYS['voting'])}"}
    container = Mock(config=config, service_name="nomination")
    auth = Auth().bind(container, "auth")
    auth.setup()
    try:
        with pytest.raises(Unauthorized, match="does not trust"):
            caller(auth, token("service", "aggregation"), "list").require("service")
    finally:
        auth.stop()


def test_a_service_without_its_own_key_refuses_to_start():
    with pytest.raises(RuntimeError, match="SERVICE_KEY must be the voting service's own"):
        ServiceCaller(dict(VOTING_CONFIG, SERVICE_KEY=""), "voting")
    with pytest.raises(RuntimeError, match="SERVICE_KEY must be the voting service's own"):
        ServiceCaller(dict(VOTING_CONFIG, SERVICE_KEY=f"scoring={TEST_SERVICE_KEYS['scoring']}"),
                      "voting")


# --- verified once per process: expiry and revocation still checked on every call ------------

def test_a_remembered_token_is_still_revoked_and_still_expires(nomination_auth):
    from datetime import timedelta

    from shared.auth import VerifiedTokens, identity_of, token_id_of
    from shared.timeutil import utcnow

    frontend = token("frontend", "微信")
    assert caller(nomination_auth, frontend, "get_campaign").require().role == "frontend"
    assert frontend in nomination_auth.verified.claims          # remembered once verified
    nomination_auth.revoke(token_id_of(frontend), "2099-01-01T00:00:00Z")
    with pytest.raises(Unauthorized, match="revoked"):
        caller(nomination_auth, frontend, "get_campaign").require()

    remembered = VerifiedTokens(size=2)
    short, _ = issue_token(TEST_SECRET, "unit", "城关镇党委", ttl=timedelta(minutes=5))
    payload = remembered.get(TEST_KEY_CONFIG["TOKEN_PUBLIC_KEYS"], short)
    assert identity_of(payload, utcnow()).name == "城关镇党委"
    with pytest.raises(Unauthorized, match="expired"):
        identity_of(remembered.get(TEST_KEY_CONFIG["TOKEN_PUBLIC_KEYS"], short),
                    utcnow() + timedelta(minutes=6))


def test_a_changed_token_is_verified_afresh_and_the_memory_is_bounded(nomination_auth):
    from shared.auth import VerifiedTokens

    genuine = token("unit", "城关镇党委")
    caller(nomination_auth, genuine, "list").require("unit")
    with pytest.raises(Unauthorized):
        caller(nomination_auth, genuine[:-4] + "AAAA", "list").require("unit")
    remembered = VerifiedTokens(size=2)
    tokens = [token("unit", f"单位{n}") for n in range(3)]
    for item in tokens:
        remembered.get(TEST_KEY_CONFIG["TOKEN_PUBLIC_KEYS"], item)
    assert list(remembered.claims) == tokens[1:]


def test_a_service_reuses_its_credential_until_near_expiry():
    from datetime import timedelta

    from shared.timeutil import utcnow

    voting = ServiceCaller(VOTING_CONFIG, "voting")
    now = utcnow()
    first = voting.credential(now)
    assert voting.credential(now + timedelta(minutes=49)) == first
    renewed = voting.credential(now + timedelta(minutes=50))
    assert renewed != first
    assert voting.credential(now + timedelta(minutes=51)) == renewed
