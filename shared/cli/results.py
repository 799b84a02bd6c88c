"""``pingxuan results``, ``publish``, ``finalize``, ``rebuild``: aggregation's side of the CLI."""
from pathlib import Path

from shared.cli import base
from shared.cli.base import CliError, add_json_flag, add_yes_flag, confirm, print_json, waiting


def cmd_results(args):
    """Results (or the publicity list) rendered by an exporter plugin (pingxuan.exporters)."""
    from shared.plugins import EXPORTERS, load_plugin

    if args.json:  # the ranked rows as aggregation returns them (CONTRACT.md)
        print_json(base.call("aggregation", "publicity_list" if args.list else "results",
                             args.campaign_id, *([] if args.list else [args.category])))
        return
    if args.format == "xlsx" and not args.output:
        raise CliError("xlsx is binary: give --output FILE")
    with waiting(f"fetching the results of {args.campaign_id}"):
        report = base.call("aggregation", "report", args.campaign_id, args.category)
        data = load_plugin(EXPORTERS, args.format)(report, selected_only=args.list)
    base.write_out(data, args.output, f"writing {Path(args.output or args.format).name}")
    if args.output:
        print(f"{args.output}: {len(data)} bytes, inputs hash {report['inputs_hash']}")


def cmd_publish(args):
    confirm(args, f"publish the list of {args.campaign_id} for 公示? Its ranking is frozen.")
    reply = base.call("aggregation", "publish", args.campaign_id)
    _print_reply(args, reply, f"{args.campaign_id}: published")


def cmd_finalize(args):
    confirm(args, f"finalize (审定) {args.campaign_id}? Nothing changes the list afterwards.")
    reply = base.call("aggregation", "finalize", args.campaign_id)
    _print_reply(args, reply, f"{args.campaign_id}: finalized")


#: A rebuild reads every vote: a million take tens of seconds, more than any other call's
#: 30 s (the progress line shows that it is moving meanwhile).
REBUILD_TIMEOUT_SECONDS = 900


def cmd_rebuild(args):
    with waiting(f"rebuilding {args.campaign_id}", lambda: rebuild_progress(args.campaign_id)):
        reply = base.call("aggregation", "rebuild", args.campaign_id,
                          timeout=REBUILD_TIMEOUT_SECONDS)
    _print_reply(args, reply, f"{args.campaign_id}: rebuilt")


def rebuild_progress(campaign_id):
    """``(votes read, votes expected)`` of the campaign's running rebuild, else ``None``.

    Asked of ``aggregation.rebuild_progress`` while ``rebuild`` runs: the rebuilding
    instance writes its progress to the store, so whichever instance answers knows it.
    A finished one is an earlier rebuild's (ours is running until its call returns).
    """
    progress = base.call("aggregation", "rebuild_progress", campaign_id)
    if progress["state"] != "running":
        return None
    return progress["votes_read"], progress["votes_expected"]


def _print_reply(args, reply, headline):
    if args.json:
        print_json(reply)
        return
    print(headline)
    for key, value in reply.items():
        if not isinstance(value, (dict, list)):
            print(f"  {key}: {value}")


def register(sub):
    results = sub.add_parser("results", help="results or, with --list, the publicity list")
    results.add_argument("campaign_id")
    results.add_argument("--category")
    results.add_argument("--format", choices=("table", "csv", "xlsx"), default="table")
    results.add_argument("--output", help="write to FILE (needed for xlsx)")
    results.add_argument("--list", action="store_true", help="only the selected (公示名单)")
    add_json_flag(results)
    results.set_defaults(run=cmd_results)
    for name, text, run in (
            ("publish", "publish the list (公示)", cmd_publish),
            ("finalize", "approve it (审定)", cmd_finalize),
            ("rebuild", "recompute results from the services' records and compare", cmd_rebuild)):
        command = sub.add_parser(name, help=text)
        command.add_argument("campaign_id")
        if run is not cmd_rebuild:
            add_yes_flag(command)
        add_json_flag(command)
        command.set_defaults(run=run)
