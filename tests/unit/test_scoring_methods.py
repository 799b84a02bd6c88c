"""The panel methods (mean, trimmed_mean, z_score): a worked example by hand, and properties."""
import os
import random

import pytest

# trio (a selenium dependency) registers a hypothesis entry point that cannot import on eventlet.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from services.scoring.methods import mean, trimmed_mean, z_score  # noqa: E402
from shared import plugins  # noqa: E402

FAST = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
METHODS = {"mean": mean, "trimmed_mean": trimmed_mean, "z_score": z_score}

# --- the worked example ---------------------------------------------------------------------
# Seven judges, five candidates A–E, totals on 0–100. J7 is from B's unit and recused from B;
# J6 is the extreme one: far harsher than the others (totals 15–45).
WORKED_EXAMPLE = {
    "J1": {"A": 86, "B": 82, "C": 80, "D": 78, "E": 74},
    "J2": {"A": 92, "B": 82, "C": 82, "D": 82, "E": 82},
    "J3": {"A": 82, "B": 84, "C": 81, "D": 78, "E": 80},
    "J4": {"A": 81, "B": 77, "C": 75, "D": 69, "E": 73},
    "J5": {"A": 82, "B": 82, "C": 82, "D": 82, "E": 72},
    "J6": {"A": 45, "B": 35, "C": 30, "D": 25, "E": 15},
    "J7": {"A": 95, "C": 77, "D": 77, "E": 71},
}
#: Computed by hand (the working is below), rounded to 4 decimals as the service stores them.
#:
#: mean: A (86+92+82+81+82+45+95)/7 = 563/7; B (82+82+84+77+82+35)/6 = 442/6 (J7 recused);
#:   C 507/7; D 491/7; E 467/7.
#: trimmed_mean (trim_min_judges 5: every candidate has 6 or 7 judges, drop one highest and one
#:   lowest; J6 is the lowest everywhere): A drops 45, 95 -> 423/5 = 84.6; B drops 35, 84 ->
#:   323/4 = 80.75; C drops 30, 82 -> 395/5 = 79; D drops 25, 82 -> 384/5 = 76.8;
#:   E drops 15, 82 -> 370/5 = 74.
#: z_score: each judge's mean and population standard deviation over what they scored:
#:   J1 mean 80 sd 4 -> z A 1.5, B .5, C 0, D -.5, E -1.5
#:   J2 mean 84 sd 4 -> z A 2, B C D E -.5
#:   J3 mean 81 sd 2 -> z A .5, B 1.5, C 0, D -1.5, E -.5
#:   J4 mean 75 sd 4 -> z A 1.5, B .5, C 0, D -1.5, E -.5
#:   J5 mean 80 sd 4 -> z A B C D .5, E -2
#:   J6 mean 30 sd 10 -> z A 1.5, B .5, C 0, D -.5, E -1.5   (as harsh as it is, it ranks alike)
#:   J7 (A C D E) mean 80 sd 9 -> z A 5/3, C -1/3, D -1/3, E -1
#:   mean z: A (7.5 + 5/3)/7 = 55/42; B 3/6 = 1/2; C (-1/3)/7 = -1/21; D (-4 - 1/3)/7 = -13/21;
#:   E -7.5/7 = -15/14; panel score = 50 + mean z / 3 * 50:
#:   A 50 + 2750/126 = 71.8254; B 50 + 25/3 = 58.3333; C 50 - 50/63 = 49.2063;
#:   D 50 - 650/63 = 39.6825; E 50 - 750/42 = 32.1429.
WORKED_RESULTS = {
    "mean": {"A": 80.4286, "B": 73.6667, "C": 72.4286, "D": 70.1429, "E": 66.7143},
    "trimmed_mean": {"A": 84.6, "B": 80.75, "C": 79.0, "D": 76.8, "E": 74.0},
    "z_score": {"A": 71.8254, "B": 58.3333, "C": 49.2063, "D": 39.6825, "E": 32.1429},
}
WORKED_OPTIONS = {"trim_min_judges": 5}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_the_worked_example_by_hand(name):
    result = METHODS[name](WORKED_EXAMPLE, (0, 100), WORKED_OPTIONS)
    assert {cid: round(value, 4) for cid, value in result.items()} == WORKED_RESULTS[name]


def test_the_worked_example_through_the_plugin_registry():
    for name, expected in WORKED_RESULTS.items():
        method = plugins.load_plugin(plugins.PANEL_METHODS, name)
        result = method(WORKED_EXAMPLE, (0, 100), WORKED_OPTIONS)
        assert result == {cid: pytest.approx(value, abs=5e-5) for cid, value in expected.items()}


def test_the_extreme_judge_moves_the_mean_but_not_the_others():
    without_j6 = {judge: row for judge, row in WORKED_EXAMPLE.items() if judge != "J6"}
    # Mean: the harsh judge pulls every candidate down by a lot.
    assert mean(without_j6)["A"] - mean(WORKED_EXAMPLE)["A"] > 5
    # z-score: a harsh judge whose ranking agrees changes nothing when made lenient.
    lenient = dict(WORKED_EXAMPLE, J6={cid: v + 50 for cid, v in WORKED_EXAMPLE["J6"].items()})
    assert z_score(lenient) == pytest.approx(z_score(WORKED_EXAMPLE))


# --- fixes to the methods as first written --------------------------------------------------

def test_trimmed_mean_never_trims_two_scores_to_nothing():
    # The campaign schema refuses trim_min_judges < 3, but the plugin is a public function.
    scores = {"j1": {"a": 10}, "j2": {"a": 30}}
    assert trimmed_mean(scores, (0, 100), {"trim_min_judges": 2}) == {"a": 20.0}
    assert trimmed_mean(scores, (0, 100), {"trim_min_judges": None}) == {"a": 20.0}


def test_z_score_ignores_floating_point_noise_in_a_judges_totals():
    # 0.3 * 60 + 0.7 * 61 is 60.7 to a person, 60.699999999999996 to a float.
    noisy = 0.3 * 60 + (1 - 0.3) * 61
    assert noisy != 60.7
    result = z_score({"j1": {"a": noisy, "b": 60.7}, "j2": {"a": 90, "b": 60}})
    # j1 has no preference (z 0 for both); j2 prefers a (z +1 / -1).
    assert result == pytest.approx({"a": 50 + 50 / 6, "b": 50 - 50 / 6})


# --- properties -----------------------------------------------------------------------------

total = st.floats(min_value=0, max_value=100, allow_nan=False, allow_infinity=False)


@st.composite
def panels(draw, value=total, min_judges=1, max_judges=7):
    """``{judge: {candidate: total}}``; judges may skip candidates (recusal)."""
    names = draw(st.lists(st.sampled_from([f"c{i}" for i in range(6)]), min_size=1,
                          max_size=6, unique=True))
    result = {}
    for j in range(draw(st.integers(min_judges, max_judges))):
        scored = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        result[f"j{j}"] = {cid: draw(value) for cid in scored}
    return result


def shuffled(scores, seed):
    """The same panel with judges and each judge's candidates in another order."""
    rng = random.Random(seed)
    judges = list(scores)
    rng.shuffle(judges)
    out = {}
    for judge in judges:
        items = list(scores[judge].items())
        rng.shuffle(items)
        out[judge] = dict(items)
    return out


@FAST
@given(scores=panels(), seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(METHODS)),
       trim=st.integers(3, 7))
def test_permutation_invariance(scores, seed, name, trim):
    method = METHODS[name]
    options = {"trim_min_judges": trim}
    # Exactly equal: every sum is exactly rounded, so order cannot leak into the last bit.
    assert method(shuffled(scores, seed), (0, 100), options) == method(scores, (0, 100), options)


@FAST
@given(scores=panels(), seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(METHODS)))
def test_judge_names_do_not_matter(scores, seed, name):
    rng = random.Random(seed)
    names = [f"judge-{rng.random()}" for _ in scores]
    renamed = dict(zip(names, scores.values()))
    assert METHODS[name](renamed) == METHODS[name](scores)


@FAST
@given(scores=panels(), name=st.sampled_from(sorted(METHODS)), trim=st.integers(3, 7))
def test_bounds(scores, name, trim):
    result = METHODS[name](scores, (0, 100), {"trim_min_judges": trim})
    assert set(result) == {cid for row in scores.values() for cid in row}
    for cid, value in result.items():
        assert 0 <= value <= 100
        if name != "z_score":  # an average of the judges' totals lies between them
            given_ = [row[cid] for row in scores.values() if cid in row]
            assert min(given_) - 1e-9 <= value <= max(given_) + 1e-9


@FAST
@given(scores=panels(value=st.integers(0, 10)), low=st.integers(-50, 50),
       span=st.integers(1, 100))
def test_z_score_bounds_in_any_range(scores, low, span):
    for value in z_score(scores, (low, low + span)).values():
        assert low <= value <= low + span


@FAST
@given(scores=panels(value=st.integers(0, 100), min_judges=2), shift=st.integers(-100, 100),
       which=st.integers(0, 6))
def test_z_score_shift_invariance(scores, shift, which):
    judge = sorted(scores)[which % len(scores)]
    shifted = dict(scores, **{judge: {cid: v + shift for cid, v in scores[judge].items()}})
    assert z_score(shifted) == pytest.approx(z_score(scores), abs=1e-9)


@FAST
@given(scores=panels(value=st.integers(0, 100)), shift=st.integers(1, 30))
def test_mean_is_not_shift_invariant(scores, shift):
    """Why z_score exists: a lenient judge moves the mean by their share of the shift."""
    judge = sorted(scores)[0]
    shifted = dict(scores, **{judge: {cid: v + shift for cid, v in scores[judge].items()}})
    before, after = mean(scores), mean(shifted)
    for cid in scores[judge]:
        judges = sum(1 for row in scores.values() if cid in row)
        assert after[cid] == pytest.approx(before[cid] + shift / judges)


@FAST
@given(values=st.lists(total, min_size=1, max_size=9), trim=st.integers(3, 7))
def test_trimmed_mean_trims_exactly_when_enough_judges(values, trim):
    scores = {f"j{i}": {"a": v} for i, v in enumerate(values)}
    result = trimmed_mean(scores, (0, 100), {"trim_min_judges": trim})["a"]
    ordered = sorted(values)
    kept = ordered[1:-1] if len(values) >= trim else ordered
    assert result == pytest.approx(sum(kept) / len(kept))
