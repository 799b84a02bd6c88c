"""A resident verifies a phone number on a phone-sized headless Chromium, votes, sees the
receipt, and sees the refusal when voting for the same candidate again.

The system runs with ``pingxuan up``, the voting service's one-time codes going
to its own log (``VOTING_OTP_SENDER=log``), where the test reads the code. The
candidate is put on the ballot as the department would: campaign loaded with
the CLI (voting open now, real time), a nomination submitted by a unit and
accepted in review over RPC.
"""
import copy
import re
import time
from datetime import date, datetime, timedelta, timezone

import pytest
import yaml
from nameko.standalone.rpc import ClusterRpcProxy
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import computed_style
from tests.conftest import OPEN_CAMPAIGN, nomination_form
from tests.system import running_system

UNIT = "城关镇党委"
MOBILE = "13812345678"
NOMINEE = "县财政局机关党委"


@pytest.fixture
def system(tmp_path):
    with running_system(tmp_path / "home", extra_env={"VOTING_OTP_SENDER": "log"}) as system:
        system.home = tmp_path / "home"
        yield system


def client(system, auth_token):
    return ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, context_data={"auth_token": auth_token},
                           timeout=30)


def local(moment):
    """Wall-clock time in Asia/Shanghai, as the campaign file gives it."""
    return (moment + timedelta(hours=8)).replace(microsecond=0, tzinfo=None).isoformat()


def open_campaign():
    now = datetime.now(timezone.utc)
    document = copy.deepcopy(OPEN_CAMPAIGN)
    document.update({
        "id": "cb-vote-page",
        "nomination": {"deadline": local(now + timedelta(days=5))},
        "voting": {"opens": local(now - timedelta(days=1)), "closes": local(now + timedelta(days=10)),
                   "daily_limit": 5},
    })
    return document


def one_time_code(system, deadline=30):
    """The code the log channel wrote to the voting service's log."""
    log = system.home / "logs" / "voting.log"
    end = time.time() + deadline
    while time.time() < end:
        found = re.findall(r"otp_code sms to 138\*\*\*\*5678: .*?验证码为(\d{6})", log.read_text(
            encoding="utf-8", errors="replace")) if log.exists() else []
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no one-time code in {log}")


def test_a_resident_verifies_votes_sees_the_receipt_and_the_refusal(system, browser, tmp_path,
                                                                   screenshot):
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(yaml.safe_dump(open_campaign(), allow_unicode=True), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))
    recommendation = {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                      "date": date.today().isoformat()}
    with client(system, system.token("unit", UNIT)) as unit:
        cid = unit.nomination.submit(nomination_form(
            campaign_id="cb-vote-page", client_ref="browser-vote-1", nominee_name=NOMINEE,
            recommendation=recommendation))["id"]
    with client(system, system.token("admin", "宣传部")) as admin:
        admin.nomination.review(cid, "accept", "同意")

    page = f"http://{system.http('voting')}/campaigns/cb-vote-page"
    wait = WebDriverWait(browser, 20)
    browser.get(page)
    # The acceptance reaches the ballot as an event: reload until the candidate is listed.
    wait.until(lambda driver: driver.find_elements(By.ID, f"candidate-{cid}") or
               driver.refresh())
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    card = browser.find_element(By.ID, f"candidate-{cid}")
    assert NOMINEE in card.text and "当前票数：0" in card.text
    assert "“书香机关”" in card.text                                  # the deeds summary
    assert browser.find_element(By.CSS_SELECTOR, "label[for='mobile']").text == "手机号码"
    assert not browser.find_elements(By.CSS_SELECTOR, "img")        # no image captcha
    assert computed_style(browser, "header", "backgroundColor") == "rgb(183, 28, 28)"
    # The style sheet's own base size (the inline style it replaced was escaped, so its quoted
    # font list made the whole `font` rule invalid and the page fell back to 16 px).
    assert computed_style(browser, "body", "fontSize") == "18px"
    screenshot("voting-1-ballot")

    # Large text for older residents.
    browser.find_element(By.ID, "large-text").click()
    assert "large" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    assert computed_style(browser, "body", "fontSize") == "24px"

    # A malformed number is refused in Chinese.
    browser.find_element(By.ID, "mobile").send_keys("12345")
    browser.find_element(By.ID, "send-code").click()
    assert "手机号码" in wait.until(EC.visibility_of_element_located((By.ID, "message"))).text

    # Verify the number with the one-time code.
    browser.find_element(By.ID, "mobile").send_keys(MOBILE)
    browser.find_element(By.ID, "send-code").click()
    code_input = wait.until(EC.visibility_of_element_located((By.ID, "code")))
    assert "138****5678" in browser.find_element(By.ID, "message").text
    code_input.send_keys(one_time_code(system))
    browser.find_element(By.ID, "verify-button").click()
    verified = wait.until(EC.visibility_of_element_located((By.ID, "verified")))
    assert "138****5678" in verified.text
    screenshot("voting-2-verified")

    # Vote: the receipt.
    vote_button = browser.find_element(By.CSS_SELECTOR, f"#candidate-{cid} button.vote")
    assert vote_button.get_attribute("aria-label") == f"为{NOMINEE}投一票"
    vote_button.click()
    receipt = wait.until(EC.visibility_of_element_located((By.ID, "receipt-code"))).text
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", receipt)
    assert "投票成功" in browser.find_element(By.ID, "message").text
    assert "当前票数：1" in browser.find_element(By.ID, f"candidate-{cid}").text
    screenshot("voting-3-receipt")

    # Vote again for the same candidate today: refused, in plain Chinese.
    browser.find_element(By.CSS_SELECTOR, f"#candidate-{cid} button.vote").click()
    # By its text: the success message is still on screen until the page replaces it.
    wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "今天已经为这位候选对象投过票"))
    assert browser.find_element(By.ID, "message").get_attribute("role") == "alert"
    assert not browser.find_elements(By.ID, "receipt-code")

    # The receipt can be checked later.
    browser.find_element(By.ID, "receipt-input").send_keys(receipt)
    browser.find_element(By.ID, "check-receipt").click()
    status = wait.until(EC.visibility_of_element_located((By.ID, "receipt-status")))
    assert "已计入" in status.text and NOMINEE in status.text
    screenshot("voting-4-receipt-checked")

    # One vote counted, as the ballot says to anyone.
    with client(system, None) as anyone:
        [row] = anyone.voting.ballot("cb-vote-page", "advanced_unit")
    assert row["candidate_id"] == cid and row["votes"] == 1
