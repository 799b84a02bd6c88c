"""``pingxuan panel assign|progress|close``: the 集中评审 panels, judges from an Excel or CSV list."""
from pathlib import Path

from shared.cli import base
from shared.cli.base import add_json_flag, print_json, print_table
from shared.cli.tables import read_rows

JUDGE_COLUMNS = ("judge_id", "name", "unit")


def cmd_assign(args):
    with base.stages(f"assigning the panel of {args.category}", 2) as steps:
        with steps.step(f"reading {Path(args.judges).name}"):
            judges = read_rows(args.judges, JUDGE_COLUMNS)
        with steps.step(f"sending {len(judges)} judges"):
            reply = base.call("scoring", "assign_panel", args.campaign_id, args.category, judges)
    if args.json:
        print_json(reply)
        return
    print(f"panel {args.campaign_id}/{args.category}: {len(judges)} judge(s) from {args.judges}")
    print_table(judges, [("judge_id", "judge id"), ("name", "name"), ("unit", "unit")])
    print("issue each judge a token: pingxuan token issue --role judge --name JUDGE_ID "
          "--unit UNIT")


def cmd_progress(args):
    report = base.call("scoring", "progress", args.campaign_id, args.category)
    if args.json:
        print_json(report)
        return
    for panel in report["panels"]:
        counts = panel["counts"]
        state = "closed" if panel["closed"] else "open"
        print(f"{panel['category']} ({state}): {counts['scored']} of {counts['expected']} "
              f"scores in, {counts['recused']} recusal(s)")
        print_table([dict(judge, missing=len(judge["missing"]), recused=len(judge["recused"]))
                     for judge in panel["judges"]],
                    [("judge_id", "judge id"), ("name", "name"), ("unit", "unit"),
                     ("scored", "scored"), ("missing", "missing"), ("recused", "recused")])
    if not report["panels"]:
        print("no panel assigned yet")


def cmd_close(args):
    reply = base.call("scoring", "close_panel", args.campaign_id, args.category)
    if args.json:
        print_json(reply)
        return
    print(f"panel {args.campaign_id}/{args.category} closed: the panel scores are final")


def register(sub):
    panel = sub.add_parser("panel", help="评审 panels: assign judges, progress, close")
    actions = panel.add_subparsers(dest="action", required=True)
    assign = actions.add_parser("assign", help="assign the judges listed in a CSV or XLSX file")
    assign.add_argument("campaign_id")
    assign.add_argument("category")
    assign.add_argument("--judges", required=True, metavar="FILE",
                        help="CSV or XLSX with the columns judge_id, name, unit")
    add_json_flag(assign)
    assign.set_defaults(run=cmd_assign)
    progress = actions.add_parser("progress", help="who has not scored whom")
    progress.add_argument("campaign_id")
    progress.add_argument("--category")
    add_json_flag(progress)
    progress.set_defaults(run=cmd_progress)
    close = actions.add_parser("close", help="no more scores: the panel score becomes final")
    close.add_argument("campaign_id")
    close.add_argument("category")
    add_json_flag(close)
    close.set_defaults(run=cmd_close)
