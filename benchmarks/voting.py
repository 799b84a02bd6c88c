"""Benchmark of the voting service (a script, not a test).

Starts a voting service with ``nameko run`` in its own RabbitMQ vhost (or uses
a running one with ``--running``), announces an open campaign and its
candidates as nomination would, then measures, in the same run:

* the raw RabbitMQ rate: persistent messages published and consumed with kombu;
* ``cast``: single votes from several client processes, each keeping a few in flight;
* ``cast_many``: batches of votes from the same clients;

and prints accepted votes/s, p50/p99 latency per call, and each rate's ratio
to the raw publish+consume rate.

    .venv/bin/python benchmarks/voting.py                 # defaults: a few seconds each
    .venv/bin/python benchmarks/voting.py --votes 50000 --batch 500 --clients 8
"""
import argparse
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared import events  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from tests.system import free_port, isolated_vhost  # noqa: E402

CAMPAIGN = "cb-bench"
CANDIDATES = [f"nom-bench-{n:02d}" for n in range(20)]


def local(moment):
    return (moment + timedelta(hours=8)).replace(microsecond=0, tzinfo=None).isoformat()


def campaign_document():
    now = datetime.now(timezone.utc)
    return {
        "id": CAMPAIGN, "name": "压测活动", "timezone": "Asia/Shanghai",
        "nomination": {"deadline": local(now + timedelta(days=5))},
        "voting": {"opens": local(now - timedelta(days=1)), "closes": local(now + timedelta(days=10)),
                   "ip_limit": 10 ** 9, "ip_window_seconds": 60},
        "weights": {"public": 0.3, "panel": 0.7}, "vote_normalisation": "top_100",
        "panel_method": "mean", "panel_options": {"trim_min_judges": 5}, "units": [],
        "categories": {"advanced_unit": {
            "intake_cap": None, "award_slots": 10,
            "criteria": [{"key": "results", "name": "成效", "weight": 1, "min": 0, "max": 100}]}},
    }


def announce(amqp_uri):
    """Tell the voting service about the campaign and its candidates, as nomination would."""
    from nameko.standalone.events import event_dispatcher

    dispatch = event_dispatcher({"AMQP_URI": amqp_uri})
    document = campaign_document()
    dispatch(events.NOMINATION, events.CAMPAIGN_LOADED, events.make_event(
        events.CAMPAIGN_LOADED, CAMPAIGN, campaign=document, revision=1))
    for candidate_id in CANDIDATES:
        dispatch(events.NOMINATION, events.NOMINATION_REVIEWED, events.make_event(
            events.NOMINATION_REVIEWED, CAMPAIGN, nomination_id=candidate_id, unit="城关镇党委",
            category="advanced_unit", org_type="agency", nominee_name=candidate_id,
            nominee_unit="县财政局", deeds_summary="压测", status="accepted",
            submitted_at="2026-10-10T02:00:00Z", decision="accept", opinion="同意"))


def wait_for_health(amqp_uri, deadline=60):
    from nameko.standalone.rpc import ClusterRpcProxy

    end = time.time() + deadline
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=2) as proxy:
        while time.time() < end:
            try:
                if proxy.voting.health()["status"] == "ok":
                    return
            except Exception:
                time.sleep(0.3)
    raise SystemExit("the voting service did not start in time")


def wait_for_ballot(amqp_uri, deadline=60):
    from nameko.standalone.rpc import ClusterRpcProxy

    end = time.time() + deadline
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=5) as proxy:
        while time.time() < end:
            try:
                if len(proxy.voting.ballot(CAMPAIGN)) == len(CANDIDATES):
                    return
            except Exception:
                pass
            time.sleep(0.3)
    raise SystemExit("the voting service did not show the ballot in time")


def start_service(amqp_uri, secret, log_path, http):
    env = dict(os.environ, AMQP_URI=amqp_uri, PINGXUAN_SECRET=secret,
               VOTING_HTTP=http, VOTING_OTP_SENDER="log",
               VOTING_MONGO_DB=f"bench_{uuid.uuid4().hex[:8]}")
    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", "nameko", "run",
         "services.voting.service:VotingService", "--config",
         str(ROOT / "services" / "voting" / "config.yml")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


# --- raw RabbitMQ ----------------------------------------------------------------------------

def raw_rate(amqp_uri, count, size=300):
    """Persistent messages published and consumed through one durable queue, concurrently."""
    from kombu import Connection, Exchange, Queue

    exchange = Exchange("bench-raw", type="direct", durable=True)
    queue = Queue(f"bench-raw-{uuid.uuid4().hex[:6]}", exchange, routing_key="raw", durable=True)
    body = "x" * size
    done = threading.Event()
    received = [0]

    def consume():
        with Connection(amqp_uri) as connection:
            def on_message(_, message):
                message.ack()
                received[0] += 1
                if received[0] >= count:
                    done.set()
            with connection.Consumer(queue, callbacks=[on_message], prefetch_count=500):
                while not done.is_set():
                    try:
                        connection.drain_events(timeout=1)
                    except TimeoutError:
                        pass
                    except OSError:
                        pass

    with Connection(amqp_uri) as connection:
        queue(connection.default_channel).declare()
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    time.sleep(0.5)
    started = time.perf_counter()
    with Connection(amqp_uri) as connection:
        producer = connection.Producer(serializer="json")
        for _ in range(count):
            producer.publish(body, exchange=exchange, routing_key="raw", delivery_mode=2)
    done.wait(120)
    elapsed = time.perf_counter() - started
    with Connection(amqp_uri) as connection:
        queue(connection.default_channel).delete()
    return received[0] / elapsed


# --- clients ---------------------------------------------------------------------------------

def vote(n, client):
    return {"vote_id": f"b{client}-{n}-{uuid.uuid4().hex[:8]}", "campaign_id": CAMPAIGN,
            "candidate_id": CANDIDATES[n % len(CANDIDATES)],
            "voter": {"channel": "wechat", "id": f"openid-{client}-{n // len(CANDIDATES)}-{uuid.uuid4().hex[:6]}"},
            "client": {"ip": f"10.{client}.{(n // 250) % 250}.{n % 250 + 1}",
                       "user_agent": "bench"}}


def run_client(args):
    """One client process: ``calls`` calls of ``per_call`` votes, ``inflight`` at a time."""
    amqp_uri, token, client, calls, per_call, inflight = args
    from nameko.standalone.rpc import ClusterRpcProxy

    latencies, accepted, refused = [], 0, 0
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data={"auth_token": token},
                         timeout=120) as proxy:
        pending, n = [], 0
        while n < calls or pending:
            while n < calls and len(pending) < inflight:
                if per_call == 1:
                    reply = proxy.voting.cast.call_async(vote(n, client))
                else:
                    reply = proxy.voting.cast_many.call_async(
                        [vote(n * per_call + k, client) for k in range(per_call)])
                pending.append((time.perf_counter(), reply))
                n += 1
            sent, reply = pending.pop(0)
            try:
                result = reply.result()
            except Exception:
                refused += 1
                continue
            latencies.append(time.perf_counter() - sent)
            if per_call == 1:
                accepted += 1
            else:
                accepted += sum(1 for r in result if r["status"] == "accepted")
                refused += sum(1 for r in result if r["status"] != "accepted")
    return latencies, accepted, refused


def group_sizes(http):
    """(sum, count) of the service's votes-per-group-commit histogram."""
    import requests

    if not http:
        return 0.0, 0.0
    text = requests.get(f"http://{http}/metrics", timeout=10).text
    value = lambda name: float(next((line.split()[-1] for line in text.splitlines()
                                     if line.startswith(name + " ")), 0))
    return value("pingxuan_vote_group_size_sum"), value("pingxuan_vote_group_size_count")


def run_page_client(args):
    """One client process voting through the page's JSON API, ``inflight`` threads at a time."""
    http, session_key, client, calls, inflight = args
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from services.voting import domain

    local_ = threading.local()

    def one(n):
        session = getattr(local_, "session", None) or requests.Session()
        local_.session = session
        token = domain.sign_session(session_key, CAMPAIGN, {"k": f"page-{client}-{n}", "m": "-"},
                                    datetime.now(timezone.utc))
        started = time.perf_counter()
        reply = session.post(f"http://{http}/api/votes", timeout=60, json={
            "campaign_id": CAMPAIGN, "candidate_id": CANDIDATES[n % len(CANDIDATES)],
            "vote_id": f"p{client}-{n}-{uuid.uuid4().hex[:8]}"},
            headers={"Authorization": f"Bearer {token}"})
        return time.perf_counter() - started, reply.status_code == 200

    with ThreadPoolExecutor(inflight) as pool:
        results = list(pool.map(one, range(calls)))
    return ([r[0] for r in results], sum(1 for r in results if r[1]),
            sum(1 for r in results if not r[1]))


def drive(amqp_uri, token, clients, votes, per_call, inflight, page=None):
    calls = max(1, votes // (clients * per_call))
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        started = time.perf_counter()
        if page:
            results = pool.map(run_page_client, [(page[0], page[1], c, calls, inflight)
                                                 for c in range(clients)])
        else:
            results = pool.map(run_client, [(amqp_uri, token, c, calls, per_call, inflight)
                                            for c in range(clients)])
        elapsed = time.perf_counter() - started
    latencies = sorted(l for r in results for l in r[0])
    accepted = sum(r[1] for r in results)
    refused = sum(r[2] for r in results)
    return {"accepted": accepted, "refused": refused, "seconds": elapsed,
            "votes_per_s": accepted / elapsed,
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
            "calls": len(latencies)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--single", type=int, default=3000, help="votes sent with cast")
    parser.add_argument("--inflight", type=int, default=8, help="calls in flight per client")
    parser.add_argument("--votes", type=int, default=40000, help="votes sent with cast_many")
    parser.add_argument("--batch", type=int, default=100, help="votes per cast_many call")
    parser.add_argument("--page", type=int, default=3000,
                        help="votes sent through the page's JSON API (POST /api/votes)")
    parser.add_argument("--raw", type=int, default=20000, help="raw kombu messages")
    parser.add_argument("--http", help="the running service's HTTP address (for its metrics)")
    parser.add_argument("--running", metavar="AMQP_URI",
                        help="use the voting service running on this broker (needs PINGXUAN_SECRET)")
    args = parser.parse_args()

    if args.running:
        secret = os.environ["PINGXUAN_SECRET"]
        run(args, args.running, secret, None)
        return
    secret = secrets.token_urlsafe(32)
    with isolated_vhost() as amqp_uri, tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "voting.log"
        args.http = f"127.0.0.1:{free_port()}"
        service = start_service(amqp_uri, secret, log_path, args.http)
        try:
            run(args, amqp_uri, secret, service)
        finally:
            service.terminate()
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()


def run(args, amqp_uri, secret, service):
    wait_for_health(amqp_uri)
    announce(amqp_uri)
    wait_for_ballot(amqp_uri)
    token = issue_token(secret, "frontend", "benchmark")[0]
    print(f"voting benchmark: {args.clients} client processes, {os.cpu_count()} cores, "
          f"store {os.environ.get('MONGO_URI') or 'embedded (mongomock)'}")
    raw = raw_rate(amqp_uri, args.raw)
    print(f"raw RabbitMQ (kombu, persistent, publish+consume): {raw:,.0f} msg/s")
    from services.voting import domain

    session_key = domain.derive_secret(domain.derive_secret(secret, "voter-secret"), "session")
    rows = []
    for name, votes, per_call, inflight, page in (
            ("cast (1 vote/call)", args.single, 1, args.inflight, None),
            (f"cast_many ({args.batch} votes/call)", args.votes, args.batch, 2, None),
            ("page API (1 vote/request)", args.page, 1, args.inflight,
             (args.http, session_key) if args.http else None)):
        if page is None and per_call == 1 and name.startswith("page"):
            continue
        before = group_sizes(args.http)
        row = drive(amqp_uri, token, args.clients, votes, per_call, inflight, page)
        after = group_sizes(args.http)
        groups = after[1] - before[1]
        row["group"] = (after[0] - before[0]) / groups if groups else float("nan")
        rows.append((name, row))
    print(f"{'path':<28}{'accepted':>10}{'refused':>9}{'votes/s':>10}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'÷ raw':>8}{'votes/group':>13}")
    for name, row in rows:
        print(f"{name:<28}{row['accepted']:>10}{row['refused']:>9}{row['votes_per_s']:>10,.0f}"
              f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['votes_per_s'] / raw:>8.2f}"
              f"{row['group']:>13.1f}")
    print("latency is per call (a cast_many call carries the batch); "
          "÷ raw = accepted votes/s over the raw publish+consume rate")


if __name__ == "__main__":
    main()
