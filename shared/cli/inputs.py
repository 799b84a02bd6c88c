"""``pingxuan inputs`` and ``pingxuan verify``: a published list that anyone can recompute.

``verify`` reads a file and recomputes; it imports no service and needs no broker.
"""
import json
from pathlib import Path

from shared.cli import base
from shared.cli.base import CliError


class Mismatch(CliError):
    """The document does not verify (or is not one): exit 1, as a refusal."""

    exit_status = base.EXIT_REFUSED


def cmd_inputs(args):
    """The inputs document of a revision of the list, to a file or standard output."""
    kwargs = {} if args.revision is None else {"revision": args.revision}
    with base.waiting(f"fetching the inputs of {args.campaign_id}"):
        document = base.call("aggregation", "inputs", args.campaign_id, **kwargs)
    text = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    base.write_out(text.encode("utf-8"), args.output,
                   f"writing {Path(args.output).name if args.output else 'inputs'}")
    if args.output:
        print(f"{args.output}: revision {document.get('revision')}, "
              f"inputs hash {document.get('inputs_hash')}")


def cmd_verify(args):
    """Recompute the list and the hash of an inputs document; exit 1 unless both match."""
    from services.aggregation.verify import NotAnInputsDocument, load_document, report_lines, \
        verify

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise Mismatch(f"cannot read {args.file}: {exc.strerror}")
    try:
        result = verify(load_document(data))
    except NotAnInputsDocument as exc:
        raise Mismatch(f"{args.file}: {exc}")
    if args.json:
        base.print_json(result)
    else:
        print("\n".join(report_lines(result)))
    if not result["match"]:
        raise Mismatch(f"{args.file} does not verify")


def register(sub):
    inputs = sub.add_parser("inputs", help="download the anonymised inputs document of the list")
    inputs.add_argument("campaign_id")
    inputs.add_argument("--revision", type=int, help="a revision of the list (default: latest)")
    inputs.add_argument("--output", help="write to FILE")
    inputs.set_defaults(run=cmd_inputs)
    check = sub.add_parser("verify", help="recompute a list and its hash from an inputs document, "
                                          "offline")
    check.add_argument("file")
    check.add_argument("--json", action="store_true", help="the comparison as JSON")
    check.set_defaults(run=cmd_verify)
