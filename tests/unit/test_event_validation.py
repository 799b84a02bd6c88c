"""make_event refuses a malformed event at the producer, whichever path validates it."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import events

VOTE = {"vote_id": "v1", "candidate_id": "c1", "category": "advanced_unit",
        "cast_at": "2099-11-10T01:00:00Z"}
VALUES = st.one_of(st.text(max_size=3), st.none(), st.integers(), st.binary(max_size=2))
RECORDS = st.one_of(
    st.just(VOTE),
    st.dictionaries(st.sampled_from(sorted(VOTE) + ["voter"]), VALUES, max_size=5),
    st.fixed_dictionaries({key: VALUES for key in VOTE}),
    st.text(max_size=2), st.none())


def _schema_accepts(payload):
    return not events.SCHEMAS[events.VOTE_CAST]().validate(payload)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(RECORDS, max_size=4), st.tuples(RECORDS), st.none()),
       st.one_of(st.just("cb-2099"), st.none(), st.integers()))
def test_a_vote_cast_is_made_exactly_when_its_whole_schema_accepts_it(votes, campaign_id):
    try:
        payload = events.make_event(events.VOTE_CAST, campaign_id, votes=votes)
    except events.EventSchemaError:
        payload = None
    probe = {"event_id": "e1", "schema_version": 1, "occurred_at": "2099-11-10T01:00:00Z",
             "campaign_id": campaign_id, "votes": votes}
    assert (payload is not None) == _schema_accepts(probe)


@pytest.mark.parametrize("votes", [
    [], [dict(VOTE, voter="13812345678")], [dict(VOTE, cast_at=None)],
    [{k: v for k, v in VOTE.items() if k != "category"}], [VOTE, "not a vote"]])
def test_a_malformed_vote_cast_is_refused_at_the_producer(votes):
    with pytest.raises(events.EventSchemaError, match="votes"):
        events.make_event(events.VOTE_CAST, "cb-2099", votes=votes)


def test_a_vote_cast_with_a_broken_envelope_is_refused_though_its_votes_are_plain():
    with pytest.raises(events.EventSchemaError, match="campaign_id"):
        events.make_event(events.VOTE_CAST, 7, votes=[VOTE])
