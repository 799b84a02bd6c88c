"""``pingxuan votes …`` with the CLI's ``call()`` replaced by a recorder (no broker)."""
import io
import json

import pytest

from shared import cli
from shared.cli.base import Refused

FINDING = {"rule": "network_burst", "votes": 12, "candidate_id": "nom-a",
           "network": "203.0.113.0/24", "from": "2099-11-02T02:00:00Z",
           "to": "2099-11-02T02:03:00.001000Z", "threshold": {"burst_votes": 8},
           "evidence": "12 votes from network 203.0.113.0/24 …", "vote_ids": ["v1", "v2"]}


@pytest.fixture
def calls(monkeypatch):
    made = []

    def fake_call(service, method, *args, **kwargs):
        made.append((service, method, args))
        if method == "suspicious":
            return [FINDING]
        if method == "void_votes":
            return {"void_id": "void-x-1", "voided": 12}
        if method == "restore_votes":
            if args[0] == "void-none":
                raise Refused("NotFound: no such void")
            return {"void_id": args[0], "restored": 12}
        return {"campaign_id": args[0], "entries": [], "by_rule": {"ip_throttle": 2},
                "by_ip_net": {}, "total": 2, "voided_now": 12, "voids": [
                    {"void_id": "void-x-1", "state": "voided", "voided": 12, "reason": "刷票",
                     "at": "2099-11-02T03:00:00Z", "by": {"name": "宣传部"}}]}

    monkeypatch.setattr(cli.base, "call", fake_call)
    return made


def test_suspicious_prints_each_finding_with_the_void_that_takes_it(calls, capsys):
    assert cli.main(["votes", "suspicious", "cb-test"]) == 0
    out = capsys.readouterr().out
    assert "[network_burst] 12 votes" in out and "12 votes from network" in out
    assert ("pingxuan votes void cb-test --candidate nom-a --network 203.0.113.0/24 --from "
            "2099-11-02T02:00:00Z --to 2099-11-02T02:03:00.001000Z") in out
    assert cli.main(["votes", "suspicious", "cb-test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [FINDING]


def test_void_by_range_with_yes(calls, capsys):
    assert cli.main(["votes", "void", "cb-test", "--network", "203.0.113.0/24", "--from",
                     "2099-11-02T02:00:00Z", "--reason", "刷票", "--yes"]) == 0
    assert calls == [("voting", "void_votes", (
        "cb-test", {"network": "203.0.113.0/24", "from": "2099-11-02T02:00:00Z"}, "刷票"))]
    assert "void-x-1: 12 votes voided" in capsys.readouterr().out


def test_void_by_a_file_of_vote_ids(calls, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("# from the finding\nv1\n\n  v2  \nv1\n", encoding="utf-8")
    assert cli.main(["votes", "void", "cb-test", "--vote-ids", str(ids), "--reason", "刷票",
                     "--yes", "--json"]) == 0
    assert calls[0][2][1] == {"vote_ids": ["v1", "v2"]}
    assert json.loads(capsys.readouterr().out) == {"void_id": "void-x-1", "voided": 12}


def test_void_asks_first_and_a_no_voids_nothing(calls, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert cli.main(["votes", "void", "cb-test", "--candidate", "nom-a", "--reason", "刷票"]) == 2
    assert calls == [] and "nothing was voided" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))   # no terminal, no answer
    assert cli.main(["votes", "void", "cb-test", "--candidate", "nom-a", "--reason", "刷票"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert cli.main(["votes", "void", "cb-test", "--candidate", "nom-a", "--reason", "刷票"]) == 0
    assert len(calls) == 1


@pytest.mark.parametrize("argv", [
    ["votes", "void", "cb-test", "--reason", "刷票", "--yes"],
    ["votes", "void", "cb-test", "--vote-ids", "ids.txt", "--candidate", "a", "--reason", "x",
     "--yes"],
    ["votes", "void", "cb-test", "--vote-ids", "/no/such/file", "--reason", "x", "--yes"],
])
def test_usage_errors_exit_2_and_call_nothing(calls, argv):
    assert cli.main(argv) == 2
    assert calls == []


def test_void_needs_a_reason(calls):
    with pytest.raises(SystemExit) as exited:
        cli.main(["votes", "void", "cb-test", "--candidate", "a", "--yes"])
    assert exited.value.code == 2 and calls == []


def test_restore_and_a_refusal_exit_1(calls, capsys):
    assert cli.main(["votes", "restore", "void-x-1", "--reason", "复核无误"]) == 0
    assert "void-x-1: 12 votes count again" in capsys.readouterr().out
    assert cli.main(["votes", "restore", "void-none", "--reason", "复核无误"]) == 1
    assert "NotFound: no such void" in capsys.readouterr().err


def test_the_ledger_lists_refusals_and_voids(calls, capsys):
    assert cli.main(["votes", "ledger", "cb-test"]) == 0
    out = capsys.readouterr().out
    assert "refused votes: 2" in out and "ip_throttle: 2" in out
    assert "void-x-1 voided 12 votes" in out and "宣传部: 刷票" in out
