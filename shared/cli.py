"""``pingxuan``: the admin CLI. It talks to the services over RabbitMQ, never to a store."""
import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

# Before anything imports nameko (and with it eventlet, which warns on import):
# the CLI's output is its answers.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from shared import auth, events  # noqa: E402
from shared.campaign import CampaignFileError, load_campaign_file  # noqa: E402
from shared.errors import PingxuanError, typed  # noqa: E402

#: Every service, in start order, with the env var and default of its HTTP address.
SERVICES = {
    "nomination": ("NOMINATION_HTTP", "127.0.0.1:8101"),
    "voting": ("VOTING_HTTP", "127.0.0.1:8100"),
    "scoring": ("SCORING_HTTP", "127.0.0.1:8102"),
    "aggregation": ("AGGREGATION_HTTP", "127.0.0.1:8103"),
    "notification": ("NOTIFICATION_HTTP", "127.0.0.1:8104"),
}
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
RPC_TIMEOUT_SECONDS = 30
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20
CLI_TOKEN_TTL = timedelta(minutes=5)
ROOT = Path(__file__).resolve().parent.parent


class CliError(Exception):
    """A failure to report in one line and exit 2."""


def home():
    path = Path(os.environ.get("PINGXUAN_HOME") or Path.home() / ".pingxuan")
    path.mkdir(parents=True, exist_ok=True)
    return path


def amqp_uri():
    return os.environ.get("AMQP_URI") or DEFAULT_AMQP_URI


def secret(create=False):
    """The token secret: ``PINGXUAN_SECRET``, else the one ``pingxuan up`` keeps in its home."""
    value = os.environ.get("PINGXUAN_SECRET")
    if value:
        return value
    path = home() / "secret"
    if not path.exists():
        if not create:
            raise CliError(f"no secret: set PINGXUAN_SECRET or run `pingxuan up` first ({path})")
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def admin_token():
    """A short-lived admin token the CLI signs for its own calls."""
    return auth.issue_token(secret(), "admin", "pingxuan-cli", ttl=CLI_TOKEN_TTL)[0]


def call(service, method, *args, **kwargs):
    """One RPC as the CLI's admin; refusals become ``CliError`` with the service's words."""
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {"AMQP_URI": amqp_uri()}
    token = admin_token()
    try:
        with ClusterRpcProxy(config, context_data={auth.CONTEXT_KEY: token},
                             timeout=RPC_TIMEOUT_SECONDS) as proxy:
            return getattr(getattr(proxy, service), method)(*args, **kwargs)
    except PingxuanError as exc:
        raise CliError(f"{exc.exc_type}: {exc.value}")
    except Exception as exc:  # RemoteError, timeouts, a broker that is down
        error = typed(exc) if hasattr(exc, "exc_type") else exc
        if isinstance(error, PingxuanError):
            raise CliError(f"{error.exc_type}: {error.value}")
        raise CliError(f"{service}.{method} failed: {type(exc).__name__}: {exc}")


# --- up / down ---------------------------------------------------------------------------

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


# --- campaigns, tokens, reports ----------------------------------------------------------

def cmd_campaign_load(args):
    try:
        document = load_campaign_file(args.file)
    except CampaignFileError as exc:
        raise CliError(f"campaign file refused:\n{exc}")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}")
    result = call("nomination", "load_campaign", document)
    verb = "registered" if result["created"] else "updated"
    print(f"campaign {result['id']} {verb} (revision {result['revision']})")


def cmd_token_issue(args):
    try:
        token, token_id = auth.issue_token(secret(create=True), args.role, args.name, args.unit,
                                           ttl=timedelta(days=args.ttl_days))
    except ValueError as exc:
        raise CliError(str(exc))
    print(f"token id {token_id}: role {args.role}, name {args.name}"
          + (f", unit {args.unit}" if args.unit else "") + f", valid {args.ttl_days} days")
    print(token)


def cmd_token_revoke(args):
    token_id = args.token_id
    if args.token:
        try:
            token_id = auth.token_id_of(args.token)
        except ValueError as exc:
            raise CliError(str(exc))
    if not token_id:
        raise CliError("give the token or --id TOKEN_ID")
    publish_revocation(token_id)
    print(f"token {token_id} revoked")


def publish_revocation(token_id):
    """Announce a revocation; every service's queue is declared first so none misses it."""
    from kombu import Connection, Queue
    from nameko.standalone.events import event_dispatcher, get_event_exchange

    config = {"AMQP_URI": amqp_uri()}
    exchange = get_event_exchange(events.ADMIN, config)
    with Connection(amqp_uri()) as connection:
        channel = connection.default_channel
        exchange(channel).declare()
        for name in SERVICES:
            # The queue nameko's SERVICE_POOL handler ``on_token_revoked`` of ``name`` consumes.
            Queue(f"evt-{events.ADMIN}-{events.TOKEN_REVOKED}--{name}.on_token_revoked",
                  exchange=exchange, routing_key=events.TOKEN_REVOKED, durable=True)(
                channel).declare()
    payload = events.make_event(events.TOKEN_REVOKED, None, token_id=token_id)
    event_dispatcher(config)(events.ADMIN, events.TOKEN_REVOKED, payload)


def cmd_forfeits(args):
    report = call("nomination", "forfeits", args.campaign_id)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    state = "passed" if report["deadline_passed"] else "not yet passed"
    print(f"campaign {report['campaign_id']}: deadline {report['deadline']} "
          f"({report['timezone']}), {state}")
    units = report["forfeited_units"]
    print(f"units that sent nothing ({len(units)}):" if units else "every listed unit has sent")
    for unit in units:
        print(f"  {unit}")


def cmd_audit(args):
    for row in call("nomination", "audit_trail", args.campaign_id, args.entity):
        print(json.dumps(row, ensure_ascii=False, default=str))


def cmd_results(args):
    """Results (or the publicity list) rendered by an exporter plugin (pingxuan.exporters)."""
    from shared.plugins import EXPORTERS, load_plugin

    if args.format == "xlsx" and not args.output:
        raise CliError("xlsx is binary: give --output FILE")
    report = call("aggregation", "report", args.campaign_id, args.category)
    data = load_plugin(EXPORTERS, args.format)(report, selected_only=args.list)
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"{args.output}: {len(data)} bytes, inputs hash {report['inputs_hash']}")
    else:
        sys.stdout.buffer.write(data)


def cmd_aggregation(args):
    """``publish`` / ``finalize`` / ``rebuild`` CAMPAIGN_ID: the aggregation call's reply as JSON."""
    print(json.dumps(call("aggregation", args.command, args.campaign_id), ensure_ascii=False,
                     indent=2))


def parser():
    top = argparse.ArgumentParser(prog="pingxuan", description="評選: run and administer the system")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start every service in the background").set_defaults(run=cmd_up)
    sub.add_parser("down", help="stop the services").set_defaults(run=cmd_down)
    sub.add_parser("status", help="which services run").set_defaults(run=cmd_status)

    campaign = sub.add_parser("campaign", help="campaign definitions").add_subparsers(
        dest="action", required=True)
    load = campaign.add_parser("load", help="register or update a campaign YAML file")
    load.add_argument("file")
    load.set_defaults(run=cmd_campaign_load)

    token = sub.add_parser("token", help="tokens").add_subparsers(dest="action", required=True)
    issue = token.add_parser("issue", help="issue a token (printed alone on the last line)")
    issue.add_argument("--role", required=True, choices=auth.ROLES)
    issue.add_argument("--name", required=True)
    issue.add_argument("--unit")
    issue.add_argument("--ttl-days", type=int, default=auth.DEFAULT_TTL_DAYS)
    issue.set_defaults(run=cmd_token_issue)
    revoke = token.add_parser("revoke", help="revoke a token everywhere")
    revoke.add_argument("token", nargs="?")
    revoke.add_argument("--id", dest="token_id")
    revoke.set_defaults(run=cmd_token_revoke)

    forfeits = sub.add_parser("forfeits", help="units that sent no nomination (棄權)")
    forfeits.add_argument("campaign_id")
    forfeits.add_argument("--json", action="store_true")
    forfeits.set_defaults(run=cmd_forfeits)

    audit = sub.add_parser("audit", help="the audit trail of a campaign (JSON lines)")
    audit.add_argument("campaign_id")
    audit.add_argument("--entity")
    audit.set_defaults(run=cmd_audit)

    results = sub.add_parser("results", help="results or, with --list, the publicity list")
    results.add_argument("campaign_id")
    results.add_argument("--category")
    results.add_argument("--format", choices=("table", "csv", "xlsx"), default="table")
    results.add_argument("--output", help="write to FILE (needed for xlsx)")
    results.add_argument("--list", action="store_true", help="only the selected (公示名单)")
    results.set_defaults(run=cmd_results)
    for name, text in (("publish", "publish the list (公示)"), ("finalize", "approve it (审定)"),
                       ("rebuild", "recompute results from the services' records and compare")):
        command = sub.add_parser(name, help=text)
        command.add_argument("campaign_id")
        command.set_defaults(run=cmd_aggregation)
    return top


def quiet_libraries():
    """Keep the CLI's output to its answers: no AMQP channel chatter."""
    import logging

    logging.getLogger("amqp").setLevel(logging.ERROR)
    logging.getLogger("kombu").setLevel(logging.ERROR)


def main(argv=None):
    quiet_libraries()
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except CliError as exc:
        print(f"pingxuan: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
