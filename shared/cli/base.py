"""What every command shares: the run directory, the issuer's key, one RPC as the CLI's admin."""
import json
import os
import sys
import threading
import unicodedata
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path

from shared import auth, signing
from shared import config as cfg
from shared.errors import PingxuanError, typed

DEFAULT_AMQP_URI = cfg.BY_KEY[cfg.AMQP_URI].default
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


def keys_dir():
    path = home() / "keys"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def write_private_key(path):
    """A new private key in ``path``, readable by its owner only (mode 600); its public key."""
    key = signing.generate_private_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return signing.public_key_of(key)


def key_file(name, create):
    """The private key ``keys/<name>.key`` of the run directory (made, mode 600, if asked)."""
    path = keys_dir() / f"{name}.key"
    if not path.exists():
        if not create:
            raise CliError(f"no key {path}: set PINGXUAN_ISSUER_KEY or run `pingxuan up` first")
        write_private_key(path)
    return path.read_text().strip()


def issuer_key(create=False):
    """The token issuer's private key: ``PINGXUAN_ISSUER_KEY``, the file
    ``PINGXUAN_ISSUER_KEY_FILE``, else the one in the run directory.

    Only the CLI (the operator) holds it; services get its public key only.
    """
    value = os.environ.get("PINGXUAN_ISSUER_KEY")
    if value:
        return value.strip()
    path = os.environ.get("PINGXUAN_ISSUER_KEY_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise CliError(f"PINGXUAN_ISSUER_KEY_FILE: cannot read {path}: {exc.strerror}")
    return key_file("issuer", create)


def admin_token():
    """A short-lived admin token the CLI signs for its own calls."""
    return auth.issue_token(issuer_key(), "admin", "pingxuan-cli", ttl=CLI_TOKEN_TTL)[0]


def call(service, method, *args, timeout=RPC_TIMEOUT_SECONDS, **kwargs):
    """One RPC as the CLI's admin; refusals become ``Refused`` with the service's words."""
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {"AMQP_URI": amqp_uri()}
    token = admin_token()
    try:
        with ClusterRpcProxy(config, context_data={auth.CONTEXT_KEY: token},
                             timeout=timeout) as proxy:
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


#: Bytes written between two updates of an export's progress bar.
WRITE_CHUNK = 64 * 1024
#: How often a progress line is redrawn, and asks how far a long call got.
PROGRESS_POLL_SECONDS = 0.5


class NoBar:
    """What a command updates when no progress is shown (output is not a terminal)."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def refresh(self):
        pass


@contextmanager
def progress(how_far=None, **options):
    """A tqdm bar on standard error while the block runs, redrawn twice a second (so that its
    elapsed time moves during a long call); on a terminal only: none when stderr is piped
    or redirected, so a script reading the output sees only the output and its errors.

    ``how_far()``, when given, is asked at each redraw from a thread of its own and answers
    ``(done, total)`` (a bar of votes then) or ``None`` (not known yet: the elapsed time
    only); a failing ``how_far()`` leaves the line as it was, it never stops the call.
    """
    if not sys.stderr.isatty():
        yield NoBar()
        return
    from tqdm import tqdm

    done = threading.Event()
    with tqdm(file=sys.stderr, leave=False, **options) as bar:
        def tick():
            while not done.wait(PROGRESS_POLL_SECONDS):
                try:
                    known = how_far() if how_far else None
                except Exception:
                    known = None
                if known is not None:
                    count, total = known
                    bar.bar_format = ("{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} "
                                      "{unit} [{elapsed}, {rate_fmt}]")
                    bar.unit = "votes"
                    bar.total = max(total, count)
                    bar.n = count
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield bar
        finally:
            done.set()
            ticker.join()


@contextmanager
def waiting(label, how_far=None):
    """A progress line while a long call runs (see ``progress``): its elapsed time, and how
    far it got when ``how_far`` can say."""
    with progress(how_far, desc=label, bar_format="{desc}: {elapsed}") as bar:
        yield bar


class Stages:
    """The steps of an operation whose rows go to the service in one call: the call replaces
    a whole list (the campaign's units, a panel's judges), so it cannot be sent in chunks,
    and the bar counts the steps instead, naming the one under way."""

    def __init__(self, bar):
        self.bar = bar

    @contextmanager
    def step(self, words):
        self.bar.set_postfix_str(words)
        yield
        self.bar.update(1)


@contextmanager
def stages(label, count):
    """``Stages`` of an operation of ``count`` steps, shown as in ``progress``."""
    with progress(desc=label, total=count, unit="step",
                  bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed}]{postfix}") as bar:
        yield Stages(bar)


def write_out(data, output=None, label="writing"):
    """``data`` (bytes) to the file ``output``, or to standard output, with a byte count
    as it is written (on a terminal, and not when the data goes to that same terminal)."""
    if not output:
        sys.stdout.flush()  # what was printed as text comes first
    stream = open(output, "wb") if output else sys.stdout.buffer
    try:
        shown = output or not sys.stdout.isatty()
        with progress(desc=label, total=len(data), unit="B", unit_scale=True,
                      unit_divisor=1024) if shown else nullcontext(NoBar()) as bar:
            for start in range(0, len(data), WRITE_CHUNK):
                piece = data[start:start + WRITE_CHUNK]
                stream.write(piece)
                bar.update(len(piece))
    finally:
        if output:
            stream.close()
        else:
            stream.flush()
