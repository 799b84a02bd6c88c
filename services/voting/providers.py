"""The voting service's own dependency providers: its keys, the one-time code channel, the ballot cache."""
import logging
import threading
import time

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared.auth import own_service_key
from shared.service_rpc import ServiceCalls
from services.voting import domain

log = logging.getLogger("services.voting.codes")


class Keys:
    """The secrets (one per use) and settings the entrypoints read from config."""

    def __init__(self, secret, otp_sender, ballot_cache_seconds, trusted_proxies):
        self.voter = domain.derive_secret(secret, "voter")
        self.receipt = domain.derive_secret(secret, "receipt")
        self.session = domain.derive_secret(secret, "session")
        self.sessions = domain.Sessions(self.session)
        self.code = domain.derive_secret(secret, "code")
        #: The voter, address and receipt hashes, keyed once.
        self.hashes = domain.Keyring(self.voter, self.receipt)
        self.otp_sender = otp_sender
        self.ballot_cache_seconds = ballot_cache_seconds
        self.trusted_proxies = trusted_proxies


class VotingConfig(DependencyProvider):
    """Reads the voter-hash secret and the page's settings in ``setup()``."""

    def setup(self):
        config = self.container.config
        secret = cfg.read(config, cfg.VOTER_SECRET)
        if not secret:
            # One secret to manage in small deployments; a separate one is better (README):
            # it outlives a rotation of the service key, which would re-key every voter hash.
            secret = domain.derive_secret(own_service_key(config, self.container.service_name),
                                          "voter-secret")
        elif len(secret) < cfg.MIN_SECRET_LENGTH:
            raise RuntimeError(f"{cfg.VOTER_SECRET} must be at least "
                               f"{cfg.MIN_SECRET_LENGTH} characters")
        self.keys = Keys(secret, cfg.read(config, cfg.OTP_SENDER),
                         cfg.read(config, cfg.BALLOT_CACHE_SECONDS),
                         set(cfg.read(config, cfg.TRUSTED_PROXIES)))

    def get_dependency(self, worker_ctx):
        return self.keys


class CodeSender(DependencyProvider):
    """Sends a one-time code: ``notification.send_direct`` (an SMS template), or the log."""

    calls = ServiceCalls()

    def setup(self):
        config = self.container.config
        self.mode = cfg.read(config, cfg.OTP_SENDER)

    def get_dependency(self, worker_ctx):
        return self.send

    def send(self, mobile, code, campaign_name, idempotency_key):
        minutes = int(domain.OTP_VALID.total_seconds() // 60)
        if self.mode == "log":
            # For trying the system and for tests: the code goes to this service's log.
            log.info("otp_code sms to %s: 【评选】您的验证码为%s，%d分钟内有效，用于“%s”网络投票。请勿告诉他人。",
                     domain.mask_mobile(mobile), code, minutes, campaign_name)
            return {"message_id": idempotency_key, "status": "sent"}
        return self.calls.call("notification", "send_direct", "sms", mobile, "otp_code",
                                {"code": code, "valid_minutes": minutes,
                                 "campaign_name": campaign_name}, idempotency_key)


class BallotCache(DependencyProvider):
    """Vote counts per campaign, recounted from the store at most every few seconds.

    The ballot's ``votes`` may be a cached count (CONTRACT.md); the counts'
    age is exported as ``pingxuan_ballot_cache_age_seconds``. Also remembers
    each campaign as last read with its voting settings, per stored revision.
    """

    def setup(self):
        self.counts = {}
        self.lock = threading.Lock()
        self.campaigns = {}

    def get_dependency(self, worker_ctx):
        return self

    def get(self, campaign_id, max_age, recount):
        """``(counts, age_seconds)``; ``recount()`` is called when the cached counts are too old."""
        now = time.monotonic()
        cached = self.counts.get(campaign_id)
        if cached is None or now - cached[0] > max_age:
            cached = (now, recount())
            with self.lock:
                self.counts[campaign_id] = cached
        return cached[1], now - cached[0]

    def add(self, campaign_id, candidate_id, votes=1):
        """Count votes this process stored, so the voter sees them before the next recount."""
        with self.lock:
            cached = self.counts.get(campaign_id)
            if cached is not None:
                cached[1][candidate_id] = cached[1].get(candidate_id, 0) + votes

    def forget(self, campaign_id):
        self.counts.pop(campaign_id, None)

    def campaign(self, campaign_id):
        """What :meth:`keep_campaign` kept of the campaign (any revision), else ``None``."""
        kept = self.campaigns.get(campaign_id)
        return None if kept is None else kept[1]

    def keep_campaign(self, campaign_id, revision, value):
        """Keep ``value`` unless a copy of a later revision is kept already (a worker that
        read its copy before another's must not put the older one back)."""
        kept = self.campaigns.get(campaign_id)
        if kept is None or kept[0] <= revision:
            self.campaigns[campaign_id] = (revision, value)

    def forget_campaign_before(self, campaign_id, revision):
        """Forget the kept campaign if it is of a revision before ``revision`` (a group
        commit found that one stored): the next vote reads the campaign again."""
        kept = self.campaigns.get(campaign_id)
        if kept is not None and revision is not None and kept[0] < revision:
            self.campaigns.pop(campaign_id, None)
