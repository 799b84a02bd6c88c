"""Who is told what, through which channel, and what happens when a channel fails (no I/O).

Each rule of the notification service is one function here: the routing read
from configuration (which event goes to whom through which channel), the
identity of a message (so a redelivered event sends nothing twice), the retry
schedule and the dead letter, the recipient's address, the per-recipient limit
of direct messages, and the template variables taken from an event.
"""
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from shared import config as cfg
from shared import events
from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH
from shared.errors import Conflict, InvalidState, RateLimited
from shared.timeutil import as_utc, iso, parse_iso
from shared.validation import flatten_messages, mainland_mobile
from services.notification.schemas import DirectChannelsConfig, RouteConfig, SchemaError

# --- message states (the outbox) -------------------------------------------------------------

QUEUED = "queued"    # waiting for its first attempt, or resent by an admin
SENT = "sent"
FAILED = "failed"    # the last attempt failed; another is scheduled
PARKED = "parked"    # dead letter: no attempt is scheduled; an admin may resend it
STATUSES = (QUEUED, SENT, FAILED, PARKED)
#: States a sweep picks up when their ``next_attempt_at`` has come.
PENDING = (QUEUED, FAILED)

# --- recipients --------------------------------------------------------------------------------

EMAIL = "email"
SMS = "sms"
KINDS = (EMAIL, SMS)

#: Who a route sends to: the nominating unit's contact, or the department's admin recipients.
TO_CONTACT = "contact"
TO_ADMINS = "admins"
TARGETS = (TO_CONTACT, TO_ADMINS)

#: Mainland mobile numbers: 11 digits starting 13–19, optionally written with +86.
#: A plain address: no spaces, one @, a dot in the domain; 254 characters at most (RFC 5321).
EMAIL_ADDRESS = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
EMAIL_MAX_LENGTH = 254

# --- the events this service reads, and the templates -----------------------------------------

ROUTED_EVENTS = (events.NOMINATION_SUBMITTED, events.NOMINATION_REVIEWED,
                 events.CANDIDATE_DISQUALIFIED)
#: Templates that carry a secret (the one-time code, a judge's personal link): the text and
#: the plain address are erased once sent (个人信息保护法: a voter's number is kept only while
#: a code is pending; a link is a judge's credential).
ERASE_AFTER_SEND = frozenset({"otp_code", "judge_assignment", "judge_reminder",
                              "objection_code", "objection_verdict"})
#: Templates worth minutes, not hours: a failed one-time code is parked at once (the voter
#: asks for a new one) rather than retried after the code has expired.
NO_RETRY = frozenset({"otp_code", "objection_code"})
#: Contact fields whose amendment makes the service refresh the unit's contact.
CONTACT_FIELDS = ("contact_person", "mobile", "email")
#: A review waiting this long for its submission's contact asks the nomination service for it
#: (the submission came before this service's store, e.g. an embedded store after a restart).
CONTACT_WAIT = timedelta(seconds=60)
#: An entry of ``history`` per attempt is kept, the latest ``HISTORY_LIMIT``.
HISTORY_LIMIT = 20

# --- config keys (``config.yml``; filled from the environment by nameko) ---------------------
# The scalar settings are in shared/config.py's table; these are structured documents
# (routes, channels, lists) whose own validation, and whose empty values, are this service's
# (an empty RETRY_DELAYS_SECONDS means no retry; an empty ADMIN_RECIPIENTS, nobody).

ROUTES = "ROUTES"
DIRECT_CHANNELS = "DIRECT_CHANNELS"
CHANNELS = "CHANNELS"
ADMIN_RECIPIENTS = "ADMIN_RECIPIENTS"
RETRY_DELAYS_SECONDS = "RETRY_DELAYS_SECONDS"
DIRECT_LIMIT = cfg.DIRECT_LIMIT
DIRECT_WINDOW_SECONDS = cfg.DIRECT_WINDOW_SECONDS
SEND_LEASE_SECONDS = cfg.SEND_LEASE_SECONDS
SWEEP_SECONDS = cfg.SWEEP_SECONDS
SWEEP_BATCH = cfg.SWEEP_BATCH

LOG_CHANNEL = "log"
#: The embedded default: every message of every event to the log channel.
DEFAULT_ROUTES = {
    events.NOMINATION_SUBMITTED: [
        {"template": "nomination_receipt", "to": TO_CONTACT, "kind": EMAIL, "channel": LOG_CHANNEL},
        {"template": "nomination_receipt", "to": TO_CONTACT, "kind": SMS, "channel": LOG_CHANNEL},
    ],
    events.NOMINATION_REVIEWED: [
        {"template": "review_result", "to": TO_CONTACT, "kind": EMAIL, "channel": LOG_CHANNEL},
        {"template": "review_result", "to": TO_CONTACT, "kind": SMS, "channel": LOG_CHANNEL},
    ],
    events.CANDIDATE_DISQUALIFIED: [
        {"template": "disqualification_notice", "to": TO_ADMINS, "kind": EMAIL,
         "channel": LOG_CHANNEL},
        {"template": "disqualification_notice", "to": TO_ADMINS, "kind": SMS,
         "channel": LOG_CHANNEL},
    ],
}
DEFAULT_DIRECT_CHANNELS = {EMAIL: LOG_CHANNEL, SMS: LOG_CHANNEL}
DEFAULT_ADMIN_RECIPIENTS = "department@pingxuan.invalid"
#: 30 s, 2 min, 10 min, 30 min, 1 h, 3 h: seven attempts over about 4 h 40 min, then parked.
DEFAULT_RETRY_DELAYS = (30, 120, 600, 1800, 3600, 10800)
DEFAULT_SWEEP_SECONDS = cfg.read({}, SWEEP_SECONDS)


class ConfigError(ValueError):
    """The service's configuration cannot work (refused at start-up, naming the key)."""


# --- configuration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """One message an event causes: ``template`` to ``to``'s ``kind`` address via ``channel``."""

    event_type: str
    template: str
    to: str
    kind: str
    channel: str


@dataclass(frozen=True)
class Settings:
    routes: tuple
    direct_channels: dict
    admin_recipients: tuple          # ((kind, address), ...)
    retry_delays: tuple              # seconds before each retry
    direct_limit: int
    direct_window_seconds: int
    send_lease_seconds: int
    sweep_batch: int
    channel_settings: dict           # channel name -> its settings
    hash_key: bytes                  # keys recipient hashes and fingerprints

    @property
    def max_attempts(self):
        return len(self.retry_delays) + 1

    def channels_used(self):
        """Every channel name a route or a direct message may use, sorted."""
        return sorted({route.channel for route in self.routes} | set(self.direct_channels.values()))

    def routes_for(self, event_type):
        return [route for route in self.routes if route.event_type == event_type]


def parse_seconds_list(value, key):
    """``"30,120,600"`` (or a YAML list, or one number) -> ``(30.0, 120.0, 600.0)``."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        delays = tuple(float(str(item).strip()) for item in items if str(item).strip() != "")
    except ValueError:
        raise ConfigError(f"{key}: must be seconds separated by commas, like 30,120,600")
    if any(delay < 0 for delay in delays):
        raise ConfigError(f"{key}: a delay cannot be negative")
    return delays


def parse_admin_recipients(value):
    """``"a@x.cn, 13812345678"`` (or a list) -> ``(("email", "a@x.cn"), ("sms", "138…"))``."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    recipients = []
    for item in (str(item).strip() for item in items):
        if not item:
            continue
        kind = recipient_kind(item)
        if kind is None:
            raise ConfigError(f"{ADMIN_RECIPIENTS}: '{item}' is neither an e-mail address nor "
                              f"a mainland mobile number")
        address = normalise_recipient(kind, item)
        if (kind, address) not in recipients:
            recipients.append((kind, address))
    return tuple(recipients)


def _setting(config, key):
    try:
        return cfg.read(config, key)
    except cfg.SettingError as exc:
        raise ConfigError(str(exc))


def settings_from_config(config, known_templates, service_key=""):
    """The service's settings from its config; anything missing takes the embedded default.

    ``known_templates`` are the template names that exist; a route naming another is refused.
    """
    routes_config = config.get(ROUTES)
    routes = load_routes(DEFAULT_ROUTES if routes_config is None else routes_config)
    for route in routes:
        if route.template not in known_templates:
            raise ConfigError(f"{ROUTES}.{route.event_type}: no template '{route.template}' "
                              f"(known: {', '.join(sorted(known_templates))})")
    check_one_template_per_key(routes)
    direct = config.get(DIRECT_CHANNELS)
    admins = config.get(ADMIN_RECIPIENTS)
    channel_settings = config.get(CHANNELS) or {}
    if not isinstance(channel_settings, dict):
        raise ConfigError(f"{CHANNELS}: must map a channel name to its settings")
    return Settings(
        routes=tuple(routes),
        direct_channels=load_direct_channels(DEFAULT_DIRECT_CHANNELS if direct is None else direct),
        admin_recipients=parse_admin_recipients(DEFAULT_ADMIN_RECIPIENTS if admins is None
                                                else admins),
        retry_delays=(DEFAULT_RETRY_DELAYS if config.get(RETRY_DELAYS_SECONDS) is None
                      else parse_seconds_list(config[RETRY_DELAYS_SECONDS], RETRY_DELAYS_SECONDS)),
        direct_limit=_setting(config, DIRECT_LIMIT),
        direct_window_seconds=_setting(config, DIRECT_WINDOW_SECONDS),
        send_lease_seconds=_setting(config, SEND_LEASE_SECONDS),
        sweep_batch=_setting(config, SWEEP_BATCH),
        channel_settings={str(name): dict(value or {}) for name, value in channel_settings.items()},
        # The service's own key (no other service has it) keys the recipient hashes.
        hash_key=("pingxuan-notification|" + service_key).encode("utf-8"),
    )


def _config_error(key, exc):
    problems = "; ".join(f"{key}.{field}: {' '.join(messages)}"
                         for field, messages in sorted(flatten_messages(exc.messages).items()))
    return ConfigError(problems)


def load_routes(routes_config):
    """``{event_type: [route, ...]}`` -> ``[Route, ...]``; an unknown event or key is refused."""
    if not isinstance(routes_config, dict):
        raise ConfigError(f"{ROUTES}: must map an event type to a list of routes")
    routes = []
    for event_type, entries in routes_config.items():
        if event_type not in ROUTED_EVENTS:
            raise ConfigError(f"{ROUTES}.{event_type}: not an event this service reads "
                              f"({', '.join(ROUTED_EVENTS)})")
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise ConfigError(f"{ROUTES}.{event_type}: must be a list of routes")
        for n, entry in enumerate(entries):
            try:
                data = RouteConfig().load(entry if isinstance(entry, dict) else {})
            except SchemaError as exc:
                raise _config_error(f"{ROUTES}.{event_type}.{n}", exc)
            routes.append(Route(event_type=event_type, **data))
    return routes


def load_direct_channels(direct_config):
    """``{sms: channel, email: channel}``: the channel of ``send_direct`` for each kind."""
    try:
        return DirectChannelsConfig().load(direct_config if isinstance(direct_config, dict) else {})
    except SchemaError as exc:
        raise _config_error(DIRECT_CHANNELS, exc)


def check_one_template_per_key(routes):
    """A message is keyed by (event, recipient, channel): one event may not send two
    templates to the same recipient through the same channel."""
    seen = {}
    for route in routes:
        key = (route.event_type, route.to, route.kind, route.channel)
        if key in seen and seen[key] != route.template:
            raise ConfigError(
                f"{ROUTES}.{route.event_type}: templates '{seen[key]}' and '{route.template}' "
                f"go to the same {route.to} {route.kind} through '{route.channel}'")
        seen[key] = route.template


def check_channels_fit(settings, channel_kinds):
    """Every route and direct kind uses a channel that can carry that kind of address.

    ``channel_kinds`` maps a loaded channel name to the kinds it delivers to.
    """
    uses = [(f"{ROUTES}.{route.event_type}", route.channel, route.kind)
            for route in settings.routes]
    uses += [(f"{DIRECT_CHANNELS}.{kind}", channel, kind)
             for kind, channel in settings.direct_channels.items()]
    for where, channel, kind in uses:
        if kind not in channel_kinds[channel]:
            raise ConfigError(f"{where}: channel '{channel}' cannot deliver to an {kind} address "
                              f"(it delivers {', '.join(sorted(channel_kinds[channel]))})")


# --- recipients --------------------------------------------------------------------------------

def recipient_kind(address):
    """``"sms"`` for a mainland mobile, ``"email"`` for an e-mail address, else ``None``."""
    if not isinstance(address, str):
        return None
    text = address.strip()
    if mainland_mobile(text):
        return SMS
    if len(text) <= EMAIL_MAX_LENGTH and EMAIL_ADDRESS.match(text):
        return EMAIL
    return None


class BadRecipient(ValueError):
    """An address that is not of the kind its channel needs."""


def normalise_recipient(kind, address):
    """The canonical address: 11 digits for a mobile, a lower-case domain for an e-mail.

    Raises :class:`BadRecipient` with a plain-words reason.
    """
    if not isinstance(address, str) or not address.strip():
        raise BadRecipient(f"no {'mobile number' if kind == SMS else 'e-mail address'} given")
    text = address.strip()
    if kind == SMS:
        digits = mainland_mobile(text)
        if digits is None:
            raise BadRecipient(f"'{mask(text)}' is not a mainland China mobile number "
                               f"(11 digits starting 13–19)")
        return digits
    if kind == EMAIL:
        if len(text) > EMAIL_MAX_LENGTH or not EMAIL_ADDRESS.match(text):
            raise BadRecipient(f"'{mask(text)}' is not an e-mail address")
        local, domain = text.rsplit("@", 1)
        return f"{local}@{domain.lower()}"
    raise BadRecipient(f"unknown kind of address '{kind}' (sms or email)")


def mask(address):
    """What logs and admins see: ``138****5678``, ``l***@example.cn``."""
    text = str(address or "")
    digits = mainland_mobile(text)
    if digits:
        return f"{digits[:3]}****{digits[-4:]}"
    if "@" in text:
        local, domain = text.rsplit("@", 1)
        return f"{local[:1]}***@{domain}"
    if len(text) <= 4:
        return "*" * len(text)
    return f"{text[:2]}***{text[-2:]}"


def recipient_hash(hash_key, address):
    """A keyed hash of an address: rate limits and fingerprints without the plain number."""
    return hmac.new(hash_key, address.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


# --- routing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    """One message to create: ``address`` is normalised, or ``problem`` says why it cannot be."""

    route: Route
    address: str
    problem: str = None

    @property
    def key_address(self):
        """The recipient part of the message key: a bad address is qualified by its kind, so
        an empty e-mail and an empty mobile of one event are two records, not one."""
        return self.address if self.problem is None else f"{self.route.kind}:{self.address}"


def deliveries(routes, contact, admin_recipients):
    """The messages an event's routes ask for: one per route and address.

    A contact address that is missing or malformed is still a delivery, with a
    ``problem``, so the outbox records it rather than dropping it silently.
    """
    out = []
    for route in routes:
        if route.to == TO_CONTACT:
            field = "mobile" if route.kind == SMS else "email"
            raw = (contact or {}).get(field)
            try:
                out.append(Delivery(route, normalise_recipient(route.kind, raw)))
            except BadRecipient as exc:
                out.append(Delivery(route, str(raw or ""), f"contact {field}: {exc}"))
        else:
            for kind, address in admin_recipients:
                if kind == route.kind:
                    out.append(Delivery(route, address))
    return out


# --- message identity --------------------------------------------------------------------------

def message_key(event_id, recipient, channel):
    """The message's id, the same every time the same event reaches the same recipient
    through the same channel: a redelivered event finds its messages already there."""
    digest = hashlib.sha256(f"{event_id}\x1f{recipient}\x1f{channel}".encode("utf-8")).hexdigest()
    return f"msg-{digest[:32]}"


def direct_reference(caller, idempotency_key):
    """What stands for the event of a direct message: the caller and its idempotency key."""
    return f"direct:{caller}:{idempotency_key}"


def direct_message_key(caller, idempotency_key):
    """A direct message's id depends on its idempotency key alone (per caller): the same key
    never sends twice, whatever the recipient."""
    return message_key(direct_reference(caller, idempotency_key), "", "")


def fingerprint(hash_key, kind, recipient, template, params):
    """A keyed digest of a direct message's content, to tell a resend from a different message."""
    canonical = json.dumps([kind, recipient, template, params], ensure_ascii=False,
                           sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(hash_key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def resend_of(existing, submitted_fingerprint):
    """``send_direct`` is idempotent on its key: same content -> the first answer, else Conflict."""
    if existing.get("fingerprint") != submitted_fingerprint:
        raise Conflict(f"idempotency_key was already used for a different message "
                       f"({existing['_id']}); use a new key")
    return existing


# --- retries and the dead letter ---------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: sent, or an error that may be worth retrying."""

    sent: bool
    error: str = None
    permanent: bool = False
    reference: str = None     # the provider's id for the message, when it gives one

    @classmethod
    def ok(cls, reference=None):
        return cls(True, reference=reference)

    @classmethod
    def failure(cls, error, permanent=False):
        return cls(False, error=error, permanent=permanent)


@dataclass(frozen=True)
class Next:
    """The state after an attempt: ``status`` and when to try again (``None``: never)."""

    status: str
    next_attempt_at: object = None


def after_attempt(attempts, outcome, now, retry_delays, template=None):
    """Backoff: attempt ``n`` (1-based) that failed is retried after ``retry_delays[n-1]``;
    after the last delay, on an error no retry can fix, or for a one-time code, the message
    is parked."""
    if outcome.sent:
        return Next(SENT)
    if outcome.permanent or attempts > len(retry_delays) or template in NO_RETRY:
        return Next(PARKED)
    return Next(FAILED, now + timedelta(seconds=retry_delays[attempts - 1]))


def retry_schedule(created_at, retry_delays):
    """When each attempt of a message that always fails happens (immediate first attempt)."""
    moments = [created_at]
    for delay in retry_delays:
        moments.append(moments[-1] + timedelta(seconds=delay))
    return moments


def must_erase(template, status):
    """A secret-bearing message loses its text and plain address once sent or given up."""
    return template in ERASE_AFTER_SEND and status in (SENT, PARKED)


def check_resendable(message):
    """Only a parked message (a dead letter) that still has its text is resent by an admin."""
    if message["status"] != PARKED:
        raise InvalidState(f"message {message['_id']} is {message['status']}, not parked; "
                           f"only parked messages can be resent")
    if message.get("erased"):
        raise InvalidState(f"message {message['_id']} carried a code or a personal link and was "
                           "erased; ask for a new one (a new code, or assign the judge again)")


# --- the direct-message rate limit -------------------------------------------------------------

def rate_window(now, window_seconds):
    """The fixed window ``now`` falls in: its index and its end."""
    index = int(as_utc(now).timestamp() // window_seconds)
    return index, index * window_seconds + window_seconds


def rate_limited(limit, window_seconds):
    return RateLimited(f"too many messages to this recipient: at most {limit} in "
                       f"{window_seconds // 60 or 1} minutes; try again later")


# --- template variables from events ------------------------------------------------------------

def local_text(moment, timezone):
    """A moment as the campaign's local wall-clock time, in Chinese: ``2013年10月30日 23:59``."""
    local = as_utc(moment).astimezone(ZoneInfo(timezone))
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _local_or_raw(text, timezone):
    """A payload's ISO time in local words; an odd one as it came (a message still goes out)."""
    try:
        return local_text(parse_iso(text), timezone)
    except (TypeError, ValueError):
        return str(text)


def campaign_facts(campaign, campaign_id):
    """The campaign's name and dates for a message; an unknown campaign still gets a message."""
    if campaign is None:
        return {"campaign_name": campaign_id, "timezone": "Asia/Shanghai",
                "deadline": "另行通知", "voting_opens": "另行通知", "voting_closes": "另行通知"}
    return {
        "campaign_name": campaign.name,
        "timezone": campaign.timezone,
        "deadline": local_text(campaign.nomination_deadline, campaign.timezone),
        "voting_opens": local_text(campaign.voting_opens, campaign.timezone),
        "voting_closes": local_text(campaign.voting_closes, campaign.timezone),
    }


def event_params(event_type, event, facts, contact=None):
    """The variables of an event's messages: the campaign, the nominee and what follows."""
    params = {
        "campaign_name": facts["campaign_name"],
        "nomination_id": event["nomination_id"],
        "nominee_name": event["nominee_name"],
        "nominee_unit": event["nominee_unit"],
        "unit": event["unit"],
        "category_name": CATEGORY_NAMES_ZH.get(event["category"], event["category"]),
        "org_type_name": ORG_TYPE_NAMES_ZH.get(event.get("org_type") or "", ""),
        "submitted_at": _local_or_raw(event["submitted_at"], facts["timezone"]),
        "deadline": facts["deadline"],
        "voting_opens": facts["voting_opens"],
        "voting_closes": facts["voting_closes"],
        "contact_person": (contact or {}).get("contact_person") or "联系人",
    }
    if event_type == events.NOMINATION_REVIEWED:
        params["decision"] = event["decision"]
        params["opinion"] = event["opinion"] or "无"
    if event_type == events.CANDIDATE_DISQUALIFIED:
        params["reason"] = event["reason"]
    return params


def sms_params(params, variables):
    """Template parameters as SMS gateways take them: only the template's variables, as text."""
    return {name: str(params[name]) for name in sorted(variables) if name in params}


# --- the outbox record -------------------------------------------------------------------------

def message_record(message_id, *, source, ref, event_type, campaign_id, template, channel, kind,
                   recipient, rendered, params, now, hash_key, problem=None, requested_by=None,
                   content_fingerprint=None):
    """A new message: queued for its first attempt now, or parked at once with ``problem``
    (an address or a template that no retry can fix), so nothing is dropped silently."""
    return {
        "_id": message_id, "source": source, "ref": ref, "event_type": event_type,
        "campaign_id": campaign_id, "template": template, "channel": channel, "kind": kind,
        "recipient": recipient, "recipient_masked": mask(recipient),
        "recipient_hash": recipient_hash(hash_key, recipient or ""),
        "subject": rendered.subject if rendered else "", "body": rendered.body if rendered else "",
        "params": params, "status": PARKED if problem else QUEUED, "attempts": 0,
        "last_error": problem, "next_attempt_at": None if problem else now,
        "created_at": now, "updated_at": now, "parked_at": now if problem else None,
        "sent_at": None, "lease_until": None, "lease": None, "resends": 0,
        "requested_by": requested_by, "fingerprint": content_fingerprint,
        "history": ([{"attempt": 0, "at": now, "outcome": PARKED, "error": problem}]
                    if problem else []),
    }


def message_row(message, with_history=False):
    """A message as an admin sees it: the address masked, the times in ISO 8601."""
    row = {
        "message_id": message["_id"], "status": message["status"], "source": message["source"],
        "event_type": message.get("event_type"), "ref": message.get("ref"),
        "campaign_id": message.get("campaign_id"), "template": message["template"],
        "channel": message["channel"], "kind": message["kind"],
        "recipient": message.get("recipient_masked"), "attempts": message["attempts"],
        "last_error": message.get("last_error"), "resends": message.get("resends", 0),
        "subject": message.get("subject"),
    }
    for key in ("created_at", "updated_at", "next_attempt_at", "sent_at", "parked_at"):
        row[key] = iso(message.get(key))
    if with_history:
        row["history"] = [dict(entry, at=iso(entry["at"])) for entry in message.get("history", [])]
    return row


def direct_reply(message):
    """``send_direct``'s answer: ``sent``, or ``queued`` while it waits (a retry, or an admin's
    resend when parked)."""
    return {"message_id": message["_id"], "status": SENT if message["status"] == SENT else QUEUED}
