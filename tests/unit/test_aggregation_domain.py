"""Aggregation's rules without I/O: composite, ranking, seats, promotion, the inputs hash."""
import copy
import hashlib
import json
import os
import random

import pytest

os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from services.aggregation import domain  # noqa: E402
from services.aggregation.normalisation import min_max, share, top_100  # noqa: E402
from shared.campaign import ORG_TYPES, Campaign, validate_campaign  # noqa: E402
from shared.errors import InvalidState, ValidationError  # noqa: E402
from tests.aggregation_cases import (DISQUALIFIED_AFTER_PUBLISH, FORTY,  # noqa: E402
                                     PROMOTED_BY_HAND, SELECTED_BY_HAND, candidate_facts,
                                     forty_live)
from tests.conftest import OPEN_CAMPAIGN, at, campaign_document  # noqa: E402

FAST = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
CATEGORY = "advanced_unit"


def campaign(**overrides):
    return Campaign(campaign_document(**overrides))


def seats_by_pool(rows):
    pools = {}
    for row in rows:
        if row["status"] == domain.SELECTED:
            pools.setdefault(row["pool"], []).append(row["candidate_id"])
    return {pool: sorted(ids) for pool, ids in pools.items()}


def publish_and_disqualify(c, live, disqualified):
    """Rank at publication, then disqualify ``disqualified`` and fill the seats again."""
    rows, _ = domain.standings(c, live, CATEGORY)
    published = [dict(row, status=None, pool=None) for row in rows]
    after = copy.deepcopy(live)
    for cid in disqualified:
        after["candidates"][cid]["status"] = domain.DISQUALIFIED
    ids = {row["candidate_id"] for row in published if row["candidate_status"] == "accepted"}
    _, excluded = domain.split_disqualified(after, ids)
    revised = domain.published_standings(c, {CATEGORY: published}, excluded)
    return rows, revised[CATEGORY][0], excluded


# --- the 40 candidates, by hand -------------------------------------------------------------

def test_forty_candidates_composites_are_those_computed_by_hand():
    rows, shortfalls = domain.standings(campaign(), forty_live(), CATEGORY)
    by_id = {row["candidate_id"]: row for row in rows}
    for cid, _, votes, panel, composite, _ in FORTY:
        assert by_id[cid]["votes"] == votes
        assert by_id[cid]["composite"] == composite
        assert by_id[cid]["vote_score"] == votes / 20
    assert shortfalls == []


def test_forty_candidates_selected_list_is_the_one_computed_by_hand():
    rows, _ = domain.standings(campaign(), forty_live(), CATEGORY)
    assert seats_by_pool(rows) == {pool: sorted(ids) for pool, ids in SELECTED_BY_HAND.items()}
    assert len([row for row in rows if row["status"] == "selected"]) == 20
    by_id = {row["candidate_id"]: row for row in rows}
    # The tie rule at work: panel score (A08 over A09), then earlier submission (R09 over R08,
    # A02 over S01).
    assert by_id["A08"]["rank"] < by_id["A09"]["rank"]
    assert by_id["R09"]["rank"] < by_id["R08"]["rank"]
    assert (by_id["A02"]["rank"], by_id["S01"]["rank"]) == (2, 3)
    assert by_id["A01"]["rank"] == 1
    # A candidate without a panel score is not ranked and cannot be selected.
    assert by_id["A14"]["rank"] is None and by_id["A14"]["status"] == "reserve"
    # S03 (74) is a better composite than several selected, but school has 2 seats.
    assert by_id["S03"]["status"] == "reserve"
    assert by_id["S03"]["composite"] > by_id["A08"]["composite"]


def test_disqualification_after_publish_promotes_the_next_of_the_same_sub_pool():
    c = campaign()
    before, after, excluded = publish_and_disqualify(c, forty_live(), [DISQUALIFIED_AFTER_PUBLISH])
    assert excluded == [DISQUALIFIED_AFTER_PUBLISH]
    expected = {pool: sorted(ids) for pool, ids in SELECTED_BY_HAND.items()}
    expected["agency"] = sorted(set(expected["agency"]) - {"A03"} | {PROMOTED_BY_HAND})
    assert seats_by_pool(after) == expected
    by_id = {row["candidate_id"]: row for row in after}
    assert by_id["A03"]["status"] == "disqualified"
    # Not the best reserve overall (S03, 74; R08, 72): the next agency, A09 (62).
    assert by_id["S03"]["status"] == by_id["R08"]["status"] == "reserve"
    # The published ranking stands: nobody else moves.
    assert [r["rank"] for r in after] == [r["rank"] for r in before]
    changes = domain.seat_changes(domain.seats_of({CATEGORY: (before, [])}),
                                  domain.seats_of({CATEGORY: (after, [])}))
    assert changes == {CATEGORY: {"removed": [{"candidate_id": "A03", "pool": "agency"}],
                                  "promoted": [{"candidate_id": "A09", "pool": "agency"}]}}


def test_a_second_disqualification_follows_the_tie_rule_in_its_own_pool():
    _, after, _ = publish_and_disqualify(campaign(), forty_live(), ["A03", "R09"])
    selected = seats_by_pool(after)
    assert "R08" in selected["rural"] and "A09" in selected["agency"]
    assert sum(len(ids) for ids in selected.values()) == 20


def test_disqualifying_a_reserve_changes_no_seat():
    before, after, _ = publish_and_disqualify(campaign(), forty_live(), ["S03"])
    assert seats_by_pool(before) == seats_by_pool(after)


def test_a_pool_that_runs_out_reports_a_shortfall_and_stays_short():
    live = forty_live()
    _, after, _ = publish_and_disqualify(campaign(), live, ["E01", "E02"])
    rows, shortfalls = domain.apply_selection(after, campaign().category(CATEGORY),
                                              ["E01", "E02"], CATEGORY)
    assert shortfalls == [{"category": CATEGORY, "pool": "enterprise", "slots": 1, "filled": 0,
                           "missing": 1}]
    assert len([row for row in rows if row["status"] == "selected"]) == 19


# --- seats ------------------------------------------------------------------------------------

def row(cid, composite, panel=50.0, org_type=None, minute=0, category=CATEGORY):
    return {"candidate_id": cid, "category": category, "org_type": org_type,
            "composite": composite, "panel_score": panel, "rank": 1, "candidate_status": "accepted",
            "submitted_at": f"2099-10-10T01:{minute:02d}:00.000000Z"}


def test_a_sub_pool_with_fewer_candidates_than_slots_is_reported_not_filled_from_others():
    rules = {"award_slots": 4, "org_type_slots": {"school": 2, "rural": 2}}
    rows = [row("s1", 90, org_type="school"), row("r1", 80, org_type="rural"),
            row("r2", 70, org_type="rural"), row("r3", 60, org_type="rural")]
    seats, shortfalls = domain.select(rows, rules)
    assert seats == {"s1": "school", "r1": "rural", "r2": "rural"}
    assert shortfalls == [{"category": CATEGORY, "pool": "school", "slots": 2, "filled": 1,
                           "missing": 1}]


def test_award_slots_beyond_the_org_type_slots_form_an_open_pool():
    rules = {"award_slots": 3, "org_type_slots": {"school": 1}}
    rows = [row("r1", 95, org_type="rural"), row("s1", 90, org_type="school"),
            row("s2", 85, org_type="school"), row("a1", 80, org_type="agency")]
    seats, shortfalls = domain.select(rows, rules)
    assert seats == {"s1": "school", "r1": "open", "s2": "open"}
    assert shortfalls == []
    assert [p.name for p in domain.seat_pools(rules)] == ["school", "open"]


def test_a_category_without_org_types_is_one_pool():
    rules = {"award_slots": 2}
    rows = [row("a", 90, category="learning_star"), row("b", 80, category="learning_star"),
            row("c", 70, category="learning_star")]
    seats, _ = domain.select(rows, rules)
    assert seats == {"a": "open", "b": "open"}


def test_the_tie_rule_composite_then_panel_then_submission_then_id():
    rows = [row("d", 80, panel=70, minute=1), row("c", 80, panel=70, minute=1),
            row("b", 80, panel=70, minute=0), row("a", 80, panel=75, minute=9),
            row("e", 81, panel=10, minute=59)]
    ordered = [r["candidate_id"] for r in sorted(rows, key=domain.tie_rule_key)]
    assert ordered == ["e", "a", "b", "c", "d"]


def test_composites_equal_up_to_float_noise_are_a_tie():
    c = campaign()
    w_public, w_panel = domain.weights(c)
    # 0.3 × 20 + 0.7 × 80 and 0.3 × 90 + 0.7 × 50 are both 62 on paper.
    assert domain.composite(w_public, w_panel, 20.0, 80.0) == domain.composite(
        w_public, w_panel, 90.0, 50.0) == 62.0


def learning_stars(votes_and_panels, **campaign_keys):
    """A learning-star category: ``{cid: (votes, panel score, submission minute)}``."""
    live = {"candidates": {}, "votes": {}, "judge_scores": {},
            "panels": {"learning_star": {"closed": True, "closed_key": "9", "panel_scores": {}}}}
    for cid, (votes, panel, minute) in votes_and_panels.items():
        live["candidates"][cid] = candidate_facts(cid, None, minute, category="learning_star")
        live["votes"][cid] = votes
        live["panels"]["learning_star"]["panel_scores"][cid] = panel
    rows, _ = domain.standings(campaign(**campaign_keys), live, "learning_star")
    return {row["candidate_id"]: row for row in rows}, [row["candidate_id"] for row in rows]


@pytest.mark.parametrize("digits", [6, 2])
def test_composites_equal_on_paper_are_a_tie_decided_by_the_panel_score(digits):
    # 0.3 × 21/256 × 100 + 0.7 × 46.7525 and 0.3 × 189/256 × 100 + 0.7 × 18.6275 are both
    # 35.1876875; in floating point they round to 35.187687 and 35.187688.
    rows, order = learning_stars({"top": (256, 0.0, 0), "a": (21, 46.7525, 5),
                                  "b": (189, 18.6275, 1)}, results={"precision": digits})
    assert rows["a"]["composite"] == rows["b"]["composite"] == (
        35.187688 if digits == 6 else 35.19)
    assert order.index("a") < order.index("b")  # the higher panel score, as the tie rule says
    assert rows["a"]["tie_break"] == rows["b"]["tie_break"] == "panel_score"


def test_two_rows_shown_as_80_00_do_not_rank_apart_without_saying_why():
    # Exactly 80.00401 and 80.00100: both are 80.00 as published, so the composite does not
    # separate them; the panel scores (71.4343 and 71.43) are 71.43 as published either, so the
    # earlier submission ranks first although its unrounded composite is the lower one.
    rows, order = learning_stars({"late": (500, 71.4343, 9), "early": (500, 71.43, 2),
                                  "third": (250, 60.0, 0)})
    assert rows["late"]["composite"] == rows["early"]["composite"] == 80.0
    assert rows["late"]["panel_score"] == rows["early"]["panel_score"] == 71.43
    assert order[:2] == ["early", "late"]
    assert rows["early"]["tie_break"] == rows["late"]["tie_break"] == "submitted_at"
    assert rows["third"]["tie_break"] is None  # 0.3 × 50 + 0.7 × 60 = 57.00: no tie


def test_the_candidate_id_settles_what_nothing_else_does():
    rows, order = learning_stars({"s2": (100, 80.0, 3), "s1": (100, 80.0, 3)})
    assert order == ["s1", "s2"] and rows["s1"]["tie_break"] == "candidate_id"


def test_published_scores_round_half_up():
    assert str(domain.at_precision(domain.exact(2.675), 2)) == "2.68"  # the float is 2.67499…
    assert str(domain.at_precision(domain.exact(0.125), 2)) == "0.13"
    assert str(domain.at_precision(domain.exact(80), 2)) == "80.00"
    assert str(domain.at_precision(domain.exact(-1.005), 2)) == "-1.01"
    assert domain.composite(0.3, 0.7, 20.0, 80.0) == 62  # exactly, not 61.99999999999999


def test_the_published_precision_is_a_campaign_setting_with_a_default_of_two():
    assert domain.precision(campaign()) == 2
    assert domain.precision(campaign(results={"precision": 4})) == 4
    for bad in (-1, 7, 2.5, "2"):
        with pytest.raises(ValidationError) as refused:
            campaign(results={"precision": bad})
        assert list(refused.value.messages) == ["results.precision"]


def test_disqualified_before_publication_their_votes_move_nobody():
    c = campaign()
    live = forty_live()
    without, _ = domain.standings(c, live, CATEGORY)
    live["votes"]["A14"] = 10**6  # votes for a candidate who is then disqualified
    live["candidates"]["A14"]["status"] = domain.DISQUALIFIED
    with_votes, _ = domain.standings(c, live, CATEGORY)
    strip = lambda rows: [(r["candidate_id"], r["composite"], r["status"]) for r in rows  # noqa
                          if r["candidate_id"] != "A14"]
    assert strip(with_votes) == strip(without)
    assert {r["candidate_id"]: r["status"] for r in with_votes}["A14"] == "disqualified"


def test_provisional_panel_scores_are_scorings_figures_while_the_panel_is_open():
    c = campaign()
    live = {"candidates": {"a": candidate_facts("a", "agency", 1),
                           "b": candidate_facts("b", "agency", 2)},
            "votes": {"a": 10, "b": 10},
            "criterion_scores": {"a": {"j1": {"deeds": 1.0}}},
            "panels": {CATEGORY: {"closed": False, "panel_scores": {"a": 85.1234, "b": None}}}}
    rows, _ = domain.standings(c, live, CATEGORY)
    assert {r["candidate_id"]: r["panel_score"] for r in rows} == {"a": 85.12, "b": None}


def test_the_newest_provisional_figures_are_those_of_the_highest_panel_version():
    closed_key = domain.order_key("2099-11-21T00:00:00Z", "p")
    panels = {"closed_category": {"closed_key": closed_key}}
    records = [
        {"category": CATEGORY, "panel_version": 2, "panel_scores": {"a": 70.0}},
        {"category": CATEGORY, "panel_version": 4, "panel_scores": {"a": 75.0, "b": None}},
        {"category": CATEGORY, "panel_version": 3, "panel_scores": {"a": 99.0}},
        {"category": CATEGORY, "panel_version": None, "panel_scores": None},  # an older event
        {"category": "closed_category", "panel_version": 9, "panel_scores": {"c": 1.0}},
    ]
    for _ in range(5):
        random.shuffle(records)
        assert domain.provisional_panel_scores(records, panels) == {
            CATEGORY: {"a": 75.0, "b": None}}


def test_current_judge_scores_latest_before_the_close_wins_in_any_order():
    closed_key = domain.order_key("2099-11-21T00:00:00Z", "p")
    panels = {CATEGORY: {"closed": True, "closed_key": closed_key}}
    records = [
        {"candidate_id": "a", "category": CATEGORY, "judge_id": "j1", "total": 70.0,
         "order_key": domain.order_key("2099-11-20T00:00:00Z", "e1")},
        {"candidate_id": "a", "category": CATEGORY, "judge_id": "j1", "total": 75.0,
         "order_key": domain.order_key("2099-11-20T01:00:00Z", "e2")},
        {"candidate_id": "a", "category": CATEGORY, "judge_id": "j1", "total": 99.0,
         "order_key": domain.order_key("2099-11-22T00:00:00Z", "e3")},  # after the close
    ]
    for _ in range(5):
        random.shuffle(records)
        assert domain.current_judge_scores(records, panels) == {"a": {"j1": 75.0}}


def test_order_keys_sort_by_time_whatever_the_iso_form():
    early = domain.order_key("2099-11-20T08:00:00Z", "z")
    later = domain.order_key("2099-11-20T08:00:00.5+00:00", "a")
    assert early < later
    assert domain.canonical_time("2099-11-20T08:00:00Z") == "2099-11-20T08:00:00.000000Z"


# --- campaign weights ------------------------------------------------------------------------

def test_weights_that_do_not_add_up_to_1_are_refused_when_the_campaign_is_loaded():
    document = copy.deepcopy(OPEN_CAMPAIGN)
    document["weights"] = {"public": 0.4, "panel": 0.7}
    with pytest.raises(ValidationError) as refused:
        validate_campaign(document)
    assert "weights" in refused.value.messages


def test_a_campaign_copy_with_bad_weights_is_refused_by_the_rules_too():
    document = campaign_document()
    document["weights"] = {"public": 0.5, "panel": 0.6}  # bypassing the schema
    with pytest.raises(InvalidState):
        domain.weights(Campaign(document))


# --- publication -----------------------------------------------------------------------------

def test_publishing_needs_voting_closed_and_every_panel_closed():
    c = campaign()
    live = forty_live()
    with pytest.raises(InvalidState, match="voting"):
        domain.check_publishable(c, domain.OPEN, at("2099-11-20T11:59:59"), live)
    after_vote = at("2099-11-20T12:00:00")  # 20:00 in Asia/Shanghai
    domain.check_publishable(c, domain.OPEN, after_vote, live)
    live["panels"] = {}
    with pytest.raises(InvalidState, match="panel"):
        domain.check_publishable(c, domain.OPEN, after_vote, live)
    with pytest.raises(InvalidState, match="already"):
        domain.check_publishable(c, domain.PUBLISHED, after_vote, forty_live())
    with pytest.raises(InvalidState, match="does not know"):
        domain.check_publishable(c, domain.OPEN, after_vote, forty_live(), ["nom-x"])
    with pytest.raises(InvalidState):
        domain.check_finalizable(c, domain.OPEN)


# --- the inputs hash -------------------------------------------------------------------------

def test_the_hash_recipe_is_sha256_of_canonical_json():
    c = campaign()
    document = domain.inputs_document(c, forty_live())
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert domain.inputs_hash(document) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert document["rules"]["weights"] == {"public": "0.3", "panel": "0.7"}
    assert document["rules"]["precision"] == 2 and document["rules"]["rounding"] == "half_up"
    a01 = document["categories"][CATEGORY]["candidates"]["A01"]
    assert a01 == {"org_type": "agency", "submitted_at": "2099-10-10T01:01:00.000000Z",
                   "votes_by_day": [{"day": None, "counted": 1800, "voided": 0}], "judges": {}}
    assert document["categories"][CATEGORY]["panel"]["panel_scores"]["A01"] == "90"


def test_the_hash_ignores_order_and_sees_every_input():
    c = campaign()
    live = forty_live()
    reference = domain.inputs_hash(domain.inputs_document(c, live))
    shuffled = copy.deepcopy(live)
    items = list(shuffled["candidates"].items())
    random.Random(7).shuffle(items)
    shuffled["candidates"] = dict(items)
    assert domain.inputs_hash(domain.inputs_document(c, shuffled)) == reference
    for change in (lambda l: l["votes"].__setitem__("A01", 1801),
                   lambda l: l["panels"][CATEGORY]["panel_scores"].__setitem__("A02", 90.000001),
                   lambda l: l["candidates"]["A03"].__setitem__("status", "disqualified"),
                   lambda l: l.__setitem__("criterion_scores",
                                           {"A04": {"j9": {"organisation": 1.0}}})):
        changed = copy.deepcopy(live)
        change(changed)
        assert domain.inputs_hash(domain.inputs_document(c, changed)) != reference
    other_method = campaign(vote_normalisation="share")
    assert domain.inputs_hash(domain.inputs_document(other_method, live)) != reference
    assert domain.inputs_hash(domain.inputs_document(campaign(results={"precision": 3}), live)) \
        != reference


def test_a_published_list_can_be_recomputed_from_its_inputs_document():
    c = campaign()
    document = json.loads(domain.canonical_json(domain.inputs_document(c, forty_live())))
    again_campaign, again, _ = domain.live_from_inputs(document)
    ours, _ = domain.standings(c, forty_live(), CATEGORY)
    theirs, _ = domain.standings(again_campaign, again, CATEGORY)
    assert ([(r["candidate_id"], r["composite"], r["status"]) for r in ours]
            == [(r["candidate_id"], r["composite"], r["status"]) for r in theirs])


def test_compare_inputs_names_each_difference():
    c = campaign()
    ours = domain.inputs_document(c, forty_live())
    live = forty_live()
    live["votes"]["A01"] += 1
    del live["candidates"]["R16"]
    differences = domain.compare_inputs(ours, domain.inputs_document(c, live))
    assert any(line.startswith("inputs.categories.advanced_unit.candidates.A01.votes_by_day: ")
               and "'counted': 1800" in line and "'counted': 1801" in line
               for line in differences)
    assert any("R16: only in the incremental state" in line for line in differences)
    assert domain.compare_inputs(ours, ours) == []


# --- from events and records -----------------------------------------------------------------

def test_live_from_records_leaves_out_what_is_not_a_candidate():
    records = [{"id": "a", "category": CATEGORY, "org_type": "agency", "nominee_name": "甲",
                "nominee_unit": "甲", "status": "accepted", "submitted_at": "2099-10-10T01:00:00Z"}]
    counts = domain.count_page({}, [{"candidate_id": "a"}, {"candidate_id": "a"},
                                    {"candidate_id": "ghost"}])
    live = domain.live_from_records(records, counts, {
        "scores": [{"candidate_id": "a", "judge_id": "j1", "total": 80.0, "category": CATEGORY},
                   {"candidate_id": "ghost", "judge_id": "j1", "total": 1.0, "category": CATEGORY}],
        "panels": {CATEGORY: {"closed": False, "panel_scores": {}}}})
    assert live["votes"] == {"a": 2}
    assert set(live["criterion_scores"]) == {"a"}
    assert live["panels"] == {CATEGORY: {"closed": False, "method": None, "panel_scores": {}}}


def test_tally_lists_standing_candidates_by_votes():
    docs = [{"candidate_id": "a", "category": CATEGORY, "votes": 3, "status": "accepted"},
            {"candidate_id": "b", "category": CATEGORY, "votes": 9, "status": "accepted"},
            {"candidate_id": "c", "category": CATEGORY, "votes": 99, "status": "disqualified"},
            {"candidate_id": "d", "category": "learning_star", "votes": 1, "status": "accepted"}]
    assert [r["candidate_id"] for r in domain.tally(docs)] == ["b", "a", "d"]
    assert [r["candidate_id"] for r in domain.tally(docs, "learning_star")] == ["d"]


# --- properties ------------------------------------------------------------------------------

CAMPAIGN = campaign()
ORG_SLOTS = CAMPAIGN.category(CATEGORY)["org_type_slots"]


@st.composite
def fields_of_candidates(draw, min_size=1, max_size=40):
    """A live mapping of advanced-unit candidates with arbitrary votes and panel scores."""
    n = draw(st.integers(min_size, max_size))
    live = {"candidates": {}, "votes": {}, "judge_scores": {},
            "panels": {CATEGORY: {"closed": True, "closed_key": "9", "panel_scores": {}}}}
    for i in range(n):
        cid = f"c{i:02d}"
        live["candidates"][cid] = candidate_facts(cid, draw(st.sampled_from(ORG_TYPES)),
                                                  draw(st.integers(0, 50)))
        live["votes"][cid] = draw(st.integers(0, 5000))
        live["panels"][CATEGORY]["panel_scores"][cid] = draw(st.one_of(
            st.none(), st.integers(0, 100).map(float),
            st.floats(0, 100, allow_nan=False, allow_infinity=False)))
    return live


@FAST
@given(live=fields_of_candidates(), seed=st.integers(0, 2**16),
       method=st.sampled_from(["top_100", "min_max", "share"]))
def test_ranking_does_not_depend_on_the_order_candidates_arrive_in(live, seed, method):
    c = campaign(vote_normalisation=method)
    reference, _ = domain.standings(c, live, CATEGORY)
    items = list(live["candidates"].items())
    random.Random(seed).shuffle(items)
    shuffled = dict(live, candidates=dict(items))
    again, _ = domain.standings(c, shuffled, CATEGORY)
    assert again == reference


@FAST
@given(live=fields_of_candidates())
def test_each_pool_takes_its_best_and_says_when_it_is_short(live):
    rows, shortfalls = domain.standings(CAMPAIGN, live, CATEGORY)
    short = {s["pool"]: s for s in shortfalls}
    for org_type in ORG_TYPES:
        ranked = [r for r in rows if r["org_type"] == org_type and r["rank"] is not None]
        slots = ORG_SLOTS.get(org_type, 0)
        chosen = [r for r in ranked if r["status"] == "selected"]
        assert len(chosen) == min(slots, len(ranked))
        # The selected of a pool are exactly its best ranked candidates.
        assert chosen == ranked[:len(chosen)]
        if len(ranked) < slots:
            assert short[org_type]["missing"] == slots - len(ranked)
        else:
            assert org_type not in short
    assert all(r["rank"] is not None for r in rows if r["status"] == "selected")
    composites = [r["composite"] for r in rows if r["rank"] is not None]
    assert composites == sorted(composites, reverse=True)
    for r in rows:
        if r["composite"] is not None:
            assert 0 <= r["composite"] <= 100


@FAST
@given(live=fields_of_candidates(min_size=5), picks=st.lists(st.integers(0, 39), min_size=1,
                                                             max_size=4, unique=True))
def test_disqualifications_after_publication_promote_within_the_pool_in_any_order(live, picks):
    ids = sorted(live["candidates"])
    chosen = sorted({ids[i % len(ids)] for i in picks})
    before, after, excluded = publish_and_disqualify(CAMPAIGN, live, chosen)
    _, reversed_after, _ = publish_and_disqualify(CAMPAIGN, live, list(reversed(chosen)))
    assert after == reversed_after
    pool_before, pool_after = seats_by_pool(before), seats_by_pool(after)
    for org_type in ORG_TYPES:
        gone = set(pool_before.get(org_type, [])) - set(pool_after.get(org_type, []))
        new = set(pool_after.get(org_type, [])) - set(pool_before.get(org_type, []))
        assert gone <= set(chosen)  # only the disqualified leave
        for cid in new:  # and whoever moves up is of the same org type and was next in line
            row = next(r for r in after if r["candidate_id"] == cid)
            assert row["org_type"] == org_type
            better_reserves = [r for r in after if r["org_type"] == org_type
                               and r["status"] == "reserve" and r["rank"] is not None
                               and r["rank"] < row["rank"]]
            assert better_reserves == []
    assert [r["rank"] for r in after] == [r["rank"] for r in before]


@FAST
@given(counts=st.dictionaries(st.sampled_from([f"c{i}" for i in range(12)]),
                              st.integers(0, 10**6), min_size=1),
       seed=st.integers(0, 2**16))
def test_normalisation_is_pure_whatever_the_order(counts, seed):
    items = list(counts.items())
    random.Random(seed).shuffle(items)
    for normalise in (top_100, min_max, share):
        assert normalise(dict(items)) == normalise(counts)


def test_min_max_gives_nothing_for_no_votes_at_all():
    assert min_max({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}
    assert min_max({"a": 5, "b": 5}) == {"a": 100.0, "b": 100.0}


# --- voided votes (票數清零) -------------------------------------------------------------------

def test_a_page_counts_voided_votes_apart_and_the_rebuild_compares_them():
    voided = {}
    counts = domain.count_page({}, [
        {"candidate_id": "a"}, {"candidate_id": "a", "voided": True},
        {"candidate_id": "b", "voided": False}, {"candidate_id": "a", "voided": True}], voided)
    assert counts == {"a": 1, "b": 1} and voided == {"a": 2}
    ours = {"voided": {"a": 2, "b": 0}}
    assert domain.compare_voided(ours, {"voided": {"a": 2}}) == []
    assert domain.compare_voided(ours, {"voided": {"a": 1, "c": 1}}) == [
        "voided.a: incremental 2, rebuilt 1", "voided.c: incremental 0, rebuilt 1"]
