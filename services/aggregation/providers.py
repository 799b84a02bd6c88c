"""Dependency providers of the aggregation service: settings, the live tally cache, keys."""
import threading
import time

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared import signing
from shared.auth import own_service_key
from shared.config import REBUILD_PAGE_SIZE, TALLY_CACHE_SECONDS


class Settings(DependencyProvider):
    """The service's own config values, read once in ``setup()``."""

    def setup(self):
        config = self.container.config
        self.values = {key: cfg.read(config, key)
                       for key in (TALLY_CACHE_SECONDS, REBUILD_PAGE_SIZE)}

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

    def forget(self, key):
        """Drop ``key``'s value: the next ``get`` computes it afresh."""
        with self.lock:
            self.entries.pop(key, None)


class TallyCache(DependencyProvider):
    """Live tallies are read far more often than they change: serve them from memory briefly."""

    def setup(self):
        self.cache = ExpiringCache(cfg.read(self.container.config, TALLY_CACHE_SECONDS))

    def get_dependency(self, worker_ctx):
        return self.cache


class ObjectionKeys(DependencyProvider):
    """Keys derived from aggregation's own key (no other service holds it): objection ids
    (receipt numbers), objectors' mobile hashes and the 公示 page's one-time codes."""

    def setup(self):
        secret = own_service_key(self.container.config, self.container.service_name)
        self.keys = {name: signing.derive_key(secret, f"aggregation|{purpose}").hex()
                     for name, purpose in (("id", "objection-id"), ("mobile", "objector-mobile"),
                                           ("code", "objection-code"))}

    def get_dependency(self, worker_ctx):
        return dict(self.keys)
