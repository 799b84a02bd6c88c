"""The ``webhook`` channel: the message as JSON, POSTed to a URL with an HMAC signature.

For a county's own messaging bridge (WeChat Work, DingTalk…). The receiver
checks ``X-Pingxuan-Signature: sha256=<hex>``, the HMAC-SHA256 with the shared
``secret`` of ``<X-Pingxuan-Timestamp>.<body>``, and may de-duplicate on
``message_id`` (a message is sent at least once).

Settings (``CHANNELS.webhook``): ``url``, ``secret`` (required: the body is
always signed), ``timeout_seconds`` (5).
"""
import json
import time

from services.notification.channels import Channel
from services.notification.channels.http import check_url, post, signature


class WebhookChannel(Channel):
    name = "webhook"
    kinds = frozenset({"email", "sms"})

    def __init__(self, settings=None):
        super().__init__(settings)
        self.url = check_url(self.name, self.setting("url", required=True))
        self.secret = str(self.setting("secret", required=True))
        self.timeout = self.number("timeout_seconds", 5)

    def request_body(self, message):
        return json.dumps({
            "message_id": message.message_id, "kind": message.kind,
            "recipient": message.recipient, "template": message.template,
            "subject": message.subject, "text": message.body, "params": message.params,
        }, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def send(self, message):
        body = self.request_body(message)
        timestamp = str(int(time.time()))
        post(self.url, body, {
            "Content-Type": "application/json; charset=utf-8",
            "X-Pingxuan-Message-Id": message.message_id,
            "X-Pingxuan-Timestamp": timestamp,
            "X-Pingxuan-Signature": "sha256=" + signature(self.secret, timestamp, body),
        }, self.timeout)
        return None
