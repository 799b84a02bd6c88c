"""Dependency providers of the aggregation service: settings, the live tally cache, keys."""
import threading
import time

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared.auth import check_secret
from services.aggregation.objections import derive_key

#: Config keys (services/aggregation/config.yml).
TALLY_CACHE_SECONDS = "TALLY_CACHE_SECONDS"
REBUILD_PAGE_SIZE = "REBUILD_PAGE_SIZE"

DEFAULT_TALLY_CACHE_SECONDS = 2.0
DEFAULT_REBUILD_PAGE_SIZE = 10000


class Settings(DependencyProvider):
    """The service's own config values, read once in ``setup()``."""

    def setup(self):
        config = self.container.config
        self.values = {
            TALLY_CACHE_SECONDS: float(config.get(TALLY_CACHE_SECONDS)
                                       or DEFAULT_TALLY_CACHE_SECONDS),
            REBUILD_PAGE_SIZE: int(config.get(REBUILD_PAGE_SIZE) or DEFAULT_REBUILD_PAGE_SIZE),
        }

    def get_dependency(self, worker_ctx):
        return dict(self.values)


class ExpiringCache:
    """``get(key, compute)``: a value at most ``ttl`` seconds old (per process)."""

    def __init__(self, ttl, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self.entries = {}
        self.lock = threading.Lock()

    def get(self, key, compute):
        now = self.clock()
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None and entry[0] > now:
                return entry[1]
        value = compute()
        with self.lock:
            self.entries[key] = (now + self.ttl, value)
        return value


class TallyCache(DependencyProvider):
    """Live tallies are read far more often than they change: serve them from memory briefly."""

    def setup(self):
        ttl = self.container.config.get(TALLY_CACHE_SECONDS)
        self.cache = ExpiringCache(float(ttl) if ttl not in (None, "") else
                                   DEFAULT_TALLY_CACHE_SECONDS)

    def get_dependency(self, worker_ctx):
        return self.cache


class ObjectionKeys(DependencyProvider):
    """Keys derived from the shared secret: objection ids (receipt numbers) and mobile hashes."""

    def setup(self):
        secret = str(self.container.config.get(cfg.AUTH_SECRET) or "")
        check_secret(secret)
        self.keys = {"id": derive_key(secret, "objection-id"),
                     "mobile": derive_key(secret, "objector-mobile"),
                     "code": derive_key(secret, "objection-code")}

    def get_dependency(self, worker_ctx):
        return dict(self.keys)
