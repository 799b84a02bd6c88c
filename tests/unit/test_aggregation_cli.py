"""``pingxuan results|publish|finalize|rebuild``, the config file and the benchmark script.

The CLI's ``call()`` is replaced by a recorder: what is tested is the rendering
through the exporter plugins, not the broker.
"""
import csv
import io
import json
import os
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

from shared import cli
from tests.unit.test_aggregation_exporters import HEADERS, REPORT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def calls(monkeypatch):
    made = []

    def fake_call(service, method, *args, **kwargs):
        made.append((service, method, args))
        if method == "report":
            return REPORT
        return {"campaign_id": args[0], "method": method}

    monkeypatch.setattr(cli.base, "call", fake_call)
    return made


def test_results_prints_a_table_by_default(calls, capsysbinary):
    assert cli.main(["results", "cb-test"]) == 0
    out = capsysbinary.readouterr().out.decode("utf-8")
    assert out.splitlines()[0].startswith("奖项类别")
    assert "ab" * 32 in out
    assert calls == [("aggregation", "report", ("cb-test", None))]


def test_results_as_csv_of_one_category(calls, capsysbinary):
    assert cli.main(["results", "cb-test", "--category", "advanced_unit", "--format", "csv"]) == 0
    text = capsysbinary.readouterr().out.decode("utf-8").lstrip("\ufeff")
    assert next(csv.reader(io.StringIO(text))) == HEADERS
    assert calls == [("aggregation", "report", ("cb-test", "advanced_unit"))]


def test_the_publicity_list_as_xlsx_to_a_file(calls, tmp_path, capsys):
    target = tmp_path / "公示名单.xlsx"
    assert cli.main(["results", "cb-test", "--list", "--format", "xlsx",
                     "--output", str(target)]) == 0
    rows = list(load_workbook(target)["公示名单"].iter_rows(values_only=True))
    assert [row[2] for row in rows[1:]] == ["A01", "A09"]
    assert "inputs hash " + "ab" * 32 in capsys.readouterr().out


def test_xlsx_needs_an_output_file(calls, capsys):
    assert cli.main(["results", "cb-test", "--format", "xlsx"]) == 2
    assert "--output" in capsys.readouterr().err
    assert calls == []


@pytest.mark.parametrize("command", ["publish", "finalize", "rebuild"])
def test_publish_finalize_and_rebuild_call_aggregation(calls, capsys, command):
    assert cli.main([command, "cb-test", "--json"] + (["--yes"] if command != "rebuild" else [])) == 0
    assert calls == [("aggregation", command, ("cb-test",))]
    assert json.loads(capsys.readouterr().out)["method"] == command


def test_config_yml_defaults(monkeypatch):
    from nameko.cli.main import setup_yaml_parser

    from shared.config import database_name

    for name in list(os.environ):
        if name.startswith("AGGREGATION_"):
            monkeypatch.delenv(name)
    setup_yaml_parser()
    config = yaml.safe_load((ROOT / "services/aggregation/config.yml").read_text("utf-8"))
    assert config["WEB_SERVER_ADDRESS"] == "127.0.0.1:8103"
    assert database_name(config, "aggregation") == "pingxuan_aggregation"
    monkeypatch.setenv("AGGREGATION_HTTP", "0.0.0.0:9103")
    monkeypatch.setenv("AGGREGATION_MONGO_DB", "agg")
    config = yaml.safe_load((ROOT / "services/aggregation/config.yml").read_text("utf-8"))
    assert (config["WEB_SERVER_ADDRESS"], config["MONGO_DB"]) == ("0.0.0.0:9103", "agg")


def test_the_rebuild_benchmark_runs_on_a_small_number_of_votes(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("rebuild_benchmark",
                                                  ROOT / "benchmarks" / "rebuild.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert benchmark.main(["--votes", "3000", "--page-size", "700"]) == 0
    out = capsys.readouterr().out
    assert "rebuild of 3,000 votes" in out and "equal to the incremental state: True" in out


class Terminal(io.StringIO):
    def isatty(self):
        return True


def rebuild_calls(monkeypatch, progress):
    """``rebuild`` runs until the bar asked ``rebuild_progress`` twice (or a second passed)."""
    import threading

    asked, made = threading.Event(), []

    def fake_call(service, method, *args, **kwargs):
        made.append(method)
        if method == "rebuild":  # a million votes outlast the 30 s of every other call
            assert kwargs == {"timeout": 900}
        if method == "rebuild_progress":
            if made.count("rebuild_progress") >= 2:
                asked.set()
            return progress
        asked.wait(1)
        return {"campaign_id": args[0], "equal": True}

    monkeypatch.setattr(cli.base, "call", fake_call)
    monkeypatch.setattr(cli.base, "PROGRESS_POLL_SECONDS", 0.01)
    return made


def test_rebuild_on_a_terminal_shows_the_votes_read_of_the_running_rebuild(monkeypatch, capsys):
    made = rebuild_calls(monkeypatch, {"state": "running", "votes_read": 420000,
                                       "votes_expected": 1000000})
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["rebuild", "cb-test"]) == 0
    assert "420000/1000000 votes" in terminal.getvalue() and " 42%|" in terminal.getvalue()
    assert made[-1] == "rebuild" or "rebuild" in made
    assert capsys.readouterr().out.splitlines()[0] == "cb-test: rebuilt"


def test_rebuild_shows_only_the_time_while_no_rebuild_of_ours_runs(monkeypatch):
    rebuild_calls(monkeypatch, {"state": "done", "votes_read": 5, "votes_expected": 5})
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["rebuild", "cb-test"]) == 0
    assert "rebuilding cb-test: 00:0" in terminal.getvalue() and "votes" not in terminal.getvalue()


def test_rebuild_piped_prints_the_answer_and_asks_for_no_progress(monkeypatch, capsys):
    made = rebuild_calls(monkeypatch, {"state": "running", "votes_read": 1, "votes_expected": 2})
    assert cli.main(["rebuild", "cb-test"]) == 0
    captured = capsys.readouterr()
    assert made == ["rebuild"] and captured.err == ""
    assert captured.out.startswith("cb-test: rebuilt")
