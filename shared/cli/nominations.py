"""``pingxuan nominations …`` and ``disqualify``: reading and deciding on the 推薦表."""
from shared.cli import base
from shared.cli.base import add_json_flag, add_yes_flag, confirm, print_json, print_table

LIST_COLUMNS = [("id", "id"), ("category", "category"), ("org_type", "org type"),
                ("nominee_name", "nominee"), ("unit", "nominating unit"), ("status", "status"),
                ("submitted_at", "submitted")]

#: The 推薦表 as the paper form reads, field by field (label, key path).
FORM = [
    ("推荐对象 nominee", "nominee_name"), ("所在单位 nominee's unit", "nominee_unit"),
    ("类别 category", "category"), ("组织类型 org type", "org_type"),
    ("党内职务 party post", "party_post"), ("单位电话 unit phone", "unit_phone"),
    ("传真 fax", "fax"), ("联系人 contact person", "contact_person"),
    ("手机号码 mobile", "mobile"), ("电子邮箱 e-mail", "email"),
    ("推荐单位 nominating unit", "unit"), ("状态 status", "status"),
    ("报送时间 submitted", "submitted_at"),
]
OPINIONS = [("推荐意见 the nominating unit's opinion", "recommendation"),
            ("评审委员会意见 the review committee's opinion", "review"),
            ("创学领导小组意见 the leadership group's opinion", "leadership_opinion")]


def cmd_list(args):
    filters = {key: value for key, value in (("category", args.category),
                                             ("status", args.status), ("unit", args.unit),
                                             ("org_type", args.org_type)) if value}
    rows = base.call("nomination", "list", args.campaign_id, **filters)
    if args.json:
        print_json(rows)
        return
    print_table(rows, LIST_COLUMNS)
    print(f"{len(rows)} nomination(s)")


def cmd_show(args):
    record = base.call("nomination", "get", args.nomination_id)
    if args.json:
        print_json(record)
        return
    print(f"推荐表 {record['id']}  (campaign {record['campaign_id']})")
    for label, key in FORM:
        if record.get(key) not in (None, ""):
            print(f"  {label}: {record[key]}")
    print(f"  事迹简介 deeds summary:\n    {record.get('deeds_summary', '')}")
    if record.get("materials"):
        print(f"  综合材料 materials ({len(record['materials'])} characters):\n"
              f"    {record['materials']}")
    for attachment in record.get("attachments") or []:
        print(f"  附件 attachment: {attachment.get('name')} {attachment.get('url') or ''}".rstrip())
    for label, key in OPINIONS:
        opinion = record.get(key)
        if not opinion:
            print(f"  {label}: —")
            continue
        signer = opinion.get("signed_by") or opinion.get("by") or ""
        sealed = "  (盖章 sealed)" if opinion.get("sealed") else ""
        decision = f"[{opinion['decision']}] " if opinion.get("decision") else ""
        print(f"  {label}: {decision}{opinion.get('opinion', '')}  — {signer} "
              f"{opinion.get('date') or ''}{sealed}".rstrip())
    for key in ("withdrawal", "disqualification"):
        if record.get(key):
            print(f"  {key}: {record[key].get('reason')} ({record[key].get('at')})")


def cmd_review(args):
    record = base.call("nomination", "review", args.nomination_id, args.decision, args.opinion)
    if args.json:
        print_json(record)
        return
    print(f"nomination {record['id']}: {record['status']} ({record['nominee_name']})")


def cmd_opinion(args):
    record = base.call("nomination", "record_leadership_opinion", args.nomination_id,
                       args.opinion)
    if args.json:
        print_json(record)
        return
    print(f"nomination {record['id']}: the leadership group's opinion is recorded")


def cmd_disqualify(args):
    confirm(args, f"disqualify candidate {args.nomination_id}? The next candidate moves up.")
    record = base.call("nomination", "disqualify", args.nomination_id, args.reason)
    if args.json:
        print_json(record)
        return
    print(f"nomination {record['id']}: {record['status']} ({record['nominee_name']})")


def register(sub):
    nominations = sub.add_parser("nominations", help="推荐表: list, show, review, opinion")
    actions = nominations.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the nominations of a campaign")
    listing.add_argument("campaign_id")
    listing.add_argument("--category")
    listing.add_argument("--status")
    listing.add_argument("--unit")
    listing.add_argument("--org-type")
    add_json_flag(listing)
    listing.set_defaults(run=cmd_list)
    show = actions.add_parser("show", help="one 推荐表, every field and the three opinions")
    show.add_argument("nomination_id")
    add_json_flag(show)
    show.set_defaults(run=cmd_show)
    review = actions.add_parser("review", help="初步审核: accept puts it on the ballot")
    review.add_argument("nomination_id")
    review.add_argument("decision", choices=("accept", "reject"))
    review.add_argument("--opinion", required=True, help="the review committee's opinion")
    add_json_flag(review)
    review.set_defaults(run=cmd_review)
    opinion = actions.add_parser("opinion", help="the leadership group's opinion (创学领导小组意见)")
    opinion.add_argument("nomination_id")
    opinion.add_argument("--opinion", required=True)
    add_json_flag(opinion)
    opinion.set_defaults(run=cmd_opinion)

    disqualify = sub.add_parser("disqualify", help="disqualify a candidate after a verified objection")
    disqualify.add_argument("nomination_id")
    disqualify.add_argument("--reason", required=True)
    add_yes_flag(disqualify)
    add_json_flag(disqualify)
    disqualify.set_defaults(run=cmd_disqualify)
