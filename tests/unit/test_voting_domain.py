"""Voting's keyed hashes, receipts, sessions, one-time code rules, schemas and its store's
activity index (memory and store answer alike)."""
from datetime import timedelta

import pytest
from hypothesis import example, given, settings, strategies as st

from services.voting import domain, messages, schemas, web
from shared import one_time_codes as otp
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
    assert domain.Sessions("s" * 20).read(token, "cb-test", NOW) == {"k": "voter"}
    assert domain.Sessions("s" * 20).read(token, "cb-other", NOW) is None
    assert domain.Sessions("t" * 20).read(token, "cb-test", NOW) is None
    assert domain.Sessions("s" * 20).read(token, "cb-test", NOW + domain.SESSION_TTL) is None
    kept = domain.Sessions("s" * 20)        # verified once, its expiry read every time
    assert kept.read(token, "cb-test", NOW) == {"k": "voter"}
    assert kept.read(token, "cb-test", NOW + domain.SESSION_TTL) is None
    body = token.split(".")
    forged = ".".join([body[0], body[1][:-2] + "AA", body[2]])
    assert domain.Sessions("s" * 20).read(forged, "cb-test", NOW) is None
    for junk in (None, "", "x" * 10000, "pxv1..", {"k": 1}):
        assert domain.Sessions("s" * 20).read(junk, "cb-test", NOW) is None


def test_codes_are_not_sent_too_often_nor_to_a_locked_number():
    assert otp.check_code_request(None, NOW, "2099-11-02") == 0
    record = {"sent_at": NOW - timedelta(seconds=30), "sends": 1, "day": "2099-11-02"}
    with pytest.raises(RateLimited):
        otp.check_code_request(record, NOW, "2099-11-02")
    record["sent_at"] = NOW - timedelta(seconds=61)
    assert otp.check_code_request(record, NOW, "2099-11-02") == 1
    record["sends"] = otp.OTP_MAX_SENDS_PER_DAY
    with pytest.raises(RateLimited):
        otp.check_code_request(record, NOW, "2099-11-02")
    assert otp.check_code_request(record, NOW, "2099-11-03") == 0      # a new day
    with pytest.raises(RateLimited):
        otp.check_code_request({"locked_until": NOW + timedelta(minutes=1)}, NOW, "2099-11-02")


def test_code_problems():
    mac = domain.code_mac("k" * 20, "key", "123456")
    pending = {"code_mac": mac, "expires_at": NOW + timedelta(minutes=1), "wrong": 0}
    assert otp.code_problem(pending, mac, NOW) is None
    assert type(otp.code_problem({}, mac, NOW)) is otp.NoPendingCode
    assert type(otp.code_problem(dict(pending, expires_at=NOW), mac, NOW)) is otp.CodeExpired
    wrong = otp.code_problem(dict(pending, wrong=1), domain.code_mac("k" * 20, "key", "654321"),
                             NOW)
    assert type(wrong) is otp.WrongCode and wrong.tries_left == otp.OTP_MAX_WRONG - 2
    assert "code" in wrong.messages and wrong.exc_type == "ValidationError"
    with pytest.raises(otp.NumberLocked) as locked:
        otp.code_problem(dict(pending, locked_until=NOW + timedelta(minutes=5)), mac, NOW)
    assert locked.value.minutes == 6 and locked.value.exc_type == "RateLimited"


def test_each_code_refusal_is_worded_from_its_facts():
    assert "已使用" in messages.refusal_zh(otp.NoPendingCode())
    assert "过期" in messages.refusal_zh(otp.CodeExpired())
    assert messages.refusal_zh(otp.WrongCode(3)) == "验证码不正确，还可以再试3次。"
    assert "锁定" in messages.refusal_zh(otp.WrongCode(0))
    assert "12分钟" in messages.refusal_zh(otp.NumberLocked(12))
    assert "42秒" in messages.refusal_zh(otp.CodeSentRecently(42))
    # The refined words win over those of the error refined; an unrefined one keeps its own.
    assert messages.refusal_zh(otp.TooManyCodeRequests(30)) != messages.refusal_zh(
        RateLimited("x"))
    assert "填写的内容有误：验证码" in messages.refusal_zh(ValidationError({"code": ["bad"]}))


def test_the_two_public_pages_say_the_same_for_a_code_refusal():
    from services.aggregation import page as publicity_page

    for cls, words in otp.REFUSALS_ZH.items():
        assert messages.REFUSALS_ZH[cls] is words
        assert publicity_page.REFUSALS_ZH[cls] is words


def test_every_refusal_has_plain_chinese_words():
    from shared.errors import ALL

    refinements = [otp.CodeSentRecently(5), otp.DailyCodesUsed(), otp.TooManyCodeRequests(30),
                   otp.NumberLocked(3), otp.CodeRequestInProgress(), otp.NoPendingCode(),
                   otp.CodeExpired(), otp.WrongCode(2), web.TooLarge(), web.NotJson(),
                   web.NotAnObject()]
    for error in refinements + [cls({"vote_id": ["bad"]}) if name == "ValidationError"
                                else cls("x") for name, cls in ALL.items()]:
        text = messages.refusal_zh(error)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), type(error).__name__
    assert len({messages.refusal_zh(error) for error in refinements}) == len(refinements)


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
    required = ["voting_window", "candidate_on_ballot", "one_vote_per_candidate_per_day"]
    document = dict(OPEN_CAMPAIGN, voting=dict(OPEN_CAMPAIGN["voting"], ip_limit=10,
                                               ip_window_seconds=30, rules=required))
    assert validate_campaign(document)["voting"]["rules"] == required
    assert "rules" not in validate_campaign(OPEN_CAMPAIGN)["voting"]
    for bad, key in [({"rules": ["no_such_rule"]}, "voting.rules"),
                     # A campaign may not switch off the window, the ballot or once-a-day.
                     ({"rules": ["voting_window", "daily_limit"]}, "voting.rules"),
                     ({"ip_limit": 0}, "voting.ip_limit"),
                     ({"ip_window_seconds": 10 ** 6}, "voting.ip_window_seconds")]:
        with pytest.raises(ValidationError) as refused:
            validate_campaign(dict(OPEN_CAMPAIGN, voting=dict(OPEN_CAMPAIGN["voting"], **bad)))
        assert key in refused.value.messages


# --- the fast paths answer exactly as the slow ones ------------------------------------------

ADDRESSES = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.lists(st.sampled_from(["0", "00", "01", "1", "9", "10", "99", "100", "199", "200", "249",
                              "250", "255", "256", "300", "999", "", "a", "１"]),
             min_size=3, max_size=5).map(".".join),
    st.text(alphabet="0123456789.: abcdef\n", max_size=20))


@settings(max_examples=300, deadline=None)
@given(ADDRESSES)
def test_addresses_are_normalised_as_ipaddress_does(text):
    import ipaddress

    try:
        expected = ipaddress.ip_address(text).compressed
    except ValueError:
        with pytest.raises(ValueError):
            domain.normal_ip(text)
        return
    assert domain.normal_ip(text) == expected
    address = ipaddress.ip_address(text)
    prefix = 24 if address.version == 4 else 48
    assert domain.ip_net(text) == str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(domain.CHANNELS), st.text(max_size=40), st.ip_addresses().map(str),
       st.text(min_size=1, max_size=100))
def test_the_keyring_hashes_as_the_stored_hashes_were_made(channel, voter_id, ip, vote_id):
    """Same values as before the keyring (stored votes and receipts must keep matching)."""
    import base64
    import hashlib
    import hmac
    import ipaddress

    def mac(secret, text):
        return hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()

    voter_secret, receipt_secret = "voter-0123456789abcdef", "receipt-0123456789abcdef"
    keyring = domain.Keyring(voter_secret, receipt_secret)
    voter = mac(voter_secret, f"voter|{channel}|{voter_id}").hex()[:32]
    address = mac(voter_secret, f"ip|{ipaddress.ip_address(ip).compressed}").hex()[:24]
    raw = base64.b32encode(mac(receipt_secret, f"receipt|{vote_id}")).decode()[:16]
    receipt = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
    assert keyring.voter(channel, voter_id) == domain.voter_key(voter_secret, channel,
                                                                voter_id) == voter
    assert keyring.ip(ip) == domain.ip_key(voter_secret, ip) == address
    assert keyring.receipt(vote_id) == domain.receipt_code(receipt_secret, vote_id) == receipt


VALID_ID = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}\Z")
JUNK = st.one_of(st.none(), st.integers(), st.just({"$gt": ""}), st.just(["x"]),
                 st.text(max_size=8), st.binary(max_size=8))
VALID_VOTES = st.fixed_dictionaries({
    "vote_id": VALID_ID,
    "campaign_id": st.sampled_from(["cb-test", "cb-2013-siping"]),
    "candidate_id": VALID_ID,
    "voter": st.one_of(
        st.fixed_dictionaries({"channel": st.just("mobile"), "id": st.sampled_from(
            ["13812345678", "+86 138 1234 5678", "8613812345678", "+86-19912345678"])}),
        st.fixed_dictionaries({"channel": st.just("wechat"), "id": st.sampled_from(
            ["o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "abcdef", "x" * 128])})),
    "client": st.fixed_dictionaries({"ip": st.ip_addresses().map(str)}, optional={
        "user_agent": st.one_of(st.none(), st.text(max_size=5), st.just("u" * 512))}),
})
#: Values a field may be changed to: near misses of each rule, and junk of every type.
NEAR_MISSES = {
    "vote_id": st.one_of(VALID_ID.map(lambda t: t + "\n"), VALID_ID.map(lambda t: f" {t}"),
                         VALID_ID.map(str.encode), st.just("x" * 101), st.just(""), JUNK),
    "campaign_id": st.one_of(st.sampled_from(["CB-TEST", "c", "cb-test\n", "cb_test"]), JUNK),
    "candidate_id": st.one_of(VALID_ID.map(lambda t: t + "\n"), st.just("-x"), JUNK),
    "voter.channel": st.one_of(st.sampled_from(["qq", "Mobile", "mobile\n", "wechat"]), JUNK),
    "voter.id": st.one_of(st.sampled_from(
        ["12345678901", "1381234567", "１３８１２３４５６７８", "13812345678\n", "bad id!",
         "x" * 129, "abcde", "o6_bmjrPTlm6\n", " 13812345678 ", "13812345678"]), JUNK),
    "client.ip": st.one_of(ADDRESSES, ADDRESSES.map(lambda t: f" {t} "),
                           st.just("1" * 65), st.just(" " * 60 + "1.2.3.4"), JUNK),
    "client.user_agent": st.one_of(st.just("u" * 513), st.text(max_size=5), JUNK),
}


@st.composite
def nearly_valid_votes(draw):
    """A valid vote with up to three changes: a field's value, a field dropped or added."""
    vote = draw(VALID_VOTES)
    vote = dict(vote, voter=dict(vote["voter"]), client=dict(vote["client"]))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(sorted(NEAR_MISSES) + ["drop", "add", "swap"]))
        if path == "drop":
            part = draw(st.sampled_from([vote, vote["voter"], vote["client"]])) \
                if isinstance(vote.get("voter"), dict) and isinstance(vote.get("client"), dict) \
                else vote
            if part:
                part.pop(draw(st.sampled_from(sorted(part))))
        elif path == "add":
            target = draw(st.sampled_from(["", "voter", "client"]))
            part = vote if not target else vote.get(target)
            if isinstance(part, dict):
                part[draw(st.sampled_from(["extra", "ip", "user_agent", "id"]))] = \
                    draw(st.one_of(st.just("x"), JUNK))
        elif path == "swap":
            vote[draw(st.sampled_from(["voter", "client"]))] = draw(st.one_of(
                JUNK, st.just("13812345678"), st.just({})))
        else:
            parent, _, name = path.rpartition(".")
            part = vote.get(parent) if parent else vote
            if isinstance(part, dict):
                part[name] = draw(NEAR_MISSES[path])
    return vote


def _near(**changes):
    vote = {"vote_id": "v-1", "campaign_id": "cb-test", "candidate_id": "nom-a",
            "voter": {"channel": "wechat", "id": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"},
            "client": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"}}
    for path, value in changes.items():
        parent, _, name = path.rpartition("__")
        part = vote[parent] if parent else vote
        if value is DROP:
            part.pop(name)
        else:
            part[name] = value
    return vote


DROP = object()


@settings(max_examples=500, deadline=None)
@given(nearly_valid_votes())
@example(_near(vote_id="v-1\n"))
@example(_near(vote_id=b"v-1"))
@example(_near(campaign_id="cb-test\n"))
@example(_near(voter__id="bad id!"))
@example(_near(voter__channel="mobile", voter__id="１３８１２３４５６７８"))
@example(_near(voter__extra=1))
@example(_near(client__ip=DROP))
@example(_near(client__ip=" " * 60 + "1.2.3.4"))
@example(_near(client__ip=" 203.0.113.7 "))
@example(_near(client__ip="203.0.113.07"))
@example(_near(client__user_agent="u" * 513))
@example(_near(client__user_agent=DROP))
@example(_near(client__other=1))
@example(_near(extra="field"))
def test_the_fast_vote_check_accepts_only_what_the_schema_accepts_and_loads_it_alike(raw):
    fast = schemas.fast_vote(raw)
    try:
        expected = load(schemas.Vote(), raw, "vote")
    except ValidationError:
        assert fast is None
        return
    assert fast is None or fast == expected


@settings(max_examples=200, deadline=None)
@given(VALID_VOTES)
def test_a_well_formed_vote_takes_the_fast_path(raw):
    assert schemas.fast_vote(raw) == load(schemas.Vote(), raw, "vote")


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.lists(st.integers(), max_size=502), st.tuples(st.integers()), st.none(),
                 st.text(max_size=3), st.dictionaries(st.text(max_size=3), st.integers())))
def test_a_batch_is_checked_as_the_schema_checks_it(votes):
    try:
        expected = load(schemas.VoteBatch(), {"votes": votes}, "votes")["votes"]
    except ValidationError as refused:
        with pytest.raises(ValidationError) as fast:
            schemas.load_batch(votes)
        assert fast.value.messages == refused.messages
        return
    assert schemas.load_batch(votes) == expected


@pytest.mark.parametrize("raw", [
    {"vote_id": "v 1", "campaign_id": "cb-test", "candidate_id": "nom-a",
     "voter": {"channel": "mobile", "id": "123"}, "client": {"ip": "300.1.1.1"}},
    {"vote_id": "v-1", "campaign_id": "cb-test", "candidate_id": "nom-a",
     "voter": {"channel": "qq", "id": "12345678"}, "client": {}, "extra": 1},
    "not an object", None])
def test_a_malformed_vote_is_refused_in_the_schemas_words(raw):
    with pytest.raises(ValidationError) as fast:
        schemas.load_vote(raw)
    with pytest.raises(ValidationError) as slow:
        load(schemas.Vote(), raw, "vote")
    assert fast.value.messages == slow.value.messages


# --- claims: packed for the store, read back whole; the memory index answers as the store ---

def test_a_claim_is_read_back_as_it_was_written(db):
    from services.voting.store import VotingStore

    store = VotingStore(db)
    record = {"_id": "cb-test|v|nom-a|2099-11-02", "vote_id": "v-1", "cast_at": NOW,
              "by": {"role": "frontend", "name": "x", "unit": None}, "batch": None}
    claim = {"_id": "v-1", "key": record["_id"], "fingerprint": "f", "vote": record}
    assert store.claim_vote_ids([claim]) == set()
    assert store.claim_vote_ids([claim]) == {"v-1"}                 # claimed before
    assert store.claims({"v-1", "v-2"}) == {"v-1": claim}
    # A claim written before votes were packed (a sub-document) reads the same.
    store.vote_ids.insert_one(dict(claim, _id="v-old"))
    assert store.claims({"v-old"})["v-old"]["vote"] == record


def test_a_crafted_non_ascii_session_is_no_session():
    assert domain.Sessions(b"k" * 32).read("pxv1.abc.\u00e9", "cb-test",
                                           at("2099-11-02T02:00:00")) is None


class RecordingCodeStore:
    """The store verbs ``issue_code`` uses, recording what was taken and given back."""

    def __init__(self, put=True):
        self.put, self.calls = put, []

    def code_record(self, otp_key):
        return None

    def take_code_slot(self, slot, limit, now):
        self.calls.append(("take", slot))
        return True

    def put_code(self, otp_key, previous, fields):
        self.calls.append(("put", otp_key))
        return self.put

    def drop_code(self, otp_key, mac, previous):
        self.calls.append(("drop", otp_key))

    def release_code_slot(self, slot):
        self.calls.append(("release", slot))


def issue(store, send):
    return otp.issue_code(store, "cb|voter", {"mobile": "13812345678"}, "ip|slot", 30, NOW,
                          "2099-11-02", "k" * 20, send)


def test_a_code_request_that_lost_the_race_gives_back_the_address_count_only():
    store = RecordingCodeStore(put=False)
    with pytest.raises(otp.CodeRequestInProgress):
        issue(store, lambda code: pytest.fail("sent although the record changed meanwhile"))
    assert store.calls == [("take", "ip|slot"), ("put", "cb|voter"), ("release", "ip|slot")]


def test_a_failed_send_gives_back_the_record_and_the_address_count():
    store = RecordingCodeStore()

    def send(code):
        raise TimeoutError("channel down")

    with pytest.raises(TimeoutError):
        issue(store, send)
    assert store.calls == [("take", "ip|slot"), ("put", "cb|voter"), ("drop", "cb|voter"),
                           ("release", "ip|slot")]
    sent = RecordingCodeStore()
    assert issue(sent, lambda code: {"status": "sent", "code": code})["status"] == "sent"
    assert sent.calls == [("take", "ip|slot"), ("put", "cb|voter")]
