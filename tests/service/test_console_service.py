"""The console's HTTP entrypoints with nameko's ``worker_factory``: no broker.

The other services are a fake ``Desk`` that records each call with the token it
was made under and answers from a table (or raises the service's refusal).
"""
import io
import re
from datetime import timedelta

import mongomock
import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.console import sessions
from services.console.providers import Settings
from services.console.service import ConsoleService
from shared.auth import read_token
from shared.errors import InvalidState, Unavailable, ValidationError
from shared.timeutil import utcnow
from tests.conftest import TEST_KEYS, TEST_SECRET, campaign_document, nomination_form, token

CSRF_KEY = "console-test-csrf-key-0123456789"

CAMPAIGN = campaign_document()


class FakeDesk:
    def __init__(self, replies):
        self.replies = replies
        self.calls = []
        self.token = None

    def act_as(self, token):
        self.token = token

    def call(self, service, method, *args, **kwargs):
        self.calls.append((service, method, args, kwargs, self.token))
        reply = self.replies.get(f"{service}.{method}")
        if isinstance(reply, Exception):
            raise reply
        return reply(*args, **kwargs) if callable(reply) else reply

    def made(self, name):
        return [call for call in self.calls if f"{call[0]}.{call[1]}" == name]


class FakeAuth:
    def __init__(self):
        self.revoked = set()

    def verify(self, auth_token):
        return read_token(TEST_SECRET, auth_token, utcnow(), lambda jti: jti in self.revoked)


class Harness:
    def __init__(self):
        self.now = utcnow()
        self.store = sessions.SessionStore(mongomock.MongoClient(tz_aware=True)["pxtest_console"])
        self.auth = FakeAuth()
        self.desk = FakeDesk({
            "nomination.get_campaign": CAMPAIGN,
            "aggregation.publication": {"phase": "open", "published_at": None,
                                        "finalized_at": None},
            "nomination.list": [],
            "nomination.forfeits": {"deadline": "2099-10-30T23:59:59", "timezone": "Asia/Shanghai",
                                    "deadline_passed": False, "forfeited_units": ["东河乡党委"]},
        })
        self.cookies = {}
        self.service = worker_factory(ConsoleService, auth=self.auth, store=self.store,
                                      desk=self.desk, settings=Settings(CSRF_KEY, False, TEST_KEYS),
                                      now=lambda: self.now)

    def request(self, method, path, data=None, headers=None, cookies=None, **kwargs):
        builder = EnvironBuilder(method=method, path=path, data=data, headers=headers, **kwargs)
        jar = self.cookies if cookies is None else cookies
        if jar:
            builder.headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
        return Request(builder.get_environ())

    def remember(self, response):
        for header in response.headers.getlist("Set-Cookie"):
            name, value = header.split(";")[0].split("=", 1)
            self.cookies[name] = value
        return response

    def sign_in(self, auth_token, headers=None):
        page = self.remember(self.service.sign_in_page(self.request("GET", "/sign-in")))
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
        return self.remember(self.service.sign_in(self.request(
            "POST", "/sign-in", data={"token": auth_token, "csrf_token": csrf},
            headers=headers)))

    def csrf(self):
        return sessions.csrf_token(CSRF_KEY, self.cookies[sessions.SESSION_COOKIE])


@pytest.fixture
def harness():
    return Harness()


ADMIN = token("admin", "宣传部")


def body(response):
    return response.get_data(as_text=True)


def test_a_signed_out_visitor_is_sent_to_sign_in(harness):
    response = harness.service.campaigns_page(harness.request("GET", "/campaigns"))
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/sign-in?reason=signed-out&next=")
    assert harness.desk.calls == []


def test_an_admin_signs_in_with_a_strict_httponly_cookie_and_the_token_is_not_on_the_page(harness):
    response = harness.sign_in(ADMIN)
    assert response.status_code == 303 and response.headers["Location"] == "/campaigns"
    cookie = [h for h in response.headers.getlist("Set-Cookie")
              if h.startswith(sessions.SESSION_COOKIE + "=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert "Max-Age=28800" in cookie
    assert ADMIN not in cookie
    page = harness.service.campaign_page(harness.request("GET", "/campaigns/cb-test"),
                                         campaign_id="cb-test")
    assert page.status_code == 200 and ADMIN not in body(page)
    assert "网络投票" in body(page) and 'lang="zh-CN"' in body(page)
    # Every call was made with the person's own token.
    assert {call[4] for call in harness.desk.calls} == {ADMIN}


def test_the_cookie_is_secure_behind_a_tls_proxy(harness):
    response = harness.sign_in(ADMIN, headers={"X-Forwarded-Proto": "https"})
    cookie = [h for h in response.headers.getlist("Set-Cookie")
              if h.startswith(sessions.SESSION_COOKIE + "=")][0]
    assert "Secure" in cookie


@pytest.mark.parametrize("role, words", [("unit", "推荐单位"), ("judge", "评委"),
                                         ("frontend", "投票前端")])
def test_a_token_of_another_role_is_refused_at_sign_in(harness, role, words):
    response = harness.sign_in(token(role, "城关镇党委"))
    assert response.status_code == 403
    assert f"这是“{words}”令牌，控制台只接受宣传部的管理员令牌" in body(response)
    assert sessions.SESSION_COOKIE not in harness.cookies
    assert harness.store.sessions.count_documents({}) == 0


def test_a_forged_token_is_refused_at_sign_in(harness):
    response = harness.sign_in(ADMIN[:-3] + "AAA")
    assert response.status_code == 403 and "不是有效的管理员令牌" in body(response)
    assert harness.store.sessions.count_documents({}) == 0


def test_sign_in_without_its_csrf_token_is_refused(harness):
    harness.remember(harness.service.sign_in_page(harness.request("GET", "/sign-in")))
    response = harness.service.sign_in(harness.request("POST", "/sign-in",
                                                       data={"token": ADMIN}))
    assert response.status_code == 403 and "CSRF" in body(response)
    assert harness.store.sessions.count_documents({}) == 0


def test_a_form_posted_without_its_csrf_token_is_refused_and_nothing_is_called(harness):
    harness.sign_in(ADMIN)
    for data in ({"decision": "accept"}, {"decision": "accept", "csrf_token": "forged"}):
        response = harness.service.nomination_review(
            harness.request("POST", "/nominations/n1/review", data=data), nomination_id="n1")
        assert response.status_code == 403 and "CSRF" in body(response)
    assert harness.desk.made("nomination.review") == []


def test_a_revoked_token_loses_its_session(harness):
    harness.sign_in(ADMIN)
    page = harness.service.campaigns_page(harness.request("GET", "/campaigns"))
    assert page.status_code == 200
    harness.auth.revoked.add(read_token(TEST_SECRET, ADMIN, utcnow()).token_id)
    response = harness.service.campaigns_page(harness.request("GET", "/campaigns"))
    assert response.status_code == 303 and "reason=revoked" in response.headers["Location"]
    assert harness.store.sessions.count_documents({}) == 0


def test_an_expired_session_is_sent_to_sign_in(harness):
    harness.sign_in(ADMIN)
    harness.now += sessions.SESSION_TTL
    response = harness.service.campaigns_page(harness.request("GET", "/campaigns"))
    assert response.status_code == 303 and "reason=expired" in response.headers["Location"]


def test_sign_out_ends_the_session(harness):
    harness.sign_in(ADMIN)
    response = harness.service.sign_out(harness.request(
        "POST", "/sign-out", data={"csrf_token": harness.csrf()}))
    assert response.status_code == 303
    assert harness.store.sessions.count_documents({}) == 0


def test_a_sign_in_link_works_once(harness):
    code = sessions.sign_in_code(TEST_SECRET, ADMIN, harness.now)

    def post():
        page = harness.remember(harness.service.sign_in_link_page(
            harness.request("GET", "/sign-in/link")))
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', body(page))[1]
        return harness.remember(harness.service.sign_in_link(harness.request(
            "POST", "/sign-in/link", data={"code": code, "csrf_token": csrf})))

    assert post().status_code == 303
    assert harness.store.sessions.count_documents({}) == 1
    again = post()
    assert again.status_code == 403 and "已经用过" in body(again)
    assert harness.store.sessions.count_documents({}) == 1


def test_a_unit_tokens_sign_in_link_is_refused_and_not_spent(harness):
    code = sessions.sign_in_code(TEST_SECRET, token("unit", "城关镇党委"), harness.now)
    page = harness.remember(harness.service.sign_in_link_page(harness.request("GET", "/sign-in/link")))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body(page))[1]
    response = harness.service.sign_in_link(harness.request(
        "POST", "/sign-in/link", data={"code": code, "csrf_token": csrf}))
    assert response.status_code == 403 and "只接受" in body(response)
    assert harness.store.used_links.count_documents({}) == 0


def test_a_refused_review_shows_the_message_by_its_field_and_keeps_what_was_typed(harness):
    record = dict(nomination_form(), id="n1", unit="城关镇党委", status="submitted")
    harness.desk.replies.update({
        "nomination.get": record,
        "nomination.review": ValidationError({"opinion": ["a rejection needs a reason"]}),
    })
    harness.sign_in(ADMIN)
    response = harness.service.nomination_review(harness.request(
        "POST", "/nominations/n1/review",
        data={"decision": "reject", "opinion": "  ", "csrf_token": harness.csrf()}),
        nomination_id="n1")
    page = body(response)
    assert response.status_code == 400
    assert re.search(r'id="error-opinion" role="alert">不通过须写明理由。<', page)
    assert 'value="reject" id="decision-reject" checked' in page
    assert "填写的内容未通过校验" in page


def test_a_review_is_passed_on_with_the_opinion(harness):
    harness.desk.replies["nomination.review"] = {"id": "n1", "status": "accepted"}
    harness.sign_in(ADMIN)
    response = harness.service.nomination_review(harness.request(
        "POST", "/nominations/n1/review",
        data={"decision": "accept", "opinion": "同意", "csrf_token": harness.csrf()}),
        nomination_id="n1")
    assert response.status_code == 303
    assert harness.desk.made("nomination.review")[0][2] == ("n1", "accept", "同意")


def test_the_nomination_page_lays_out_the_form_and_the_opinions(harness):
    harness.desk.replies["nomination.get"] = dict(
        nomination_form(), id="n1", unit="城关镇党委", status="accepted",
        review={"opinion": "同意列为候选", "signed_by": "宣传部", "date": "2026-11-01",
                "decision": "accept"},
        leadership_opinion={"opinion": "同意", "signed_by": "领导小组", "date": "2026-11-02"})
    harness.sign_in(ADMIN)
    page = body(harness.service.nomination_page(harness.request("GET", "/nominations/n1"),
                                                nomination_id="n1"))
    for text in ("推荐单位意见", "评审委员会初审意见", "创学领导小组意见", "同意列为候选",
                 "王建国", "领导小组", "2026-11-02", "县财政局", "推荐表扫描件.pdf", "（盖章）"):
        assert text in page


def test_a_bad_campaign_file_names_key_and_line_and_nothing_is_sent(harness):
    harness.sign_in(ADMIN)
    text = "id: cb-x\nname: 测试\ntimezone: Mars/Olympus\n"
    response = harness.service.campaign_upload(harness.request(
        "POST", "/campaigns", data={"csrf_token": harness.csrf(),
                                    "campaign_file": (io.BytesIO(text.encode()), "c.yml")}))
    page = body(response)
    assert response.status_code == 400
    assert "<code>timezone</code></td><td>3</td>" in page
    assert "<code>weights</code></td><td>—</td><td>此项必填。</td>" in page
    assert harness.desk.made("nomination.load_campaign") == []


def test_a_campaign_file_is_loaded_through_nomination(harness, tmp_path):
    import yaml

    from tests.conftest import OPEN_CAMPAIGN

    harness.desk.replies["nomination.load_campaign"] = {"id": "cb-test", "revision": 1}
    harness.sign_in(ADMIN)
    text = yaml.safe_dump(OPEN_CAMPAIGN, allow_unicode=True)
    response = harness.service.campaign_upload(harness.request(
        "POST", "/campaigns", data={"csrf_token": harness.csrf(),
                                    "campaign_file": (io.BytesIO(text.encode()), "c.yml")}))
    assert response.status_code == 303 and response.headers["Location"] == "/campaigns/cb-test?done=loaded"
    assert harness.desk.made("nomination.load_campaign")[0][2][0]["id"] == "cb-test"
    assert harness.store.campaigns() == [{"id": "cb-test", "name": "测试活动"}]


def test_a_panel_is_assigned_from_an_uploaded_csv(harness):
    harness.desk.replies["scoring.assign_panel"] = {"judges": []}
    harness.sign_in(ADMIN)
    csv = "judge_id,name,unit\nj-01,张华,县委党校\n".encode("utf-8")
    response = harness.service.panel_assign(harness.request(
        "POST", "/campaigns/cb-test/panels/assign",
        data={"csrf_token": harness.csrf(), "category": "advanced_unit",
              "judges_file": (io.BytesIO(csv), "judges.csv")}), campaign_id="cb-test")
    assert response.status_code == 303
    assert harness.desk.made("scoring.assign_panel")[0][2] == (
        "cb-test", "advanced_unit", [{"judge_id": "j-01", "name": "张华", "unit": "县委党校"}])


def test_a_bad_judges_file_is_refused_and_nothing_is_sent(harness):
    harness.desk.replies["scoring.progress"] = {"panels": []}
    harness.sign_in(ADMIN)
    response = harness.service.panel_assign(harness.request(
        "POST", "/campaigns/cb-test/panels/assign",
        data={"csrf_token": harness.csrf(), "category": "advanced_unit",
              "judges_file": (io.BytesIO(b"judge_id,name,unit\nj-01,,x\n"), "judges.csv")}),
        campaign_id="cb-test")
    assert response.status_code == 400 and "第2行缺少 name" in body(response)
    assert harness.desk.made("scoring.assign_panel") == []


def test_publish_asks_for_confirmation_first(harness):
    harness.desk.replies.update({"aggregation.report": None, "aggregation.objections": [],
                                 "aggregation.publish": {"phase": "published"}})
    harness.sign_in(ADMIN)
    first = harness.service.results_action(harness.request(
        "POST", "/campaigns/cb-test/results/publish", data={"csrf_token": harness.csrf()}),
        campaign_id="cb-test", action="publish")
    assert first.status_code == 200 and "确认发布公示名单" in body(first)
    assert harness.desk.made("aggregation.publish") == []
    second = harness.service.results_action(harness.request(
        "POST", "/campaigns/cb-test/results/publish",
        data={"csrf_token": harness.csrf(), "confirm": "yes"}),
        campaign_id="cb-test", action="publish")
    assert second.status_code == 303 and len(harness.desk.made("aggregation.publish")) == 1


def test_a_refused_finalize_shows_the_services_words(harness):
    harness.desk.replies.update({
        "aggregation.report": None, "aggregation.objections": [],
        "aggregation.finalize": InvalidState("an objection is still received")})
    harness.sign_in(ADMIN)
    response = harness.service.results_action(harness.request(
        "POST", "/campaigns/cb-test/results/finalize",
        data={"csrf_token": harness.csrf(), "confirm": "yes"}),
        campaign_id="cb-test", action="finalize")
    assert response.status_code == 400
    assert "当前状态不允许此操作" in body(response) and "an objection is still received" in body(response)


def test_the_voting_page_draws_traffic_from_voting_and_shows_a_missing_method(harness):
    from nameko.exceptions import MethodNotFound

    now = harness.now.replace(microsecond=0)
    votes = [{"vote_id": f"v{i}", "candidate_id": "n1", "category": "advanced_unit",
              "cast_at": (now - timedelta(seconds=i)).isoformat().replace("+00:00", "Z")}
             for i in range(3)]
    harness.desk.replies.update({
        "voting.votes_page": {"votes": votes, "next": None},
        "aggregation.tally": {"rows": [{"candidate_id": "n1", "category": "advanced_unit",
                                        "nominee_name": "县财政局机关党委", "votes": 3}]},
        "voting.fraud_ledger": {"entries": [], "by_rule": {"daily_limit": 2}, "by_ip_net": {},
                                "total": 2},
        "voting.suspicious": MethodNotFound("suspicious"),
    })
    harness.sign_in(ADMIN)
    page = body(harness.service.voting_page(
        harness.request("GET", "/campaigns/cb-test/voting?candidate=n1"), campaign_id="cb-test"))
    assert "累计计入 <strong>3</strong> 票" in page
    assert page.count("<svg") == 3 and "全部共3票" in page
    assert "daily_limit" in page and "该功能所需的服务方法尚未上线" in page


def test_void_passes_the_selector_and_reason_and_keeps_the_form_on_refusal(harness):
    harness.desk.replies.update({
        "voting.votes_page": {"votes": [], "next": None}, "aggregation.tally": {"rows": []},
        "voting.fraud_ledger": None, "voting.suspicious": [],
        "voting.void_votes": ValidationError({"reason": ["a void needs a reason"]})})
    harness.sign_in(ADMIN)
    response = harness.service.voting_void(harness.request(
        "POST", "/campaigns/cb-test/voting/void",
        data={"csrf_token": harness.csrf(), "network": "10.1.2.0/24", "reason": ""}),
        campaign_id="cb-test")
    assert response.status_code == 400
    assert harness.desk.made("voting.void_votes")[0][2] == ("cb-test", {"network": "10.1.2.0/24"},
                                                           None)
    assert 'value="10.1.2.0/24"' in body(response) and "a void needs a reason" in body(response)


def test_the_xlsx_download_goes_through_the_exporter_plugin(harness):
    harness.desk.replies["aggregation.report"] = {
        "campaign_id": "cb-test", "campaign_name": "测试活动", "phase": "open", "revision": 0,
        "inputs_hash": "ab" * 32, "weights": {"public": 0.3, "panel": 0.7},
        "vote_normalisation": "top_100", "panel_method": "mean", "categories": []}
    harness.sign_in(ADMIN)
    response = harness.service.results_download(harness.request(
        "GET", "/campaigns/cb-test/results/download/xlsx"), campaign_id="cb-test", fmt="xlsx")
    assert response.status_code == 200 and response.get_data()[:2] == b"PK"
    assert "spreadsheetml" in response.headers["Content-Type"]
    assert "attachment" in response.headers["Content-Disposition"]


def test_the_audit_view_asks_every_service(harness):
    harness.desk.replies.update({f"{s}.audit_trail": [] for s in
                                 ("nomination", "scoring", "aggregation", "notification")})
    from nameko.exceptions import MethodNotFound

    harness.desk.replies["voting.audit_trail"] = MethodNotFound("audit_trail")
    harness.sign_in(ADMIN)
    page = body(harness.service.audit_page(harness.request("GET", "/audit?campaign_id=cb-test")))
    asked = {call[0] for call in harness.desk.calls if call[1] == "audit_trail"}
    assert asked == {"nomination", "scoring", "aggregation", "notification", "voting"}
    assert "voting：该功能所需的服务方法尚未上线" in page


def test_an_objection_by_letter_is_lodged_and_a_refusal_keeps_what_was_typed(harness):
    harness.desk.replies.update({
        "aggregation.report": None, "aggregation.objections": [],
        "aggregation.lodge_objection": ValidationError({"objector.mobile": ["must be a mainland mobile"]})})
    harness.sign_in(ADMIN)
    form = {"csrf_token": harness.csrf(), "candidate_id": "n1", "objector_name": "王五",
            "objector_mobile": "123", "grounds": "材料不实"}
    response = harness.service.objection_lodge(harness.request(
        "POST", "/campaigns/cb-test/objections/lodge", data=form), campaign_id="cb-test")
    assert response.status_code == 400 and "must be a mainland mobile" in body(response)
    assert 'value="123"' in body(response) and "材料不实</textarea>" in body(response)
    assert harness.desk.made("aggregation.lodge_objection")[0][2] == ({
        "campaign_id": "cb-test", "candidate_id": "n1",
        "objector": {"name": "王五", "mobile": "123"}, "grounds": "材料不实"},)


def test_a_void_tells_its_void_id_and_the_restore_form_is_filled_with_it(harness):
    harness.desk.replies.update({
        "voting.votes_page": {"votes": [], "next": None}, "aggregation.tally": {"rows": []},
        "voting.fraud_ledger": None, "voting.suspicious": [],
        "voting.void_votes": {"void_id": "void-7", "voided": 6},
        "voting.restore_votes": {"void_id": "void-7", "restored": 6}})
    harness.sign_in(ADMIN)
    voided = harness.service.voting_void(harness.request(
        "POST", "/campaigns/cb-test/voting/void",
        data={"csrf_token": harness.csrf(), "candidate_id": "n1", "reason": "同一网段集中刷票"}),
        campaign_id="cb-test")
    assert voided.headers["Location"] == "/campaigns/cb-test/voting?done=voided&n=6&void_id=void-7"
    assert harness.desk.made("voting.void_votes")[0][2] == ("cb-test", {"candidate_id": "n1"},
                                                           "同一网段集中刷票")
    page = body(harness.service.voting_page(harness.request(
        "GET", "/campaigns/cb-test/voting?done=voided&n=6&void_id=void-7"), campaign_id="cb-test"))
    assert "已作废 6 票" in page and 'id="void-id" name="void_id" value="void-7"' in page
    restored = harness.service.voting_restore(harness.request(
        "POST", "/campaigns/cb-test/voting/restore",
        data={"csrf_token": harness.csrf(), "void_id": "void-7", "restore_reason": "经核实为正常投票"}),
        campaign_id="cb-test")
    assert restored.status_code == 303
    assert harness.desk.made("voting.restore_votes")[0][2] == ("void-7", "经核实为正常投票")


@pytest.mark.parametrize("target, landing", [
    ("/campaigns/cb-test/results", "/campaigns/cb-test/results"),
    ("//evil.example/x", "/campaigns"), ("/\\evil.example", "/campaigns"),
    ("https://evil.example/", "/campaigns"), ("", "/campaigns")])
def test_after_sign_in_only_a_path_of_the_console_is_followed(harness, target, landing):
    page = harness.remember(harness.service.sign_in_page(harness.request("GET", "/sign-in")))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body(page))[1]
    response = harness.service.sign_in(harness.request(
        "POST", "/sign-in", data={"token": ADMIN, "csrf_token": csrf, "next": target}))
    assert response.headers["Location"] == landing


def test_a_services_english_refusal_is_shown_in_chinese_beside_its_field_with_the_form_kept(
        harness):
    harness.desk.replies.update({
        "voting.votes_page": {"votes": [], "next": None}, "aggregation.tally": {"rows": []},
        "voting.fraud_ledger": None, "voting.suspicious": [],
        "voting.void_votes": ValidationError({
            "selector.network": ["must be a network in CIDR notation, e.g. 203.0.113.0/24"],
            "reason": ["must say why: a void needs a reason"]})})
    harness.sign_in(ADMIN)
    page = body(harness.service.voting_void(harness.request(
        "POST", "/campaigns/cb-test/voting/void",
        data={"csrf_token": harness.csrf(), "network": "10.1.2.300", "reason": " "}),
        campaign_id="cb-test"))
    network_field = page[page.index('id="void-network"'):page.index('id="void-from"')]
    assert 'value="10.1.2.300"' in network_field
    assert "应为 CIDR 格式的网段，如 203.0.113.0/24。" in network_field
    assert "作废投票须写明理由。" in page and "网段：" in page
    assert "服务原文" in page  # the service's own words, folded away
    harness.service.metrics.untranslated.labels.assert_not_called()


def test_a_refusal_the_table_lacks_shows_the_chinese_title_and_is_logged_and_counted(
        harness, caplog):
    harness.desk.replies.update({"aggregation.report": None, "aggregation.objections": [],
                                 "aggregation.publish": InvalidState("the moon is not full")})
    harness.sign_in(ADMIN)
    page = body(harness.service.results_action(harness.request(
        "POST", "/campaigns/cb-test/results/publish",
        data={"csrf_token": harness.csrf(), "confirm": "yes"}),
        campaign_id="cb-test", action="publish"))
    assert "当前状态不允许此操作" in page and "the moon is not full" in page
    assert "暂无中文" in page
    harness.service.metrics.untranslated.labels.assert_called_once_with("InvalidState")
    assert "aggregation.publish" in caplog.text and "the moon is not full" in caplog.text


def test_a_service_that_does_not_answer_is_shown_as_unavailable_in_chinese(harness):
    harness.desk.replies.update({
        "aggregation.report": None, "aggregation.objections": [],
        "aggregation.finalize": Unavailable(
            "aggregation.finalize did not answer within the time allowed")})
    harness.sign_in(ADMIN)
    response = harness.service.results_action(harness.request(
        "POST", "/campaigns/cb-test/results/finalize",
        data={"csrf_token": harness.csrf(), "confirm": "yes"}),
        campaign_id="cb-test", action="finalize")
    assert "服务暂时没有应答" in body(response)
    assert "aggregation.finalize 在规定时间内没有应答。" in body(response)
