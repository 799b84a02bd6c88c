"""deploy/backup.sh, restore.sh and drill.sh against stub MongoDB tools (no server here).

The stubs on PATH record how each tool was run (its arguments and the config file it was
given) and the drill's document counts come from a stub Python; ``--compare`` and the
counting functions themselves run for real (the latter on mongomock). What is shown: every
service's database is dumped to its own archive, the password is on no command line, a
restore replaces only what it is told to and only with ``--yes``, and the drill restores
into scratch databases (``--nsFrom``/``--nsTo``), never the live ones, compares the counts,
and drops the scratch databases whatever the outcome.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mongomock
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ["nomination", "voting", "scoring", "aggregation", "notification"]
PASSWORD = "s3cret-backup-password-0123"
URI = f"mongodb://backup:{PASSWORD}@mongo1:27017,mongo2:27017/?replicaSet=rs0&authSource=admin"

TOOL_STUB = f"""#!{sys.executable}
import json, os, stat, sys
args = sys.argv[1:]
config = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
record = {{"tool": os.path.basename(sys.argv[0]), "args": args}}
if config:
    record["config"] = open(config).read()
    record["config_mode"] = oct(stat.S_IMODE(os.stat(config).st_mode))
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
archive = next((a.split("=", 1)[1] for a in args if a.startswith("--archive=")), None)
if record["tool"] == "mongodump":
    db = next(a.split("=", 1)[1] for a in args if a.startswith("--db="))
    open(archive, "w").write("dump of " + db)
sys.exit(int(os.environ.get("STUB_EXIT_" + record["tool"].upper(), "0")))
"""

#: A python for the drill: counting and dropping answered from STUB_COUNTS, --compare real.
PYTHON_STUB = f"""#!{sys.executable}
import json, os, subprocess, sys
script, args = sys.argv[1], sys.argv[2:]
if args[:1] == ["--compare"]:
    sys.exit(subprocess.call([{sys.executable!r}, script] + args))
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({{"tool": "count_documents", "args": args,
                          "uri_in_env": os.environ.get("MONGO_BACKUP_URI") is not None}}) + "\\n")
if args[:1] == ["--drop"]:
    sys.exit(0)
fixture = json.load(open(os.environ["STUB_COUNTS"]))
calls_file = os.environ["STUB_COUNTS"] + ".calls"
calls = int(open(calls_file).read()) if os.path.exists(calls_file) else 0
open(calls_file, "w").write(str(calls + 1))
answer = {{}}
for db in args:
    if db.startswith("drill_"):
        answer[db] = fixture["restored"][db.rsplit("_", 1)[1]]
    else:
        answer[db] = fixture["live"][calls][db]
print(json.dumps(answer))
"""

LIVE = {f"pingxuan_{s}": {"audit": 3, "campaigns": 1, f"{s}_things": 10 + i}
        for i, s in enumerate(SERVICES)}


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {package}")
    return path


@pytest.fixture
def stubs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("mongodump", TOOL_STUB), ("mongorestore", TOOL_STUB),
                       ("python-stub", PYTHON_STUB)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.jsonl"
    counts = tmp_path / "counts.json"

    def run(script, *args, uri=URI, live=(LIVE, LIVE), restored=None, env=None):
        restored = restored if restored is not None else {
            db.removeprefix("pingxuan_"): c for db, c in LIVE.items()}
        counts.write_text(json.dumps({"live": list(live), "restored": restored}))
        environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log),
                       "STUB_COUNTS": str(counts), "PYTHON": str(bin_dir / "python-stub"),
                       "HOME": str(tmp_path)}
        if uri is not None:
            environment["MONGO_BACKUP_URI"] = uri
        environment.update(env or {})
        result = subprocess.run(["bash", str(DEPLOY / script), *args], capture_output=True,
                                text=True, env=environment, cwd=tmp_path)
        calls = [json.loads(line) for line in log.read_text().splitlines()] \
            if log.exists() else []
        log.unlink(missing_ok=True)
        Path(str(counts) + ".calls").unlink(missing_ok=True)
        return result, calls

    return run


def option(call, name):
    return next((a.split("=", 1)[1] for a in call["args"] if a.startswith(f"--{name}=")), None)


def test_the_scripts_pass_shellcheck_and_bash_n():
    scripts = [DEPLOY / name for name in ("backup.sh", "restore.sh", "drill.sh")]
    scripts.append(DEPLOY / "backup" / "lib.sh")
    result = subprocess.run([tool("shellcheck", "shellcheck"), "-x", "-P", "SCRIPTDIR", *map(str, scripts)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        if script.suffix == ".sh" and script.parent == DEPLOY:
            assert os.access(script, os.X_OK), f"{script.name} is not executable"


def test_backup_dumps_each_service_database_to_its_own_archive(stubs, tmp_path):
    result, calls = stubs("backup.sh", "--out", "nightly")
    assert result.returncode == 0, result.stderr
    assert [c["tool"] for c in calls] == ["mongodump"] * 5
    assert [option(c, "db") for c in calls] == [f"pingxuan_{s}" for s in SERVICES]
    for call in calls:
        db = option(call, "db")
        assert option(call, "archive") == f"nightly/{db}.archive.gz"
        assert "--gzip" in call["args"]
        assert option(call, "readPreference") == "secondaryPreferred"
        # The URI (and its password) reaches the tool in a private file, not on its command line.
        assert call["config"] == f'uri: "{URI}"\n' and call["config_mode"] == "0o600"
        assert not any(PASSWORD in arg for arg in call["args"])
    sums = (tmp_path / "nightly" / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split()[1] for line in sums) == sorted(
        f"./pingxuan_{s}.archive.gz" for s in SERVICES)
    # The config file is gone once the backup is done.
    assert not any(Path(option(call, "config")).exists() for call in calls)


def test_backup_follows_the_database_names_of_the_configmap(stubs):
    result, calls = stubs("backup.sh", "--out", "b", "--service", "voting",
                          env={"VOTING_MONGO_DB": "county_voting"})
    assert result.returncode == 0, result.stderr
    assert [option(c, "db") for c in calls] == ["county_voting"]


@pytest.mark.parametrize("args, uri, message", [
    (("--out", "b"), None, "set MONGO_BACKUP_URI"),
    (("--service", "votes"), URI, "unknown service votes"),
    (("--frobnicate",), URI, "unknown argument --frobnicate"),
])
def test_backup_refuses_without_a_uri_or_with_a_wrong_argument(stubs, args, uri, message):
    result, calls = stubs("backup.sh", *args, uri=uri)
    assert result.returncode == 2
    assert message in result.stderr
    assert calls == []


def test_a_failed_dump_fails_the_backup(stubs):
    result, _ = stubs("backup.sh", "--out", "b", env={"STUB_EXIT_MONGODUMP": "1"})
    assert result.returncode != 0
    assert "backup in" not in result.stdout


def test_restore_replaces_each_database_only_with_yes_and_an_intact_backup(stubs, tmp_path):
    assert stubs("backup.sh", "--out", "b")[0].returncode == 0
    result, calls = stubs("restore.sh", "b")
    assert result.returncode == 2 and "add --yes" in result.stderr and calls == []

    result, calls = stubs("restore.sh", "b", "--yes")
    assert result.returncode == 0, result.stderr
    assert [c["tool"] for c in calls] == ["mongorestore"] * 5
    for service, call in zip(SERVICES, calls):
        db = f"pingxuan_{service}"
        assert option(call, "archive") == f"b/{db}.archive.gz"
        assert option(call, "nsInclude") == f"{db}.*"
        assert "--drop" in call["args"] and "--gzip" in call["args"]
        assert not any(PASSWORD in arg for arg in call["args"])

    result, calls = stubs("restore.sh", "b", "--yes", "--service", "scoring")
    assert [option(c, "nsInclude") for c in calls] == ["pingxuan_scoring.*"]

    (tmp_path / "b" / "pingxuan_voting.archive.gz").write_text("tampered")
    result, calls = stubs("restore.sh", "b", "--yes")
    assert result.returncode == 2 and "does not match SHA256SUMS" in result.stderr
    assert calls == []


def test_the_drill_restores_into_scratch_databases_and_compares_the_counts(stubs):
    result, calls = stubs("drill.sh")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "drill passed" in result.stdout
    assert "ok   pingxuan_voting.voting_things: 11" in result.stdout
    dumps = [c for c in calls if c["tool"] == "mongodump"]
    restores = [c for c in calls if c["tool"] == "mongorestore"]
    assert [option(c, "db") for c in dumps] == [f"pingxuan_{s}" for s in SERVICES]
    assert len(restores) == 5
    stamps = set()
    for service, call in zip(SERVICES, restores):
        source, target = option(call, "nsFrom"), option(call, "nsTo")
        assert source == f"pingxuan_{service}.*"
        stamp, _, rest = target.rpartition("_")
        assert rest == f"{service}.*" and stamp.startswith("drill_")
        stamps.add(stamp)
        # Never the live database: no --drop, no restore under the live name.
        assert "--drop" not in call["args"] and option(call, "nsInclude") is None
        assert option(call, "archive").endswith(f"/pingxuan_{service}.archive.gz")
    assert len(stamps) == 1
    drops = [c for c in calls if c["tool"] == "count_documents" and c["args"][:1] == ["--drop"]]
    assert len(drops) == 1
    assert drops[0]["args"][:3] == ["--drop", "--prefix", stamps.pop()]
    assert sorted(drops[0]["args"][3:]) == sorted(
        f"{drops[0]['args'][2]}_{s}" for s in SERVICES)
    assert all(c["uri_in_env"] for c in calls if c["tool"] == "count_documents")


def test_the_drill_fails_naming_a_collection_restored_short_and_still_drops_scratch(stubs):
    restored = {db.removeprefix("pingxuan_"): dict(c) for db, c in LIVE.items()}
    restored["voting"]["voting_things"] -= 1
    result, calls = stubs("drill.sh", restored=restored)
    assert result.returncode == 1
    assert "DIFF pingxuan_voting.voting_things: 11 documents, restored 10" in result.stdout
    assert "drill FAILED" in result.stdout
    assert any(c["args"][:1] == ["--drop"] for c in calls if c["tool"] == "count_documents")


def test_the_drill_is_inconclusive_when_a_database_changes_during_the_dump(stubs):
    later = json.loads(json.dumps(LIVE))
    later["pingxuan_voting"]["voting_things"] += 5
    result, _ = stubs("drill.sh", live=(LIVE, later))
    assert result.returncode == 3
    assert "pingxuan_voting: changed while it was dumped" in result.stdout


def test_a_failed_restore_fails_the_drill_and_still_drops_scratch(stubs):
    result, calls = stubs("drill.sh", env={"STUB_EXIT_MONGORESTORE": "1"})
    assert result.returncode != 0
    assert "drill passed" not in result.stdout
    assert any(c["args"][:1] == ["--drop"] for c in calls if c["tool"] == "count_documents")


# --- the counting helper, on mongomock -------------------------------------------------------

def counting_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "count_documents", DEPLOY / "backup" / "count_documents.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_and_scratch_drops_on_a_store():
    module = counting_module()
    client = mongomock.MongoClient()
    client["pingxuan_voting"]["votes"].insert_many([{"n": i} for i in range(7)])
    client["pingxuan_voting"]["audit"].insert_one({})
    client["drill_1_voting"]["votes"].insert_many([{"n": i} for i in range(7)])
    assert module.counts(client, ["pingxuan_voting", "drill_1_voting"]) == {
        "pingxuan_voting": {"audit": 1, "votes": 7}, "drill_1_voting": {"votes": 7}}
    with pytest.raises(SystemExit, match="refusing to drop pingxuan_voting"):
        module.drop_scratch(client, ["pingxuan_voting"], "drill_1")
    assert client["pingxuan_voting"]["votes"].count_documents({}) == 7
    module.drop_scratch(client, ["drill_1_voting"], "drill_1")
    assert client["drill_1_voting"].list_collection_names() == []


def test_compare_reports_a_missing_collection():
    module = counting_module()
    status, lines = module.compare({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 2}},
                                   {"s_a": {"x": 1}}, [("a", "s_a")])
    assert status == 1
    assert "DIFF a.y: 2 documents, restored None" in lines
