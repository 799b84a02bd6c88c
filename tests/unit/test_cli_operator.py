"""The operator commands of the CLI (CONTRACT.md "Admin CLI"): what each sends, prints and exits.

``base.call`` is replaced by a recorder that answers like the services, or refuses like them:
what is tested is the command's arguments, rendering and exit status, not the broker.
"""
import io
import json
import os
import subprocess
import sys
import time

import pytest
from openpyxl import Workbook

from shared import cli
from shared.cli import system
from shared.errors import InvalidState

NOMINATION = {
    "id": "n1", "campaign_id": "cb-test", "category": "advanced_unit", "org_type": "agency",
    "nominee_name": "县财政局机关党委", "nominee_unit": "县财政局", "unit": "城关镇党委",
    "status": "accepted", "submitted_at": "2013-10-20T02:00:00Z", "unit_phone": "0434-1234567",
    "contact_person": "王明", "mobile": "13800000000", "email": "a@example.cn",
    "deeds_summary": "坚持每周学习", "materials": "综合材料全文",
    "attachments": [{"name": "照片.jpg"}],
    "recommendation": {"opinion": "同意推荐", "signed_by": "李书记", "sealed": True,
                       "date": "2013-10-18"},
    "review": {"opinion": "符合条件", "signed_by": "评审组", "date": "2013-11-02",
               "decision": "accept"},
}


@pytest.fixture
def service(monkeypatch):
    """Answers by (service, method); an exception instance is raised as the service's refusal."""
    made, answers = [], {}

    def fake_call(service_name, method, *args, **kwargs):
        made.append((service_name, method, args, kwargs))
        answer = answers.get((service_name, method))
        if isinstance(answer, Exception):
            raise cli.base.Refused(f"{answer.exc_type}: {answer.value}")
        return answer(*args, **kwargs) if callable(answer) else answer

    monkeypatch.setattr(cli.base, "call", fake_call)
    service.made, service.answers = made, answers
    return service


def test_nominations_list_passes_the_filters_and_prints_a_table(service, capsys):
    service.answers[("nomination", "list")] = [NOMINATION]
    assert cli.main(["nominations", "list", "cb-test", "--category", "advanced_unit",
                     "--status", "accepted", "--unit", "城关镇党委"]) == 0
    assert service.made == [("nomination", "list", ("cb-test",), {
        "category": "advanced_unit", "status": "accepted", "unit": "城关镇党委"})]
    out = capsys.readouterr().out
    assert "县财政局机关党委" in out and "1 nomination(s)" in out


def test_nominations_list_json_is_the_services_rows(service, capsys):
    service.answers[("nomination", "list")] = [NOMINATION]
    assert cli.main(["nominations", "list", "cb-test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [NOMINATION]


def test_nominations_show_lays_out_the_form_with_its_three_opinions(service, capsys):
    service.answers[("nomination", "get")] = NOMINATION
    assert cli.main(["nominations", "show", "n1"]) == 0
    out = capsys.readouterr().out
    for text in ("推荐对象", "县财政局机关党委", "同意推荐", "李书记", "盖章", "[accept] 符合条件",
                 "创学领导小组意见 the leadership group's opinion: —", "照片.jpg", "综合材料全文"):
        assert text in out


def test_review_and_opinion_send_the_decision_and_the_text(service, capsys):
    service.answers[("nomination", "review")] = dict(NOMINATION, status="rejected")
    service.answers[("nomination", "record_leadership_opinion")] = NOMINATION
    assert cli.main(["nominations", "review", "n1", "reject", "--opinion", "材料不实"]) == 0
    assert cli.main(["nominations", "opinion", "n1", "--opinion", "同意"]) == 0
    assert service.made == [("nomination", "review", ("n1", "reject", "材料不实"), {}),
                            ("nomination", "record_leadership_opinion", ("n1", "同意"), {})]
    assert "rejected" in capsys.readouterr().out


def test_review_with_an_unknown_decision_is_a_usage_error_and_calls_nothing(service, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["nominations", "review", "n1", "maybe", "--opinion", "x"])
    assert exit_.value.code == 2
    assert service.made == []


def test_a_refusal_exits_1_with_the_error_type_on_stderr(service, capsys):
    service.answers[("nomination", "disqualify")] = InvalidState("the list is finalized")
    assert cli.main(["disqualify", "n1", "--reason", "核实有误", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "InvalidState" in err and "the list is finalized" in err


@pytest.mark.parametrize("argv", [["disqualify", "n1", "--reason", "核实"],
                                  ["publish", "cb-test"], ["finalize", "cb-test"]])
def test_irreversible_steps_ask_first_and_change_nothing_without_a_yes(service, monkeypatch,
                                                                        capsys, argv):
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert cli.main(argv) == 2
    assert service.made == []
    assert "not confirmed" in capsys.readouterr().err


def test_a_yes_at_the_prompt_goes_ahead(service, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    service.answers[("aggregation", "publish")] = {"campaign_id": "cb-test", "revision": 1}
    assert cli.main(["publish", "cb-test"]) == 0
    assert service.made == [("aggregation", "publish", ("cb-test",), {})]


def judges_file(tmp_path, kind, rows):
    if kind == "csv":
        path = tmp_path / "judges.csv"
        path.write_text("\n".join(",".join(row) for row in rows) + "\n", encoding="utf-8-sig")
    else:
        path = tmp_path / "judges.xlsx"
        book = Workbook()
        for row in rows:
            book.active.append(list(row))
        book.save(path)
    return path


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_panel_assign_reads_the_judges_from_csv_or_excel(service, tmp_path, kind, capsys):
    path = judges_file(tmp_path, kind, [("name", "judge_id", "unit", "备注"),
                                        ("张评委", "j1", "县委党校", "组长"),
                                        ("", "", "", ""),
                                        ("李评委", "j2", "县教育局", "")])
    service.answers[("scoring", "assign_panel")] = {"judges": 2}
    assert cli.main(["panel", "assign", "cb-test", "learning_star", "--judges", str(path)]) == 0
    assert service.made == [("scoring", "assign_panel", ("cb-test", "learning_star", [
        {"judge_id": "j1", "name": "张评委", "unit": "县委党校"},
        {"judge_id": "j2", "name": "李评委", "unit": "县教育局"}]), {})]
    assert "张评委" in capsys.readouterr().out


@pytest.mark.parametrize("rows, message", [
    ([("judge_id", "name")], "missing: unit"),
    ([("judge_id", "name", "unit"), ("j1", "", "县委党校")], "row 2: column name is empty"),
    ([], "empty file"),
])
def test_a_bad_judges_file_names_the_row_and_column_and_calls_nothing(service, tmp_path, capsys,
                                                                      rows, message):
    path = judges_file(tmp_path, "csv", rows)
    assert cli.main(["panel", "assign", "cb-test", "learning_star", "--judges", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert service.made == []


def test_panel_progress_and_close(service, capsys):
    service.answers[("scoring", "progress")] = {"campaign_id": "cb-test", "panels": [{
        "category": "learning_star", "closed": False,
        "counts": {"scored": 3, "missing": 1, "recused": 1, "expected": 4, "complete": 0.75},
        "judges": [{"judge_id": "j1", "name": "张评委", "unit": "县委党校", "scored": 2,
                    "missing": ["c2"], "recused": ["c3"]}], "candidates": []}]}
    service.answers[("scoring", "close_panel")] = {"closed": True}
    assert cli.main(["panel", "progress", "cb-test"]) == 0
    assert cli.main(["panel", "close", "cb-test", "learning_star"]) == 0
    out = capsys.readouterr().out
    assert "3 of 4 scores in, 1 recusal(s)" in out and "closed" in out
    assert service.made[1] == ("scoring", "close_panel", ("cb-test", "learning_star"), {})


def test_messages_parked_and_resend(service, capsys):
    service.answers[("notification", "parked")] = [{
        "message_id": "m1", "template": "otp_code", "channel": "sms_http", "recipient": "138****0000",
        "attempts": 8, "parked_at": "2013-11-05T02:00:00Z", "last_error": "HTTP 503"}]
    service.answers[("notification", "resend")] = {"message_id": "m1", "status": "sent",
                                                   "attempts": 9, "last_error": None}
    assert cli.main(["messages", "parked"]) == 0
    assert cli.main(["messages", "resend", "m1"]) == 0
    out = capsys.readouterr().out
    assert "HTTP 503" in out and "m1: sent after 9 attempt(s)" in out


def test_audit_merges_every_services_trail_in_time_order(service, capsys):
    def trail(service_name):
        return lambda campaign_id, entity: [
            {"at": f"2013-11-0{index}T00:00:00Z", "action": f"{service_name}-{index}",
             "actor": {"name": "admin"}, "entity": "x", "entity_id": "1"}
            for index in {"nomination": (1, 4), "voting": (2,), "aggregation": (3,)}.get(
                service_name, ())]
    for name in ("nomination", "voting", "scoring", "aggregation", "notification"):
        service.answers[(name, "audit_trail")] = trail(name)
    assert cli.main(["audit", "cb-test", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["action"] for row in rows] == ["nomination-1", "voting-2", "aggregation-3",
                                               "nomination-4"]
    assert cli.main(["audit", "cb-test", "--service", "voting"]) == 0
    assert service.made[-1][:2] == ("voting", "audit_trail")


def test_units_import_replaces_the_campaigns_units(service, tmp_path, capsys):
    path = tmp_path / "units.csv"
    path.write_text("单位名称,联系人\n城关镇党委,王\n东河乡党委,李\n", encoding="utf-8")
    service.answers[("nomination", "get_campaign")] = {"id": "cb-test", "units": ["旧单位"]}
    service.answers[("nomination", "load_campaign")] = lambda document: {
        "id": document["id"], "revision": 2, "created": False}
    assert cli.main(["units", "import", str(path), "--campaign", "cb-test"]) == 0
    assert service.made[-1] == ("nomination", "load_campaign", (
        {"id": "cb-test", "units": ["城关镇党委", "东河乡党委"]},), {})
    assert "2 nominating unit(s)" in capsys.readouterr().out


def test_units_import_refuses_a_unit_listed_twice(service, tmp_path, capsys):
    path = tmp_path / "units.csv"
    path.write_text("unit\n城关镇党委\n城关镇党委\n", encoding="utf-8")
    assert cli.main(["units", "import", str(path), "--campaign", "cb-test"]) == 2
    assert "listed twice: 城关镇党委" in capsys.readouterr().err
    assert service.made == []


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("pingxuan ")


def test_status_exits_1_when_a_service_does_not_answer(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path))
    from tests.system import free_port

    for variable, _ in system.SERVICES.values():
        monkeypatch.setenv(variable, f"127.0.0.1:{free_port()}")
    assert cli.main(["status"]) == 1
    out = capsys.readouterr().out
    assert out.count("DOWN (not reachable)") == len(system.built_services())


def test_a_reused_pid_is_not_taken_for_a_service(monkeypatch, tmp_path):
    """``down`` must never signal a process that is not ours: a pid file pointing at another
    program (here a sleeping shell) is treated as stale."""
    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path))
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        system.pid_file("voting").write_text(str(stranger.pid))
        assert system.running_pid("voting") is None
        assert not system.pid_file("voting").exists()
        cli.main(["down"])
        assert stranger.poll() is None  # still running: not signalled
    finally:
        stranger.kill()
        stranger.wait()


def test_our_service_is_recognised_by_its_command_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path))
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                             "shared.run_service", "run", "services.voting.service:VotingService"])
    try:
        # Until the child has exec'd, its command line is still this test's.
        deadline = time.monotonic() + 10
        while not system.is_our_service(fake.pid, "voting") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert system.is_our_service(fake.pid, "voting")
        assert not system.is_our_service(fake.pid, "scoring")
        assert not system.is_our_service(os.getpid(), "voting")
    finally:
        fake.kill()
        fake.wait()


def test_a_judges_file_saved_by_excel_on_chinese_windows_reads_as_the_console_reads_it(
        service, tmp_path):
    """One reader for the console's uploads and the CLI's files (shared/spreadsheets.py):
    a CSV in GB18030 reads here too; a broken workbook is a usage error naming the file."""
    path = tmp_path / "judges.csv"
    path.write_bytes("judge_id,name,unit\nj1,张评委,县委党校\n".encode("gb18030"))
    service.answers[("scoring", "assign_panel")] = {"judges": 1}
    assert cli.main(["panel", "assign", "cb-test", "learning_star", "--judges", str(path)]) == 0
    assert service.made[-1][2][2] == [{"judge_id": "j1", "name": "张评委", "unit": "县委党校"}]
    broken = tmp_path / "judges.xlsx"
    broken.write_bytes(b"not a zip")
    assert cli.main(["panel", "assign", "cb-test", "learning_star", "--judges", str(broken)]) == 2
    assert len(service.made) == 1
