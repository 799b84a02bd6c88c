"""A no-op RPC on nameko's own entrypoint against the same on ours (a script, not a test).

Every pingxuan service answers RPC through ``shared.entrypoints.ReplyingRpcConsumer``: its
replies go without a publisher confirm, through one connection made at setup, serialised
once. This measures what that saves per call, nothing else in the way: ``NoopService``
(nameko's ``@rpc``) and ``NoopOnOurRpc`` (ours), both of ``benchmarks/noop_service.py``, each
under ``nameko run`` in one fresh vhost, called in alternating rounds by the same client
processes, each keeping ``--inflight`` calls in flight; per round the calls/s of each, then
the median ratio of the pairs (a round of one beside the round of the other, so the machine's
drift cancels) and each side's CPU ms per call.

    .venv/bin/python benchmarks/rpc_replies.py                  # 6 rounds of 3 s each
    .venv/bin/python benchmarks/rpc_replies.py --rounds 10 --seconds 5
"""
import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks.voting import cpu_seconds  # noqa: E402
from tests.system import isolated_vhost  # noqa: E402

SERVICES = {"nameko": ("NoopService", "noop"), "ours": ("NoopOnOurRpc", "noop_ours")}


def calls(args):
    """One client process: calls of ``service.cast`` for ``seconds``, ``inflight`` at a time."""
    import eventlet
    eventlet.monkey_patch()
    from nameko.standalone.rpc import ClusterRpcProxy
    amqp_uri, service, seconds, inflight = args
    done = 0
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cluster:
        method = getattr(cluster, service).cast
        deadline = time.perf_counter() + seconds
        pending = [method.call_async({"vote_id": str(n)}) for n in range(inflight)]
        while time.perf_counter() < deadline:
            pending.pop(0).result()
            done += 1
            pending.append(method.call_async({"vote_id": str(done)}))
        for reply in pending:
            reply.result()
            done += 1
    return done


def start(amqp_uri, tmp, kind):
    config = Path(tmp) / f"{kind}.yml"
    config.write_text(yaml.safe_dump({
        "AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": "127.0.0.1:0", "max_workers": 100,
        "LOGGING": {"version": 1, "root": {"level": "WARNING"}}}), encoding="utf-8")
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("nameko")), "run", "--config", str(config),
         f"benchmarks.noop_service:{SERVICES[kind][0]}"], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def answering(pool, amqp_uri, kind, clients, seconds=60):
    deadline = time.time() + seconds
    while True:
        try:
            return pool.map(calls, [(amqp_uri, SERVICES[kind][1], 0.5, 1)] * clients)
        except Exception:  # UnknownService until its queue is declared
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each, alternating")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a round")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--inflight", type=int, default=16, help="calls in flight per client")
    args = parser.parse_args()
    pool = multiprocessing.get_context("fork").Pool(args.clients)
    with isolated_vhost() as amqp_uri, tempfile.TemporaryDirectory() as tmp:
        processes = {kind: start(amqp_uri, tmp, kind) for kind in SERVICES}
        try:
            for kind in SERVICES:  # both answer before anything is counted
                answering(pool, amqp_uri, kind, args.clients)
            rates, cpu = {kind: [] for kind in SERVICES}, {kind: [] for kind in SERVICES}
            for round_ in range(args.rounds):
                for kind in (SERVICES if round_ % 2 == 0 else reversed(list(SERVICES))):
                    before = cpu_seconds(processes[kind])
                    started = time.perf_counter()
                    done = sum(pool.map(calls, [(amqp_uri, SERVICES[kind][1], args.seconds,
                                                 args.inflight)] * args.clients))
                    elapsed = time.perf_counter() - started
                    rates[kind].append(done / elapsed)
                    cpu[kind].append(1000 * (cpu_seconds(processes[kind]) - before) / done)
                print(f"round {round_ + 1}: nameko's @rpc {rates['nameko'][-1]:,.0f} calls/s, "
                      f"ours {rates['ours'][-1]:,.0f} calls/s", flush=True)
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(20)
            pool.close()
            pool.join()
    ratios = [ours / nameko for ours, nameko in zip(rates["ours"], rates["nameko"])]
    print(f"\nno-op RPC, {args.clients} clients x {args.inflight} in flight, {args.rounds} rounds "
          f"of {args.seconds:g} s each (median, min-max):")
    for kind, label in (("nameko", "nameko's @rpc"), ("ours", "shared.entrypoints.rpc")):
        print(f"  {label:<24} {statistics.median(rates[kind]):>7,.0f} calls/s "
              f"({min(rates[kind]):,.0f}-{max(rates[kind]):,.0f}); service CPU "
              f"{statistics.median(cpu[kind]):.3f} ms per call")
    print(f"  ours / nameko's: {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
