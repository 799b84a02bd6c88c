"""``aggregation.inputs``: the anonymised inputs document of each revision, with worker_factory."""
import json

import pytest

from services.aggregation import verify
from shared import events
from shared.errors import InvalidState, NotFound, ValidationError
from tests.aggregation_cases import FORTY
from tests.conftest import at
from tests.service.test_aggregation_service import (  # noqa: F401  (harness is a fixture)
    AFTER_VOTE, CAMPAIGN, CATEGORY, DURING_VOTE, disqualified, harness, load_forty)


def votes_at(cid, cast_at, n, prefix):
    return events.make_event(events.VOTE_CAST, CAMPAIGN, DURING_VOTE, votes=[
        {"vote_id": f"{prefix}{i}", "candidate_id": cid, "category": CATEGORY,
         "cast_at": cast_at} for i in range(n)])


def published_forty(harness):
    load_forty(harness)
    # Two votes on each side of local midnight (Asia/Shanghai is UTC+8).
    harness.deliver(events.VOTE_CAST, votes_at("A13", "2099-11-11T15:59:59Z", 2, "late-"))
    harness.deliver(events.VOTE_CAST, votes_at("A13", "2099-11-11T16:00:00Z", 2, "night-"))
    # One judge whose scores give each candidate its panel score (the panel closes on them).
    for cid, _, _, panel, _, _ in FORTY:
        if panel is not None:
            harness.deliver(events.SCORE_SUBMITTED, events.make_event(
                events.SCORE_SUBMITTED, CAMPAIGN, at("2099-11-20T10:00:00"), candidate_id=cid,
                category=CATEGORY, judge_id="评委-王",
                scores={"organisation": float(panel), "results": float(panel)},
                total=float(panel)))
    harness.now = AFTER_VOTE
    return harness.as_admin().publish(CAMPAIGN)


def test_inputs_before_publication_are_refused_and_nothing_is_stored(harness):
    load_forty(harness)
    with pytest.raises(InvalidState, match="not been published"):
        harness.service().inputs(CAMPAIGN)
    assert harness.store.documents.count_documents({}) == 0
    assert harness.store.state(CAMPAIGN)["phase"] == "open"


def test_anyone_gets_the_published_document_and_it_verifies(harness):
    publication = published_forty(harness)
    document = harness.service().inputs(CAMPAIGN)  # no token: the inputs are public
    assert document["revision"] == 1
    assert document["inputs_hash"] == publication["inputs_hash"]
    assert {row["inputs_hash"] for row in harness.service().publicity_list(CAMPAIGN)} == {
        document["inputs_hash"]}
    assert harness.dispatched[0][1]["inputs_hash"] == document["inputs_hash"]
    result = verify.verify(json.loads(json.dumps(document)))
    assert result["match"], result
    a13 = document["inputs"]["categories"][CATEGORY]["candidates"]["A13"]
    counted = {day["day"]: day["counted"] for day in a13["votes_by_day"]}
    assert counted["2099-11-11"] == 2 and counted["2099-11-12"] == 2  # local days
    assert sum(counted.values()) == {cid: v for cid, _, v, _, _, _ in FORTY}["A13"] // 200 + 4
    a01 = document["inputs"]["categories"][CATEGORY]["candidates"]["A01"]
    assert a01["judges"] == {"J1": {"organisation": "90", "results": "90"}}
    text = json.dumps(document, ensure_ascii=False)
    for private in ("评委-王", "宣传部", "单位党组织", "城关镇党委", "vote_id", "late-0"):
        assert private not in text
    # Selected rows of the document's list are exactly the publicity list.
    listed = {row["candidate_id"] for row in harness.service().publicity_list(CAMPAIGN)}
    assert {row["candidate_id"] for row in document["list"] if row["status"] == "selected"} == \
        listed


def test_each_revision_keeps_its_own_document(harness):
    published_forty(harness)
    first = harness.service().inputs(CAMPAIGN)
    gone = next(row["candidate_id"] for row in first["list"] if row["status"] == "selected")
    harness.now = at("2099-11-25T03:00:00")
    harness.deliver(events.CANDIDATE_DISQUALIFIED, disqualified(gone, minute=1))
    second = harness.service().inputs(CAMPAIGN)
    assert second["revision"] == 2 and second["inputs_hash"] != first["inputs_hash"]
    assert second["inputs_hash"] == harness.service().publication(CAMPAIGN)["inputs_hash"]
    assert second["inputs"]["disqualifications"] == [{"candidate_id": gone, "revision": 2}]
    assert {row["candidate_id"]: row["status"] for row in second["list"]}[gone] == "disqualified"
    assert verify.verify(second)["match"]
    # Revision 1 is still there, unchanged, and still verifies.
    assert harness.service().inputs(CAMPAIGN, revision=1) == first
    assert verify.verify(first)["match"]
    assert harness.service().inputs(CAMPAIGN, 2) == second


def test_a_document_lost_from_the_store_is_reproduced_from_the_frozen_inputs(harness):
    published_forty(harness)
    first = harness.service().inputs(CAMPAIGN)
    harness.store.documents.delete_many({})
    assert harness.service().inputs(CAMPAIGN, revision=1) == first


@pytest.mark.parametrize("revision, error", [
    (3, NotFound), (0, ValidationError), (-1, ValidationError), ("1", ValidationError),
    (1.5, ValidationError), ({"$gt": 0}, ValidationError)])
def test_a_revision_that_does_not_exist_or_is_not_a_number_is_refused(harness, revision, error):
    published_forty(harness)
    before = harness.store.documents.count_documents({})
    with pytest.raises(error) as refused:
        harness.service().inputs(CAMPAIGN, revision)
    if error is ValidationError:
        assert "revision" in json.loads(refused.value.value)
    else:
        assert "no revision 3" in str(refused.value)
    assert harness.store.documents.count_documents({}) == before


def test_publish_is_refused_when_the_daily_counts_do_not_add_up(harness):
    load_forty(harness)
    harness.store.results.update_one({"_id": "A05"}, {"$inc": {"votes": 1}})
    harness.now = AFTER_VOTE
    with pytest.raises(InvalidState, match="per-day vote counts of candidate A05"):
        harness.as_admin().publish(CAMPAIGN)
    assert harness.store.state(CAMPAIGN)["phase"] == "open"
    assert harness.store.documents.count_documents({}) == 0
    assert harness.dispatched == []
