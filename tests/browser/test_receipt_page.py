"""The receipt page on a phone-sized headless Chromium: a voided vote says so and why; a vote
for a disqualified candidate says so instead of "counted".

Votes come from a front end over RPC; the department voids one and disqualifies the other
candidate over RPC, as it would with the CLI. Screenshots are saved under the test's
temporary directory (``receipt-*.png``).
"""
import time
from datetime import date

import pytest
import yaml
from selenium.webdriver.common.by import By

from tests.browser.conftest import computed_style
from tests.browser.test_voting_page import client, open_campaign
from tests.conftest import nomination_form

UNIT = "城关镇党委"


@pytest.fixture
def system(tmp_path):
    from tests.system import running_system

    with running_system(tmp_path / "home") as system:
        yield system


def eventually(probe, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if probe():
                return
        except Exception:  # an event still on its way
            pass
        time.sleep(0.3)
    raise AssertionError(what)


def test_receipts_of_a_voided_vote_and_of_a_disqualified_candidate(system, browser, tmp_path,
                                                                   screenshot):
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(yaml.safe_dump(open_campaign(), allow_unicode=True), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))
    recommendation = {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                      "date": date.today().isoformat()}
    with client(system, system.token("unit", UNIT)) as unit:
        ids = [unit.nomination.submit(nomination_form(
            campaign_id="cb-vote-page", client_ref=f"browser-receipt-{n}", nominee_name=name,
            recommendation=recommendation))["id"]
            for n, name in enumerate(("县财政局机关党委", "县审计局机关党委"))]
    with client(system, system.token("admin", "宣传部")) as admin, \
            client(system, system.token("frontend", "wechat-backend")) as front:
        for cid in ids:
            admin.nomination.review(cid, "accept", "同意")
        receipts = []
        for n, cid in enumerate(ids):
            vote = {"vote_id": f"receipt-{n}", "campaign_id": "cb-vote-page", "candidate_id": cid,
                    "voter": {"channel": "mobile", "id": "13812345678"},
                    "client": {"ip": "203.0.113.9", "user_agent": "test"}}
            holder = {}
            eventually(lambda: holder.setdefault("r", front.voting.cast(vote)), "cast")
            receipts.append(holder["r"]["receipt"])
        admin.voting.void_votes("cb-vote-page", {"vote_ids": ["receipt-0"]},
                                "同一网段集中投票，经核实为刷票")
        admin.nomination.disqualify(ids[1], "公示期间查实事迹材料不实")
        eventually(lambda: front.voting.check_receipt(receipts[1])["status"] ==
                   "candidate_disqualified", "the disqualification reaches voting")

    base = f"http://{system.http('voting')}/receipts"
    browser.get(f"{base}?code={receipts[0]}&size=large")
    status = browser.find_element(By.ID, "receipt-status")
    assert "已被作废，不计入票数" in status.text and "经核实为刷票" in status.text
    assert "已计入" not in status.find_element(By.ID, "status-h").text
    assert "large" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    assert computed_style(browser, "#receipt-status", "backgroundColor") == "rgb(255, 255, 255)"
    screenshot("receipt-voided")

    browser.get(f"{base}?code={receipts[1]}&size=normal")
    status = browser.find_element(By.ID, "receipt-status")
    assert "已被取消参评资格" in status.text and "事迹材料不实" in status.text
    screenshot("receipt-disqualified")
