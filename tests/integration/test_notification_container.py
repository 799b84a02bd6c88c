"""The notification service in a real container on the real RabbitMQ, sending for real.

Mail goes to a local SMTP server (aiosmtpd) and SMS to a local HTTP gateway
stub, both started by the test. Events arrive through the broker; the test
waits on the handler (``entrypoint_waiter``), never sleeps. Retries are driven
by calling the timer's entrypoint (``entrypoint_hook``) with zero backoff; the
timer itself is set to an hour so it never fires during a test.
"""
import pytest
import requests
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from services.nomination.service import NominationService
from services.notification import domain
from services.notification.service import NotificationService
from shared import events
from shared.errors import RateLimited, ValidationError
from shared.store import connect
from tests.conftest import campaign_document, nomination_form, token
from tests.integration.notification_stubs import free_port, gateway, mailbox, smtp_server  # noqa: F401

pytestmark = pytest.mark.broker

UNIT = "城关镇党委"
ADMIN_EMAIL, ADMIN_MOBILE = "xcb@example.cn", "13900001111"
CONTACT = {"contact_person": "李明", "mobile": "13812345678", "email": "liming@example.cn"}
OTP = {"code": "381274", "valid_minutes": 5, "campaign_name": "测试活动"}


def routes(template, to, email_channel="smtp", sms_channel="sms_http"):
    return [{"template": template, "to": to, "kind": "email", "channel": email_channel},
            {"template": template, "to": to, "kind": "sms", "channel": sms_channel}]


@pytest.fixture
def config(service_config, mailbox, gateway, mongo_uri):
    """The notification service's config: its own database, real channels, zero backoff."""
    own_db = service_config["MONGO_DB"] + "_n"
    yield dict(
        service_config, MONGO_DB=own_db, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
        RETRY_DELAYS_SECONDS="0,0", SWEEP_SECONDS=3600, DIRECT_LIMIT=3,
        ADMIN_RECIPIENTS=f"{ADMIN_EMAIL},{ADMIN_MOBILE}",
        ROUTES={events.NOMINATION_SUBMITTED: routes("nomination_receipt", "contact"),
                events.NOMINATION_REVIEWED: routes("review_result", "contact"),
                events.CANDIDATE_DISQUALIFIED: routes("disqualification_notice", "admins")},
        DIRECT_CHANNELS={"sms": "sms_http", "email": "smtp"},
        CHANNELS={"smtp": mailbox.settings(),
                  "sms_http": {"url": gateway.url, "timeout_seconds": 0.5, "sign_name": "县委宣传部",
                               "templates": {"otp_code": "SMS_900001"}}})
    connect(mongo_uri).drop_database(own_db)


@pytest.fixture
def notification(container_factory, config):
    container = container_factory(NotificationService, config)
    container.start()
    return container


def rpc(config, auth_token, timeout=30):
    return ClusterRpcProxy(config, context_data={"auth_token": auth_token}, timeout=timeout)


def deliver(container, config, event_type, payload):
    """Publish ``payload`` as the nomination service would, and wait until it is handled."""
    with entrypoint_waiter(container, f"on_{event_type}", timeout=20):
        event_dispatcher(config)(events.NOMINATION, event_type, payload)


def retry_due(container):
    with entrypoint_hook(container, "retry_due") as hook:
        hook()


def message(config, message_id):
    with rpc(config, token("admin", "宣传部")) as admin:
        return admin.notification.message(message_id)


def facts(**extra):
    base = dict(nomination_id="nom-1", unit=UNIT, category="advanced_unit", org_type="agency",
                nominee_name="县财政局机关党委", nominee_unit="县财政局", deeds_summary="坚持学习",
                status="submitted", submitted_at="2099-10-01T02:00:00Z")
    base.update(extra)
    return base


def submitted(contact=CONTACT):
    return events.make_event(events.NOMINATION_SUBMITTED, "cb-test", **facts(), contact=contact)


def disqualified():
    return events.make_event(events.CANDIDATE_DISQUALIFIED, "cb-test",
                             **facts(status="disqualified"), candidate_id="nom-1",
                             reason="公示期间经核实事迹材料失实")


def to_admin_mobile(payload):
    return domain.message_key(payload["event_id"], ADMIN_MOBILE, "sms_http")


# --- the whole path, from the nomination service to a mailbox and a gateway -----------------

def test_a_nomination_gets_its_receipt_and_review_result_by_real_mail_and_sms(
        container_factory, service_config, config, notification, mailbox, gateway):
    nomination = container_factory(NominationService,
                                   dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"))
    nomination.start()
    with entrypoint_waiter(notification, "on_campaign_loaded", timeout=20):
        with rpc(service_config, token("admin", "宣传部")) as admin:
            admin.nomination.load_campaign(campaign_document())
    with entrypoint_waiter(notification, "on_nomination_submitted", timeout=20):
        with rpc(service_config, token("unit", UNIT)) as unit:
            record = unit.nomination.submit(nomination_form())
    (receipt,) = mailbox.mails()
    assert receipt["To"] == "liming@example.cn"
    assert receipt["Subject"] == "【测试活动】推荐材料已收到：县财政局机关党委"
    assert record["id"] in receipt.get_content() and "李明同志" in receipt.get_content()
    (sms,) = gateway.requests
    assert sms["json"]["PhoneNumbers"] == "13812345678"
    assert sms["json"]["TemplateCode"] == "nomination_receipt"
    assert "县财政局机关党委" in sms["json"]["TemplateParam"]

    with entrypoint_waiter(notification, "on_nomination_reviewed", timeout=20):
        with rpc(service_config, token("admin", "宣传部")) as admin:
            admin.nomination.review(record["id"], "accept", "材料齐全")
    result = mailbox.mails()[1]
    assert result["To"] == "liming@example.cn" and "已通过" in result["Subject"]
    assert "网络投票将于2099年11月1日 08:00开始" in result.get_content()
    assert [r["json"]["TemplateCode"] for r in gateway.requests] == ["nomination_receipt",
                                                                     "review_result"]


# --- retries, the dead letter and the admin's resend ------------------------------------------

def test_a_gateway_failing_twice_then_succeeding_sends_the_sms_exactly_once(
        notification, config, gateway, mailbox):
    gateway.script = [500, 500]
    payload = disqualified()
    deliver(notification, config, events.CANDIDATE_DISQUALIFIED, payload)
    message_id = to_admin_mobile(payload)
    first = message(config, message_id)
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert "answered HTTP 500" in first["last_error"]
    retry_due(notification)
    assert message(config, message_id)["status"] == "failed"
    retry_due(notification)
    retry_due(notification)          # nothing left to send
    done = message(config, message_id)
    assert (done["status"], done["attempts"]) == ("sent", 3)
    assert len(gateway.requests) == 3 and len(gateway.accepted()) == 1
    assert {r["json"]["OutId"] for r in gateway.requests} == {message_id}
    assert [m["To"] for m in mailbox.mails()] == [ADMIN_EMAIL]      # the e-mail went once, at once


def test_a_gateway_that_always_fails_parks_the_sms_and_an_admin_resends_it(
        notification, config, gateway):
    gateway.default = 500
    payload = disqualified()
    deliver(notification, config, events.CANDIDATE_DISQUALIFIED, payload)
    retry_due(notification)
    retry_due(notification)
    message_id = to_admin_mobile(payload)
    with rpc(config, token("admin", "宣传部")) as admin:
        (row,) = admin.notification.parked("cb-test")
        assert row["message_id"] == message_id and row["attempts"] == 3
        assert row["recipient"] == "139****1111" and "HTTP 500" in row["last_error"]
        retry_due(notification)
        assert len(gateway.requests) == 3                           # parked: left alone
        gateway.default = 200
        resent = admin.notification.resend(message_id)
        assert resent["status"] == "sent" and resent["resends"] == 1
        assert admin.notification.parked() == []
    assert len(gateway.accepted()) == 1
    metrics = requests.get(f"http://{config['WEB_SERVER_ADDRESS']}/metrics", timeout=5).text
    assert 'pingxuan_notifications_total{channel="sms_http",outcome="parked"} 1.0' in metrics
    assert 'pingxuan_notifications_total{channel="sms_http",outcome="failed"} 3.0' in metrics
    assert 'pingxuan_notifications_total{channel="sms_http",outcome="sent"} 1.0' in metrics
    assert 'pingxuan_notifications_total{channel="smtp",outcome="sent"} 1.0' in metrics
    assert "pingxuan_notification_queue_age_seconds" in metrics


def test_a_gateway_that_hangs_is_a_recorded_timeout_not_a_crash(notification, config, gateway):
    gateway.hang = True
    payload = disqualified()
    deliver(notification, config, events.CANDIDATE_DISQUALIFIED, payload)
    row = message(config, to_admin_mobile(payload))
    assert row["status"] == "failed"
    assert row["last_error"].startswith("sms_http: timeout: no answer from http://127.0.0.1")
    with ClusterRpcProxy(config) as anyone:
        assert anyone.notification.health()["status"] == "ok"


def test_an_smtp_server_that_refuses_the_address_leaves_a_clear_record(
        notification, config, mailbox, gateway):
    payload = submitted(dict(CONTACT, email="nobody@example.cn"))
    deliver(notification, config, events.NOMINATION_SUBMITTED, payload)
    row = message(config, domain.message_key(payload["event_id"], "nobody@example.cn", "smtp"))
    assert row["status"] == "parked" and row["attempts"] == 1
    assert "smtp 127.0.0.1" in row["last_error"] and "refused the recipient: 550" in row["last_error"]
    assert mailbox.mails() == []
    assert len(gateway.accepted()) == 1                               # the SMS still went


def test_a_redelivered_event_sends_nothing_twice(notification, config, mailbox, gateway):
    payload = submitted()
    deliver(notification, config, events.NOMINATION_SUBMITTED, payload)
    deliver(notification, config, events.NOMINATION_SUBMITTED, payload)
    retry_due(notification)
    assert len(mailbox.mails()) == 1
    assert len(gateway.requests) == 1


# --- send_direct over RPC ---------------------------------------------------------------------

def test_send_direct_over_rpc_sends_a_one_time_code_once_and_limits_the_recipient(
        notification, config, gateway):
    with rpc(config, token("service", "voting")) as voting:
        first = voting.notification.send_direct("sms", "13812345678", "otp_code", OTP, "otp-1")
        assert first["status"] == "sent"
        assert voting.notification.send_direct("sms", "13812345678", "otp_code", OTP,
                                               "otp-1") == first
        (request,) = gateway.requests
        assert request["json"]["TemplateCode"] == "SMS_900001"
        assert request["json"]["SignName"] == "县委宣传部"
        with pytest.raises(ValidationError) as refused:
            voting.notification.send_direct("sms", "12345", "otp_code", OTP, "otp-2")
        assert refused.value.exc_type == "ValidationError" and "recipient" in refused.value.messages
        voting.notification.send_direct("sms", "13812345678", "otp_code", OTP, "otp-2")
        voting.notification.send_direct("sms", "13812345678", "otp_code", OTP, "otp-3")
        with pytest.raises(RateLimited):
            voting.notification.send_direct("sms", "13812345678", "otp_code", OTP, "otp-4")
    assert len(gateway.requests) == 3
