"""The one candidate projection (shared/ballot.py) as voting, scoring and aggregation keep it:
any order, any duplicates and any interleaving with catch-ups give the same ballot."""
from datetime import datetime, timedelta, timezone

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregation.store import AggregationStore, candidate_entry
from services.scoring.store import ScoringStore
from services.scoring.store import ballot_entry as scoring_entry
from services.voting.store import VotingStore
from services.voting.store import ballot_entry as voting_entry
from shared import ballot
from shared.ballot import KEY_FIELD, BallotCopy, candidate_of_event, candidate_of_record
from shared.timeutil import iso

CAMPAIGN = "cb-test"
START = datetime(2099, 10, 20, 2, 0, tzinfo=timezone.utc)
#: Each service's projection, with what its new documents start with.
PROJECTIONS = {
    "voting": (voting_entry, None),
    "scoring": (scoring_entry, None),
    "aggregation": (candidate_entry, {"votes": 0, "vote_events": []}),
}
#: nomination's transitions (services/nomination/domain.py) from each state.
NEXT = {"submitted": ["accepted", "rejected", "withdrawn"],
        "accepted": ["withdrawn", "disqualified"], "rejected": ["withdrawn"],
        "withdrawn": [], "disqualified": []}
EVENT_OF = {"accepted": "nomination_reviewed", "rejected": "nomination_reviewed",
            "withdrawn": "nomination_withdrawn", "disqualified": "candidate_disqualified"}


def copy_for(name, clock=None):
    project, on_insert = PROJECTIONS[name]
    db = mongomock.MongoClient()["pingxuan_test"]
    kwargs = {"clock": clock} if clock else {}
    return BallotCopy(db, "candidates", project, on_insert=on_insert, **kwargs)


def facts(cid, status):
    return {"nomination_id": cid, "campaign_id": CAMPAIGN, "unit": "城关镇党委",
            "category": "advanced_unit", "org_type": "agency", "nominee_name": f"候选{cid}",
            "nominee_unit": "县财政局", "deeds_summary": "坚持每周集中学习。", "status": status,
            "submitted_at": "2099-10-10T02:00:00Z"}


def event(cid, status, at, event_id):
    body = dict(facts(cid, status), event_id=event_id, occurred_at=iso(at),
                event_type=EVENT_OF[status])
    if status == "disqualified":
        body.update(candidate_id=cid, reason="事迹材料失实")
    return body


def record(cid, status, updated_at):
    row = dict(facts(cid, status), id=cid, updated_at=iso(updated_at),
               mobile="13812345678")  # nomination.list rows carry the contact
    del row["nomination_id"]
    if status == "disqualified":
        row["disqualification"] = {"reason": "事迹材料失实", "at": iso(updated_at)}
    return row


@st.composite
def histories(draw):
    """Nominations moving as nomination moves them: ``(events, snapshots, final states)``
    where a snapshot
    is what ``nomination.list`` answers at one moment (``updated_at`` is the last change, or
    later when a leadership opinion was recorded since)."""
    count = draw(st.integers(1, 4))
    all_events, timeline, minute, serial = [], [], 0, 0
    for n in range(count):
        cid, state = f"nom-{n}", "submitted"
        timeline.append((minute, cid, state, minute))
        while NEXT[state] and draw(st.booleans()):
            state = draw(st.sampled_from(NEXT[state]))
            minute += draw(st.integers(1, 30))
            serial += 1
            # Two nomination instances' clocks may disagree: a change's time can read
            # earlier than the change before it (event ids, made by the same clocks, too).
            stamped = minute + draw(st.integers(-40, 0))
            all_events.append(event(cid, state, START + timedelta(minutes=stamped),
                                    f"{stamped + 100:06d}-{serial:04d}"))
            timeline.append((minute, cid, state, stamped))
            if state == "accepted" and draw(st.booleans()):  # 创学领导小组意见 recorded
                minute += 1
                timeline.append((minute, cid, state, minute))
    moments = draw(st.lists(st.integers(0, minute), max_size=3))
    snapshots = []
    for moment in moments:
        latest = {}
        for at, cid, state, updated in timeline:
            if at <= moment:
                latest[cid] = (state, updated)
        snapshots.append([record(cid, state, START + timedelta(minutes=updated))
                          for cid, (state, updated) in sorted(latest.items())])
    final = {cid: state for _, cid, state, _ in timeline}
    return all_events, snapshots, final


def stored(copy):
    return sorted(copy.collection.find(), key=lambda doc: doc["_id"])


def statuses(copy):
    return {doc["_id"]: doc.get("status", doc.get("candidate_status"))
            for doc in copy.collection.find()}


def contents(copy):
    """The ballot as stored, without the ordering keys (two descriptions of one state)."""
    return sorted(({k: v for k, v in doc.items() if k != KEY_FIELD}
                   for doc in copy.collection.find()), key=lambda doc: doc["_id"])


def in_order(name, all_events):
    copy = copy_for(name)
    for body in all_events:
        copy.apply(candidate_of_event(body))
    return copy


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), history=histories())
def test_shuffled_and_duplicated_events_give_the_same_ballot(name, data, history):
    all_events, _, final = history
    expected = in_order(name, all_events)
    assert statuses(expected) == {cid: state for cid, state in final.items()
                                  if state != "submitted"
                                  and not (name == "scoring" and state == "rejected")}
    stream = data.draw(st.permutations(all_events + data.draw(
        st.lists(st.sampled_from(all_events), max_size=6) if all_events else st.just([]))))
    # Keys included: the same events leave the same state, described by the same event.
    assert stored(in_order(name, stream)) == stored(expected)


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), history=histories())
def test_catch_ups_and_events_in_any_interleaving_give_the_same_ballot(name, data, history):
    all_events, snapshots, _ = history
    expected = contents(in_order(name, all_events))
    steps = [("event", body) for body in all_events] + [("list", rows) for rows in snapshots]
    copy = copy_for(name)
    for kind, item in data.draw(st.permutations(steps)):
        if kind == "event":
            copy.apply(candidate_of_event(item))
        else:
            copy.catch_up(CAMPAIGN, lambda campaign_id, rows=item: rows, now=True)
    assert contents(copy) == expected


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
def test_an_event_and_a_record_of_the_same_state_are_kept_alike(name):
    project, _ = PROJECTIONS[name]
    at = START + timedelta(days=30)
    from_event = candidate_of_event(event("nom-1", "disqualified", at, "e-1"))
    from_record = candidate_of_record(dict(record("nom-1", "disqualified", at),
                                           submitted_at="2099-10-10T02:00:00.000Z"))
    assert project(from_event) == project(from_record)
    assert from_record.key < from_event.key          # the event's id breaks the tie
    assert from_record.disqualification_reason == "事迹材料失实"
    assert "mobile" not in repr(project(from_record))


def test_off_the_ballot_is_final_even_when_the_acceptance_comes_later():
    copy = copy_for("voting")
    assert copy.apply(candidate_of_event(event("nom-1", "withdrawn", START, "e-2")))
    # The review happened before, on an instance whose clock ran ahead; its event was
    # retried and arrives after the withdrawal.
    assert not copy.apply(candidate_of_event(event("nom-1", "accepted", START + timedelta(hours=1),
                                                   "e-3")))
    assert not copy.apply(candidate_of_event(event("nom-1", "withdrawn", START, "e-2")))  # again
    doc = copy.collection.find_one({"_id": "nom-1"})
    assert (doc["status"], doc["on_ballot"]) == ("withdrawn", False)


def test_a_submitted_nomination_is_no_candidate():
    assert candidate_of_record(record("nom-1", "submitted", START)) is None
    assert candidate_of_event(dict(event("nom-1", "accepted", START, "e-1"),
                                   status="submitted")) is None


def test_scoring_keeps_no_rejected_nomination_but_its_withdrawal():
    copy = copy_for("scoring")
    assert not copy.apply(candidate_of_event(event("nom-1", "rejected", START, "e-1")))
    assert copy.collection.find_one({"_id": "nom-1"}) is None
    assert copy.apply(candidate_of_event(event("nom-1", "withdrawn", START, "e-2")))
    assert copy.collection.find_one({"_id": "nom-1"})["status"] == "withdrawn"


def test_aggregation_completes_an_orphan_and_its_not_a_candidate_mark_gives_way():
    store = AggregationStore(mongomock.MongoClient()["pingxuan_aggregation"])
    store.add_votes(CAMPAIGN, "nom-1", "advanced_unit", "vote-event-1", 3)
    store.mark_not_a_candidate(CAMPAIGN, "nom-1", "advanced_unit")
    assert store.candidate("nom-1")["candidate_status"] == "not_a_candidate"
    assert store.ballot_copy.apply(candidate_of_event(event("nom-1", "accepted", START, "e-1")))
    doc = store.candidate("nom-1")
    assert (doc["votes"], doc["candidate_status"], doc["known"]) == (3, "accepted", True)
    assert KEY_FIELD not in doc                       # bookkeeping, never in a reply


def test_a_candidate_whose_first_vote_is_stored_meanwhile_still_gets_its_facts(monkeypatch):
    """On MongoDB the first vote for a candidate (another worker, another instance) may create
    its results document between the ballot's filter and its insert: the insert is refused as
    a duplicate key, though no later state is stored. The facts are written all the same."""
    from pymongo.errors import DuplicateKeyError

    store = AggregationStore(mongomock.MongoClient()["pingxuan_aggregation"])
    collection = store.ballot_copy.collection
    update_one, raced = collection.update_one, []

    def racing(filter, update, upsert=False):
        if upsert and not raced:
            raced.append(True)
            store.add_votes(CAMPAIGN, "nom-1", "advanced_unit", "vote-event-1", 2)
            raise DuplicateKeyError("E11000 duplicate key error: _id nom-1")
        return update_one(filter, update, upsert=upsert)

    monkeypatch.setattr(collection, "update_one", racing)
    assert store.ballot_copy.apply(candidate_of_event(event("nom-1", "accepted", START, "e-1")))
    doc = store.candidate("nom-1")
    assert raced and (doc["votes"], doc["candidate_status"], doc["known"]) == (2, "accepted", True)
    # A later state stored meanwhile still wins: the older one is refused, not written.
    assert store.ballot_copy.apply(candidate_of_event(event("nom-1", "disqualified",
                                                            START + timedelta(hours=2), "e-3")))
    assert not store.ballot_copy.apply(candidate_of_event(event("nom-1", "accepted",
                                                                START + timedelta(hours=1), "e-2")))
    assert store.candidate("nom-1")["candidate_status"] == "disqualified"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_campaign_is_caught_up_once_per_store_and_retried_while_nomination_is_down():
    clock, calls = Clock(), []

    def down(campaign_id):
        calls.append(campaign_id)
        raise TimeoutError("nomination did not answer")

    def listing(campaign_id):
        calls.append(campaign_id)
        return [record("nom-1", "accepted", START)]

    copy = copy_for("voting", clock)
    copy.campaigns.insert_one({"_id": CAMPAIGN})
    assert copy.catch_up(CAMPAIGN, down) is None
    assert copy.catch_up(CAMPAIGN, listing) is None and calls == [CAMPAIGN]  # not yet again
    assert copy.due_campaigns() == []
    clock.now += ballot.CATCH_UP_RETRY_SECONDS
    assert copy.due_campaigns() == [CAMPAIGN]
    [changed] = copy.catch_up(CAMPAIGN, listing)
    assert changed.candidate_id == "nom-1" and len(calls) == 2
    assert copy.catch_up(CAMPAIGN, listing) is None                 # caught up: events suffice
    assert copy.catch_up(CAMPAIGN, listing, now=True) == []         # asked for: runs, no change
    # Another process on the same store (a restart with MongoDB) does not ask again.
    again = BallotCopy(copy.collection.database, "candidates", voting_entry)
    assert not again.due(CAMPAIGN) and again.due_campaigns() == []


def test_each_service_store_keeps_its_ballot_through_the_one_projection():
    for store_class in (VotingStore, ScoringStore, AggregationStore):
        store = store_class(mongomock.MongoClient()["pingxuan_x"])
        assert isinstance(store.ballot_copy, BallotCopy)
