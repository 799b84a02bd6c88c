"""The rules of 加權統分 and the publicity list (公示名單), as plain functions (no I/O).

Inputs arrive as a plain ``live`` mapping, built either from the service's own
store (incremental) or from the other services' records (rebuild)::

    {"candidates": {candidate_id: {candidate_id, category, org_type, nominee_name,
                                   nominee_unit, submitted_at, status, disqualification_reason}},
     "votes": {candidate_id: count},          # counted: voided votes left out
     "voided": {candidate_id: count},         # 票數清零: voided votes, shown beside
     "panels": {category: {"closed": bool, "method": str, "panel_scores": {candidate_id: score}}},
     # panel_scores: scoring's figures, final (closed) or provisional (open); never ours.
     # only where an inputs document is built, or read back from one:
     "daily_votes": {candidate_id: [{day, counted, voided}]},
     "criterion_scores": {candidate_id: {judge_id: {criterion: score}}},
     # only read back from an inputs document (pingxuan verify recomputes closed panels):
     "judge_scores": {candidate_id: {judge_label: weighted total}}}

``status`` is ``accepted`` (standing) or ``disqualified``; nominations in any other
state are not candidates and are left out by whoever builds ``live``.
"""
import functools
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from shared import plugins
from shared.ballot import candidate_of_record
from shared.campaign import CATEGORIES, ORG_TYPES, Campaign
from shared.errors import InvalidState
from shared.timeutil import canonical_time, local_day, parse_iso

# Candidate states (the nomination's status, as far as aggregation cares).
ACCEPTED = "accepted"
DISQUALIFIED = "disqualified"
CANDIDATE_STATES = (ACCEPTED, DISQUALIFIED)
#: An id that votes or scores named but nomination does not know as a candidate.
NOT_A_CANDIDATE = "not_a_candidate"

# Result statuses (CONTRACT.md).
SELECTED = "selected"
RESERVE = "reserve"

# Phases of a campaign's results.
OPEN = "open"              # live results; nothing published
PUBLISHED = "published"    # 公示: the list is out; disqualifications issue revisions
FINALIZED = "finalized"    # 審定: frozen

#: The remainder pool: seats not reserved for an org type (every seat, outside advanced_unit).
OPEN_POOL = "open"
#: Digits of the published scores when the campaign does not say (``results.precision``).
DEFAULT_PRECISION = 2
#: The tie rule, in order; each row says which of the last three decided a tie (``tie_break``).
TIE_RULE = ("composite", "panel_score", "submitted_at", "candidate_id")
#: Names the hash recipe, so a future change of recipe cannot be mistaken for this one.
HASH_RECIPE = "pingxuan-aggregation-inputs-v2"
#: What an inputs document says it is (``pingxuan verify`` refuses any other file).
DOCUMENT_KIND = "pingxuan-inputs-document"
#: How published scores are rounded (四舍五入).
ROUNDING = "half_up"
#: A judge's weighted total, as scoring keeps it.
JUDGE_TOTAL_DIGITS = 4
WEIGHT_TOLERANCE = 1e-9


# --- time and ordering -------------------------------------------------------------------

def order_key(occurred_at, event_id):
    """Orders events of one thing by when they happened; the event id breaks ties."""
    return f"{canonical_time(occurred_at)}|{event_id}"


def lag_seconds(occurred_at, applied_at):
    """Seconds from an event's ``occurred_at`` to its application (never negative)."""
    return max(0.0, (applied_at - parse_iso(occurred_at)).total_seconds())


# --- the campaign's choices --------------------------------------------------------------

def weights(campaign):
    """``(w_public, w_panel)``; the campaign schema refuses weights that do not add up to 1.

    Checked again here because a campaign copy may come from an event or an RPC
    reply rather than through the schema.
    """
    w = campaign.document["weights"]
    public, panel = w["public"], w["panel"]
    if not (0 <= public <= 1 and 0 <= panel <= 1) or abs(public + panel - 1) > WEIGHT_TOLERANCE:
        raise InvalidState(f"campaign {campaign.id}: weights public {public} and panel {panel} "
                           "must be between 0 and 1 and add up to 1")
    return public, panel


@functools.lru_cache(maxsize=64)
def plugin(group, name):
    """A plugin, looked up once per process (reading entry points costs milliseconds)."""
    return plugins.load_plugin(group, name)


def normaliser(campaign):
    """The campaign's vote normalisation plugin (``pingxuan.vote_normalisation``)."""
    return plugin(plugins.VOTE_NORMALISATION, campaign.document["vote_normalisation"])


def panel_method(campaign):
    return plugin(plugins.PANEL_METHODS, campaign.document["panel_method"])


def score_range(campaign, category):
    """The range of a judge's weighted total: the criteria's weighted minima and maxima."""
    criteria = campaign.criteria(category)
    return (sum(c["weight"] * c.get("min", 0) for c in criteria),
            sum(c["weight"] * c["max"] for c in criteria))


def campaign_categories(campaign):
    """The campaign's categories in the notice's order."""
    return [name for name in CATEGORIES if campaign.category(name) is not None]


# --- scores ------------------------------------------------------------------------------

def precision(campaign):
    """Digits of the published scores (campaign key ``results.precision``, default 2): the
    composite is ranked on what is shown, so two rows showing 80.00 are a tie."""
    return int((campaign.document.get("results") or {}).get("precision", DEFAULT_PRECISION))


def exact(value):
    """A score as an exact fraction: a float is taken as the decimal it prints as (``0.3`` is
    3/10, not the binary number nearest to it), so weights and scores compute as on paper."""
    if value is None or isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite score: {value}")
        return Fraction(Decimal(repr(value)))
    return Fraction(Decimal(str(value)))


def at_precision(value, digits):
    """``value`` rounded half up (四舍五入) to ``digits`` decimals, as a ``Decimal``."""
    if value is None:
        return None
    scaled = exact(value) * 10 ** digits
    magnitude = math.floor(abs(scaled) + Fraction(1, 2))
    return Decimal(magnitude if scaled >= 0 else -magnitude).scaleb(-digits)


def published(value, digits):
    """A score as replies carry it: the published digits, as a number."""
    return None if value is None else float(at_precision(value, digits))


def composite(w_public, w_panel, vote_score, panel_score):
    """加權統分: ``w_public × vote_score + w_panel × panel_score``, exactly (a fraction)."""
    return exact(w_public) * exact(vote_score) + exact(w_panel) * exact(panel_score)


def vote_scores(campaign, votes_by_candidate):
    """The category's vote scores (0–100) by the campaign's normalisation method."""
    if not votes_by_candidate:
        return {}
    return normaliser(campaign)({cid: int(count) for cid, count in votes_by_candidate.items()})


def panel_scores(panel, candidate_ids):
    """Each candidate's panel score as scoring gave it: final once the panel is closed
    (``panel_closed``), provisional (the latest ``score_submitted``) while it is open. Never
    recomputed here, so live results show what ``scoring.scores`` shows."""
    given = (panel or {}).get("panel_scores") or {}
    return {cid: given.get(cid) for cid in candidate_ids}


def provisional_panel_scores(score_records, panels):
    """``{category: {candidate_id: score}}``: scoring's newest provisional figures of each
    category whose panel has not closed, from the ``score_submitted`` records.

    The newest is the one computed on the highest panel version (scoring stores each score
    conditionally on that version), whatever order the events arrived in. Records without
    figures (events from before they were carried) and scores after the close are skipped.
    """
    newest = {}
    for record in score_records:
        category = record["category"]
        if record.get("panel_scores") is None or is_closed(panels.get(category)):
            continue
        if category not in newest or record["panel_version"] > newest[category]["panel_version"]:
            newest[category] = record
    return {category: dict(record["panel_scores"]) for category, record in newest.items()}


def current_judge_scores(score_records, panels, field="total"):
    """Each judge's latest total per candidate, ignoring scores given after the panel closed.

    ``score_records``: ``{candidate_id, category, judge_id, total, scores, order_key}``
    (one per ``score_submitted`` event, in any order). A resend before the close
    replaces the earlier score; anything after the close is not a score. With
    ``field="scores"``: the same judges' scores per criterion.
    """
    latest = {}
    for record in score_records:
        if after_close(panels.get(record["category"]), record["order_key"]):
            continue
        key = (record["candidate_id"], record["judge_id"])
        if key not in latest or record["order_key"] > latest[key]["order_key"]:
            latest[key] = record
    result = {}
    for (cid, judge_id), record in latest.items():
        result.setdefault(cid, {})[judge_id] = record.get(field)
    return result


def is_closed(panel):
    """Whether a category's panel has closed (the state keeps an entry once it has)."""
    return bool(panel) and panel.get("closed", True)


def after_close(panel, key):
    """Whether an event ordered by ``key`` happened after its category's panel closed."""
    return is_closed(panel) and key > panel["closed_key"]


# --- ranking -----------------------------------------------------------------------------

def tie_rule_key(row):
    """The documented order: composite (high first), then panel score (high first), then the
    earlier submission, then the candidate id (so the order is total and reproducible).
    Scores are compared as published (``results.precision``): what is shown is what ranks."""
    return (-row["composite"], -row["panel_score"], row["submitted_at"], row["candidate_id"])


def deciding_rule(first, second):
    """Which rule of the tie rule put ``first`` before ``second`` (``None``: the composite)."""
    for rule in TIE_RULE:
        if first[rule] != second[rule]:
            return None if rule == "composite" else rule
    return TIE_RULE[-1]


def mark_tie_breaks(ranked):
    """Each row of a tie (equal published composites) says which rule ordered it against its
    neighbour (``tie_break``), so two rows showing 80.00 never rank apart without a word why."""
    for row in ranked:
        row["tie_break"] = None
    for above, below in zip(ranked, ranked[1:]):
        rule = deciding_rule(above, below)
        if rule is not None:
            below["tie_break"] = rule
            above["tie_break"] = above["tie_break"] or rule


def rank_category(campaign, category, live):
    """Every candidate of ``category`` as a results row, in ranked order.

    Standing (accepted) candidates with a panel score are ranked by
    :func:`tie_rule_key`; standing ones without a panel score follow, unranked
    (they cannot be selected); disqualified ones come last. Votes are
    normalised over the standing candidates only: a disqualified candidate's
    votes move nobody. Composites are exact and then rounded half up to the
    published digits, which is what is ranked, shown and exported.
    """
    w_public, w_panel = weights(campaign)
    digits = precision(campaign)
    members = [c for c in live["candidates"].values() if c["category"] == category]
    standing = [c for c in members if c["status"] == ACCEPTED]
    votes = live.get("votes") or {}
    standing_ids = [c["candidate_id"] for c in standing]
    v_scores = vote_scores(campaign, {cid: votes.get(cid, 0) for cid in standing_ids})
    p_scores = panel_scores((live.get("panels") or {}).get(category), standing_ids)
    scored, unscored, disqualified = [], [], []
    for candidate in members:
        cid = candidate["candidate_id"]
        row = candidate_row(candidate, votes.get(cid, 0))
        row["voided_votes"] = int((live.get("voided") or {}).get(cid, 0))
        if candidate["status"] != ACCEPTED:
            disqualified.append(row)
            continue
        vote_score = v_scores.get(cid, 0)
        row["vote_score"] = published(vote_score, digits)
        panel = p_scores.get(cid)
        if panel is None or (isinstance(panel, float) and not math.isfinite(panel)):
            unscored.append(row)
            continue
        row["panel_score"] = published(panel, digits)
        row["composite"] = published(composite(w_public, w_panel, vote_score, panel), digits)
        scored.append(row)
    scored.sort(key=tie_rule_key)
    mark_tie_breaks(scored)
    for position, row in enumerate(scored, start=1):
        row["rank"] = position
    by_submission = lambda row: (row["submitted_at"], row["candidate_id"])  # noqa: E731
    return scored + sorted(unscored, key=by_submission) + sorted(disqualified, key=by_submission)


def candidate_row(candidate, votes):
    return {
        "candidate_id": candidate["candidate_id"],
        "nominee_name": candidate.get("nominee_name"),
        "nominee_unit": candidate.get("nominee_unit"),
        "category": candidate["category"],
        "org_type": candidate.get("org_type"),
        "submitted_at": canonical_time(candidate["submitted_at"]),
        "votes": int(votes),
        "vote_score": None, "panel_score": None, "composite": None,
        "rank": None, "pool": None, "pool_rank": None, "status": None, "tie_break": None,
        "candidate_status": candidate["status"],
        "disqualification_reason": candidate.get("disqualification_reason"),
    }


# --- seats: award slots and org-type sub-pools --------------------------------------------

@dataclass(frozen=True)
class Pool:
    """A group of seats: an org type's sub-slots, or the open remainder of the award slots."""

    name: str
    org_type: str | None
    slots: int

    def admits(self, row):
        return self.org_type is None or row.get("org_type") == self.org_type


def seat_pools(rules):
    """The seats of a category: one pool per org type with sub-slots (advanced units: the
    notice's 机关/学校/企业/社区/农村), then the remaining award slots, open to all."""
    org_slots = rules.get("org_type_slots") or {}
    pools = [Pool(org_type, org_type, org_slots[org_type])
             for org_type in ORG_TYPES if org_slots.get(org_type, 0) > 0]
    rest = rules["award_slots"] - sum(org_slots.values())
    if rest > 0:
        pools.append(Pool(OPEN_POOL, None, rest))
    return pools


def select(rows, rules, excluded=()):
    """Fill the seats from ranked ``rows``: statuses, pools and shortfalls.

    Each org-type pool takes its best ranked candidates of that org type; the
    open pool then takes the best of the rest. ``excluded`` (disqualified after
    the list was published) are skipped, so the next eligible candidate of the
    same sub-pool moves up. A pool with fewer eligible candidates than seats is
    reported as a shortfall, never filled from another pool.

    Returns ``(seats, shortfalls)``: ``seats`` maps each selected candidate id
    to its pool name.
    """
    excluded = set(excluded)
    eligible = [row for row in rows if row.get("rank") is not None
                and row["candidate_id"] not in excluded
                and row.get("candidate_status", ACCEPTED) == ACCEPTED]
    seats, shortfalls = {}, []
    for pool in seat_pools(rules):
        taken = [row for row in eligible
                 if row["candidate_id"] not in seats and pool.admits(row)][:pool.slots]
        for row in taken:
            seats[row["candidate_id"]] = pool.name
        if len(taken) < pool.slots:
            shortfalls.append({"category": rows[0]["category"] if rows else None,
                               "pool": pool.name, "slots": pool.slots, "filled": len(taken),
                               "missing": pool.slots - len(taken)})
    return seats, shortfalls


def apply_selection(rows, rules, excluded=(), category=None):
    """Rows with ``status``, ``pool`` and ``pool_rank`` filled in; and the shortfalls."""
    excluded = set(excluded)
    seats, shortfalls = select(rows, rules, excluded)
    for shortfall in shortfalls:
        shortfall["category"] = category or shortfall["category"]
    org_typed = bool(rules.get("org_type_slots"))
    counters = {}
    out = []
    for row in rows:
        row = dict(row)
        cid = row["candidate_id"]
        if row.get("candidate_status") == DISQUALIFIED or cid in excluded:
            row["status"] = DISQUALIFIED
        elif cid in seats:
            row["status"] = SELECTED
        else:
            row["status"] = RESERVE
        row["pool"] = seats.get(cid)
        if row.get("rank") is not None:
            group = row.get("org_type") if org_typed else OPEN_POOL
            counters[group] = counters.get(group, 0) + 1
            row["pool_rank"] = counters[group]
        out.append(row)
    return out, shortfalls


def standings(campaign, live, category, excluded=()):
    """Ranked, selected rows of one category and its shortfalls (the live computation)."""
    rows = rank_category(campaign, category, live)
    return apply_selection(rows, campaign.category(category), excluded, category)


def revision_changes(before, after):
    """Who left the list and who moved up, per pool, between two selections of a category.

    ``before`` and ``after``: ``{candidate_id: pool}`` of the selected.
    """
    removed = sorted(set(before) - set(after))
    promoted = sorted(set(after) - set(before))
    return {"removed": [{"candidate_id": cid, "pool": before[cid]} for cid in removed],
            "promoted": [{"candidate_id": cid, "pool": after[cid]} for cid in promoted]}


# --- publishing ----------------------------------------------------------------------------

def check_publishable(campaign, phase, now, live, unresolved_orphans=()):
    """The list may be published once: after voting closed, with every panel closed."""
    if phase != OPEN:
        raise InvalidState(f"the list of campaign {campaign.id} is already {phase}; "
                           "after publication only a disqualification changes it")
    if now < campaign.voting_closes:
        raise InvalidState(f"voting of campaign {campaign.id} closes at "
                           f"{campaign.document['voting']['closes']} ({campaign.timezone}); "
                           "the list is published after the vote")
    open_panels = [category for category in campaign_categories(campaign)
                   if any(c["category"] == category and c["status"] == ACCEPTED
                          for c in live["candidates"].values())
                   and not ((live.get("panels") or {}).get(category) or {}).get("closed")]
    if open_panels:
        raise InvalidState(f"the panel of {', '.join(open_panels)} is not closed; "
                           "panel scores are final only once it is")
    check_daily_votes(live)
    if unresolved_orphans:
        raise InvalidState(
            f"votes or scores arrived for candidates aggregation does not know "
            f"({', '.join(sorted(unresolved_orphans)[:5])}); their nominations have not been "
            "received: run rebuild to compare with the other services' records")


def check_finalizable(campaign, phase):
    if phase != PUBLISHED:
        raise InvalidState(f"the list of campaign {campaign.id} is {phase}; only a published "
                           "list can be approved (finalized)")


# --- the inputs document and its hash --------------------------------------------------------

def decimal_text(value):
    """An input number (a weight, a score as given) as the shortest decimal that is exactly it:
    ``0.3``, ``88.5``, ``85`` (so it reads back as the same number in any language)."""
    if value is None:
        return None
    text = format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def judge_labels(judge_ids, key):
    """Anonymous labels ``J1``, ``J2``… for the judges of one category, stable within a
    document and not derivable from the ids: ordered by a keyed hash (the key never leaves
    the service), not by the ids themselves."""
    ordered = sorted(set(judge_ids), key=lambda judge_id: hmac.new(
        key.encode("utf-8"), judge_id.encode("utf-8"), hashlib.sha256).hexdigest())
    return {judge_id: f"J{position}" for position, judge_id in enumerate(ordered, start=1)}


def disqualification_entries(live, revisions=None):
    """``[{candidate_id, revision}]``: disqualified before publication (revision 0) or after
    it, in the revision of the list that first left them out (``revisions``: ``{id: n}``)."""
    revisions = revisions or {}
    entries = [{"candidate_id": cid, "revision": 0} for cid, c in live["candidates"].items()
               if c["status"] == DISQUALIFIED]
    entries += [{"candidate_id": cid, "revision": int(revision)}
                for cid, revision in revisions.items()]
    return sorted(entries, key=lambda entry: (entry["revision"], entry["candidate_id"]))


def check_daily_votes(live):
    """The per-day counts must add up to the counts that rank, or the inputs document would
    not give the published list."""
    for cid, days in (live.get("daily_votes") or {}).items():
        counted = sum(day["counted"] for day in days)
        if counted != int((live.get("votes") or {}).get(cid, 0)):
            raise InvalidState(f"the per-day vote counts of candidate {cid} add up to {counted}, "
                               f"its count is {live['votes'].get(cid, 0)}: run rebuild to "
                               "compare with voting's records before publishing")


def inputs_document(campaign, live, disqualified_after=None, label_key=""):
    """Everything a list is computed from, anonymised (README: "The inputs document").

    ``live`` may carry ``daily_votes`` (``{candidate_id: [{day, counted, voided}]}``) and
    ``criterion_scores`` (``{candidate_id: {judge_id: {criterion: score}}}``);
    ``disqualified_after``: ``{candidate_id: revision}`` of those disqualified after
    publication (they stand in ``live``). Judges appear under :func:`judge_labels` only.
    """
    w_public, w_panel = weights(campaign)
    votes = live.get("votes") or {}
    daily = live.get("daily_votes") or {}
    criterion_scores = live.get("criterion_scores") or {}
    panels = live.get("panels") or {}
    categories = {}
    for category in campaign_categories(campaign):
        rules = campaign.category(category)
        members = {cid: c for cid, c in live["candidates"].items() if c["category"] == category}
        labels = judge_labels([judge for cid in members for judge in criterion_scores.get(cid, {})],
                              label_key)
        panel = panels.get(category) or {}
        closed = bool(panel.get("closed"))
        final = panel.get("panel_scores") or {}
        candidates = {}
        for cid, c in members.items():
            days = daily.get(cid)
            candidates[cid] = {
                "org_type": c.get("org_type"),
                "submitted_at": canonical_time(c["submitted_at"]),
                "votes_by_day": sorted(
                    ({"day": day["day"], "counted": int(day["counted"]),
                      "voided": int(day.get("voided", 0))} for day in days)
                    if days is not None else
                    [{"day": None, "counted": int(votes.get(cid, 0)), "voided": 0}],
                    key=lambda day: day["day"] or ""),
                "judges": {labels[judge]: {key: decimal_text(value)
                                           for key, value in sorted(scores.items())}
                           for judge, scores in criterion_scores.get(cid, {}).items()},
            }
        categories[category] = {
            "award_slots": rules["award_slots"],
            "org_type_slots": dict(sorted((rules.get("org_type_slots") or {}).items())),
            "criteria": [{"key": c["key"], "weight": decimal_text(c["weight"]),
                          "min": decimal_text(c.get("min", 0)), "max": decimal_text(c["max"])}
                         for c in campaign.criteria(category)],
            "panel": {"closed": closed,
                      "panel_scores": ({cid: decimal_text(final.get(cid)) for cid in members}
                                       if closed else {})},
            "candidates": candidates,
        }
    return {
        "recipe": HASH_RECIPE,
        "campaign_id": campaign.id,
        "timezone": campaign.timezone,
        "rules": {
            "weights": {"public": decimal_text(w_public), "panel": decimal_text(w_panel)},
            "vote_normalisation": campaign.document["vote_normalisation"],
            "panel_method": campaign.document["panel_method"],
            "panel_options": {key: value for key, value in
                              sorted((campaign.document.get("panel_options") or {}).items())
                              if value is not None},
            "precision": precision(campaign),
            "rounding": ROUNDING,
            "tie_rule": list(TIE_RULE),
        },
        "categories": categories,
        "disqualifications": disqualification_entries(live, disqualified_after),
    }


def disqualified_after(state, excluded, upto=None):
    """``{candidate_id: revision}``: the revision of the list that first left each of
    ``excluded`` out, from the campaign's ``revisions`` (the next revision for one not left
    out yet); ``upto``: only revisions up to that one count."""
    first = {}
    for entry in state.get("revisions") or []:
        if upto is not None and entry["revision"] > upto:
            continue
        for cid in entry.get("disqualified_after_publish") or []:
            first.setdefault(cid, entry["revision"])
    return {cid: first.get(cid, state.get("revision", 0) + 1) for cid in excluded}


def with_disqualifications(inputs, disqualified_after):
    """A revision's inputs: the document frozen at publication with the disqualifications of
    that revision (``{candidate_id: revision}``); everything else stays as published."""
    before = [entry for entry in inputs["disqualifications"] if entry["revision"] == 0]
    after = [{"candidate_id": cid, "revision": int(revision)}
             for cid, revision in disqualified_after.items()]
    return dict(inputs, disqualifications=sorted(
        before + after, key=lambda entry: (entry["revision"], entry["candidate_id"])))


def canonical_json(document):
    """UTF-8 JSON with sorted keys and no spaces: the bytes the hash is taken over."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"), allow_nan=False).encode("utf-8")


def inputs_hash(document):
    return hashlib.sha256(canonical_json(document)).hexdigest()


def campaign_from_inputs(inputs):
    """The campaign rules an inputs document states, as a :class:`Campaign` (for recomputing)."""
    rules = inputs["rules"]
    return Campaign({
        "id": inputs["campaign_id"], "name": inputs["campaign_id"],
        "timezone": inputs["timezone"],
        "weights": {"public": float(rules["weights"]["public"]),
                    "panel": float(rules["weights"]["panel"])},
        "vote_normalisation": rules["vote_normalisation"], "panel_method": rules["panel_method"],
        "panel_options": dict(rules.get("panel_options") or {}),
        "results": {"precision": int(rules["precision"])},
        "categories": {category: {
            "award_slots": int(data["award_slots"]),
            "org_type_slots": {k: int(v) for k, v in (data.get("org_type_slots") or {}).items()},
            "criteria": [{"key": c["key"], "weight": float(c["weight"]), "min": float(c["min"]),
                          "max": float(c["max"])} for c in data["criteria"]],
        } for category, data in inputs["categories"].items()},
    })


def judge_total(criteria, scores):
    """A judge's weighted total from the criterion scores, as scoring computes it (4 decimals)."""
    return round(math.fsum(c["weight"] * scores[c["key"]] for c in criteria), JUDGE_TOTAL_DIGITS)


def live_from_inputs(inputs):
    """The ``live`` mapping back from an inputs document, and ``{candidate_id: revision}`` of
    those disqualified after publication (to recompute a published list)."""
    campaign = campaign_from_inputs(inputs)
    after = {entry["candidate_id"]: int(entry["revision"])
             for entry in inputs["disqualifications"] if entry["revision"] > 0}
    before = {entry["candidate_id"] for entry in inputs["disqualifications"]
              if entry["revision"] == 0}
    candidates, votes, daily, judges, criterion_scores, panels = {}, {}, {}, {}, {}, {}
    for category, data in inputs["categories"].items():
        criteria = campaign.criteria(category)
        for cid, c in data["candidates"].items():
            candidates[cid] = {"candidate_id": cid, "category": category,
                               "org_type": c["org_type"], "submitted_at": c["submitted_at"],
                               "status": DISQUALIFIED if cid in before else ACCEPTED}
            daily[cid] = [dict(day) for day in c["votes_by_day"]]
            votes[cid] = sum(int(day["counted"]) for day in c["votes_by_day"])
            criterion_scores[cid] = {label: {key: float(value) for key, value in scores.items()}
                                     for label, scores in c["judges"].items()}
            # A judge without a score for every criterion has no total (scoring refuses such
            # a score; a document that has one cannot be recomputed for that judge).
            judges[cid] = {label: judge_total(criteria, scores)
                           for label, scores in criterion_scores[cid].items()
                           if all(c["key"] in scores for c in criteria)}
        panels[category] = {
            "closed": data["panel"]["closed"],
            "panel_scores": {cid: (None if score is None else float(score))
                             for cid, score in data["panel"]["panel_scores"].items()}}
    live = {"candidates": candidates, "votes": votes, "daily_votes": daily,
            "judge_scores": judges, "criterion_scores": criterion_scores, "panels": panels}
    return campaign, live, after


def excluded_in_revision(disqualified_after, revision):
    """Who had left the published ranking by ``revision`` (skipped when seats are filled)."""
    return sorted(cid for cid, left_in in disqualified_after.items() if left_in <= revision)


def standings_from_inputs(inputs, revision):
    """``(campaign, {category: (rows, shortfalls)})`` of ``revision``, from the document alone:
    the same functions the service ranks with."""
    campaign, live, after = live_from_inputs(inputs)
    excluded = excluded_in_revision(after, revision)
    return campaign, {category: standings(campaign, live, category, excluded)
                      for category in campaign_categories(campaign)}


#: The fields of a row in an inputs document's list (scores as text at the published digits).
LIST_FIELDS = ("category", "candidate_id", "org_type", "votes", "vote_score", "panel_score",
               "composite", "rank", "pool", "pool_rank", "status", "tie_break")
LIST_SCORES = ("vote_score", "panel_score", "composite")


def list_rows(campaign, standings_by_category):
    """A revision's list as the inputs document states it: every candidate of every category
    in ranked order, scores as decimal strings with the published digits."""
    digits = precision(campaign)
    out = []
    for category in campaign_categories(campaign):
        rows, _ = standings_by_category[category]
        for row in rows:
            entry = {name: row.get(name) for name in LIST_FIELDS}
            for name in LIST_SCORES:
                value = entry[name]
                entry[name] = None if value is None else str(at_precision(value, digits))
            out.append(entry)
    return out


def verifiable_document(inputs, revision, published_at=None):
    """The inputs document of one revision: its inputs, their hash and the list they give."""
    campaign, standings_by_category = standings_from_inputs(inputs, revision)
    return {"document": DOCUMENT_KIND, "recipe": HASH_RECIPE, "campaign_id": inputs["campaign_id"],
            "revision": revision, "published_at": published_at,
            "inputs": inputs, "inputs_hash": inputs_hash(inputs),
            "list": list_rows(campaign, standings_by_category)}


def compare_inputs(incremental, rebuilt, limit=50):
    """Differences between two inputs documents, as readable lines (empty when equal)."""
    differences = []

    def walk(a, b, path):
        if len(differences) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in a:
                    differences.append(f"{path}.{key}: only in the rebuild ({b[key]!r})"[:300])
                elif key not in b:
                    differences.append(f"{path}.{key}: only in the incremental state "
                                       f"({a[key]!r})"[:300])
                else:
                    walk(a[key], b[key], f"{path}.{key}")
        elif a != b:
            differences.append(f"{path}: incremental {a!r}, rebuilt {b!r}"[:300])

    walk(incremental, rebuilt, "inputs")
    return differences


# --- the live tally -------------------------------------------------------------------------

def tally(candidates, category=None):
    """Votes so far per standing candidate, most first (for the voting page and dashboards)."""
    rows = [{"candidate_id": c["candidate_id"], "category": c["category"],
             "nominee_name": c.get("nominee_name"), "org_type": c.get("org_type"),
             "votes": int(c.get("votes", 0))}
            for c in candidates
            if c.get("status") == ACCEPTED and (category is None or c["category"] == category)]
    rows.sort(key=lambda row: (CATEGORIES.index(row["category"])
                               if row["category"] in CATEGORIES else len(CATEGORIES),
                               -row["votes"], row["candidate_id"]))
    return rows


def count_page(counts, votes, voided=None):
    """Add one page of ``voting.votes_page`` to ``counts`` (``{candidate_id: n}``); a vote
    flagged ``voided`` goes to ``voided`` instead (票數清零: it leaves the count).

    The hot loop of a rebuild: a page is counted without building objects per vote.
    """
    get = counts.get
    for vote in votes:
        cid = vote["candidate_id"]
        if vote.get("voided"):
            if voided is not None:
                voided[cid] = voided.get(cid, 0) + 1
            continue
        counts[cid] = get(cid, 0) + 1
    return counts


def live_from_records(records, vote_counts, scores_reply, daily_votes=None,
                      voided_counts=None):
    """The ``live`` mapping from the other services' records (the rebuild's side).

    ``records``: validated ``nomination.list`` rows; ``vote_counts``: votes per
    candidate from ``voting.votes_page``; ``daily_votes``: the same per local day
    (:func:`daily_from_minutes`); ``scores_reply``: ``scoring.scores``.
    Votes and scores for ids that are not candidates are left out, as the
    incremental state leaves out its orphans.
    """
    candidates = {}
    for record in records:
        candidate = candidate_of_record(record)
        if candidate is None or candidate.status not in CANDIDATE_STATES:
            continue
        candidates[candidate.candidate_id] = {
            "candidate_id": candidate.candidate_id, "category": candidate.category,
            "org_type": candidate.org_type, "nominee_name": candidate.nominee_name,
            "nominee_unit": candidate.nominee_unit,
            "submitted_at": canonical_time(candidate.submitted_at), "status": candidate.status,
            "disqualification_reason": candidate.disqualification_reason}
    criterion_scores = {}
    for score in scores_reply["scores"]:
        if score["candidate_id"] in candidates:
            criterion_scores.setdefault(score["candidate_id"], {})[score["judge_id"]] = dict(
                score.get("scores") or {})
    # Open panels too: their provisional scores are scoring's, as the incremental side's.
    panels = {category: {"closed": bool(panel.get("closed")), "method": panel.get("method"),
                         "panel_scores": dict(panel.get("panel_scores") or {})}
              for category, panel in (scores_reply.get("panels") or {}).items()}
    voided_counts = voided_counts or {}
    live = {"candidates": candidates,
            "votes": {cid: vote_counts.get(cid, 0) for cid in candidates},
            "voided": {cid: voided_counts.get(cid, 0) for cid in candidates},
            "criterion_scores": criterion_scores, "panels": panels}
    if daily_votes is not None:
        live["daily_votes"] = {cid: daily_votes.get(cid, []) for cid in candidates}
    return live


def count_minutes(minutes, votes):
    """Add one page of votes to ``minutes`` (``{(candidate_id, cast_at to the minute, zone,
    voided): n}``): cheap string keys in the hot loop; :func:`daily_from_minutes` turns them
    into local days."""
    get = minutes.get
    for vote in votes:
        key = (vote["candidate_id"], vote["cast_at"][:16], vote["cast_at"][16:].lstrip(
            "0123456789:.") or "Z", bool(vote.get("voided")))
        minutes[key] = get(key, 0) + 1
    return minutes


def daily_from_minutes(minutes, tz_name):
    """``{candidate_id: [{day, counted, voided}]}`` in the campaign's zone from
    :func:`count_minutes` (each distinct minute is converted once)."""
    days_of, per_day = {}, {}
    for (cid, minute, zone, voided), count in minutes.items():
        if (minute, zone) not in days_of:
            days_of[(minute, zone)] = local_day(parse_iso(minute + ":00" + zone), tz_name)
        day = per_day.setdefault((cid, days_of[(minute, zone)]), {"counted": 0, "voided": 0})
        day["voided" if voided else "counted"] += count
    return group_daily_votes(
        [dict(counts, candidate_id=cid, day=day) for (cid, day), counts in per_day.items()])


def group_daily_votes(rows):
    """``AggregationStore.daily_votes`` rows as ``{candidate_id: [{day, counted, voided}]}``."""
    out = {}
    for row in rows:
        out.setdefault(row["candidate_id"], []).append(
            {"day": row["day"], "counted": int(row["counted"]), "voided": int(row["voided"])})
    for days in out.values():
        days.sort(key=lambda day: day["day"])
    return out


def compare_voided(incremental, rebuilt):
    """Voided votes per candidate that the two sides count differently (readable lines)."""
    ours, theirs = incremental.get("voided") or {}, rebuilt.get("voided") or {}
    return [f"voided.{cid}: incremental {ours.get(cid, 0)}, rebuilt {theirs.get(cid, 0)}"
            for cid in sorted(set(ours) | set(theirs)) if ours.get(cid, 0) != theirs.get(cid, 0)]


# --- standings, live and published -----------------------------------------------------------

def split_disqualified(live, published_ids):
    """After publication the published ranking stands: a candidate of it who is then
    disqualified keeps his place in the inputs (as standing) and is listed apart, to be
    skipped when the seats are filled again."""
    published_ids = set(published_ids)
    excluded = sorted(cid for cid, c in live["candidates"].items()
                      if cid in published_ids and c["status"] == DISQUALIFIED)
    candidates = {cid: (dict(c, status=ACCEPTED) if cid in excluded else c)
                  for cid, c in live["candidates"].items()}
    return dict(live, candidates=candidates), excluded


def live_standings(campaign, live):
    """``{category: (rows, shortfalls)}`` computed from the live inputs."""
    return {category: standings(campaign, live, category)
            for category in campaign_categories(campaign)}


def published_standings(campaign, ranked_rows, excluded, reasons=None):
    """``{category: (rows, shortfalls)}`` from the ranking frozen at publication, with the
    candidates disqualified since then skipped."""
    reasons = reasons or {}
    out = {}
    for category in campaign_categories(campaign):
        rows = [dict(row, disqualification_reason=reasons.get(row["candidate_id"],
                                                              row.get("disqualification_reason")))
                for row in ranked_rows.get(category, [])]
        out[category] = apply_selection(rows, campaign.category(category), excluded, category)
    return out


def seats_of(standings_by_category):
    """``{category: [[candidate_id, pool], ...]}`` of the selected (a storable selection)."""
    return {category: sorted([row["candidate_id"], row["pool"]]
                             for row in rows if row["status"] == SELECTED)
            for category, (rows, _) in standings_by_category.items()}


def shortfalls_of(standings_by_category):
    return [shortfall for _, (_, shortfalls) in standings_by_category.items()
            for shortfall in shortfalls]


def seat_changes(before, after):
    """Per category, who left the list and who moved up (see :func:`revision_changes`)."""
    changes = {}
    for category in sorted(set(before) | set(after)):
        change = revision_changes(dict(map(tuple, before.get(category, []))),
                                  dict(map(tuple, after.get(category, []))))
        if change["removed"] or change["promoted"]:
            changes[category] = change
    return changes


def annotate_promotions(rows, revisions):
    """Mark rows that moved up in a revision, and whom they replaced in their pool."""
    promoted = {}
    for revision in revisions:
        for change in (revision.get("changes") or {}).values():
            for moved in change["promoted"]:
                replaced = [gone["candidate_id"] for gone in change["removed"]
                            if gone["pool"] == moved["pool"]]
                promoted[moved["candidate_id"]] = (revision["revision"], replaced)
    out = []
    for row in rows:
        row = dict(row)
        if row["candidate_id"] in promoted and row["status"] == SELECTED:
            row["promoted_in_revision"], row["replaces"] = promoted[row["candidate_id"]]
        out.append(row)
    return out
