"""The scoring service's entrypoints with nameko's ``worker_factory``: no broker.

The store is the real repository on the test's database; auth, clock, dispatch,
other services and the notifier are injected. Every refusal is checked to leave
nothing stored and nothing announced.
"""
import json
import logging
import math
from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.scoring.providers import (LINK_HEADER, LinkSigner, Notifier, link_key)
from services.scoring.service import ScoringService
from services.scoring.store import ScoringStore
from shared import events
from shared.auth import Caller, read_token
from shared.campaigns import CampaignBook
from shared.errors import (Conflict, Forbidden, InvalidState, NotFound, PanelClosed, RateLimited,
                           Unauthorized, ValidationError)
from shared.timeutil import utcnow
from tests.conftest import TEST_KEYS, TEST_SERVICE_KEYS, at, campaign_document, token
from tests.unit.test_scoring_methods import WORKED_EXAMPLE, WORKED_OPTIONS, WORKED_RESULTS

NOW = at("2099-11-21T02:00:00")
PAGE = "http://judges.test"
JUDGES = [
    {"judge_id": "j1", "name": "张评委", "unit": "县委党校", "mobile": "13900001111"},
    {"judge_id": "j2", "name": "李评委", "unit": "县财政局"},  # the unit of candidate nom-a
]


class Harness:
    """Calls the service as a given token, at a given time, on one store."""

    def __init__(self, db):
        self.store = ScoringStore(db)
        self.store.ensure_indexes()
        self.now = NOW
        self.dispatched = []
        self.accepted_rows = []   # what nomination.list answers
        self.sent = []            # notification.send_direct calls
        self.notification_error = None
        self.notifier_mode = "notification"
        self.signer = LinkSigner(link_key(TEST_SERVICE_KEYS["scoring"]), PAGE)

    def call(self, service, method, *args, **kwargs):
        if (service, method) == ("nomination", "list"):
            return self.accepted_rows
        if (service, method) == ("notification", "send_direct"):
            if self.notification_error:
                raise self.notification_error
            self.sent.append(args)
            return {"message_id": f"m{len(self.sent)}", "status": "queued"}
        raise AssertionError(f"unexpected call {service}.{method}")

    def service(self, auth_token=None):
        verify = lambda t: read_token(TEST_KEYS, t, utcnow())
        return worker_factory(
            ScoringService, store=self.store, now=lambda: self.now,
            campaigns=CampaignBook(self.store.campaigns),
            auth=Caller(verify, auth_token, lambda token_id, at: None),
            dispatch=lambda event_type, payload: self.dispatched.append((event_type, payload)),
            service_rpc=self.call, links=self.signer,
            notifier=Notifier(self.notifier_mode, self.call, 24))

    def as_admin(self):
        return self.service(token("admin", "宣传部"))

    def as_judge(self, judge_id="j1", unit=None):
        return self.service(token("judge", judge_id, unit))

    def load_campaign(self, **overrides):
        self.store.campaigns.delete_many({})
        CampaignBook(self.store.campaigns).remember(campaign_document(**overrides), 1)

    def accept(self, cid, category="advanced_unit", nominee_unit="县教育局", unit="城关镇党委",
               name=None):
        facts = nomination_facts(cid, category, nominee_unit, unit, name)
        self.service().on_nomination_reviewed(events.make_event(
            events.NOMINATION_REVIEWED, "cb-test", NOW, **dict(facts, status="accepted"),
            decision="accept", opinion="同意"))

    def panel(self, category="advanced_unit"):
        return self.store.panel("cb-test", category)

    def event_types(self):
        return [event_type for event_type, _ in self.dispatched]

    def audit_count(self):
        return self.store.audit.collection.count_documents({})


def nomination_facts(cid, category="advanced_unit", nominee_unit="县教育局", unit="城关镇党委",
                     name=None):
    return {"nomination_id": cid, "unit": unit, "category": category,
            "org_type": "agency" if category == "advanced_unit" else None,
            "nominee_name": name or f"候选{cid}", "nominee_unit": nominee_unit,
            "deeds_summary": "坚持每周集中学习。", "status": "accepted",
            "submitted_at": "2099-10-01T02:00:00Z"}


@pytest.fixture
def harness(db):
    harness = Harness(db)
    harness.load_campaign()
    harness.accept("nom-a", nominee_unit="县财政局")
    harness.accept("nom-b")
    harness.accept("nom-star", category="learning_star", nominee_unit="县卫健局")
    return harness


@pytest.fixture
def assigned(harness):
    harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    harness.dispatched.clear()
    return harness


GOOD = {"organisation": 80, "results": 90}


# --- assign_panel ---------------------------------------------------------------------------

def test_assign_panel_answers_with_personal_links_and_is_audited(harness):
    reply = harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    assert [j["judge_id"] for j in reply["judges"]] == ["j1", "j2"]
    link = reply["judges"][0]["link"]
    assert link.startswith(f"{PAGE}/judge#ey")   # a JWT of the one signer
    assert "13900001111" not in json.dumps(reply)  # contact details stay inside
    trail = harness.as_admin().audit_trail("cb-test")
    assert [row["action"] for row in trail] == ["assign_panel"]
    assert trail[0]["after"][0] == {"judge_id": "j1", "name": "张评委", "unit": "县委党校",
                                    "has_contact": True}
    assert harness.event_types() == []  # assignment has no contract event
    # The same judges again: the same links, nothing new in the trail.
    again = harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    assert again["judges"][0]["link"] == link
    assert len(harness.as_admin().audit_trail("cb-test")) == 1


def test_a_judge_removed_and_added_again_gets_a_new_link(harness):
    admin = harness.as_admin()
    first = admin.assign_panel("cb-test", "advanced_unit", JUDGES)["judges"][1]["link"]
    admin.assign_panel("cb-test", "advanced_unit", JUDGES[:1])
    second = admin.assign_panel("cb-test", "advanced_unit", JUDGES)["judges"][1]["link"]
    assert first != second
    assert [row["action"] for row in admin.audit_trail("cb-test")] == ["assign_panel"] * 3


@pytest.mark.parametrize("judges, field", [
    ([], "judges"),
    ("j1", "judges"),
    ([{"judge_id": "j1", "name": "张"}], "judges.0.unit"),
    ([{"judge_id": {"$gt": ""}, "name": "张", "unit": "u"}], "judges.0.judge_id"),
    ([{"judge_id": "j1", "name": "张", "unit": "u", "mobile": "12345"}], "judges.0.mobile"),
    ([{"judge_id": "j1", "name": "张", "unit": "u", "role": "x"}], "judges.0.role"),
    ([JUDGES[0], JUDGES[0]], "judges"),
])
def test_bad_panels_are_refused_and_nothing_stored(harness, judges, field):
    with pytest.raises(ValidationError) as refused:
        harness.as_admin().assign_panel("cb-test", "advanced_unit", judges)
    assert field in refused.value.messages
    assert harness.panel() is None
    assert harness.audit_count() == 0


def test_assign_panel_refusals(harness):
    with pytest.raises(Forbidden):
        harness.as_judge().assign_panel("cb-test", "advanced_unit", JUDGES)
    with pytest.raises(Unauthorized):
        harness.service(None).assign_panel("cb-test", "advanced_unit", JUDGES)
    with pytest.raises(ValidationError):
        harness.as_admin().assign_panel("cb-test", "learning_carrier", JUDGES)
    with pytest.raises(NotFound):
        harness.as_admin().assign_panel("cb-none", "advanced_unit", JUDGES)
    assert harness.store.panels.count_documents({}) == 0


def test_assign_panel_catches_up_with_candidates_accepted_meanwhile(harness):
    harness.accepted_rows = [dict(nomination_facts("nom-late"), id="nom-late",
                                  campaign_id="cb-test")]
    harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    sheet = harness.as_judge().worksheet("cb-test")["sheets"][0]
    assert "nom-late" in [row["candidate_id"] for row in sheet["candidates"]]


# --- submit ---------------------------------------------------------------------------------

def test_submit_stores_the_weighted_total_and_announces_it(assigned):
    reply = assigned.as_judge().submit("nom-b", {"organisation": 60, "results": 61}, "扎实")
    assert reply["total"] == 60.7
    assert reply["revision"] == 1
    assert assigned.event_types() == [events.SCORE_SUBMITTED]
    payload = events.read_event(events.SCORE_SUBMITTED, assigned.dispatched[0][1])
    assert (payload["candidate_id"], payload["judge_id"], payload["category"]) == (
        "nom-b", "j1", "advanced_unit")
    assert payload["total"] == 60.7 and payload["scores"] == {"organisation": 60, "results": 61}
    trail = assigned.as_admin().audit_trail("cb-test", "nom-b")
    assert [row["action"] for row in trail] == ["submit_score"]
    assert trail[0]["actor"]["name"] == "j1" and trail[0]["before"] is None
    assert assigned.store.panels.find_one({"_id": "cb-test|advanced_unit"})["outbox"] == []


def test_a_resend_before_close_replaces_and_is_audited(assigned):
    judge = assigned.as_judge()
    judge.submit("nom-b", GOOD)
    reply = judge.submit("nom-b", {"organisation": 70, "results": 70})
    assert (reply["revision"], reply["total"]) == (2, 70)
    rows = assigned.as_admin().scores("cb-test")["scores"]
    assert [(r["candidate_id"], r["total"]) for r in rows] == [("nom-b", 70)]
    trail = assigned.as_admin().audit_trail("cb-test", "nom-b")
    assert [row["action"] for row in trail] == ["submit_score", "replace_score"]
    assert trail[1]["before"]["total"] == 87 and trail[1]["after"]["total"] == 70
    assert assigned.event_types() == [events.SCORE_SUBMITTED] * 2


def test_two_resends_racing_cannot_both_win(assigned, monkeypatch):
    judge = assigned.as_judge()
    judge.submit("nom-b", GOOD)
    stale = assigned.panel()  # what a second request read before the first one wrote
    judge.submit("nom-b", {"organisation": 70, "results": 70})
    assigned.dispatched.clear()
    audit_before = assigned.audit_count()
    reads = iter([stale])
    real_panel = assigned.store.panel
    monkeypatch.setattr(assigned.store, "panel",
                        lambda *args: next(reads, None) or real_panel(*args))
    with pytest.raises(Conflict):
        judge.submit("nom-b", {"organisation": 10, "results": 10})
    record = next(iter(real_panel("cb-test", "advanced_unit")["scores"].values()))
    assert (record["revision"], record["total"]) == (2, 70)
    assert assigned.dispatched == [] and assigned.audit_count() == audit_before


BAD_SCORES = [
    ({"organisation": 101, "results": 90}, "scores.organisation"),
    ({"organisation": -0.5, "results": 90}, "scores.organisation"),
    ({"results": 90}, "scores.organisation"),
    ({"organisation": 80, "results": 90, "style": 70}, "scores.style"),
    ({"organisation": math.nan, "results": 90}, "scores.organisation"),
    ({"organisation": math.inf, "results": 90}, "scores.organisation"),
    ({"organisation": "80", "results": 90}, "scores.organisation"),
    ({"organisation": True, "results": 90}, "scores.organisation"),
    ({"organisation": None, "results": 90}, "scores.organisation"),
    ([80, 90], "scores"),
    ("80", "scores"),
]


@pytest.mark.parametrize("scores, field", BAD_SCORES)
def test_bad_scores_are_refused_by_field_and_nothing_stored(assigned, scores, field):
    before = assigned.audit_count()
    with pytest.raises(ValidationError) as refused:
        assigned.as_judge().submit("nom-b", scores)
    assert field in refused.value.messages
    assert_nothing_stored(assigned, before)


def assert_nothing_stored(harness, audit_before):
    panel = harness.panel()
    assert panel is None or panel["scores"] == {}
    assert harness.dispatched == []
    assert harness.audit_count() == audit_before


@pytest.mark.parametrize("who, candidate_id, error", [
    (("judge", "j1"), "nom-star", Forbidden),       # a candidate not in the judge's category
    (("judge", "j1"), "nom-nobody", NotFound),      # not a candidate at all
    (("judge", "j9"), "nom-b", Forbidden),          # a judge not on the panel
    (("judge", "j2"), "nom-a", Forbidden),          # recusal: the judge's own unit
    (("unit", "城关镇党委"), "nom-b", Forbidden),    # a non-judge token
    (("admin", "宣传部"), "nom-b", Forbidden),
    (None, "nom-b", Unauthorized),
    (("judge", "j1"), {"$gt": ""}, ValidationError),
    (("judge", "j1"), "", ValidationError),
])
def test_refused_submissions_store_nothing(assigned, who, candidate_id, error):
    before = assigned.audit_count()
    service = assigned.service(token(*who) if who else None)
    with pytest.raises(error):
        service.submit(candidate_id, GOOD)
    assert_nothing_stored(assigned, before)


def test_a_forged_token_is_unauthorized(assigned):
    forged = token("judge", "j1")[:-4] + "AAAA"
    with pytest.raises(Unauthorized):
        assigned.service(forged).submit("nom-b", GOOD)
    assert_nothing_stored(assigned, 1)


def test_recusal_covers_the_nominating_unit(assigned):
    assigned.accept("nom-c", nominee_unit="县水利局", unit="县财政局")
    with pytest.raises(Forbidden, match="nominated"):
        assigned.as_judge("j2").submit("nom-c", GOOD)
    assert_nothing_stored(assigned, 1)


def test_a_candidate_off_the_ballot_is_refused(assigned):
    assigned.service().on_nomination_withdrawn(events.make_event(
        events.NOMINATION_WITHDRAWN, "cb-test", NOW,
        **dict(nomination_facts("nom-b"), status="withdrawn"), reason="撤回"))
    with pytest.raises(InvalidState):
        assigned.as_judge().submit("nom-b", GOOD)
    assert_nothing_stored(assigned, 1)


def test_a_comment_is_bounded(assigned):
    with pytest.raises(ValidationError) as refused:
        assigned.as_judge().submit("nom-b", GOOD, "评" * 1001)
    assert "comment" in refused.value.messages
    assert_nothing_stored(assigned, 1)


# --- close_panel ----------------------------------------------------------------------------

def test_close_panel_makes_the_panel_score_final(assigned):
    assigned.as_judge().submit("nom-b", GOOD)
    reply = assigned.as_admin().close_panel("cb-test", "advanced_unit")
    assert reply["closed"] is True and reply["method"] == "mean"
    assert reply["panel_scores"] == {"nom-a": None, "nom-b": 87.0}
    assert reply["recusals"] == [{"judge_id": "j2", "candidate_id": "nom-a",
                                  "reason": "nominee_unit"}]
    assert assigned.event_types() == [events.SCORE_SUBMITTED, events.PANEL_CLOSED]
    payload = events.read_event(events.PANEL_CLOSED, assigned.dispatched[-1][1])
    assert payload["panel_scores"] == {"nom-a": None, "nom-b": 87.0}
    assert payload["method"] == "mean" and payload["category"] == "advanced_unit"

    # Closing again answers the same and announces nothing.
    assigned.dispatched.clear()
    assert assigned.as_admin().close_panel("cb-test", "advanced_unit")["panel_scores"] == \
        reply["panel_scores"]
    assert assigned.dispatched == []

    # After close: no score, no change, no new judges.
    audit_before = assigned.audit_count()
    for judge_id, cid in (("j1", "nom-b"), ("j1", "nom-a")):
        with pytest.raises(PanelClosed):
            assigned.as_judge(judge_id).submit(cid, {"organisation": 1, "results": 1})
    with pytest.raises(PanelClosed):
        assigned.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES[:1])
    assert assigned.panel()["scores"][next(iter(assigned.panel()["scores"]))]["total"] == 87
    assert assigned.audit_count() == audit_before and assigned.dispatched == []
    panels = assigned.as_admin().scores("cb-test")["panels"]
    assert panels["advanced_unit"] == {"closed": True, "method": "mean",
                                       "panel_scores": {"nom-a": None, "nom-b": 87.0}}


def test_close_panel_refusals(harness):
    with pytest.raises(NotFound):
        harness.as_admin().close_panel("cb-test", "advanced_unit")  # no panel yet
    harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    with pytest.raises(Forbidden):
        harness.as_judge().close_panel("cb-test", "advanced_unit")
    with pytest.raises(ValidationError):
        harness.as_admin().close_panel("cb-test", "best_unit")
    assert harness.panel()["closed"] is False


WORKED_IDS = {letter: f"nom-{letter.lower()}" for letter in "ABCDE"}


@pytest.mark.parametrize("method", sorted(WORKED_RESULTS))
def test_the_worked_example_through_the_service(db, method):
    """Seven judges, one recused from B, one extreme: each method gives the hand-computed score."""
    harness = Harness(db)
    harness.load_campaign(panel_method=method, panel_options=WORKED_OPTIONS)
    for letter, cid in WORKED_IDS.items():
        harness.accept(cid, nominee_unit=f"单位{letter}", unit="城关镇党委")
    judges = [{"judge_id": j, "name": f"评委{j}", "unit": "单位B" if j == "J7" else f"评审单位{j}"}
              for j in WORKED_EXAMPLE]
    harness.as_admin().assign_panel("cb-test", "advanced_unit", judges)
    for judge_id, row in WORKED_EXAMPLE.items():
        for letter, total in row.items():
            # J1 scores A unevenly: 0.3 * 100 + 0.7 * 80 = 86.
            scores = ({"organisation": 100, "results": 80} if (judge_id, letter) == ("J1", "A")
                      else {"organisation": total, "results": total})
            harness.as_judge(judge_id).submit(WORKED_IDS[letter], scores)
    with pytest.raises(Forbidden):
        harness.as_judge("J7").submit(WORKED_IDS["B"], GOOD)  # recused
    progress = harness.as_admin().progress("cb-test", "advanced_unit")["panels"][0]
    assert progress["counts"]["missing"] == 0 and progress["counts"]["recused"] == 1
    closed = harness.as_admin().close_panel("cb-test", "advanced_unit")
    assert closed["method"] == method
    assert closed["panel_scores"] == {WORKED_IDS[k]: v for k, v in WORKED_RESULTS[method].items()}


# --- reads ----------------------------------------------------------------------------------

def test_a_judge_reads_only_their_own_worksheet(assigned):
    assigned.as_judge("j2").submit("nom-b", GOOD)
    sheet = assigned.as_judge("j2").worksheet("cb-test")["sheets"][0]
    assert [(r["candidate_id"], r["state"]) for r in sheet["candidates"]] == [
        ("nom-a", "recused"), ("nom-b", "scored")]
    assert sheet["candidates"][1]["scores"] == GOOD and sheet["judge"]["judge_id"] == "j2"
    assert assigned.as_judge("j1").worksheet("cb-test")["sheets"][0]["counts"]["scored"] == 0
    with pytest.raises(Forbidden):
        assigned.as_judge("j9").worksheet("cb-test")
    with pytest.raises(Forbidden):
        assigned.as_admin().worksheet("cb-test")
    with pytest.raises(Forbidden):
        assigned.as_judge("j1").worksheet("cb-test", "learning_star")


def test_progress_is_for_the_department(assigned):
    assigned.as_judge("j1").submit("nom-a", GOOD)
    report = assigned.as_admin().progress("cb-test")["panels"][0]
    assert report["counts"]["scored"] == 1 and report["counts"]["missing"] == 2
    by_judge = {j["judge_id"]: j for j in report["judges"]}
    assert by_judge["j1"]["missing"] == ["nom-b"] and by_judge["j2"]["recused"] == ["nom-a"]
    with pytest.raises(Forbidden):
        assigned.as_judge().progress("cb-test")
    with pytest.raises(NotFound):
        assigned.as_admin().progress("cb-test", "learning_star")


def test_scores_for_aggregation_include_provisional_panel_scores(assigned):
    assigned.as_judge("j1").submit("nom-b", GOOD)
    answer = assigned.service(token("service", "aggregation")).scores("cb-test")
    assert answer["scores"][0]["total"] == 87 and answer["scores"][0]["counted"] is True
    assert answer["panels"]["advanced_unit"]["closed"] is False
    assert answer["panels"]["advanced_unit"]["panel_scores"] == {"nom-a": None, "nom-b": 87.0}
    with pytest.raises(Forbidden):
        assigned.as_judge().scores("cb-test")


# --- the ballot from nomination events -------------------------------------------------------

def test_the_ballot_follows_events_in_any_order_and_redelivered(harness):
    service = harness.service()
    withdrawn = events.make_event(events.NOMINATION_WITHDRAWN, "cb-test", NOW,
                                  **dict(nomination_facts("nom-x"), status="withdrawn"),
                                  reason="撤回")
    reviewed = events.make_event(events.NOMINATION_REVIEWED, "cb-test", NOW,
                                 **nomination_facts("nom-x"), decision="accept", opinion="同意")
    service.on_nomination_withdrawn(withdrawn)  # arrives before the acceptance
    service.on_nomination_reviewed(reviewed)
    service.on_nomination_reviewed(reviewed)    # redelivered
    assert harness.store.candidate("nom-x")["status"] == "withdrawn"
    disqualified = events.make_event(
        events.CANDIDATE_DISQUALIFIED, "cb-test", NOW,
        **dict(nomination_facts("nom-b"), status="disqualified"), candidate_id="nom-b",
        reason="查实问题")
    service.on_candidate_disqualified(disqualified)
    service.on_candidate_disqualified(disqualified)
    service.on_nomination_reviewed(events.make_event(
        events.NOMINATION_REVIEWED, "cb-test", NOW, **nomination_facts("nom-b"),
        decision="accept", opinion="同意"))
    assert [c["_id"] for c in harness.store.ballot("cb-test", "advanced_unit")] == ["nom-a"]
    rejected = events.make_event(events.NOMINATION_REVIEWED, "cb-test", NOW,
                                 **dict(nomination_facts("nom-r"), status="rejected"),
                                 decision="reject", opinion="不符合条件")
    service.on_nomination_reviewed(rejected)
    assert harness.store.candidate("nom-r") is None


# --- the judge's page API -------------------------------------------------------------------

def page_request(path, link=None, body=None, raw=None):
    headers = {LINK_HEADER: link} if link is not None else {}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    builder = EnvironBuilder(path=path, method="POST" if data is not None else "GET",
                             headers=headers, data=data, content_type="application/json")
    return Request(builder.get_environ())


def link_of(harness, judge_id):
    reply = harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    url = next(j["link"] for j in reply["judges"] if j["judge_id"] == judge_id)
    return url.split("#", 1)[1]


def answer(response):
    return response.status_code, json.loads(response.get_data(as_text=True))


def test_the_page_api_scores_through_a_personal_link(assigned):
    link = link_of(assigned, "j1")
    status, sheet = answer(assigned.service().judge_api_worksheet(
        page_request("/judge/api/worksheet", link)))
    assert status == 200 and sheet["judge"]["judge_id"] == "j1"
    assert [r["state"] for r in sheet["candidates"]] == ["missing", "missing"]
    status, saved = answer(assigned.service().judge_api_submit(page_request(
        "/judge/api/scores", link, {"candidate_id": "nom-b", "scores": GOOD, "comment": "好"})))
    assert status == 200 and saved["total"] == 87
    trail = assigned.as_admin().audit_trail("cb-test", "nom-b")
    assert trail[0]["actor"] == {"role": "judge", "name": "j1", "unit": "县委党校",
                                 "token_id": None, "via": "personal_link"}
    assert assigned.event_types() == [events.SCORE_SUBMITTED]


@pytest.mark.parametrize("body, raw, status, error", [
    ({"candidate_id": "nom-b", "scores": {"organisation": 200, "results": 90}}, None, 400,
     "ValidationError"),
    (None, "not json", 400, "ValidationError"),
    (None, "NaN", 400, "ValidationError"),
    (None, b"\xff\xfe", 400, "ValidationError"),
    (None, "[" * 70000, 400, "ValidationError"),
    ({"candidate_id": "nom-b", "scores": {"organisation": 80, "results": 90}, "x": 1}, None, 400,
     "ValidationError"),
    ({"candidate_id": "nom-star", "scores": GOOD}, None, 403, "Forbidden"),
    ({"candidate_id": "nom-nobody", "scores": GOOD}, None, 404, "NotFound"),
])
def test_the_page_api_refuses_bad_submissions(assigned, body, raw, status, error):
    link = link_of(assigned, "j1")
    before = assigned.audit_count()
    got_status, got = answer(assigned.service().judge_api_submit(
        page_request("/judge/api/scores", link, body, raw)))
    assert (got_status, got["error"]) == (status, error)
    assert_nothing_stored(assigned, before)


def test_a_recused_judge_cannot_score_on_the_page(assigned):
    link = link_of(assigned, "j2")
    status, got = answer(assigned.service().judge_api_submit(
        page_request("/judge/api/scores", link, {"candidate_id": "nom-a", "scores": GOOD})))
    assert (status, got["error"]) == (403, "Forbidden")
    assert_nothing_stored(assigned, 1)


def test_a_link_is_valid_only_as_issued_and_until_close(assigned):
    link = link_of(assigned, "j2")
    submit = {"candidate_id": "nom-b", "scores": GOOD}
    for bad in (None, "", link[:-3] + "abc", link.replace("ey", "eX", 1),
                token("judge", "j2")):
        status, got = answer(assigned.service().judge_api_submit(
            page_request("/judge/api/scores", bad, submit)))
        assert (status, got["error"]) == (401, "Unauthorized")
    # Taken off the panel: the old link is dead, even once the judge is back.
    assigned.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES[:1])
    assigned.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    status, _ = answer(assigned.service().judge_api_worksheet(
        page_request("/judge/api/worksheet", link)))
    assert status == 401
    # After close, the current link opens nothing and saves nothing.
    current = link_of(assigned, "j2")
    assigned.as_admin().close_panel("cb-test", "advanced_unit")
    assigned.dispatched.clear()
    for request in (page_request("/judge/api/worksheet", current),
                    page_request("/judge/api/scores", current, submit)):
        handler = (assigned.service().judge_api_submit if request.method == "POST"
                   else assigned.service().judge_api_worksheet)
        status, got = answer(handler(request))
        assert (status, got["error"]) == (410, "PanelClosed")
    assert assigned.panel()["scores"] == {} and assigned.dispatched == []


def test_the_page_is_chinese_and_keeps_the_link_out_of_the_url_path(assigned):
    response = assigned.service().judge_page(page_request("/judge"))
    html = response.get_data(as_text=True)
    assert 'lang="zh-CN"' in html and "大字模式" in html and 'name="viewport"' in html
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = assigned.service().judge_script(page_request("/judge/app.js")).get_data(as_text=True)
    assert "location.hash" in script and "X-Judge-Link" in script


# --- judge notices --------------------------------------------------------------------------

def test_assignment_notices_go_through_the_notification_service_once(harness):
    reply = harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    service = harness.service()
    service.notify_judges()
    service.notify_judges()
    assert len(harness.sent) == 1  # only j1 has contact details; sent once
    kind, recipient, template, params, key = harness.sent[0]
    assert (kind, recipient, template) == ("sms", "13900001111", "judge_assignment")
    assert params["link"] == reply["judges"][0]["link"]
    assert params["judge_name"] == "张评委" and params["closes_at"] == "另行通知"
    assert params["category_name"] == "创建学习型党组织先进单位"
    assert key.startswith("judge_assignment|cb-test|advanced_unit|j1|")


def test_a_failing_notification_service_is_retried_later(harness):
    harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    harness.notification_error = RateLimited("too many messages")
    harness.service().notify_judges()
    notice = harness.store.notices.find_one({})
    assert notice["status"] == "pending" and notice["attempts"] == 1
    harness.notification_error = None
    harness.service().notify_judges()
    assert harness.sent == []  # not due yet
    harness.now = NOW + (notice["next_at"] - NOW) * 2
    harness.service().notify_judges()
    assert len(harness.sent) == 1
    assert harness.store.notices.find_one({})["status"] == "sent"


def test_without_the_notification_service_notices_are_only_logged(harness, caplog):
    harness.notifier_mode = "log"
    reply = harness.as_admin().assign_panel("cb-test", "advanced_unit", JUDGES)
    with caplog.at_level(logging.DEBUG):
        harness.service().notify_judges()
    assert harness.sent == []
    assert harness.store.notices.find_one({})["status"] == "skipped"
    assert "judge_assignment" in caplog.text
    assert reply["judges"][0]["link"].split("#")[1] not in caplog.text


def test_judges_with_scores_missing_are_reminded_before_the_close(db):
    harness = Harness(db)
    harness.load_campaign(panel_options={"trim_min_judges": 5, "closes": "2099-11-25T18:00:00"})
    harness.accept("nom-b")
    judges = [dict(JUDGES[0]), dict(JUDGES[1], mobile="13900002222")]
    harness.as_admin().assign_panel("cb-test", "advanced_unit", judges)
    harness.as_judge("j2").submit("nom-b", GOOD)
    harness.service().notify_judges()
    assert [args[2] for args in harness.sent] == ["judge_assignment"] * 2
    harness.sent.clear()
    harness.now = at("2099-11-24T11:00:00")  # 19:00 local the day before: within 24 h
    harness.service().notify_judges()
    harness.service().notify_judges()
    assert [(args[1], args[2]) for args in harness.sent] == [("13900001111", "judge_reminder")]
    assert harness.sent[0][3]["closes_at"] == "2099-11-25 18:00"


# --- send_links: sending judges' links again, renewing them ------------------------------------

def test_send_links_queues_a_new_message_for_a_judge_with_contact_and_returns_every_link(assigned):
    assigned.service().notify_judges()
    assert len(assigned.sent) == 1
    assigned.now = NOW + timedelta(minutes=5)
    reply = assigned.as_admin().send_links("cb-test", "advanced_unit")
    j1, j2 = reply["judges"]
    assert (j1["judge_id"], j1["queued"], j1["channel"], j1["not_queued_reason"]) == \
        ("j1", True, "sms", None)
    assert j1["notice"]["state"] == "queued"
    # No contact: the link is still given (the department hands it over), no message.
    assert (j2["queued"], j2["not_queued_reason"], j2["notice"]["state"]) == \
        (False, "no_contact", "no_contact")
    assert j2["link"] == assigned.signer.url(assigned.panel(), assigned.panel()["judges"][1])
    assert "13900001111" not in json.dumps(reply)
    assigned.service().notify_judges()
    assert len(assigned.sent) == 2  # a new message, not a duplicate of the first
    first_key, second_key = assigned.sent[0][4], assigned.sent[1][4]
    assert second_key == first_key + "|2"
    assert assigned.sent[1][3]["link"] == j1["link"]
    trail = assigned.as_admin().audit_trail("cb-test")
    assert trail[-1]["action"] == "send_links" and trail[-1]["after"] == {"judge_ids": ["j1"]}
    assert trail[-1]["actor"]["name"] == "宣传部"


def test_a_double_click_does_not_send_twice(assigned):
    assigned.now = NOW + timedelta(minutes=5)
    assigned.as_admin().send_links("cb-test", "advanced_unit", ["j1"])
    assigned.now += timedelta(seconds=3)
    again = assigned.as_admin().send_links("cb-test", "advanced_unit", ["j1"])
    assert (again["judges"][0]["queued"], again["judges"][0]["not_queued_reason"]) == \
        (False, "sent_moments_ago")
    assigned.service().notify_judges()
    assert len(assigned.sent) == 2  # the assignment and one resend
    assert [row["action"] for row in assigned.as_admin().audit_trail("cb-test")] == \
        ["assign_panel", "send_links"]
    assigned.now += timedelta(minutes=1)
    assert assigned.as_admin().send_links("cb-test", "advanced_unit", ["j1"])["judges"][0]["queued"]


def test_renew_gives_new_links_the_old_ones_stop_at_once_and_the_trail_never_holds_a_link(assigned):
    old = {j["judge_id"]: assigned.signer.url(assigned.panel(), j)
           for j in assigned.panel()["judges"]}
    assigned.now = NOW + timedelta(minutes=5)
    reply = assigned.as_admin().send_links("cb-test", "advanced_unit", ["j1", "j2"], renew=True)
    assert reply["renewed"] == ["j1", "j2"]
    links = {row["judge_id"]: row["link"] for row in reply["judges"]}
    assert links["j1"] != old["j1"] and links["j2"] != old["j2"]
    assert [row["queued"] for row in reply["judges"]] == [True, False]
    refused = assigned.service().judge_api_worksheet(page_request(
        "/judge/api/worksheet", old["j1"].split("#")[1]))
    assert refused.status_code == 401
    fresh = assigned.service().judge_api_worksheet(page_request(
        "/judge/api/worksheet", links["j1"].split("#")[1]))
    assert fresh.status_code == 200
    # The pending message of the old link is not sent; the new link's message is.
    assigned.service().notify_judges()
    assert [args[3]["link"] for args in assigned.sent] == [links["j1"]]
    trail = assigned.as_admin().audit_trail("cb-test")
    assert [row["action"] for row in trail] == ["assign_panel", "renew_links", "send_links"]
    assert trail[1]["after"] == {"judge_ids": ["j1", "j2"]}
    assert trail[1]["actor"]["role"] == "admin"
    for row in trail:
        text = json.dumps(row, default=str)
        assert "#" not in text and assigned.panel()["judges"][0]["nonce"] not in text
    # A double click on "renew" does not make the link just sent worthless.
    assigned.now += timedelta(seconds=2)
    again = assigned.as_admin().send_links("cb-test", "advanced_unit", ["j1"], renew=True)
    assert again["renewed"] == [] and again["judges"][0]["link"] == links["j1"]


def test_send_links_refusals_change_nothing(assigned):
    before = (assigned.panel(), assigned.store.notices.count_documents({}), assigned.audit_count())
    for args, kwargs, field in [
            (("cb-test", "advanced_unit", ["j1", "j9"]), {}, "judge_ids"),
            (("cb-test", "advanced_unit", []), {}, "judge_ids"),
            (("cb-test", "advanced_unit", [{"$ne": 1}]), {}, "judge_ids.0"),
            (("cb-test", "advanced_unit"), {"renew": "yes"}, "renew"),
            (("cb-test", "no_such_category"), {}, "category")]:
        with pytest.raises(ValidationError) as refused:
            assigned.as_admin().send_links(*args, **kwargs)
        assert field in refused.value.messages, refused.value.messages
    with pytest.raises(NotFound):
        assigned.as_admin().send_links("cb-test", "learning_star")
    with pytest.raises(Forbidden):
        assigned.as_judge("j1").send_links("cb-test", "advanced_unit")
    with pytest.raises(Forbidden):
        assigned.service(token("service", "aggregation")).send_links("cb-test", "advanced_unit")
    assert (assigned.panel(), assigned.store.notices.count_documents({}),
            assigned.audit_count()) == before
    assigned.as_admin().close_panel("cb-test", "advanced_unit")
    closed = assigned.panel()
    with pytest.raises(PanelClosed):
        assigned.as_admin().send_links("cb-test", "advanced_unit", renew=True)
    assert assigned.panel()["judges"] == closed["judges"]


def test_progress_tells_admins_each_judges_last_notice_and_services_not(assigned, caplog):
    assigned.notification_error = ValidationError({"recipient": ["13900001111 is not reachable"]})
    with caplog.at_level(logging.DEBUG):
        assigned.service().notify_judges()
    assert "judge_assignment" in caplog.text and "13900001111" not in caplog.text
    report = assigned.as_admin().progress("cb-test", "advanced_unit")
    j1, j2 = report["panels"][0]["judges"]
    assert j1["notice"]["state"] == "failed" and "recipient" in j1["notice"]["detail"]
    assert "13900001111" not in json.dumps(report)
    assert j2["notice"]["state"] == "no_contact"
    as_service = assigned.service(token("service", "aggregation")).progress("cb-test")
    assert "notice" not in as_service["panels"][0]["judges"][0]
    assigned.notification_error = None
    assigned.as_admin().send_links("cb-test", "advanced_unit", ["j1"])
    assigned.service().notify_judges()
    j1 = assigned.as_admin().progress("cb-test")["panels"][0]["judges"][0]
    assert j1["notice"]["state"] == "sent"
