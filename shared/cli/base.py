"""What every command shares: the run directory, the secret, one RPC as the CLI's admin."""
import json
import os
import secrets
import sys
import threading
import unicodedata
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from shared import auth
from shared.errors import PingxuanError, typed

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
RPC_TIMEOUT_SECONDS = 30
CLI_TOKEN_TTL = timedelta(minutes=5)
ROOT = Path(__file__).resolve().parents[2]

#: Exit statuses of CONTRACT.md's CLI section.
EXIT_DONE, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure to report in one line; ``exit_status`` says which kind (CONTRACT.md)."""

    exit_status = EXIT_USAGE


class Refused(CliError):
    """A service refused the call: its ``exc_type`` and message, nothing changed."""

    exit_status = EXIT_REFUSED


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
    """One RPC as the CLI's admin; refusals become ``Refused`` with the service's words."""
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {"AMQP_URI": amqp_uri()}
    token = admin_token()
    try:
        with ClusterRpcProxy(config, context_data={auth.CONTEXT_KEY: token},
                             timeout=RPC_TIMEOUT_SECONDS) as proxy:
            return getattr(getattr(proxy, service), method)(*args, **kwargs)
    except PingxuanError as exc:
        raise Refused(f"{exc.exc_type}: {exc.value}")
    except Exception as exc:  # RemoteError, timeouts, a broker that is down
        error = typed(exc) if hasattr(exc, "exc_type") else exc
        if isinstance(error, PingxuanError):
            raise Refused(f"{error.exc_type}: {error.value}")
        raise CliError(f"{service}.{method} failed: {type(exc).__name__}: {exc}")


def print_json(data):
    """``--json``: the rows or record the service returned, as JSON on standard output."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def add_json_flag(parser):
    parser.add_argument("--json", action="store_true",
                        help="print the service's reply as JSON instead of text")


def add_yes_flag(parser):
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def confirm(args, question):
    """Ask before a step that cannot be taken back, unless ``--yes``; no answer means no."""
    if getattr(args, "yes", False):
        return
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower() if sys.stdin else ""
    if answer not in ("y", "yes"):
        raise CliError("not confirmed: nothing was changed (answer y, or pass --yes)")


def display_width(text):
    """Columns a string takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def print_table(rows, columns):
    """Rows (dicts) as aligned text columns; ``columns`` is ``[(key, heading), ...]``."""
    cells = [[heading for _, heading in columns]]
    cells += [["" if row.get(key) is None else str(row.get(key)) for key, _ in columns]
              for row in rows]
    widths = [max(display_width(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print("  ".join(value + " " * (width - display_width(value))
                        for value, width in zip(line, widths)).rstrip())


@contextmanager
def waiting(label):
    """A progress line while a long call runs, on a terminal only (none when output is piped)."""
    if not sys.stderr.isatty():
        yield
        return
    from tqdm import tqdm

    done = threading.Event()
    with tqdm(desc=label, bar_format="{desc}: {elapsed}", file=sys.stderr, leave=False) as bar:
        def tick():
            while not done.wait(0.5):
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield bar
        finally:
            done.set()
            ticker.join()
