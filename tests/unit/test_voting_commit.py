"""The group commit's decisions after the rules, as pure functions: no store, no broker.

``answer_resends`` answers the votes whose vote_id was claimed before; ``answer_insert``
says what the insert's refusals by the store's unique key mean for each vote.
"""
from services.voting import domain
from services.voting.commit import answer_insert, answer_resends
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
