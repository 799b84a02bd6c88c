"""The ``sms_http`` channel: SMS through an HTTP gateway, by pre-approved template.

In China an SMS goes out only through a template approved by the provider: the
channel sends the template's id and its parameters, never free text. The body
follows Aliyun ``SendSms`` (``TemplateCode`` + ``TemplateParam``, the default)
or Tencent ``SendSms`` (``TemplateId`` + ``TemplateParamSet``), POSTed as JSON
to ``url``, the county's gateway or relay. Credentials sign each request:
``X-Pingxuan-Key-Id``, ``X-Pingxuan-Timestamp`` and ``X-Pingxuan-Signature``
(HMAC-SHA256 of ``timestamp.body`` with ``access_key_secret``).

Settings (``CHANNELS.sms_http``): ``url``, ``access_key_id``,
``access_key_secret``, ``sign_name``, ``style`` (aliyun | tencent),
``sdk_app_id`` (tencent), ``timeout_seconds`` (5), and ``templates``: our
template name -> the provider's template id, or ``{id, params: [names]}`` to
send only those variables, in that order (Tencent's parameters are a list).
"""
import json
import time

from services.notification.channels import Channel, ChannelConfigError, DeliveryError
from services.notification.channels.http import check_url, post, signature

STYLES = ("aliyun", "tencent")
OK_CODES = ("OK", "Ok")


class SmsHttpChannel(Channel):
    name = "sms_http"
    kinds = frozenset({"sms"})

    def __init__(self, settings=None):
        super().__init__(settings)
        self.url = check_url(self.name, self.setting("url", required=True))
        self.key_id = self.setting("access_key_id")
        self.key_secret = self.setting("access_key_secret")
        if bool(self.key_id) != bool(self.key_secret):
            raise ChannelConfigError(f"CHANNELS.{self.name}: access_key_id and "
                                     f"access_key_secret go together")
        self.sign_name = self.setting("sign_name", "")
        self.style = self.setting("style", "aliyun")
        if self.style not in STYLES:
            raise ChannelConfigError(f"CHANNELS.{self.name}.style must be aliyun or tencent")
        self.sdk_app_id = self.setting("sdk_app_id", "")
        self.timeout = self.number("timeout_seconds", 5)
        self.templates = self.setting("templates", {}) or {}
        if not isinstance(self.templates, dict):
            raise ChannelConfigError(f"CHANNELS.{self.name}.templates must map a template "
                                     f"name to a provider template id")

    def template(self, name):
        """The provider's template id and the parameter names to send (``None``: all)."""
        entry = self.templates.get(name, name)
        if isinstance(entry, dict):
            return str(entry.get("id") or name), entry.get("params")
        return str(entry), None

    def request_body(self, message):
        template_id, names = self.template(message.template)
        names = names if names is not None else sorted(message.params)
        params = {key: str(message.params.get(key, "")) for key in names}
        if self.style == "tencent":
            body = {"PhoneNumberSet": [f"+86{message.recipient}"], "SmsSdkAppId": self.sdk_app_id,
                    "SignName": self.sign_name, "TemplateId": template_id,
                    "TemplateParamSet": [params[key] for key in names],
                    "SessionContext": message.message_id}
        else:
            body = {"PhoneNumbers": message.recipient, "SignName": self.sign_name,
                    "TemplateCode": template_id,
                    "TemplateParam": json.dumps(params, ensure_ascii=False),
                    "OutId": message.message_id}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def headers(self, body):
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.key_id:
            timestamp = str(int(time.time()))
            signed = signature(str(self.key_secret), timestamp, body)
            headers.update({"X-Pingxuan-Key-Id": str(self.key_id),
                            "X-Pingxuan-Timestamp": timestamp, "X-Pingxuan-Signature": signed})
        return headers

    def send(self, message):
        body = self.request_body(message)
        response = post(self.url, body, self.headers(body), self.timeout)
        return self.accepted(response)

    def accepted(self, response):
        """A 2xx answer can still refuse the message (Aliyun's ``Code``, Tencent's status)."""
        try:
            answer = response.json()
        except ValueError:
            return None
        if not isinstance(answer, dict):
            return None
        if self.style == "tencent":
            inner = answer.get("Response", answer)
            error = inner.get("Error")
            statuses = inner.get("SendStatusSet") or [{}]
            code = (error or {}).get("Code") or statuses[0].get("Code", "Ok")
            if error or code not in OK_CODES:
                raise DeliveryError(f"gateway refused the message: {code} "
                                    f"{(error or statuses[0]).get('Message', '')}".strip(),
                                    permanent=_permanent(code))
            return statuses[0].get("SerialNo")
        code = answer.get("Code", "OK")
        if code not in OK_CODES:
            raise DeliveryError(f"gateway refused the message: {code} "
                                f"{answer.get('Message', '')}".strip(), permanent=_permanent(code))
        return answer.get("BizId")


def _permanent(code):
    """Provider codes that say the number, template or signature is wrong: no retry helps."""
    text = str(code).upper()
    return any(word in text for word in ("ILLEGAL", "INVALID", "NOT_EXIST", "UNSUPPORT"))
