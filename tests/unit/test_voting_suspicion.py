"""The suspicion rules (刷票 findings) and the void rules, as pure functions."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from services.voting import suspicion, voiding
from services.voting.suspicion import SeenVote, SuspicionSettings
from shared.campaign import Campaign
from shared.errors import ValidationError
from shared.plugins import SUSPICION_RULES, load_plugins
from tests.conftest import campaign_document

T0 = datetime(2099, 11, 2, 2, 0, tzinfo=timezone.utc)
RULES = load_plugins(SUSPICION_RULES)
SETTINGS = SuspicionSettings(rules=suspicion.DEFAULT_RULES, burst_votes=8, burst_minutes=5,
                             spike_factor=4.0, spike_min_votes=10, agent_voters=6,
                             agent_minutes=5)


def seen(n, at, candidate="a", net="203.0.113.0/24", agent="Mozilla/5.0", voter=None):
    return SeenVote(vote_id=f"v{n}", candidate_id=candidate, cast_at=at, ip_net=net,
                    user_agent=agent, voter=voter or f"voter{n}")


def test_a_burst_from_one_network_is_one_finding_naming_rule_threshold_and_evidence():
    votes = [seen(n, T0 + timedelta(seconds=10 * n)) for n in range(12)]
    votes += [seen(100 + n, T0 + timedelta(minutes=n), net=f"198.51.{n}.0/24") for n in range(9)]
    [finding] = suspicion.network_burst(votes, SETTINGS)
    reply = finding.reply()
    assert (reply["rule"], reply["votes"], reply["network"], reply["candidate_id"]) == (
        "network_burst", 12, "203.0.113.0/24", "a")
    assert reply["from"] == "2099-11-02T02:00:00Z"
    assert reply["to"] == "2099-11-02T02:01:50.001000Z"
    assert reply["threshold"] == {"burst_votes": 8, "burst_minutes": 5}
    assert "8 or more votes from one network within 5 minutes" in reply["evidence"]
    assert reply["vote_ids"] == sorted(f"v{n}" for n in range(12))


def test_votes_spread_out_or_too_few_are_no_burst():
    spread = [seen(n, T0 + timedelta(minutes=2 * n)) for n in range(30)]   # 3 per 5 minutes
    few = [seen(n, T0 + timedelta(seconds=n), net="192.0.2.0/24") for n in range(7)]
    assert suspicion.network_burst(spread + few, SETTINGS) == []


def test_two_bursts_of_one_network_are_two_findings_and_mixed_candidates_name_none():
    first = [seen(n, T0 + timedelta(seconds=n), candidate="ab"[n % 2]) for n in range(8)]
    second = [seen(50 + n, T0 + timedelta(hours=1, seconds=n)) for n in range(9)]
    found = suspicion.network_burst(first + second, SETTINGS)
    assert sorted((f.votes, f.candidate_id) for f in found) == [(8, None), (9, "a")]


def test_an_hour_far_above_the_candidates_own_pattern_is_flagged():
    steady = [seen(n, T0 + timedelta(hours=h, minutes=m), net=f"198.51.{n % 200}.0/24")
              for n, (h, m) in enumerate((h, m) for h in range(10) for m in (5, 25, 45))]
    spike = [seen(1000 + n, T0 + timedelta(hours=10, seconds=30 * n), net=f"10.{n}.0.0/24")
             for n in range(40)]
    [finding] = suspicion.candidate_hour_spike(steady + spike, SETTINGS)
    assert (finding.votes, finding.candidate_id, finding.start) == (40, "a",
                                                                   T0 + timedelta(hours=10))
    assert finding.end - finding.start == timedelta(hours=1)
    assert "against 3.0 votes in an average hour of its other 10 hours" in finding.evidence
    # A candidate popular all along has no spike.
    busy = [seen(n, T0 + timedelta(hours=n // 40, seconds=n)) for n in range(400)]
    assert suspicion.candidate_hour_spike(busy, SETTINGS) == []


def test_many_voters_behind_one_user_agent_and_network():
    farm = [seen(n, T0 + timedelta(seconds=20 * n), agent="FarmPhone/1.0") for n in range(6)]
    one_person = [seen(10 + n, T0 + timedelta(seconds=n), agent="Solo/2", voter="same")
                  for n in range(10)]
    [finding] = suspicion.shared_user_agent(farm + one_person, SETTINGS)
    assert finding.votes == 6 and "6 different voters" in finding.evidence
    assert "FarmPhone/1.0" in finding.evidence and "void these by vote_ids" in finding.evidence


times = st.integers(min_value=0, max_value=5400).map(lambda s: T0 + timedelta(seconds=s))
votes_strategy = st.lists(st.tuples(times, st.sampled_from("ab"),
                                    st.sampled_from(["203.0.113.0/24", "198.51.100.0/24"])),
                          max_size=80).map(lambda rows: [
    seen(n, at, candidate, net) for n, (at, candidate, net) in enumerate(rows)])


def matches(vote, finding):
    return ((finding.candidate_id is None or vote.candidate_id == finding.candidate_id)
            and (finding.network is None or vote.ip_net == finding.network)
            and finding.start <= vote.cast_at < finding.end)


@settings(max_examples=150, deadline=None)
@given(votes_strategy)
def test_a_findings_selector_takes_exactly_the_votes_it_counts(votes):
    """What an admin copies from a finding into ``votes void`` voids what the finding counted."""
    for rule in ("network_burst", "candidate_hour_spike"):
        counted = set()
        for finding in RULES[rule](votes, SETTINGS):
            taken = {vote.vote_id for vote in votes if matches(vote, finding)}
            assert taken == set(finding.vote_ids) and finding.votes == len(taken)
            assert not counted & taken   # no vote in two findings of one rule
            counted |= taken


@settings(max_examples=100, deadline=None)
@given(votes_strategy)
def test_every_burst_finding_holds_a_window_over_the_threshold(votes):
    window = timedelta(minutes=SETTINGS.burst_minutes)
    for finding in suspicion.network_burst(votes, SETTINGS):
        times_ = sorted(v.cast_at for v in votes if v.vote_id in set(finding.vote_ids))
        assert any(sum(1 for t in times_ if start <= t <= start + window)
                   >= SETTINGS.burst_votes for start in times_)


def test_thresholds_are_campaign_settings_with_defaults():
    default = SuspicionSettings.of(Campaign(campaign_document()))
    assert (default.burst_votes, default.burst_minutes) == (50, 10)
    voting = dict(campaign_document()["voting"], suspicion={"burst_votes": 20,
                                                            "rules": ["network_burst"]})
    custom = SuspicionSettings.of(Campaign(campaign_document(voting=voting)))
    assert (custom.burst_votes, custom.burst_minutes, custom.rules) == (20, 10,
                                                                       ("network_burst",))


@pytest.mark.parametrize("suspicion_, field", [
    ({"burst_votes": 1}, "voting.suspicion.burst_votes"),
    ({"rules": ["psychic"]}, "voting.suspicion.rules"),
    ({"agent_minutes": 0}, "voting.suspicion.agent_minutes"),
    ({"sixth_sense": 1}, "voting.suspicion.sixth_sense"),
])
def test_bad_thresholds_are_refused_when_the_campaign_is_loaded(suspicion_, field):
    voting = dict(campaign_document()["voting"], suspicion=suspicion_)
    with pytest.raises(ValidationError) as refused:
        campaign_document(voting=voting)
    assert field in refused.value.messages


# --- the void rules ---------------------------------------------------------------------------

def test_a_network_selector_takes_the_kept_networks_inside_it():
    assert voiding.in_network("203.0.113.0/24", "203.0.0.0/16")
    assert voiding.in_network("203.0.113.0/24", "203.0.113.0/24")
    assert not voiding.in_network("203.0.114.0/24", "203.0.113.0/24")
    assert not voiding.in_network("2001:db8:1::/48", "203.0.0.0/8")
    assert voiding.in_network("2001:db8:1::/48", "2001:db8::/32")


def test_the_same_selector_in_another_order_is_the_same_void():
    a = voiding.selector_key("cb", {"vote_ids": ["b", "a", "a"]})
    assert a == voiding.selector_key("cb", {"vote_ids": ["a", "b"]})
    assert a != voiding.selector_key("cb2", {"vote_ids": ["a", "b"]})
    t = datetime(2099, 1, 1, tzinfo=timezone.utc)
    assert voiding.selector_key("cb", {"network": "1.2.3.0/24", "from": t}) == \
        voiding.selector_key("cb", {"from": t, "network": "1.2.3.0/24"})


def test_counts_are_per_candidate_category_and_local_day():
    records = [{"candidate_id": c, "category": "learning_star", "day": d}
               for c, d in (("a", "2099-11-02"), ("a", "2099-11-02"), ("a", "2099-11-03"),
                            ("b", "2099-11-02"))]
    assert voiding.counts_of(records) == [
        {"candidate_id": "a", "category": "learning_star", "day": "2099-11-02", "votes": 2},
        {"candidate_id": "a", "category": "learning_star", "day": "2099-11-03", "votes": 1},
        {"candidate_id": "b", "category": "learning_star", "day": "2099-11-02", "votes": 1}]
