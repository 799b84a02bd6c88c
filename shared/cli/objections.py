"""``pingxuan objections list|lodge|resolve``: objections (異議) during 公示, through aggregation."""
from shared.cli import base

STATUS_ZH = {"received": "待处理", "upheld": "成立", "rejected": "不成立"}


def objection_line(row):
    """One objection in one line: receipt, status, candidate, who (admins only), when."""
    objector = row.get("objector") or {}
    who = objector.get("name") or ""
    if objector.get("mobile"):
        who += f" {objector['mobile']}"
    text = (f"{row['objection_id']}  {STATUS_ZH.get(row['status'], row['status'])}  "
            f"{row['candidate_id']} {row.get('nominee_name') or ''}  revision "
            f"{row.get('revision')}  {row.get('received_at')}")
    if who:
        text += f"  {who.strip()}"
    if row.get("reason"):
        text += f"  理由：{row['reason']}"
    return text


def cmd_list(args):
    rows = base.call("aggregation", "objections", args.campaign_id, args.status)
    if args.json:
        base.print_json(rows)
        return
    for row in rows:
        print(objection_line(row))
        print(f"    异议内容：{row['grounds']}")
    print(f"{len(rows)} objection(s)")


def cmd_lodge(args):
    reply = base.call("aggregation", "lodge_objection", {
        "campaign_id": args.campaign_id, "candidate_id": args.candidate_id,
        "objector": {"name": args.name, "mobile": args.mobile}, "grounds": args.grounds})
    if args.json:
        base.print_json(reply)
        return
    period = (f", objections to this candidate taken until {reply['period_last_day']} (inclusive)"
              if reply.get("period_last_day") else "")
    print(f"objection {reply['objection_id']} {reply['status']}: candidate "
          f"{reply['candidate_id']} {reply.get('nominee_name') or ''}{period}")


def cmd_resolve(args):
    reply = base.call("aggregation", "resolve_objection", args.objection_id, args.verdict,
                      args.reason)
    if args.json:
        base.print_json(reply)
        return
    consequence = ("the candidate is disqualified and the next one moves up in a new revision"
                   if reply["status"] == "upheld" else "the list does not change")
    print(f"objection {reply['objection_id']} {reply['status']}: {consequence}; the objector "
          "is told by SMS")


def register(sub):
    objections = sub.add_parser("objections", help="objections during 公示 (异议)")
    actions = objections.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every objection of a campaign, with the objector")
    listing.add_argument("campaign_id")
    listing.add_argument("--status", choices=("received", "upheld", "rejected"))
    listing.set_defaults(run=cmd_list)
    lodge = actions.add_parser("lodge", help="an objection received by letter, visit or call")
    lodge.add_argument("campaign_id")
    lodge.add_argument("candidate_id")
    lodge.add_argument("--name", required=True, help="the objector's real name")
    lodge.add_argument("--mobile", required=True, help="the objector's mainland mobile")
    lodge.add_argument("--grounds", required=True, help="at most 2,000 characters")
    lodge.set_defaults(run=cmd_lodge)
    resolve = actions.add_parser("resolve", help="the verdict: upheld or rejected, with a reason")
    resolve.add_argument("objection_id")
    resolve.add_argument("verdict", choices=("upheld", "rejected"))
    resolve.add_argument("--reason", required=True)
    resolve.set_defaults(run=cmd_resolve)
    for command in (listing, lodge, resolve):
        command.add_argument("--json", action="store_true", help="the service's reply as JSON")
