"""``pingxuan panel assign|progress|links|close``: the 集中评审 panels, judges from an Excel or
CSV list, their personal links sent again or renewed."""
from pathlib import Path

from shared.cli import base
from shared.cli.base import add_json_flag, add_yes_flag, confirm, print_json, print_table
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


#: What happened to each judge's message, as the text output says it.
LINK_OUTCOMES = {"no_contact": "no mobile or e-mail: hand the link over yourself",
                 "sent_moments_ago": "not sent again: a message went moments ago"}


def cmd_links(args):
    judges = args.judge or None
    if args.renew:
        whom = ", ".join(judges) if judges else "every judge of the panel"
        confirm(args, f"give {whom} ({args.campaign_id}/{args.category}) a new link? "
                      "the old link stops working at once")
    reply = base.call("scoring", "send_links", args.campaign_id, args.category, judges,
                      renew=args.renew)
    if args.json:
        print_json(reply)
        return
    if args.renew:
        print(f"new links for: {', '.join(reply['renewed']) or 'nobody (renewed moments ago)'}")
    print_table([dict(judge, message="queued" if judge["queued"] else
                      LINK_OUTCOMES.get(judge["not_queued_reason"], judge["not_queued_reason"]),
                      last=judge["notice"]["state"])
                 for judge in reply["judges"]],
                [("judge_id", "judge id"), ("name", "name"), ("message", "message"),
                 ("last", "last notice"), ("link", "link")])
    print("the links are the judges' credentials: do not share them anywhere else")


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
    links = actions.add_parser(
        "links", help="send the judges' links again; --renew replaces them first")
    links.add_argument("campaign_id")
    links.add_argument("category")
    links.add_argument("--judge", action="append", metavar="JUDGE_ID",
                       help="only this judge (repeatable); every judge of the panel by default")
    links.add_argument("--renew", action="store_true",
                       help="give each a new link first: the old link stops working at once")
    add_yes_flag(links)
    add_json_flag(links)
    links.set_defaults(run=cmd_links)
    close = actions.add_parser("close", help="no more scores: the panel score becomes final")
    close.add_argument("campaign_id")
    close.add_argument("category")
    add_json_flag(close)
    close.set_defaults(run=cmd_close)
