"""The channel plugins against real servers started by the test: SMTP (aiosmtpd) and HTTP."""
import hashlib
import hmac
import json
import time

import pytest

from services.notification.channels import DeliveryError, Outgoing
from services.notification.channels.sms_http import SmsHttpChannel
from services.notification.channels.smtp import SmtpChannel
from services.notification.channels.webhook import WebhookChannel
from tests.integration.notification_stubs import free_port, gateway, mailbox, smtp_server  # noqa: F401

RECEIPT = Outgoing(message_id="msg-receipt", kind="email", recipient="liming@example.cn",
                   template="nomination_receipt",
                   subject="【测试活动】推荐材料已收到：县财政局机关党委",
                   body="李明同志：您好！\n\n城关镇党委推荐的“县财政局机关党委”推荐材料已收到。",
                   params={"nominee_name": "县财政局机关党委"})
OTP = Outgoing(message_id="msg-otp", kind="sms", recipient="13812345678", template="otp_code",
               subject="验证码", body="验证码为381274",
               params={"campaign_name": "测试活动", "code": "381274", "valid_minutes": "5"})


def test_smtp_delivers_a_chinese_mail_to_a_real_server(mailbox):
    reference = SmtpChannel(mailbox.settings()).send(RECEIPT)
    (mail,) = mailbox.mails()
    assert mail["To"] == "liming@example.cn" and mail["From"] == "pingxuan@example.cn"
    assert mail["Subject"] == RECEIPT.subject
    assert mail["Message-ID"] == reference == "<msg-receipt@pingxuan>"
    assert "县财政局机关党委" in mail.get_content()


def test_smtp_refusing_the_recipient_is_a_permanent_failure_saying_so(mailbox):
    refused = RECEIPT.__class__(**dict(RECEIPT.__dict__, recipient="nobody@example.cn"))
    with pytest.raises(DeliveryError) as failure:
        SmtpChannel(mailbox.settings()).send(refused)
    assert failure.value.permanent
    assert "refused the recipient: 550" in failure.value.reason
    assert "mailbox unavailable" in failure.value.reason
    assert mailbox.mails() == []


def test_no_smtp_server_is_a_failure_worth_a_retry():
    channel = SmtpChannel({"host": "127.0.0.1", "port": free_port(), "sender": "a@example.cn",
                           "timeout_seconds": 2})
    with pytest.raises(DeliveryError) as failure:
        channel.send(RECEIPT)
    assert not failure.value.permanent
    assert "ConnectionRefusedError" in failure.value.reason


def test_sms_http_posts_the_template_and_its_parameters_signed(gateway):
    channel = SmsHttpChannel({"url": gateway.url, "access_key_id": "key-1",
                              "access_key_secret": "s3cret", "sign_name": "县委宣传部",
                              "templates": {"otp_code": "SMS_900001"}})
    assert channel.send(OTP) == "biz-1"
    (request,) = gateway.requests
    assert request["json"]["TemplateCode"] == "SMS_900001"
    assert json.loads(request["json"]["TemplateParam"])["code"] == "381274"
    assert request["json"]["PhoneNumbers"] == "13812345678"
    headers = request["headers"]
    expected = hmac.new(b"s3cret", headers["X-Pingxuan-Timestamp"].encode() + b"." +
                        request["body"], hashlib.sha256).hexdigest()
    assert headers["X-Pingxuan-Signature"] == expected


@pytest.mark.parametrize("status, permanent", [(500, False), (503, False), (429, False),
                                               (400, True), (403, True)])
def test_a_gateway_error_says_its_status_and_whether_a_retry_can_help(gateway, status, permanent):
    gateway.default = status
    with pytest.raises(DeliveryError) as failure:
        SmsHttpChannel({"url": gateway.url}).send(OTP)
    assert f"answered HTTP {status}" in failure.value.reason
    assert failure.value.permanent is permanent


def test_a_gateway_that_hangs_times_out_quickly(gateway):
    gateway.hang = True
    started = time.monotonic()
    with pytest.raises(DeliveryError) as failure:
        SmsHttpChannel({"url": gateway.url, "timeout_seconds": 0.3}).send(OTP)
    assert time.monotonic() - started < 3
    assert failure.value.reason.startswith("timeout: no answer from http://127.0.0.1")
    assert not failure.value.permanent


def test_no_gateway_is_a_failure_worth_a_retry():
    with pytest.raises(DeliveryError) as failure:
        SmsHttpChannel({"url": f"http://127.0.0.1:{free_port()}/sms"}).send(OTP)
    assert "cannot reach" in failure.value.reason and not failure.value.permanent


def test_the_webhook_posts_the_message_with_a_verifiable_signature(gateway):
    WebhookChannel({"url": gateway.url, "secret": "hook-secret"}).send(RECEIPT)
    (request,) = gateway.requests
    headers = request["headers"]
    signed = headers["X-Pingxuan-Timestamp"].encode() + b"." + request["body"]
    assert headers["X-Pingxuan-Signature"] == "sha256=" + hmac.new(
        b"hook-secret", signed, hashlib.sha256).hexdigest()
    assert headers["X-Pingxuan-Message-Id"] == "msg-receipt"
    assert request["json"]["text"] == RECEIPT.body
