"""``pingxuan campaign load``, ``forfeits`` and ``audit``: the campaign and its record."""
import json

from shared.campaign import CampaignFileError, load_campaign_file
from shared.cli import base
from shared.cli.base import CliError


def cmd_campaign_load(args):
    try:
        document = load_campaign_file(args.file)
    except CampaignFileError as exc:
        raise CliError(f"campaign file refused:\n{exc}")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}")
    result = base.call("nomination", "load_campaign", document)
    verb = "registered" if result["created"] else "updated"
    print(f"campaign {result['id']} {verb} (revision {result['revision']})")


def cmd_forfeits(args):
    report = base.call("nomination", "forfeits", args.campaign_id)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    state = "passed" if report["deadline_passed"] else "not yet passed"
    print(f"campaign {report['campaign_id']}: deadline {report['deadline']} "
          f"({report['timezone']}), {state}")
    units = report["forfeited_units"]
    print(f"units that sent nothing ({len(units)}):" if units else "every listed unit has sent")
    for unit in units:
        print(f"  {unit}")


def cmd_audit(args):
    for row in base.call("nomination", "audit_trail", args.campaign_id, args.entity):
        print(json.dumps(row, ensure_ascii=False, default=str))


def register(sub):
    campaign = sub.add_parser("campaign", help="campaign definitions").add_subparsers(
        dest="action", required=True)
    load = campaign.add_parser("load", help="register or update a campaign YAML file")
    load.add_argument("file")
    load.set_defaults(run=cmd_campaign_load)

    forfeits = sub.add_parser("forfeits", help="units that sent no nomination (棄權)")
    forfeits.add_argument("campaign_id")
    forfeits.add_argument("--json", action="store_true")
    forfeits.set_defaults(run=cmd_forfeits)

    audit = sub.add_parser("audit", help="the audit trail of a campaign (JSON lines)")
    audit.add_argument("campaign_id")
    audit.add_argument("--entity")
    audit.set_defaults(run=cmd_audit)
