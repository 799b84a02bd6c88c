"""Acceptance: 票數清零 — a burst of stuffed votes is found, voided, restored; results follow.

Written only from ../shared/CONTRACT.md (voting's ``suspicious``, ``void_votes``,
``restore_votes``; ``aggregation.results`` rows with ``voided_votes``; the CLI's
``votes suspicious|void|restore|ledger``; the errors) plus ``pingxuan rebuild``, the
project's documented command that recomputes the results from every service's
records and says whether they equal the live state. Nothing from the project's
``services`` or ``shared`` packages is imported; the system is started by
``pingxuan up``. The timeline runs on real time, as in test_contract_flow.py.
"""
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_contract_flow import (ONE_ACTIVITY, campaign_file_text, client, eventually,
                                          fields_of, form, refused, wait_until)
from tests.system import running_system

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CAMPAIGN = f"e2e-void-{uuid.uuid4().hex[:8]}"
NOMINATION_SECONDS = 12
VOTING_SECONDS = 10
BURST = 55                 # votes from one /24 within a minute: past the default threshold (50)
BURST_NET = "10.77.3.0/24"
U1, U2 = "城关镇党委", "东河乡党委"


def campaign_yaml(deadline, opens, closes):
    return campaign_file_text(CAMPAIGN, '2026年全县"五创四评"活动（票数清零验收）', deadline,
                              opens, closes, ONE_ACTIVITY)


def vote(voter, candidate_id, ip):
    return {"vote_id": f"v-{uuid.uuid4().hex}", "campaign_id": CAMPAIGN,
            "candidate_id": candidate_id, "voter": {"channel": "wechat", "id": voter},
            "client": {"ip": ip, "user_agent": "MicroMessenger/8.0 e2e"}}


@pytest.fixture
def system(rabbit_config, tmp_path):
    with running_system(tmp_path, rabbit_config["AMQP_URI"]) as system:
        yield system


def test_a_burst_is_found_voided_and_restored_and_the_rebuild_agrees(system, tmp_path):
    admin_token = system.token("admin", "宣传部党教理教组")
    tokens = {"frontend": system.token("frontend", "wechat-mini-program"),
              "unit": system.token("unit", U1, U1), "unit2": system.token("unit", U2, U2),
              "judge": system.token("judge", "j-zhang", "县委组织部")}
    start = datetime.now(timezone.utc).replace(microsecond=0)
    deadline = start + timedelta(seconds=NOMINATION_SECONDS)
    opens = deadline + timedelta(seconds=1)
    closes = opens + timedelta(seconds=VOTING_SECONDS)
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(campaign_yaml(deadline, opens, closes), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))

    with client(system, admin_token) as department, \
            client(system, tokens["frontend"]) as front, \
            client(system, tokens["unit"]) as u1, client(system, tokens["unit2"]) as u2, \
            client(system, tokens["judge"]) as judge:
        # --- two candidates, one judge, before the deadline ------------------------------------
        a = u1.nomination.submit(form("learning_activity", "城关镇“周末讲堂”", "城关镇人民政府",
                                      "v-la-1", campaign_id=CAMPAIGN))["id"]
        b = u2.nomination.submit(form("learning_activity", "东河乡“农家书屋”", "东河乡人民政府",
                                      "v-la-2", campaign_id=CAMPAIGN))["id"]
        for nomination_id in (a, b):
            department.nomination.review(nomination_id, "accept", "符合条件")
        eventually(lambda: {row["candidate_id"] for row in
                            front.voting.ballot(CAMPAIGN, "learning_activity")} == {a, b},
                   "both candidates on the ballot")
        department.scoring.assign_panel(CAMPAIGN, "learning_activity", [
            {"judge_id": "j-zhang", "name": "张评委", "unit": "县委组织部"}])
        eventually(lambda: judge.scoring.submit(a, {"reach": 80}) is not None, "a's score")
        judge.scoring.submit(b, {"reach": 90})

        # --- the vote: a burst from one network for a, ordinary votes for both ------------------
        wait_until(opens)
        burst = front.voting.cast_many([vote(f"oBurst{n}", a, f"10.77.3.{n + 1}")
                                        for n in range(BURST)])
        assert [r["status"] for r in burst] == ["accepted"] * BURST
        ordinary = front.voting.cast_many(
            [vote(f"oPlain{n}", a, f"10.{n}.8.8") for n in range(3)]
            + [vote(f"oPlain{n}", b, f"10.{n}.8.8") for n in range(20)])
        assert {r["status"] for r in ordinary} == {"accepted"}

        def votes():
            return {row["candidate_id"]: (row["votes"], row["voided_votes"])
                    for row in department.aggregation.results(CAMPAIGN, "learning_activity")}

        def rebuild_agrees():
            report = json.loads(system.pingxuan("rebuild", CAMPAIGN, "--json").stdout)
            assert report["equal"] is True, report["differences"]
            return report

        counted = {a: (BURST + 3, 0), b: (20, 0)}
        eventually(lambda: votes() == counted, "every vote counted")
        assert rebuild_agrees()["votes"]["rebuilt"] == BURST + 23

        # --- the department looks at what is suspicious (nothing is voided by it) ---------------
        findings = json.loads(system.pingxuan("votes", "suspicious", CAMPAIGN, "--json").stdout)
        [finding] = [f for f in findings if f["rule"] == "network_burst"]
        assert {"rule", "evidence", "votes", "candidate_id", "network", "from", "to"} <= set(finding)
        assert (finding["votes"], finding["network"], finding["candidate_id"]) == (BURST,
                                                                                  BURST_NET, a)
        assert BURST_NET in finding["evidence"]
        assert votes() == counted

        # --- the bad-input list: each refused by name, nothing changed --------------------------
        selector = {key: finding[key] for key in ("candidate_id", "network", "from", "to")}
        bad = [
            (({"network": BURST_NET}, None), "ValidationError", "reason"),
            (({"network": BURST_NET}, ""), "ValidationError", "reason"),
            (({}, "刷票"), "ValidationError", "selector"),
            (({"network": "10.77.3.0/33"}, "刷票"), "ValidationError", "selector.network"),
            (({"network": "10.77.3.x/24"}, "刷票"), "ValidationError", "selector.network"),
            (({"from": "11月5日上午"}, "刷票"), "ValidationError", "selector.from"),
            (({"to": "2026-13-01T00:00:00Z"}, "刷票"), "ValidationError", "selector.to"),
            (({"candidate_id": "nom-nobody"}, "刷票"), "NotFound", None),
        ]
        for (chosen, reason), exc_type, field in bad:
            kind, value = refused(department.voting.void_votes, CAMPAIGN, chosen, reason)
            assert kind == exc_type, (chosen, reason, kind, value)
            if field:
                assert field in fields_of(value), (chosen, value)
        assert refused(department.voting.restore_votes, "void-unknown-1", "复核")[0] == "NotFound"
        for role in ("unit", "judge", "frontend"):
            with client(system, tokens[role]) as caller:
                assert refused(caller.voting.suspicious, CAMPAIGN)[0] == "Forbidden"
                assert refused(caller.voting.void_votes, CAMPAIGN, selector, "刷票")[0] == \
                    "Forbidden"
                assert refused(caller.voting.restore_votes, "void-unknown-1",
                               "复核")[0] == "Forbidden"
        assert votes() == counted and rebuild_agrees()

        # --- void the burst (through the CLI): results drop by exactly that many ----------------
        voided = json.loads(system.pingxuan(
            "votes", "void", CAMPAIGN, "--candidate", selector["candidate_id"], "--network",
            selector["network"], "--from", selector["from"], "--to", selector["to"],
            "--reason", "同一网段一分钟内集中投票，经核实为刷票", "--yes", "--json").stdout)
        assert voided["voided"] == BURST
        eventually(lambda: votes() == {a: (3, BURST), b: (20, 0)}, "the burst leaves the results")
        assert rebuild_agrees()["votes"]["rebuilt"] == 23
        receipt = front.voting.check_receipt(burst[0]["receipt"])
        assert receipt["counted"] is False and "刷票" in json.dumps(receipt, ensure_ascii=False)
        # The same call again is the same void; nothing moves.
        assert department.voting.void_votes(CAMPAIGN, selector, "同一网段一分钟内集中投票，经核实为刷票") == voided
        assert votes() == {a: (3, BURST), b: (20, 0)}
        assert [f for f in department.voting.suspicious(CAMPAIGN)
                if f["rule"] == "network_burst"] == []
        ledger = system.pingxuan("votes", "ledger", CAMPAIGN).stdout
        assert voided["void_id"] in ledger

        # --- restore: back exactly ---------------------------------------------------------------
        restored = json.loads(system.pingxuan(
            "votes", "restore", voided["void_id"], "--reason", "复核后确认为学校统一组织的投票",
            "--json").stdout)
        assert restored == {"void_id": voided["void_id"], "restored": BURST}
        eventually(lambda: votes() == counted, "the burst counts again")
        assert rebuild_agrees()["votes"]["rebuilt"] == BURST + 23
        assert refused(department.voting.restore_votes, voided["void_id"],
                       "再次恢复")[0] == "InvalidState"
        twice = system.pingxuan("votes", "restore", voided["void_id"], "--reason", "再次恢复",
                                check=False)
        assert twice.returncode == 1 and "InvalidState" in twice.stderr

        # --- void it again, then publish: after 公示 nothing is voided or restored --------------
        again = department.voting.void_votes(CAMPAIGN, selector, "复核后仍认定为刷票")
        assert again["void_id"] != voided["void_id"] and again["voided"] == BURST
        eventually(lambda: votes() == {a: (3, BURST), b: (20, 0)}, "the burst voided again")
        wait_until(closes)
        department.scoring.close_panel(CAMPAIGN, "learning_activity")
        eventually(lambda: department.aggregation.publish(CAMPAIGN), "publish")
        published = {row["candidate_id"]: row["votes"]
                     for row in department.aggregation.publicity_list(CAMPAIGN)}
        assert published == {b: 20}   # b leads once the stuffed votes are out
        eventually(lambda: refused(department.voting.void_votes, CAMPAIGN, {"candidate_id": b},
                                   "刷票")[0] == "InvalidState", "voting hears of 公示")
        assert refused(department.voting.restore_votes, again["void_id"],
                       "复核")[0] == "InvalidState"
        assert votes() == {a: (3, BURST), b: (20, 0)} and rebuild_agrees()
