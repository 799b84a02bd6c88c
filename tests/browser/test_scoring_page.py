"""A judge opens their personal link on a phone-sized headless Chromium and scores a candidate.

The system runs with ``pingxuan up``; the candidate is put on the ballot as the
department would: campaign loaded with the CLI, a nomination submitted by a
unit and accepted in review over RPC, then the panel assigned.
"""
from pathlib import Path

import yaml
from nameko.standalone.rpc import ClusterRpcProxy
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import computed_style
from tests.conftest import OPEN_CAMPAIGN, nomination_form

UNIT = "城关镇党委"
JUDGE = {"judge_id": "judge-01", "name": "王评委", "unit": "县委党校"}


def client(system, auth_token):
    return ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, context_data={"auth_token": auth_token},
                           timeout=30)


def test_a_judge_scores_a_candidate_through_the_personal_link(system, browser, tmp_path,
                                                              screenshot):
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(yaml.safe_dump(OPEN_CAMPAIGN, allow_unicode=True), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))
    admin_token = system.token("admin", "宣传部")
    with client(system, system.token("unit", UNIT)) as unit:
        cid = unit.nomination.submit(nomination_form(client_ref="browser-judge-1"))["id"]
    with client(system, admin_token) as admin:
        admin.nomination.review(cid, "accept", "同意")
        link = admin.scoring.assign_panel("cb-test", "advanced_unit", [JUDGE])["judges"][0]["link"]
    assert link.startswith(f"http://{system.http('scoring')}/judge#")

    browser.get(link)
    wait = WebDriverWait(browser, 20)
    organisation = wait.until(EC.visibility_of_element_located((By.ID, f"s-{cid}-organisation")))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert "未评 1 个" in browser.find_element(By.ID, "counts").text
    label = browser.find_element(By.CSS_SELECTOR, f"label[for='s-{cid}-organisation']")
    assert "组织领导" in label.text and "30%" in label.text and "0–100" in label.text
    results = browser.find_element(By.ID, f"s-{cid}-results")
    assert computed_style(browser, "header", "backgroundColor") == "rgb(139, 26, 26)"
    screenshot("judge-1-sheet")

    # Out of range: told in Chinese next to the field, nothing sent.
    organisation.send_keys("120")
    results.send_keys("80")
    browser.find_element(By.ID, f"save-{cid}").click()
    error = browser.find_element(By.ID, f"e-s-{cid}-organisation")
    assert "0–100" in error.text
    assert organisation.get_attribute("aria-invalid") == "true"
    screenshot("judge-2-out-of-range")

    organisation.clear()
    organisation.send_keys("90")
    assert browser.find_element(By.ID, f"total-{cid}").text == "83"  # 0.3 × 90 + 0.7 × 80
    browser.find_element(By.ID, f"save-{cid}").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, f"state-{cid}"), "已保存"))
    assert "83" in browser.find_element(By.ID, f"state-{cid}").text
    wait.until(EC.text_to_be_present_in_element((By.ID, "counts"), "已评 1 个"))

    # Large text for older judges, remembered by the button's state.
    button = browser.find_element(By.ID, "large-text")
    button.click()
    assert "large" in browser.find_element(By.TAG_NAME, "html").get_attribute("class")
    assert button.get_attribute("aria-pressed") == "true"
    assert computed_style(browser, "html", "fontSize") == "24px"
    screenshot("judge-3-saved-large")

    with client(system, admin_token) as admin:
        rows = admin.scoring.scores("cb-test", "advanced_unit")["scores"]
        assert [(r["candidate_id"], r["judge_id"], r["total"]) for r in rows] == [
            (cid, "judge-01", 83)]
        admin.scoring.close_panel("cb-test", "advanced_unit")

    # After close the link opens nothing to act on.
    browser.refresh()
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "评审已结束"))
    assert browser.find_elements(By.ID, f"s-{cid}-organisation") == []

    # The link (the judge's credential) is in no log: it travels in the fragment and a header.
    logs = Path(system.env["PINGXUAN_HOME"]) / "logs"
    secret_part = link.split("#", 1)[1]
    assert "/judge/api/scores" in (logs / "scoring.log").read_text(encoding="utf-8")
    for log_file in logs.glob("*.log"):
        assert secret_part not in log_file.read_text(encoding="utf-8"), log_file.name
