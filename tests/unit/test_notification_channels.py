"""The channel plugins without a network: registry, settings, request bodies, signatures."""
import hashlib
import hmac
import json
import logging
import re

import pytest

from services.notification.channels import ChannelConfigError, Outgoing, load_channel
from services.notification.channels.http import signature
from services.notification.channels.log import LogChannel
from services.notification.channels.sms_http import SmsHttpChannel
from services.notification.channels.smtp import SmtpChannel
from services.notification.channels.webhook import WebhookChannel
from shared.plugins import CHANNELS, PluginNotFound, plugin_names
from tests.conftest import TEST_SERVICE_KEYS

SERVICE_KEY = TEST_SERVICE_KEYS["notification"]

OTP = Outgoing(message_id="msg-1", kind="sms", recipient="13812345678", template="otp_code",
               subject="【测试活动】投票验证码", body="您的验证码为381274，5分钟内有效。",
               params={"campaign_name": "测试活动", "code": "381274", "valid_minutes": "5"})
RECEIPT = Outgoing(message_id="msg-2", kind="email", recipient="liming@example.cn",
                   template="nomination_receipt", subject="【测试活动】推荐材料已收到：县财政局机关党委",
                   body="李明同志：您好！\n\n推荐材料已收到。", params={})


def test_the_four_channels_are_registered_as_entry_points():
    assert {"log", "smtp", "sms_http", "webhook"} <= set(plugin_names(CHANNELS))
    assert isinstance(load_channel("log", {}), LogChannel)
    assert load_channel("sms_http", {"url": "http://127.0.0.1:1/sms"}).name == "sms_http"


def test_an_unknown_channel_is_refused_by_name():
    with pytest.raises(PluginNotFound, match="no plugin 'pigeon'"):
        load_channel("pigeon", {})


def test_channels_declare_the_kinds_of_address_they_deliver_to():
    assert LogChannel.kinds == {"email", "sms"}
    assert SmtpChannel.kinds == {"email"}
    assert SmsHttpChannel.kinds == {"sms"}
    assert WebhookChannel.kinds == {"email", "sms"}


def test_the_log_channel_writes_one_line_with_the_text_and_the_recipient_masked(caplog):
    with caplog.at_level(logging.INFO, logger="pingxuan.notification"):
        LogChannel({}).send(OTP)
        LogChannel({}).send(RECEIPT)
    first, second = [record.getMessage() for record in caplog.records]
    assert "138****5678" in first and "13812345678" not in first
    assert "381274" in first and "验证码" in first
    assert re.search(r"\d{6}", first).group() == "381274"     # the first six digits are the code
    assert first.endswith("[msg-1]")
    assert "l***@example.cn" in second and "liming@" not in second
    assert "\n" not in second and "县财政局机关党委" in second


@pytest.mark.parametrize("settings, message", [
    ({}, "CHANNELS.sms_http.url is required"),
    ({"url": "ftp://gateway/sms"}, "must be an http(s) URL"),
    ({"url": "http://gw/sms", "style": "huawei"}, "style must be aliyun or tencent"),
    ({"url": "http://gw/sms", "access_key_id": "id"}, "go together"),
    ({"url": "http://gw/sms", "timeout_seconds": 0}, "timeout_seconds must be positive"),
    ({"url": "http://gw/sms", "templates": ["otp_code"]}, "templates must map"),
])
def test_sms_http_settings_that_cannot_work_are_refused(settings, message):
    with pytest.raises(ChannelConfigError, match=re.escape(message)):
        SmsHttpChannel(settings)


def test_sms_http_sends_a_template_id_and_parameters_like_aliyun():
    channel = SmsHttpChannel({"url": "http://gw/sms", "sign_name": "县委宣传部",
                              "templates": {"otp_code": "SMS_123456"}})
    body = json.loads(channel.request_body(OTP))
    assert body == {"PhoneNumbers": "13812345678", "SignName": "县委宣传部",
                    "TemplateCode": "SMS_123456", "OutId": "msg-1",
                    "TemplateParam": json.dumps({"campaign_name": "测试活动", "code": "381274",
                                                 "valid_minutes": "5"}, ensure_ascii=False)}
    assert "验证码" not in json.dumps(body, ensure_ascii=False)   # never free text


def test_sms_http_sends_a_parameter_list_like_tencent_in_the_configured_order():
    channel = SmsHttpChannel({"url": "http://gw/sms", "style": "tencent", "sdk_app_id": "1400",
                              "templates": {"otp_code": {"id": 1234567,
                                                         "params": ["code", "valid_minutes"]}}})
    body = json.loads(channel.request_body(OTP))
    assert body["PhoneNumberSet"] == ["+8613812345678"]
    assert body["TemplateId"] == "1234567"
    assert body["TemplateParamSet"] == ["381274", "5"]
    assert body["SmsSdkAppId"] == "1400"


def test_sms_http_signs_the_body_with_the_access_key():
    channel = SmsHttpChannel({"url": "http://gw/sms", "access_key_id": "key-1",
                              "access_key_secret": "s3cret"})
    body = channel.request_body(OTP)
    headers = channel.headers(body)
    assert headers["X-Pingxuan-Key-Id"] == "key-1"
    expected = hmac.new(b"s3cret", headers["X-Pingxuan-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Pingxuan-Signature"] == expected
    assert "s3cret" not in json.dumps(headers)
    assert "X-Pingxuan-Signature" not in SmsHttpChannel({"url": "http://gw/sms"}).headers(body)


def test_the_webhook_needs_a_secret_and_signs_its_body():
    with pytest.raises(ChannelConfigError, match="CHANNELS.webhook.secret is required"):
        WebhookChannel({"url": "http://hook/x"})
    channel = WebhookChannel({"url": "http://hook/x", "secret": "k"})
    body = json.loads(channel.request_body(RECEIPT))
    assert body["message_id"] == "msg-2" and body["text"].startswith("李明同志")
    assert signature("k", "1", b"{}") == hmac.new(b"k", b"1.{}", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("settings, message", [
    ({"sender": "a@b.cn"}, "CHANNELS.smtp.host is required"),
    ({"host": "mail"}, "CHANNELS.smtp.sender is required"),
    ({"host": "mail", "sender": "a@b.cn", "port": "smtp"}, "port must be a number"),
    ({"host": "mail", "sender": "a@b.cn", "starttls": True, "ssl": True}, "exclude each other"),
    ({"host": "mail", "sender": "a@b.cn", "starttls": "maybe"}, "starttls must be true or false"),
])
def test_smtp_settings_that_cannot_work_are_refused(settings, message):
    with pytest.raises(ChannelConfigError, match=re.escape(message)):
        SmtpChannel(settings)


def test_smtp_builds_a_utf8_mail_with_a_stable_message_id():
    channel = SmtpChannel({"host": "mail", "sender": "pingxuan@example.cn", "starttls": "false"})
    mail = channel.email(RECEIPT)
    assert mail["To"] == "liming@example.cn"
    assert mail["Subject"] == RECEIPT.subject
    assert mail["Message-ID"] == "<msg-2@pingxuan>"
    assert "推荐材料已收到" in mail.get_content()
    assert channel.starttls is False and channel.port == 25


# --- the courier: channels loaded at start, a failing channel never crashes a worker ---------

def bound_courier(config):
    from unittest.mock import Mock

    from services.notification.courier import Courier

    container = Mock(config=dict({"SERVICE_KEY": SERVICE_KEY}, **config))   # bind keeps a weakref
    courier = Courier().bind(container, "courier")
    courier.setup()
    return courier.get_dependency(Mock())


def test_the_courier_loads_only_the_channels_the_routes_use():
    post = bound_courier({})
    assert set(post.channels) == {"log"}
    post = bound_courier({"DIRECT_CHANNELS": {"sms": "sms_http", "email": "log"},
                          "CHANNELS": {"sms_http": {"url": "http://127.0.0.1:1/sms"}}})
    assert set(post.channels) == {"log", "sms_http"}


@pytest.mark.parametrize("config, message", [
    ({"DIRECT_CHANNELS": {"sms": "pigeon", "email": "log"}}, "no plugin 'pigeon'"),
    ({"DIRECT_CHANNELS": {"sms": "sms_http", "email": "log"}}, "CHANNELS.sms_http.url is required"),
    ({"DIRECT_CHANNELS": {"sms": "smtp", "email": "log"},
      "CHANNELS": {"smtp": {"host": "h", "sender": "a@b.cn"}}},
     "DIRECT_CHANNELS.sms: channel 'smtp' cannot deliver to an sms address"),
])
def test_a_configuration_that_cannot_work_stops_the_service_at_start(config, message):
    from services.notification.domain import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        bound_courier(config)


def test_a_package_installed_without_its_templates_refuses_to_start(tmp_path):
    from unittest.mock import Mock

    from services.notification.courier import Courier
    from services.notification.domain import ConfigError
    from services.notification.render import Renderer

    container = Mock(config={"SERVICE_KEY": SERVICE_KEY})
    courier = Courier(Renderer(tmp_path)).bind(container, "courier")
    with pytest.raises(ConfigError, match="installed without templates/"):
        courier.setup()


class Exploding:
    kinds = frozenset({"sms"})

    def send(self, message):
        raise KeyError("surprise")


def stored(channel="log"):
    return {"_id": "msg-1", "channel": channel, "kind": "sms", "recipient": "13812345678",
            "template": "otp_code", "subject": "s", "body": "b", "params": {}}


def test_delivery_answers_an_outcome_whatever_the_channel_does():
    from services.notification.courier import Post

    post = bound_courier({})
    assert post.deliver(stored()).sent
    post = Post(post.settings, post.renderer, {"log": Exploding()})
    outcome = post.deliver(stored())
    assert not outcome.sent and not outcome.permanent
    assert outcome.error == "log: KeyError: 'surprise'"
    unknown = post.deliver(stored("fax"))
    assert unknown.permanent and "channel 'fax' is not configured" in unknown.error


def test_the_retry_timer_takes_its_interval_from_the_config():
    from unittest.mock import Mock

    from services.notification.courier import ConfiguredTimer

    configured, empty = Mock(config={"SWEEP_SECONDS": "2.5"}), Mock(config={})
    timer = ConfiguredTimer("SWEEP_SECONDS", 10).bind(configured, "retry_due")
    timer.setup()
    assert timer.interval == 2.5
    default = ConfiguredTimer("SWEEP_SECONDS", 10).bind(empty, "retry_due")
    default.setup()
    assert default.interval == 10
