"""What the HTTP channels share: a signed POST, and which answers are worth a retry."""
import hashlib
import hmac
from urllib.parse import urlsplit

import requests

from services.notification.channels import ChannelConfigError, DeliveryError

#: Answers a retry may cure: the gateway is down, overloaded or slow.
RETRYABLE_STATUSES = frozenset({408, 425, 429})
SNIPPET_CHARS = 200


def signature(secret, timestamp, body):
    """HMAC-SHA256 over ``timestamp`` + ``.`` + the body bytes, hex."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                    hashlib.sha256).hexdigest()


def check_url(channel, url):
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelConfigError(f"CHANNELS.{channel}.url must be an http(s) URL")
    return str(url)


def where(url):
    """The gateway named in errors: scheme, host, port and path, never credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def post(url, body, headers, timeout):
    """POST ``body``; the response when 2xx, else :class:`DeliveryError`."""
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout,
                                 allow_redirects=False)
    except requests.Timeout:
        raise DeliveryError(f"timeout: no answer from {where(url)} within {timeout:g} s")
    except requests.RequestException as exc:
        raise DeliveryError(f"cannot reach {where(url)}: {type(exc).__name__}")
    status = response.status_code
    if 200 <= status < 300:
        return response
    snippet = response.text[:SNIPPET_CHARS].strip()
    reason = f"{where(url)} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    permanent = 400 <= status < 500 and status not in RETRYABLE_STATUSES
    raise DeliveryError(reason, permanent=permanent)
