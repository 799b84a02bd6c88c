"""Documents per collection of MongoDB databases, for the restore drill (deploy/drill.sh).

``count_documents.py DB...`` prints ``{db: {collection: count}}`` as JSON;
``--drop --prefix P DB...`` drops the drill's scratch databases (only names that start
with ``P_``: it can never drop a live database); ``--compare BEFORE AFTER RESTORED
LIVE=SCRATCH...`` compares the counts and exits 0 (equal), 1 (a count differs) or 3 (a live
database changed while it was dumped). The URI is read from ``MONGO_BACKUP_URI``, never
from the command line.
"""
import json
import os
import sys

SYSTEM_PREFIX = "system."


def counts(client, databases):
    """``{db: {collection: documents}}``; system collections are MongoDB's, not ours."""
    return {name: {collection: client[name][collection].count_documents({})
                   for collection in sorted(client[name].list_collection_names())
                   if not collection.startswith(SYSTEM_PREFIX)}
            for name in databases}


def drop_scratch(client, databases, prefix):
    """Drop each scratch database collection by collection (the backup user's restore role
    may drop collections, not databases; an empty database is gone)."""
    for name in databases:
        if not name.startswith(f"{prefix}_"):
            raise SystemExit(f"count_documents.py: refusing to drop {name}: not a scratch "
                             f"database of {prefix}")
        for collection in client[name].list_collection_names():
            if not collection.startswith(SYSTEM_PREFIX):
                client[name].drop_collection(collection)


def compare(before, after, restored, pairs):
    """``(exit status, report lines)`` of the drill."""
    lines, status = [], 0
    for live, scratch in pairs:
        if before.get(live) != after.get(live):
            lines.append(f"{live}: changed while it was dumped ({before.get(live)} -> "
                         f"{after.get(live)}); run the drill at a quiet moment")
            status = max(status, 3)
            continue
        expected, got = before.get(live, {}), restored.get(scratch, {})
        for collection in sorted(set(expected) | set(got)):
            want, have = expected.get(collection), got.get(collection)
            if want == have:
                lines.append(f"ok   {live}.{collection}: {want}")
            else:
                lines.append(f"DIFF {live}.{collection}: {want} documents, restored {have}")
                status = 1 if status != 3 else status
    verdict = {0: "drill passed: every collection restored with its count",
               1: "drill FAILED: restored counts differ", 3: "drill inconclusive"}[status]
    return status, lines + [verdict]


def main(argv):
    if argv[:1] == ["--compare"]:
        before, after, restored = (json.loads(text) for text in argv[1:4])
        pairs = [pair.split("=", 1) for pair in argv[4:]]
        status, lines = compare(before, after, restored, pairs)
        print("\n".join(lines))
        return status
    import pymongo  # only here: --compare runs without it

    uri = os.environ.get("MONGO_BACKUP_URI")
    if not uri:
        raise SystemExit("count_documents.py: set MONGO_BACKUP_URI")
    client = pymongo.MongoClient(uri)
    if argv[:1] == ["--drop"]:
        if argv[1:2] != ["--prefix"] or len(argv) < 3:
            raise SystemExit("count_documents.py: --drop --prefix PREFIX DB...")
        drop_scratch(client, argv[3:], argv[2])
        return 0
    print(json.dumps(counts(client, argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
