"""A resident reads the 公示 list on a phone-sized headless Chromium, objects with a one-time
code, and after the department upholds the objection sees the revised list and the verdict.

``pingxuan up`` runs the system; the one-time code goes through the notification service's
``log`` channel (its default), where the test reads it. The campaign runs on real time: a few
seconds of nomination, two candidates for one slot, the panel scores, a short vote, then
publication; it has no ``publicity`` key, so objections are taken until ``finalize``.
Screenshots at phone width are saved in the test's tmp_path (and printed).
"""
import re
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import nomination_form
from tests.system import running_system

UNIT = "城关镇党委"
MOBILE = "13812345678"
CAMPAIGN = "cb-publicity-page"
FIRST, SECOND = "城关镇“周末讲堂”", "城关镇“农家书屋”"


@pytest.fixture
def system(tmp_path):
    with running_system(tmp_path / "home") as system:
        system.home = tmp_path / "home"
        yield system


def client(system, auth_token):
    return ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, context_data={"auth_token": auth_token},
                           timeout=30)


def local(moment):
    return (moment + timedelta(hours=8)).replace(microsecond=0, tzinfo=None).isoformat()


def campaign_yaml(deadline, opens, closes):
    return f"""\
id: {CAMPAIGN}
name: 2026年全县"五创四评"活动
timezone: Asia/Shanghai
nomination: {{deadline: {local(deadline)}}}
voting: {{opens: {local(opens)}, closes: {local(closes)}}}
weights: {{public: 0.3, panel: 0.7}}
vote_normalisation: top_100
panel_method: mean
units: [{UNIT}]
categories:
  learning_activity:
    award_slots: 1
    criteria:
      - {{key: reach, name: 活动影响, weight: 1, max: 100}}
"""


def one_time_code(system, deadline=30):
    """The code the notification service's log channel wrote to its log."""
    log = system.home / "logs" / "notification.log"
    end = time.time() + deadline
    while time.time() < end:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        text = text.encode("utf-8").decode("unicode_escape", errors="ignore") \
            if "\\u" in text else text
        found = re.findall(r"objection_code.*?提出异议的验证码为(\d{6})", text)
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no objection code in {log}")


def eventually(probe, what, timeout=30):
    end = time.monotonic() + timeout
    while True:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001  (a call may be refused until an event lands)
            last = exc
        else:
            last = result
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(0.3)


def shot(browser, tmp_path, name):
    path = tmp_path / f"publicity-{name}.png"
    browser.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def test_the_publicity_page_an_objection_with_a_code_and_the_verdict(system, browser, tmp_path):
    start = datetime.now(timezone.utc)
    deadline, opens = start + timedelta(seconds=10), start + timedelta(seconds=11)
    closes = start + timedelta(seconds=13)
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(campaign_yaml(deadline, opens, closes), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))
    recommendation = {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                      "date": date.today().isoformat()}
    ids = {}
    with client(system, system.token("unit", UNIT)) as unit, \
            client(system, system.token("admin", "宣传部")) as admin, \
            client(system, system.token("judge", "j-zhao", "县委党校")) as judge:
        for key, name in (("first", FIRST), ("second", SECOND)):
            ids[key] = unit.nomination.submit(nomination_form(
                campaign_id=CAMPAIGN, category="learning_activity", org_type=None,
                client_ref=f"browser-publicity-{key}", nominee_name=name,
                recommendation=recommendation))["id"]
            admin.nomination.review(ids[key], "accept", "同意")
        admin.scoring.assign_panel(CAMPAIGN, "learning_activity",
                                   [{"judge_id": "j-zhao", "name": "赵评委", "unit": "县委党校"}])
        judge.scoring.submit(ids["first"], {"reach": 90}, "好")
        judge.scoring.submit(ids["second"], {"reach": 80}, "较好")
        admin.scoring.close_panel(CAMPAIGN, "learning_activity")
        time.sleep(max(0.0, (closes - datetime.now(timezone.utc)).total_seconds() + 0.3))
        eventually(lambda: admin.aggregation.publish(CAMPAIGN), "publish")

    wait = WebDriverWait(browser, 20)
    # The voting page's front page links the 公示 page.
    browser.get(f"http://{system.http('voting')}/")
    link = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "a.publicity-link")))
    link.click()
    wait.until(EC.visibility_of_element_located((By.ID, f"row-{ids['first']}")))
    assert f"/publicity/{CAMPAIGN}" in browser.current_url
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    row = browser.find_element(By.ID, f"row-{ids['first']}")
    assert FIRST in row.text and "综合得分" in row.text and "评审得分" in row.text
    assert not browser.find_elements(By.ID, f"row-{ids['second']}")
    assert "公示期间受理异议" in browser.find_element(By.ID, "period").text
    assert browser.find_element(By.CSS_SELECTOR, "label[for='mobile']").text == "手机号码"
    assert not browser.find_elements(By.CSS_SELECTOR, "img")  # no image captcha
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    shot(browser, tmp_path, "1-list")

    browser.find_element(By.ID, "large-text").click()
    assert "large" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    shot(browser, tmp_path, "2-large")

    # Mobile, then the code; a wrong code first: a clear Chinese message, nothing stored.
    browser.find_element(By.ID, "mobile").send_keys(MOBILE)
    browser.find_element(By.ID, "send-code").click()
    code_input = wait.until(EC.visibility_of_element_located((By.ID, "code")))
    assert "138****5678" in browser.find_element(By.ID, "message").text
    code = one_time_code(system)
    wrong = "000000" if code != "000000" else "111111"
    code_input.send_keys(wrong)
    browser.find_element(By.ID, "name").send_keys("张三")
    Select(browser.find_element(By.ID, "candidate")).select_by_value(ids["first"])
    browser.find_element(By.ID, "grounds").send_keys("该活动实际只开展过一次，材料系补做。")
    browser.find_element(By.ID, "submit-objection").click()
    # By its text: the "code sent" message is still on screen until the page replaces it.
    wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "验证码不正确"))
    assert browser.find_element(By.ID, "message").get_attribute("role") == "alert"
    assert browser.find_element(By.ID, "grounds").get_attribute("value").startswith("该活动")
    shot(browser, tmp_path, "3-wrong-code")
    with client(system, system.token("admin", "宣传部")) as admin:
        assert admin.aggregation.objections(CAMPAIGN) == []

    browser.find_element(By.ID, "code").send_keys(code)
    browser.find_element(By.ID, "submit-objection").click()
    receipt = wait.until(EC.visibility_of_element_located((By.ID, "receipt-number"))).text
    assert receipt.startswith("obj-")
    assert "已受理" in browser.find_element(By.ID, "objection-status").text
    assert MOBILE not in browser.page_source and "张三" not in browser.page_source
    shot(browser, tmp_path, "4-receipt")

    # The department upholds it (the CLI, as an operator would).
    done = system.pingxuan("objections", "resolve", receipt, "upheld", "--reason",
                           "经核实，活动材料系补做，取消参评资格")
    assert "upheld" in done.stdout
    with client(system, system.token("admin", "宣传部")) as admin:
        [row] = admin.aggregation.objections(CAMPAIGN)
    # The verdict SMS went through notification: from now on only the mobile's hash is kept.
    assert row["notice"]["status"] == "sent" and row["objector"]["mobile"] is None

    browser.get(f"http://{system.http('aggregation')}/publicity/{CAMPAIGN}")
    wait.until(EC.visibility_of_element_located((By.ID, f"row-{ids['second']}")))
    assert not browser.find_elements(By.ID, f"row-{ids['first']}")
    revision = browser.find_element(By.ID, "revision-2").text
    assert FIRST in revision and "取消参评资格" in revision and SECOND in revision
    assert "递补" in revision
    assert MOBILE not in browser.page_source and "张三" not in browser.page_source
    browser.find_element(By.ID, "revisions").location_once_scrolled_into_view
    shot(browser, tmp_path, "5-revised")

    browser.find_element(By.ID, "receipt").send_keys(receipt)
    browser.find_element(By.ID, "lookup-button").click()
    verdict = wait.until(EC.visibility_of_element_located((By.ID, "verdict")))
    assert verdict.text == "异议成立"
    assert "取消参评资格" in browser.find_element(By.ID, "reason").text
    shot(browser, tmp_path, "6-verdict")
