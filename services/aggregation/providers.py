"""Dependency providers of the aggregation service: settings, the live tally cache, keys."""
import threading
import time

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared import signing
from shared.auth import own_service_key
from shared.config import REBUILD_PAGE_SIZE, TALLY_CACHE_SECONDS

#: A vote this instance counted marks its campaign's tally changed, and a changed tally is
#: recomputed once it is this old: under a flood of votes and of readers the tally is still
#: computed at most four times a second per instance (the cache's purpose), yet a vote shows
#: within about this long. (The longest a tally is served unchanged is TALLY_CACHE_SECONDS,
#: 0.5 s by default: what a vote counted by *another* instance waits at most, issue 14.)
TALLY_REFRESH_AFTER_CHANGE_SECONDS = 0.25


class Settings(DependencyProvider):
    """The service's own config values, read once in ``setup()``."""

    def setup(self):
        config = self.container.config
        self.values = {key: cfg.read(config, key)
                       for key in (TALLY_CACHE_SECONDS, REBUILD_PAGE_SIZE, cfg.TRUSTED_PROXIES)}

    def get_dependency(self, worker_ctx):
        return dict(self.values)


class ExpiringCache:
    """``get(key, compute)``: a value at most ``ttl`` seconds old (per process); once
    ``changed(key)`` is said, at most ``min_age`` old (``min_age`` ≤ ``ttl``; by default
    ``ttl``: a change waits for the expiry).

    ``min_age`` is a floor, not a delay: a value read after a change is recomputed at once if
    it is already that old, so a reader waits the floor only under a flood of changes."""

    def __init__(self, ttl, min_age=None, clock=time.monotonic):
        self.ttl = ttl
        self.min_age = ttl if min_age is None else min(min_age, ttl)
        self.clock = clock
        self.entries = {}  # key: (computed at, value, the key's changes counted before it)
        self.changes = {}  # key: how many changes were said (a change during a compute counts)
        self.lock = threading.Lock()

    def get(self, key, compute):
        now = self.clock()
        with self.lock:
            entry = self.entries.get(key)
            changes = self.changes.get(key, 0)
            if entry is not None:
                fresh_for = self.ttl if entry[2] == changes else self.min_age
                if now - entry[0] < fresh_for:
                    return entry[1]
        value = compute()
        with self.lock:
            self.entries[key] = (now, value, changes)
        return value

    def changed(self, key):
        """``key``'s value is out of date: recompute it once it is ``min_age`` old."""
        with self.lock:
            self.changes[key] = self.changes.get(key, 0) + 1

    def forget(self, key):
        """Drop ``key``'s value: the next ``get`` computes it afresh."""
        with self.lock:
            self.entries.pop(key, None)
            self.changes.pop(key, None)


class TallyCache(DependencyProvider):
    """Live tallies are read far more often than they change: serve them from memory briefly
    (``TALLY_CACHE_SECONDS``), and sooner afresh after this instance counted a vote."""

    def setup(self):
        self.cache = ExpiringCache(cfg.read(self.container.config, TALLY_CACHE_SECONDS),
                                   min_age=TALLY_REFRESH_AFTER_CHANGE_SECONDS)

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
