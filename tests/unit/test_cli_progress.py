"""Progress on the CLI's long operations (issue 11): shown on a terminal, never when piped.

Imports (``units import``, ``panel assign``) go to the service in one call that replaces
a whole list, so their bar counts steps; exports (``results --output``, ``inputs``)
count bytes as they are written. ``base.call`` is replaced by a recorder; the terminal
is a pseudo-terminal (``os.openpty``) standing in for standard error.
"""
import fcntl
import io
import json
import os
import select
import struct
import sys
import termios

import pytest

from shared import cli
from shared.cli import base
from shared.errors import InvalidState

REPORT = {"campaign_id": "cb-test", "campaign_name": "测试活动", "phase": "open", "revision": 0,
          "inputs_hash": "ab" * 32, "weights": {"public": 0.3, "panel": 0.7},
          "vote_normalisation": "top_100", "panel_method": "mean", "categories": []}
INPUTS = {"campaign_id": "cb-test", "revision": 1, "inputs_hash": "cd" * 32,
          "candidates": [{"label": f"c{i}", "votes": i} for i in range(5000)]}


@pytest.fixture
def service(monkeypatch):
    answers = {("nomination", "get_campaign"): {"id": "cb-test", "units": []},
               ("nomination", "load_campaign"): {"id": "cb-test", "created": False,
                                                 "revision": 2},
               ("scoring", "assign_panel"): {"judges": []},
               ("aggregation", "report"): REPORT, ("aggregation", "inputs"): INPUTS}
    made = []

    def fake_call(service_name, method, *args, **kwargs):
        made.append((service_name, method, args))
        answer = answers[(service_name, method)]
        if isinstance(answer, Exception):
            raise base.Refused(f"{answer.exc_type}: {answer.value}")
        return answer

    monkeypatch.setattr(base, "call", fake_call)
    fake_call.answers, fake_call.made = answers, made
    return fake_call


@pytest.fixture
def terminal(monkeypatch):
    """``terminal()`` puts standard error on a pseudo-terminal and returns what was drawn
    there so far. Called in the test itself: pytest's capture takes sys.stderr back
    when a test starts."""
    master, slave = os.openpty()
    # A new pseudo-terminal is 0 columns wide, where tqdm would draw nothing; 80 as usual.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    screen = io.TextIOWrapper(os.fdopen(slave, "wb", buffering=0), encoding="utf-8",
                              write_through=True)
    drawn = []

    def read():
        while select.select([master], [], [], 0.1)[0]:
            drawn.append(os.read(master, 65536))
        return b"".join(drawn).decode("utf-8", "replace")

    def start():
        monkeypatch.setattr(sys, "stderr", screen)
        return read

    yield start
    monkeypatch.undo()
    screen.close()
    os.close(master)


@pytest.fixture
def units_file(tmp_path):
    path = tmp_path / "units.csv"
    path.write_text("单位名称\n城关镇党委\n东河乡党委\n", encoding="utf-8")
    return path


@pytest.fixture
def judges_file(tmp_path):
    path = tmp_path / "judges.csv"
    path.write_text("judge_id,name,unit\nj-01,张华,县委党校\nj-02,李明,县档案局\n",
                    encoding="utf-8")
    return path


def test_units_import_prints_no_progress_when_standard_error_is_not_a_terminal(
        service, units_file, capsys):
    assert cli.main(["units", "import", str(units_file), "--campaign", "cb-test"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "2 nominating unit(s) imported" in captured.out


def test_units_import_shows_each_step_on_a_terminal(service, units_file, terminal, capsys):
    screen = terminal()
    assert cli.main(["units", "import", str(units_file), "--campaign", "cb-test"]) == 0
    drawn = screen()
    assert "importing units into cb-test" in drawn and "/3" in drawn
    assert "reading units.csv" in drawn and "sending 2 units" in drawn
    assert capsys.readouterr().out.strip().endswith("(revision 2)")  # the output is unchanged


def test_a_refused_import_prints_only_the_refusal_when_not_a_terminal(service, units_file, capsys):
    service.answers[("nomination", "load_campaign")] = InvalidState("the campaign is closed")
    assert cli.main(["units", "import", str(units_file), "--campaign", "cb-test"]) == 1
    assert capsys.readouterr().err == "pingxuan: InvalidState: the campaign is closed\n"


def test_panel_assign_shows_its_steps_on_a_terminal(
        service, judges_file, terminal, capsys):
    screen = terminal()
    assert cli.main(["panel", "assign", "cb-test", "learning_star", "--judges",
                     str(judges_file)]) == 0
    assert "assigning the panel of learning_star" in screen()
    assert "sending 2 judges" in screen()
    assert service.made[-1][2][2][1]["name"] == "李明"


def test_panel_assign_prints_nothing_to_standard_error_when_piped(service, judges_file, capsys):
    assert cli.main(["panel", "assign", "cb-test", "learning_star", "--judges",
                     str(judges_file)]) == 0
    assert capsys.readouterr().err == ""


def test_a_results_export_counts_its_bytes_on_a_terminal(service, tmp_path, terminal, capsys):
    screen = terminal()
    output = tmp_path / "results.csv"
    assert cli.main(["results", "cb-test", "--format", "csv", "--output", str(output)]) == 0
    drawn = screen()
    assert "writing results.csv" in drawn and "/611" in drawn and "B/s" in drawn
    assert output.read_bytes() and f"{output}: {output.stat().st_size} bytes" in \
        capsys.readouterr().out


def test_a_results_export_prints_no_progress_when_not_a_terminal(service, tmp_path, capsys):
    output = tmp_path / "results.xlsx"
    assert cli.main(["results", "cb-test", "--format", "xlsx", "--output", str(output)]) == 0
    assert capsys.readouterr().err == "" and output.read_bytes()[:2] == b"PK"


def test_the_inputs_document_is_written_whole_with_a_byte_count_on_a_terminal(
        service, tmp_path, terminal, capsys):
    screen = terminal()
    output = tmp_path / "inputs.json"
    assert cli.main(["inputs", "cb-test", "--output", str(output)]) == 0
    assert json.loads(output.read_text(encoding="utf-8")) == INPUTS
    assert output.stat().st_size > 2 * base.WRITE_CHUNK  # written in several pieces
    assert "writing inputs.json" in screen()


def test_the_inputs_document_on_standard_output_is_unchanged_and_nothing_else_is_printed(
        service, capsys):
    assert cli.main(["inputs", "cb-test"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == INPUTS and captured.err == ""


def test_no_bar_is_drawn_over_data_going_to_the_same_terminal(terminal, monkeypatch):
    screen = terminal()

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    stdout = Terminal(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stdout)
    base.write_out(b"x" * (3 * base.WRITE_CHUNK), label="writing inputs")
    assert stdout.buffer.getvalue() == b"x" * (3 * base.WRITE_CHUNK)
    assert "writing inputs" not in screen()
