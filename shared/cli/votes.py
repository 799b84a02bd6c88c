"""``pingxuan votes suspicious|void|restore|ledger``: 票數清零, voting's side of the CLI.

``--vote-ids FILE`` holds one vote id per line; blank lines and lines starting
with ``#`` are skipped, repeats count once, ``-`` reads standard input. ``void``
asks for confirmation unless ``--yes``; an answer other than ``y``/``yes`` (or no
answer: no terminal) voids nothing and exits 2.
"""
import sys

from shared.cli import base
from shared.cli.base import CliError

#: Rules whose finding's candidate/network/from/to select exactly the votes it counts.
EXACT_SELECTOR_RULES = ("network_burst", "candidate_hour_spike")


def read_vote_ids(path):
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8-sig").read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}")
    ids = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line not in ids:
            ids.append(line)
    if not ids:
        raise CliError(f"{path} lists no vote id (one per line)")
    return ids


def selector_of(args):
    ranges = {"candidate_id": args.candidate, "network": args.network, "from": args.start,
              "to": args.end}
    ranges = {key: value for key, value in ranges.items() if value is not None}
    if args.vote_ids and ranges:
        raise CliError("give --vote-ids or any of --candidate --network --from --to, not both")
    if args.vote_ids:
        return {"vote_ids": read_vote_ids(args.vote_ids)}
    if not ranges:
        raise CliError("say which votes: --vote-ids FILE or any of --candidate --network "
                       "--from --to")
    return ranges


def describe(selector):
    if "vote_ids" in selector:
        return f"{len(selector['vote_ids'])} listed vote ids"
    return ", ".join(f"{key} {value}" for key, value in selector.items())


def confirmed(question):
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_suspicious(args):
    findings = base.call("voting", "suspicious", args.campaign_id)
    if args.json:
        return base.print_json(findings)
    if not findings:
        print(f"nothing suspicious in campaign {args.campaign_id}")
        return
    for finding in findings:
        print(f"[{finding['rule']}] {finding['votes']} votes · candidate "
              f"{finding['candidate_id'] or '-'} · network {finding['network'] or '-'} · "
              f"{finding['from'] or '-'} → {finding['to'] or '-'}")
        print(f"  {finding['evidence']}")
        if finding["rule"] in EXACT_SELECTOR_RULES:
            keys = [("--candidate", finding["candidate_id"]), ("--network", finding["network"]),
                    ("--from", finding["from"]), ("--to", finding["to"])]
            options = " ".join(f"{flag} {value}" for flag, value in keys if value)
            print(f"  to void: pingxuan votes void {args.campaign_id} {options} --reason …")
        else:
            print("  to void: save its vote_ids (--json) to a file, then "
                  f"pingxuan votes void {args.campaign_id} --vote-ids FILE --reason …")


def cmd_void(args):
    selector = selector_of(args)
    if not args.yes and not confirmed(
            f"void the counted votes of campaign {args.campaign_id} with {describe(selector)}?"):
        raise CliError("not confirmed: nothing was voided (--yes skips the question)")
    reply = base.call("voting", "void_votes", args.campaign_id, selector, args.reason)
    if args.json:
        return base.print_json(reply)
    print(f"{reply['void_id']}: {reply['voided']} votes voided")


def cmd_restore(args):
    reply = base.call("voting", "restore_votes", args.void_id, args.reason)
    if args.json:
        return base.print_json(reply)
    print(f"{reply['void_id']}: {reply['restored']} votes count again")


def cmd_ledger(args):
    ledger = base.call("voting", "fraud_ledger", args.campaign_id)
    if args.json:
        return base.print_json(ledger)
    print(f"refused votes: {ledger['total']}")
    for rule, count in sorted(ledger["by_rule"].items(), key=lambda kv: -kv[1]):
        print(f"  {rule}: {count}")
    print(f"voids: {len(ledger.get('voids') or [])} "
          f"({ledger.get('voided_now', 0)} votes voided now)")
    for void in ledger.get("voids") or []:
        restored = (f", restored {void['restored_at']}: {void['restore_reason']}"
                    if void["state"] == "restored" else "")
        print(f"  {void['void_id']} {void['state']} {void['voided']} votes at {void['at']} by "
              f"{(void.get('by') or {}).get('name')}: {void['reason']}{restored}")


def register(sub):
    votes = sub.add_parser("votes", help="suspicious votes, voids and restores (票数清零)")
    area = votes.add_subparsers(dest="votes_command", required=True)

    suspicious = area.add_parser("suspicious", help="findings to look at (nothing is voided)")
    suspicious.add_argument("campaign_id")
    suspicious.add_argument("--json", action="store_true")
    suspicious.set_defaults(run=cmd_suspicious)

    void = area.add_parser("void", help="void counted votes, with a reason")
    void.add_argument("campaign_id")
    void.add_argument("--reason", required=True)
    void.add_argument("--vote-ids", metavar="FILE", help="one vote id per line ('-': stdin)")
    void.add_argument("--candidate")
    void.add_argument("--network", help="CIDR, /24 or wider (IPv6: /48 or wider)")
    void.add_argument("--from", dest="start", metavar="T", help="ISO 8601 UTC, inclusive")
    void.add_argument("--to", dest="end", metavar="T", help="ISO 8601 UTC, exclusive")
    void.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    void.add_argument("--json", action="store_true")
    void.set_defaults(run=cmd_void)

    restore = area.add_parser("restore", help="undo a void, with a reason")
    restore.add_argument("void_id")
    restore.add_argument("--reason", required=True)
    restore.add_argument("--json", action="store_true")
    restore.set_defaults(run=cmd_restore)

    ledger = area.add_parser("ledger", help="refused votes and voids (the fraud ledger)")
    ledger.add_argument("campaign_id")
    ledger.add_argument("--json", action="store_true")
    ledger.set_defaults(run=cmd_ledger)
