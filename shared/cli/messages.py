"""``pingxuan messages parked|resend``: notifications no retry will send, and sending them again."""
from shared.cli import base
from shared.cli.base import add_json_flag, print_json, print_table


def cmd_parked(args):
    rows = base.call("notification", "parked", args.campaign)
    if args.json:
        print_json(rows)
        return
    print_table(rows, [("message_id", "message id"), ("template", "template"),
                       ("channel", "channel"), ("recipient", "recipient"),
                       ("attempts", "attempts"), ("parked_at", "parked"),
                       ("last_error", "last error")])
    print(f"{len(rows)} parked message(s)" + ("; resend one with: pingxuan messages resend "
                                              "MESSAGE_ID" if rows else ""))


def cmd_resend(args):
    row = base.call("notification", "resend", args.message_id)
    if args.json:
        print_json(row)
        return
    print(f"message {row['message_id']}: {row['status']} after {row['attempts']} attempt(s)"
          + (f"; last error: {row['last_error']}" if row.get("last_error") else ""))


def register(sub):
    messages = sub.add_parser("messages", help="notifications: parked ones, resend")
    actions = messages.add_subparsers(dest="action", required=True)
    parked = actions.add_parser("parked", help="messages no retry will send, with the last error")
    parked.add_argument("--campaign", help="only this campaign's")
    add_json_flag(parked)
    parked.set_defaults(run=cmd_parked)
    resend = actions.add_parser("resend", help="queue a parked message again and try it now")
    resend.add_argument("message_id")
    add_json_flag(resend)
    resend.set_defaults(run=cmd_resend)
