"""The scoring service's own dependencies: judges' personal links and judge notices.

A personal link is ``<page>/judge#<link token>``. The token names the panel
and the judge and carries the judge's current link nonce, signed (shared/signing.py,
HMAC-SHA256) under a key derived from the scoring service's own ``SERVICE_KEY``. It sits in the URL's
fragment, which browsers never send to a server, so no access log, proxy or
``Referer`` header ever sees it; the page sends it in a request header. A link
is valid while the judge is on the panel with that nonce and the panel is open.
"""
import logging

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared import signing
from shared.auth import own_service_key
from shared.errors import PingxuanError, RateLimited, Unauthorized, ValidationError, typed
from shared.service_rpc import ServiceCalls

log = logging.getLogger(__name__)

NOTIFY_BY_SERVICE, NOTIFY_BY_LOG = cfg.JUDGE_NOTIFIERS
#: What a judge's link is, for the one signer (shared/signing.py).
LINK_PURPOSE = "px-judge-link"
#: The page's request header that carries the link token.
LINK_HEADER = "X-Judge-Link"


def link_key(service_key):
    """A key for links only, derived from the scoring service's own key (no other service has it)."""
    return signing.derive_key(service_key, LINK_PURPOSE)


def sign_link(key, campaign_id, category, judge_id, nonce):
    return signing.sign_mac(key, {"c": campaign_id, "g": category, "j": judge_id, "n": nonce},
                            LINK_PURPOSE)


def read_link(key, token):
    """``{campaign_id, category, judge_id, nonce}`` of a genuine link token, else ``Unauthorized``."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        raise Unauthorized("no personal link given")
    try:
        data = signing.verify_mac(key, token.strip(), LINK_PURPOSE)
    except signing.BadSignature as exc:
        if "signature" in str(exc):
            raise Unauthorized("the personal link's signature is not valid")
        if "cannot be read" in str(exc):
            raise Unauthorized("the personal link cannot be read")
        raise Unauthorized("this is not a judge's personal link")
    try:
        return {"campaign_id": data["c"], "category": data["g"], "judge_id": data["j"],
                "nonce": data["n"]}
    except KeyError:
        raise Unauthorized("the personal link cannot be read")


class LinkSigner:
    """What a worker sees: ``url(panel, judge)`` and ``read(token)``."""

    def __init__(self, key, page_url):
        self.key = key
        self.page_url = page_url.rstrip("/")

    def token(self, panel, judge):
        return sign_link(self.key, panel["campaign_id"], panel["category"], judge["judge_id"],
                         judge["nonce"])

    def url(self, panel, judge):
        return f"{self.page_url}/judge#{self.token(panel, judge)}"

    def urls(self, panel):
        return {judge["judge_id"]: self.url(panel, judge) for judge in panel.get("judges", [])}

    def read(self, token):
        return read_link(self.key, token)


class JudgeLinks(DependencyProvider):
    """Signs and reads judges' personal links with a key derived from the service's own key."""

    def setup(self):
        config = self.container.config
        page_url = cfg.read(config, cfg.JUDGE_PAGE_URL) or \
            f"http://{cfg.read(config, cfg.WEB_SERVER_ADDRESS, self.container.service_name)}"
        self.signer = LinkSigner(link_key(own_service_key(config, self.container.service_name)), page_url)

    def get_dependency(self, worker_ctx):
        return self.signer


class NoticeFailed(Exception):
    """A message could not be handed over; ``retry`` says whether trying later may help."""

    def __init__(self, detail, retry):
        super().__init__(detail)
        self.detail = detail
        self.retry = retry


class Notifier:
    """``send(kind, recipient, template, params, key)`` -> status, or ``NoticeFailed``."""

    def __init__(self, mode, call, reminder_hours):
        self.mode = mode
        self.call = call
        self.reminder_hours = reminder_hours

    def send(self, kind, recipient, template, params, key):
        if self.mode != NOTIFY_BY_SERVICE:
            # The link is never logged: it is the judge's credential.
            log.info("judge notice %s not sent (JUDGE_NOTIFIER=%s)", template, self.mode)
            return "skipped"
        try:
            reply = self.call("notification", "send_direct", kind, recipient, template, params, key)
        except Exception as exc:  # a refusal, or the notification service is not there
            error = typed(exc) if hasattr(exc, "exc_type") else exc
            retry = not isinstance(error, PingxuanError) or isinstance(error, RateLimited)
            if isinstance(error, ValidationError):
                retry = False
            raise NoticeFailed(f"{type(error).__name__}: {error}"[:300], retry)
        return (reply or {}).get("status", "queued")


class JudgeNotifier(DependencyProvider):
    """Sends judge notices through the notification service, or only logs that it did not."""

    calls = ServiceCalls()

    def setup(self):
        config = self.container.config
        self.mode = cfg.read(config, cfg.JUDGE_NOTIFIER)
        self.reminder_hours = cfg.read(config, cfg.JUDGE_REMINDER_HOURS)

    def get_dependency(self, worker_ctx):
        return Notifier(self.mode, self.calls.call, self.reminder_hours)
