"""The scoring rules as plain functions: criteria, weighted totals, recusal, panels, links."""
import math
from datetime import timedelta

import pytest

from services.scoring import domain
from services.scoring.methods import mean
from services.scoring.providers import link_key, read_link, sign_link
from shared.campaign import Campaign
from shared.errors import Forbidden, InvalidState, NotFound, PanelClosed, Unauthorized, ValidationError
from shared import signing
from tests.conftest import TEST_SERVICE_KEYS, at, campaign_document

CRITERIA = [{"key": "organisation", "name": "组织领导", "weight": 0.3, "min": 0, "max": 100},
            {"key": "results", "name": "学习成效", "weight": 0.7, "min": 0, "max": 100}]
NOW = at("2099-11-21T02:00:00")


def candidate(cid, nominee_unit="县财政局", unit="县委宣传部", status="accepted",
              category="advanced_unit"):
    return {"_id": cid, "campaign_id": "cb-test", "category": category, "org_type": "agency",
            "nominee_name": f"候选{cid}", "nominee_unit": nominee_unit, "unit": unit,
            "deeds_summary": "事迹", "status": status}


def judge(judge_id, unit="县委党校", nonce=None):
    return {"judge_id": judge_id, "name": f"评委{judge_id}", "unit": unit,
            "nonce": nonce or f"n-{judge_id}", "assigned_at": NOW}


def panel(judges, scores=(), closed=False):
    doc = {"_id": "cb-test|advanced_unit", "campaign_id": "cb-test", "category": "advanced_unit",
           "judges": judges, "scores": {}, "closed": closed, "version": 1}
    if closed:
        doc["closed_at"] = NOW
    for cid, jid, total in scores:
        doc["scores"][domain.score_key(cid, jid)] = {
            "candidate_id": cid, "judge_id": jid, "category": "advanced_unit",
            "scores": {"organisation": total, "results": total}, "total": total,
            "comment": None, "submitted_at": NOW, "revision": 1}
    return doc


# --- criteria and totals --------------------------------------------------------------------

def test_valid_scores_pass_through():
    assert domain.valid_scores(CRITERIA, {"organisation": 80, "results": 92.5}) == {
        "organisation": 80, "results": 92.5}
    assert domain.valid_scores(CRITERIA, {"organisation": 0, "results": 100})  # the ends count


@pytest.mark.parametrize("value", [
    101, -1, 100.0001, math.nan, math.inf, -math.inf, "90", True, False, None, [90], {"$gt": 0},
])
def test_a_bad_score_is_refused_by_field(value):
    with pytest.raises(ValidationError) as refused:
        domain.valid_scores(CRITERIA, {"organisation": value, "results": 90})
    assert set(refused.value.messages) == {"scores.organisation"}


def test_missing_and_unknown_criteria_are_refused_together():
    with pytest.raises(ValidationError) as refused:
        domain.valid_scores(CRITERIA, {"results": 90, "style": 80})
    assert set(refused.value.messages) == {"scores.organisation", "scores.style"}
    assert "missing" in refused.value.messages["scores.organisation"][0]
    assert "unknown criterion" in refused.value.messages["scores.style"][0]


@pytest.mark.parametrize("scores", [None, [], "90", 90])
def test_scores_must_be_an_object(scores):
    with pytest.raises(ValidationError) as refused:
        domain.valid_scores(CRITERIA, scores)
    assert set(refused.value.messages) == {"scores"}


def test_a_criterion_with_its_own_minimum():
    criteria = [{"key": "deeds", "name": "事迹", "weight": 1, "min": 60, "max": 100}]
    with pytest.raises(ValidationError):
        domain.valid_scores(criteria, {"deeds": 59})
    assert domain.score_range(criteria) == (60, 100)


def test_weighted_total_is_the_weighted_sum_without_float_noise():
    assert domain.weighted_total(CRITERIA, {"organisation": 60, "results": 61}) == 60.7
    assert domain.weighted_total(CRITERIA, {"organisation": 100, "results": 80}) == 86
    assert domain.score_range(CRITERIA) == (0, 100)


def test_check_category_run():
    campaign = Campaign(campaign_document())
    assert domain.check_category_run(campaign, "advanced_unit")["criteria"]
    for bad in ("learning_carrier", "best_unit", None, {"$ne": 1}):
        with pytest.raises(ValidationError) as refused:
            domain.check_category_run(campaign, bad)
        assert set(refused.value.messages) == {"category"}


# --- recusal --------------------------------------------------------------------------------

def test_a_judge_recuses_from_the_nominees_unit_and_the_nominating_unit():
    c = candidate("a", nominee_unit="县财政局", unit="城关镇党委")
    assert domain.recusal_reason(judge("j", unit="县财政局"), c) == domain.NOMINEE_UNIT
    assert domain.recusal_reason(judge("j", unit="城关镇党委"), c) == domain.NOMINATING_UNIT
    assert domain.recusal_reason(judge("j", unit="县委党校"), c) is None
    # Names compare without white space and width variants.
    assert domain.recusal_reason(judge("j", unit=" 县财政局\u3000"), c) == domain.NOMINEE_UNIT
    with pytest.raises(Forbidden, match="recuse"):
        domain.check_not_recused(judge("j", unit="县财政局"), c)
    with pytest.raises(Forbidden, match="nominated"):
        domain.check_not_recused(judge("j", unit="城关镇党委"), c)
    domain.check_not_recused(judge("j"), c)


def test_recusals_are_listed_with_their_reason():
    p = panel([judge("j1", unit="县财政局"), judge("j2")])
    ballot = [candidate("a"), candidate("b", nominee_unit="县教育局")]
    assert domain.recusals(p, ballot) == [
        {"judge_id": "j1", "candidate_id": "a", "reason": domain.NOMINEE_UNIT}]


# --- panels ---------------------------------------------------------------------------------

def test_only_panel_members_and_only_while_open():
    p = panel([judge("j1")])
    assert domain.panel_member(p, "j1", "advanced_unit")["judge_id"] == "j1"
    with pytest.raises(Forbidden):
        domain.panel_member(p, "j9", "advanced_unit")
    with pytest.raises(Forbidden):
        domain.panel_member(None, "j1", "advanced_unit")
    domain.check_panel_open(p)
    domain.check_panel_open(None)
    with pytest.raises(PanelClosed):
        domain.check_panel_open(panel([judge("j1")], closed=True))


def test_only_candidates_on_the_ballot_are_scored():
    domain.check_on_ballot(candidate("a"), "a")
    with pytest.raises(NotFound):
        domain.check_on_ballot(None, "a")
    for status in ("withdrawn", "disqualified"):
        with pytest.raises(InvalidState):
            domain.check_on_ballot(candidate("a", status=status), "a")
    with pytest.raises(Forbidden):
        domain.check_in_panel_category(candidate("a", category="learning_star"), panel([]))


def test_merging_judges_keeps_links_of_those_kept():
    first = domain.merge_judges([], [{"judge_id": "j1", "name": "甲", "unit": "u"}], NOW)
    again = domain.merge_judges(first, [{"judge_id": "j1", "name": "甲", "unit": "u"},
                                        {"judge_id": "j2", "name": "乙", "unit": "u"}], NOW)
    assert again[0]["nonce"] == first[0]["nonce"]
    assert again[1]["nonce"] not in (first[0]["nonce"], None)
    assert not domain.judges_changed(first, domain.merge_judges(first, [
        {"judge_id": "j1", "name": "甲", "unit": "u"}], NOW))
    assert domain.judges_changed(first, again)
    assert domain.newly_assigned(first, again) == [again[1]]


def test_counted_scores_leave_out_recused_removed_and_off_ballot():
    p = panel([judge("j1"), judge("j2", unit="县财政局")],
              scores=[("a", "j1", 80), ("b", "j1", 70), ("a", "j2", 90), ("a", "gone", 10),
                      ("off", "j1", 50)])
    ballot = [candidate("a", nominee_unit="县财政局"), candidate("b", nominee_unit="县教育局")]
    assert domain.counted_scores(p, ballot) == {"j1": {"a": 80, "b": 70}, "j2": {}}


def test_panel_scores_through_a_method_with_none_for_the_unscored():
    p = panel([judge("j1"), judge("j2")], scores=[("a", "j1", 80), ("a", "j2", 91)])
    ballot = [candidate("a"), candidate("b")]
    assert domain.panel_scores(mean, p, ballot, CRITERIA, {}) == {"a": 85.5, "b": None}


def test_progress_says_who_has_not_scored_whom():
    p = panel([judge("j1"), judge("j2", unit="县财政局")], scores=[("a", "j1", 80)])
    ballot = [candidate("a", nominee_unit="县财政局"), candidate("b", nominee_unit="县教育局")]
    report = domain.progress(p, ballot)
    assert report["counts"] == {"scored": 1, "missing": 2, "recused": 1, "expected": 3,
                                "complete": round(1 / 3, 4)}
    j1, j2 = report["judges"]
    assert (j1["scored"], j1["missing"], j1["recused"]) == (1, ["b"], [])
    assert (j2["scored"], j2["missing"], j2["recused"]) == (0, ["b"], ["a"])
    a, b = report["candidates"]
    assert (a["scored_by"], a["missing"], a["recused"]) == (["j1"], [], ["j2"])
    assert (b["scored_by"], b["missing"], b["recused"]) == ([], ["j1", "j2"], [])
    assert "mobile" not in str(report) and "nonce" not in str(report)


def test_a_worksheet_shows_saved_missing_and_recused():
    campaign = Campaign(campaign_document())
    p = panel([judge("j1", unit="县财政局")], scores=[("b", "j1", 77)])
    ballot = [candidate("a"), candidate("b", nominee_unit="县教育局"),
              candidate("c", nominee_unit="县教育局")]
    sheet = domain.worksheet(campaign, p, p["judges"][0], ballot)
    assert [row["state"] for row in sheet["candidates"]] == ["recused", "scored", "missing"]
    assert sheet["candidates"][1]["total"] == 77
    assert sheet["counts"] == {"candidates": 3, "scored": 1, "missing": 1, "recused": 1}
    assert [c["key"] for c in sheet["criteria"]] == ["organisation", "results"]
    assert sheet["category_name"] == "创建学习型党组织先进单位"


def test_score_keys_are_safe_field_names():
    assert "." not in domain.score_key("nom-1.2", "judge.a")
    assert "$" not in domain.score_key("a", "$b")
    assert domain.score_key("a.b", "c") != domain.score_key("a", "b.c")


def test_reminders_are_due_within_the_lead_before_the_close():
    closes = at("2099-11-25T10:00:00")
    lead = timedelta(hours=24)
    assert not domain.reminder_due(closes, closes - timedelta(hours=25), lead)
    assert domain.reminder_due(closes, closes - timedelta(hours=23), lead)
    assert not domain.reminder_due(closes, closes, lead)
    assert not domain.reminder_due(None, closes, lead)


# --- personal links -------------------------------------------------------------------------

def test_a_personal_link_reads_back_and_resists_tampering():
    key = link_key(TEST_SERVICE_KEYS["scoring"])
    token = sign_link(key, "cb-test", "advanced_unit", "j1", "nonce-1")
    assert read_link(key, token) == {"campaign_id": "cb-test", "category": "advanced_unit",
                                     "judge_id": "j1", "nonce": "nonce-1"}
    prefix, body, signature = token.split(".")
    forged_body = sign_link(key, "cb-test", "advanced_unit", "j2", "nonce-1").split(".")[1]
    for bad in (f"{prefix}.{forged_body}.{signature}", token[:-2] + "xx", "px1.a.b", "", None,
                sign_link(link_key(TEST_SERVICE_KEYS["voting"]), "cb-test", "advanced_unit",
                          "j1", "nonce-1"),
                # the same key and claims, signed as something else: never a link
                signing.sign_mac(key, {"c": "cb-test", "g": "advanced_unit", "j": "j1",
                                       "n": "nonce-1"}, "px-voter-session")):
        with pytest.raises(Unauthorized):
            read_link(key, bad)


def test_a_crafted_non_ascii_link_is_unauthorized_not_a_crash():
    with pytest.raises(Unauthorized):
        read_link(b"k" * 32, "j1.\u4ee4\u724c.abc")


# --- sending links again, renewing them ------------------------------------------------------

def links_panel():
    return {"_id": "cb-test|advanced_unit", "campaign_id": "cb-test", "category": "advanced_unit",
            "judges": [dict(judge("j1"), mobile="13900001111"), judge("j2"),
                       dict(judge("j3"), email="j3@example.cn")]}


def notice(judge_id, nonce, created_at, template=domain.ASSIGNMENT, status="pending", **more):
    return dict({"_id": f"{template}|{judge_id}|{nonce}|{created_at.isoformat()}",
                 "template": template, "judge_id": judge_id, "nonce": nonce,
                 "created_at": created_at, "status": status}, **more)


def test_a_resend_has_a_key_of_its_own_and_the_first_send_keeps_the_old_key():
    panel, j1 = links_panel(), links_panel()["judges"][0]
    first = domain.notice_key(domain.ASSIGNMENT, panel, j1)
    assert first == "judge_assignment|cb-test|advanced_unit|j1|n-j1"
    assert domain.notice_key(domain.ASSIGNMENT, panel, j1, 1) == first
    assert domain.notice_key(domain.ASSIGNMENT, panel, j1, 2) == first + "|2"
    assert domain.notice_key(domain.ASSIGNMENT, panel, j1, 3) != first + "|2"


def test_every_judge_is_chosen_by_default_and_an_unknown_one_names_the_field():
    panel = links_panel()
    assert [j["judge_id"] for j in domain.chosen_judges(panel, None)] == ["j1", "j2", "j3"]
    assert [j["judge_id"] for j in domain.chosen_judges(panel, ["j3", "j1"])] == ["j1", "j3"]
    with pytest.raises(ValidationError) as refused:
        domain.chosen_judges(panel, ["j1", "j9", "x"])
    assert refused.value.messages == {"judge_ids": ["not on the panel of advanced_unit: j9, x"]}


def test_the_next_send_is_numbered_and_a_double_click_sends_nothing():
    assert domain.next_send([], NOW) == 1
    sent = [notice("j1", "n-j1", NOW - timedelta(hours=1), status="sent")]
    assert domain.next_send(sent, NOW) == 2
    # A reminder is not a send of the link: it neither counts nor blocks.
    reminded = sent + [notice("j1", "n-j1", NOW - timedelta(seconds=5),
                              template=domain.REMINDER)]
    assert domain.next_send(reminded, NOW) == 2
    again = sent + [notice("j1", "n-j1", NOW - timedelta(seconds=59))]
    assert domain.next_send(again, NOW) is None
    assert domain.next_send(again, NOW + timedelta(seconds=1)) == 3
    # A send that failed (or was skipped) at once does not hold back the resend it calls for.
    for status in ("failed", "skipped"):
        given_up = sent + [notice("j1", "n-j1", NOW - timedelta(seconds=5), status=status)]
        assert domain.next_send(given_up, NOW) == 3


def test_renewing_gives_a_new_nonce_once_per_window():
    judges = links_panel()["judges"]
    renewed, ids = domain.renew_links(judges, {"j1", "j2"}, NOW)
    assert ids == ["j1", "j2"]
    assert renewed[0]["nonce"] != "n-j1" and renewed[1]["nonce"] != "n-j2"
    assert renewed[2] == judges[2]
    assert renewed[0]["mobile"] == "13900001111" and renewed[0]["link_renewed_at"] == NOW
    again, ids = domain.renew_links(renewed, {"j1"}, NOW + timedelta(seconds=30))
    assert ids == [] and again == renewed
    later, ids = domain.renew_links(renewed, {"j1"}, NOW + domain.RESEND_WINDOW)
    assert ids == ["j1"] and later[0]["nonce"] != renewed[0]["nonce"]


def test_a_judges_notices_are_those_of_the_current_link_oldest_first():
    j1 = links_panel()["judges"][0]
    newer = notice("j1", "n-j1", NOW)
    older = notice("j1", "n-j1", NOW - timedelta(minutes=5))
    notices = [newer, notice("j1", "old-nonce", NOW), notice("j2", "n-j2", NOW), older]
    assert domain.link_notices(notices, j1) == [older, newer]


def test_the_notice_state_never_shows_the_contact_and_masks_it_in_a_refusal():
    j1, j2, j3 = links_panel()["judges"]
    assert domain.notice_state(j2, [])["state"] == domain.NO_CONTACT
    assert domain.notice_state(j1, [])["state"] == domain.NOT_SENT
    failed = notice("j1", "n-j1", NOW, status="failed", done_at=NOW + timedelta(minutes=1),
                    attempts=10, detail="ValidationError: recipient 13900001111 is barred")
    state = domain.notice_state(j1, [failed])
    assert state == {"state": "failed", "template": domain.ASSIGNMENT,
                     "at": "2099-11-21T02:01:00Z", "detail": "ValidationError: recipient *** is barred",
                     "attempts": 10}
    waiting = notice("j3", "n-j3", NOW, attempts=2, detail="RateLimited: later")
    assert domain.notice_state(j3, [waiting])["state"] == "queued"
    assert domain.notice_state(j3, [notice("j3", "n-j3", NOW, status="sent")])["state"] == "sent"
    assert domain.notice_state(j3, [notice("j3", "n-j3", NOW, status="skipped")])["state"] \
        == "skipped"


def test_progress_gets_each_judges_last_notice():
    panel = links_panel()
    report = domain.progress(panel, [])
    notices = [notice("j1", "n-j1", NOW - timedelta(hours=1), status="sent"),
               notice("j1", "n-j1", NOW), notice("j3", "stale", NOW, status="skipped")]
    judges = domain.with_notices(report, panel, notices)["judges"]
    assert [j["notice"]["state"] for j in judges] == ["queued", "no_contact", "not_sent"]
    assert "13900001111" not in str(judges) and "j3@example.cn" not in str(judges)


def test_a_link_row_says_why_nothing_was_queued():
    j2 = links_panel()["judges"][1]
    row = domain.link_row(j2, "http://x/judge#t", [], False, True, domain.NO_CONTACT)
    assert row == {"judge_id": "j2", "name": "评委j2", "unit": "县委党校", "has_contact": False,
                   "link": "http://x/judge#t", "channel": None, "queued": False, "renewed": True,
                   "not_queued_reason": "no_contact",
                   "notice": {"state": "no_contact", "template": None, "at": None,
                              "detail": None, "attempts": 0}}
