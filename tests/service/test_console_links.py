"""The console's judges' links on the panels page (``worker_factory``, a fake Desk)."""
import re

import pytest

from shared.errors import PanelClosed, Unavailable
from tests.service.test_console_service import ADMIN, Harness, body

LINK_J1 = "http://judges.test/judge#eyJ.secret-of-j1"
LINK_J2 = "http://judges.test/judge#eyJ.secret-of-j2"


def notice(state, **more):
    return dict({"state": state, "template": "judge_assignment", "at": "2099-11-21T02:00:00Z",
                 "detail": None, "attempts": 0}, **more)


PROGRESS = {"campaign_id": "cb-test", "panels": [{
    "campaign_id": "cb-test", "category": "advanced_unit", "closed": False, "closed_at": None,
    "judges": [
        {"judge_id": "j1", "name": "张评委", "unit": "县委党校", "has_contact": True,
         "scored": 0, "missing": [], "recused": [], "notice": notice("sent", detail="queued")},
        {"judge_id": "j2", "name": "李评委", "unit": "县财政局", "has_contact": False,
         "scored": 0, "missing": [], "recused": [], "notice": notice("no_contact", at=None)},
        {"judge_id": "j3", "name": "王评委", "unit": "县教育局", "has_contact": True,
         "scored": 0, "missing": [], "recused": [],
         "notice": notice("failed", detail="ValidationError: recipient *** is barred",
                          attempts=10)}],
    "candidates": [], "counts": {"scored": 0, "missing": 0, "recused": 0, "expected": 0,
                                 "complete": 1.0}}]}


def send_links_reply(campaign_id, category, judge_ids, renew=False):
    rows = [{"judge_id": "j1", "name": "张评委", "unit": "县委党校", "has_contact": True,
             "channel": "sms", "link": LINK_J1, "queued": True, "renewed": renew,
             "not_queued_reason": None, "notice": notice("queued")},
            {"judge_id": "j2", "name": "李评委", "unit": "县财政局", "has_contact": False,
             "channel": None, "link": LINK_J2, "queued": False, "renewed": renew,
             "not_queued_reason": "no_contact", "notice": notice("no_contact", at=None)}]
    rows = [row for row in rows if judge_ids is None or row["judge_id"] in judge_ids]
    return {"campaign_id": campaign_id, "category": category,
            "renewed": [row["judge_id"] for row in rows] if renew else [], "judges": rows}


@pytest.fixture
def harness():
    harness = Harness()
    harness.desk.replies.update({"scoring.progress": PROGRESS,
                                 "scoring.send_links": send_links_reply})
    harness.sign_in(ADMIN)
    return harness


def post(harness, data, csrf=True):
    data = dict(data, **({"csrf_token": harness.csrf()} if csrf else {}))
    return harness.service.panel_links(harness.request(
        "POST", "/campaigns/cb-test/panels/links", data=data), campaign_id="cb-test")


def test_the_panels_page_shows_each_judges_notice_and_link_buttons_with_csrf(harness):
    page = body(harness.service.panels_page(harness.request("GET", "/campaigns/cb-test/panels"),
                                            campaign_id="cb-test"))
    notice_j1 = re.search(r'id="notice-advanced_unit-j1">([^<]*)<', page)[1]
    assert notice_j1.startswith("已发出")
    assert "无手机和邮箱" in page
    assert "发送失败：ValidationError: recipient *** is barred" in page
    assert re.search(r'id="links-send-advanced_unit-j1">重发链接<', page)
    assert re.search(r'id="links-send-advanced_unit-j3">发送链接<', page)
    assert re.search(r'id="links-send-advanced_unit-j2">查看链接<', page)
    assert re.search(r'id="links-renew-advanced_unit-j1">更换链接并重发…<', page)
    assert 'id="links-send-all-advanced_unit"' in page
    forms = re.findall(r'<form method="post" action="/campaigns/cb-test/panels/links".*?</form>',
                       page, re.S)
    assert len(forms) == 4 and all(f'value="{harness.csrf()}"' in form for form in forms)
    assert "#eyJ" not in page  # no link on the page a GET shows


def test_send_again_shows_the_link_only_of_a_judge_without_contact_and_is_not_cached(harness):
    response = post(harness, {"action": "send", "category": "advanced_unit"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert harness.desk.made("scoring.send_links") == [
        ("scoring", "send_links", ("cb-test", "advanced_unit", None), {"renew": False}, ADMIN)]
    page = body(response)
    assert re.search(r'id="links-outcome-j1">已排队', page)
    assert re.search(r'id="links-outcome-j2">没有手机和邮箱', page)
    assert f'id="link-j2" value="{LINK_J2}"' in page
    assert LINK_J1 not in page  # it goes by SMS: no reason to show it
    assert 'src="/static/copy.js"' in page and 'id="copy-j2"' in page


def test_send_one_judge(harness):
    post(harness, {"action": "send", "category": "advanced_unit", "judge_id": "j1"})
    assert harness.desk.made("scoring.send_links")[0][2] == ("cb-test", "advanced_unit", ["j1"])


def test_renew_asks_for_a_confirmation_first_and_then_renews(harness):
    first = post(harness, {"action": "renew", "category": "advanced_unit", "judge_id": "j2"})
    assert first.status_code == 200 and harness.desk.made("scoring.send_links") == []
    page = body(first)
    assert 'id="links-confirm-box"' in page and "立即失效" in page and "j2" in page
    confirm = re.search(r'<section class="card confirm".*?</section>', page, re.S)[0]
    assert 'name="confirm" value="yes"' in confirm and 'name="judge_id" value="j2"' in confirm
    assert f'value="{harness.csrf()}"' in confirm and 'id="confirm-renew"' in confirm
    done = post(harness, confirmation(confirm))
    assert harness.desk.made("scoring.send_links")[0][2:4] == (
        ("cb-test", "advanced_unit", ["j2"]), {"renew": True})
    assert 'id="links-renewed"' in body(done) and LINK_J2 in body(done)


def confirmation(confirm_box):
    """The fields the confirmation's form posts (the csrf token aside)."""
    return {name: value for name, value in re.findall(
        r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', confirm_box)
        if name != "csrf_token"}


def confirm_box(harness, judge_id="j2"):
    page = body(post(harness, {"action": "renew", "category": "advanced_unit",
                               "judge_id": judge_id}))
    return re.search(r'<section class="card confirm".*?</section>', page, re.S)[0]


def test_reloading_a_renewal_page_renews_nothing_more(harness):
    """A reload re-posts the confirmation: the links the first renewal showed stay valid."""
    form = confirmation(confirm_box(harness))
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", form["once"])
    post(harness, form)
    again = post(harness, form)
    assert again.status_code == 200 and len(harness.desk.made("scoring.send_links")) == 1
    assert 'id="links-renewed-before"' in body(again) and "没有再次更换" in body(again)
    # A new confirmation renews again, once.
    post(harness, confirmation(confirm_box(harness)))
    assert len(harness.desk.made("scoring.send_links")) == 2


def test_each_confirmation_is_its_own_and_one_without_its_key_asks_again(harness):
    first, second = confirmation(confirm_box(harness)), confirmation(confirm_box(harness))
    assert first["once"] != second["once"]
    for forged in (dict(first, once=""), dict(first, once="x" * 43 + "!"),
                   {k: v for k, v in first.items() if k != "once"}):
        asked = post(harness, forged)
        assert 'id="links-confirm-box"' in body(asked)
    assert harness.desk.made("scoring.send_links") == []


def test_a_confirmation_key_with_a_trailing_newline_is_not_one(harness):
    form = confirmation(confirm_box(harness))
    assert 'id="links-confirm-box"' in body(post(harness, dict(form, once=form["once"] + "\n")))
    assert harness.desk.made("scoring.send_links") == []


@pytest.mark.parametrize("refusal, retried_renews", [
    # Refused before scoring wrote anything: the same confirmation may try again.
    (PanelClosed("the panel of advanced_unit in campaign cb-test closed at "
                 "2099-11-21T02:00:00Z; no more scores are taken"), True),
    # After a timeout scoring may still have renewed: a re-post must not renew once more.
    (Unavailable("scoring.send_links did not answer within the time allowed"), False),
])
def test_a_refused_renewal_is_confirmed_again_only_if_nothing_was_done(harness, refusal,
                                                                      retried_renews):
    form = confirmation(confirm_box(harness))
    harness.desk.replies["scoring.send_links"] = refusal
    assert post(harness, form).status_code == 400
    harness.desk.replies["scoring.send_links"] = send_links_reply
    again = body(post(harness, form))
    assert ('id="links-renewed"' in again) is retried_renews
    assert ('id="links-renewed-before"' in again) is not retried_renews
    assert len(harness.desk.made("scoring.send_links")) == (2 if retried_renews else 1)


def test_a_post_without_csrf_calls_nothing(harness):
    response = post(harness, {"action": "renew", "category": "advanced_unit", "confirm": "yes"},
                    csrf=False)
    assert response.status_code == 403
    assert harness.desk.made("scoring.send_links") == []


def test_a_refusal_is_shown_in_chinese_and_an_unknown_action_is_not_found(harness):
    harness.desk.replies["scoring.send_links"] = PanelClosed(
        "the panel of advanced_unit in campaign cb-test closed at 2099-11-21T02:00:00Z; "
        "no more scores are taken")
    response = post(harness, {"action": "send", "category": "advanced_unit"})
    assert response.status_code == 400
    assert 'id="links-refusal"' in body(response) and "评审组已结束评分" in body(response)
    assert post(harness, {"action": "delete", "category": "advanced_unit"}).status_code == 404


def test_the_copy_script_is_served(harness):
    response = harness.service.static(harness.request("GET", "/static/copy.js"), name="copy.js")
    assert response.status_code == 200 and "copy-link" in body(response)
