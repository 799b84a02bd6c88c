"""``pingxuan up`` / ``down`` / ``status``: the services as background processes of this machine."""
import os
import signal
import subprocess
import sys
import time

from shared.cli.base import ROOT, CliError, amqp_uri, home, secret

#: Every service, in start order, with the env var and default of its HTTP address.
SERVICES = {
    "nomination": ("NOMINATION_HTTP", "127.0.0.1:8101"),
    "voting": ("VOTING_HTTP", "127.0.0.1:8100"),
    "scoring": ("SCORING_HTTP", "127.0.0.1:8102"),
    "aggregation": ("AGGREGATION_HTTP", "127.0.0.1:8103"),
    "notification": ("NOTIFICATION_HTTP", "127.0.0.1:8104"),
    "console": ("CONSOLE_HTTP", "127.0.0.1:8105"),
}
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


def built_services():
    """Services whose package has a ``service.py`` (the others are not built yet)."""
    return [name for name in SERVICES if (ROOT / "services" / name / "service.py").exists()]


def http_address(name):
    env, default = SERVICES[name]
    return os.environ.get(env) or default


def pid_file(name):
    run = home() / "run"
    run.mkdir(exist_ok=True)
    return run / f"{name}.pid"


def running_pid(name):
    path = pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink()
        return None
    return pid


def wait_healthy(names, deadline):
    """Return once each service answers ``health`` over RPC."""
    from nameko.standalone.rpc import ClusterRpcProxy

    waiting = list(names)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=2) as proxy:
        while waiting:
            name = waiting[0]
            if running_pid(name) is None:
                raise CliError(f"{name} exited during start-up; see "
                               f"{home() / 'logs' / (name + '.log')}")
            try:
                if getattr(proxy, name).health()["status"] == "ok":
                    waiting.pop(0)
                    continue
            except Exception:  # not consuming yet (UnknownService) or a timeout
                pass
            if time.time() > deadline:
                raise CliError(f"{name} did not answer within {START_TIMEOUT_SECONDS}s")
            time.sleep(0.3)


def cmd_up(args):
    env = dict(os.environ, PINGXUAN_SECRET=secret(create=True))
    logs = home() / "logs"
    logs.mkdir(exist_ok=True)
    started = []
    for name in built_services():
        if running_pid(name):
            print(f"{name}: already running (pid {running_pid(name)})")
            continue
        config = ROOT / "services" / name / "config.yml"
        with open(logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "shared.run_service", "run",
                 f"services.{name}.service:{name.capitalize()}Service",
                 "--config", str(config)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        pid_file(name).write_text(str(process.pid))
        started.append(name)
    wait_healthy(started, time.time() + START_TIMEOUT_SECONDS)
    store = os.environ.get("MONGO_URI") or "embedded (mongomock, in memory)"
    print(f"store: {store}")
    for name in built_services():
        address = http_address(name)
        line = f"{name}: running (pid {running_pid(name)})  metrics http://{address}/metrics"
        if name == "voting":
            line += f"  voting page http://{address}/"
        if name == "console":
            line += f"  console http://{address}/"
        print(line)
    print(f"logs: {logs}")


def cmd_down(args):
    for name in reversed(list(SERVICES)):
        pid = running_pid(name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)  # nameko stops cleanly: in-flight workers finish
        deadline = time.time() + STOP_TIMEOUT_SECONDS
        while time.time() < deadline and running_pid(name):
            time.sleep(0.2)
        if running_pid(name):
            os.kill(pid, signal.SIGKILL)
        pid_file(name).unlink(missing_ok=True)
        print(f"{name}: stopped")


def cmd_status(args):
    for name in built_services():
        pid = running_pid(name)
        print(f"{name}: {'running (pid %d)' % pid if pid else 'stopped'}")


def register(sub):
    sub.add_parser("up", help="start every service in the background").set_defaults(run=cmd_up)
    sub.add_parser("down", help="stop the services").set_defaults(run=cmd_down)
    sub.add_parser("status", help="which services run").set_defaults(run=cmd_status)
