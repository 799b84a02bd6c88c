"""Acceptance: objections (異議) during 公示, from a client written only from CONTRACT.md.

Nothing from the project's ``services`` or ``shared`` packages is imported: ``pingxuan up``
(tests/system.py) starts the system, and the department, a trusted front end and the CLI
drive it by the contract's names: ``aggregation.lodge_objection``, ``objections``,
``resolve_objection``, ``publish``, ``finalize``, ``publicity_list``, ``publication``,
``nomination.disqualify``; the events ``objection_received``, ``objection_resolved``.

The main campaign has no ``publicity`` key (objections are taken until ``finalize``) and runs
on real time: nomination for a few seconds, a short voting window, then 公示. A second
campaign with ``publicity: {working_days: 5}`` is published now and shows that ``finalize``
waits for the period's end.
"""
import json
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from nameko.events import event_handler

from tests.e2e.test_contract_flow import (ONE_ACTIVITY, campaign_file_text, client, eventually,
                                          refused, wait_until)
from tests.system import running_system

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CAMPAIGN = f"e2e-obj-{uuid.uuid4().hex[:8]}"
WITH_PERIOD = f"e2e-obj-p-{uuid.uuid4().hex[:6]}"
ZONE = ZoneInfo("Asia/Shanghai")
NOMINATION_SECONDS = 12
U1, U2 = "城关镇党委", "东河乡党委"
OBJECTOR = {"name": "张三", "mobile": "13812345678"}
OBJECTOR_2 = {"name": "李四", "mobile": "13987654321"}


def campaign_yaml(campaign_id, deadline, opens, closes, publicity=""):
    return campaign_file_text(campaign_id, "异议验收活动", deadline, opens, closes, ONE_ACTIVITY + """\
  learning_star:
    award_slots: 1
    criteria:
      - {key: deeds, name: 先进事迹, weight: 1, max: 100}
""", before_categories=publicity)


def form(category, nominee_name, client_ref, **extra):
    signed = (datetime.now(ZONE) - timedelta(days=3)).date().isoformat()
    data = {
        "campaign_id": CAMPAIGN, "category": category, "nominee_name": nominee_name,
        "nominee_unit": "城关镇人民政府", "unit_phone": "0734-5551234", "fax": "0734-5551235",
        "contact_person": "李明", "mobile": "13812345600", "email": "liming@example.cn",
        "deeds_summary": f"{nominee_name}学用结合成效明显。",
        "materials": "综合材料：" + "学习情况。" * 50,
        "recommendation": {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                           "date": signed},
        "attachments": [{"name": "推荐表.pdf"}], "client_ref": client_ref,
    }
    data.update(extra)
    return data


def observer(seen):
    def received(self, payload):
        seen.append(("objection_received", payload))

    def resolved(self, payload):
        seen.append(("objection_resolved", payload))

    return type("ObjectionObserver", (), {
        "name": f"e2e_objection_observer_{uuid.uuid4().hex[:6]}",
        "on_received": event_handler("aggregation", "objection_received")(received),
        "on_resolved": event_handler("aggregation", "objection_resolved")(resolved)})


@pytest.fixture
def system(rabbit_config, tmp_path):
    with running_system(tmp_path, rabbit_config["AMQP_URI"]) as system:
        yield system


def objection(candidate_id, objector, grounds, campaign_id=CAMPAIGN):
    return {"campaign_id": campaign_id, "candidate_id": candidate_id, "objector": objector,
            "grounds": grounds}


def selected(listing):
    return {row["candidate_id"] for row in listing}


def test_objections_during_publicity_upheld_rejected_and_finalize(system, container_factory,
                                                                  tmp_path):
    seen = []
    watcher = container_factory(observer(seen), {"AMQP_URI": system.amqp_uri})
    watcher.start()
    admin_token = system.token("admin", "宣传部党教理教组")
    tokens = {"frontend": system.token("frontend", "县融媒体中心"),
              U1: system.token("unit", U1, U1), U2: system.token("unit", U2, U2),
              "judge": system.token("judge", "j-zhao", "县委党校")}

    start = datetime.now(timezone.utc).replace(microsecond=0)
    deadline = start + timedelta(seconds=NOMINATION_SECONDS)
    opens, closes = deadline + timedelta(seconds=1), deadline + timedelta(seconds=3)
    path = tmp_path / "campaign.yml"
    path.write_text(campaign_yaml(CAMPAIGN, deadline, opens, closes), encoding="utf-8")
    system.pingxuan("campaign", "load", str(path))
    # Voting closed long ago: this campaign can be published at once, with nobody on it.
    past = datetime(2024, 9, 1, tzinfo=timezone.utc)
    path_2 = tmp_path / "with-period.yml"
    path_2.write_text(campaign_yaml(WITH_PERIOD, past, past + timedelta(days=1),
                                    past + timedelta(days=10),
                                    "publicity: {working_days: 5}\n"), encoding="utf-8")
    system.pingxuan("campaign", "load", str(path_2))

    with client(system, admin_token) as department, client(system, tokens["frontend"]) as front, \
            client(system, tokens[U1]) as u1, client(system, tokens[U2]) as u2, \
            client(system, tokens["judge"]) as judge:
        ids = {}
        for unit, key, category, name, extra in (
                (u1, "A1", "learning_activity", "城关镇“周末讲堂”", {}),
                (u2, "A2", "learning_activity", "东河乡“农家书屋”", {}),
                (u1, "A3", "learning_activity", "城关镇“红色影院”", {}),
                (u1, "S1", "learning_star", "张丽", {"party_post": "支部书记"}),
                (u2, "S2", "learning_star", "李强", {"party_post": "党员"})):
            ids[key] = unit.nomination.submit(form(category, name, f"{key}-{CAMPAIGN}",
                                                   **extra))["id"]
            department.nomination.review(ids[key], "accept", "符合条件")
        judges = [{"judge_id": "j-zhao", "name": "赵评委", "unit": "县委党校"}]
        department.scoring.assign_panel(CAMPAIGN, "learning_activity", judges)
        department.scoring.assign_panel(CAMPAIGN, "learning_star", judges)
        for key, marks in (("A1", {"reach": 90}), ("A2", {"reach": 80}), ("A3", {"reach": 70}),
                           ("S1", {"deeds": 90}), ("S2", {"deeds": 80})):
            judge.scoring.submit(ids[key], marks, "评审意见")
        department.scoring.close_panel(CAMPAIGN, "learning_activity")
        department.scoring.close_panel(CAMPAIGN, "learning_star")

        # Before publication an objection is refused, and nothing is stored.
        assert refused(department.aggregation.lodge_objection,
                       objection(ids["A1"], OBJECTOR, "材料失实"))[0] == "InvalidState"
        assert department.aggregation.objections(CAMPAIGN) == []

        wait_until(closes)
        eventually(lambda: department.aggregation.publish(CAMPAIGN), "publish")
        assert selected(front.aggregation.publicity_list(CAMPAIGN)) == {ids["A1"], ids["S1"]}

        # --- lodging: as admin (a letter) and as the front end ---------------------------
        first = department.aggregation.lodge_objection(
            objection(ids["A1"], OBJECTOR, "该活动实际未开展，材料系补做"))
        assert first["status"] == "received" and first["objection_id"]
        again = department.aggregation.lodge_objection(
            objection(ids["A1"], OBJECTOR, "该活动实际未开展，材料系补做"))
        assert again["objection_id"] == first["objection_id"]
        second = front.aggregation.lodge_objection(
            objection(ids["S1"], OBJECTOR_2, "该同志事迹有夸大"))
        assert second["objection_id"] != first["objection_id"]
        assert refused(department.aggregation.lodge_objection,
                       objection(ids["A2"], OBJECTOR, "不在名单上"))[0] == "NotFound"
        exc_type, value = refused(front.aggregation.lodge_objection,
                                  objection(ids["S1"], dict(OBJECTOR, mobile="85291234567"),
                                            "香港号码"))
        assert exc_type == "ValidationError" and "objector.mobile" in json.loads(value)
        exc_type, value = refused(front.aggregation.lodge_objection,
                                  objection(ids["S1"], OBJECTOR, "字" * 2001))
        assert exc_type == "ValidationError" and "grounds" in json.loads(value)
        assert refused(front.aggregation.objections, CAMPAIGN)[0] == "Forbidden"
        assert refused(u1.aggregation.lodge_objection,
                       objection(ids["S1"], OBJECTOR, "单位"))[0] == "Forbidden"
        rows = department.aggregation.objections(CAMPAIGN)
        assert {row["objection_id"] for row in rows} == {first["objection_id"],
                                                         second["objection_id"]}
        for row in rows:
            assert {"objection_id", "candidate_id", "nominee_name", "status", "grounds",
                    "received_at", "verdict", "reason"} <= set(row)
            assert row["status"] == "received"
        listed = json.loads(system.pingxuan("objections", "list", CAMPAIGN, "--json").stdout)
        assert {row["objection_id"] for row in listed} == {row["objection_id"] for row in rows}

        # An objection is open: finalize is refused.
        assert refused(department.aggregation.finalize, CAMPAIGN)[0] == "InvalidState"

        # --- upheld through the CLI: A1 leaves, A2 moves up in revision 2 -----------------
        done = system.pingxuan("objections", "resolve", first["objection_id"], "upheld",
                               "--reason", "经核实，活动材料系补做", "--json")
        assert json.loads(done.stdout)["status"] == "upheld"
        twice = system.pingxuan("objections", "resolve", first["objection_id"], "rejected",
                                "--reason", "改判", check=False)
        assert twice.returncode == 1 and "InvalidState" in twice.stderr
        publication = eventually(lambda: (lambda p: p if p["revision"] == 2 else None)(
            front.aggregation.publication(CAMPAIGN)), "revision 2")
        assert publication["phase"] == "published"
        listing = front.aggregation.publicity_list(CAMPAIGN)
        assert selected(listing) == {ids["A2"], ids["S1"]}
        assert {row["revision"] for row in listing} == {2}
        record = department.nomination.get(ids["A1"])
        assert record["status"] == "disqualified"
        assert first["objection_id"] in json.dumps(record, ensure_ascii=False)

        # --- rejected over RPC; then finalize succeeds ------------------------------------
        assert refused(department.aggregation.resolve_objection, second["objection_id"],
                       "maybe", "理由")[0] == "ValidationError"
        assert refused(department.aggregation.resolve_objection, second["objection_id"],
                       "rejected", "")[0] == "ValidationError"
        assert refused(department.aggregation.resolve_objection, "obj-no-such-one",
                       "rejected", "理由")[0] == "NotFound"
        assert refused(department.aggregation.finalize, CAMPAIGN)[0] == "InvalidState"
        rejected = department.aggregation.resolve_objection(second["objection_id"], "rejected",
                                                            "经调查，反映情况不属实")
        assert rejected["status"] == "rejected"
        assert selected(front.aggregation.publicity_list(CAMPAIGN)) == {ids["A2"], ids["S1"]}
        by_status = {row["objection_id"]: (row["status"], row["verdict"], row["reason"])
                     for row in department.aggregation.objections(CAMPAIGN)}
        assert by_status == {
            first["objection_id"]: ("upheld", "upheld", "经核实，活动材料系补做"),
            second["objection_id"]: ("rejected", "rejected", "经调查，反映情况不属实")}
        assert department.aggregation.finalize(CAMPAIGN)["phase"] == "finalized"

        # After finalize nothing changes the list.
        assert refused(department.aggregation.lodge_objection,
                       objection(ids["S1"], OBJECTOR, "审定之后"))[0] == "DeadlinePassed"
        eventually(lambda: refused(department.nomination.disqualify, ids["S1"],
                                   "审定之后")[0] == "InvalidState",
                   "nomination refuses disqualify after finalize")
        assert department.nomination.get(ids["S1"])["status"] == "accepted"

        # --- a campaign with a 公示 period: finalize waits for its end --------------------
        department.aggregation.publish(WITH_PERIOD)
        exc_type, value = refused(department.aggregation.finalize, WITH_PERIOD)
        assert exc_type == "InvalidState", value

    # The events: both objections announced, without the objectors' name or mobile.
    eventually(lambda: len(seen) >= 4, "the objection events")
    kinds = sorted(kind for kind, _ in seen)
    assert kinds == ["objection_received", "objection_received", "objection_resolved",
                     "objection_resolved"]
    text = json.dumps([payload for _, payload in seen], ensure_ascii=False)
    for secret in ("张三", "李四", "13812345678", "13987654321"):
        assert secret not in text
