"""``ProcessedEvents`` keeps each handler's applied events for ``PROCESSED_KEPT`` only: the
records older than that are removed when an event is marked, at most every ``PRUNE_EVERY``."""
import uuid
from datetime import datetime, timedelta, timezone

from shared.handlers import PROCESSED_KEPT, PRUNE_EVERY, ProcessedEvents
from shared.store import connect

START = datetime(2026, 11, 1, 2, tzinfo=timezone.utc)


def processed():
    return ProcessedEvents(connect("mongomock://processed/")[f"db_{uuid.uuid4().hex[:8]}"])


def test_a_weeks_old_record_goes_with_a_later_mark_and_a_recent_one_stays():
    events = processed()
    events.mark("on_vote_cast", "old", START)
    events.mark("on_vote_cast", "recent", START + PROCESSED_KEPT - timedelta(hours=1))
    events.mark("on_other", "old-other", START)
    assert events.seen("on_vote_cast", "old")
    events.mark("on_vote_cast", "now", START + PROCESSED_KEPT + timedelta(minutes=1))
    assert not events.seen("on_vote_cast", "old")
    assert events.seen("on_vote_cast", "recent") and events.seen("on_vote_cast", "now")
    assert events.seen("on_other", "old-other")      # each handler prunes its own


def test_records_are_pruned_at_most_every_ten_minutes():
    events = processed()
    events.mark("on_vote_cast", "first", START + PROCESSED_KEPT)   # prunes (nothing yet)
    events.collection.insert_one({"_id": "on_vote_cast|stale", "handler": "on_vote_cast",
                                  "event_id": "stale", "at": START - timedelta(days=30)})
    events.mark("on_vote_cast", "soon", START + PROCESSED_KEPT + PRUNE_EVERY / 2)
    assert events.seen("on_vote_cast", "stale")       # too soon after the last removal
    events.mark("on_vote_cast", "later", START + PROCESSED_KEPT + PRUNE_EVERY)
    assert not events.seen("on_vote_cast", "stale")
