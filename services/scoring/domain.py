"""The rules of the panel review (集中評審), as plain functions (no I/O).

Each rule of the issue is one function here, named after it: the criteria a
score must meet, a judge's weighted total, recusal (回避), who is on a panel,
whether it is still open, its progress, and the panel score through the
campaign's method plugin. The service calls them between loading input and
writing.
"""
import math
import secrets
import unicodedata
from datetime import datetime, timedelta

from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH
from shared.errors import Forbidden, InvalidState, NotFound, PanelClosed, ValidationError
from shared.timeutil import iso, local_to_utc

#: A weighted total is kept to 4 decimals: 0.3 * 70 + 0.7 * 90 is 84, not 83.99999999999999.
TOTAL_DECIMALS = 4
PANEL_SCORE_DECIMALS = 4

SCORED, MISSING, RECUSED = "scored", "missing", "recused"
#: Why a judge may not score a candidate: the nominee's own unit or the unit that nominated it.
NOMINEE_UNIT, NOMINATING_UNIT = "nominee_unit", "nominating_unit"

#: Candidate statuses (copied from nomination events): only ``accepted`` is on the ballot, and
#: the others never come back (a withdrawn or disqualified candidate is a new nomination if any).
ACCEPTED = "accepted"


# --- identifiers ---------------------------------------------------------------------------

def panel_id(campaign_id, category):
    return f"{campaign_id}|{category}"


def score_key(candidate_id, judge_id):
    """The key of one judge's score of one candidate inside the panel document.

    Ids may contain ``.``, which MongoDB reads as a path, so it is escaped.
    """
    raw = f"{candidate_id}|{judge_id}"
    return raw.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def new_link_nonce():
    """Part of a judge's personal link; a new one makes the old link worthless."""
    return secrets.token_urlsafe(12)


# --- the campaign's rules ------------------------------------------------------------------

def check_category_run(campaign, category):
    """The category's rules; the campaign must run it."""
    if not isinstance(category, str) or campaign.category(category) is None:
        raise ValidationError({"category": [
            f"campaign {campaign.id} does not run category {category!r}; one of "
            f"{', '.join(sorted(campaign.categories))}"]})
    return campaign.category(category)


def score_range(criteria):
    """The range of a weighted total: the weighted minimums to the weighted maximums."""
    low = math.fsum(c["weight"] * c.get("min", 0) for c in criteria)
    high = math.fsum(c["weight"] * c["max"] for c in criteria)
    return round(low, TOTAL_DECIMALS), round(high, TOTAL_DECIMALS)


def valid_scores(criteria, scores):
    """``{criterion: number}`` with every criterion of the category, each within its range.

    A missing or unknown criterion, a non-number (a string, a bool, NaN,
    Infinity) or a number outside ``[min, max]`` is refused, every problem at once.
    """
    if not isinstance(scores, dict):
        raise ValidationError({"scores": [
            "must be an object {criterion: number} with "
            f"{', '.join(c['key'] for c in criteria)}"]})
    errors = {}
    known = {c["key"]: c for c in criteria}
    for key in scores:
        if key not in known:
            errors[f"scores.{key}"] = [
                f"unknown criterion; the criteria are {', '.join(known)}"]
    clean = {}
    for key, criterion in known.items():
        if key not in scores:
            errors[f"scores.{key}"] = [f"missing: every criterion needs a score ({criterion['name']})"]
            continue
        value = scores[key]
        low, high = criterion.get("min", 0), criterion["max"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors[f"scores.{key}"] = [f"must be a number from {low:g} to {high:g}"]
        elif not math.isfinite(value):
            errors[f"scores.{key}"] = [f"must be a finite number from {low:g} to {high:g}"]
        elif not low <= value <= high:
            errors[f"scores.{key}"] = [f"{value:g} is outside the range {low:g}–{high:g}"]
        else:
            clean[key] = value
    if errors:
        raise ValidationError(errors)
    return clean


def weighted_total(criteria, scores):
    """One judge's score of a candidate: the weighted sum of the criteria."""
    return round(math.fsum(c["weight"] * scores[c["key"]] for c in criteria), TOTAL_DECIMALS)


def panel_closes_at(campaign):
    """When the review is due to close (``panel_options.closes``), as UTC, or ``None``."""
    local = (campaign.document.get("panel_options") or {}).get("closes")
    return local_to_utc(datetime.fromisoformat(local), campaign.timezone) if local else None


def panel_options(campaign):
    return dict(campaign.document.get("panel_options") or {})


# --- the panel -----------------------------------------------------------------------------

def merge_judges(current, wanted, now):
    """The panel's new judge list: a judge kept keeps their link; a new judge gets a new one."""
    kept = {judge["judge_id"]: judge for judge in current}
    merged = []
    for judge in wanted:
        before = kept.get(judge["judge_id"])
        merged.append(dict(
            judge,
            nonce=before["nonce"] if before else new_link_nonce(),
            assigned_at=before["assigned_at"] if before else now,
        ))
    return merged


def judges_changed(current, merged):
    fields = ("judge_id", "name", "unit", "email", "mobile")
    return [{k: j.get(k) for k in fields} for j in current] != \
        [{k: j.get(k) for k in fields} for j in merged]


def newly_assigned(current, merged):
    """Judges of ``merged`` who had no link before (they are told of their assignment)."""
    before = {judge["nonce"] for judge in current}
    return [judge for judge in merged if judge["nonce"] not in before]


def public_judge(judge):
    """A judge as the audit trail and replies show them: no contact details."""
    return {"judge_id": judge["judge_id"], "name": judge["name"], "unit": judge["unit"],
            "has_contact": bool(judge.get("mobile") or judge.get("email"))}


def panel_member(panel, judge_id, category):
    """The judge's entry on the panel; ``Forbidden`` for anyone not on it."""
    for judge in (panel or {}).get("judges", []):
        if judge["judge_id"] == judge_id:
            return judge
    raise Forbidden(f"judge {judge_id} is not on the panel of category {category}")


def check_panel_open(panel):
    """After ``close_panel`` no score is taken or changed."""
    if panel and panel.get("closed"):
        raise PanelClosed(f"the panel of {panel['category']} in campaign {panel['campaign_id']} "
                          f"closed at {iso(panel['closed_at'])}; no more scores are taken")


def check_on_ballot(candidate, candidate_id):
    """Only a candidate on the ballot (accepted in review, not withdrawn or disqualified) is scored."""
    if candidate is None:
        raise NotFound(f"no candidate {candidate_id}")
    if candidate.get("status") != ACCEPTED:
        raise InvalidState(f"candidate {candidate_id} is {candidate.get('status')}, not on the "
                           "ballot; it cannot be scored")


def check_in_panel_category(candidate, panel):
    """A judge's link opens one panel: its candidates are of that campaign and category."""
    if (candidate["campaign_id"], candidate["category"]) != (panel["campaign_id"], panel["category"]):
        raise Forbidden(f"candidate {candidate['_id']} is not in the category of this panel "
                        f"({panel['category']})")


# --- recusal (回避) -------------------------------------------------------------------------

def unit_key(unit):
    """Units compare by name, ignoring width variants and white space."""
    return "".join(unicodedata.normalize("NFKC", unit or "").split())


def recusal_reason(judge, candidate):
    """Why ``judge`` may not score ``candidate`` (``None`` when they may)."""
    mine = unit_key(judge.get("unit"))
    if not mine:
        return None
    if mine == unit_key(candidate.get("nominee_unit")):
        return NOMINEE_UNIT
    if mine == unit_key(candidate.get("unit")):
        return NOMINATING_UNIT
    return None


def check_not_recused(judge, candidate):
    """A judge does not score a candidate of their own unit, nor one their unit nominated."""
    reason = recusal_reason(judge, candidate)
    if reason == NOMINEE_UNIT:
        raise Forbidden(f"judge {judge['judge_id']} is from {judge['unit']}, the unit of candidate "
                        f"{candidate['_id']}, and must recuse (回避)")
    if reason == NOMINATING_UNIT:
        raise Forbidden(f"judge {judge['judge_id']} is from {judge['unit']}, which nominated "
                        f"candidate {candidate['_id']}, and must recuse (回避)")


def recusals(panel, ballot):
    """Every (judge, candidate) pair of the panel that the judge may not score, and why."""
    return [{"judge_id": judge["judge_id"], "candidate_id": candidate["_id"], "reason": reason}
            for judge in panel.get("judges", []) for candidate in ballot
            for reason in [recusal_reason(judge, candidate)] if reason]


# --- scores --------------------------------------------------------------------------------

def score_record(candidate, judge_id, scores, total, comment, now, previous):
    return {
        "candidate_id": candidate["_id"], "judge_id": judge_id, "category": candidate["category"],
        "scores": scores, "total": total, "comment": comment, "submitted_at": now,
        "revision": (previous["revision"] + 1) if previous else 1,
    }


def stored_score(panel, candidate_id, judge_id):
    return (panel.get("scores") or {}).get(score_key(candidate_id, judge_id))


def score_fields(record):
    """What the audit trail keeps of a score (before -> after)."""
    if record is None:
        return None
    return {"scores": record["scores"], "total": record["total"], "comment": record.get("comment")}


def counted_scores(panel, ballot):
    """``{judge_id: {candidate_id: total}}``: the scores that make the panel score.

    Only judges on the panel now, candidates on the ballot, and pairs without a
    recusal count (a judge removed from the panel, or whose unit changed,
    keeps their stored scores in the audit trail but not in the result).
    """
    by_id = {candidate["_id"]: candidate for candidate in ballot}
    members = {judge["judge_id"]: judge for judge in panel.get("judges", [])}
    totals = {judge_id: {} for judge_id in members}
    for record in (panel.get("scores") or {}).values():
        judge = members.get(record["judge_id"])
        candidate = by_id.get(record["candidate_id"])
        if judge is None or candidate is None or recusal_reason(judge, candidate):
            continue
        totals[judge["judge_id"]][candidate["_id"]] = record["total"]
    return totals


def with_score(panel, record):
    """The panel as it is once ``record`` is stored (what ``save_score`` writes)."""
    scores = dict(panel.get("scores") or {})
    scores[score_key(record["candidate_id"], record["judge_id"])] = record
    return dict(panel, scores=scores, version=panel["version"] + 1)


def panel_scores(method, panel, ballot, criteria, options):
    """The panel score of every candidate on the ballot through the campaign's method plugin.

    A candidate that no judge could or did score gets ``None``.
    """
    result = method(counted_scores(panel, ballot), score_range(criteria), options)
    return {candidate["_id"]: (round(result[candidate["_id"]], PANEL_SCORE_DECIMALS)
                               if candidate["_id"] in result else None)
            for candidate in ballot}


def is_counted(record, panel, by_id):
    members = {judge["judge_id"]: judge for judge in panel.get("judges", [])}
    judge = members.get(record["judge_id"])
    candidate = by_id.get(record["candidate_id"])
    return bool(judge and candidate and not recusal_reason(judge, candidate))


# --- progress and the worksheet ------------------------------------------------------------

def pair_state(panel, judge, candidate):
    if recusal_reason(judge, candidate):
        return RECUSED
    return SCORED if stored_score(panel, candidate["_id"], judge["judge_id"]) else MISSING


def progress(panel, ballot):
    """Who has not scored whom: per judge and per candidate, with recusals."""
    judges, candidates = [], []
    counts = {SCORED: 0, MISSING: 0, RECUSED: 0}
    states = {(j["judge_id"], c["_id"]): pair_state(panel, j, c)
              for j in panel.get("judges", []) for c in ballot}
    for state in states.values():
        counts[state] += 1
    for judge in panel.get("judges", []):
        mine = {c["_id"]: states[(judge["judge_id"], c["_id"])] for c in ballot}
        judges.append(dict(public_judge(judge),
                           scored=sum(1 for s in mine.values() if s == SCORED),
                           missing=[cid for cid, s in mine.items() if s == MISSING],
                           recused=[cid for cid, s in mine.items() if s == RECUSED]))
    for candidate in ballot:
        theirs = {j["judge_id"]: states[(j["judge_id"], candidate["_id"])]
                  for j in panel.get("judges", [])}
        candidates.append({
            "candidate_id": candidate["_id"], "nominee_name": candidate["nominee_name"],
            "scored_by": [jid for jid, s in theirs.items() if s == SCORED],
            "missing": [jid for jid, s in theirs.items() if s == MISSING],
            "recused": [jid for jid, s in theirs.items() if s == RECUSED],
        })
    expected = counts[SCORED] + counts[MISSING]
    return {
        "campaign_id": panel["campaign_id"], "category": panel["category"],
        "closed": bool(panel.get("closed")), "closed_at": iso(panel.get("closed_at")),
        "judges": judges, "candidates": candidates,
        "counts": dict(counts, expected=expected,
                       complete=round(counts[SCORED] / expected, 4) if expected else 1.0),
    }


def criteria_reply(criteria):
    return [{"key": c["key"], "name": c["name"], "weight": c["weight"],
             "min": c.get("min", 0), "max": c["max"]} for c in criteria]


def worksheet(campaign, panel, judge, ballot):
    """A judge's own sheet: the candidates to score, their deeds, what is saved and missing."""
    criteria = campaign.criteria(panel["category"])
    rows = []
    for candidate in ballot:
        state = pair_state(panel, judge, candidate)
        record = stored_score(panel, candidate["_id"], judge["judge_id"]) if state == SCORED else None
        rows.append({
            "candidate_id": candidate["_id"], "nominee_name": candidate["nominee_name"],
            "nominee_unit": candidate["nominee_unit"], "nominating_unit": candidate["unit"],
            "org_type": candidate.get("org_type"),
            "org_type_name": ORG_TYPE_NAMES_ZH.get(candidate.get("org_type")),
            "deeds_summary": candidate["deeds_summary"], "state": state,
            "scores": record["scores"] if record else None,
            "total": record["total"] if record else None,
            "comment": record.get("comment") if record else None,
            "submitted_at": iso(record["submitted_at"]) if record else None,
        })
    closes = (campaign.document.get("panel_options") or {}).get("closes")
    return {
        "campaign_id": campaign.id, "campaign_name": campaign.name,
        "category": panel["category"], "category_name": CATEGORY_NAMES_ZH[panel["category"]],
        "closed": bool(panel.get("closed")), "closes_at": closes, "timezone": campaign.timezone,
        "judge": {"judge_id": judge["judge_id"], "name": judge["name"], "unit": judge["unit"]},
        "criteria": criteria_reply(criteria), "score_range": list(score_range(criteria)),
        "candidates": rows,
        "counts": {"candidates": len(rows),
                   **{state: sum(1 for r in rows if r["state"] == state)
                      for state in (SCORED, MISSING, RECUSED)}},
    }


def score_reply(record, counted=True):
    """One stored score as ``scores`` and ``submit`` return it."""
    return {"candidate_id": record["candidate_id"], "category": record["category"],
            "judge_id": record["judge_id"], "scores": record["scores"], "total": record["total"],
            "comment": record.get("comment"), "revision": record["revision"],
            "submitted_at": iso(record["submitted_at"]), "counted": counted}


def panel_reply(panel, links=None):
    """``assign_panel`` and ``close_panel`` answer with this."""
    reply = {
        "campaign_id": panel["campaign_id"], "category": panel["category"],
        "closed": bool(panel.get("closed")), "closed_at": iso(panel.get("closed_at")),
        "judges": [dict(public_judge(judge), **({"link": links[judge["judge_id"]]} if links else {}))
                   for judge in panel.get("judges", [])],
    }
    if panel.get("closed"):
        reply.update(method=panel["method"], panel_scores=panel["panel_scores"],
                     recusals=panel.get("recusals", []))
    return reply


# --- candidates (copied from nomination events) --------------------------------------------

# --- judge notices -------------------------------------------------------------------------

ASSIGNMENT, REMINDER = "judge_assignment", "judge_reminder"


def notice_key(template, panel, judge, send=1):
    """One message per template, panel, link and send: also the notification idempotency key.

    The first send of a link keeps the key it always had; each resend (``send_links``) is
    numbered, so it is a new message for the notification service and not a duplicate.
    """
    key = f"{template}|{panel['_id']}|{judge['judge_id']}|{judge['nonce']}"
    return key if send == 1 else f"{key}|{send}"


def notice_channel(judge):
    """SMS to the judge's mobile, else e-mail; ``None`` when neither is known."""
    if judge.get("mobile"):
        return "sms", judge["mobile"]
    if judge.get("email"):
        return "email", judge["email"]
    return None


def reminder_due(closes_at, now, lead):
    """Remind within ``lead`` before the announced close (and not after it)."""
    return closes_at is not None and closes_at - lead <= now < closes_at


def judges_to_remind(panel, ballot):
    """Judges with contact details and at least one candidate left to score."""
    return [judge for judge in panel.get("judges", [])
            if notice_channel(judge)
            and any(pair_state(panel, judge, c) == MISSING for c in ballot)]


def notice_params(campaign, panel, judge, link):
    closes = (campaign.document.get("panel_options") or {}).get("closes")
    return {
        "judge_name": judge["name"], "campaign_name": campaign.name,
        "category_name": CATEGORY_NAMES_ZH[panel["category"]], "link": link,
        "closes_at": closes.replace("T", " ")[:16] if closes else "另行通知",
    }


def retry_delay(attempts):
    """Back off one minute per failed attempt, at most an hour."""
    return timedelta(minutes=min(60, attempts))


# --- sending links again, renewing them ----------------------------------------------------

#: A second send (or renewal) of one judge's link asked for within this window is taken for a
#: double click or a resent form, and does nothing: a real resend waits a minute.
RESEND_WINDOW = timedelta(seconds=60)

#: A judge's last notice as ``progress`` and ``send_links`` show it.
NOTICE_QUEUED, NOTICE_SENT, NOTICE_FAILED, NOTICE_SKIPPED = "queued", "sent", "failed", "skipped"
NO_CONTACT, NOT_SENT = "no_contact", "not_sent"
#: Why ``send_links`` queued nothing for a judge.
SENT_MOMENTS_AGO = "sent_moments_ago"


def chosen_judges(panel, judge_ids):
    """The judges a send names, in the panel's order: every judge when ``judge_ids`` is ``None``."""
    judges = panel.get("judges", [])
    if judge_ids is None:
        return list(judges)
    known = {judge["judge_id"] for judge in judges}
    unknown = [judge_id for judge_id in judge_ids if judge_id not in known]
    if unknown:
        raise ValidationError({"judge_ids": [
            f"not on the panel of {panel['category']}: {', '.join(unknown)}"]})
    wanted = set(judge_ids)
    return [judge for judge in judges if judge["judge_id"] in wanted]


def renew_links(judges, judge_ids, now, window=RESEND_WINDOW):
    """The panel's judges with a new link nonce for each of ``judge_ids``; and who was renewed.

    A judge renewed within ``window`` keeps the link just made (a double click must not
    make the link that was just sent worthless too).
    """
    renewed, out = [], []
    for judge in judges:
        last = judge.get("link_renewed_at")
        if judge["judge_id"] in judge_ids and (last is None or now - last >= window):
            judge = dict(judge, nonce=new_link_nonce(), link_renewed_at=now)
            renewed.append(judge["judge_id"])
        out.append(judge)
    return out, renewed


def link_notices(notices, judge):
    """The notices of the judge's current link, oldest first."""
    return sorted((n for n in notices
                   if n["judge_id"] == judge["judge_id"] and n["nonce"] == judge["nonce"]),
                  key=lambda n: (n["created_at"], n["_id"]))


def next_send(notices, now, window=RESEND_WINDOW):
    """The number of the next assignment notice of a link, or ``None`` if one was just asked for.

    ``notices`` are the link's (``link_notices``). Two sends racing compute the same number,
    hence the same key, and the store queues that key once. A send that failed or was skipped
    does not hold the next one back: that resend is what the department wants.
    """
    sent = [n for n in notices if n["template"] == ASSIGNMENT]
    if sent and sent[-1]["status"] in ("pending", "sent") \
            and now - sent[-1]["created_at"] < window:
        return None
    return len(sent) + 1


def mask_contact(text, judge):
    """``text`` without the judge's mobile or e-mail (a refusal may quote the recipient)."""
    for value in (judge.get("mobile"), judge.get("email")):
        if text and value:
            text = text.replace(value, "***")
    return text


def notice_state(judge, notices):
    """The judge's last notice: ``{state, template, at, detail, attempts}`` (no contact details).

    ``state`` is ``queued`` (waiting, perhaps after failed attempts), ``sent`` (handed to the
    notification service), ``failed`` (given up), ``skipped`` (not sent: the link changed or
    the service only logs), ``no_contact`` or ``not_sent`` (never asked for).
    """
    if not notice_channel(judge):
        return {"state": NO_CONTACT, "template": None, "at": None, "detail": None, "attempts": 0}
    if not notices:
        return {"state": NOT_SENT, "template": None, "at": None, "detail": None, "attempts": 0}
    last = notices[-1]
    state = {"pending": NOTICE_QUEUED, "sent": NOTICE_SENT, "failed": NOTICE_FAILED,
             "skipped": NOTICE_SKIPPED}.get(last["status"], last["status"])
    return {"state": state, "template": last["template"],
            "at": iso(last.get("done_at") or last["created_at"]),
            "detail": mask_contact(last.get("detail"), judge), "attempts": last.get("attempts", 0)}


def link_row(judge, link, notices, queued, renewed, reason):
    """One judge in the ``send_links`` reply: the link, and what happened to its message."""
    channel = notice_channel(judge)
    return dict(public_judge(judge), link=link, channel=channel[0] if channel else None,
                queued=queued, renewed=renewed, not_queued_reason=reason,
                notice=notice_state(judge, notices))


def with_notices(report, panel, notices):
    """A ``progress`` report with each judge's last notice (for admins)."""
    members = {judge["judge_id"]: judge for judge in panel.get("judges", [])}
    for row in report["judges"]:
        judge = members[row["judge_id"]]
        row["notice"] = notice_state(judge, link_notices(notices, judge))
    return report
