"""``pingxuan results``, ``publish``, ``finalize``, ``rebuild``: aggregation's side of the CLI."""
import json
import sys
from pathlib import Path

from shared.cli import base
from shared.cli.base import CliError


def cmd_results(args):
    """Results (or the publicity list) rendered by an exporter plugin (pingxuan.exporters)."""
    from shared.plugins import EXPORTERS, load_plugin

    if args.format == "xlsx" and not args.output:
        raise CliError("xlsx is binary: give --output FILE")
    report = base.call("aggregation", "report", args.campaign_id, args.category)
    data = load_plugin(EXPORTERS, args.format)(report, selected_only=args.list)
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"{args.output}: {len(data)} bytes, inputs hash {report['inputs_hash']}")
    else:
        sys.stdout.buffer.write(data)


def cmd_aggregation(args):
    """``publish`` / ``finalize`` / ``rebuild`` CAMPAIGN_ID: the aggregation call's reply as JSON."""
    print(json.dumps(base.call("aggregation", args.command, args.campaign_id), ensure_ascii=False,
                     indent=2))


def register(sub):
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
