"""Every setting of the system in one table: its key, environment variable, default, parser
and meaning.

A service's ``config.yml`` fills its keys from the environment with nameko's
``${VAR:default}`` syntax and code reads a value only through :func:`read`, with one
rule for every key: unset or blank (only spaces) means the default; anything else is
parsed, and a value the parser refuses stops the service at start with the key, the
variable and the rule. ``pingxuan up`` takes the variable names from here, and the
README's configuration table is :func:`markdown_table` (a test keeps them equal).
"""
from dataclasses import dataclass

#: Every service, in start order (``pingxuan up``).
SERVICE_NAMES = ("nomination", "voting", "scoring", "aggregation", "notification", "console")
EVERY_SERVICE = SERVICE_NAMES
#: A setting only the operator's ``pingxuan`` command reads.
CLI = ("the CLI",)

#: What ``pingxuan up`` sets when ``MONGO_URI`` is unset: it asks for the embedded store.
EMBEDDED_MONGO_URI = "mongomock://localhost/"
MIN_SECRET_LENGTH = 16


class SettingError(RuntimeError):
    """A configured value its setting refuses (raised at start, naming key, variable and rule)."""


# --- parsers: text -> value; ValueError says the rule -------------------------------------

def text(value):
    return str(value).strip()


def verbatim(value):
    """Keys and secrets: exactly as given (``!raw_env_var``)."""
    return str(value)


def number(value):
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number")
    if parsed != parsed or parsed in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return parsed


def non_negative_number(value):
    parsed = number(value)
    if parsed < 0:
        raise ValueError("must be 0 or more")
    return parsed


def seconds_up_to(limit, why):
    """A parser of seconds from 0 to ``limit`` (``why``: the reason for the bound)."""
    def parse(value):
        parsed = non_negative_number(value)
        if parsed > limit:
            raise ValueError(f"must be at most {limit:g} seconds ({why})")
        return parsed
    return parse


def positive_number(value):
    parsed = number(value)
    if parsed <= 0:
        raise ValueError("must be more than 0")
    return parsed


def positive_integer(value):
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    try:
        parsed = int(str(value).strip())
    except ValueError:
        raise ValueError("must be a whole number")
    if parsed < 1:
        raise ValueError("must be at least 1")
    return parsed


def boolean(value):
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def comma_list(value):
    return tuple(item.strip() for item in str(value).split(",") if item.strip())


def one_of(*choices):
    def parse(value):
        word = str(value).strip()
        if word not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return word
    parse.__name__ = "one of " + "|".join(choices)
    return parse


# --- the table ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One setting. ``key``: what ``config.yml`` fills and code reads (``None``: read from
    the environment by the CLI only). ``env``: its variable, ``{SERVICE}`` standing for the
    service's name in capitals. ``default``: the parsed value when unset or blank, a
    ``{service: value}`` mapping or a function of the service's name when each service has
    its own, ``None`` for none.
    ``default_text``: what the README says when the default is not a plain value."""

    key: str
    env: str
    default: object
    parse: object
    meaning: str
    readers: tuple = EVERY_SERVICE
    default_text: str = ""

    def env_for(self, service):
        return self.env.replace("{SERVICE}", service.upper())

    def default_for(self, service):
        if callable(self.default):
            return self.default(service)
        if isinstance(self.default, dict):
            return self.default.get(service)
        return self.default


AMQP_URI = "AMQP_URI"
MONGO_URI = "MONGO_URI"
MONGO_DB = "MONGO_DB"
TOKEN_PUBLIC_KEYS = "TOKEN_PUBLIC_KEYS"
SERVICE_KEY = "SERVICE_KEY"
SERVICE_PUBLIC_KEYS = "SERVICE_PUBLIC_KEYS"
CLOCK_START = "CLOCK_START"
CLOCK_ANCHOR = "CLOCK_ANCHOR"
EVENT_HANDLER_ATTEMPTS = "EVENT_HANDLER_ATTEMPTS"
EVENT_RETRY_SECONDS = "EVENT_RETRY_SECONDS"
EVENT_RETRY_MAX_SECONDS = "EVENT_RETRY_MAX_SECONDS"
WEB_SERVER_ADDRESS = "WEB_SERVER_ADDRESS"
TALLY_CACHE_SECONDS = "TALLY_CACHE_SECONDS"
REBUILD_PAGE_SIZE = "REBUILD_PAGE_SIZE"
JUDGE_PAGE_URL = "JUDGE_PAGE_URL"
JUDGE_NOTIFIER = "JUDGE_NOTIFIER"
JUDGE_REMINDER_HOURS = "JUDGE_REMINDER_HOURS"
VOTER_SECRET = "VOTER_SECRET"
OTP_SENDER = "OTP_SENDER"
BALLOT_CACHE_SECONDS = "BALLOT_CACHE_SECONDS"
ANNOUNCE_WINDOW_SECONDS = "ANNOUNCE_WINDOW_SECONDS"
COMMIT_GATHER_SECONDS = "COMMIT_GATHER_SECONDS"
TRUSTED_PROXIES = "TRUSTED_PROXIES"
PUBLICITY_URL = "PUBLICITY_URL"
AGGREGATION_HTTP = "AGGREGATION_HTTP"
CONSOLE_SECURE_COOKIES = "CONSOLE_SECURE_COOKIES"
CONSOLE_RPC_TIMEOUT = "CONSOLE_RPC_TIMEOUT"
MAX_WORKERS = "max_workers"
DIRECT_LIMIT = "DIRECT_LIMIT"
DIRECT_WINDOW_SECONDS = "DIRECT_WINDOW_SECONDS"
SEND_LEASE_SECONDS = "SEND_LEASE_SECONDS"
SWEEP_SECONDS = "SWEEP_SECONDS"
SWEEP_BATCH = "SWEEP_BATCH"

#: One-time codes: through ``notification.send_direct``, or only into voting's log.
OTP_SENDERS = ("notification", "log")
#: Judges' notices: through ``notification.send_direct``, or only logged (no link).
JUDGE_NOTIFIERS = ("notification", "log")
HTTP_ADDRESSES = {"nomination": "127.0.0.1:8101", "voting": "127.0.0.1:8100",
                  "scoring": "127.0.0.1:8102", "aggregation": "127.0.0.1:8103",
                  "notification": "127.0.0.1:8104", "console": "127.0.0.1:8105"}

SETTINGS = [
    Setting(AMQP_URI, "AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/", text, "RabbitMQ"),
    Setting(MONGO_URI, "MONGO_URI", None, text,
            "the store (README \"The store\"); required",
            default_text="none: a service refuses to start; `pingxuan up` sets "
                         "`mongomock://localhost/`"),
    Setting(MONGO_DB, "{SERVICE}_MONGO_DB", lambda service: f"pingxuan_{service}", text,
            "the service's own database", default_text="`pingxuan_<service>`"),
    Setting(TOKEN_PUBLIC_KEYS, "PINGXUAN_TOKEN_PUBLIC_KEYS", "", verbatim,
            "the token issuer's public key(s), `pxpk_…`, comma-separated (two during a rollover)",
            default_text="`pingxuan up`: `$PINGXUAN_HOME/keys/issuer.key`'s public half"),
    Setting(SERVICE_PUBLIC_KEYS, "PINGXUAN_SERVICE_PUBLIC_KEYS", "", verbatim,
            "every service's public key, `name=pxpk_…,…`",
            default_text="`pingxuan up`: from `$PINGXUAN_HOME/keys/<service>.key`"),
    Setting(SERVICE_KEY, "{SERVICE}_SERVICE_KEY", "", verbatim,
            "that service's own private key, `pxsk_…` — that service only",
            default_text="`pingxuan up` creates `$PINGXUAN_HOME/keys/<service>.key` (mode 600)"),
    Setting(CLOCK_START, "PINGXUAN_CLOCK_START", "", text,
            "rehearsal clock: the instant the services' clock showed at `PINGXUAN_CLOCK_ANCHOR` "
            "(to rehearse the 2013 campaign)", default_text="real time"),
    Setting(CLOCK_ANCHOR, "PINGXUAN_CLOCK_ANCHOR", "", text,
            "the real instant `PINGXUAN_CLOCK_START` corresponds to; the same for every "
            "instance, so all agree",
            default_text="`pingxuan up` writes it once into `$PINGXUAN_HOME/clock-anchor`"),
    Setting(EVENT_HANDLER_ATTEMPTS, "EVENT_HANDLER_ATTEMPTS", 5, positive_integer,
            "tries of a failed event before it is parked (see \"Events\")"),
    Setting(EVENT_RETRY_SECONDS, "EVENT_RETRY_SECONDS", 1.0, positive_number,
            "wait before the first retry; each further one waits twice as long"),
    Setting(EVENT_RETRY_MAX_SECONDS, "EVENT_RETRY_MAX_SECONDS", 300.0, positive_number,
            "the longest wait between two tries"),
    Setting(WEB_SERVER_ADDRESS, "{SERVICE}_HTTP", HTTP_ADDRESSES, text,
            "the service's HTTP address", default_text="see the table above"),
    Setting(TALLY_CACHE_SECONDS, "AGGREGATION_TALLY_CACHE_SECONDS", 0.5, non_negative_number,
            "seconds a live tally is served from memory (0: never)", ("aggregation",)),
    Setting(REBUILD_PAGE_SIZE, "AGGREGATION_REBUILD_PAGE_SIZE", 10000, positive_integer,
            "votes asked of `voting.votes_page` per call during a rebuild", ("aggregation",)),
    Setting(JUDGE_PAGE_URL, "SCORING_PAGE_URL", "", text,
            "where judges open their page (personal links start with it)", ("scoring",),
            default_text="`http://$SCORING_HTTP`"),
    Setting(JUDGE_NOTIFIER, "SCORING_JUDGE_NOTIFIER", "notification", one_of(*JUDGE_NOTIFIERS),
            "judges are told through `notification` (`send_direct`), or only in the `log`",
            ("scoring",)),
    Setting(JUDGE_REMINDER_HOURS, "SCORING_REMINDER_HOURS", 24.0, non_negative_number,
            "judges with scores missing are reminded this many hours before the announced close",
            ("scoring",)),
    Setting(VOTER_SECRET, "VOTING_VOTER_SECRET", "", verbatim,
            f"secret of voter hashes, receipts and page sessions (at least {MIN_SECRET_LENGTH} "
            "characters)", ("voting",), default_text="derived from `VOTING_SERVICE_KEY`"),
    Setting(OTP_SENDER, "VOTING_OTP_SENDER", "notification", one_of(*OTP_SENDERS),
            "one-time codes go through `notification` (`send_direct`), or only to voting's `log`",
            ("voting",)),
    Setting(ANNOUNCE_WINDOW_SECONDS, "VOTING_ANNOUNCE_WINDOW_SECONDS", 0.05,
            seconds_up_to(5, "the outbox sweep republishes what waits 30 s"),
            "stored votes of this many seconds go out in one `vote_cast` (fewer events for the "
            "broker and consumers; a vote reaches the results this much later)", ("voting",)),
    Setting(COMMIT_GATHER_SECONDS, "VOTING_COMMIT_GATHER_SECONDS", 0.002,
            seconds_up_to(0.1, "every vote of a busy minute waits this long for its group"),
            "while votes keep coming, a group commit waits this long for more before it "
            "stores (fewer, larger groups: less CPU per vote; 0: never waits)", ("voting",)),
    Setting(BALLOT_CACHE_SECONDS, "VOTING_BALLOT_CACHE_SECONDS", 5.0, non_negative_number,
            "seconds the vote counts shown on the ballot may be old", ("voting",)),
    Setting(TRUSTED_PROXIES, "{SERVICE}_TRUSTED_PROXIES", (), comma_list,
            "addresses of reverse proxies whose `X-Forwarded-For` is believed, comma-separated "
            "(the residents' pages: voting's, and aggregation's 公示 page)",
            ("voting", "aggregation"), default_text="none"),
    Setting(PUBLICITY_URL, "VOTING_PUBLICITY_URL", "", text,
            "the 公示 page the front page links (a public URL behind a proxy)", ("voting",),
            default_text="`http://$AGGREGATION_HTTP`"),
    Setting(AGGREGATION_HTTP, "AGGREGATION_HTTP", HTTP_ADDRESSES["aggregation"], text,
            "aggregation's address, for the link to the 公示 page", ("voting",)),
    Setting(CONSOLE_SECURE_COOKIES, "CONSOLE_SECURE_COOKIES", False, boolean,
            "`true`: Secure cookies even when the TLS proxy sends no `X-Forwarded-Proto`",
            ("console",)),
    Setting(CONSOLE_RPC_TIMEOUT, "CONSOLE_RPC_TIMEOUT", 30.0, positive_number,
            "seconds the console waits for a service", ("console",)),
    Setting(MAX_WORKERS, "VOTING_MAX_WORKERS", 100, positive_integer,
            "voting's workers at once (callers wait for their group commit); nameko reads it",
            ("voting",)),
    Setting(DIRECT_LIMIT, "NOTIFICATION_DIRECT_LIMIT", 5, positive_integer,
            "`send_direct`: at most this many messages to one recipient per window",
            ("notification",)),
    Setting(DIRECT_WINDOW_SECONDS, "NOTIFICATION_DIRECT_WINDOW_SECONDS", 600, positive_integer,
            "that window, in seconds", ("notification",)),
    Setting(SEND_LEASE_SECONDS, "NOTIFICATION_SEND_LEASE_SECONDS", 120, positive_integer,
            "how long a sender holds a message (longer than any channel's timeout)",
            ("notification",)),
    Setting(SWEEP_SECONDS, "NOTIFICATION_SWEEP_SECONDS", 10.0, positive_number,
            "seconds between sweeps for messages due a retry", ("notification",)),
    Setting(SWEEP_BATCH, "NOTIFICATION_SWEEP_BATCH", 50, positive_integer,
            "messages sent per sweep", ("notification",)),
    Setting(None, "PINGXUAN_HOME", "~/.pingxuan", text,
            "the CLI's run directory (keys, clock anchor, pids, logs)", CLI),
    Setting(None, "PINGXUAN_ISSUER_KEY", "", verbatim,
            "the issuer's private key, as text — the CLI only, never a service", CLI,
            default_text="`PINGXUAN_ISSUER_KEY_FILE`"),
    Setting(None, "PINGXUAN_ISSUER_KEY_FILE", "", text,
            "a file holding the issuer's private key — the CLI only", CLI,
            default_text="`$PINGXUAN_HOME/keys/issuer.key` (mode 600), made by `pingxuan up`"),
    Setting(None, "CONSOLE_URL", "", text,
            "the console's address as people open it (for `--sign-in-link`)", CLI,
            default_text="`http://$CONSOLE_HTTP`"),
]

BY_KEY = {setting.key: setting for setting in SETTINGS if setting.key}
BY_ENV = {setting.env: setting for setting in SETTINGS}


def read(config, key, service=None):
    """``config[key]`` parsed by its setting; unset or blank: the default (for ``service``)."""
    setting = BY_KEY[key]
    value = config.get(key) if hasattr(config, "get") else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return setting.default_for(service)
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise SettingError(f"{key}: {exc} (set by {setting.env_for(service or '<SERVICE>')}; "
                           f"got {str(value)[:40]!r})")


def env_name(key, service):
    """The environment variable that fills ``key`` of ``service``."""
    return BY_KEY[key].env_for(service)


def database_name(config, service_name):
    """The service's own database: ``MONGO_DB`` or ``pingxuan_<service>``."""
    return read(config, MONGO_DB, service_name)


def default_text(setting):
    if setting.default_text:
        return setting.default_text
    value = setting.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def markdown_table():
    """The README's configuration table, from :data:`SETTINGS`."""
    lines = ["| variable | meaning | read by | default |", "|---|---|---|---|"]
    for setting in SETTINGS:
        env = setting.env.replace("{SERVICE}", "<SERVICE>")
        readers = ("every service" if setting.readers == EVERY_SERVICE
                   else ", ".join(setting.readers))
        lines.append(f"| `{env}` | {setting.meaning} | {readers} | {default_text(setting)} |")
    return "\n".join(lines) + "\n"
