"""The console's plain modules: sessions and CSRF, sign-in links, views, pictures, judge files."""
import io
import re
from datetime import datetime, timedelta, timezone

import mongomock
import pytest
from hypothesis import given, strategies as st
from openpyxl import Workbook

from services.console import judges, sessions, svg, views
from shared.auth import Identity
from shared.errors import ValidationError
from shared.signing import generate_private_key
from tests.conftest import (OPEN_CAMPAIGN, TEST_KEYS, TEST_PUBLIC_KEYS, TEST_SECRET, campaign_document,
                            token)

SECRET = "console-test-secret-0123456789"
NOW = datetime(2099, 11, 5, 2, 30, 15, tzinfo=timezone.utc)


# --- CSRF and cookies ------------------------------------------------------------------------

def test_a_forms_csrf_token_is_accepted_only_for_its_own_session():
    key, other = sessions.new_key(), sessions.new_key()
    token = sessions.csrf_token(SECRET, key)
    assert sessions.csrf_valid(SECRET, key, token)
    assert not sessions.csrf_valid(SECRET, other, token)
    assert not sessions.csrf_valid(SECRET, key, None)
    assert not sessions.csrf_valid(SECRET, key, "")
    assert not sessions.csrf_valid(SECRET, None, token)
    assert not sessions.csrf_valid("another-secret-0123456789", key, token)


@given(st.text(max_size=60))
def test_no_guessed_csrf_token_passes(guess):
    key = "fixed-session-key"
    assert sessions.csrf_valid(SECRET, key, guess) == (guess == sessions.csrf_token(SECRET, key))


def test_cookies_are_httponly_strict_and_secure_only_over_tls():
    assert sessions.cookie_options(False, 60) == {"max_age": 60, "httponly": True,
                                                  "samesite": "Strict", "secure": False, "path": "/"}
    assert sessions.served_over_tls("https", "http", False)
    assert sessions.served_over_tls("HTTPS, http", "http", False)
    assert sessions.served_over_tls(None, "https", False)
    assert sessions.served_over_tls(None, "http", True)
    assert not sessions.served_over_tls("http", "http", False)
    assert not sessions.served_over_tls(None, "http", False)


@pytest.mark.parametrize("role", ["unit", "judge", "frontend", "service"])
def test_other_roles_are_refused_at_sign_in_in_chinese(role):
    with pytest.raises(sessions.SignInRefused) as refused:
        sessions.check_admin(Identity("t1", role, "城关镇党委", None))
    assert "只接受" in str(refused.value) and sessions.ROLE_NAMES_ZH[role] in str(refused.value)


def test_an_admin_passes_the_door():
    identity = Identity("t1", "admin", "宣传部", None)
    assert sessions.check_admin(identity) is identity


# --- sign-in links ---------------------------------------------------------------------------

def test_a_sign_in_link_code_gives_back_its_token_until_it_expires():
    code = sessions.sign_in_code(TEST_SECRET, "px1.abc.def", NOW)
    token, nonce, expires = sessions.read_sign_in_code(TEST_PUBLIC_KEYS, code,
                                                       NOW + timedelta(minutes=9))
    assert token == "px1.abc.def" and len(nonce) == 32
    assert expires == int((NOW + sessions.LINK_TTL).timestamp())
    with pytest.raises(sessions.SignInRefused, match="过期"):
        sessions.read_sign_in_code(TEST_PUBLIC_KEYS, code, NOW + timedelta(minutes=10))


def test_a_forged_or_altered_link_code_is_refused():
    """Only the issuer's private key (the CLI's) makes a link the console takes: not another
    key, not a service's own key, not an altered code, not a token of another purpose."""
    code = sessions.sign_in_code(TEST_SECRET, "px1.abc.def", NOW)
    header, body, mac = code.split(".")
    with pytest.raises(sessions.SignInRefused, match="签名"):
        sessions.read_sign_in_code(TEST_PUBLIC_KEYS,
                                   sessions.sign_in_code(generate_private_key(), "t", NOW), NOW)
    with pytest.raises(sessions.SignInRefused, match="签名"):
        sessions.read_sign_in_code(TEST_PUBLIC_KEYS, f"{header}.{body[:-2]}AA.{mac}", NOW)
    with pytest.raises(sessions.SignInRefused):
        sessions.read_sign_in_code(TEST_PUBLIC_KEYS, token("admin", "宣传部"), NOW)
    for broken in ("", "pxlink1.only-two", "px1.a.b", None, 42, "pxlink1.中文.x"):
        with pytest.raises(sessions.SignInRefused):
            sessions.read_sign_in_code(TEST_PUBLIC_KEYS, broken, NOW)


# --- the session store -----------------------------------------------------------------------

@pytest.fixture
def store():
    db = mongomock.MongoClient(tz_aware=True)["pxtest_console"]
    repository = sessions.SessionStore(db)
    repository.ensure_indexes()
    return repository


def test_a_session_is_stored_under_its_keys_hash_and_ends_when_it_expires(store):
    key = sessions.new_key()
    store.open(key, "px1.token", Identity("t1", "admin", "宣传部", None), NOW)
    stored = store.sessions.find_one()
    assert stored["_id"] == sessions.key_hash(key) and key not in str(stored)
    assert store.find(key, NOW + timedelta(hours=7))["token"] == "px1.token"
    assert store.find("another key", NOW) is None
    assert store.find(key, NOW + sessions.SESSION_TTL) is None
    assert store.sessions.count_documents({}) == 0


def test_a_link_is_used_once(store):
    assert store.use_link("n1", 1)
    assert not store.use_link("n1", 1)
    assert store.use_link("n2", 1)


# --- views -----------------------------------------------------------------------------------

def test_a_validation_refusal_is_shown_by_field_in_chinese_words():
    shown = views.refusal(ValidationError({"opinion": ["Missing data for required field."],
                                           "selector.network": ["must be a CIDR"]}))
    assert shown["type"] == "ValidationError" and shown["summary"] == "填写的内容未通过校验"
    assert shown["fields"] == {"opinion": ["此项必填。"], "selector.network": ["must be a CIDR"]}
    assert shown["message"] == "意见：此项必填；网段：must be a CIDR"
    assert shown["untranslated"] == ["must be a CIDR"]


def test_a_refusal_that_is_not_ours_still_has_words():
    class MethodNotFound(Exception):
        pass

    shown = views.refusal(MethodNotFound("void_votes"))
    assert shown["summary"] == "该功能所需的服务方法尚未上线" and shown["fields"] == {}


def test_the_timeline_says_where_the_campaign_stands():
    document = campaign_document(nomination={"deadline": "2099-10-30T23:59:59"},
                                 voting={"opens": "2099-11-01T08:00:00",
                                         "closes": "2099-11-20T20:00:00"})
    during_voting = views.timeline(document, None, NOW)
    assert during_voting["current"] == ["voting"]
    assert [p["key"] for p in during_voting["phases"]] == ["nomination", "voting", "panel",
                                                           "publicity", "final"]
    assert during_voting["phases"][0]["done"] and not during_voting["phases"][1]["done"]
    assert during_voting["phases"][1]["when"] == "2099-11-01 08:00 至 2099-11-20 20:00"
    assert views.timeline(document, None, NOW - timedelta(days=30))["current"] == ["nomination"]
    assert views.timeline(document, None, NOW - timedelta(days=5))["current"] == ["waiting"]
    assert views.timeline(document, None, NOW + timedelta(days=30))["current"] == ["panel"]
    overlapping = campaign_document(nomination={"deadline": "2099-11-10T23:59:59"},
                                    voting={"opens": "2099-11-01T08:00:00",
                                            "closes": "2099-11-20T20:00:00"})
    both = views.timeline(overlapping, None, NOW)
    assert both["current"] == ["nomination", "voting"]
    assert both["now_words"] == "正在接受单位推荐；网络投票进行中"
    published = {"published_at": "2099-11-25T02:00:00Z", "finalized_at": None}
    assert views.timeline(document, published, NOW + timedelta(days=30))["current"] == ["publicity"]
    final = dict(published, finalized_at="2099-12-01T02:00:00Z")
    assert views.timeline(document, final, NOW + timedelta(days=30))["current"] == ["final"]


def test_intake_counts_every_received_nomination_except_withdrawn_ones():
    document = campaign_document()
    nominations = ([{"category": "advanced_unit", "org_type": "agency", "status": "accepted"}] * 17
                   + [{"category": "advanced_unit", "org_type": "agency", "status": "rejected"}] * 3
                   + [{"category": "advanced_unit", "org_type": "school", "status": "withdrawn"}]
                   + [{"category": "learning_activity", "status": "submitted"}])
    by_category = {item["category"]: item["bars"] for item in views.intake(document, nominations)}
    advanced = dict((label, (used, cap)) for label, used, cap in by_category["advanced_unit"])
    assert advanced["合计"] == (20, 50)
    assert advanced["机关"] == (20, 20) and advanced["学校"] == (0, 5)
    assert by_category["learning_activity"] == [("合计", 1, None)]


def test_traffic_counts_votes_per_minute_in_the_window():
    votes = [{"cast_at": "2099-11-05T02:30:01Z", "category": "advanced_unit", "candidate_id": "a"},
             {"cast_at": "2099-11-05T02:30:59Z", "category": "learning_star", "candidate_id": "b"},
             {"cast_at": "2099-11-05T02:28:00Z", "category": "advanced_unit", "candidate_id": "a"},
             {"cast_at": "2099-11-05T00:00:00Z", "category": "advanced_unit", "candidate_id": "a"}]
    shown = views.traffic(votes, "Asia/Shanghai", NOW, candidate_id="a", minutes=5)
    assert shown["labels"] == ["10:26", "10:27", "10:28", "10:29", "10:30"]
    assert shown["overall"] == [0, 0, 1, 0, 2]
    assert dict(shown["by_category"]) == {"创建学习型党组织先进单位": [0, 0, 1, 0, 1],
                                          "党员学习明星": [0, 0, 0, 0, 1]}
    assert shown["candidate"] == [0, 0, 1, 0, 1]
    assert shown["total"] == 4 and shown["in_window"] == 3


def test_traffic_leaves_voided_votes_out_of_the_chart_and_the_total():
    votes = [{"cast_at": "2099-11-05T02:30:01Z", "category": "learning_star", "candidate_id": "a"},
             {"cast_at": "2099-11-05T02:30:02Z", "category": "learning_star", "candidate_id": "a",
              "voided": True}]
    shown = views.traffic(votes, "UTC", NOW, candidate_id="a", minutes=2)
    assert shown["overall"] == [0, 1] and shown["candidate"] == [0, 1]
    assert (shown["total"], shown["voided"]) == (1, 1)


@given(st.lists(st.integers(min_value=0, max_value=299), max_size=200))
def test_traffic_never_loses_a_vote_inside_the_window(offsets):
    votes = [{"cast_at": (NOW - timedelta(seconds=s)).isoformat(), "category": "c",
              "candidate_id": "x"} for s in offsets]
    shown = views.traffic(votes, "UTC", NOW, minutes=10)
    assert sum(shown["overall"]) == len(offsets)
    assert sum(sum(values) for _, values in shown["by_category"]) == len(offsets)


def test_the_form_reads_as_the_paper_form_with_three_opinions():
    record = {"category": "advanced_unit", "org_type": "agency", "nominee_name": "县财政局机关党委",
              "nominee_unit": "县财政局", "unit": "城关镇党委", "unit_phone": "0734-5551234",
              "contact_person": "李明", "email": "a@b.cn", "deeds_summary": "事迹",
              "materials": "材料", "status": "accepted",
              "recommendation": {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                                 "date": "2099-10-20"},
              "review": {"opinion": "同意", "signed_by": "宣传部", "date": "2099-10-31",
                         "decision": "accept"}}
    form = views.form_sections(record)
    boxes = dict(form["boxes"])
    assert boxes["组织类型"] == "机关" and boxes["传真"] == "—" and boxes["推荐单位"] == "城关镇党委"
    titles = [o["title"] for o in form["opinions"]]
    assert titles == ["推荐单位意见", "评审委员会初审意见", "创学领导小组意见"]
    assert form["opinions"][1]["decision"] == "通过" and form["opinions"][2]["opinion"] is None
    assert form["status"] == "已通过（候选）"


def test_the_audit_view_merges_services_and_filters():
    trails = {
        "nomination": [{"at": "2099-11-01T01:00:00Z", "entity": "nomination", "entity_id": "n1",
                        "actor": {"role": "admin", "name": "宣传部"}, "action": "review"}],
        "scoring": [{"at": "2099-10-01T01:00:00Z", "entity": "panel", "entity_id": "p1",
                     "actor": {"role": "admin", "name": "李四"}, "action": "assign_panel"}],
    }
    rows = views.audit_rows(trails)
    assert [r["service"] for r in rows] == ["scoring", "nomination"]
    assert [r["entity_id"] for r in views.audit_rows(trails, entity="n1")] == ["n1"]
    assert [r["entity_id"] for r in views.audit_rows(trails, actor="李四")] == ["p1"]
    since = datetime(2099, 10, 15, tzinfo=timezone.utc)
    assert [r["entity_id"] for r in views.audit_rows(trails, since=since)] == ["n1"]
    assert views.audit_rows(trails, until=since)[0]["entity_id"] == "p1"


# --- pictures --------------------------------------------------------------------------------

def test_the_traffic_chart_is_an_svg_a_screen_reader_can_read():
    chart = str(svg.line_chart("t", "每分钟投票数", ["10:00", "10:01"],
                               [("全部", [3, 5]), ("<b>", [1, 0])]))
    assert chart.startswith("<svg") and 'role="img"' in chart
    assert '<title id="t-t">每分钟投票数</title>' in chart
    assert "全部共8票" in chart and "<b>" not in chart and "&lt;b&gt;" in chart
    assert chart.count("<polyline") == 2


def test_intake_bars_mark_a_full_cap():
    bars = str(svg.intake_bars("i", "名额", [("机关", 20, 20), ("学校", 1, 5), ("活动", 3, None)]))
    assert bars.count('class="fill full"') == 1
    assert "20/20" in bars and "1/5" in bars and "3（不限）" in bars


@given(st.integers(min_value=0, max_value=10**7))
def test_the_axis_top_is_never_below_the_peak(value):
    top = svg._nice_max(value)
    assert top >= max(value, 1)
    assert top < max(value, 1) * 5 + 1


# --- judge files -----------------------------------------------------------------------------

def test_judges_from_a_csv_with_chinese_headings_and_a_bom():
    data = "\ufeff评委编号,姓名,单位\nj-01,张华,县委党校\nj-02,李敏,县教育局\n".encode("utf-8")
    assert judges.parse_judges("评委.csv", data) == [
        {"judge_id": "j-01", "name": "张华", "unit": "县委党校"},
        {"judge_id": "j-02", "name": "李敏", "unit": "县教育局"}]


def test_judges_from_an_excel_file():
    book = Workbook()
    sheet = book.active
    sheet.append(["judge_id", "name", "unit"])
    sheet.append(["j-01", "张华", "县委党校"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert judges.parse_judges("judges.xlsx", buffer.getvalue()) == [
        {"judge_id": "j-01", "name": "张华", "unit": "县委党校"}]


@pytest.mark.parametrize("data, words", [
    (b"", "请选择"),
    (b"id,name\nj,x\n", "缺少 judge_id, unit"),
    (b"judge_id,name,unit\nj-01,,x\n", "第2行缺少 name"),
    (b"judge_id,name,unit\n", "没有评委"),
])
def test_bad_judge_files_are_refused_naming_the_row(data, words):
    with pytest.raises(ValidationError) as refused:
        judges.parse_judges("judges.csv", data)
    assert words in refused.value.messages["judges_file"][0]


def test_a_file_that_is_not_a_workbook_is_refused():
    with pytest.raises(ValidationError, match="Excel"):
        judges.parse_judges("judges.xlsx", b"not a zip")


def test_an_audit_entry_shows_only_the_keys_that_changed():
    shown = views.changes({"status": "submitted", "name": "甲"},
                          {"status": "accepted", "name": "甲", "review": {"opinion": "同意"}})
    assert [(c["key"], c["before"], c["after"]) for c in shown] == [
        ("review", "—", '{"opinion": "同意"}'), ("status", "submitted", "accepted")]
    long = views.changes(None, {"materials": "材" * 500})
    assert long[0]["long"] and len(long[0]["after_short"]) == views.CHANGE_PREVIEW


# --- the CLI's sign-in link ------------------------------------------------------------------

def test_token_issue_prints_a_sign_in_link_the_console_accepts(monkeypatch, capsys):
    from shared import cli
    from shared.auth import read_token

    monkeypatch.setenv("PINGXUAN_ISSUER_KEY", TEST_SECRET)
    monkeypatch.setenv("CONSOLE_HTTP", "127.0.0.1:9999")
    monkeypatch.delenv("CONSOLE_URL", raising=False)
    assert cli.main(["token", "issue", "--role", "admin", "--name", "宣传部",
                     "--sign-in-link"]) == 0
    lines = capsys.readouterr().out.splitlines()
    issued = lines[-1]
    link = [line for line in lines if "sign-in link" in line][0].split(": ", 1)[1]
    assert link.startswith("http://127.0.0.1:9999/sign-in/link#")
    signed, _, _ = sessions.read_sign_in_code(TEST_PUBLIC_KEYS, link.split("#", 1)[1],
                                              datetime.now(timezone.utc))
    assert signed == issued
    assert read_token(TEST_KEYS, signed, datetime.now(timezone.utc)).role == "admin"


def test_a_sign_in_link_is_only_for_admins(monkeypatch, capsys):
    from shared import cli

    monkeypatch.setenv("PINGXUAN_ISSUER_KEY", TEST_SECRET)
    assert cli.main(["token", "issue", "--role", "unit", "--name", "城关镇党委",
                     "--sign-in-link"]) == 2
    out = capsys.readouterr()
    assert "only for --role admin" in out.err and out.out == ""


def test_ended_sessions_and_spent_links_are_removed_at_the_next_sign_in(store):
    store.open("old", "px1.a", Identity("t1", "admin", "甲", None), NOW)
    store.use_link("n-old", int((NOW + timedelta(minutes=10)).timestamp()))
    later = NOW + sessions.SESSION_TTL + timedelta(seconds=1)
    store.open("new", "px1.b", Identity("t2", "admin", "乙", None), later)
    assert [doc["name"] for doc in store.sessions.find()] == ["乙"]
    assert store.used_links.count_documents({}) == 0


def test_a_refusal_is_shown_in_chinese_and_the_services_words_are_kept_apart():
    from shared.errors import InvalidState

    english = ("voting of campaign cb-x closes at 2013-11-20T20:00:00 (Asia/Shanghai); "
               "the list is published after the vote")
    shown = views.refusal(InvalidState(english))
    assert shown["message"] == ("评选活动 cb-x 的网络投票于 2013-11-20T20:00:00（Asia/Shanghai）结束，"
                                "结束后才能发布公示名单。")
    assert shown["original"] == english and shown["untranslated"] == []
    field = views.refusal(ValidationError({"opinion": ["a rejection needs a reason"]}))
    assert field["fields"] == {"opinion": ["不通过须写明理由。"]}
    assert field["original"] == "opinion: a rejection needs a reason"


def test_a_refusal_of_the_whole_request_names_no_field():
    shown = views.refusal(ValidationError({"_schema": ["public and panel weights must add up to 1"]}))
    assert shown["message"] == "网络投票与集中评审的权重之和应为1。"


def test_a_refusal_without_chinese_keeps_the_chinese_title_and_the_services_words():
    from shared.errors import InvalidState

    shown = views.refusal(InvalidState("something new"))
    assert shown["summary"] == "当前状态不允许此操作" and shown["message"] == "something new"
    assert shown["untranslated"] == ["something new"] and shown["original"] == ""


def test_judges_typed_into_the_form_are_refused_by_their_own_line():
    assert judges.parse_judges_text("j-01, 张华, 县委党校\n\n") == [
        {"judge_id": "j-01", "name": "张华", "unit": "县委党校"}]
    with pytest.raises(ValidationError) as refused:
        judges.parse_judges_text("j-01, 张华, 县委党校\nj-02, , 县教育局")
    assert refused.value.messages == {"judges_text": ["第2行缺少 name。"]}
    assert judges.parse_judges_text("  \n") == []


def test_a_judges_notice_in_chinese_says_why_it_failed_and_how_often_it_was_tried():
    assert views.notice_text(None) == ""
    assert views.notice_text({"state": "sent", "detail": "queued", "attempts": 0}) == "已发出"
    assert views.notice_text({"state": "queued", "detail": "RateLimited: later",
                              "attempts": 2}) == "排队待发（已重试 2 次）：RateLimited: later"
    assert views.notice_text({"state": "failed", "detail": "ValidationError: x",
                              "attempts": 1}) == "发送失败：ValidationError: x"


def test_link_results_show_a_link_only_where_no_message_carries_it():
    reply = {"category": "advanced_unit", "renewed": ["j1"], "judges": [
        {"judge_id": "j1", "name": "甲", "has_contact": True, "link": "L1", "queued": False,
         "renewed": True, "not_queued_reason": "sent_moments_ago"},
        {"judge_id": "j2", "name": "乙", "has_contact": False, "link": "L2", "queued": False,
         "renewed": False, "not_queued_reason": "no_contact"}]}
    rows = views.link_results(reply)["rows"]
    assert [row["link"] for row in rows] == [None, "L2"]
    assert rows[0]["outcome"].startswith("一分钟内刚发送过")


# --- the desk --------------------------------------------------------------------------------

def test_a_call_that_gets_no_reply_in_time_is_the_shared_unavailable_error(monkeypatch):
    from types import SimpleNamespace

    import eventlet

    from services.console import providers
    from shared.errors import ALL, Unavailable

    class SilentProxy:
        def __init__(self, worker_ctx, service, reply_listener):
            pass

        def __getattr__(self, method):
            return SimpleNamespace(call_async=lambda *args, **kwargs: SimpleNamespace(
                result=lambda: eventlet.sleep(10)))

    monkeypatch.setattr(providers, "ServiceProxy", SilentProxy)
    desk = providers.Desk(SimpleNamespace(data={}), reply_listener=None, timeout=0.01)
    desk.act_as("a token")
    with pytest.raises(Unavailable) as refused:
        desk.call("aggregation", "finalize")
    assert refused.value.exc_type == "Unavailable" and ALL["Unavailable"] is Unavailable
    assert str(refused.value) == "aggregation.finalize did not answer within the time allowed"
    assert views.refusal(refused.value)["message"] == "aggregation.finalize 在规定时间内没有应答。"
