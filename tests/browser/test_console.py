"""One department user runs a selection in the console alone, in headless Chromium.

The system runs with ``pingxuan up``. Only what others send in their own roles
goes over RPC here: the townships' nominations (unit tokens), the votes of a
front end (frontend token) and the judges' scores (judge tokens). Everything
the department does — sign in, load the campaign, review, record the
leadership opinion, assign a panel from a CSV file, watch the votes, close the
panel, publish, finalize, download the XLSX — is done on the console's pages.
Every page is saved as a screenshot (``PINGXUAN_SCREENSHOTS`` or the test's
temporary directory).
"""
import copy
import os
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml
from nameko.standalone.rpc import ClusterRpcProxy
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import OPEN_CAMPAIGN, nomination_form

CAMPAIGN_ID = "cb-console"
LAPTOP = (1280, 1000)
TABLET = (820, 1180)


def local(moment):
    return (moment + timedelta(hours=8)).replace(microsecond=0, tzinfo=None).isoformat()


def campaign_file(tmp_path, closed=False):
    """The campaign, open now; ``closed``: the same with nomination and voting just ended
    (the department shortens the vote, so that the test need not wait days to publish)."""
    now = datetime.now(timezone.utc)
    document = copy.deepcopy(OPEN_CAMPAIGN)
    document.update({
        "id": CAMPAIGN_ID, "name": "2026年全县“五创四评”活动（控制台演练）",
        "nomination": {"deadline": local(now - timedelta(minutes=2) if closed
                                         else now + timedelta(days=5))},
        "voting": {"opens": local(now - timedelta(days=1)),
                   "closes": local(now - timedelta(minutes=1) if closed
                                   else now + timedelta(days=10))},
    })
    path = tmp_path / ("campaign-closed.yml" if closed else "campaign.yml")
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def client(system, auth_token):
    return ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, context_data={"auth_token": auth_token},
                           timeout=30)


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("PINGXUAN_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def save(browser, name):
        browser.save_screenshot(str(folder / f"console-{name}.png"))

    save.folder = folder
    return save


def full_page(browser, size=LAPTOP):
    """Grow the window to the page's height so that the screenshot shows all of it."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(size[0], min(max(height + 40, size[1]), 6000))


def done(wait, text):
    """Wait for the confirmation of the form just sent, by its text: the page the form
    was sent from may still show an earlier confirmation, which goes stale as the new
    page loads (waiting on the element alone then reads a detached node)."""
    wait.until(EC.text_to_be_present_in_element((By.ID, "done"), text))


def sign_in(browser, wait, console, auth_token):
    browser.get(f"{console}/sign-in")
    box = wait.until(EC.visibility_of_element_located((By.ID, "token")))
    box.clear()
    box.send_keys(auth_token)
    browser.find_element(By.ID, "sign-in-button").click()


def logs_hold_none_of(system, *secrets):
    """No token and no sign-in code in any service's log (the console's access log included)."""
    for log in (Path(system.env["PINGXUAN_HOME"]) / "logs").glob("*.log"):
        text = log.read_text(encoding="utf-8", errors="replace")
        assert "pxlink1" not in text, f"a sign-in code is in {log}"
        for secret in secrets:
            assert secret not in text, f"a secret is in {log}"


def session_cookies(browser):
    return {c["name"]: c["value"] for c in browser.get_cookies()}


def test_the_department_runs_a_selection_in_the_console(system, browser, tmp_path, shots):
    console = f"http://{system.http('console')}"
    wait = WebDriverWait(browser, 30)
    browser.set_window_size(*LAPTOP)
    admin = system.token("admin", "宣传部")
    unit = system.token("unit", "城关镇党委")

    # A signed-out visitor is sent to sign in.
    browser.get(f"{console}/campaigns")
    wait.until(EC.visibility_of_element_located((By.ID, "token")))
    assert "/sign-in" in browser.current_url and "请先登录" in browser.page_source
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    shots(browser, "01-sign-in")

    # A unit's token is refused at sign-in, in Chinese.
    sign_in(browser, wait, console, unit)
    error = wait.until(EC.visibility_of_element_located((By.ID, "error-token")))
    assert "控制台只接受宣传部的管理员令牌" in error.text
    assert unit not in browser.page_source
    shots(browser, "02-unit-token-refused")

    # The admin signs in; the token is nowhere on the page.
    sign_in(browser, wait, console, admin)
    wait.until(EC.visibility_of_element_located((By.ID, "upload-campaign")))
    assert admin not in browser.page_source
    cookie = [c for c in browser.get_cookies() if c["name"] == "px_console"][0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # A form posted without its CSRF token is refused, and nothing changes.
    refused = requests.post(f"{console}/campaigns/{CAMPAIGN_ID}/results/publish",
                            data={"confirm": "yes"}, cookies=session_cookies(browser),
                            allow_redirects=False, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.text

    # 1 Load the campaign: first a broken file (errors name key and line), then the real one.
    broken = tmp_path / "broken.yml"
    broken.write_text("id: cb-broken\nname: 坏文件\ntimezone: Mars/Olympus\n", encoding="utf-8")
    browser.find_element(By.ID, "campaign_file").send_keys(str(broken))
    browser.find_element(By.ID, "upload-campaign").click()
    problems = wait.until(EC.visibility_of_element_located((By.ID, "campaign-problems")))
    assert "timezone" in problems.text and "3" in problems.text
    full_page(browser)
    shots(browser, "03-campaign-file-refused")
    browser.set_window_size(*LAPTOP)
    browser.find_element(By.ID, "campaign_file").send_keys(str(campaign_file(tmp_path)))
    browser.find_element(By.ID, "upload-campaign").click()
    wait.until(EC.visibility_of_element_located((By.ID, "timeline")))
    assert "正在接受单位推荐；网络投票进行中" in browser.find_element(By.ID, "stands-now").text
    full_page(browser)
    shots(browser, "04-campaign-timeline")
    browser.set_window_size(*LAPTOP)

    # The townships send their nominations from their own systems.
    recommendation = {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                      "date": date.today().isoformat()}
    names = ["县财政局机关党委", "县一中党总支", "城关镇东街社区党支部"]
    org_types = ["agency", "school", "community"]
    with client(system, unit) as township:
        ids = [township.nomination.submit(nomination_form(
            campaign_id=CAMPAIGN_ID, client_ref=f"console-{i}", nominee_name=name,
            nominee_unit=name, org_type=org_type, recommendation=recommendation))["id"]
            for i, (name, org_type) in enumerate(zip(names, org_types))]

    # 2 Nominations: intake against caps, the forfeits, the 推薦表.
    browser.find_element(By.ID, "nav-nominations").click()
    wait.until(EC.visibility_of_element_located((By.ID, "nominations")))
    assert "3/50" in browser.find_element(By.ID, "intake-advanced_unit").get_attribute("innerHTML")
    assert "东河乡党委" in browser.find_element(By.ID, "forfeits").text
    full_page(browser)
    shots(browser, "05-nominations")
    browser.set_window_size(*LAPTOP)

    def review(nomination_id, decision, opinion):
        browser.get(f"{console}/nominations/{nomination_id}")
        wait.until(EC.visibility_of_element_located((By.ID, f"decision-{decision}"))).click()
        box = browser.find_element(By.ID, "opinion")
        box.clear()
        if opinion:
            box.send_keys(opinion)
        browser.find_element(By.ID, "review-button").click()

    review(ids[0], "accept", "材料齐全，同意列为候选对象。")
    done(wait, "初审意见已记录")
    # A rejection without a reason is refused next to the opinion; the choice is kept.
    review(ids[1], "reject", "")
    message = wait.until(EC.visibility_of_element_located((By.ID, "error-opinion")))
    assert "不通过须写明理由" in message.text
    assert browser.find_element(By.ID, "decision-reject").is_selected()
    full_page(browser)
    shots(browser, "06-rejection-needs-a-reason")
    browser.set_window_size(*LAPTOP)
    review(ids[1], "reject", "事迹材料与推荐类别不符。")
    done(wait, "初审意见已记录")
    review(ids[2], "accept", "同意。")
    done(wait, "初审意见已记录")

    # The leadership group's opinion on the first candidate.
    browser.get(f"{console}/nominations/{ids[0]}")
    wait.until(EC.visibility_of_element_located((By.ID, "leadership_opinion"))).send_keys(
        "同意评审委员会意见。")
    browser.find_element(By.ID, "leadership-button").click()
    done(wait, "领导小组意见已记录")
    page = browser.page_source
    for text in ("推荐单位意见", "王建国", "材料齐全，同意列为候选对象。", "同意评审委员会意见。",
                 "已通过（候选）"):
        assert text in page
    full_page(browser)
    shots(browser, "07-nomination-form")
    browser.set_window_size(*LAPTOP)

    # 4 Panels: judges from an uploaded CSV file.
    judges_csv = tmp_path / "judges.csv"
    judges_csv.write_text("judge_id,name,unit\nj-01,张华,县委党校\nj-02,李敏,县教育局\n",
                          encoding="utf-8")
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/panels")
    Select(wait.until(EC.visibility_of_element_located((By.ID, "panel-category")))
           ).select_by_value("advanced_unit")
    browser.find_element(By.ID, "judges_file").send_keys(str(judges_csv))
    browser.find_element(By.ID, "assign-button").click()
    done(wait, "评审组已设置")

    def panel_lists_both_candidates(driver):
        driver.refresh()
        panel = driver.find_elements(By.ID, "panel-advanced_unit")
        return panel and names[0] in panel[0].text and names[2] in panel[0].text

    wait.until(panel_lists_both_candidates)
    assert "张华" in browser.find_element(By.ID, "panel-advanced_unit").text

    # The judges have no mobile or e-mail on file: the department hands their links over.
    browser.find_element(By.ID, "links-send-advanced_unit-j-01").click()
    link = wait.until(EC.visibility_of_element_located((By.ID, "link-j-01"))).get_attribute("value")
    assert "/judge" in link and link not in browser.current_url
    full_page(browser)
    shots(browser, "09a-judge-link")
    browser.set_window_size(*LAPTOP)
    # A link that went to the wrong person is replaced, after a confirmation.
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/panels")
    wait.until(EC.element_to_be_clickable((By.ID, "links-renew-advanced_unit-j-02"))).click()
    confirm = wait.until(EC.element_to_be_clickable((By.ID, "confirm-renew")))
    posted = {field.get_attribute("name"): field.get_attribute("value") for field in
              browser.find_elements(By.CSS_SELECTOR, "#links-confirm-box input[type=hidden]")}
    confirm.click()
    assert "j-02" in wait.until(EC.visibility_of_element_located((By.ID, "links-renewed"))).text
    renewed = browser.find_element(By.ID, "link-j-02").get_attribute("value")
    assert renewed and renewed != link
    shots(browser, "09b-judge-link-renewed")
    # A reload re-posts the confirmation (what the browser sends when one resubmits the page):
    # it says the renewal was done and renews nothing more, so the link just shown stays good.
    browser.execute_script("""
        const form = document.createElement("form");
        form.method = "post"; form.action = arguments[0];
        for (const [name, value] of Object.entries(arguments[1])) {
            const field = document.createElement("input");
            field.type = "hidden"; field.name = name; field.value = value;
            form.appendChild(field);
        }
        document.body.appendChild(form); form.submit();""",
        f"/campaigns/{CAMPAIGN_ID}/panels/links", posted)
    assert "没有再次更换" in wait.until(
        EC.visibility_of_element_located((By.ID, "links-renewed-before"))).text
    assert not browser.find_elements(By.ID, "link-j-02")
    shots(browser, "09c-judge-link-renewal-reposted")
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/panels")
    browser.find_element(By.ID, "links-send-advanced_unit-j-02").click()
    assert wait.until(EC.visibility_of_element_located((By.ID, "link-j-02"))) \
        .get_attribute("value") == renewed

    # Votes arrive from a front end; the judges score on their own.
    frontend = system.token("frontend", "县融媒体小程序")
    with client(system, frontend) as front:
        # Acceptance reaches the ballot as an event: the front end waits for it, as it would.
        deadline = time.time() + 30
        while {ids[0], ids[2]} - {row["candidate_id"] for row in
                                  front.voting.ballot(CAMPAIGN_ID, "advanced_unit")}:
            assert time.time() < deadline, "the accepted candidates never reached the ballot"
            time.sleep(0.3)
        votes = [{"vote_id": uuid.uuid4().hex, "campaign_id": CAMPAIGN_ID,
                  "candidate_id": ids[i % 2 * 2], "voter": {"channel": "wechat", "id": f"openid-console-{i:04d}"},
                  "client": {"ip": f"10.9.{i}.1", "user_agent": "test"}} for i in range(12)]
        results = front.voting.cast_many(votes)
    assert {r["status"] for r in results} == {"accepted"}, results
    for judge_id, base in (("j-01", 80), ("j-02", 90)):
        with client(system, system.token("judge", judge_id)) as judge:
            for offset, candidate in enumerate((ids[0], ids[2])):
                judge.scoring.submit(candidate, {"organisation": base + offset,
                                                 "results": base - offset})

    # 3 Voting: the votes appear on the chart.
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/voting")

    def counted(driver):
        driver.refresh()
        total = driver.find_elements(By.ID, "traffic-total")
        return total and "累计计入 12 票" in total[0].text

    wait.until(counted)
    assert "全部共12票" in browser.find_element(By.ID, "traffic-overall").get_attribute("innerHTML")
    Select(browser.find_element(By.ID, "candidate")).select_by_value(ids[0])
    browser.find_element(By.ID, "candidate-button").click()
    wait.until(EC.presence_of_element_located((By.ID, "traffic-candidate")))
    full_page(browser)
    shots(browser, "08-voting")
    browser.set_window_size(*LAPTOP)

    # Close the panel.
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/panels")
    wait.until(EC.element_to_be_clickable((By.ID, "close-advanced_unit"))).click()
    done(wait, "评审组已结束评分")
    full_page(browser)
    shots(browser, "09-panels")
    browser.set_window_size(*LAPTOP)

    # The vote ends: the department loads the campaign again with the window closed.
    browser.get(f"{console}/campaigns")
    browser.find_element(By.ID, "campaign_file").send_keys(str(campaign_file(tmp_path, True)))
    browser.find_element(By.ID, "upload-campaign").click()
    wait.until(EC.visibility_of_element_located((By.ID, "timeline")))
    assert "投票已结束" in browser.find_element(By.ID, "stands-now").text

    # 5 Results: publish (with a confirmation), finalize, download the XLSX.
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/results")

    def panel_closed_reached_results(driver):
        driver.refresh()
        table = driver.find_elements(By.ID, "results-advanced_unit")
        return table and "评审尚未结束" not in driver.find_element(
            By.ID, "cat-advanced_unit").text and names[0] in table[0].text

    wait.until(panel_closed_reached_results)
    browser.find_element(By.ID, "publish-button").click()
    wait.until(EC.visibility_of_element_located((By.ID, "confirm-box")))
    shots(browser, "10-publish-confirmation")
    browser.find_element(By.ID, "confirm-publish").click()

    def published_or_refused(driver):
        # The new voting window reaches aggregation as an event: until then it refuses, by name.
        refusal = driver.find_elements(By.ID, "action-refusal")
        if refusal and "结束后才能发布公示名单" in refusal[0].text:
            driver.find_element(By.ID, "publish-button").click()
            driver.find_element(By.ID, "confirm-publish").click()
            return False
        return driver.find_elements(By.ID, "done")

    wait.until(published_or_refused)
    done(wait, "已发布公示名单")
    assert "公示中" in browser.find_element(By.ID, "phase").text
    full_page(browser)
    shots(browser, "11-published")
    browser.set_window_size(*LAPTOP)
    browser.find_element(By.ID, "finalize-button").click()
    wait.until(EC.visibility_of_element_located((By.ID, "confirm-finalize"))).click()
    done(wait, "已审定")
    href = browser.find_element(By.ID, "download-xlsx").get_attribute("href")
    xlsx = requests.get(href, cookies=session_cookies(browser), timeout=30)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert "spreadsheetml" in xlsx.headers["Content-Type"]
    full_page(browser)
    shots(browser, "12-finalized")

    # 6 Messages and 7 audit.
    browser.set_window_size(*LAPTOP)
    browser.get(f"{console}/messages")
    wait.until(EC.visibility_of_element_located((By.ID, "parked")))
    shots(browser, "13-messages")
    browser.get(f"{console}/audit?campaign_id={CAMPAIGN_ID}")
    audit = wait.until(EC.visibility_of_element_located((By.ID, "audit")))
    assert "record_leadership_opinion" in audit.text and "close_panel" in audit.text
    full_page(browser)
    shots(browser, "14-audit")

    # On a tablet, large text.
    browser.set_window_size(*TABLET)
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/results?size=large")
    wait.until(EC.visibility_of_element_located((By.ID, "phase")))
    assert "large" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    shots(browser, "15-tablet-large-text")

    # A revoked token loses its session within seconds.
    system.pingxuan("token", "revoke", admin)

    def sent_to_sign_in(driver):
        driver.get(f"{console}/campaigns")
        return "/sign-in" in driver.current_url

    WebDriverWait(browser, 15, poll_frequency=0.5).until(sent_to_sign_in)
    assert "已被吊销" in browser.page_source
    shots(browser, "16-revoked")
    logs_hold_none_of(system, admin, unit, frontend)


def test_a_one_time_sign_in_link_signs_in_once(system, browser, shots):
    console = f"http://{system.http('console')}"
    issued = system.pingxuan("token", "issue", "--role", "admin", "--name", "宣传部",
                             "--sign-in-link").stdout.strip().splitlines()
    link = [line for line in issued if "/sign-in/link#" in line][0].split(": ", 1)[1]
    assert link.startswith(console)
    browser.set_window_size(*LAPTOP)
    wait = WebDriverWait(browser, 30)
    browser.get(link)
    wait.until(EC.visibility_of_element_located((By.ID, "upload-campaign")))
    assert "#" not in browser.current_url
    shots(browser, "17-signed-in-by-link")
    browser.delete_all_cookies()
    browser.get(link)
    error = wait.until(EC.visibility_of_element_located((By.ID, "error-code")))
    assert "已经用过" in error.text
    shots(browser, "18-link-used-twice")
    logs_hold_none_of(system, link.split("#", 1)[1], issued[-1])


def contract_method_missing(browser, refusal_id):
    """True when the answer page shows that the service lacks a CONTRACT.md method (not merged
    yet); waits for the answer (its done message or its refusal) first."""
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.ID, "done")
                                     or driver.find_elements(By.ID, refusal_id))
    found = browser.find_elements(By.ID, refusal_id)
    return bool(found) and "该功能所需的服务方法尚未上线" in found[0].text


def test_a_burst_is_voided_and_restored_and_an_objection_upheld(system, browser, tmp_path, shots):
    """CONTRACT.md "Voiding votes" and "Objections during 公示", from the console alone.

    Skipped, saying which, while voting or aggregation lacks those methods on this branch.
    """
    console = f"http://{system.http('console')}"
    wait = WebDriverWait(browser, 30)
    browser.set_window_size(*LAPTOP)
    sign_in(browser, wait, console, system.token("admin", "宣传部"))
    wait.until(EC.visibility_of_element_located((By.ID, "upload-campaign")))
    browser.find_element(By.ID, "campaign_file").send_keys(str(campaign_file(tmp_path)))
    browser.find_element(By.ID, "upload-campaign").click()
    wait.until(EC.visibility_of_element_located((By.ID, "timeline")))
    recommendation = {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                      "date": date.today().isoformat()}
    with client(system, system.token("unit", "城关镇党委")) as township:
        ids = [township.nomination.submit(nomination_form(
            campaign_id=CAMPAIGN_ID, client_ref=f"burst-{i}", nominee_name=name,
            nominee_unit=name, recommendation=recommendation))["id"]
            for i, name in enumerate(["县财政局机关党委", "县税务局机关党委"])]
    for nomination_id in ids:
        browser.get(f"{console}/nominations/{nomination_id}")
        wait.until(EC.visibility_of_element_located((By.ID, "decision-accept"))).click()
        browser.find_element(By.ID, "review-button").click()
        done(wait, "初审意见已记录")
    with client(system, system.token("frontend", "县融媒体小程序")) as front:
        deadline = time.time() + 30
        while set(ids) - {row["candidate_id"] for row in front.voting.ballot(CAMPAIGN_ID)}:
            assert time.time() < deadline
            time.sleep(0.3)
        # A burst for the first from one network, and ordinary votes for the second.
        front.voting.cast_many([
            {"vote_id": uuid.uuid4().hex, "campaign_id": CAMPAIGN_ID,
             "candidate_id": ids[0] if i < 8 else ids[1],
             "voter": {"channel": "wechat", "id": f"openid-burst-{i:04d}"},
             "client": {"ip": f"10.7.7.{i + 1}" if i < 8 else f"10.{i}.1.1", "user_agent": "t"}}
            for i in range(12)])

    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/voting")

    def total(driver, count):
        driver.refresh()
        found = driver.find_elements(By.ID, "traffic-total")
        return found and f"累计计入 {count} 票" in found[0].text

    wait.until(lambda driver: total(driver, 12))
    browser.find_element(By.ID, "void-network").send_keys("10.7.7.0/24")
    browser.find_element(By.ID, "void-reason").send_keys("同一网段短时集中投票")
    browser.find_element(By.ID, "void-button").click()
    if contract_method_missing(browser, "void-refusal"):
        pytest.skip("voting.void_votes is not on this branch yet (CONTRACT.md 'Voiding votes')")
    done(wait, "已作废 8 票")
    wait.until(lambda driver: total(driver, 4))
    full_page(browser)
    shots(browser, "19-voided")
    browser.set_window_size(*LAPTOP)
    browser.find_element(By.ID, "restore-reason").send_keys("经核实为单位集体组织的正常投票")
    browser.find_element(By.ID, "restore-button").click()
    done(wait, "已恢复")
    wait.until(lambda driver: total(driver, 12))

    # Close the vote, the panel (no judges: panel scores are absent), publish.
    browser.get(f"{console}/campaigns")
    browser.find_element(By.ID, "campaign_file").send_keys(str(campaign_file(tmp_path, True)))
    browser.find_element(By.ID, "upload-campaign").click()
    wait.until(EC.visibility_of_element_located((By.ID, "timeline")))
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/panels")
    browser.find_element(By.ID, "judges_text").send_keys("j-09, 赵评委, 县委党校")
    browser.find_element(By.ID, "assign-button").click()
    done(wait, "评审组已设置")

    def both_on_the_panel(driver):
        driver.refresh()
        panel = driver.find_elements(By.ID, "panel-advanced_unit")
        return panel and "县税务局机关党委" in panel[0].text and "县财政局机关党委" in panel[0].text

    wait.until(both_on_the_panel)
    with client(system, system.token("judge", "j-09")) as judge:
        for candidate in ids:
            judge.scoring.submit(candidate, {"organisation": 80, "results": 80})
    wait.until(EC.element_to_be_clickable((By.ID, "close-advanced_unit"))).click()
    done(wait, "评审组已结束评分")
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/results")

    def published(driver):
        driver.get(f"{console}/campaigns/{CAMPAIGN_ID}/results")
        buttons = driver.find_elements(By.ID, "publish-button")
        if not buttons:
            return "公示中" in driver.find_element(By.ID, "phase").text
        buttons[0].click()
        driver.find_element(By.ID, "confirm-publish").click()
        return bool(driver.find_elements(By.ID, "done"))

    wait.until(published)
    browser.get(f"{console}/campaigns/{CAMPAIGN_ID}/results")
    Select(wait.until(EC.visibility_of_element_located((By.ID, "lodge-candidate")))
           ).select_by_value(ids[0])
    browser.find_element(By.ID, "lodge-name").send_keys("王五")
    browser.find_element(By.ID, "lodge-mobile").send_keys("13900001111")
    browser.find_element(By.ID, "lodge-grounds").send_keys("该单位推荐材料中的学习活动未实际开展。")
    browser.find_element(By.ID, "lodge-button").click()
    if contract_method_missing(browser, "lodge-refusal"):
        pytest.skip("aggregation.lodge_objection is not on this branch yet "
                    "(CONTRACT.md 'Objections during 公示')")
    wait.until(EC.visibility_of_element_located((By.ID, "objections")))
    Select(browser.find_element(By.ID, "verdict-1")).select_by_value("upheld")
    browser.find_element(By.ID, "oreason-1").send_keys("经调查属实。")
    browser.find_element(By.CSS_SELECTOR, "#objections button").click()
    done(wait, "异议处理结论已记录")
    assert "取消资格" in browser.find_element(By.ID, "results-advanced_unit").text
    full_page(browser)
    shots(browser, "20-objection-upheld")
