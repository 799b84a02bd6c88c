"""Verifying a published list from its inputs document alone (``pingxuan verify``).

No service, broker or store: the document is read, its hash recomputed by the
recipe of the README, and its list recomputed by the very functions the
aggregation service ranks with (:mod:`services.aggregation.domain`, the vote
normalisation and panel-method plugins, all pure). Anything that is not an
inputs document is refused with :class:`NotAnInputsDocument`.
"""
import json
import math
from decimal import Decimal

from services.aggregation import domain

#: What a document must hold at its top level, and of which type.
TOP_LEVEL = {"document": str, "inputs": dict, "inputs_hash": str, "list": list, "revision": int}
#: What its hashed ``inputs`` must hold.
INPUTS = {"recipe": str, "campaign_id": str, "timezone": str, "rules": dict, "categories": dict,
          "disqualifications": list}
#: Differences listed before the rest are only counted.
DIFFERENCES_SHOWN = 50


class NotAnInputsDocument(ValueError):
    """The file is not an inputs document of this recipe (a clear message says why)."""


def load_document(data):
    """The document in ``data`` (bytes or text), or :class:`NotAnInputsDocument`."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAnInputsDocument(f"not JSON ({exc}); an inputs document is the JSON that "
                                  "`pingxuan inputs` or aggregation.inputs gives")
    check_shape(document)
    return document


def check_shape(document):
    """The document's kind, recipe and top-level fields, or :class:`NotAnInputsDocument`."""
    if not isinstance(document, dict) or document.get("document") != domain.DOCUMENT_KIND:
        raise NotAnInputsDocument(f"not an inputs document: it should say \"document\": "
                                  f"\"{domain.DOCUMENT_KIND}\"")
    for name, kind in TOP_LEVEL.items():
        if not isinstance(document.get(name), kind) or isinstance(document.get(name), bool):
            raise NotAnInputsDocument(f"not an inputs document: \"{name}\" is missing or is not "
                                      f"a {kind.__name__}")
    inputs = document["inputs"]
    if inputs.get("recipe") != domain.HASH_RECIPE:
        raise NotAnInputsDocument(f"inputs of recipe {inputs.get('recipe')!r}: this verifier "
                                  f"knows {domain.HASH_RECIPE}")
    for name, kind in INPUTS.items():
        if not isinstance(inputs.get(name), kind):
            raise NotAnInputsDocument(f"not an inputs document: \"inputs.{name}\" is missing or "
                                      f"is not a {kind.__name__}")


def verify(document):
    """Recompute the hash and the list of ``document``; report what differs.

    Returns ``{"match", "hash": {published, recomputed, match}, "list": {match,
    differences}, "panel_scores": {match, differences}}``; each difference names the
    candidate, the field, the published and the recomputed value.
    """
    check_shape(document)
    inputs = document["inputs"]
    recomputed_hash = domain.inputs_hash(inputs)
    try:
        campaign, standings = domain.standings_from_inputs(inputs, document["revision"])
        recomputed = domain.list_rows(campaign, standings)
        panel_differences = panel_score_differences(campaign, inputs)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise NotAnInputsDocument(f"the inputs cannot be read: {type(exc).__name__}: {exc}")
    except Exception as exc:  # a plugin this installation lacks, or a rule it refuses
        raise NotAnInputsDocument(f"the list cannot be recomputed: {exc}")
    differences = list_differences(document["list"], recomputed)
    result = {
        "campaign_id": inputs["campaign_id"], "revision": document["revision"],
        "hash": {"published": document["inputs_hash"], "recomputed": recomputed_hash,
                 "match": recomputed_hash == document["inputs_hash"]},
        "list": {"match": not differences, "rows": len(recomputed),
                 "differences": differences},
        "panel_scores": {"match": not panel_differences, "differences": panel_differences},
    }
    result["match"] = all(result[part]["match"] for part in ("hash", "list", "panel_scores"))
    return result


def list_differences(published, recomputed):
    """Row by row (keyed by category and candidate): each field that differs."""
    def keyed(rows, where):
        out = {}
        for row in rows:
            if not isinstance(row, dict):
                raise NotAnInputsDocument(f"the {where} list holds a row that is not an object")
            out[(row.get("category"), row.get("candidate_id"))] = row
        return out

    theirs, ours = keyed(published, "published"), keyed(recomputed, "recomputed")
    differences = []
    for key in sorted(set(theirs) | set(ours), key=lambda k: (str(k[0]), str(k[1]))):
        category, candidate_id = key
        if key not in ours:
            differences.append(difference(category, candidate_id, "row", "present", "absent"))
            continue
        if key not in theirs:
            differences.append(difference(category, candidate_id, "row", "absent", "present"))
            continue
        for name in domain.LIST_FIELDS:
            if theirs[key].get(name) != ours[key].get(name):
                differences.append(difference(category, candidate_id, name,
                                              theirs[key].get(name), ours[key].get(name)))
    order = [(row.get("category"), row.get("candidate_id")) for row in published]
    if not differences and order != [(row["category"], row["candidate_id"]) for row in recomputed]:
        differences.append(difference(None, None, "order", "as published", "as recomputed"))
    return differences


def panel_score_differences(campaign, inputs):
    """Each closed panel's score recomputed from the judges' criterion scores with the
    campaign's panel method, as scoring computes it (4 decimals), against the document's."""
    differences = []
    _, live, _ = domain.live_from_inputs(inputs)
    for category, data in inputs["categories"].items():
        panel = data["panel"]
        if not panel["closed"]:
            continue
        ids = [cid for cid in data["candidates"]
               if live["candidates"][cid]["status"] == domain.ACCEPTED
               and cid in panel["panel_scores"]]
        scored = {cid: live["judge_scores"][cid] for cid in ids if live["judge_scores"][cid]}
        if not scored:
            continue  # no judge scores in the document: nothing to recompute from
        by_judge = {}
        for cid, totals in scored.items():
            for label, total in totals.items():
                by_judge.setdefault(label, {})[cid] = total
        method = domain.panel_method(campaign)
        computed = method(by_judge, domain.score_range(campaign, category),
                          campaign.document.get("panel_options") or {})
        for cid in ids:
            value = computed.get(cid)
            ours = None if value is None or not math.isfinite(value) else domain.decimal_text(
                round(value, domain.JUDGE_TOTAL_DIGITS))
            theirs = panel["panel_scores"][cid]
            if not same_number(theirs, ours):
                differences.append(difference(category, cid, "panel_score (from judge scores)",
                                              theirs, ours))
    return differences


def same_number(a, b):
    if a is None or b is None:
        return a is b
    return Decimal(str(a)) == Decimal(str(b))


def difference(category, candidate_id, field, published, recomputed):
    return {"category": category, "candidate_id": candidate_id, "field": field,
            "published": published, "recomputed": recomputed}


def report_lines(result):
    """``pingxuan verify``'s words: the verdict, then each difference."""
    hash_part, list_part = result["hash"], result["list"]
    lines = [f"campaign {result['campaign_id']}, revision {result['revision']} of the list",
             f"inputs hash: {'match' if hash_part['match'] else 'MISMATCH'}",
             f"  published  {hash_part['published']}",
             f"  recomputed {hash_part['recomputed']}",
             f"list ({list_part['rows']} rows): "
             f"{'match' if list_part['match'] else 'MISMATCH'}"]
    shown = list_part["differences"] + result["panel_scores"]["differences"]
    if not result["panel_scores"]["match"]:
        lines.append("panel scores from the judges' scores: MISMATCH")
    for diff in shown[:DIFFERENCES_SHOWN]:
        lines.append(f"  {diff['category']} {diff['candidate_id']} {diff['field']}: "
                     f"published {diff['published']!r}, recomputed {diff['recomputed']!r}")
    if len(shown) > DIFFERENCES_SHOWN:
        lines.append(f"  … and {len(shown) - DIFFERENCES_SHOWN} more differences")
    lines.append("MATCH: the list and its hash follow from these inputs" if result["match"] else
                 "MISMATCH: the document does not verify")
    return lines
