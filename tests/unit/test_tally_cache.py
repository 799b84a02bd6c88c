"""The live tally's cache: a value at most ``ttl`` old, and at most ``min_age`` old once
this instance counted a vote (issue 14: vote → result within a second)."""
from services.aggregation.providers import TALLY_REFRESH_AFTER_CHANGE_SECONDS, ExpiringCache
from shared import config as cfg

DEFAULT_TALLY_CACHE_SECONDS = cfg.read({}, cfg.TALLY_CACHE_SECONDS)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.calls


def test_an_unchanged_value_lives_until_its_ttl():
    clock, compute = Clock(), Counting()
    cache = ExpiringCache(2, min_age=0.25, clock=clock)
    assert cache.get("cb", compute) == 1
    clock.now += 1.9
    assert cache.get("cb", compute) == 1
    clock.now += 0.2
    assert cache.get("cb", compute) == 2


def test_a_changed_value_is_recomputed_once_it_is_min_age_old_not_before():
    clock, compute = Clock(), Counting()
    cache = ExpiringCache(2, min_age=0.25, clock=clock)
    cache.get("cb", compute)
    clock.now += 0.1
    cache.changed("cb")
    assert cache.get("cb", compute) == 1  # a flood of votes and readers: still one compute
    clock.now += 0.2
    assert cache.get("cb", compute) == 2
    assert cache.get("cb", compute) == 2  # fresh again: the change was taken in
    clock.now += 1.0
    assert cache.get("cb", compute) == 2


def test_a_change_said_while_computing_is_not_lost():
    clock = Clock()
    cache = ExpiringCache(2, min_age=0.25, clock=clock)
    cache.get("cb", lambda: "old")
    clock.now += 0.3
    cache.changed("cb")

    def compute_while_a_vote_lands():
        cache.changed("cb")
        return "during"

    assert cache.get("cb", compute_while_a_vote_lands) == "during"
    clock.now += 0.3
    assert cache.get("cb", lambda: "after") == "after"


def test_without_min_age_a_change_waits_for_the_expiry_and_keys_are_apart():
    clock, compute = Clock(), Counting()
    cache = ExpiringCache(1, clock=clock)
    cache.get("a", compute)
    cache.changed("a")
    cache.changed("b")  # nothing cached: nothing to mark
    clock.now += 0.9
    assert cache.get("a", compute) == 1
    assert cache.get("b", compute) == 2
    cache.forget("a")
    assert cache.get("a", compute) == 3


def test_the_shipped_defaults_keep_vote_to_result_under_a_second():
    # Another instance's vote waits for the ttl; this instance's for the floor after a change.
    assert DEFAULT_TALLY_CACHE_SECONDS <= 0.5
    assert TALLY_REFRESH_AFTER_CHANGE_SECONDS < DEFAULT_TALLY_CACHE_SECONDS
