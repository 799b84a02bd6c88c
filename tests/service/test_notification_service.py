"""The notification service's entrypoints with nameko's ``worker_factory``: no broker.

The store is the real repository on the test's database and the templates are
the real ones; channels are fakes that record or fail on demand, and the clock
is the test's, so retries are driven by moving time and calling the timer's
entrypoint. Every refusal is checked to leave nothing stored.
"""
from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory
from prometheus_client import CollectorRegistry

from services.notification import domain
from services.notification.channels import DeliveryError
from services.notification.courier import Post
from services.notification.render import Renderer
from services.notification.service import NotificationService, define_metrics
from services.notification.store import NotificationStore
from shared import events
from shared.auth import Caller, read_token
from shared.campaigns import CampaignBook
from shared.errors import (Conflict, Forbidden, InvalidState, NotFound, RateLimited, Unauthorized,
                           ValidationError)
from shared.metrics import ServiceMetrics
from shared.timeutil import utcnow
from tests.conftest import TEST_KEYS, at, campaign_document, token

T0 = at("2099-10-01T02:00:00")
CONTACT = {"contact_person": "李明", "mobile": "13812345678", "email": "liming@example.cn"}
OTP = {"code": "381274", "valid_minutes": 5, "campaign_name": "测试活动"}


class FakeChannel:
    """Records what it sends; raises the queued failures first."""

    kinds = frozenset({"email", "sms"})

    def __init__(self):
        self.sent = []
        self.failures = []

    def fail(self, times, reason="gateway answered HTTP 500", permanent=False):
        self.failures.extend([DeliveryError(reason, permanent=permanent)] * times)

    def send(self, message):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return f"ref-{len(self.sent)}"


class Harness:
    """The service as a given token, at a given time, on one store, with fake channels."""

    def __init__(self, db, **config):
        self.store = NotificationStore(db)
        self.store.ensure_indexes()
        self.now = T0
        renderer = Renderer()
        config = {"RETRY_DELAYS_SECONDS": "60,300",
                  "ADMIN_RECIPIENTS": "xcb@example.cn,13900001111", **config}
        self.settings = domain.settings_from_config(config, renderer.names())
        self.channels = {name: FakeChannel() for name in self.settings.channels_used()}
        self.post = Post(self.settings, renderer, self.channels)
        self.registry = CollectorRegistry()
        self.metrics = ServiceMetrics(self.registry, define_metrics(self.registry))
        self.campaigns = CampaignBook(db["campaigns"])
        self.campaigns.remember(campaign_document(), 1)
        self.nominations = {}

    @property
    def log(self):
        return self.channels["log"]

    def nomination_rpc(self, service, method, *args):
        assert (service, method) == ("nomination", "get")
        return self.nominations[args[0]]

    def service(self, auth_token=None):
        verify = lambda t: read_token(TEST_KEYS, t, utcnow())
        return worker_factory(
            NotificationService, store=self.store, courier=self.post, now=lambda: self.now,
            campaigns=self.campaigns, metrics=self.metrics, service_rpc=self.nomination_rpc,
            auth=Caller(verify, auth_token, lambda token_id, at: None))

    def as_service(self, name="voting"):
        return self.service(token("service", name))

    def as_admin(self):
        return self.service(token("admin", "宣传部"))

    def later(self, seconds):
        self.now += timedelta(seconds=seconds)

    def messages(self, **query):
        return list(self.store.messages.find(query).sort("created_at"))

    def count(self, name, **labels):
        return self.registry.get_sample_value(name, labels) or 0


@pytest.fixture
def harness(db):
    return Harness(db)


def nomination_facts(**extra):
    facts = dict(nomination_id="nom-1", unit="城关镇党委", category="advanced_unit",
                 org_type="agency", nominee_name="县财政局机关党委", nominee_unit="县财政局",
                 deeds_summary="坚持每周集中学习", status="submitted",
                 submitted_at="2099-10-01T02:00:00Z")
    facts.update(extra)
    return facts


def submitted(contact=CONTACT, **extra):
    return events.make_event(events.NOMINATION_SUBMITTED, "cb-test", T0,
                             **nomination_facts(**extra), contact=contact)


def reviewed(decision="accept", opinion="同意", **extra):
    return events.make_event(events.NOMINATION_REVIEWED, "cb-test", T0,
                             **nomination_facts(status="accepted" if decision == "accept"
                                                else "rejected", **extra),
                             decision=decision, opinion=opinion)


def disqualified(**extra):
    return events.make_event(events.CANDIDATE_DISQUALIFIED, "cb-test", T0,
                             **nomination_facts(status="disqualified", **extra),
                             candidate_id="nom-1", reason="公示期间经核实事迹材料失实")


# --- receipts, review results, notices -------------------------------------------------------

def test_a_submission_sends_the_unit_its_receipt_by_email_and_sms(harness):
    harness.service().on_nomination_submitted(submitted())
    sent = harness.log.sent
    assert [(m.kind, m.recipient) for m in sent] == [("email", "liming@example.cn"),
                                                     ("sms", "13812345678")]
    receipt = sent[0]
    assert receipt.template == "nomination_receipt"
    assert "测试活动" in receipt.subject and "县财政局机关党委" in receipt.subject
    assert "李明同志" in receipt.body and "初步审核" in receipt.body
    assert "2099年10月30日 23:59前" in receipt.body           # the campaign's local deadline
    assert sent[1].params["nominee_name"] == "县财政局机关党委"  # what an SMS gateway gets
    stored = harness.messages()
    assert [m["status"] for m in stored] == ["sent", "sent"]
    assert all(m["attempts"] == 1 and m["sent_at"] == T0 for m in stored)
    assert harness.count("pingxuan_notifications_total", channel="log", outcome="sent") == 2


def test_a_redelivered_event_sends_nothing_twice(harness):
    payload = submitted()
    for _ in range(3):
        harness.service().on_nomination_submitted(payload)
    assert len(harness.log.sent) == 2
    assert len(harness.messages()) == 2


def test_the_same_nomination_in_a_new_event_is_a_new_message(harness):
    harness.service().on_nomination_submitted(submitted())
    harness.service().on_nomination_submitted(submitted())   # another event id
    assert len(harness.log.sent) == 4


def test_the_review_result_goes_to_the_contact_of_the_submission(harness):
    harness.service().on_nomination_submitted(submitted())
    harness.service().on_nomination_reviewed(reviewed())
    results = [m for m in harness.log.sent if m.template == "review_result"]
    assert [m.recipient for m in results] == ["liming@example.cn", "13812345678"]
    assert "已通过" in results[0].subject
    assert "网络投票将于2099年11月1日 08:00开始" in results[0].body


def test_a_rejection_says_why(harness):
    harness.service().on_nomination_submitted(submitted())
    harness.service().on_nomination_reviewed(reviewed("reject", "缺少单位盖章"))
    result = [m for m in harness.log.sent if m.template == "review_result"][0]
    assert "未通过" in result.subject and "缺少单位盖章" in result.body


def test_a_review_before_its_submission_waits_for_the_contact(harness):
    review = reviewed()
    harness.service().on_nomination_reviewed(review)
    assert harness.log.sent == [] and harness.messages() == []
    harness.service().on_nomination_reviewed(review)          # redelivered while waiting
    harness.service().on_nomination_submitted(submitted())
    assert sorted(m.template for m in harness.log.sent) == [
        "nomination_receipt", "nomination_receipt", "review_result", "review_result"]
    assert harness.store.contacts.find_one({"_id": "nom-1"})["waiting"] == []


def test_a_waiting_review_missed_by_both_handlers_goes_out_on_the_next_sweep(harness):
    harness.store.remember_contact("nom-1", "cb-test", CONTACT)
    harness.store.contacts.update_one({"_id": "nom-1"}, {"$push": {"waiting": {
        "event_type": events.NOMINATION_REVIEWED, "payload": reviewed()}}})
    harness.service().retry_due()
    assert [m.template for m in harness.log.sent] == ["review_result", "review_result"]


def test_a_review_whose_submission_was_never_seen_fetches_the_contact_from_nomination(harness):
    # e.g. the embedded store restarted between the submission and the review
    harness.service().on_nomination_reviewed(reviewed())
    harness.later(30)
    harness.service().retry_due()           # nomination is not asked yet: the submission may come
    harness.later(30)
    harness.service().retry_due()           # nomination cannot answer: nothing lost, still waiting
    assert harness.log.sent == []
    harness.nominations["nom-1"] = dict(CONTACT, id="nom-1")
    harness.later(10)
    harness.service().retry_due()
    assert [(m.template, m.recipient) for m in harness.log.sent] == [
        ("review_result", "liming@example.cn"), ("review_result", "13812345678")]
    harness.later(600)
    harness.service().retry_due()
    harness.service().on_nomination_submitted(submitted())   # late, with the same contact
    assert [m.template for m in harness.log.sent].count("review_result") == 2


def test_an_odd_submission_time_does_not_stop_the_receipt(harness):
    harness.service().on_nomination_submitted(submitted(submitted_at="yesterday"))
    assert "已于yesterday收到" in harness.log.sent[0].body


def test_an_amended_contact_is_read_back_and_used_for_the_review_result(harness):
    harness.service().on_nomination_submitted(submitted())
    harness.nominations["nom-1"] = dict(CONTACT, email="new@example.cn", id="nom-1")
    harness.service().on_nomination_amended(events.make_event(
        events.NOMINATION_AMENDED, "cb-test", T0, **nomination_facts(),
        changed_fields=["email"]))
    harness.service().on_nomination_submitted(submitted())   # an old redelivery changes nothing
    harness.service().on_nomination_reviewed(reviewed())
    results = [m.recipient for m in harness.log.sent if m.template == "review_result"]
    assert results == ["new@example.cn", "13812345678"]


def test_an_amendment_of_other_fields_asks_nobody(harness):
    harness.service().on_nomination_amended(events.make_event(
        events.NOMINATION_AMENDED, "cb-test", T0, **nomination_facts(),
        changed_fields=["deeds_summary"]))   # nominations is empty: a call would fail
    assert harness.store.contact("nom-1") is None


def test_a_disqualification_notice_goes_to_the_configured_department_recipients(harness):
    harness.service().on_candidate_disqualified(disqualified())
    sent = harness.log.sent
    assert [(m.kind, m.recipient) for m in sent] == [("email", "xcb@example.cn"),
                                                     ("sms", "13900001111")]
    assert "取消参评资格" in sent[0].subject and "县财政局机关党委" in sent[0].subject
    assert "事迹材料失实" in sent[0].body and "递补" in sent[0].body


def test_an_unknown_campaign_does_not_stop_the_message(db):
    harness = Harness(db)
    harness.campaigns.collection.delete_many({})
    harness.service().on_candidate_disqualified(disqualified())
    assert "【cb-test】" in harness.log.sent[0].subject


def test_a_malformed_event_is_ignored_without_a_crash(harness):
    harness.service().on_nomination_submitted({"event_id": "x"})
    assert harness.messages() == []


# --- bad input in events: a clear record, no crash, nothing lost -------------------------------

def test_a_contact_address_that_is_not_one_is_parked_with_the_reason(harness):
    harness.service().on_nomination_submitted(submitted(
        contact=dict(CONTACT, mobile="0734-5551234")))
    assert [m.kind for m in harness.log.sent] == ["email"]
    parked = harness.messages(status="parked")
    assert len(parked) == 1
    assert "contact mobile" in parked[0]["last_error"]
    assert "not a mainland China mobile number" in parked[0]["last_error"]
    assert parked[0]["attempts"] == 0
    assert harness.count("pingxuan_notifications_total", channel="log", outcome="parked") == 1
    rows = harness.as_admin().parked("cb-test")
    assert [row["message_id"] for row in rows] == [parked[0]["_id"]]
    assert rows[0]["recipient"] == "07***34"


def test_two_missing_contact_addresses_are_two_records(harness):
    harness.service().on_nomination_submitted(submitted(contact=dict(CONTACT, mobile="", email="")))
    parked = harness.messages(status="parked")
    assert sorted(m["kind"] for m in parked) == ["email", "sms"]
    assert sorted(m["last_error"] for m in parked) == [
        "contact email: no e-mail address given", "contact mobile: no mobile number given"]


def test_a_template_variable_missing_from_an_event_parks_the_message_with_the_reason(db):
    harness = Harness(db, ROUTES={events.NOMINATION_SUBMITTED: [
        {"template": "judge_assignment", "to": "contact", "kind": "email", "channel": "log"}]})
    harness.service().on_nomination_submitted(submitted())
    (message,) = harness.messages()
    assert message["status"] == "parked"
    assert message["last_error"] == "template judge_assignment: missing closes_at, judge_name, link"
    assert harness.log.sent == []


# --- retries with backoff, the dead letter, the admin's resend -------------------------------

def test_a_channel_failing_twice_then_succeeding_sends_once_after_the_backoff(db):
    harness = Harness(db, ROUTES={events.CANDIDATE_DISQUALIFIED: [
        {"template": "disqualification_notice", "to": "admins", "kind": "sms", "channel": "log"}]})
    harness.log.fail(2)
    harness.service().on_candidate_disqualified(disqualified())
    (message,) = harness.messages()
    assert (message["status"], message["attempts"]) == ("failed", 1)
    assert message["next_attempt_at"] == T0 + timedelta(seconds=60)
    assert message["last_error"] == "log: gateway answered HTTP 500"

    harness.later(59)
    harness.service().retry_due()
    assert harness.messages()[0]["attempts"] == 1            # not due yet
    harness.later(1)
    harness.service().retry_due()
    message = harness.messages()[0]
    assert (message["status"], message["attempts"]) == ("failed", 2)
    assert message["next_attempt_at"] == harness.now + timedelta(seconds=300)
    harness.later(300)
    harness.service().retry_due()
    harness.later(3600)
    harness.service().retry_due()
    message = harness.messages()[0]
    assert (message["status"], message["attempts"]) == ("sent", 3)
    assert len(harness.log.sent) == 1
    assert [h["outcome"] for h in message["history"]] == ["failed", "failed", "sent"]
    assert harness.count("pingxuan_notifications_total", channel="log", outcome="failed") == 2
    assert harness.count("pingxuan_notifications_total", channel="log", outcome="sent") == 1
    assert harness.count("pingxuan_notification_delivery_seconds_sum", channel="log") == 360


def test_a_channel_that_always_fails_parks_the_message_and_an_admin_resends_it(db):
    harness = Harness(db, ROUTES={events.CANDIDATE_DISQUALIFIED: [
        {"template": "disqualification_notice", "to": "admins", "kind": "email",
         "channel": "log"}]})
    harness.log.fail(3, "timeout: no answer from http://gw/sms within 5 s")
    harness.service().on_candidate_disqualified(disqualified())
    for seconds in (60, 300):
        harness.later(seconds)
        harness.service().retry_due()
    (message,) = harness.messages()
    assert (message["status"], message["attempts"]) == ("parked", 3)
    assert message["next_attempt_at"] is None and message["parked_at"] == harness.now
    assert "timeout" in message["last_error"]
    harness.later(10000)
    harness.service().retry_due()
    assert harness.messages()[0]["attempts"] == 3              # a dead letter is left alone
    assert harness.count("pingxuan_notifications_total", channel="log", outcome="parked") == 1

    (row,) = harness.as_admin().parked()
    assert row["message_id"] == message["_id"] and row["status"] == "parked"
    assert row["recipient"] == "x***@example.cn" and "timeout" in row["last_error"]
    assert harness.as_admin().parked("cb-other") == []

    resent = harness.as_admin().resend(message["_id"])
    assert resent["status"] == "sent" and resent["resends"] == 1
    assert [h["outcome"] for h in resent["history"]][-2:] == ["resent", "sent"]
    assert len(harness.log.sent) == 1
    assert harness.as_admin().parked() == []
    (audit,) = harness.as_admin().audit_trail("cb-test")
    assert audit["entity_id"] == message["_id"]
    assert audit["action"] == "resend" and audit["actor"]["name"] == "宣传部"
    assert audit["before"]["status"] == "parked" and audit["after"] == {"status": "queued"}


def test_a_resent_message_that_fails_again_gets_a_fresh_schedule(db):
    harness = Harness(db, RETRY_DELAYS_SECONDS="60")
    harness.log.fail(3, permanent=True)
    harness.service().on_candidate_disqualified(disqualified())
    parked = harness.messages(status="parked")
    assert len(parked) == 2 and all(m["attempts"] == 1 for m in parked)   # permanent: at once
    harness.log.failures = [DeliveryError("busy")]
    row = harness.as_admin().resend(parked[0]["_id"])
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["next_attempt_at"] == "2099-10-01T02:01:00Z"


def test_only_an_admin_resends_and_only_a_parked_message(harness):
    harness.service().on_nomination_submitted(submitted())
    sent_id = harness.messages()[0]["_id"]
    with pytest.raises(InvalidState, match="is sent, not parked"):
        harness.as_admin().resend(sent_id)
    with pytest.raises(NotFound):
        harness.as_admin().resend("msg-unknown")
    with pytest.raises(ValidationError):
        harness.as_admin().resend({"$gt": ""})
    with pytest.raises(Forbidden):
        harness.service(token("unit", "城关镇党委")).resend(sent_id)
    with pytest.raises(Forbidden):
        harness.as_service().parked()
    with pytest.raises(Unauthorized):
        harness.service(None).parked()
    with pytest.raises(ValidationError):
        harness.as_admin().parked({"$ne": None})
    assert harness.store.audit.read() == []
    with pytest.raises(Forbidden):
        harness.as_service().audit_trail()


def test_a_message_held_by_one_sender_is_not_sent_by_another(harness):
    harness.log.fail(1)
    harness.service().on_candidate_disqualified(disqualified())
    message_id = harness.messages()[0]["_id"]
    harness.later(60)
    first = harness.store.claim(message_id, harness.now, 120)
    assert first is not None
    assert harness.store.claim(message_id, harness.now, 120) is None
    harness.service().retry_due()
    assert all(m.recipient != "xcb@example.cn" for m in harness.log.sent)
    # A lease that ran out (a crashed sender) lets the next sweep send it.
    harness.later(121)
    harness.service().retry_due()
    assert [m.recipient for m in harness.log.sent].count("xcb@example.cn") == 1


def test_the_queue_age_is_measured_on_each_sweep(harness):
    harness.log.fail(1)
    harness.service().on_candidate_disqualified(disqualified())
    harness.later(30)
    harness.service().retry_due()
    assert harness.count("pingxuan_notification_queue_age_seconds") == 30
    assert harness.count("pingxuan_notification_messages", status="failed") == 1
    assert harness.count("pingxuan_notification_messages", status="sent") == 1
    harness.later(30)
    harness.service().retry_due()
    assert harness.count("pingxuan_notification_queue_age_seconds") == 0


# --- send_direct ---------------------------------------------------------------------------

def test_send_direct_sends_a_one_time_code_and_forgets_it_once_sent(harness):
    reply = harness.as_service("voting").send_direct("sms", "+86 138 1234 5678", "otp_code", OTP,
                                                     "otp-1")
    assert reply["status"] == "sent" and reply["message_id"].startswith("msg-")
    (sent,) = harness.log.sent
    assert sent.recipient == "13812345678" and "验证码为381274" in sent.body
    stored = harness.store.get(reply["message_id"])
    # 个人信息保护法: the plain number and the code are not kept once the code is sent.
    for field in ("recipient", "body", "params", "subject"):
        assert field not in stored
    assert stored["recipient_masked"] == "138****5678" and stored["erased"] is True
    assert stored["requested_by"] == "voting" and stored["source"] == "direct"


def test_a_judge_link_is_sent_and_then_forgotten_but_a_receipt_is_kept(harness):
    params = {"judge_name": "王评委", "campaign_name": "测试活动", "category_name": "党员学习明星",
              "link": "http://127.0.0.1:8102/j/abc", "closes_at": "2099年11月25日 18:00"}
    reply = harness.as_service("scoring").send_direct(
        "email", "wang@example.cn", "judge_assignment", params,
        "judge_assignment|cb-test|learning_star|王评委|n0nce")    # scoring's keys: any text
    assert reply["status"] == "sent"
    assert "http://127.0.0.1:8102/j/abc" in harness.log.sent[0].body
    assert "body" not in harness.store.get(reply["message_id"])   # the link is a credential
    harness.service().on_nomination_submitted(submitted())
    receipt = harness.messages(template="nomination_receipt")[0]
    assert receipt["recipient"] == "liming@example.cn" and "县财政局机关党委" in receipt["body"]


def test_send_direct_is_idempotent_on_its_key(harness):
    first = harness.as_service().send_direct("sms", "13812345678", "otp_code", OTP, "otp-1")
    again = harness.as_service().send_direct("sms", "13812345678", "otp_code", OTP, "otp-1")
    assert again == first
    assert len(harness.log.sent) == 1
    with pytest.raises(Conflict):
        harness.as_service().send_direct("sms", "13812345678", "otp_code",
                                         dict(OTP, code="000000"), "otp-1")
    with pytest.raises(Conflict):
        harness.as_service().send_direct("sms", "13900001111", "otp_code", OTP, "otp-1")
    # Another service's key is its own.
    harness.as_service("scoring").send_direct("sms", "13812345678", "otp_code", OTP, "otp-1")
    assert len(harness.log.sent) == 2


def test_a_one_time_code_that_fails_is_parked_and_erased_not_retried(harness):
    """A code is worth minutes: no retry hours later, and its number and text are not kept."""
    harness.log.fail(1)
    reply = harness.as_service().send_direct("sms", "13812345678", "otp_code", OTP, "otp-1")
    assert reply["status"] == "queued"
    stored = harness.store.get(reply["message_id"])
    assert stored["status"] == "parked" and stored.get("erased") is True
    assert "13812345678" not in repr(stored) and OTP["code"] not in repr(stored)
    with pytest.raises(InvalidState):
        harness.as_admin().resend(reply["message_id"])


@pytest.mark.parametrize("args, field", [
    (("sms", "12345", "otp_code", OTP, "k"), "recipient"),
    (("sms", "liming@example.cn", "otp_code", OTP, "k"), "recipient"),
    (("email", "13812345678", "otp_code", OTP, "k"), "recipient"),
    (("email", "liming@example", "otp_code", OTP, "k"), "recipient"),
    (("sms", "", "otp_code", OTP, "k"), "recipient"),
    (("fax", "13812345678", "otp_code", OTP, "k"), "kind"),
    (("sms", "13812345678", "lottery_win", OTP, "k"), "template"),
    (("sms", "13812345678", "../etc/passwd", OTP, "k"), "template"),
    (("sms", "13812345678", "otp_code", {"valid_minutes": 5, "campaign_name": "x"}, "k"),
     "params.code"),
    (("sms", "13812345678", "otp_code", "code=1", "k"), "params"),
    (("sms", "13812345678", "otp_code", dict(OTP, code={"$gt": ""}), "k"), "params.code.value"),
    (("sms", "13812345678", "otp_code", dict(OTP, code="1" * 501), "k"), "params.code.value"),
    (("sms", "13812345678", "otp_code", OTP, ""), "idempotency_key"),
    (("sms", "13812345678", "otp_code", OTP, {"$ne": 1}), "idempotency_key"),
    (("sms", "13812345678", "otp_code", OTP, "k" * 257), "idempotency_key"),
    (("sms", "13812345678", "otp_code", OTP, "otp\n1"), "idempotency_key"),
    (("sms", {"$ne": 1}, "otp_code", OTP, "k"), "recipient"),
])
def test_send_direct_refuses_bad_input_by_field_and_stores_nothing(harness, args, field):
    with pytest.raises(ValidationError) as refused:
        harness.as_service().send_direct(*args)
    assert field in refused.value.messages
    assert harness.messages() == [] and harness.log.sent == []
    assert harness.store.rates.count_documents({}) == 0


def test_send_direct_is_for_services_and_admins(harness):
    for role in ("unit", "judge", "frontend"):
        with pytest.raises(Forbidden):
            harness.service(token(role, "x")).send_direct("sms", "13812345678", "otp_code", OTP, "k")
    with pytest.raises(Unauthorized):
        harness.service(None).send_direct("sms", "13812345678", "otp_code", OTP, "k")
    with pytest.raises(Unauthorized):
        harness.service("px1.forged.token").send_direct("sms", "13812345678", "otp_code", OTP, "k")
    assert harness.messages() == []
    assert harness.as_admin().send_direct("sms", "13812345678", "otp_code", OTP, "k")["status"] == "sent"


def test_send_direct_is_rate_limited_per_recipient(harness):
    service = harness.as_service()
    for n in range(5):
        service.send_direct("sms", "13812345678", "otp_code", OTP, f"otp-{n}")
    with pytest.raises(RateLimited, match="at most 5 in 10 minutes"):
        harness.as_service().send_direct("sms", "+8613812345678", "otp_code", OTP, "otp-5")
    assert len(harness.messages()) == 5
    # A resend of an accepted key is not a new message, and another number has its own limit.
    harness.as_service().send_direct("sms", "13812345678", "otp_code", OTP, "otp-4")
    harness.as_service().send_direct("sms", "13900001111", "otp_code", OTP, "otp-x")
    harness.later(600)
    harness.as_service().send_direct("sms", "13812345678", "otp_code", OTP, "otp-6")
    assert len(harness.log.sent) == 7
    assert harness.count("pingxuan_notifications_total", channel="log", outcome="sent") == 7


def test_old_rate_windows_are_forgotten(harness):
    harness.as_service().send_direct("sms", "13812345678", "otp_code", OTP, "otp-1")
    assert harness.store.rates.count_documents({}) == 1
    harness.later(601)
    harness.service().retry_due()
    assert harness.store.rates.count_documents({}) == 0


def test_a_service_reads_only_the_messages_it_asked_for(harness):
    reply = harness.as_service("voting").send_direct("sms", "13812345678", "otp_code", OTP, "k")
    row = harness.as_service("voting").message(reply["message_id"])
    assert row["status"] == "sent" and row["recipient"] == "138****5678"
    assert "381274" not in str(row)
    with pytest.raises(Forbidden):
        harness.as_service("scoring").message(reply["message_id"])
    assert harness.as_admin().message(reply["message_id"])["history"][0]["outcome"] == "sent"
    with pytest.raises(NotFound):
        harness.as_admin().message("msg-none")
