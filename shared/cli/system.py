"""``pingxuan up`` / ``down`` / ``status``: the services as background processes of this machine."""
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from shared import config as cfg
from shared import signing
from shared.cli.base import ROOT, CliError, amqp_uri, home, issuer_key, key_file

#: Every service, in start order, with the env var and default of its HTTP address.
SERVICES = {name: (cfg.env_name(cfg.WEB_SERVER_ADDRESS, name), cfg.HTTP_ADDRESSES[name])
            for name in cfg.SERVICE_NAMES}
CLOCK_START_ENV = cfg.env_name(cfg.CLOCK_START, "")
CLOCK_ANCHOR_ENV = cfg.env_name(cfg.CLOCK_ANCHOR, "")
#: Never handed to a service: the issuer's private key stays with the CLI.
ISSUER_KEY_ENV = cfg.BY_ENV["PINGXUAN_ISSUER_KEY"].env
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
    """The pid of our ``name`` service, or None (a stale pid file is removed).

    A pid file can outlive its process and the pid be reused by another program: the
    process counts as ours only if its command line runs this service.
    """
    path = pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text())
    if not is_our_service(pid, name):
        path.unlink(missing_ok=True)
        return None
    return pid


def is_our_service(pid, name):
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # no /proc (macOS): ask ps
        done = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True)
        command_line = done.stdout.split()
    words = [word.decode(errors="replace") for word in command_line]
    return "shared.run_service" in words and any(
        word.startswith(f"services.{name}.service:") for word in words)


def health(name, timeout=2.0):
    """What the service's ``/health`` answers, or why it did not."""
    import requests

    try:
        reply = requests.get(f"http://{http_address(name)}/health", timeout=timeout)
        reply.raise_for_status()
        return reply.json()
    except requests.ConnectionError:
        error = "not reachable"
    except requests.Timeout:
        error = f"no answer within {timeout:g}s"
    except requests.HTTPError as exc:
        error = f"HTTP {exc.response.status_code}"
    except (requests.RequestException, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {"service": name, "status": "down", "error": error}


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


def clock_anchor(environ):
    """The real instant the rehearsal clock's start corresponds to, written once into the home.

    Every service started now or later (a restart, a second instance) is given the
    same anchor, so all agree on the rehearsal time; a new ``PINGXUAN_CLOCK_START``
    starts a new rehearsal, with a new anchor.
    """
    start = environ.get(CLOCK_START_ENV) or ""
    if not start or environ.get(CLOCK_ANCHOR_ENV):
        return environ.get(CLOCK_ANCHOR_ENV) or ""
    path = home() / "clock-anchor"
    if path.exists():
        saved_start, _, anchor = path.read_text().strip().partition(" ")
        if saved_start == start and anchor:
            return anchor
    anchor = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    path.write_text(f"{start} {anchor}\n")
    return anchor


def service_environments(names, environ):
    """Each service's environment: the issuer's public key(s), every service's public key, and
    its own private key only (created, mode 600, in ``$PINGXUAN_HOME/keys`` when absent)."""
    issuer_env = cfg.env_name(cfg.TOKEN_PUBLIC_KEYS, "")
    issuer_public = environ.get(issuer_env) or signing.public_key_of(issuer_key(create=True))
    own = {name: key_file(name, create=True) for name in names}
    peers = ",".join(f"{name}={signing.public_key_of(key)}" for name, key in own.items())
    shared = {key: value for key, value in environ.items()
              if key not in (ISSUER_KEY_ENV, "PINGXUAN_SECRET")
              and not key.endswith("_SERVICE_KEY")}
    shared.update({issuer_env: issuer_public, cfg.env_name(cfg.SERVICE_PUBLIC_KEYS, ""): peers})
    anchor = clock_anchor(environ)
    if anchor:
        shared[CLOCK_ANCHOR_ENV] = anchor
    return {name: dict(shared, **{cfg.env_name(cfg.SERVICE_KEY, name): own[name]})
            for name in names}


def cmd_up(args):
    environ = dict(os.environ)
    # Trying the system: without MONGO_URI, ask for the embedded store explicitly (the
    # services refuse to start on an unset URI, so that production never runs in memory).
    if not environ.get(cfg.env_name(cfg.MONGO_URI, "")):
        environ[cfg.env_name(cfg.MONGO_URI, "")] = cfg.EMBEDDED_MONGO_URI
    environments = service_environments(list(SERVICES), environ)
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
                cwd=ROOT, env=environments[name], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        pid_file(name).write_text(str(process.pid))
        started.append(name)
    wait_healthy(started, time.time() + START_TIMEOUT_SECONDS)
    store = os.environ.get("MONGO_URI") or "embedded (mongomock, in memory: lost on `pingxuan down`)"
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


class ServicesDown(CliError):
    """``status`` found a service that does not answer its ``/health``."""

    exit_status = 1


def cmd_status(args):
    """Each service's ``/health``; exit 1 when one is not answering ok."""
    down = []
    for name in built_services():
        pid = running_pid(name)
        answer = health(name)
        ok = answer.get("status") == "ok"
        if not ok:
            down.append(name)
        state = "ok" if ok else f"DOWN ({answer.get('error') or answer.get('status')})"
        where = f"pid {pid}" if pid else "not started here"
        print(f"{name}: {state}  http://{http_address(name)}/health  ({where})")
    if down:
        raise ServicesDown(f"not answering: {', '.join(down)}")


def register(sub):
    sub.add_parser("up", help="start every service in the background").set_defaults(run=cmd_up)
    sub.add_parser("down", help="stop the services").set_defaults(run=cmd_down)
    sub.add_parser("status", help="which services run").set_defaults(run=cmd_status)
