"""Benchmark of the voting service (a script, not a test).

Starts a voting service with ``nameko run`` in its own RabbitMQ vhost (or uses
a running one with ``--running``), announces an open campaign and its
candidates as nomination would, then measures, in the same run:

* the raw RabbitMQ rate: persistent messages published and consumed with kombu;
* a no-op RPC (``health``): what nameko's transport alone allows per call;
* ``cast``: single votes from several client processes, each keeping a few in flight;
* ``cast_many``: batches of votes from the same clients;
* the page's JSON API (``POST /api/votes``);

and prints accepted votes/s, p50/p99 latency per call, each rate's ratio to the
raw publish+consume rate, votes per group commit and votes per CPU-second of the
service process (a figure the other work on a shared machine disturbs less).

With ``--in-process`` it first measures the same paths without nameko's transport
(and ``cast_many`` with one vote in twenty a voter's second of the day): the
entrypoints called directly (as nameko's worker would call them, dependencies
injected, eventlet patched as under ``nameko run``) on the embedded store, the
group commit running as in the service. The difference between those rows and
the broker rows is what AMQP, serialisation and nameko cost.

    .venv/bin/python benchmarks/voting.py                 # defaults: a few seconds each
    .venv/bin/python benchmarks/voting.py --votes 20000 --in-process
    .venv/bin/python benchmarks/voting.py --votes 50000 --batch 500 --clients 8
    .venv/bin/python benchmarks/voting.py --profile /tmp/voting.prof   # then: python -m pstats
"""
import argparse
import json
import multiprocessing
import os
import random
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
                   "ip_limit": 10 ** 9, "ip_window_seconds": 60, "code_ip_limit": 10 ** 9},
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
    for payload in candidate_events():
        dispatch(events.NOMINATION, events.NOMINATION_REVIEWED, payload)


def candidate_events():
    """Each candidate accepted in review, as nomination announces it."""
    return [events.make_event(
        events.NOMINATION_REVIEWED, CAMPAIGN, nomination_id=candidate_id, unit="城关镇党委",
        category="advanced_unit", org_type="agency", nominee_name=candidate_id,
        nominee_unit="县财政局", deeds_summary="压测", status="accepted",
        submitted_at="2026-10-10T02:00:00Z", decision="accept", opinion="同意")
        for candidate_id in CANDIDATES]


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


def voter_secret_of(issuer_key):
    """The voter secret the benchmark gives its own voting service (derived, to keep one key)."""
    from services.voting import domain

    return domain.derive_secret(issuer_key, "voter-secret")


def start_service(amqp_uri, secret, log_path, http, profile=None):
    from shared import signing

    env = dict(os.environ, AMQP_URI=amqp_uri,
               MONGO_URI=os.environ.get("MONGO_URI") or "mongomock://bench/",
               PINGXUAN_TOKEN_PUBLIC_KEYS=signing.public_key_of(secret),
               VOTING_SERVICE_KEY=signing.generate_private_key(),
               VOTING_VOTER_SECRET=voter_secret_of(secret),
               VOTING_HTTP=http, VOTING_OTP_SENDER="log",
               VOTING_MONGO_DB=f"bench_{uuid.uuid4().hex[:8]}")
    log = open(log_path, "ab")
    # cProfile writes its statistics when nameko stops (on the benchmark's SIGTERM).
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", *profiler, "-m", "nameko", "run",
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
    """One client process: ``calls`` calls of ``per_call`` votes, ``inflight`` at a time
    (``per_call`` 0: the no-op ``health``)."""
    amqp_uri, token, client, calls, per_call, inflight = args
    from nameko.standalone.rpc import ClusterRpcProxy

    latencies, accepted, refused = [], 0, 0
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data={"auth_token": token},
                         timeout=120) as proxy:
        pending, n = [], 0
        while n < calls or pending:
            while n < calls and len(pending) < inflight:
                if per_call == 0:
                    reply = proxy.voting.health.call_async()
                elif per_call == 1:
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
            if per_call <= 1:
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
    calls = max(1, votes // (clients * max(per_call, 1)))
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
    parser.add_argument("--in-process", action="store_true",
                        help="also measure the entrypoints called directly, without the broker")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the service under cProfile and write its statistics to FILE "
                             "(read them with: python -m pstats FILE)")
    parser.add_argument("--running", metavar="AMQP_URI",
                        help="use the voting service running on this broker (needs "
                             "PINGXUAN_ISSUER_KEY and that service's VOTING_VOTER_SECRET)")
    args = parser.parse_args()

    # Measured first, while no service and no clients compete for the cores.
    before = in_process(args) if args.in_process else ()
    if args.running:
        secret = os.environ["PINGXUAN_ISSUER_KEY"]
        run(args, args.running, secret, os.environ["VOTING_VOTER_SECRET"], None, before)
        return
    from shared import signing

    secret = signing.generate_private_key()
    with isolated_vhost() as amqp_uri, tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "voting.log"
        args.http = f"127.0.0.1:{free_port()}"
        service = start_service(amqp_uri, secret, log_path, args.http, args.profile)
        try:
            run(args, amqp_uri, secret, voter_secret_of(secret), service, before)
        finally:
            service.terminate()
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()


def cpu_seconds(process):
    """User + system CPU seconds of the service process so far (Linux ``/proc``), else ``None``."""
    return None if process is None else pid_cpu_seconds(process.pid)


def pid_cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``), else ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


# --- in process: the entrypoints on the embedded store, without nameko's transport ----------

#: The child runs patched by eventlet, as ``nameko run`` runs the service: the embedded
#: store's locks, the group commit's queue and the callers are green threads there too. Its
#: garbage collector runs as the service's does (``shared/run_service.py``): with Python's
#: defaults, full collections of the growing store took a fifth of ``cast_many``'s CPU.
IN_PROCESS_CHILD = ("import gc; from shared.run_service import GC_THRESHOLDS; "
                    "gc.set_threshold(*GC_THRESHOLDS); "
                    "import eventlet; eventlet.monkey_patch(); "
                    "from benchmarks.voting import in_process_child; in_process_child()")


def in_process(args):
    """Rows measured in a child process (see :func:`in_process_child`)."""
    params = {"clients": args.clients, "inflight": args.inflight, "single": args.single,
              "votes": args.votes, "batch": args.batch, "page": args.page}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", IN_PROCESS_CHILD,
                           json.dumps(params)], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the in-process measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def in_process_child():
    """Call ``cast_many``, ``cast`` and the page API directly, concurrently, on the embedded store.

    The same service class, group commit, repository, keys and metrics as the
    running service, a service instance per call as nameko makes; the callers
    are green threads (``clients`` × ``inflight``, or × 2 for ``cast_many``, as
    the broker clients keep in flight). Events are counted, not sent. Prints the
    rows as JSON on its last line.
    """
    import eventlet
    from prometheus_client import CollectorRegistry
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from services.voting import domain
    from services.voting.commit import CommitContext, CommitQueue
    from services.voting.providers import BallotCache, Keys
    from services.voting.service import VotingService, define_metrics
    from services.voting.store import VotingStore
    from shared.auth import REVOKED_COLLECTION, Caller, VerifiedTokens, identity_of
    from shared.campaigns import CampaignBook
    from shared.errors import PingxuanError
    from shared.metrics import ServiceMetrics
    from shared.plugins import VOTE_RULES, load_plugins
    from shared.store import connect
    from shared.timeutil import utcnow

    from shared import signing

    params = json.loads(sys.argv[1])
    secret = signing.generate_private_key()     # the issuer's key: the tokens are verified with it
    store = VotingStore(connect("mongomock://bench/")[f"bench_{uuid.uuid4().hex[:8]}"])
    store.ensure_indexes()
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, define_metrics(registry))
    voter_secret = domain.derive_secret(secret, "voter-secret")     # as VotingConfig derives it
    keys = Keys(voter_secret, "log", 5.0, set())
    ballot_cache = BallotCache()
    ballot_cache.setup()
    published = {"events": 0, "votes": 0}

    def nomination_down(*args, **kwargs):
        raise ConnectionError("no nomination service here (as in the broker run)")

    def dispatch(event_type, payload):
        published["events"] += 1
        published["votes"] += len(payload.get("votes", ()))

    # The group commit's queue and greenthread, with the context GroupCommit gives it.
    commits = CommitQueue(load_plugins(VOTE_RULES))
    eventlet.spawn(commits.run, CommitContext(store, dispatch, utcnow, commits.rules, metrics))
    dependencies = dict(
        store=store, now=utcnow, dispatch=dispatch, commit=commits.submit, keys=keys,
        send_code=lambda *args: None, ballot_cache=ballot_cache, service_rpc=nomination_down,
        metrics=metrics, call_ids=None)
    revoked = store.db[REVOKED_COLLECTION]      # as the Auth provider checks each token

    verified = VerifiedTokens()     # as the Auth provider: a token's signature once per process

    def verify(token):
        return identity_of(verified.get(secret, token), utcnow(),
                           lambda token_id: revoked.find_one({"_id": token_id}) is not None)

    def worker(token=None):
        """A service instance for one call, its dependencies set as nameko's container sets them."""
        service = VotingService()
        service.__dict__.update(dependencies, campaigns=CampaignBook(store.campaigns),
                                auth=Caller(verify, token, lambda token_id, at: None))
        return service

    document = campaign_document()
    worker().on_campaign_loaded(events.make_event(events.CAMPAIGN_LOADED, CAMPAIGN,
                                                  campaign=document, revision=1))
    for payload in candidate_events():
        worker().on_nomination_reviewed(payload)
    token = issue_token(secret, "frontend", "benchmark")[0]

    def measure(callers, calls, make_call):
        """``callers`` green threads each making ``calls`` calls; the row of the run."""
        latencies, outcome = [], {"accepted": 0, "refused": 0}
        group = (registry.get_sample_value("pingxuan_vote_group_size_sum") or 0,
                 registry.get_sample_value("pingxuan_vote_group_size_count") or 0)
        prepared = [[make_call(client, n) for n in range(calls)] for client in range(callers)]

        def caller(client):
            for call in prepared[client]:
                started = time.perf_counter()
                accepted, refused = call()
                latencies.append(time.perf_counter() - started)
                outcome["accepted"] += accepted
                outcome["refused"] += refused

        cpu, started = time.process_time(), time.perf_counter()
        pool = eventlet.GreenPool(callers)
        for client in range(callers):
            pool.spawn(caller, client)
        pool.waitall()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        latencies.sort()
        groups = (registry.get_sample_value("pingxuan_vote_group_size_count") or 0) - group[1]
        return dict(outcome, seconds=elapsed, votes_per_s=outcome["accepted"] / elapsed,
                    votes_per_cpu_s=outcome["accepted"] / cpu,
                    p50_ms=1000 * statistics.median(latencies),
                    p99_ms=1000 * latencies[int(0.99 * (len(latencies) - 1))],
                    group=((registry.get_sample_value("pingxuan_vote_group_size_sum") or 0)
                           - group[0]) / groups if groups else float("nan"))

    sent = []

    def cast_many_call(client, n):
        batch = [vote(n * params["batch"] + k, client) for k in range(params["batch"])]
        sent.extend(batch)

        def call():
            results = worker(token).cast_many(batch)
            accepted = sum(1 for r in results if r["status"] == "accepted")
            return accepted, len(results) - accepted
        return call

    def repeats_call(client, n):
        """A batch of new votes but for one in twenty: a voter's second vote of the day for
        the same candidate (a new vote_id), refused; its vote_id has no claim to read."""
        size = params["batch"]
        batch = [vote(n * size + k, 50 + client) for k in range(size - size // 20)]
        for earlier in random.sample(sent, size // 20):
            batch.append(dict(earlier, vote_id=f"again-{uuid.uuid4().hex[:12]}"))

        def call():
            results = worker(token).cast_many(batch)
            accepted = sum(1 for r in results if r["status"] == "accepted")
            return accepted, len(results) - accepted
        return call

    def cast_call(client, n):
        body = vote(n, 100 + client)        # other voters than cast_many's

        def call():
            try:
                worker(token).cast(body)
            except PingxuanError:
                return 0, 1
            return 1, 0
        return call

    session_key = keys.session

    def page_call(client, n):
        session = domain.sign_session(session_key, CAMPAIGN, {"k": f"page-{client}-{n}", "m": "-"},
                                      utcnow())
        request = Request(EnvironBuilder(
            method="POST", path="/api/votes", headers={"Authorization": f"Bearer {session}"},
            environ_base={"REMOTE_ADDR": f"10.200.{client % 250}.{n % 250 + 1}"},
            json={"campaign_id": CAMPAIGN, "candidate_id": CANDIDATES[n % len(CANDIDATES)],
                  "vote_id": f"p{client}-{n}-{uuid.uuid4().hex[:8]}"}).get_environ())

        def call():
            ok = worker().api_vote(request).status_code == 200
            return int(ok), int(not ok)
        return call

    callers = params["clients"] * params["inflight"]
    rows = [
        (f"in-process cast_many ({params['batch']}/call)",
         measure(params["clients"] * 2, max(1, params["votes"] // (params["clients"] * 2
                                                                   * params["batch"])),
                 cast_many_call)),
        (f"in-process, 5% 2nd votes ({params['batch']}/call)",
         measure(params["clients"] * 2, max(1, params["votes"] // (params["clients"] * 8
                                                                   * params["batch"])),
                 repeats_call)),
        ("in-process cast (1 vote/call)",
         measure(callers, max(1, params["single"] // callers), cast_call)),
        ("in-process page API", measure(callers, max(1, params["page"] // callers), page_call)),
    ]
    commits.stop()
    accepted = sum(row["accepted"] for _, row in rows)
    if published["votes"] != accepted:
        raise SystemExit(f"{accepted} votes accepted but {published['votes']} announced")
    print(json.dumps(rows))


def run(args, amqp_uri, secret, voter_secret, service, before=()):
    wait_for_health(amqp_uri)
    announce(amqp_uri)
    wait_for_ballot(amqp_uri)
    token = issue_token(secret, "frontend", "benchmark")[0]
    print(f"voting benchmark: {args.clients} client processes, {os.cpu_count()} cores, "
          f"store {os.environ.get('MONGO_URI') or 'embedded (mongomock)'}")
    raw = raw_rate(amqp_uri, args.raw)
    print(f"raw RabbitMQ (kombu, persistent, publish+consume): {raw:,.0f} msg/s")
    from services.voting import domain

    session_key = domain.derive_secret(voter_secret, "session")
    rows = list(before)
    for name, votes, per_call, inflight, page in (
            ("no-op RPC (health), calls", args.single, 0, args.inflight, None),
            ("cast (1 vote/call)", args.single, 1, args.inflight, None),
            (f"cast_many ({args.batch} votes/call)", args.votes, args.batch, 2, None),
            ("page API (1 vote/request)", args.page, 1, args.inflight,
             (args.http, session_key) if args.http else None)):
        if page is None and per_call == 1 and name.startswith("page"):
            continue
        before_groups, before_cpu = group_sizes(args.http), cpu_seconds(service)
        row = drive(amqp_uri, token, args.clients, votes, per_call, inflight, page)
        after_groups, after_cpu = group_sizes(args.http), cpu_seconds(service)
        groups = after_groups[1] - before_groups[1]
        row["group"] = ((after_groups[0] - before_groups[0]) / groups if groups and per_call
                        else float("nan"))
        row["votes_per_cpu_s"] = (row["accepted"] / (after_cpu - before_cpu)
                                  if before_cpu is not None and after_cpu > before_cpu
                                  else float("nan"))
        rows.append((name, row))
    print(f"{'path':<34}{'accepted':>9}{'refused':>8}{'votes/s':>9}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'÷ raw':>7}{'votes/group':>12}{'votes/CPU-s':>12}")
    for name, row in rows:
        print(f"{name:<34}{row['accepted']:>9}{row['refused']:>8}{row['votes_per_s']:>9,.0f}"
              f"{row['p50_ms']:>8.1f}{row['p99_ms']:>8.1f}{row['votes_per_s'] / raw:>7.2f}"
              f"{row['group']:>12.1f}{row['votes_per_cpu_s']:>12,.0f}")
    print("latency is per call (a cast_many call carries the batch); "
          "÷ raw = accepted votes/s over the raw publish+consume rate;\n"
          "votes/CPU-s = accepted votes per CPU-second of the service process "
          "(in-process rows: of the whole process)")


if __name__ == "__main__":
    main()
