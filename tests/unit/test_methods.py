"""Panel methods (mean, trimmed_mean, z_score) and vote normalisation (top_100, min_max, share)."""
import math

import pytest

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.aggregation.normalisation import min_max, share, top_100
from services.scoring.methods import mean, trimmed_mean, z_score

FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
METHODS = [mean, trimmed_mean, z_score]
NORMALISATIONS = [top_100, min_max, share]


def approx_dict(expected, **kwargs):
    return {key: pytest.approx(value, **kwargs) for key, value in expected.items()}


# --- panel methods by hand ----------------------------------------------------------------

def test_mean_by_hand():
    scores = {"j1": {"a": 80, "b": 60}, "j2": {"a": 90, "b": 70}, "j3": {"a": 70}}
    assert mean(scores) == {"a": 80.0, "b": 65.0}


def test_mean_skips_recused_judges():
    scores = {"j1": {"a": 90}, "j2": {"b": 40}, "j3": {"a": 60, "b": 50}}
    assert mean(scores) == {"a": 75.0, "b": 45.0}


def test_no_scores_no_results():
    for method in METHODS:
        assert method({}) == {}
        assert method({"j1": {}}) == {}


def test_trimmed_mean_drops_highest_and_lowest_with_five_judges():
    scores = {f"j{i}": {"a": value} for i, value in enumerate([10, 20, 30, 40, 100])}
    assert trimmed_mean(scores, options={"trim_min_judges": 5}) == {"a": 30.0}
    assert trimmed_mean(scores) == {"a": 30.0}  # default: 5


def test_trimmed_mean_keeps_all_below_the_minimum():
    scores = {f"j{i}": {"a": value} for i, value in enumerate([10, 20, 30, 100])}
    assert trimmed_mean(scores, options={"trim_min_judges": 5}) == {"a": 40.0}


def test_trimmed_mean_drops_only_one_of_tied_extremes():
    scores = {f"j{i}": {"a": value} for i, value in enumerate([10, 10, 50, 90, 90])}
    assert trimmed_mean(scores, options={"trim_min_judges": 5}) == {"a": pytest.approx(50.0)}
    scores = {f"j{i}": {"a": value} for i, value in enumerate([10, 10, 10, 40, 100])}
    assert trimmed_mean(scores, options={"trim_min_judges": 5}) == {"a": 20.0}


def test_trimmed_mean_counts_judges_per_candidate():
    scores = {"j1": {"a": 10, "b": 10}, "j2": {"a": 20, "b": 20}, "j3": {"a": 90}}
    assert trimmed_mean(scores, options={"trim_min_judges": 3}) == {"a": 20.0, "b": 15.0}


def test_z_score_by_hand():
    # j1 and j2 rank a > c > b with the same spread; j2 is 30 points harsher.
    scores = {"j1": {"a": 90, "b": 70, "c": 80}, "j2": {"a": 60, "b": 40, "c": 50}}
    z = 10 / math.sqrt(200 / 3)  # (90 - 80) / pstdev([90, 70, 80])
    assert z_score(scores) == approx_dict({"a": 50 + z / 3 * 50, "b": 50 - z / 3 * 50, "c": 50})
    assert z_score(scores)["a"] == pytest.approx(70.4124145)


def test_z_score_equal_scores_contribute_the_middle():
    scores = {"j1": {"a": 70, "b": 70}, "j2": {"a": 99}}
    assert z_score(scores) == {"a": 50.0, "b": 50.0}


def test_z_score_maps_onto_the_given_range():
    scores = {"j1": {"a": 9, "b": 1}}  # z = +1 / -1
    assert z_score(scores, score_range=(0, 10)) == approx_dict({"a": 5 + 5 / 3, "b": 5 - 5 / 3})


def test_z_score_is_clamped_to_the_range():
    scores = {"j1": {f"c{i}": 0 for i in range(99)} | {"top": 100}}  # z of top = sqrt(99)
    result = z_score(scores)
    assert result["top"] == 100
    assert min(result.values()) >= 0


# --- panel properties ---------------------------------------------------------------------
# Permutation, bounds, shift invariance and trimming are in tests/unit/test_scoring_methods.py;
# here only what that file does not state: a judge who spreads scores wider changes nothing.

score = st.floats(min_value=0, max_value=100, allow_nan=False)
candidates = st.lists(st.sampled_from([f"c{i}" for i in range(6)]), min_size=1, max_size=6,
                      unique=True)


@st.composite
def panels(draw, value=score, min_judges=1, max_judges=7):
    """``{judge: {candidate: total}}``, judges scoring possibly different candidates."""
    names = draw(candidates)
    judges = draw(st.integers(min_value=min_judges, max_value=max_judges))
    result = {}
    for j in range(judges):
        scored = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        result[f"j{j}"] = {cid: draw(value) for cid in scored}
    return result


@FAST
@given(scores=panels(value=st.integers(1, 50), min_judges=2), factor=st.integers(2, 3))
def test_z_score_ignores_a_judge_who_spreads_scores_wider(scores, factor):
    judge = sorted(scores)[0]
    stretched = dict(scores, **{judge: {cid: v * factor for cid, v in scores[judge].items()}})
    assert z_score(stretched) == approx_dict(z_score(scores), abs=1e-9)


# --- normalisation by hand ----------------------------------------------------------------

def test_top_100_by_hand():
    assert top_100({"a": 50, "b": 25, "c": 0}) == {"a": 100.0, "b": 50.0, "c": 0.0}
    assert top_100({"a": 3, "b": 1}) == approx_dict({"a": 100, "b": 100 / 3})


def test_min_max_by_hand():
    assert min_max({"a": 50, "b": 30, "c": 10}) == {"a": 100.0, "b": 50.0, "c": 0.0}
    assert min_max({"a": 7, "b": 7}) == {"a": 100.0, "b": 100.0}


def test_share_by_hand():
    assert share({"a": 50, "b": 30, "c": 20}) == {"a": 50.0, "b": 30.0, "c": 20.0}
    assert share({"a": 1, "b": 2}) == approx_dict({"a": 100 / 3, "b": 200 / 3})


def test_no_votes_at_all():
    assert top_100({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}
    assert share({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}
    for normalise in NORMALISATIONS:
        assert normalise({}) == {}


# --- normalisation properties -------------------------------------------------------------

votes = st.dictionaries(st.sampled_from([f"c{i}" for i in range(20)]),
                        st.integers(min_value=0, max_value=10**7), min_size=1)


@FAST
@given(counts=votes, normalise=st.sampled_from(NORMALISATIONS))
def test_normalised_scores_are_within_0_and_100(counts, normalise):
    result = normalise(counts)
    assert set(result) == set(counts)
    for value in result.values():
        assert 0 <= value <= 100


@FAST
@given(counts=votes)
def test_top_candidate_gets_100_and_order_is_kept(counts):
    assume(max(counts.values()) > 0)
    result = top_100(counts)
    leader = max(counts, key=counts.get)
    assert result[leader] == 100.0
    for a in counts:
        for b in counts:
            if counts[a] > counts[b]:
                assert result[a] > result[b]


@FAST
@given(counts=votes)
def test_min_max_spans_0_to_100(counts):
    assume(len(set(counts.values())) > 1)
    result = min_max(counts)
    assert max(result.values()) == 100.0
    assert min(result.values()) == 0.0


@FAST
@given(counts=votes)
def test_shares_add_up_to_100(counts):
    assume(sum(counts.values()) > 0)
    assert sum(share(counts).values()) == pytest.approx(100)


@FAST
@given(counts=votes, factor=st.integers(1, 1000))
def test_normalisation_ignores_scale(counts, factor):
    scaled = {cid: n * factor for cid, n in counts.items()}
    for normalise in NORMALISATIONS:
        assert normalise(scaled) == approx_dict(normalise(counts))
