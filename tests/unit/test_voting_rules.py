"""The vote rules as pure functions, and the group judgement built on them (property-based)."""
from datetime import timedelta

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.voting import domain, rules
from shared.campaign import Campaign
from shared.errors import DuplicateVote, NotFound, RateLimited, VoteLimitReached, VotingClosed
from shared.plugins import VOTE_RULES, load_plugin, load_plugins, plugin_names
from tests.conftest import at, campaign_document

VOTING = {"opens": "2099-11-01T08:00:00", "closes": "2099-11-20T20:00:00", "daily_limit": 3,
          "ip_limit": 4, "ip_window_seconds": 60}
SETTINGS = domain.VotingSettings.of(Campaign(campaign_document(voting=VOTING)))
OPEN = at("2099-11-02T02:00:00")
ENTRY = {"_id": "nom-a", "category": "advanced_unit", "campaign_id": "cb-test"}


def make_vote(candidate_id="nom-a", voter="v" * 32, ip="i" * 24, cast_at=OPEN, vote_id="x-1",
              candidate=ENTRY, settings=SETTINGS):
    request = domain.VoteRequest(
        vote_id=vote_id, campaign_id="cb-test", candidate_id=candidate_id, channel="mobile",
        voter_key=voter, ip_key=ip, ip_net="203.0.113.0/24", user_agent=None, settings=settings,
        receipt="AAAA-BBBB-CCCC-DDDD", by={})
    return domain.Vote(request, cast_at, candidate)


def test_every_rule_is_a_registered_plugin():
    assert set(domain.DEFAULT_RULES) <= set(plugin_names(VOTE_RULES))
    assert load_plugin(VOTE_RULES, "daily_limit") is rules.daily_limit


@pytest.mark.parametrize("moment, closed", [
    (at("2099-11-01T00:00:00"), False),      # 08:00 local: opens (inclusive)
    (at("2099-10-31T23:59:59"), True),
    (at("2099-11-20T11:59:59"), False),
    (at("2099-11-20T12:00:00"), True),       # 20:00 local: closed (exclusive)
])
def test_voting_window(moment, closed):
    vote = make_vote(cast_at=moment)
    if closed:
        with pytest.raises(VotingClosed):
            rules.voting_window(vote, domain.History(), SETTINGS)
    else:
        rules.voting_window(vote, domain.History(), SETTINGS)


def test_candidate_on_ballot():
    rules.candidate_on_ballot(make_vote(), domain.History(), SETTINGS)
    with pytest.raises(NotFound):
        rules.candidate_on_ballot(make_vote(candidate=None), domain.History(), SETTINGS)


def test_one_vote_per_candidate_per_day():
    rules.one_vote_per_candidate_per_day(make_vote(), domain.History(frozenset({"nom-b"})),
                                         SETTINGS)
    with pytest.raises(DuplicateVote):
        rules.one_vote_per_candidate_per_day(make_vote(), domain.History(frozenset({"nom-a"})),
                                             SETTINGS)


def test_daily_limit():
    rules.daily_limit(make_vote(), domain.History(votes_today=2), SETTINGS)
    with pytest.raises(VoteLimitReached):
        rules.daily_limit(make_vote(), domain.History(votes_today=3), SETTINGS)
    unlimited = domain.VotingSettings.of(Campaign(campaign_document(
        voting={"opens": VOTING["opens"], "closes": VOTING["closes"]})))
    rules.daily_limit(make_vote(), domain.History(votes_today=999), unlimited)


def test_ip_throttle():
    rules.ip_throttle(make_vote(), domain.History(ip_votes=3), SETTINGS)
    with pytest.raises(RateLimited):
        rules.ip_throttle(make_vote(), domain.History(ip_votes=4), SETTINGS)


def test_the_day_is_the_campaigns_local_day():
    assert make_vote(cast_at=at("2099-11-02T15:59:59")).day == "2099-11-02"
    assert make_vote(cast_at=at("2099-11-02T16:00:00")).day == "2099-11-03"
    assert make_vote(cast_at=at("2099-11-02T16:00:00")).key == \
        f"cb-test|{'v' * 32}|nom-a|2099-11-03"


def test_a_campaign_chooses_its_rules_in_order():
    """A vote outside the window for a candidate off the ballot meets the first rule listed."""
    def settings_with(rules):
        return domain.VotingSettings.of(Campaign(campaign_document(voting=dict(VOTING, rules=rules))))

    early = OPEN - timedelta(days=3)
    ballot_first = settings_with(["candidate_on_ballot", "voting_window",
                                  "one_vote_per_candidate_per_day"])
    window_first = settings_with(["voting_window", "candidate_on_ballot",
                                  "one_vote_per_candidate_per_day"])
    rules = load_plugins(VOTE_RULES)
    assert domain.judge_group([make_vote(candidate=None, cast_at=early, settings=ballot_first)],
                              domain.GroupFacts(), rules)[0].rule == "candidate_on_ballot"
    assert domain.judge_group([make_vote(candidate=None, cast_at=early, settings=window_first)],
                              domain.GroupFacts(), rules)[0].rule == "voting_window"


# --- the group judgement: a group is judged as the same votes cast one at a time -----------

votes_strategy = st.lists(st.tuples(
    st.sampled_from(["nom-a", "nom-b", "nom-c", "nom-d", "nom-e"]),   # candidate
    st.sampled_from(["v1", "v2", "v3"]),                              # voter
    st.sampled_from(["i1", "i2"]),                                    # address
    st.integers(min_value=0, max_value=3 * 24 * 3600),                # seconds after OPEN
), max_size=40)


def _votes(spec):
    return [make_vote(candidate_id=c, voter=v, ip=i, cast_at=OPEN + timedelta(seconds=s),
                      vote_id=f"x-{n}", candidate=dict(ENTRY, _id=c))
            for n, (c, v, i, s) in enumerate(sorted(spec, key=lambda item: item[3]))]


@hsettings(max_examples=150, deadline=None)
@given(votes_strategy)
def test_the_rules_hold_for_any_sequence_of_votes(spec):
    decisions = domain.judge_group(_votes(spec), domain.GroupFacts(), load_plugins(VOTE_RULES))
    accepted = [d.vote for d in decisions if d.error is None]
    keys = [v.key for v in accepted]
    assert len(keys) == len(set(keys))                      # once per voter, candidate, day
    per_day = {}
    for v in accepted:
        per_day[v.voter_day] = per_day.get(v.voter_day, 0) + 1
    assert max(per_day.values(), default=0) <= SETTINGS.daily_limit
    per_window = {}                                         # never over the address's limit
    for v in accepted:
        per_window[v.ip_window] = per_window.get(v.ip_window, 0) + 1
        start = int(v.cast_at.timestamp() // SETTINGS.ip_window.total_seconds())
        assert v.ip_window == f"{v.ip_slot}|{start}"
    assert max(per_window.values(), default=0) <= SETTINGS.ip_limit
    for d in decisions:
        assert (d.error is None) == (d.rule is None)


@hsettings(max_examples=100, deadline=None)
@given(votes_strategy)
def test_a_group_is_judged_as_single_casts_would_be(spec):
    votes = _votes(spec)
    plugins = load_plugins(VOTE_RULES)
    together = [d.error is None for d in domain.judge_group(votes, domain.GroupFacts(), plugins)]
    stored, today, windows, one_by_one = set(), {}, {}, []
    for vote in votes:
        [decision] = domain.judge_group([vote], domain.GroupFacts(stored, today, windows),
                                        plugins)
        one_by_one.append(decision.error is None)
        if decision.error is None:
            stored.add(vote.key)
            today[vote.voter_day] = today.get(vote.voter_day, 0) + 1
            windows[vote.ip_window] = windows.get(vote.ip_window, 0) + 1
    assert together == one_by_one
