"""Voting's keyed hashes, receipts, sessions, one-time code rules, schemas and its store's
activity index (memory and store answer alike)."""
from datetime import timedelta

import pytest
from hypothesis import given, settings, strategies as st

from services.voting import domain, schemas
from services.voting.store import MemoryActivity, StoreActivity
from shared.campaign import validate_campaign
from shared.errors import RateLimited, ValidationError
from shared.validation import load
from tests.conftest import OPEN_CAMPAIGN, at

NOW = at("2099-11-02T02:00:00")


def test_voter_keys_are_keyed_hashes():
    key = domain.voter_key("secret-a-0123456789", "mobile", "13812345678")
    assert key == domain.voter_key("secret-a-0123456789", "mobile", "13812345678")
    assert key != domain.voter_key("secret-b-0123456789", "mobile", "13812345678")
    assert key != domain.voter_key("secret-a-0123456789", "wechat", "13812345678")
    assert "13812345678" not in key and len(key) == 32


def test_addresses_are_kept_as_hashes_and_networks():
    assert domain.ip_key("s" * 20, "203.0.113.7") == domain.ip_key("s" * 20, "203.0.113.7")
    assert domain.ip_net("203.0.113.7") == "203.0.113.0/24"
    assert domain.ip_net("2001:db8:1:2::7") == "2001:db8:1::/48"


@given(st.text(min_size=1, max_size=100))
def test_receipts_look_alike_and_depend_on_the_vote(vote_id):
    code = domain.receipt_code("secret-0123456789", vote_id)
    load(schemas.Receipt(), {"receipt": code}, "receipt")
    assert code != domain.receipt_code("secret-0123456789", vote_id + "x")


def test_a_session_is_bound_to_its_campaign_and_expires():
    token = domain.sign_session("s" * 20, "cb-test", {"k": "voter"}, NOW)
    assert domain.read_session("s" * 20, token, "cb-test", NOW) == {"k": "voter"}
    assert domain.read_session("s" * 20, token, "cb-other", NOW) is None
    assert domain.read_session("t" * 20, token, "cb-test", NOW) is None
    assert domain.read_session("s" * 20, token, "cb-test", NOW + domain.SESSION_TTL) is None
    body = token.split(".")
    forged = ".".join([body[0], body[1][:-2] + "AA", body[2]])
    assert domain.read_session("s" * 20, forged, "cb-test", NOW) is None
    for junk in (None, "", "x" * 10000, "pxv1..", {"k": 1}):
        assert domain.read_session("s" * 20, junk, "cb-test", NOW) is None


def test_codes_are_not_sent_too_often_nor_to_a_locked_number():
    assert domain.check_code_request(None, NOW, "2099-11-02") == 0
    record = {"sent_at": NOW - timedelta(seconds=30), "sends": 1, "day": "2099-11-02"}
    with pytest.raises(RateLimited):
        domain.check_code_request(record, NOW, "2099-11-02")
    record["sent_at"] = NOW - timedelta(seconds=61)
    assert domain.check_code_request(record, NOW, "2099-11-02") == 1
    record["sends"] = domain.OTP_MAX_SENDS_PER_DAY
    with pytest.raises(RateLimited):
        domain.check_code_request(record, NOW, "2099-11-02")
    assert domain.check_code_request(record, NOW, "2099-11-03") == 0      # a new day
    with pytest.raises(RateLimited):
        domain.check_code_request({"locked_until": NOW + timedelta(minutes=1)}, NOW, "2099-11-02")


def test_code_problems():
    mac = domain.code_mac("k" * 20, "key", "123456")
    pending = {"code_mac": mac, "expires_at": NOW + timedelta(minutes=1), "wrong": 0}
    assert domain.code_problem(pending, mac, NOW) is None
    assert "已使用" in domain.code_problem({}, mac, NOW).zh
    assert "过期" in domain.code_problem(dict(pending, expires_at=NOW), mac, NOW).zh
    wrong = domain.code_problem(pending, domain.code_mac("k" * 20, "key", "654321"), NOW)
    assert wrong.wrong and "code" in wrong.messages
    with pytest.raises(RateLimited):
        domain.code_problem(dict(pending, locked_until=NOW + timedelta(minutes=5)), mac, NOW)


def test_every_refusal_has_plain_chinese_words():
    from shared.errors import ALL

    for name, cls in ALL.items():
        error = cls({"vote_id": ["bad"]}) if name == "ValidationError" else cls("x")
        text = domain.refusal_zh(error)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), name


@pytest.mark.parametrize("voter, field", [
    ({"channel": "mobile", "id": "12345"}, "voter.id"),
    ({"channel": "mobile", "id": ""}, "voter.id"),
    ({"channel": "wechat", "id": "o" * 10240}, "voter.id"),
    ({"channel": "wechat", "id": "bad id!"}, "voter.id"),
    ({"channel": "email", "id": "a@b.cn"}, "voter.channel"),
    ({"channel": "mobile"}, "voter.id"),
])
def test_a_voter_must_fit_its_channel(voter, field):
    body = {"vote_id": "v-1", "campaign_id": "cb-test", "candidate_id": "nom-a", "voter": voter,
            "client": {"ip": "203.0.113.7"}}
    with pytest.raises(ValidationError) as refused:
        load(schemas.Vote(), body, "vote")
    assert field in refused.value.messages


def test_mobile_numbers_are_normalised():
    body = {"vote_id": "v-1", "campaign_id": "cb-test", "candidate_id": "nom-a",
            "voter": {"channel": "mobile", "id": "+86 138 1234 5678"},
            "client": {"ip": "2001:DB8::1"}}
    data = load(schemas.Vote(), body, "vote")
    assert data["voter"]["id"] == "13812345678" and data["client"]["ip"] == "2001:db8::1"


def test_campaign_voting_keys_are_optional_and_checked():
    document = dict(OPEN_CAMPAIGN, voting=dict(OPEN_CAMPAIGN["voting"], ip_limit=10,
                                               ip_window_seconds=30, rules=["voting_window"]))
    assert validate_campaign(document)["voting"]["rules"] == ["voting_window"]
    assert "rules" not in validate_campaign(OPEN_CAMPAIGN)["voting"]
    for bad, key in [({"rules": ["no_such_rule"]}, "voting.rules"),
                     ({"ip_limit": 0}, "voting.ip_limit"),
                     ({"ip_window_seconds": 10 ** 6}, "voting.ip_window_seconds")]:
        with pytest.raises(ValidationError) as refused:
            validate_campaign(dict(OPEN_CAMPAIGN, voting=dict(OPEN_CAMPAIGN["voting"], **bad)))
        assert key in refused.value.messages


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 2),
                          st.integers(0, 2 * 24 * 3600)), max_size=30),
       st.integers(0, 2 * 24 * 3600))
def test_the_memory_index_answers_as_the_store_does(specs, since_seconds):
    import mongomock

    db = mongomock.MongoClient(tz_aware=True)["activity"]
    memory, stored = MemoryActivity(), StoreActivity(db["votes"])
    records = []
    # Votes are recorded in time order, and no window is longer than a day.
    specs = sorted(specs, key=lambda spec: spec[3])
    if specs:
        since_seconds = max(since_seconds, specs[-1][3] - 24 * 3600)
    for n, (candidate, voter, ip, seconds) in enumerate(specs):
        moment = NOW + timedelta(seconds=seconds)
        day = (moment + timedelta(hours=8)).date().isoformat()
        records.append({"_id": f"c|v{voter}|n{candidate}|{day}|{n}", "candidate_id": f"n{candidate}",
                        "voter_day": f"c|v{voter}|{day}", "day": day, "ip_slot": f"c|i{ip}",
                        "cast_at": moment})
    if records:
        db["votes"].insert_many([dict(r) for r in records])
        memory.record(records)
    voter_days = {f"c|v{v}|{d}" for v in range(4) for d in ("2099-11-02", "2099-11-03",
                                                              "2099-11-04")}
    slots = {f"c|i{i}" for i in range(3)}
    since = NOW + timedelta(seconds=since_seconds)
    as_memory, as_store = memory.recent(voter_days, slots, since), stored.recent(voter_days, slots,
                                                                              since)
    assert as_memory[0] == as_store[0]
    assert {k: sorted(v) for k, v in as_memory[1].items() if v} == \
        {k: sorted(v) for k, v in as_store[1].items() if v}
