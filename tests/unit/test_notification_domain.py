"""The notification rules: routing from config, message keys, backoff, recipients, the limit."""
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from services.notification import domain  # noqa: E402
from services.notification.domain import (EMAIL, FAILED, PARKED, SENT, SMS, ConfigError,  # noqa: E402
                                          Outcome)
from services.notification.render import Renderer  # noqa: E402
from shared import events  # noqa: E402
from shared.campaign import Campaign  # noqa: E402
from shared.errors import Conflict, InvalidState  # noqa: E402
from tests.conftest import at, campaign_document  # noqa: E402

FAST = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
TEMPLATES = Renderer().names()
CONFIG_FILE = Path(__file__).resolve().parents[2] / "services" / "notification" / "config.yml"
T0 = at("2099-10-01T02:00:00")


def settings_of(**config):
    return domain.settings_from_config(config, TEMPLATES)


def route(event_type=events.NOMINATION_SUBMITTED, template="nomination_receipt", to="contact",
          kind=EMAIL, channel="smtp"):
    return {"template": template, "to": to, "kind": kind, "channel": channel}


# --- routing from configuration ------------------------------------------------------------

def test_the_embedded_default_sends_every_message_through_the_log_channel():
    defaults = settings_of()
    assert defaults.channels_used() == ["log"]
    assert {r.event_type for r in defaults.routes} == set(domain.ROUTED_EVENTS)
    assert defaults.direct_channels == {"email": "log", "sms": "log"}
    assert defaults.retry_delays == domain.DEFAULT_RETRY_DELAYS
    assert defaults.max_attempts == len(domain.DEFAULT_RETRY_DELAYS) + 1


def test_config_yml_without_environment_is_the_embedded_default(monkeypatch):
    from nameko.cli.main import setup_yaml_parser

    from shared.config import database_name

    for name in list(os.environ):
        if name.startswith("NOTIFICATION_"):
            monkeypatch.delenv(name)
    setup_yaml_parser()
    config = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    loaded = domain.settings_from_config(config, TEMPLATES)
    assert loaded.routes == settings_of().routes
    assert loaded.channels_used() == ["log"]
    assert database_name(config, "notification") == "pingxuan_notification"
    assert config["WEB_SERVER_ADDRESS"] == "127.0.0.1:8104"
    assert (loaded.direct_limit, loaded.direct_window_seconds, loaded.sweep_batch) == (5, 600, 50)


def test_config_yml_reads_channels_and_secrets_from_the_environment(monkeypatch):
    from nameko.cli.main import setup_yaml_parser

    monkeypatch.setenv("NOTIFICATION_SMS_CHANNEL", "sms_http")
    monkeypatch.setenv("NOTIFICATION_EMAIL_CHANNEL", "smtp")
    monkeypatch.setenv("NOTIFICATION_SMTP_PASSWORD", "123456")
    monkeypatch.setenv("NOTIFICATION_RETRY_DELAYS", "5,10")
    setup_yaml_parser()
    config = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    loaded = domain.settings_from_config(config, TEMPLATES)
    assert loaded.channels_used() == ["sms_http", "smtp"]
    assert loaded.direct_channels == {"email": "smtp", "sms": "sms_http"}
    assert loaded.retry_delays == (5.0, 10.0)
    # A secret stays text even when it looks like a number.
    assert loaded.channel_settings["smtp"]["password"] == "123456"


def test_routes_choose_template_recipient_and_channel_per_event():
    configured = settings_of(ROUTES={
        events.NOMINATION_SUBMITTED: [route(kind=EMAIL, channel="smtp"),
                                      route(kind=SMS, channel="sms_http")],
        events.CANDIDATE_DISQUALIFIED: [route(template="disqualification_notice", to="admins",
                                              channel="webhook")],
    })
    submitted = configured.routes_for(events.NOMINATION_SUBMITTED)
    assert [(r.kind, r.channel) for r in submitted] == [(EMAIL, "smtp"), (SMS, "sms_http")]
    assert configured.routes_for(events.NOMINATION_REVIEWED) == []
    assert configured.channels_used() == ["log", "sms_http", "smtp", "webhook"]


@pytest.mark.parametrize("routes, message", [
    ({"vote_cast": [route()]}, "ROUTES.vote_cast: not an event"),
    ({events.NOMINATION_SUBMITTED: [route(template="missing_one")]}, "no template 'missing_one'"),
    ({events.NOMINATION_SUBMITTED: [route(kind="fax")]}, "ROUTES.nomination_submitted.0.kind"),
    ({events.NOMINATION_SUBMITTED: [route(to="everyone")]}, "ROUTES.nomination_submitted.0.to"),
    ({events.NOMINATION_SUBMITTED: [dict(route(), colour="red")]}, "0.colour"),
    ({events.NOMINATION_SUBMITTED: route()}, "must be a list"),
    ({events.NOMINATION_SUBMITTED: [route(), route(template="review_result")]},
     "go to the same contact email"),
    (["not", "a", "mapping"], "ROUTES: must map"),
])
def test_a_routing_config_that_cannot_work_is_refused_naming_the_key(routes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_of(ROUTES=routes)


@pytest.mark.parametrize("config, message", [
    ({"DIRECT_CHANNELS": {"sms": "log"}}, "DIRECT_CHANNELS.email"),
    ({"RETRY_DELAYS_SECONDS": "30,soon"}, "RETRY_DELAYS_SECONDS"),
    ({"RETRY_DELAYS_SECONDS": "30,-1"}, "cannot be negative"),
    ({"DIRECT_LIMIT": 0}, "DIRECT_LIMIT: must be at least 1"),
    ({"DIRECT_WINDOW_SECONDS": "often"}, "DIRECT_WINDOW_SECONDS"),
    ({"ADMIN_RECIPIENTS": "xcb@example.cn, the boss"}, "'the boss' is neither"),
    ({"CHANNELS": ["smtp"]}, "CHANNELS: must map"),
])
def test_other_settings_that_cannot_work_are_refused(config, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_of(**config)


def test_a_channel_must_carry_the_kind_of_address_its_routes_send():
    configured = settings_of(ROUTES={events.NOMINATION_SUBMITTED: [route(kind=SMS, channel="smtp")]})
    with pytest.raises(ConfigError, match="channel 'smtp' cannot deliver to an sms address"):
        domain.check_channels_fit(configured, {"smtp": {EMAIL}, "log": {EMAIL, SMS}})
    domain.check_channels_fit(settings_of(), {"log": {EMAIL, SMS}})


def test_settings_parse_retry_delays_and_admin_recipients():
    configured = settings_of(RETRY_DELAYS_SECONDS="0, 1.5,60", DIRECT_LIMIT="3",
                             ADMIN_RECIPIENTS="XCB@Example.CN, +86 13812345678,xcb@example.cn")
    assert configured.retry_delays == (0.0, 1.5, 60.0)
    assert configured.direct_limit == 3
    assert configured.admin_recipients == ((EMAIL, "XCB@example.cn"), (SMS, "13812345678"),
                                           (EMAIL, "xcb@example.cn"))
    assert settings_of(RETRY_DELAYS_SECONDS="").retry_delays == ()
    assert settings_of(RETRY_DELAYS_SECONDS=[5, 10]).retry_delays == (5.0, 10.0)


def test_deliveries_go_to_the_contact_or_to_the_admins_of_the_kind():
    configured = settings_of(
        ADMIN_RECIPIENTS="xcb@example.cn,13900001111",
        ROUTES={events.NOMINATION_SUBMITTED: [route(kind=EMAIL), route(kind=SMS, channel="sms")],
                events.CANDIDATE_DISQUALIFIED: [route(template="disqualification_notice",
                                                      to="admins", kind=SMS, channel="sms")]})
    contact = {"contact_person": "李明", "mobile": "+86 138 1234 5678", "email": "liming@Example.cn"}
    receipts = domain.deliveries(configured.routes_for(events.NOMINATION_SUBMITTED), contact,
                                 configured.admin_recipients)
    assert [(d.route.kind, d.address, d.problem) for d in receipts] == [
        (EMAIL, "liming@example.cn", None), (SMS, "13812345678", None)]
    notices = domain.deliveries(configured.routes_for(events.CANDIDATE_DISQUALIFIED), None,
                                configured.admin_recipients)
    assert [(d.route.kind, d.address) for d in notices] == [(SMS, "13900001111")]


def test_a_bad_contact_address_is_a_delivery_with_a_problem_not_a_silent_drop():
    configured = settings_of(ROUTES={events.NOMINATION_SUBMITTED: [route(kind=EMAIL),
                                                                   route(kind=SMS, channel="s")]})
    out = domain.deliveries(configured.routes_for(events.NOMINATION_SUBMITTED),
                            {"mobile": "0734-5551234", "email": ""}, ())
    assert [d.address for d in out] == ["", "0734-5551234"]
    assert "contact email: no e-mail address given" == out[0].problem
    assert "is not a mainland China mobile number" in out[1].problem


# --- message keys ------------------------------------------------------------------------------

def test_a_message_key_is_the_same_for_the_same_event_recipient_and_channel():
    key = domain.message_key("ev-1", "13812345678", "sms_http")
    assert key == domain.message_key("ev-1", "13812345678", "sms_http")
    assert re.fullmatch(r"msg-[0-9a-f]{32}", key)
    others = {domain.message_key("ev-2", "13812345678", "sms_http"),
              domain.message_key("ev-1", "13812345679", "sms_http"),
              domain.message_key("ev-1", "13812345678", "log")}
    assert key not in others and len(others) == 3


@FAST
@given(st.tuples(st.text(max_size=30), st.text(max_size=30), st.text(max_size=10)),
       st.tuples(st.text(max_size=30), st.text(max_size=30), st.text(max_size=10)))
def test_message_keys_differ_whenever_a_part_differs(first, second):
    same = domain.message_key(*first) == domain.message_key(*second)
    assert same == (first == second)


def test_a_direct_message_key_depends_on_the_caller_and_its_idempotency_key_only():
    key = domain.direct_message_key("voting", "otp-1")
    assert key == domain.direct_message_key("voting", "otp-1")
    assert key != domain.direct_message_key("scoring", "otp-1")
    assert key != domain.direct_message_key("voting", "otp-2")


def test_a_resend_under_a_used_key_must_carry_the_same_content():
    hash_key = b"k"
    first = domain.fingerprint(hash_key, SMS, "13812345678", "otp_code", {"code": "1"})
    existing = {"_id": "msg-1", "fingerprint": first}
    assert domain.resend_of(existing, first) is existing
    with pytest.raises(Conflict):
        domain.resend_of(existing, domain.fingerprint(hash_key, SMS, "13812345678", "otp_code",
                                                      {"code": "2"}))


# --- backoff and the dead letter ---------------------------------------------------------------

def test_a_failed_attempt_is_retried_after_its_delay_then_parked_after_the_last():
    delays = (30, 120, 600)
    failure = Outcome.failure("gateway answered HTTP 500")
    assert domain.after_attempt(1, failure, T0, delays) == domain.Next(FAILED, T0 + timedelta(seconds=30))
    assert domain.after_attempt(2, failure, T0, delays) == domain.Next(FAILED, T0 + timedelta(seconds=120))
    assert domain.after_attempt(3, failure, T0, delays) == domain.Next(FAILED, T0 + timedelta(seconds=600))
    assert domain.after_attempt(4, failure, T0, delays) == domain.Next(PARKED)
    assert domain.after_attempt(4, Outcome.ok(), T0, delays) == domain.Next(SENT)


def test_an_error_no_retry_can_fix_parks_at_once():
    refused = Outcome.failure("550 mailbox unavailable", permanent=True)
    assert domain.after_attempt(1, refused, T0, (30, 120)) == domain.Next(PARKED)


def test_without_delays_the_first_failure_parks():
    assert domain.after_attempt(1, Outcome.failure("x"), T0, ()) == domain.Next(PARKED)


@FAST
@given(st.lists(st.integers(min_value=0, max_value=86400), max_size=8))
def test_the_schedule_has_one_attempt_per_delay_plus_the_first_and_never_goes_back(delays):
    moments = domain.retry_schedule(T0, delays)
    assert len(moments) == len(delays) + 1
    assert moments == sorted(moments)
    # Walking the schedule with after_attempt parks exactly after the last moment.
    statuses = [domain.after_attempt(n, Outcome.failure("x"), moments[n - 1], delays)
                for n in range(1, len(moments) + 1)]
    assert [s.status for s in statuses] == [FAILED] * len(delays) + [PARKED]
    assert [s.next_attempt_at for s in statuses[:-1]] == moments[1:]


def test_only_a_parked_message_is_resent():
    domain.check_resendable({"_id": "m", "status": PARKED})
    for status in (SENT, FAILED, domain.QUEUED):
        with pytest.raises(InvalidState, match=f"is {status}, not parked"):
            domain.check_resendable({"_id": "m", "status": status})


# --- recipients --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, normal", [
    ("13812345678", "13812345678"), ("+8613812345678", "13812345678"),
    ("86-13812345678", "13812345678"), (" 138 1234 5678 ", "13812345678"),
    ("19912345678", "19912345678"),
])
def test_mainland_mobiles_are_accepted_and_normalised(raw, normal):
    assert domain.normalise_recipient(SMS, raw) == normal
    assert domain.recipient_kind(raw) == SMS


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "138123456789", "0734-5551234",
                                 "+1 4155550100", "liming@example.cn", "", "   ", None, 13812345678,
                                 "１３８１２３４５６７８"])
def test_what_is_not_a_mainland_mobile_is_refused_for_sms(raw):
    with pytest.raises(domain.BadRecipient):
        domain.normalise_recipient(SMS, raw)


@pytest.mark.parametrize("raw, normal", [
    ("liming@example.cn", "liming@example.cn"), ("Li.Ming+pingxuan@Example.CN",
                                                 "Li.Ming+pingxuan@example.cn"),
    ("x@mail.gov.cn", "x@mail.gov.cn"),
])
def test_email_addresses_are_accepted_with_a_lower_case_domain(raw, normal):
    assert domain.normalise_recipient(EMAIL, raw) == normal
    assert domain.recipient_kind(raw) == EMAIL


@pytest.mark.parametrize("raw", ["liming@", "@example.cn", "liming@example", "li ming@example.cn",
                                 "liming@@example.cn", "13812345678", "a@b.c\nBcc: x@y.z",
                                 "x" * 250 + "@example.cn", "李明@example.cn"])
def test_what_is_not_an_email_address_is_refused_for_email(raw):
    with pytest.raises(domain.BadRecipient):
        domain.normalise_recipient(EMAIL, raw)


def test_an_unknown_kind_is_refused():
    with pytest.raises(domain.BadRecipient, match="unknown kind"):
        domain.normalise_recipient("fax", "0734-5551235")


@FAST
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", "+86", "86-", "86 "]))
def test_every_mainland_mobile_is_accepted_and_its_middle_digits_never_shown(number, prefix):
    assert domain.normalise_recipient(SMS, prefix + number) == number
    masked = domain.mask(prefix + number)
    assert masked == f"{number[:3]}****{number[-4:]}"


@FAST
@given(st.text(max_size=40))
def test_random_text_is_a_recipient_only_when_it_looks_like_one(text):
    for kind in (SMS, EMAIL):
        try:
            normal = domain.normalise_recipient(kind, text)
        except domain.BadRecipient as exc:
            assert str(exc)
            continue
        assert domain.recipient_kind(normal) == kind
        assert "\n" not in normal and " " not in normal


def test_masks_hide_the_address():
    assert domain.mask("13812345678") == "138****5678"
    assert domain.mask("liming@example.cn") == "l***@example.cn"
    assert domain.mask("abc") == "***"
    assert "12345" not in domain.mask("0734-5551234567")


def test_recipient_hashes_are_keyed():
    assert domain.recipient_hash(b"a", "13812345678") != domain.recipient_hash(b"b", "13812345678")
    assert "13812345678" not in domain.recipient_hash(b"a", "13812345678")


# --- the direct-message limit ------------------------------------------------------------------

def test_rate_windows_are_fixed_slices_of_time():
    first, end = domain.rate_window(T0, 600)
    assert end - 600 <= T0.timestamp() < end
    assert domain.rate_window(T0 + timedelta(seconds=599 - T0.timestamp() % 600), 600)[0] == first
    assert domain.rate_window(T0 + timedelta(seconds=600), 600)[0] == first + 1
    assert "at most 5 in 10 minutes" in str(domain.rate_limited(5, 600))


# --- template variables from events --------------------------------------------------------------

def nomination_event(event_type, **extra):
    facts = dict(nomination_id="nom-1", unit="城关镇党委", category="advanced_unit",
                 org_type="agency", nominee_name="县财政局机关党委", nominee_unit="县财政局",
                 deeds_summary="坚持学习", status="submitted",
                 submitted_at="2099-10-01T02:00:00Z")
    facts.update(extra)
    return events.read_event(event_type, events.make_event(event_type, "cb-test", T0, **facts))


def test_event_params_name_the_campaign_the_nominee_and_local_times():
    campaign = Campaign(campaign_document())
    facts = domain.campaign_facts(campaign, "cb-test")
    event = nomination_event(events.NOMINATION_REVIEWED, decision="accept", opinion="",
                             status="accepted")
    params = domain.event_params(events.NOMINATION_REVIEWED, event, facts,
                                 {"contact_person": "李明"})
    assert params["campaign_name"] == "测试活动"
    assert params["nominee_name"] == "县财政局机关党委"
    assert params["category_name"] == "创建学习型党组织先进单位"
    assert params["org_type_name"] == "机关"
    # 02:00 UTC is 10:00 in Asia/Shanghai; the deadline is local wall-clock time.
    assert params["submitted_at"] == "2099年10月1日 10:00"
    assert params["deadline"] == "2099年10月30日 23:59"
    assert params["voting_opens"] == "2099年11月1日 08:00"
    assert params["decision"] == "accept" and params["opinion"] == "无"
    assert params["contact_person"] == "李明"


def test_an_unknown_campaign_still_gets_a_message_under_its_id():
    facts = domain.campaign_facts(None, "cb-lost")
    params = domain.event_params(events.CANDIDATE_DISQUALIFIED,
                                 nomination_event(events.CANDIDATE_DISQUALIFIED, candidate_id="nom-1",
                                                  reason="材料失实", status="disqualified"), facts)
    assert params["campaign_name"] == "cb-lost"
    assert params["reason"] == "材料失实"
    assert params["deadline"] == "另行通知"


def test_sms_params_are_the_template_variables_as_text():
    assert domain.sms_params({"code": 123456, "valid_minutes": 5, "extra": "x"},
                             {"code", "valid_minutes"}) == {"code": "123456", "valid_minutes": "5"}


def test_a_message_with_a_problem_is_born_parked_with_the_reason():
    record = domain.message_record("msg-1", source="event", ref="ev", event_type="e",
                                   campaign_id="cb-test", template="nomination_receipt",
                                   channel="log", kind=SMS, recipient="12345", rendered=None,
                                   params={}, now=T0, hash_key=b"k", problem="bad mobile")
    assert record["status"] == PARKED and record["last_error"] == "bad mobile"
    assert record["next_attempt_at"] is None and record["parked_at"] == T0
    row = domain.message_row(record, with_history=True)
    assert row["recipient"] == "12***45"
    assert row["history"][0]["outcome"] == PARKED
    assert domain.direct_reply(record) == {"message_id": "msg-1", "status": "queued"}
