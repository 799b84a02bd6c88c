"""Acceptance: a published list that anyone can verify offline (CONTRACT.md "Verifying a result").

Written only from ../shared/CONTRACT.md: ``aggregation.inputs``, ``pingxuan inputs`` and
``pingxuan verify``, and the calls that lead to a published list. The document's own fields are
not named by the contract except as "counted and voided votes", so the client edits a vote
count by finding a ``counted`` number in the file, whatever its place.
"""
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_contract_flow import (ZONE, campaign_file_text, client,  # noqa: F401
                                          eventually, refused, system, wait_until)

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CAMPAIGN = f"e2e-verify-{uuid.uuid4().hex[:8]}"
NOMINATION_SECONDS = 10
VOTING_SECONDS = 6
UNIT = "城关镇党委"
JUDGES = [{"judge_id": "jv-zhao", "name": "赵评委", "unit": "县委组织部"},
          {"judge_id": "jv-qian", "name": "钱评委", "unit": "县委党校"}]


def campaign_yaml(deadline, opens, closes):
    return campaign_file_text(CAMPAIGN, '2026年"四评"结果核验（验收）', deadline, opens, closes, """\
  learning_activity:
    award_slots: 2
    criteria:
      - {key: reach, name: 活动影响, weight: 0.4, max: 100}
      - {key: effect, name: 学习成效, weight: 0.6, max: 100}
""")


def activity(name, client_ref):
    signed = (datetime.now(ZONE) - timedelta(days=2)).date().isoformat()
    return {"campaign_id": CAMPAIGN, "category": "learning_activity", "nominee_name": name,
            "nominee_unit": "城关镇人民政府", "unit_phone": "0734-5551234",
            "contact_person": "李明", "mobile": "13812345678", "email": "liming@example.cn",
            "deeds_summary": f"{name}坚持每周开展。", "materials": "综合材料：学习活动。" * 20,
            "recommendation": {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                               "date": signed},
            "client_ref": client_ref}


def vote(voter, candidate_id, ip):
    return {"vote_id": f"v-{uuid.uuid4().hex}", "campaign_id": CAMPAIGN,
            "candidate_id": candidate_id, "voter": {"channel": "wechat", "id": voter},
            "client": {"ip": ip, "user_agent": "MicroMessenger/8.0 e2e"}}


def counted_numbers(node, path=()):
    """Every ``counted`` number in the document, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "counted" and isinstance(value, int) and not isinstance(value, bool):
                yield path, node
            yield from counted_numbers(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from counted_numbers(value, path + (index,))


def test_a_published_list_is_verified_offline_and_an_edited_file_is_not(system, tmp_path):
    tokens = {"admin": system.token("admin", "宣传部党教理教组"),
              "frontend": system.token("frontend", "wechat-mini-program"),
              "unit": system.token("unit", UNIT, UNIT)}
    for judge in JUDGES:
        tokens[judge["judge_id"]] = system.token("judge", judge["judge_id"], judge["unit"])
    start = datetime.now(timezone.utc).replace(microsecond=0)
    deadline = start + timedelta(seconds=NOMINATION_SECONDS)
    opens = deadline + timedelta(seconds=1)
    closes = opens + timedelta(seconds=VOTING_SECONDS)
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(campaign_yaml(deadline, opens, closes), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))

    with client(system, tokens["admin"]) as department, \
            client(system, tokens["frontend"]) as front, \
            client(system, tokens["unit"]) as unit, \
            client(system, None) as anyone, \
            client(system, tokens["jv-zhao"]) as zhao, client(system, tokens["jv-qian"]) as qian:
        ids = {}
        for key, name in (("A", "城关镇“周末讲堂”"), ("B", "城关镇“读书月”"),
                          ("C", "城关镇“理论夜校”")):
            ids[key] = unit.nomination.submit(activity(name, f"verify-{key}"))["id"]
            department.nomination.review(ids[key], "accept", "符合条件")
        eventually(lambda: {row["candidate_id"] for row in front.voting.ballot(
            CAMPAIGN, "learning_activity")} == set(ids.values()), "the ballot")
        department.scoring.assign_panel(CAMPAIGN, "learning_activity", JUDGES)
        marks = {("A", zhao): {"reach": 80, "effect": 90}, ("A", qian): {"reach": 85, "effect": 85},
                 ("B", zhao): {"reach": 90, "effect": 75}, ("B", qian): {"reach": 70, "effect": 80},
                 ("C", zhao): {"reach": 60, "effect": 65}, ("C", qian): {"reach": 75, "effect": 70}}
        for (key, judge), scores in marks.items():
            eventually(lambda: judge.scoring.submit(ids[key], scores), f"a score of {key}")
        department.scoring.close_panel(CAMPAIGN, "learning_activity")

        # Before publication there is nothing to verify: InvalidState.
        assert refused(anyone.aggregation.inputs, CAMPAIGN)[0] == "InvalidState"

        wait_until(opens)
        votes = [vote(f"oVerify_{n}", ids[key], f"10.7.{n}.1")
                 for n, key in enumerate("AAABBC")]
        assert all(result["status"] == "accepted" for result in front.voting.cast_many(votes))
        wait_until(closes)
        publication = eventually(lambda: department.aggregation.publish(CAMPAIGN),
                                 "publish (voting closed, the panel closed)")
        assert publication

        # Anyone downloads the document; its hash is the published list's.
        document = anyone.aggregation.inputs(CAMPAIGN)
        listed = anyone.aggregation.publicity_list(CAMPAIGN)
        assert listed and document["inputs_hash"] == listed[0]["inputs_hash"]
        text = json.dumps(document, ensure_ascii=False)
        for private in ("jv-zhao", "赵评委", "钱评委", "13812345678", "liming@example.cn",
                        "oVerify_", "10.7."):
            assert private not in text, private
        assert sum(node["counted"] for _, node in counted_numbers(document)) == len(votes)

    saved = tmp_path / "inputs.json"
    system.pingxuan("inputs", CAMPAIGN, "--output", str(saved))
    assert json.loads(saved.read_text(encoding="utf-8"))["inputs_hash"] == document["inputs_hash"]
    checked = system.pingxuan("verify", str(saved), check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "MATCH" in checked.stdout

    # One vote count edited in the file: mismatch, exit 1, the row named.
    edited = json.loads(saved.read_text(encoding="utf-8"))
    where, node = max(counted_numbers(edited), key=lambda found: found[1]["counted"])
    node["counted"] += 1
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    checked = system.pingxuan("verify", str(tampered), check=False)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "MISMATCH" in checked.stdout
    edited_candidate = next(part for part in where if part in ids.values())
    assert edited_candidate in checked.stdout

    # A file that is not an inputs document: a clear message, exit 1.
    other = tmp_path / "campaign-copy.yml"
    other.write_text(campaign_file.read_text(encoding="utf-8"), encoding="utf-8")
    checked = system.pingxuan("verify", str(other), check=False)
    assert checked.returncode == 1 and "not" in checked.stderr

    # A disqualification after publication: revision 2 verifies, revision 1 still does.
    with client(system, tokens["admin"]) as department, client(system, None) as anyone:
        first = [row for row in listed if row["status"] == "selected"][0]["candidate_id"]
        department.nomination.disqualify(first, "经核实，活动材料有不实之处")
        eventually(lambda: anyone.aggregation.publication(CAMPAIGN)["revision"] == 2,
                   "revision 2 of the list")
        assert refused(anyone.aggregation.inputs, CAMPAIGN, 3)[0] == "NotFound"
    for revision in ("1", "2"):
        path = tmp_path / f"inputs-{revision}.json"
        system.pingxuan("inputs", CAMPAIGN, "--revision", revision, "--output", str(path))
        checked = system.pingxuan("verify", str(path), check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads((tmp_path / "inputs-1.json").read_text(encoding="utf-8")) == json.loads(
        saved.read_text(encoding="utf-8"))
