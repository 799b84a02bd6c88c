"""Objections (異議) during 公示 through the aggregation service's entrypoints (worker_factory).

The campaign runs in 2024 so that its 公示 period falls in years the holiday calendar knows:
published on Friday 27 September 2024 (Beijing), five working days are 9/29 (a make-up
Sunday), 9/30, 10/8, 10/9 and 10/10; objections are taken until 10/10 24:00 (16:00 UTC).
"""
from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory

from services.aggregation.service import AggregationService
from shared import events
from shared.auth import Caller, read_token
from shared.config import TRUSTED_PROXIES
from shared.errors import (DeadlinePassed, Forbidden, InvalidState, NotFound, ValidationError)
from shared.timeutil import utcnow
from tests.aggregation_cases import FORTY
from tests.conftest import TEST_SECRET, at, campaign_document, token
from tests.service.test_aggregation_service import (CAMPAIGN, CATEGORY, Harness, facts,
                                                    panel_closed, reviewed, selected,
                                                    vote_batch)
from services.aggregation.providers import REBUILD_PAGE_SIZE

PUBLISHED_AT = at("2024-09-27T03:00:00")      # Friday 11:00 in Beijing
DURING_PUBLICITY = at("2024-10-08T02:00:00")  # after the golden week, inside the period
LAST_MINUTE = at("2024-10-10T15:59:00")       # 23:59 on the last day
PERIOD_OVER = at("2024-10-10T16:00:00")
KEYS = {"id": "test-objection-id-key", "mobile": "test-objection-mobile-key",
        "code": "test-objection-code-key"}


def campaign_2024(**overrides):
    document = dict(nomination={"deadline": "2024-09-01T23:59:59"},
                    voting={"opens": "2024-09-02T08:00:00", "closes": "2024-09-20T20:00:00"},
                    publicity={"working_days": 5})
    document.update(overrides)
    return campaign_document(**document)


class ObjectionHarness(Harness):
    """The aggregation harness with objection keys and a fake nomination and notification."""

    def __init__(self, db):
        super().__init__(db)
        self.nominations = {}
        self.sent = []
        self.notification_down = False
        self.peer_data[("nomination", "disqualify")] = self.disqualify
        self.peer_data[("nomination", "get")] = lambda cid: self.nominations[cid]
        self.peer_data[("notification", "send_direct")] = self.send_direct

    def service(self, auth_token=None):
        verify = lambda t: read_token(TEST_SECRET, t, utcnow())  # noqa: E731
        return worker_factory(
            AggregationService, store=self.store, now=lambda: self.now, campaigns=self.book,
            auth=Caller(verify, auth_token, lambda *args: None),
            dispatch=lambda event_type, payload: self.dispatched.append((event_type, payload)),
            peers=self.peers, settings={REBUILD_PAGE_SIZE: 7, TRUSTED_PROXIES: ()},
            tallies=self.cache,
            metrics=self.metrics, objection_keys=dict(KEYS))

    def as_frontend(self):
        return self.service(token("frontend", "县融媒体中心"))

    def disqualify(self, cid, reason, objection_id=None):
        """As nomination answers: the record, disqualified, naming the objection."""
        record = self.nominations.setdefault(cid, nomination_record(cid))
        if record["status"] != "accepted":
            raise InvalidState(f"nomination {cid} is {record['status']}")
        record.update(status="disqualified", updated_at="2024-10-08T02:00:01Z",
                      disqualification={"reason": reason, "objection_id": objection_id})
        return dict(record)

    def send_direct(self, kind, recipient, template, params, key):
        if self.notification_down:
            raise ConnectionError("notification is not answering")
        self.sent.append((kind, recipient, template, params, key))
        return {"message_id": f"msg-{len(self.sent)}", "status": "sent"}


def nomination_record(cid):
    org = next(org for c, org, *_ in FORTY if c == cid)
    minute = next(row[5] for row in FORTY if row[0] == cid)
    fields = facts(cid, org, minute)
    return {"id": cid, "campaign_id": CAMPAIGN, "category": CATEGORY, "org_type": org,
            "nominee_name": fields["nominee_name"], "nominee_unit": fields["nominee_unit"],
            "status": "accepted", "submitted_at": fields["submitted_at"], "updated_at": None}


def objection(cid="A03", name="张三", mobile="13812345678", grounds="该单位事迹材料与实际不符"):
    return {"campaign_id": CAMPAIGN, "candidate_id": cid,
            "objector": {"name": name, "mobile": mobile}, "grounds": grounds}


@pytest.fixture
def harness(db):
    harness = ObjectionHarness(db)
    harness.deliver(events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, CAMPAIGN, campaign=campaign_2024(), revision=1))
    for cid, org, _, _, _, minute in FORTY:
        harness.deliver(events.NOMINATION_REVIEWED, reviewed(cid, org, minute,
                                                             occurred=at("2024-09-01T02:00:00")))
    harness.deliver(events.VOTE_CAST, vote_batch({cid: votes // 200 for cid, _, votes, _, _, _
                                                  in FORTY}))
    harness.deliver(events.PANEL_CLOSED, panel_closed(
        {cid: (None if panel is None else float(panel)) for cid, _, _, panel, _, _ in FORTY}))
    return harness


def publish(harness):
    harness.now = PUBLISHED_AT
    harness.as_admin().publish(CAMPAIGN)
    harness.dispatched.clear()
    harness.now = DURING_PUBLICITY


def stored(harness):
    """What a refused call must leave unchanged."""
    return (list(harness.store.objections.find().sort("_id")),
            harness.store.states.find_one({"_id": CAMPAIGN}), list(harness.dispatched),
            list(harness.sent), list(harness.store.audit.collection.find().sort("_id")))


def test_an_objection_before_publication_is_refused_and_stores_nothing(harness):
    harness.now = PUBLISHED_AT
    before = stored(harness)
    with pytest.raises(InvalidState):
        harness.as_admin().lodge_objection(objection())
    assert stored(harness) == before


def test_lodging_is_idempotent_and_announced_without_the_objector(harness):
    publish(harness)
    first = harness.as_admin().lodge_objection(objection())
    assert first["status"] == "received" and first["objection_id"].startswith("obj-")
    assert first["revision"] == 1 and first["period_last_day"] == "2024-10-10"
    again = harness.as_admin().lodge_objection(objection())
    assert again == first
    assert harness.event_types() == [events.OBJECTION_RECEIVED]
    payload = harness.dispatched[0][1]
    assert payload["objection_id"] == first["objection_id"] and payload["channel"] == "admin"
    assert "张三" not in str(payload) and "13812345678" not in str(payload)
    assert "13812345678" not in str(first) and "张三" not in str(first)
    # Other grounds, or another objector, is another objection.
    harness.now = DURING_PUBLICITY + timedelta(minutes=1)
    other = harness.as_frontend().lodge_objection(objection(grounds="另有举报"))
    assert other["objection_id"] != first["objection_id"] and other["channel"] == "frontend"
    rows = harness.as_admin().objections(CAMPAIGN)
    assert [row["objection_id"] for row in rows] == [first["objection_id"],
                                                     other["objection_id"]]
    assert rows[0]["objector"] == {"name": "张三", "mobile": "13812345678", "mobile_kept": True}
    assert rows[0]["nominee_name"] == "A03单位党组织" and rows[0]["grounds"] == \
        "该单位事迹材料与实际不符"
    trail = harness.as_admin().audit_trail(CAMPAIGN, first["objection_id"])
    assert [entry["action"] for entry in trail] == ["lodge_objection"]
    assert "13812345678" not in str(trail) and "张三" not in str(trail)


@pytest.mark.parametrize("bad, field", [
    (objection(name=""), "objector.name"),
    (objection(name="   "), "objector.name"),
    (objection(mobile=""), "objector.mobile"),
    (objection(mobile="85291234567"), "objector.mobile"),   # Hong Kong
    (objection(mobile="12812345678"), "objector.mobile"),
    (objection(grounds="异" * 2001), "grounds"),
    (objection(grounds=""), "grounds"),
    (objection(name={"$gt": ""}), "objector.name"),
    (objection(grounds=["a"]), "grounds"),
    (dict(objection(), objector="张三"), "objector"),
    (dict(objection(), campaign_id={"$ne": None}), "campaign_id"),
    (dict(objection(), extra=1), "extra"),
])
def test_bad_objections_get_a_validation_error_naming_the_field_and_store_nothing(harness, bad,
                                                                                  field):
    publish(harness)
    before = stored(harness)
    with pytest.raises(ValidationError) as raised:
        harness.as_admin().lodge_objection(bad)
    assert field in raised.value.messages
    assert stored(harness) == before


def test_grounds_of_exactly_2000_characters_are_taken(harness):
    publish(harness)
    assert harness.as_admin().lodge_objection(objection(grounds="异" * 2000))["status"] == \
        "received"


def test_a_candidate_not_on_the_list_is_not_found(harness):
    publish(harness)
    before = stored(harness)
    for cid in ("A12", "Z99"):  # ranked but not selected; unknown
        with pytest.raises(NotFound):
            harness.as_admin().lodge_objection(objection(cid=cid))
    assert stored(harness) == before


def test_objections_are_taken_until_the_last_minute_of_the_period(harness):
    publish(harness)
    harness.now = LAST_MINUTE
    assert harness.as_admin().lodge_objection(objection())["status"] == "received"
    harness.now = PERIOD_OVER
    before = stored(harness)
    with pytest.raises(DeadlinePassed) as raised:
        harness.as_admin().lodge_objection(objection(grounds="晚了"))
    assert "2024-10-10" in str(raised.value)
    assert stored(harness) == before


def test_unit_judge_and_anonymous_callers_may_not_lodge_or_resolve(harness):
    publish(harness)
    for role in ("unit", "judge"):
        with pytest.raises(Forbidden):
            harness.service(token(role, "x")).lodge_objection(objection())
    lodged = harness.as_admin().lodge_objection(objection())
    before = stored(harness)
    for role in ("unit", "judge", "frontend"):
        with pytest.raises(Forbidden):
            harness.service(token(role, "x")).resolve_objection(lodged["objection_id"],
                                                                "rejected", "x")
        with pytest.raises(Forbidden):
            harness.service(token(role, "x")).objections(CAMPAIGN)
    assert stored(harness) == before


def test_upheld_disqualifies_through_nomination_and_the_next_one_moves_up(harness):
    publish(harness)
    lodged = harness.as_admin().lodge_objection(objection("A03"))
    harness.dispatched.clear()
    resolved = harness.as_admin().resolve_objection(lodged["objection_id"], "upheld",
                                                    "经核实，事迹材料失实")
    assert resolved["status"] == "upheld" and resolved["reason"] == "经核实，事迹材料失实"
    call = [c for c in harness.peer_calls if c[:2] == ("nomination", "disqualify")]
    assert len(call) == 1 and call[0][2][0] == "A03"
    assert call[0][3] == {"objection_id": lodged["objection_id"]}
    assert lodged["objection_id"] in call[0][2][1]  # the nomination's reason names it
    # A new revision, at once: A03 off, A09 (the next agency) on.
    assert harness.event_types() == [events.OBJECTION_RESOLVED, events.LIST_PUBLISHED]
    assert harness.dispatched[1][1]["revision"] == 2
    listed = harness.service().publicity_list(CAMPAIGN)
    agency = selected(listed)["agency"]
    assert "A03" not in agency and "A09" in agency
    # The event that nomination then sends changes nothing more.
    harness.deliver(events.CANDIDATE_DISQUALIFIED, events.make_event(
        events.CANDIDATE_DISQUALIFIED, CAMPAIGN, at("2024-10-08T02:00:01"),
        **facts("A03", "agency", 3, status="disqualified"), candidate_id="A03",
        reason=harness.nominations["A03"]["disqualification"]["reason"]))
    assert harness.service().publication(CAMPAIGN)["revision"] == 2
    # The objector is told, with the approved template; then only the hash is kept.
    assert len(harness.sent) == 1
    kind, recipient, template, params, _ = harness.sent[0]
    assert (kind, recipient, template) == ("sms", "13812345678", "objection_verdict")
    assert params == {"campaign_name": "测试活动", "receipt": lodged["objection_id"],
                      "nominee_name": "A03单位党组织", "verdict": "经核实，异议成立"}
    record = harness.store.objection(lodged["objection_id"])
    assert "mobile" not in record["objector"] and len(record["objector"]["mobile_hash"]) == 64
    assert record["notice"]["status"] == "sent"
    row = harness.as_admin().objections(CAMPAIGN, "upheld")[0]
    assert row["objector"] == {"name": "张三", "mobile": None, "mobile_kept": False}
    # The promoted candidate has its own 公示 period: that of revision 2, from 10/8.
    harness.now = at("2024-10-14T02:00:00")  # after revision 1's period, inside revision 2's
    with pytest.raises(DeadlinePassed):
        harness.as_admin().lodge_objection(objection("A01"))
    against_promoted = harness.as_admin().lodge_objection(objection("A09"))
    assert against_promoted["revision"] == 2
    # 10/9, 10/10, 10/11, 10/12 (a make-up Saturday), 10/14.
    assert against_promoted["period_last_day"] == "2024-10-14"
    trail = harness.as_admin().audit_trail(CAMPAIGN)
    actions = [entry["action"] for entry in trail]
    assert actions[:4] == ["publish", "lodge_objection", "resolve_objection", "revise_list"]
    resolve = trail[2]
    assert resolve["before"] == {"status": "received"}
    assert resolve["after"] == {"status": "upheld", "reason": "经核实，事迹材料失实"}
    assert resolve["actor"]["name"] == "宣传部"


def test_rejected_records_the_reason_tells_the_objector_and_changes_nothing_else(harness):
    publish(harness)
    lodged = harness.as_admin().lodge_objection(objection("A01"))
    harness.dispatched.clear()
    resolved = harness.as_admin().resolve_objection(lodged["objection_id"], "rejected",
                                                    "经调查，反映情况不属实")
    assert resolved["status"] == "rejected"
    assert harness.event_types() == [events.OBJECTION_RESOLVED]
    assert not [c for c in harness.peer_calls if c[:2] == ("nomination", "disqualify")]
    assert harness.service().publication(CAMPAIGN)["revision"] == 1
    assert harness.sent[0][3]["verdict"] == "经核实，异议不成立"
    assert "经调查" not in str(harness.sent[0][3])  # the template's words only


def test_resolving_twice_unknown_ids_verdicts_and_missing_reasons_are_refused(harness):
    publish(harness)
    lodged = harness.as_admin().lodge_objection(objection("A01"))
    oid = lodged["objection_id"]
    before = stored(harness)
    with pytest.raises(ValidationError) as raised:
        harness.as_admin().resolve_objection(oid, "maybe", "理由")
    assert "verdict" in raised.value.messages
    for reason in ("", "   ", None, {"$gt": ""}):
        with pytest.raises(ValidationError) as raised:
            harness.as_admin().resolve_objection(oid, "rejected", reason)
        assert "reason" in raised.value.messages
    with pytest.raises(NotFound):
        harness.as_admin().resolve_objection("obj-nosuchobjection", "rejected", "理由")
    with pytest.raises(ValidationError):
        harness.as_admin().resolve_objection({"$ne": None}, "rejected", "理由")
    assert stored(harness) == before
    harness.as_admin().resolve_objection(oid, "rejected", "不属实")
    after_first = stored(harness)
    with pytest.raises(InvalidState):
        harness.as_admin().resolve_objection(oid, "upheld", "改判")
    assert stored(harness) == after_first


def test_a_nomination_refusal_leaves_the_objection_open(harness):
    publish(harness)
    lodged = harness.as_admin().lodge_objection(objection("A03"))
    harness.peer_data[("nomination", "disqualify")] = lambda *a, **k: (_ for _ in ()).throw(
        InvalidState("the list of campaign cb-test has been finalized"))
    harness.nominations["A03"] = nomination_record("A03")
    before = stored(harness)
    with pytest.raises(InvalidState):
        harness.as_admin().resolve_objection(lodged["objection_id"], "upheld", "属实")
    assert stored(harness) == before


def test_a_verdict_notice_notification_could_not_take_is_sent_by_the_sweep(harness):
    publish(harness)
    lodged = harness.as_admin().lodge_objection(objection("A01"))
    harness.notification_down = True
    harness.as_admin().resolve_objection(lodged["objection_id"], "rejected", "不属实")
    record = harness.store.objection(lodged["objection_id"])
    assert record["objector"]["mobile"] == "13812345678"  # kept until the notice is sent
    assert record["notice"]["status"] == "pending" and record["notice"]["attempts"] == 1
    harness.notification_down = False
    harness.service().sweep_outbox()
    record = harness.store.objection(lodged["objection_id"])
    assert "mobile" not in record["objector"] and record["notice"]["status"] == "sent"
    assert len(harness.sent) == 1


def test_finalize_waits_for_every_verdict_and_for_the_period_to_end(harness):
    publish(harness)
    lodged = harness.as_admin().lodge_objection(objection("A01"))
    harness.now = PERIOD_OVER
    before = stored(harness)
    with pytest.raises(InvalidState) as raised:
        harness.as_admin().finalize(CAMPAIGN)
    assert "await a verdict" in str(raised.value)
    assert stored(harness) == before
    harness.now = LAST_MINUTE
    harness.as_admin().resolve_objection(lodged["objection_id"], "rejected", "不属实")
    with pytest.raises(InvalidState) as raised:
        harness.as_admin().finalize(CAMPAIGN)
    assert "2024-10-10" in str(raised.value)
    harness.now = PERIOD_OVER
    assert harness.as_admin().finalize(CAMPAIGN)["phase"] == "finalized"
    with pytest.raises(DeadlinePassed):
        harness.as_admin().lodge_objection(objection("A02"))


def test_finalize_waits_for_the_period_of_the_latest_revision(harness):
    publish(harness)
    lodged = harness.as_admin().lodge_objection(objection("A03"))
    harness.as_admin().resolve_objection(lodged["objection_id"], "upheld", "属实")
    harness.now = PERIOD_OVER  # revision 1's period is over, revision 2's is not (10/14)
    with pytest.raises(InvalidState):
        harness.as_admin().finalize(CAMPAIGN)
    harness.now = at("2024-10-14T16:00:00")
    assert harness.as_admin().finalize(CAMPAIGN)["phase"] == "finalized"


def test_without_publicity_objections_are_taken_until_finalize(db):
    harness = ObjectionHarness(db)
    harness.deliver(events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, CAMPAIGN, campaign=campaign_document(), revision=1))
    for cid, org, _, _, _, minute in FORTY:
        harness.deliver(events.NOMINATION_REVIEWED, reviewed(cid, org, minute))
    harness.deliver(events.PANEL_CLOSED, panel_closed(
        {cid: (None if panel is None else float(panel)) for cid, _, _, panel, _, _ in FORTY}))
    harness.now = at("2099-11-21T02:00:00")
    harness.as_admin().publish(CAMPAIGN)
    harness.now = at("2100-06-01T02:00:00")  # months later: still 公示
    lodged = harness.as_admin().lodge_objection(objection("A01"))
    assert lodged["period_last_day"] is None
    harness.as_admin().resolve_objection(lodged["objection_id"], "rejected", "不属实")
    harness.as_admin().finalize(CAMPAIGN)
    with pytest.raises(DeadlinePassed):
        harness.as_admin().lodge_objection(objection("A02"))


# --- the public 公示 page ---------------------------------------------------------------------

def request(method, path, form=None, remote_addr="10.2.0.1", forwarded_for=None):
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    builder = EnvironBuilder(method=method, path=path, data=form,
                             environ_base={"REMOTE_ADDR": remote_addr},
                             headers={"X-Forwarded-For": forwarded_for} if forwarded_for else {})
    return Request(builder.get_environ())


def page(harness, method, path, form=None, trusted_proxies=(), **kwargs):
    service = harness.service()
    service.settings = dict(service.settings, **{TRUSTED_PROXIES: tuple(trusted_proxies)})
    parts = path.strip("/").split("/")
    req = request(method, path, form, **kwargs)
    if method == "GET" and len(parts) == 2:
        return service.page_publicity(req, parts[1])
    if parts[-1] == "code":
        return service.page_send_code(req, parts[1])
    if parts[-1] == "objections":
        return service.page_lodge(req, parts[1])
    if parts[2] == "objections":
        return service.page_objection(req, parts[1], parts[3].split("?")[0])
    raise AssertionError(path)


def text(response):
    return response.get_data(as_text=True)


def sent_code(harness):
    kind, recipient, template, params, _ = harness.sent[-1]
    assert (kind, template) == ("sms", "objection_code")
    return recipient, params["code"]


def page_form(**overrides):
    form = {"mobile": "13812345678", "name": "张三", "candidate_id": "A03",
            "grounds": "该单位事迹材料与实际不符", "code": "000000"}
    form.update(overrides)
    return form


def test_the_page_shows_the_list_the_period_and_asks_for_a_code(harness):
    response = page(harness, "GET", f"/publicity/{CAMPAIGN}")
    assert response.status_code == 200 and "评选结果尚未公示" in text(response)
    publish(harness)
    body = text(page(harness, "GET", f"/publicity/{CAMPAIGN}"))
    assert 'lang="zh-CN"' in body and "A03单位党组织" in body and "A12单位党组织" not in body
    assert "受理异议至2024年10月10日24时" in body and "5个工作日" in body
    assert 'for="mobile"' in body and "获取验证码" in body
    assert "13812345678" not in body


def test_an_objection_through_the_page_with_a_one_time_code(harness):
    publish(harness)
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "138 1234 5678"})
    assert response.status_code == 200 and "验证码已发送到 138****5678" in text(response)
    recipient, code = sent_code(harness)
    assert recipient == "13812345678"
    wrong = "000000" if code != "000000" else "111111"
    before = stored(harness)[0]
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/objections", page_form(code=wrong))
    assert response.status_code == 400 and "验证码不正确" in text(response)
    assert "该单位事迹材料与实际不符" in text(response)  # kept as typed
    assert stored(harness)[0] == before
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/objections",
                    page_form(code=code, grounds="异" * 2001))
    assert response.status_code == 400 and "异议内容" in text(response)
    assert stored(harness)[0] == before
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/objections", page_form(code=code))
    assert response.status_code == 303
    objection_id = response.headers["Location"].split("/")[-1].split("?")[0]
    record = harness.store.objection(objection_id)
    assert record["channel"] == "page" and record["objector"]["name"] == "张三"
    # The code is single use.
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/objections",
                    page_form(code=code, grounds="再来一条"))
    assert response.status_code == 400 and "验证码无效或已使用" in text(response)
    status = text(page(harness, "GET", f"/publicity/{CAMPAIGN}/objections/{objection_id}"))
    assert objection_id in status and "已受理，正在核实" in status
    assert "张三" not in status and "138" not in status
    harness.as_admin().resolve_objection(objection_id, "upheld", "经核实，事迹材料失实")
    status = text(page(harness, "GET", f"/publicity/{CAMPAIGN}/objections/{objection_id}"))
    assert "异议成立" in status and "经核实，事迹材料失实" in status
    body = text(page(harness, "GET", f"/publicity/{CAMPAIGN}"))
    assert "第2版（修订）" in body and "A09单位党组织按综合得分递补列入" in body
    assert "A03单位党组织（创建学习型党组织先进单位）被取消参评资格" in body
    assert "张三" not in body and "13812345678" not in body


def test_an_expired_code_is_refused_in_plain_chinese_and_nothing_is_stored(harness):
    publish(harness)
    page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13812345678"})
    _, code = sent_code(harness)
    harness.now = DURING_PUBLICITY + timedelta(minutes=6)
    before = stored(harness)[0]
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/objections", page_form(code=code))
    assert response.status_code == 400 and "验证码已过期" in text(response)
    assert stored(harness)[0] == before


def test_code_requests_are_limited_per_number_and_per_address(harness):
    publish(harness)
    page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13812345678"})
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13812345678"})
    assert response.status_code == 429 and "秒后再重新获取" in text(response)
    assert len(harness.sent) == 1
    for n in range(29):
        page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": f"1390000{n:04d}"})
    assert len(harness.sent) == 30
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13700000001"})
    assert response.status_code == 429 and "此网络请求验证码过于频繁" in text(response)
    assert len(harness.sent) == 30
    # Another address is not held up.
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13700000001"},
                    remote_addr="10.9.9.9")
    assert response.status_code == 200


def test_behind_a_trusted_proxy_the_address_limit_is_each_residents_not_the_proxys(harness):
    """AGGREGATION_TRUSTED_PROXIES: the last hop the proxy reports is the resident's address;
    a header from an address that is not a trusted proxy is not believed."""
    publish(harness)
    proxy = dict(remote_addr="10.0.0.2", trusted_proxies=["10.0.0.2"])
    for n in range(30):
        page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": f"1390000{n:04d}"},
             forwarded_for="203.0.113.9", **proxy)
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13700000001"},
                    forwarded_for="198.51.100.1, 203.0.113.9", **proxy)
    assert response.status_code == 429                     # 203.0.113.9 has had its 30
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13700000001"},
                    forwarded_for="203.0.113.10", **proxy)
    assert response.status_code == 200                     # another resident behind the proxy
    # Not from the proxy: the header is ignored, and the connection's address counts.
    for n in range(30):
        page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": f"1380000{n:04d}"},
             remote_addr="10.5.5.5", forwarded_for=f"192.0.2.{n}", trusted_proxies=["10.0.0.2"])
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13600000001"},
                    remote_addr="10.5.5.5", forwarded_for="192.0.2.200",
                    trusted_proxies=["10.0.0.2"])
    assert response.status_code == 429


def test_a_bad_number_gets_a_plain_message_and_no_sms(harness):
    publish(harness)
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "85291234567"})
    assert response.status_code == 400 and "手机号码" in text(response)
    assert harness.sent == []


def test_a_code_notification_cannot_send_is_a_503_and_keeps_nothing(harness):
    publish(harness)
    harness.notification_down = True
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13812345678"})
    assert response.status_code == 503 and "短信验证码发送失败" in text(response)
    assert harness.store.codes.count_documents({"code_mac": {"$exists": True}}) == 0
    # The refused request used up neither the resend wait nor the address's count.
    harness.notification_down = False
    response = page(harness, "POST", f"/publicity/{CAMPAIGN}/code", {"mobile": "13812345678"})
    assert response.status_code == 200 and len(harness.sent) == 1
