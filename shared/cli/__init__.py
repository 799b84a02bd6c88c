"""``pingxuan``: the admin CLI. It talks to the services over RabbitMQ, never to a store.

Each area's commands live in a module of this package with a ``register(subparsers)``
function; ``COMMAND_MODULES`` lists them in the order ``pingxuan --help`` shows them.
"""
import argparse
import importlib
import sys
import warnings

# Before anything imports nameko (and with it eventlet, which warns on import):
# the CLI's output is its answers.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from shared.cli.base import CliError  # noqa: E402
from shared.cli.system import SERVICES  # noqa: E402,F401  (tests and tools import it here)

COMMAND_MODULES = (
    "shared.cli.system",
    "shared.cli.campaigns",
    "shared.cli.tokens",
    "shared.cli.nominations",
    "shared.cli.panel",
    "shared.cli.results",
    "shared.cli.messages",
    "shared.cli.events",
    "shared.cli.inputs",
    "shared.cli.objections",
    "shared.cli.votes",
)


def parser():
    top = argparse.ArgumentParser(prog="pingxuan", description="評選: run and administer the system")
    top.add_argument("--version", action="version", version=f"pingxuan {version()}")
    sub = top.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return top


def version():
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("pingxuan")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "unknown"


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
        return exc.exit_status
    return 0
