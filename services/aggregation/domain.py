"""The rules of 加權統分 and the publicity list (公示名單), as plain functions (no I/O).

Inputs arrive as a plain ``live`` mapping, built either from the service's own
store (incremental) or from the other services' records (rebuild)::

    {"candidates": {candidate_id: {candidate_id, category, org_type, nominee_name,
                                   nominee_unit, submitted_at, status, disqualification_reason}},
     "votes": {candidate_id: count},          # counted: voided votes left out
     "voided": {candidate_id: count},         # 票數清零: voided votes, shown beside
     "judge_scores": {candidate_id: {judge_id: weighted total}},
     "panels": {category: {"closed": bool, "method": str, "panel_scores": {candidate_id: score}}}}

``status`` is ``accepted`` (standing) or ``disqualified``; nominations in any other
state are not candidates and are left out by whoever builds ``live``.
"""
import functools
import hashlib
import json
import math
from dataclasses import dataclass

from shared import plugins
from shared.campaign import CATEGORIES, ORG_TYPES
from shared.errors import InvalidState
from shared.timeutil import parse_iso

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
#: Digits kept for scores: comparisons, replies and the hash all use this precision.
SCORE_DIGITS = 6
#: Names the hash recipe, so a future change of recipe cannot be mistaken for this one.
HASH_RECIPE = "pingxuan-aggregation-inputs-v1"
WEIGHT_TOLERANCE = 1e-9


# --- time and ordering -------------------------------------------------------------------

def canonical_time(value):
    """An instant as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width: sorts as it happened)."""
    moment = parse_iso(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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

def rounded(value):
    return None if value is None else round(value, SCORE_DIGITS)


def composite(w_public, w_panel, vote_score, panel_score):
    """加權統分: ``w_public × vote_score + w_panel × panel_score``, rounded to 6 decimals."""
    return round(w_public * vote_score + w_panel * panel_score, SCORE_DIGITS)


def vote_scores(campaign, votes_by_candidate):
    """The category's vote scores (0–100) by the campaign's normalisation method."""
    if not votes_by_candidate:
        return {}
    return normaliser(campaign)(dict(votes_by_candidate))


def panel_scores(campaign, category, panel, judge_scores, candidate_ids):
    """Final panel scores once the panel is closed; provisional ones (the campaign's method
    over the judges' totals so far) while it is open."""
    if panel and panel.get("closed"):
        final = panel.get("panel_scores") or {}
        return {cid: final.get(cid) for cid in candidate_ids}
    by_judge = {}
    for cid in candidate_ids:
        for judge_id, total in (judge_scores.get(cid) or {}).items():
            by_judge.setdefault(judge_id, {})[cid] = total
    provisional = panel_method(campaign)(
        by_judge, score_range(campaign, category), campaign.document.get("panel_options") or {})
    return {cid: provisional.get(cid) for cid in candidate_ids}


def current_judge_scores(score_records, panels):
    """Each judge's latest total per candidate, ignoring scores given after the panel closed.

    ``score_records``: ``{candidate_id, category, judge_id, total, order_key}``
    (one per ``score_submitted`` event, in any order). A resend before the close
    replaces the earlier score; anything after the close is not a score.
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
        result.setdefault(cid, {})[judge_id] = record["total"]
    return result


def after_close(panel, key):
    """Whether an event ordered by ``key`` happened after its category's panel closed."""
    return bool(panel) and panel.get("closed", True) and key > panel["closed_key"]


# --- ranking -----------------------------------------------------------------------------

def tie_rule_key(row):
    """The documented order: composite (high first), then panel score (high first), then the
    earlier submission, then the candidate id (so the order is total and reproducible)."""
    return (-row["composite"], -row["panel_score"], row["submitted_at"], row["candidate_id"])


def rank_category(campaign, category, live):
    """Every candidate of ``category`` as a results row, in ranked order.

    Standing (accepted) candidates with a panel score are ranked by
    :func:`tie_rule_key`; standing ones without a panel score follow, unranked
    (they cannot be selected); disqualified ones come last. Votes are
    normalised over the standing candidates only: a disqualified candidate's
    votes move nobody.
    """
    w_public, w_panel = weights(campaign)
    members = [c for c in live["candidates"].values() if c["category"] == category]
    standing = [c for c in members if c["status"] == ACCEPTED]
    votes = live.get("votes") or {}
    standing_ids = [c["candidate_id"] for c in standing]
    v_scores = vote_scores(campaign, {cid: votes.get(cid, 0) for cid in standing_ids})
    p_scores = panel_scores(campaign, category, (live.get("panels") or {}).get(category),
                            live.get("judge_scores") or {}, standing_ids)
    scored, unscored, disqualified = [], [], []
    for candidate in members:
        cid = candidate["candidate_id"]
        row = candidate_row(candidate, votes.get(cid, 0))
        row["voided_votes"] = int((live.get("voided") or {}).get(cid, 0))
        if candidate["status"] != ACCEPTED:
            disqualified.append(row)
            continue
        row["vote_score"] = rounded(v_scores.get(cid, 0.0))
        panel = p_scores.get(cid)
        if panel is None or not math.isfinite(panel):
            unscored.append(row)
            continue
        row["panel_score"] = rounded(panel)
        row["composite"] = composite(w_public, w_panel, v_scores.get(cid, 0.0), panel)
        scored.append(row)
    scored.sort(key=tie_rule_key)
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
        "rank": None, "pool": None, "pool_rank": None, "status": None,
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
    if unresolved_orphans:
        raise InvalidState(
            f"votes or scores arrived for candidates aggregation does not know "
            f"({', '.join(sorted(unresolved_orphans)[:5])}); their nominations have not been "
            "received: run rebuild to compare with the other services' records")


def check_finalizable(campaign, phase):
    if phase != PUBLISHED:
        raise InvalidState(f"the list of campaign {campaign.id} is {phase}; only a published "
                           "list can be approved (finalized)")


# --- the inputs hash -----------------------------------------------------------------------

def number(value):
    """A score in the hash: a decimal string with 6 decimals (any language prints it alike)."""
    return None if value is None else f"{value:.{SCORE_DIGITS}f}"


def inputs_document(campaign, live, disqualified_after_publish=()):
    """Everything the list is computed from, in the hash recipe's shape (README: "The hash")."""
    w_public, w_panel = weights(campaign)
    votes = live.get("votes") or {}
    judges = live.get("judge_scores") or {}
    panels = live.get("panels") or {}
    categories = {}
    for category in campaign_categories(campaign):
        rules = campaign.category(category)
        members = {cid: c for cid, c in live["candidates"].items() if c["category"] == category}
        panel = panels.get(category) or {}
        closed = bool(panel.get("closed"))
        final = panel.get("panel_scores") or {}
        categories[category] = {
            "award_slots": rules["award_slots"],
            "org_type_slots": dict(sorted((rules.get("org_type_slots") or {}).items())),
            "panel": {"closed": closed,
                      "panel_scores": ({cid: number(final.get(cid)) for cid in members}
                                       if closed else {})},
            "candidates": {cid: {
                "org_type": c.get("org_type"),
                "submitted_at": canonical_time(c["submitted_at"]),
                "status": c["status"],
                "votes": int(votes.get(cid, 0)),
                "judge_scores": {judge: number(total)
                                 for judge, total in (judges.get(cid) or {}).items()},
            } for cid, c in members.items()},
        }
    return {
        "recipe": HASH_RECIPE,
        "campaign_id": campaign.id,
        "weights": {"public": number(w_public), "panel": number(w_panel)},
        "vote_normalisation": campaign.document["vote_normalisation"],
        "panel_method": campaign.document["panel_method"],
        "panel_options": campaign.document.get("panel_options") or {},
        "categories": categories,
        "disqualified_after_publish": sorted(disqualified_after_publish),
    }


def canonical_json(document):
    """UTF-8 JSON with sorted keys and no spaces: the bytes the hash is taken over."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"), allow_nan=False).encode("utf-8")


def inputs_hash(document):
    return hashlib.sha256(canonical_json(document)).hexdigest()


def live_from_inputs(document):
    """The ``live`` mapping back from an inputs document (to recompute a published list)."""
    candidates, votes, judges, panels = {}, {}, {}, {}
    for category, data in document["categories"].items():
        for cid, c in data["candidates"].items():
            candidates[cid] = {"candidate_id": cid, "category": category,
                               "org_type": c["org_type"], "submitted_at": c["submitted_at"],
                               "status": c["status"]}
            votes[cid] = c["votes"]
            judges[cid] = {judge: float(total) for judge, total in c["judge_scores"].items()}
        panels[category] = {
            "closed": data["panel"]["closed"],
            "panel_scores": {cid: (None if score is None else float(score))
                             for cid, score in data["panel"]["panel_scores"].items()}}
    return {"candidates": candidates, "votes": votes, "judge_scores": judges, "panels": panels}


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


# --- candidates from events and records ------------------------------------------------------

def candidate_facts(event, candidate_id=None):
    """What a nomination event tells of a candidate (never contact details)."""
    status = event["status"]
    return {
        "candidate_id": candidate_id or event["nomination_id"],
        "category": event["category"], "org_type": event.get("org_type"),
        "nominee_name": event["nominee_name"], "nominee_unit": event.get("nominee_unit"),
        "submitted_at": canonical_time(event["submitted_at"]),
        "candidate_status": status,
        "disqualification_reason": event.get("reason") if status == DISQUALIFIED else None,
    }


def candidate_from_record(record):
    """The same facts from a ``nomination.list`` / ``nomination.get`` record."""
    status = record["status"]
    disqualification = record.get("disqualification") or {}
    return {
        "candidate_id": record["id"], "category": record["category"],
        "org_type": record.get("org_type"), "nominee_name": record["nominee_name"],
        "nominee_unit": record.get("nominee_unit"),
        "submitted_at": canonical_time(record["submitted_at"]),
        "candidate_status": status,
        "disqualification_reason": (disqualification.get("reason") if status == DISQUALIFIED
                                    else None),
    }


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


def live_from_records(records, vote_counts, scores_reply, voided_counts=None):
    """The ``live`` mapping from the other services' records (the rebuild's side).

    ``records``: validated ``nomination.list`` rows; ``vote_counts``: votes per
    candidate from ``voting.votes_page``; ``scores_reply``: ``scoring.scores``.
    Votes and scores for ids that are not candidates are left out, as the
    incremental state leaves out its orphans.
    """
    candidates = {}
    for record in records:
        facts = candidate_from_record(record)
        if facts["candidate_status"] not in CANDIDATE_STATES:
            continue
        candidates[facts["candidate_id"]] = {
            "candidate_id": facts["candidate_id"], "category": facts["category"],
            "org_type": facts["org_type"], "nominee_name": facts["nominee_name"],
            "nominee_unit": facts["nominee_unit"], "submitted_at": facts["submitted_at"],
            "status": facts["candidate_status"],
            "disqualification_reason": facts["disqualification_reason"]}
    judge_scores = {}
    for score in scores_reply["scores"]:
        if score["candidate_id"] in candidates:
            judge_scores.setdefault(score["candidate_id"], {})[score["judge_id"]] = score["total"]
    panels = {category: {"closed": True, "method": panel.get("method"),
                         "panel_scores": dict(panel.get("panel_scores") or {})}
              for category, panel in (scores_reply.get("panels") or {}).items()
              if panel.get("closed")}
    voided_counts = voided_counts or {}
    return {"candidates": candidates,
            "votes": {cid: vote_counts.get(cid, 0) for cid in candidates},
            "voided": {cid: voided_counts.get(cid, 0) for cid in candidates},
            "judge_scores": judge_scores, "panels": panels}


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
