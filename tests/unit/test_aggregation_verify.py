"""The inputs document and ``pingxuan verify``: recomputed from the document alone."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from services.aggregation import domain, verify  # noqa: E402
from services.scoring.domain import weighted_total  # noqa: E402
from services.scoring.methods import DEFAULT_TRIM_MIN_JUDGES  # noqa: E402
from shared import cli  # noqa: E402
from shared.campaign import ORG_TYPES, Campaign  # noqa: E402
from shared.plugins import PANEL_METHODS, load_plugin  # noqa: E402
from tests.aggregation_cases import candidate_facts  # noqa: E402
from tests.conftest import campaign_document  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "services" / "aggregation" / "README.md"
FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
CATEGORIES = ("advanced_unit", "learning_star")
DAYS = ("2099-11-01", "2099-11-02", "2099-11-03")


def campaign(**overrides):
    return Campaign(campaign_document(**overrides))


def panel_of(c, category, criterion_scores, ids):
    """Panel scores as scoring computes them: weighted totals, the method, 4 decimals."""
    by_judge = {}
    for cid in ids:
        for judge, scores in criterion_scores.get(cid, {}).items():
            by_judge.setdefault(judge, {})[cid] = weighted_total(c.criteria(category), scores)
    method = load_plugin(PANEL_METHODS, c.document["panel_method"])
    result = method(by_judge, domain.score_range(c, category), c.document["panel_options"])
    return {cid: (round(result[cid], 4) if cid in result else None) for cid in ids}


@st.composite
def campaigns_and_lives(draw):
    """A campaign and a closed-panel ``live`` with votes per day and judges per criterion."""
    c = campaign(panel_method=draw(st.sampled_from(["mean", "trimmed_mean", "z_score"])),
                 vote_normalisation=draw(st.sampled_from(["top_100", "min_max", "share"])),
                 results={"precision": draw(st.integers(0, 4))})
    live = {"candidates": {}, "votes": {}, "daily_votes": {}, "criterion_scores": {},
            "panels": {}}
    for category in CATEGORIES:
        ids = []
        for i in range(draw(st.integers(1, 12))):
            cid = f"{category[:2]}{i:02d}"
            ids.append(cid)
            org_type = draw(st.sampled_from(ORG_TYPES)) if category == "advanced_unit" else None
            live["candidates"][cid] = candidate_facts(
                cid, org_type, draw(st.integers(0, 5)), category,
                draw(st.sampled_from(["accepted"] * 5 + ["disqualified"])))
            days = [{"day": day, "counted": draw(st.integers(0, 400)),
                     "voided": draw(st.integers(0, 3))}
                    for day in DAYS if draw(st.booleans())]
            live["daily_votes"][cid] = days
            live["votes"][cid] = sum(day["counted"] for day in days)
            judges = {}
            for judge in (f"judge-{n}" for n in range(draw(st.integers(0, 6)))):
                if draw(st.booleans()):
                    judges[judge] = {criterion["key"]: draw(st.integers(0, 20)) * 5.0
                                     + draw(st.sampled_from([0, 0.5]))
                                     for criterion in c.criteria(category)}
            live["criterion_scores"][cid] = judges
        standing = [cid for cid in ids if live["candidates"][cid]["status"] == "accepted"]
        live["panels"][category] = {"closed": True, "closed_key": "9", "panel_scores": panel_of(
            c, category, live["criterion_scores"], standing)}
    return c, live


def document_of(c, live, revision=1, disqualified_after=None, key="campaign-key"):
    inputs = domain.inputs_document(c, live, disqualified_after or {}, key)
    # Through JSON, as it travels and is saved.
    return json.loads(domain.canonical_json(domain.verifiable_document(inputs, revision)))


@FAST
@given(case=campaigns_and_lives())
def test_any_document_the_domain_builds_verifies(case):
    c, live = case
    document = document_of(c, live)
    result = verify.verify(document)
    assert result["match"], result
    # …and its list is the service's own ranking of the same live inputs.
    for category in CATEGORIES:
        rows, _ = domain.standings(c, live, category)
        published = [row for row in document["list"] if row["category"] == category]
        assert [(r["candidate_id"], r["status"], r["rank"]) for r in rows] == [
            (r["candidate_id"], r["status"], r["rank"]) for r in published]


@FAST
@given(case=campaigns_and_lives(), picks=st.lists(st.integers(0, 10**6), max_size=4))
def test_a_later_revision_with_disqualifications_verifies_too(case, picks):
    c, live = case
    standing = sorted(cid for cid, cand in live["candidates"].items()
                      if cand["status"] == "accepted")
    gone = {standing[pick % len(standing)]: 2 for pick in picks} if standing else {}
    document = document_of(c, live, revision=2, disqualified_after=gone)
    assert verify.verify(document)["match"]
    statuses = {row["candidate_id"]: row["status"] for row in document["list"]}
    assert all(statuses[cid] == "disqualified" for cid in gone)


def vote_counts_of(document):
    return [(category, cid, n) for category, data in document["inputs"]["categories"].items()
            for cid, c in data["candidates"].items() for n in range(len(c["votes_by_day"]))]


def scores_of(document):
    return [(category, cid, label, key)
            for category, data in document["inputs"]["categories"].items()
            for cid, c in data["candidates"].items()
            for label, scores in c["judges"].items() for key in scores]


@FAST
@given(case=campaigns_and_lives(), pick=st.integers(0, 10**6), delta=st.sampled_from([1, -1]))
def test_changing_any_one_vote_count_is_detected(case, pick, delta):
    document = document_of(*case)
    counts = vote_counts_of(document)
    if not counts:
        return
    category, cid, n = counts[pick % len(counts)]
    day = document["inputs"]["categories"][category]["candidates"][cid]["votes_by_day"][n]
    day["counted"] = day["counted"] + delta if day["counted"] + delta >= 0 else 1
    result = verify.verify(document)
    assert not result["match"] and not result["hash"]["match"]


@FAST
@given(case=campaigns_and_lives(), pick=st.integers(0, 10**6))
def test_changing_any_one_score_is_detected(case, pick):
    document = document_of(*case)
    scores = scores_of(document)
    if not scores:
        return
    category, cid, label, key = scores[pick % len(scores)]
    judged = document["inputs"]["categories"][category]["candidates"][cid]["judges"][label]
    judged[key] = domain.decimal_text(float(judged[key]) + 1.5)
    result = verify.verify(document)
    assert not result["match"] and not result["hash"]["match"]


def forty_document():
    from tests.aggregation_cases import forty_live
    c = campaign()
    live = forty_live()
    live["daily_votes"] = {cid: [{"day": "2099-11-05", "counted": votes, "voided": 0}]
                           for cid, votes in live["votes"].items()}
    return c, live


def test_an_edited_vote_count_names_the_rows_fields_and_both_values():
    c, live = forty_document()
    document = document_of(c, live)
    document["inputs"]["categories"]["advanced_unit"]["candidates"]["A13"]["votes_by_day"][0][
        "counted"] += 50
    result = verify.verify(document)
    assert not result["match"] and not result["hash"]["match"]
    diffs = {(d["candidate_id"], d["field"]): (d["published"], d["recomputed"])
             for d in result["list"]["differences"]}
    assert diffs[("A13", "votes")] == (live["votes"]["A13"], live["votes"]["A13"] + 50)
    assert ("A13", "composite") in diffs
    lines = verify.report_lines(result)
    assert any(line.startswith("  advanced_unit A13 votes: published ") for line in lines)
    assert lines[-1].startswith("MISMATCH")


def test_an_edited_list_is_a_list_mismatch_while_the_hash_still_matches():
    c, live = forty_document()
    document = document_of(c, live)
    first = document["list"][0]
    first["composite"] = "99.99"
    result = verify.verify(document)
    assert result["hash"]["match"] and not result["list"]["match"] and not result["match"]
    assert result["list"]["differences"] == [{
        "category": first["category"], "candidate_id": first["candidate_id"],
        "field": "composite", "published": "99.99", "recomputed": "90.00"}]


def test_a_panel_score_that_the_judges_scores_do_not_give_is_reported():
    c, live = forty_document()
    panel = live["panels"]["advanced_unit"]["panel_scores"]
    live["criterion_scores"] = {cid: {"j1": {"organisation": score, "results": score}}
                                for cid, score in panel.items() if score is not None}
    live["criterion_scores"]["A01"]["j1"] = {"organisation": 80.0, "results": 80.0}
    document = document_of(c, live)  # A01's panel score is 90 in the 40 cases
    result = verify.verify(document)
    assert result["hash"]["match"] and result["list"]["match"] and not result["match"]
    assert result["panel_scores"]["differences"] == [{
        "category": "advanced_unit", "candidate_id": "A01",
        "field": "panel_score (from judge scores)", "published": "90", "recomputed": "80"}]


def test_each_revision_verifies_with_its_own_disqualifications():
    c, live = forty_document()
    first = document_of(c, live)
    selected = [row["candidate_id"] for row in first["list"] if row["status"] == "selected"]
    second = document_of(c, live, revision=2, disqualified_after={selected[0]: 2})
    assert verify.verify(first)["match"] and verify.verify(second)["match"]
    row = {r["candidate_id"]: r for r in second["list"]}[selected[0]]
    assert row["status"] == "disqualified"
    assert second["inputs"]["disqualifications"] == [{"candidate_id": selected[0], "revision": 2}]
    assert first["inputs_hash"] != second["inputs_hash"]
    # Revision 2's inputs read as revision 1 give another list: the revision is checked too.
    second["revision"] = 1
    assert not verify.verify(second)["list"]["match"]


def test_judges_are_anonymous_labels_stable_within_a_document():
    c, live = forty_document()
    live["criterion_scores"] = {
        "A01": {"wang-judge-7": {"organisation": 90.0, "results": 90.0}},
        "A02": {"wang-judge-7": {"organisation": 90.0, "results": 90.0},
                "li-judge-2": {"organisation": 90.0, "results": 90.0}}}
    text = json.dumps(document_of(c, live), ensure_ascii=False)
    assert "judge-7" not in text and "judge-2" not in text
    candidates = document_of(c, live)["inputs"]["categories"]["advanced_unit"]["candidates"]
    assert set(candidates["A02"]["judges"]) == {"J1", "J2"}
    labels = domain.judge_labels(["wang-judge-7", "li-judge-2"], "campaign-key")
    assert list(candidates["A01"]["judges"]) == [labels["wang-judge-7"]]
    # The order comes from a keyed hash: other keys give other labels, whatever the ids.
    orders = {tuple(sorted(domain.judge_labels(["a", "b", "c", "d"], f"key-{n}").items()))
              for n in range(20)}
    assert len(orders) > 1


@pytest.mark.parametrize("text, words", [
    (b"\x89PNG\r\n", "not JSON"),
    (b"[1, 2, 3]", "not an inputs document"),
    (json.dumps({"categories": {}}).encode(), "not an inputs document"),
    (json.dumps({"document": domain.DOCUMENT_KIND, "inputs": {}, "inputs_hash": "x",
                 "list": [], "revision": 1}).encode(), "recipe"),
    (json.dumps({"document": domain.DOCUMENT_KIND, "inputs": {}, "inputs_hash": "x",
                 "list": [], "revision": "1"}).encode(), '"revision"'),
])
def test_a_file_that_is_not_an_inputs_document_is_refused_with_a_clear_message(text, words):
    with pytest.raises(verify.NotAnInputsDocument, match=re.escape(words)):
        verify.verify(verify.load_document(text))


def test_a_document_whose_inputs_are_damaged_is_refused_not_a_crash():
    c, live = forty_document()
    document = document_of(c, live)
    del document["inputs"]["categories"]["advanced_unit"]["candidates"]["A01"]["votes_by_day"]
    with pytest.raises(verify.NotAnInputsDocument, match="cannot be read"):
        verify.verify(document)


# --- the README's recipe, literally ---------------------------------------------------------

def readme_snippet():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**To recompute the hash**"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("\n```", start)]


def test_the_readme_snippet_recomputes_the_hash_in_its_own_process(tmp_path):
    snippet = readme_snippet()
    assert len(snippet.strip().splitlines()) <= 10
    script = tmp_path / "recompute.py"
    script.write_text(snippet, encoding="utf-8")
    c, live = forty_document()
    document = document_of(c, live)
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    run = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True,
                         check=True)
    assert run.stdout.split() == ["match", document["inputs_hash"]]
    document["inputs"]["categories"]["advanced_unit"]["candidates"]["A01"]["judges"] = {
        "J1": {"organisation": "1", "results": "1"}}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    run = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True,
                         check=True)
    assert run.stdout.split()[0] == "MISMATCH"


def readme_example():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("Worked example (`tests/unit/test_aggregation_verify.py"):]
    start = section.index("```\n") + len("```\n")
    line = section[start:section.index("\n```", start)]
    digest = re.search(r"gives\n`([0-9a-f]{64})`", section).group(1)
    return line, digest


def test_the_readme_example_hash_is_fixed():
    """The README's worked example: these inputs give exactly these bytes and this digest."""
    c = campaign(categories={"learning_star": {
        "award_slots": 1, "criteria": [{"key": "deeds", "name": "事迹", "weight": 1, "max": 100}]}})
    live = {"candidates": {"nom-1": candidate_facts("nom-1", None, 1, "learning_star"),
                           "nom-2": candidate_facts("nom-2", None, 2, "learning_star")},
            "votes": {"nom-1": 120, "nom-2": 80},
            "daily_votes": {"nom-1": [{"day": "2099-11-01", "counted": 70, "voided": 0},
                                      {"day": "2099-11-02", "counted": 50, "voided": 3}],
                            "nom-2": [{"day": "2099-11-01", "counted": 80, "voided": 0}]},
            "criterion_scores": {"nom-1": {"j1": {"deeds": 88.5}},
                                 "nom-2": {"j1": {"deeds": 91.0}}},
            "panels": {"learning_star": {"closed": True,
                                         "panel_scores": {"nom-1": 88.5, "nom-2": 91.0}}}}
    inputs = domain.inputs_document(c, live, {}, "any key: one judge is always J1")
    line, digest = readme_example()
    assert domain.canonical_json(inputs).decode("utf-8") == line
    assert domain.inputs_hash(inputs) == digest
    rows = domain.verifiable_document(inputs, 1)["list"]
    assert [(r["candidate_id"], r["votes"], r["vote_score"], r["panel_score"], r["composite"],
             r["status"]) for r in rows] == [
        ("nom-1", 120, "100.00", "88.50", "91.95", "selected"),
        ("nom-2", 80, "66.67", "91.00", "83.70", "reserve")]


# --- the CLI: pingxuan verify, offline ------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """No broker: any call to a service would fail the test."""
    def no_call(*args, **kwargs):
        raise AssertionError("verify must not call a service")
    monkeypatch.setattr(cli.base, "call", no_call)


def test_cli_verify_a_matching_document_exits_0(tmp_path, capsys, offline):
    c, live = forty_document()
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(document_of(c, live), ensure_ascii=False, indent=1),
                    encoding="utf-8")
    assert cli.main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "inputs hash: match" in out and out.rstrip().splitlines()[-1].startswith("MATCH")


def test_cli_verify_an_edited_document_exits_1_naming_the_row(tmp_path, capsys, offline):
    c, live = forty_document()
    document = document_of(c, live)
    document["inputs"]["categories"]["advanced_unit"]["candidates"]["A13"]["votes_by_day"][0][
        "counted"] += 7
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    assert cli.main(["verify", str(path)]) == 1
    captured = capsys.readouterr()
    assert "inputs hash: MISMATCH" in captured.out
    assert "advanced_unit A13 votes: published" in captured.out
    assert "does not verify" in captured.err
    assert cli.main(["verify", "--json", str(path)]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["match"] is False and result["hash"]["match"] is False


@pytest.mark.parametrize("content", ["not json at all", '{"rows": []}', ""])
def test_cli_verify_a_file_that_is_not_an_inputs_document_exits_1(tmp_path, capsys, offline,
                                                                   content):
    path = tmp_path / "other.json"
    path.write_text(content, encoding="utf-8")
    assert cli.main(["verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pingxuan: ") and "not" in err and str(path) in err


def test_cli_verify_a_missing_file_exits_1(tmp_path, capsys, offline):
    assert cli.main(["verify", str(tmp_path / "absent.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_cli_verify_runs_without_a_broker_in_its_own_process(tmp_path):
    c, live = forty_document()
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(document_of(c, live)), encoding="utf-8")
    env = dict(os.environ, AMQP_URI="amqp://guest:guest@127.0.0.1:1/", PINGXUAN_HOME=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "shared.cli", "verify", str(path)], env=env,
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "MATCH" in run.stdout


def test_cli_inputs_saves_the_document_of_a_revision(tmp_path, capsys, monkeypatch):
    c, live = forty_document()
    document = document_of(c, live, revision=1)
    made = []

    def fake_call(service, method, *args, **kwargs):
        made.append((service, method, args, kwargs))
        return document
    monkeypatch.setattr(cli.base, "call", fake_call)
    path = tmp_path / "inputs.json"
    assert cli.main(["inputs", "cb-test", "--revision", "1", "--output", str(path)]) == 0
    assert made == [("aggregation", "inputs", ("cb-test",), {"revision": 1})]
    assert json.loads(path.read_text(encoding="utf-8")) == document
    assert document["inputs_hash"] in capsys.readouterr().out
    assert cli.main(["inputs", "cb-test"]) == 0
    assert made[-1] == ("aggregation", "inputs", ("cb-test",), {})
    assert json.loads(capsys.readouterr().out) == document
    assert cli.main(["verify", str(path)]) == 0


def test_the_panel_options_travel_in_the_document():
    # The trimmed mean's option is in every document, so a verifier never needs a default.
    assert campaign().document["panel_options"]["trim_min_judges"] == DEFAULT_TRIM_MIN_JUDGES
    assert document_of(*forty_document())["inputs"]["rules"]["panel_options"] == {
        "trim_min_judges": DEFAULT_TRIM_MIN_JUDGES}
