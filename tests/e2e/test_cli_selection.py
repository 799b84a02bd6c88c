"""Acceptance: the department runs a whole selection with the ``pingxuan`` CLI alone.

Issue 11: a client that uses only the CLI for the department's side (CONTRACT.md "Admin CLI")
runs the selection, and every refusal exits 1 with the rule's message, changing nothing.
The units, the judge and the voting front end send what they themselves send, over RPC by the
contract's names; nothing else calls a service. Nothing from ``services`` or ``shared`` is
imported.
"""
import csv
import json
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from nameko.exceptions import RemoteError
from openpyxl import load_workbook

from tests.e2e.test_contract_flow import (ONE_ACTIVITY, campaign_file_text, client, eventually,
                                          wait_until)
from tests.system import running_system

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CAMPAIGN = f"e2e-cli-{uuid.uuid4().hex[:8]}"
ZONE = ZoneInfo("Asia/Shanghai")
NOMINATION_SECONDS = 15
VOTING_SECONDS = 40
U1, U2 = "城关镇党委", "东河乡党委"
BURST, BURST_NET = 55, "10.88.4.0/24"


def campaign_yaml(deadline, opens, closes):
    return campaign_file_text(CAMPAIGN, "命令行验收活动", deadline, opens, closes, ONE_ACTIVITY)


def form(name, client_ref):
    signed = (datetime.now(ZONE) - timedelta(days=2)).date().isoformat()
    return {
        "campaign_id": CAMPAIGN, "category": "learning_activity", "nominee_name": name,
        "nominee_unit": "城关镇人民政府", "unit_phone": "0734-5551234",
        "contact_person": "李明", "mobile": "13812345600", "email": "liming@example.cn",
        "deeds_summary": f"{name}学用结合成效明显。", "materials": "综合材料。" * 20,
        "recommendation": {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                           "date": signed},
        "client_ref": client_ref,
    }


def vote(voter, candidate_id, ip):
    return {"vote_id": f"v-{uuid.uuid4().hex}", "campaign_id": CAMPAIGN,
            "candidate_id": candidate_id, "voter": {"channel": "wechat", "id": voter},
            "client": {"ip": ip, "user_agent": "MicroMessenger/8.0 e2e-cli"}}


@pytest.fixture
def system(rabbit_config, tmp_path):
    with running_system(tmp_path, rabbit_config["AMQP_URI"]) as system:
        yield system


def test_the_department_runs_a_selection_with_the_cli_alone(system, tmp_path):
    px = system.pingxuan

    def as_json(*args):
        return json.loads(px(*args, "--json").stdout)

    def refused(*args, exc_type):
        done = px(*args, check=False)
        assert done.returncode == 1, (args, done.returncode, done.stdout, done.stderr)
        assert exc_type in done.stderr, done.stderr
        return done.stderr

    start = datetime.now(timezone.utc).replace(microsecond=0)
    deadline = start + timedelta(seconds=NOMINATION_SECONDS)
    opens, closes = deadline + timedelta(seconds=1), deadline + timedelta(seconds=VOTING_SECONDS)
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(campaign_yaml(deadline, opens, closes), encoding="utf-8")
    assert "registered" in px("campaign", "load", str(campaign_file)).stdout

    # --- the nominating units, from the department's Excel export (CSV here) -----------------
    units = tmp_path / "units.csv"
    units.write_text("单位名称,联系人\n城关镇党委,李明\n东河乡党委,王芳\n县教育局党组,张伟\n",
                     encoding="utf-8")
    assert "3 nominating unit(s)" in px("units", "import", str(units), "--campaign", CAMPAIGN).stdout

    tokens = {U1: system.token("unit", U1, U1), U2: system.token("unit", U2, U2),
              "front": system.token("frontend", "wechat-mini-program"),
              "judge": system.token("judge", "j-li", "县委党校")}
    with client(system, tokens[U1]) as u1, client(system, tokens[U2]) as u2, \
            client(system, tokens["front"]) as front, client(system, tokens["judge"]) as judge:
        a = u1.nomination.submit(form("城关镇“周末讲堂”", "cli-a"))["id"]
        b = u2.nomination.submit(form("东河乡“农家书屋”", "cli-b"))["id"]
        c = u1.nomination.submit(form("城关镇“红色影院”", "cli-c"))["id"]

        # --- 初步审核 ---------------------------------------------------------------------------
        listed = as_json("nominations", "list", CAMPAIGN, "--status", "submitted")
        assert {row["id"] for row in listed} == {a, b, c}
        shown = px("nominations", "show", a).stdout
        assert "推荐对象" in shown and "城关镇“周末讲堂”" in shown and "王建国" in shown
        for nomination_id in (a, b):
            assert as_json("nominations", "review", nomination_id, "accept",
                           "--opinion", "符合条件")["status"] == "accepted"
        # A rejection needs its reason: argparse refuses the call (2), nothing is sent.
        assert px("nominations", "review", c, "reject", check=False).returncode == 2
        assert as_json("nominations", "review", c, "reject",
                       "--opinion", "事迹材料不完整")["status"] == "rejected"
        # Reviewing twice is refused by the service: exit 1, the record unchanged.
        refused("nominations", "review", c, "accept", "--opinion", "改判", exc_type="InvalidState")
        assert as_json("nominations", "show", c)["status"] == "rejected"
        opinion = as_json("nominations", "opinion", a, "--opinion", "同意评选")
        assert opinion["leadership_opinion"]["opinion"] == "同意评选"
        forfeits = as_json("forfeits", CAMPAIGN)
        assert forfeits["forfeited_units"] == ["县教育局党组"]

        # --- the panel, from a judges' list --------------------------------------------------------
        judges = tmp_path / "judges.csv"
        with open(judges, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("judge_id", "name", "unit"), ("j-li", "李评委", "县委党校")])
        broken = tmp_path / "broken.csv"
        broken.write_text("judge_id,name\nj-li,李评委\n", encoding="utf-8")
        assert px("panel", "assign", CAMPAIGN, "learning_activity", "--judges", str(broken),
                  check=False).returncode == 2
        px("panel", "assign", CAMPAIGN, "learning_activity", "--judges", str(judges))
        eventually(lambda: judge.scoring.submit(a, {"reach": 80}) is not None, "a's score")
        judge.scoring.submit(b, {"reach": 85})
        progress = as_json("panel", "progress", CAMPAIGN)
        assert progress["panels"][0]["counts"]["scored"] == 2

        # --- the vote: a burst from one network for a ---------------------------------------------
        eventually(lambda: {r["candidate_id"] for r in
                            front.voting.ballot(CAMPAIGN, "learning_activity")} == {a, b},
                   "both candidates on the ballot")
        wait_until(opens)
        burst = front.voting.cast_many([vote(f"oBurst{n:03d}", a, f"10.88.4.{n + 1}")
                                        for n in range(BURST)])
        assert {r["status"] for r in burst} == {"accepted"}, burst[:2]
        plain = front.voting.cast_many([vote(f"oPlain{n:03d}", b, f"10.{n}.9.9") for n in range(30)])
        assert {r["status"] for r in plain} == {"accepted"}

        def votes():
            return {row["candidate_id"]: (row["votes"], row["voided_votes"])
                    for row in as_json("results", CAMPAIGN, "--category", "learning_activity")}

        eventually(lambda: votes() == {a: (BURST, 0), b: (30, 0)}, "every vote counted")
        [finding] = [f for f in as_json("votes", "suspicious", CAMPAIGN)
                     if f["rule"] == "network_burst"]
        assert (finding["network"], finding["votes"]) == (BURST_NET, BURST)
        # Without --yes the void is asked for; no answer: nothing voided (exit 2).
        assert px("votes", "void", CAMPAIGN, "--network", BURST_NET, "--reason", "刷票",
                  check=False).returncode == 2
        assert votes() == {a: (BURST, 0), b: (30, 0)}
        refused("votes", "void", CAMPAIGN, "--network", "10.88.4.0/33", "--reason", "刷票",
                "--yes", exc_type="ValidationError")
        voided = as_json("votes", "void", CAMPAIGN, "--network", BURST_NET, "--from",
                         finding["from"], "--to", finding["to"], "--reason", "经核实为刷票",
                         "--yes")
        assert voided["voided"] == BURST
        eventually(lambda: votes() == {a: (0, BURST), b: (30, 0)}, "the burst voided")
        assert json.loads(px("rebuild", CAMPAIGN, "--json").stdout)["equal"] is True
        restored = as_json("votes", "restore", voided["void_id"], "--reason", "复核后恢复")
        assert restored["restored"] == BURST
        eventually(lambda: votes() == {a: (BURST, 0), b: (30, 0)}, "the burst restored")
        refused("votes", "restore", voided["void_id"], "--reason", "再次", exc_type="InvalidState")
        ledger = px("votes", "ledger", CAMPAIGN).stdout
        assert voided["void_id"] in ledger

        # --- panels closed, 公示 ----------------------------------------------------------------------
        px("panel", "close", CAMPAIGN, "learning_activity")
        with pytest.raises(RemoteError) as late:  # the judge's own call, after the close
            judge.scoring.submit(a, {"reach": 99})
        assert late.value.exc_type == "PanelClosed"
        wait_until(closes)
        eventually(lambda: px("publish", CAMPAIGN, "--yes", check=False).returncode == 0,
                   "publish")
        listing = as_json("results", CAMPAIGN, "--list")
        assert [row["candidate_id"] for row in listing] == [a]  # 55 votes and 80 beat 30 and 85

        # --- an objection, upheld: b moves up ------------------------------------------------------
        lodged = as_json("objections", "lodge", CAMPAIGN, a, "--name", "张三",
                         "--mobile", "13812345678", "--grounds", "该活动实际未开展")
        refused("finalize", CAMPAIGN, "--yes", exc_type="InvalidState")  # an objection is open
        resolved = as_json("objections", "resolve", lodged["objection_id"], "upheld",
                           "--reason", "经核实，活动材料系补做")
        assert resolved["status"] == "upheld"
        eventually(lambda: [r["candidate_id"] for r in as_json("results", CAMPAIGN, "--list")]
                   == [b], "b on revision 2")
        assert as_json("nominations", "show", a)["status"] == "disqualified"

        # --- 审定, then nothing changes the list ----------------------------------------------------
        px("finalize", CAMPAIGN, "--yes")
        refused("disqualify", b, "--reason", "审定之后", "--yes", exc_type="InvalidState")
        assert as_json("nominations", "show", b)["status"] == "accepted"

    # --- the record: exports and every service's audit trail ---------------------------------------
    workbook = tmp_path / "results.xlsx"
    px("results", CAMPAIGN, "--format", "xlsx", "--output", str(workbook))
    sheet = load_workbook(workbook).active
    cells = [str(cell) for row in sheet.iter_rows(values_only=True) for cell in row if cell]
    assert "东河乡“农家书屋”" in cells and "13812345600" not in cells and "张三" not in cells
    trail = as_json("audit", CAMPAIGN)
    assert {"nomination", "voting", "aggregation"} <= {row["service"] for row in trail}
    actions = {row["action"] for row in trail}
    assert {"review", "record_leadership_opinion", "publish", "finalize"} <= actions
