"""``pingxuan panel links`` with the CLI's ``call()`` replaced by a recorder (no broker)."""
import io
import json
import sys

import pytest

from shared import cli
from shared.cli.base import Refused

LINK = "http://judges.test/judge#eyJ.link"


def row(judge_id, queued, reason=None, state="queued", renewed=False):
    return {"judge_id": judge_id, "name": f"评委{judge_id}", "unit": "县委党校",
            "has_contact": reason != "no_contact", "channel": None if reason == "no_contact"
            else "sms", "link": f"{LINK}-{judge_id}", "queued": queued, "renewed": renewed,
            "not_queued_reason": reason,
            "notice": {"state": state, "template": None, "at": None, "detail": None,
                       "attempts": 0}}


@pytest.fixture
def calls(monkeypatch):
    made = []

    def fake_call(service, method, *args, **kwargs):
        made.append((service, method, args, kwargs))
        if args[1] == "closed_category":
            raise Refused("PanelClosed: the panel of closed_category closed")
        return {"campaign_id": args[0], "category": args[1],
                "renewed": ["j1"] if kwargs.get("renew") else [],
                "judges": [row("j1", True, renewed=kwargs.get("renew", False)),
                           row("j2", False, "no_contact", "no_contact"),
                           row("j3", False, "sent_moments_ago", "sent")]}

    monkeypatch.setattr(cli.base, "call", fake_call)
    return made


def test_links_sends_every_judges_link_again_and_prints_each_link(calls, capsys):
    assert cli.main(["panel", "links", "cb-test", "advanced_unit"]) == 0
    assert calls == [("scoring", "send_links", ("cb-test", "advanced_unit", None),
                      {"renew": False})]
    out = capsys.readouterr().out
    assert f"{LINK}-j2" in out and "hand the link over yourself" in out
    assert "a message went moments ago" in out and "queued" in out


def test_links_for_some_judges_with_json(calls, capsys):
    assert cli.main(["panel", "links", "cb-test", "advanced_unit", "--judge", "j1",
                     "--judge", "j3", "--json"]) == 0
    assert calls[0][2] == ("cb-test", "advanced_unit", ["j1", "j3"])
    assert json.loads(capsys.readouterr().out)["judges"][1]["not_queued_reason"] == "no_contact"


def test_renew_asks_first_and_without_a_yes_changes_nothing(calls, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert cli.main(["panel", "links", "cb-test", "advanced_unit", "--judge", "j1",
                     "--renew"]) == 2
    assert calls == []
    err = capsys.readouterr().err
    assert "j1" in err and "stops working at once" in err and "not confirmed" in err


def test_renew_with_a_yes_at_the_prompt_or_yes(calls, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert cli.main(["panel", "links", "cb-test", "advanced_unit", "--renew"]) == 0
    assert "every judge of the panel" in capsys.readouterr().err
    assert cli.main(["panel", "links", "cb-test", "advanced_unit", "--renew", "--yes"]) == 0
    assert [call[3] for call in calls] == [{"renew": True}, {"renew": True}]
    assert "new links for: j1" in capsys.readouterr().out


def test_a_refusal_exits_1_with_its_type(calls, capsys):
    assert cli.main(["panel", "links", "cb-test", "closed_category"]) == 1
    assert "PanelClosed" in capsys.readouterr().err
