"""Benchmark: the aggregation service's ``rebuild`` over N votes from a stub ``votes_page``.

    .venv/bin/python benchmarks/rebuild.py                 # 1,000,000 votes
    .venv/bin/python benchmarks/rebuild.py --votes 20000   # smaller
    .venv/bin/python benchmarks/rebuild.py --wire          # + decoding each page from JSON

The real entrypoint runs (``worker_factory``) on an embedded store holding the
matching incremental state; nomination, voting and scoring are stubs that
generate their answers on demand. The stub's own time (making the pages) is
measured and taken out, so the figures are the rebuild's: paging, counting,
validating, building both inputs documents, hashing and comparing. Over real
RPC each page also crosses RabbitMQ as JSON; ``--wire`` adds the decoding of
each page to the rebuild's time (encoding is the voting side's cost).
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nameko.testing.services import worker_factory  # noqa: E402

from services.aggregation.providers import REBUILD_PAGE_SIZE, ExpiringCache  # noqa: E402
from services.aggregation.service import AggregationService  # noqa: E402
from services.aggregation.store import AggregationStore  # noqa: E402
from shared.campaign import ORG_TYPES, validate_campaign  # noqa: E402
from shared.ballot import candidate_of_record  # noqa: E402
from shared.campaigns import CampaignBook  # noqa: E402
from shared.store import connect  # noqa: E402
from shared.timeutil import utcnow  # noqa: E402

CAMPAIGN = {
    "id": "cb-bench", "name": "重建基准", "timezone": "Asia/Shanghai",
    "nomination": {"deadline": "2099-10-30T23:59:59"},
    "voting": {"opens": "2099-11-01T08:00:00", "closes": "2099-11-20T20:00:00"},
    "weights": {"public": 0.3, "panel": 0.7}, "vote_normalisation": "top_100",
    "panel_method": "mean",
    "categories": {"advanced_unit": {
        "award_slots": 20,
        "org_type_slots": {"agency": 8, "school": 2, "enterprise": 1, "community": 1, "rural": 8},
        "criteria": [{"key": "results", "name": "学习成效", "weight": 1, "max": 100}]}},
}
CATEGORY = "advanced_unit"


class StubPeers:
    """nomination.list, voting.votes_page and scoring.scores, answered from generated data."""

    def __init__(self, votes, candidates, wire):
        self.total = votes
        self.ids = [f"nom-{i:04d}" for i in range(candidates)]
        self.wire = wire
        self.stub_seconds = 0.0
        self.calls = 0

    def candidate_of(self, i):
        # Uneven but deterministic: some candidates get many more votes than others.
        return self.ids[(i * i + 7 * i) % len(self.ids)]

    def expected_counts(self):
        counts = {}
        for i in range(self.total):
            cid = self.candidate_of(i)
            counts[cid] = counts.get(cid, 0) + 1
        return counts

    def records(self):
        return [{"id": cid, "campaign_id": CAMPAIGN["id"], "category": CATEGORY,
                 "org_type": ORG_TYPES[n % len(ORG_TYPES)], "nominee_name": f"单位{n}",
                 "nominee_unit": f"单位{n}", "status": "accepted",
                 "submitted_at": f"2099-10-10T01:{n % 60:02d}:00Z"}
                for n, cid in enumerate(self.ids)]

    def panel_scores(self):
        return {cid: 60.0 + (n * 37 % 400) / 10 for n, cid in enumerate(self.ids)}

    def __call__(self, service, method, *args, **kwargs):
        self.calls += 1
        if (service, method) == ("nomination", "list"):
            return self.records() if kwargs.get("status") == "accepted" else []
        if (service, method) == ("scoring", "scores"):
            return {"scores": [], "panels": {CATEGORY: {"closed": True, "method": "mean",
                                                        "panel_scores": self.panel_scores()}}}
        if (service, method) == ("voting", "votes_page"):
            return self.votes_page(kwargs.get("after"), kwargs.get("limit", 10000))
        raise LookupError(f"{service}.{method}")

    def votes_page(self, after, limit):
        started = time.perf_counter()
        start = after or 0
        end = min(start + limit, self.total)
        page = {"votes": [{"vote_id": f"v{i}", "candidate_id": self.candidate_of(i),
                           "category": CATEGORY, "cast_at": "2099-11-10T01:00:00Z"}
                          for i in range(start, end)],
                "next": end if end < self.total else None}
        if self.wire:
            encoded = json.dumps(page)
            self.stub_seconds += time.perf_counter() - started
            return json.loads(encoded)  # the receiving side's cost: counted as the rebuild's
        self.stub_seconds += time.perf_counter() - started
        return page


def incremental_state(store, peers, counts):
    """What the event handlers would have built from the same votes."""
    for record in peers.records():
        store.ballot_copy.apply(candidate_of_record(record))
        # Every vote below is cast at 01:00 UTC on 2099-11-10: that local day in Shanghai.
        store.results.update_one({"_id": record["id"]},
                                 {"$set": {"votes": counts.get(record["id"], 0),
                                           "daily": {"2099-11-10": counts[record["id"]]}
                                           if counts.get(record["id"]) else {}}})
    # The claims the vote_cast handler inserts with each counted vote.
    batch = []
    for i in range(peers.total):
        batch.append({"_id": f"{CAMPAIGN['id']}|v{i}", "event_id": "bench",
                      "campaign_id": CAMPAIGN["id"], "candidate_id": peers.candidate_of(i),
                      "category": CATEGORY, "cast_at": "2099-11-10T01:00:00Z"})
        if len(batch) == 10000:
            store.counted_votes.insert_many(batch)
            batch = []
    if batch:
        store.counted_votes.insert_many(batch)
    store.close_panel(CAMPAIGN["id"], CATEGORY, {
        "closed_key": "9", "event_id": "bench", "occurred_at": "2099-11-20T13:00:00Z",
        "method": "mean",
        "panel_scores": sorted([cid, s] for cid, s in peers.panel_scores().items())})


def run(votes, candidates=40, page_size=10000, wire=False):
    """Rebuild ``votes`` votes; returns the service's report and the stub's time."""
    db = connect("mongomock://benchmark/")[f"bench_{time.time_ns()}"]
    store = AggregationStore(db)
    store.ensure_indexes()
    book = CampaignBook(store.campaigns)
    book.remember(validate_campaign(CAMPAIGN), 1)
    peers = StubPeers(votes, candidates, wire)
    incremental_state(store, peers, peers.expected_counts())
    service = worker_factory(AggregationService, store=store, campaigns=book, peers=peers,
                             settings={REBUILD_PAGE_SIZE: page_size}, tallies=ExpiringCache(0),
                             now=utcnow)  # the rebuild's progress is stamped
    started = time.perf_counter()
    report = service.rebuild(CAMPAIGN["id"])
    elapsed = time.perf_counter() - started
    db.client.drop_database(db.name)
    return report, elapsed, peers.stub_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--page-size", type=int, default=10000)
    parser.add_argument("--wire", action="store_true", help="decode each page from JSON too")
    args = parser.parse_args(argv)
    report, elapsed, stub = run(args.votes, args.candidates, args.page_size, args.wire)
    own = elapsed - stub
    print(f"rebuild of {report['votes']['read']:,} votes over {args.candidates} candidates "
          f"(pages of {args.page_size:,}{', JSON-decoded' if args.wire else ''}): "
          f"{own:.2f} s, {report['votes']['read'] / own:,.0f} votes/s "
          f"(stub generating pages: {stub:.2f} s, not counted); "
          f"equal to the incremental state: {report['equal']}")
    return 0 if report["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
