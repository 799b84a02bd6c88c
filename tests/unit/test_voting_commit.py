"""The group commit's decisions after the rules, as pure functions: no store, no broker.

``answer_resends`` answers the votes whose vote_id was claimed before; ``answer_insert``
says what the insert's refusals by the store's unique key mean for each vote. The
``Announcer`` publishes stored groups' ``vote_cast`` (a fake dispatcher and outbox).
"""
from datetime import datetime, timezone

import eventlet

from services.voting import commit as commit_module
from services.voting import domain
from services.voting.commit import Announcer, answer_insert, answer_resends
from shared import events
from shared.errors import Conflict, DuplicateVote
from tests.unit.test_voting_rules import ENTRY
from tests.unit.test_voting_rules import make_vote as rules_vote

OTHER_VOTER = "w" * 32


def make_vote(candidate_id="nom-a", **kwargs):
    return rules_vote(candidate_id, candidate=dict(ENTRY, _id=candidate_id, nominee_name="候选"),
                      **kwargs)


def claim_of(vote):
    return domain.claim_record(vote, domain.vote_record(vote, None))


def test_a_resend_of_a_stored_vote_is_accepted_again_with_its_receipt():
    vote = make_vote(vote_id="r-1")
    claim = claim_of(vote)
    stored = dict(claim["vote"], batch="b-0")
    outcomes, repairs = answer_resends([domain.Decision(vote)], {"r-1": claim},
                                       {vote.key: stored})
    assert repairs == []
    assert outcomes["r-1"].accepted and outcomes["r-1"].resend
    assert outcomes["r-1"].reply["receipt"] == vote.request.receipt


def test_a_vote_id_reused_for_another_vote_is_a_conflict():
    first = make_vote(vote_id="r-1")
    other = make_vote(vote_id="r-1", candidate_id="nom-b")
    outcomes, repairs = answer_resends([domain.Decision(other)], {"r-1": claim_of(first)}, {})
    assert isinstance(outcomes["r-1"].error, Conflict) and repairs == []


def test_a_claim_whose_vote_was_never_stored_is_repaired_with_the_vote_decided_then():
    vote = make_vote(vote_id="r-1")
    claim = claim_of(vote)
    outcomes, repairs = answer_resends([domain.Decision(vote)], {"r-1": claim}, {})
    assert outcomes == {} and repairs == [claim["vote"]]


def test_a_resend_whose_key_another_vote_took_is_a_duplicate():
    vote = make_vote(vote_id="r-1")
    holder = dict(domain.vote_record(make_vote(vote_id="r-2"), None))
    outcomes, _ = answer_resends([domain.Decision(vote)], {"r-1": claim_of(vote)},
                                 {vote.key: holder})
    assert isinstance(outcomes["r-1"].error, DuplicateVote)


def test_the_insert_answers_stored_resent_and_refused_votes():
    fresh = make_vote(vote_id="n-1")
    again = make_vote(vote_id="n-2", candidate_id="nom-b")
    beaten = make_vote(vote_id="n-3", voter=OTHER_VOTER)
    votes = {v.vote_id: v for v in (fresh, again, beaten)}
    batch = [dict(domain.vote_record(v, None), batch="b-1") for v in votes.values()]
    taken = {again.key, beaten.key}
    holders = {again.key: batch[1], beaten.key: dict(batch[2], vote_id="n-9")}
    stored, outcomes, refusals = answer_insert(batch, taken, holders, votes)
    assert [record["vote_id"] for record in stored] == ["n-1"]
    assert outcomes["n-1"].accepted and not outcomes["n-1"].resend
    assert outcomes["n-2"].accepted and outcomes["n-2"].resend
    [refusal] = refusals
    assert refusal.vote is beaten and isinstance(refusal.error, DuplicateVote)
    assert refusal.evidence == {"enforced_by": "store"} and "n-3" not in outcomes


# --- the announcer: stored groups' vote_cast, several groups per event ------------------------

class OutboxOf:
    """The announcer's store: the outbox entries it closes."""

    def __init__(self, *batch_ids):
        self.open = set(batch_ids)

    def close_batches(self, batch_ids):
        self.open -= set(batch_ids)


def stored_record(vote_id, campaign_id="cb-1", candidate_id="nom-a"):
    return {"vote_id": vote_id, "campaign_id": campaign_id, "candidate_id": candidate_id,
            "category": "advanced_unit", "cast_at": datetime(2099, 11, 2, 2, tzinfo=timezone.utc)}


def test_the_groups_stored_within_a_window_go_out_as_one_event_per_campaign():
    sent, store = [], OutboxOf("b1", "b2", "b3")
    announcer = Announcer(lambda event_type, payload: sent.append((event_type, payload)), store,
                          window=0.02)
    worker = eventlet.spawn(announcer.run)
    announcer.announce("b1", [stored_record("v1"), stored_record("v2", "cb-2")])
    announcer.announce("b2", [stored_record("v3")])
    eventlet.sleep(0)
    assert sent == []                                  # the window is still open
    announcer.announce("b3", [stored_record("v4")])
    eventlet.sleep(0.1)
    by_campaign = {payload["campaign_id"]: [v["vote_id"] for v in payload["votes"]]
                   for event_type, payload in sent if event_type == events.VOTE_CAST}
    assert by_campaign == {"cb-1": ["v1", "v3", "v4"], "cb-2": ["v2"]} and len(sent) == 2
    assert store.open == set()                          # announced: the entries are closed
    announcer.announce("b4", [stored_record("v5")])
    announcer.stop()                                    # what was handed over still goes out
    worker.wait()
    assert [v["vote_id"] for v in sent[-1][1]["votes"]] == ["v5"]


def test_a_window_larger_than_an_event_is_split_and_a_failed_publish_keeps_every_entry(
        monkeypatch):
    monkeypatch.setattr(commit_module, "MAX_EVENT_VOTES", 2)
    sent, store = [], OutboxOf("b1", "b2")
    records = [[stored_record(f"v{n}") for n in range(3)], [stored_record("v9")]]
    assert commit_module.publish_batches([("b1", records[0]), ("b2", records[1])],
                                         lambda *event: sent.append(event), store)
    assert [len(payload["votes"]) for _, payload in sent] == [2, 2] and store.open == set()

    def broker_down(event_type, payload):
        raise ConnectionError("broker down")

    store = OutboxOf("b1", "b2")
    assert not commit_module.publish_batches([("b1", records[0]), ("b2", records[1])],
                                             broker_down, store)
    assert store.open == {"b1", "b2"}                   # left for the sweep


# --- the commit queue: when a group waits for more -----------------------------------------

#: eventlet's own sleep: the runs below record the queue's waits through ``eventlet.sleep``.
REAL_SLEEP = eventlet.sleep


class QueueRun:
    """A ``CommitQueue`` whose groups are recorded instead of stored (each request answered
    with itself), and whose waits are recorded too."""

    def __init__(self, monkeypatch, gather):
        self.groups, self.waits = [], []
        monkeypatch.setattr(commit_module, "commit_group", self._commit_group)
        def sleep(seconds=0):
            if seconds:
                self.waits.append(seconds)
            REAL_SLEEP(seconds)

        monkeypatch.setattr(commit_module.eventlet, "sleep", sleep)
        self.queue = commit_module.CommitQueue(rules=[], gather=gather)
        self.thread = eventlet.spawn(self.queue.run, type("Context", (), {"metrics": None})())

    def _commit_group(self, requests, context):
        self.groups.append(len(requests))
        return list(requests)

    def submit(self, *requests):
        return eventlet.spawn(self.queue.submit, list(requests))

    def stop(self):
        self.queue.stop()
        self.thread.wait()


def test_a_vote_alone_does_not_wait_for_others(monkeypatch):
    run = QueueRun(monkeypatch, gather=0.05)
    assert run.submit("a").wait() == ["a"]
    assert run.submit("b").wait() == ["b"]    # the group before it was one vote: nobody near
    run.stop()
    assert run.waits == [] and run.groups == [1, 1]


def test_while_votes_keep_coming_a_group_waits_for_those_on_their_way(monkeypatch):
    run = QueueRun(monkeypatch, gather=0.05)
    assert run.submit("a", "b").wait() == ["a", "b"]   # a busy moment: a group of two
    first = run.submit("c")
    REAL_SLEEP(0.01)                                  # within the wait, two more arrive
    others = [run.submit("d"), run.submit("e")]
    assert first.wait() == ["c"] and [o.wait() for o in others] == [["d"], ["e"]]
    run.stop()
    assert run.waits == [0.05] and run.groups == [2, 3]


def test_a_batch_does_not_wait_nor_does_a_queue_told_not_to(monkeypatch):
    run = QueueRun(monkeypatch, gather=0.05)
    run.submit("a", "b").wait()
    run.submit(*range(commit_module.CommitQueue.GATHER_BELOW)).wait()
    run.stop()
    assert run.waits == []
    never = QueueRun(monkeypatch, gather=0.0)
    never.submit("a", "b").wait()
    never.submit("c").wait()
    never.stop()
    assert never.waits == []
