"""``pingxuan campaign load``, ``units import``, ``forfeits`` and ``audit``: a campaign and its record."""
from pathlib import Path

from shared.campaign import CampaignFileError, load_campaign_file
from shared.cli import base
from shared.cli.base import CliError, add_json_flag, print_json
from shared.cli.tables import read_rows

#: The services that keep an audit trail (their ``audit_trail`` RPC), in the order of a selection.
AUDITED_SERVICES = ("nomination", "voting", "scoring", "aggregation", "notification")
UNIT_HEADINGS = {"unit": ["单位", "单位名称", "推荐单位"]}


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
        print_json(report)
        return
    state = "passed" if report["deadline_passed"] else "not yet passed"
    print(f"campaign {report['campaign_id']}: deadline {report['deadline']} "
          f"({report['timezone']}), {state}")
    units = report["forfeited_units"]
    print(f"units that sent nothing ({len(units)}):" if units else "every listed unit has sent")
    for unit in units:
        print(f"  {unit}")


def cmd_audit(args):
    """Every service's trail (or one's), merged in time order."""
    services = [args.service] if args.service else AUDITED_SERVICES
    rows = []
    for service in services:
        for row in base.call(service, "audit_trail", args.campaign_id, args.entity):
            rows.append(dict(row, service=service))
    rows.sort(key=lambda row: (str(row.get("at")), row["service"]))
    if args.json:
        print_json(rows)
        return
    for row in rows:
        actor = row.get("actor") or {}
        who = actor.get("name") or actor.get("role") or ""
        print(f"{row.get('at')}  {row['service']:<12} {who}  {row.get('action')} "
              f"{row.get('entity')} {row.get('entity_id')}")
    print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")


def cmd_units_import(args):
    """Replace the campaign's list of nominating units (the forfeit report's) from a file."""
    with base.stages(f"importing units into {args.campaign}", 3) as steps:
        with steps.step(f"reading {Path(args.file).name}"):
            units = [row["unit"] for row in read_rows(args.file, ("unit",),
                                                      aliases=UNIT_HEADINGS)]
            repeated = sorted({unit for unit in units if units.count(unit) > 1})
            if repeated:
                raise CliError(f"{args.file}: units listed twice: {', '.join(repeated)}")
            if not units:
                raise CliError(f"{args.file}: no unit listed")
        with steps.step("reading the campaign"):
            document = dict(base.call("nomination", "get_campaign", args.campaign), units=units)
        with steps.step(f"sending {len(units)} units"):
            result = base.call("nomination", "load_campaign", document)
    if args.json:
        print_json(dict(result, units=units))
        return
    print(f"campaign {result['id']}: {len(units)} nominating unit(s) imported "
          f"(revision {result['revision']})")


def register(sub):
    campaign = sub.add_parser("campaign", help="campaign definitions").add_subparsers(
        dest="action", required=True)
    load = campaign.add_parser("load", help="register or update a campaign YAML file")
    load.add_argument("file")
    load.set_defaults(run=cmd_campaign_load)

    forfeits = sub.add_parser("forfeits", help="units that sent no nomination (棄權)")
    forfeits.add_argument("campaign_id")
    add_json_flag(forfeits)
    forfeits.set_defaults(run=cmd_forfeits)

    audit = sub.add_parser("audit", help="every service's audit trail of a campaign")
    audit.add_argument("campaign_id")
    audit.add_argument("--service", choices=AUDITED_SERVICES, help="only this service's trail")
    audit.add_argument("--entity", help="only the changes of this record (e.g. a nomination id)")
    add_json_flag(audit)
    audit.set_defaults(run=cmd_audit)

    units = sub.add_parser("units", help="the nominating units of a campaign").add_subparsers(
        dest="action", required=True)
    imported = units.add_parser("import", help="replace them from an XLSX or CSV list "
                                               "(a column unit or 单位名称)")
    imported.add_argument("file")
    imported.add_argument("--campaign", required=True, help="the campaign id")
    add_json_flag(imported)
    imported.set_defaults(run=cmd_units_import)
