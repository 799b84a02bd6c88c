"""票數清零 in aggregation (``worker_factory``): votes_voided / votes_restored in any order.

The results, the live tally, the per-day counts (``daily_votes``), exports and the
rebuild must agree with the votes that count, whatever order the events arrive in
across their queues, and however often one is redelivered.
"""
import itertools

import pytest

from services.aggregation import exporters
from services.aggregation.providers import ExpiringCache
from shared import events
from tests.conftest import at, campaign_document
from tests.service.test_aggregation_service import (CAMPAIGN, CATEGORY, Harness, panel_closed,
                                                    reviewed)

DAY_ONE = "2099-11-10T01:00:00Z"       # 09:00 on 10 November, Asia/Shanghai
DAY_TWO = "2099-11-10T17:30:00Z"       # 01:30 on 11 November, Asia/Shanghai: another local day


def cast(votes):
    """``vote_cast`` with ``votes`` = [(vote_id, candidate_id, cast_at)]."""
    return events.make_event(events.VOTE_CAST, CAMPAIGN, at("2099-11-10T02:00:00"), votes=[
        {"vote_id": vote_id, "candidate_id": cid, "category": CATEGORY, "cast_at": cast_at}
        for vote_id, cid, cast_at in votes])


def counts(votes):
    out = {}
    for _, cid, cast_at in votes:
        day = "2099-11-10" if cast_at == DAY_ONE else "2099-11-11"
        out[cid, day] = out.get((cid, day), 0) + 1
    return [{"candidate_id": cid, "category": CATEGORY, "day": day, "votes": n}
            for (cid, day), n in sorted(out.items())]


def voided(void_id, votes, reason="刷票"):
    return events.make_event(events.VOTES_VOIDED, CAMPAIGN, void_id=void_id, reason=reason,
                             voided=len(votes), counts=counts(votes),
                             vote_ids=[vote_id for vote_id, _, _ in votes])


def restored(void_id, votes, reason="复核无误"):
    return events.make_event(events.VOTES_RESTORED, CAMPAIGN, void_id=void_id, reason=reason,
                             restored=len(votes), counts=counts(votes),
                             vote_ids=[vote_id for vote_id, _, _ in votes])


HANDLERS = {events.VOTE_CAST: "on_vote_cast", events.VOTES_VOIDED: "on_votes_voided",
            events.VOTES_RESTORED: "on_votes_restored"}

A_DAY_ONE = [(f"a{n}", "a", DAY_ONE) for n in range(6)]
A_DAY_TWO = [(f"a2-{n}", "a", DAY_TWO) for n in range(3)]
B_VOTES = [(f"b{n}", "b", DAY_ONE) for n in range(4)]
ALL = A_DAY_ONE + A_DAY_TWO + B_VOTES


def prepared(db):
    harness = Harness(db)
    harness.deliver(events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, CAMPAIGN, campaign=campaign_document(), revision=1))
    for minute, cid in enumerate("ab", start=1):
        harness.deliver(events.NOMINATION_REVIEWED, reviewed(cid, "agency", minute))
    harness.deliver(events.PANEL_CLOSED, panel_closed({"a": 80.0, "b": 70.0}))
    return harness


def deliver(harness, event_type, payload):
    getattr(harness.service(), HANDLERS[event_type])(payload)


def rows(harness):
    return {row["candidate_id"]: (row["votes"], row["voided_votes"])
            for row in harness.as_admin().results(CAMPAIGN, CATEGORY)}


def daily(harness):
    return {(row["candidate_id"], row["day"]): (row["counted"], row["voided"])
            for row in harness.store.daily_votes(CAMPAIGN)}


def test_a_void_and_its_restore_move_results_tally_days_and_exports(db):
    harness = prepared(db)
    deliver(harness, events.VOTE_CAST, cast(ALL))
    assert rows(harness) == {"a": (9, 0), "b": (4, 0)}
    burst = A_DAY_ONE[:4] + A_DAY_TWO[:1]
    deliver(harness, events.VOTES_VOIDED, voided("void-1", burst))
    assert rows(harness) == {"a": (4, 5), "b": (4, 0)}
    assert daily(harness) == {("a", "2099-11-10"): (2, 4), ("a", "2099-11-11"): (2, 1),
                              ("b", "2099-11-10"): (4, 0)}
    tally = {row["candidate_id"]: row["votes"] for row in
             harness.as_admin().tally(CAMPAIGN)["rows"]}
    assert tally == {"a": 4, "b": 4}
    report = harness.as_admin().report(CAMPAIGN, CATEGORY)
    table = exporters.rows_of(report)
    assert [(row["candidate_id"], row["votes"], row["voided_votes"]) for row in table] == [
        ("a", 4, 5), ("b", 4, 0)]
    assert "作废票数" in exporters.csv(report).decode("utf-8")
    # b now leads on votes: the vote scores follow the counted votes only.
    scores = {row["candidate_id"]: row["vote_score"] for row in report["categories"][0]["rows"]}
    assert scores == {"a": 100.0, "b": 100.0}
    deliver(harness, events.VOTES_RESTORED, restored("void-1", burst))
    assert rows(harness) == {"a": (9, 0), "b": (4, 0)}
    assert daily(harness) == {("a", "2099-11-10"): (6, 0), ("a", "2099-11-11"): (3, 0),
                              ("b", "2099-11-10"): (4, 0)}


SEQUENCE = [
    (events.VOTE_CAST, cast(A_DAY_ONE + B_VOTES)),
    (events.VOTE_CAST, cast(A_DAY_TWO)),
    (events.VOTES_VOIDED, voided("void-1", A_DAY_ONE[:3] + A_DAY_TWO[:2])),
    (events.VOTES_RESTORED, restored("void-1", A_DAY_ONE[:3] + A_DAY_TWO[:2])),
    (events.VOTES_VOIDED, voided("void-2", A_DAY_ONE[:2] + B_VOTES[:1])),
]
#: After all five: void-1 is undone, void-2 holds a0, a1 (day one) and b0.
FINAL_ROWS = {"a": (7, 2), "b": (3, 1)}
FINAL_DAYS = {("a", "2099-11-10"): (4, 2), ("a", "2099-11-11"): (3, 0),
              ("b", "2099-11-10"): (3, 1)}


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(SEQUENCE)))))
def test_the_result_is_exact_in_any_order_and_with_redeliveries(db, order):
    harness = prepared(db)
    for position in order + order[:2]:   # the first two are delivered twice
        deliver(harness, *SEQUENCE[position])
    assert rows(harness) == FINAL_ROWS
    assert daily(harness) == FINAL_DAYS


def test_a_void_before_its_votes_counts_them_voided_when_they_come(db):
    harness = prepared(db)
    deliver(harness, events.VOTES_VOIDED, voided("void-1", B_VOTES))
    assert rows(harness) == {"a": (0, 0), "b": (0, 0)}
    deliver(harness, events.VOTE_CAST, cast(B_VOTES[:2]))
    assert rows(harness) == {"a": (0, 0), "b": (0, 2)}
    deliver(harness, events.VOTE_CAST, cast(B_VOTES[2:] + A_DAY_ONE[:1]))
    assert rows(harness) == {"a": (1, 0), "b": (0, 4)}


def test_the_rebuild_agrees_with_voided_votes_and_says_when_it_does_not(db):
    harness = prepared(db)
    deliver(harness, events.VOTE_CAST, cast(ALL))
    deliver(harness, events.VOTES_VOIDED, voided("void-1", B_VOTES[:3]))
    gone = {vote_id for vote_id, _, _ in B_VOTES[:3]}
    page = [{"vote_id": vote_id, "candidate_id": cid, "category": CATEGORY, "cast_at": cast_at,
             "voided": vote_id in gone} for vote_id, cid, cast_at in ALL]
    records = [dict(reviewed(cid, "agency", minute), id=cid)
               for minute, cid in enumerate("ab", start=1)]
    harness.peer_data.update({
        ("nomination", "list"): lambda campaign_id, status=None: [
            r for r in records if r["status"] == status],
        ("voting", "votes_page"): {"votes": page, "next": None},
        ("scoring", "scores"): {"scores": [], "panels": {CATEGORY: {
            "closed": True, "method": "mean", "panel_scores": {"a": 80.0, "b": 70.0}}}}})
    report = harness.as_admin().rebuild(CAMPAIGN)
    assert report["equal"] is True, report["differences"]
    assert report["votes"]["rebuilt"] == 10 and report["voided_votes"] == {
        "incremental": 3, "rebuilt": 3}
    # voting says one more is voided than the events did: the rebuild says so.
    page[0]["voided"] = True
    report = harness.as_admin().rebuild(CAMPAIGN)
    assert report["equal"] is False
    assert "voided.a: incremental 0, rebuilt 1" in report["differences"]


def test_a_void_and_its_restore_are_seen_in_the_live_tally_at_once(db):
    """The tally is cached (TALLY_CACHE_SECONDS) against the flood of votes, but the admin
    who voids a burst looks at the tally straight after: a void or restore refreshes it."""
    harness = prepared(db)
    harness.cache = ExpiringCache(60)
    deliver(harness, events.VOTE_CAST, cast(ALL))
    reader = harness.as_admin()

    def tally():
        return {row["candidate_id"]: row["votes"] for row in reader.tally(CAMPAIGN)["rows"]}

    assert tally() == {"a": 9, "b": 4}
    deliver(harness, events.VOTES_VOIDED, voided("void-1", A_DAY_ONE))
    assert tally() == {"a": 3, "b": 4}
    deliver(harness, events.VOTES_RESTORED, restored("void-1", A_DAY_ONE))
    assert tally() == {"a": 9, "b": 4}
    deliver(harness, events.VOTE_CAST, cast([("b9", "b", DAY_ONE)]))
    assert tally() == {"a": 9, "b": 4}  # new votes wait for the cache, as before
