"""Votes for a candidate disqualified during voting are counted nowhere (issue 12, item 9).

A vote that slipped in before voting heard of the disqualification reaches
aggregation like any other, before or after ``candidate_disqualified``. Either
way the standing candidates' rows (votes, scores, composite, rank, status) are
exactly those without the vote, and the disqualified candidate is ranked
nowhere (services/voting/README.md, "A candidate disqualified during voting").
"""
import uuid

import pytest

from shared import events
from shared.store import connect
from tests.service.test_aggregation_service import (CAMPAIGN, CATEGORY, Harness, disqualified,
                                                    load_forty, vote_batch)
from tests.conftest import campaign_document

GONE = "A14"
STANDING_FIELDS = ("candidate_id", "votes", "vote_score", "panel_score", "composite", "rank",
                   "pool", "pool_rank", "status")


@pytest.fixture
def new_harness(mongo_uri):
    """A fresh aggregation store per call, so one test can compare two histories."""
    client, names = connect(mongo_uri), []

    def make():
        names.append(f"pxtest_{uuid.uuid4().hex[:12]}")
        harness = Harness(client[names[-1]])
        harness.deliver(events.CAMPAIGN_LOADED, events.make_event(
            events.CAMPAIGN_LOADED, CAMPAIGN, campaign=campaign_document(), revision=1))
        load_forty(harness)
        return harness

    yield make
    for name in names:
        client.drop_database(name)


def standing(rows):
    return [tuple(row.get(key) for key in STANDING_FIELDS) for row in rows
            if row["candidate_id"] != GONE]


def row_of(rows, candidate_id):
    return next(row for row in rows if row["candidate_id"] == candidate_id)


@pytest.mark.parametrize("vote_first", [True, False], ids=["vote-then-event", "event-then-vote"])
def test_a_vote_that_slipped_in_before_the_disqualification_changes_no_ranking(
        new_harness, vote_first):
    without = new_harness()
    without.deliver(events.CANDIDATE_DISQUALIFIED, disqualified(GONE, minute=14))
    expected = without.as_admin().results(CAMPAIGN, CATEGORY)

    harness = new_harness()
    # Enough votes to have made A14 the top vote-getter, which would move every vote score.
    slipped = vote_batch({GONE: 10**4})
    steps = [(events.VOTE_CAST, slipped),
             (events.CANDIDATE_DISQUALIFIED, disqualified(GONE, minute=14))]
    for event_type, payload in (steps if vote_first else reversed(steps)):
        harness.deliver(event_type, payload)
    rows = harness.as_admin().results(CAMPAIGN, CATEGORY)

    assert standing(rows) == standing(expected)
    gone = row_of(rows, GONE)
    assert gone["status"] == "disqualified"
    assert (gone["rank"], gone["composite"], gone["vote_score"]) == (None, None, None)
    # The votes stay on record for the audit (they were valid when cast) and score nobody.
    assert gone["votes"] == row_of(expected, GONE)["votes"] + 10**4


def test_without_the_disqualification_the_same_votes_would_have_moved_the_ranking(new_harness):
    """The check above can fail: the same votes for a standing candidate do move others."""
    before = new_harness().as_admin().results(CAMPAIGN, CATEGORY)
    harness = new_harness()
    harness.deliver(events.VOTE_CAST, vote_batch({GONE: 10**4}))
    after = harness.as_admin().results(CAMPAIGN, CATEGORY)
    assert standing(after) != standing(before)
