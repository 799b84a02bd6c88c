"""``pingxuan objections list|lodge|resolve``: the calls they make and what they print.

The CLI's ``call()`` is replaced by a recorder; a refusal is raised as the real one raises it.
"""
import json

import pytest

from shared import cli
from shared.cli.base import Refused

ROW = {"objection_id": "obj-abc", "campaign_id": "cb-test", "candidate_id": "A03",
       "nominee_name": "县财政局机关党委", "category": "advanced_unit", "status": "received",
       "grounds": "事迹材料与实际不符", "received_at": "2024-10-08T02:00:00Z", "revision": 1,
       "channel": "admin", "verdict": None, "reason": None,
       "objector": {"name": "张三", "mobile": "13812345678", "mobile_kept": True}}


@pytest.fixture
def calls(monkeypatch):
    made = []

    def fake_call(service, method, *args, **kwargs):
        made.append((service, method, args))
        if method == "objections":
            return [ROW]
        if method == "lodge_objection":
            return {"objection_id": "obj-abc", "status": "received", "candidate_id": "A03",
                    "nominee_name": "县财政局机关党委", "period_last_day": "2024-10-10"}
        if method == "resolve_objection":
            if args[0] == "obj-done":
                raise Refused("InvalidState: objection obj-done was already decided")
            return {"objection_id": args[0], "status": args[1], "reason": args[2]}
        raise AssertionError(method)

    monkeypatch.setattr(cli.base, "call", fake_call)
    return made


def test_list_shows_each_objection_with_its_objector_and_grounds(calls, capsys):
    assert cli.main(["objections", "list", "cb-test"]) == 0
    out = capsys.readouterr().out
    assert "obj-abc  待处理  A03 县财政局机关党委" in out and "张三 13812345678" in out
    assert "事迹材料与实际不符" in out and out.strip().endswith("1 objection(s)")
    assert calls == [("aggregation", "objections", ("cb-test", None))]


def test_list_json_is_the_services_rows(calls, capsys):
    assert cli.main(["objections", "list", "cb-test", "--status", "received", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [ROW]
    assert calls == [("aggregation", "objections", ("cb-test", "received"))]


def test_lodge_sends_the_contracts_objection(calls, capsys):
    assert cli.main(["objections", "lodge", "cb-test", "A03", "--name", "张三", "--mobile",
                     "13812345678", "--grounds", "事迹材料与实际不符"]) == 0
    assert calls == [("aggregation", "lodge_objection", ({
        "campaign_id": "cb-test", "candidate_id": "A03",
        "objector": {"name": "张三", "mobile": "13812345678"},
        "grounds": "事迹材料与实际不符"},))]
    out = capsys.readouterr().out
    assert "objection obj-abc received" in out and "2024-10-10" in out


def test_resolve_prints_the_consequence_and_a_refusal_exits_1(calls, capsys):
    assert cli.main(["objections", "resolve", "obj-abc", "upheld", "--reason", "属实"]) == 0
    assert "disqualified" in capsys.readouterr().out
    assert calls[-1] == ("aggregation", "resolve_objection", ("obj-abc", "upheld", "属实"))
    assert cli.main(["objections", "resolve", "obj-done", "rejected", "--reason", "x"]) == 1
    assert "InvalidState" in capsys.readouterr().err


def test_usage_errors_exit_2(calls, capsys):
    for argv in (["objections", "resolve", "obj-abc", "maybe", "--reason", "x"],
                 ["objections", "resolve", "obj-abc", "upheld"],
                 ["objections", "lodge", "cb-test", "A03", "--name", "张三"]):
        with pytest.raises(SystemExit) as raised:
            cli.main(argv)
        assert raised.value.code == 2
    assert calls == []
