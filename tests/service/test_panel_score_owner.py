"""scoring owns the panel score: aggregation's live results show scoring's provisional figure.

scoring's ``score_submitted`` events are delivered to aggregation as they were dispatched,
and aggregation's ``results`` are compared with ``scoring.scores``, in the cases where
aggregation's own computation used to disagree: a judge removed from the panel, a judge who
must now recuse, a trimmed mean and scoring's rounding.
"""
import math
import random

import pytest

from services.aggregation import domain as aggregation_domain
from shared import events
from shared.campaigns import CampaignBook
from shared.store import connect
from tests.conftest import campaign_document
from tests.service import test_aggregation_service as aggregation
from tests.service import test_scoring_service as scoring

JUDGES = [{"judge_id": f"j{n}", "name": f"评委{n}", "unit": f"单位{n}"} for n in range(1, 7)]
#: Totals of each judge per candidate (one criterion of weight 1: the total is the score).
SCORES = {"j1": {"nom-a": 86, "nom-b": 82}, "j2": {"nom-a": 92, "nom-b": 82.5},
          "j3": {"nom-a": 82, "nom-b": 84}, "j4": {"nom-a": 81, "nom-b": 77.25},
          "j5": {"nom-a": 82, "nom-b": 82}, "j6": {"nom-a": 45, "nom-b": 35.125}}


@pytest.fixture
def second_db(mongo_uri, db_name):
    client = connect(mongo_uri)
    yield client[f"{db_name}_agg"]
    client.drop_database(f"{db_name}_agg")


def campaign(method):
    return campaign_document(panel_method=method, panel_options={"trim_min_judges": 5})


@pytest.fixture(params=["mean", "trimmed_mean", "z_score"])
def both(request, db, second_db):
    """scoring with a panel of six on learning_star, and aggregation fed the same campaign."""
    document = campaign(request.param)
    scorer = scoring.Harness(db)
    scorer.store.campaigns.delete_many({})
    CampaignBook(scorer.store.campaigns).remember(document, 1)
    aggregator = aggregation.Harness(second_db)
    aggregator.deliver(events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, aggregation.CAMPAIGN, campaign=document, revision=1))
    for minute, cid in enumerate(["nom-a", "nom-b"], start=1):
        scorer.accept(cid, category="learning_star", nominee_unit=f"{cid}单位")
        aggregator.deliver(events.NOMINATION_REVIEWED, aggregation.reviewed(
            cid, org_type=None, minute=minute, category="learning_star"))
    scorer.as_admin().assign_panel("cb-test", "learning_star", JUDGES)
    return scorer, aggregator


def submit_all(scorer, judges):
    for judge in judges:
        for cid, total in SCORES[judge].items():
            scorer.as_judge(judge).submit(cid, {"deeds": total})


def deliver_scores(scorer, aggregator, shuffle=False):
    """Every ``score_submitted`` scoring dispatched, to aggregation (in any order)."""
    sent = [payload for event_type, payload in scorer.dispatched
            if event_type == events.SCORE_SUBMITTED]
    if shuffle:
        random.Random(7).shuffle(sent)
    for payload in sent:
        aggregator.deliver(events.SCORE_SUBMITTED, payload)
    return sent


def live_panel_scores(aggregator):
    rows = aggregator.as_admin().results(aggregation.CAMPAIGN, "learning_star")
    return {row["candidate_id"]: row["panel_score"] for row in rows}


def scorings_panel_scores(scorer):
    reply = scorer.as_admin().scores("cb-test", "learning_star")
    figures = reply["panels"]["learning_star"]["panel_scores"]
    return {cid: aggregation_domain.published(value, 2) for cid, value in figures.items()}


def plain_mean_of_every_total(sent):
    """What aggregation's own computation (a plain mean, every judge that ever scored) gave."""
    latest = {}
    for payload in sent:
        latest[(payload["candidate_id"], payload["judge_id"])] = payload["total"]
    by_candidate = {}
    for (cid, _), total in latest.items():
        by_candidate.setdefault(cid, []).append(total)
    return {cid: round(sum(totals) / len(totals), 2) for cid, totals in by_candidate.items()}


def test_live_results_show_scorings_provisional_panel_scores(both):
    scorer, aggregator = both
    submit_all(scorer, SCORES)
    deliver_scores(scorer, aggregator, shuffle=True)
    assert live_panel_scores(aggregator) == scorings_panel_scores(scorer)


def test_a_judge_removed_from_the_panel_no_longer_counts_in_the_live_results(both):
    scorer, aggregator = both
    submit_all(scorer, ["j1", "j2", "j3", "j4", "j5", "j6"])
    scorer.as_admin().assign_panel("cb-test", "learning_star", JUDGES[:5])   # j6 leaves
    scorer.as_judge("j1").submit("nom-a", {"deeds": 87})   # the next score carries the change
    sent = deliver_scores(scorer, aggregator, shuffle=True)
    live = live_panel_scores(aggregator)
    assert live == scorings_panel_scores(scorer)
    # aggregation's own plain mean kept j6 (45 and 35.125) and disagreed.
    assert live != plain_mean_of_every_total(sent)


def test_a_judge_who_must_now_recuse_no_longer_counts_in_the_live_results(both):
    scorer, aggregator = both
    submit_all(scorer, SCORES)
    moved = [dict(judge, unit="nom-b单位") if judge["judge_id"] == "j6" else judge
             for judge in JUDGES]   # j6 now works for nom-b's unit: 回避
    scorer.as_admin().assign_panel("cb-test", "learning_star", moved)
    scorer.as_judge("j2").submit("nom-a", {"deeds": 91})
    sent = deliver_scores(scorer, aggregator)
    live = live_panel_scores(aggregator)
    assert live == scorings_panel_scores(scorer)
    assert live["nom-b"] != plain_mean_of_every_total(sent)["nom-b"]


def test_rebuild_takes_the_open_panels_figures_from_scoring_too(both):
    scorer, aggregator = both
    submit_all(scorer, SCORES)
    deliver_scores(scorer, aggregator)
    reply = scorer.as_admin().scores("cb-test", "learning_star")
    live = aggregation_domain.live_from_records([], {}, reply)
    assert live["panels"]["learning_star"] == {
        "closed": False, "method": reply["panels"]["learning_star"]["method"],
        "panel_scores": reply["panels"]["learning_star"]["panel_scores"]}


def test_an_event_from_before_the_figures_were_carried_leaves_the_candidate_unscored(both):
    scorer, aggregator = both
    aggregator.deliver(events.SCORE_SUBMITTED, aggregation.score(
        "nom-a", "j1", 80.0, aggregation.DURING_VOTE, category="learning_star"))
    assert live_panel_scores(aggregator) == {"nom-a": None, "nom-b": None}


def test_each_score_event_carries_the_figures_of_the_panel_it_was_stored_into(both):
    scorer, aggregator = both
    submit_all(scorer, ["j1", "j2"])
    sent = [payload for event_type, payload in scorer.dispatched
            if event_type == events.SCORE_SUBMITTED]
    versions = [payload["panel_version"] for payload in sent]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    last = sent[-1]["panel_scores"]
    assert set(last) == {"nom-a", "nom-b"}
    assert all(value is None or math.isfinite(value) for value in last.values())


def test_a_score_stored_meanwhile_by_another_judge_is_in_the_event_of_the_later_one(both):
    scorer, aggregator = both
    store, real_save = scorer.store, scorer.store.save_score
    interleaved = []

    def save_after_another_judge(panel, record, previous, pending):
        if not interleaved:   # j2's score lands between j1's read and j1's write
            interleaved.append(True)
            scorer.as_judge("j2").submit("nom-a", {"deeds": 60})
        return real_save(panel, record, previous, pending)

    store.save_score = save_after_another_judge
    scorer.as_judge("j1").submit("nom-a", {"deeds": 90})
    store.save_score = real_save
    j1_event = [payload for event_type, payload in scorer.dispatched
                if event_type == events.SCORE_SUBMITTED and payload["judge_id"] == "j1"][-1]
    assert j1_event["panel_scores"] == scorer.as_admin().scores(
        "cb-test", "learning_star")["panels"]["learning_star"]["panel_scores"]
    deliver_scores(scorer, aggregator, shuffle=True)
    assert live_panel_scores(aggregator) == scorings_panel_scores(scorer)
