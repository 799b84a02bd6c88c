"""Objections (異議) during 公示: the pure rules (no nameko, no pymongo).

An objection is taken against a candidate on the current list while the 公示 period of the
revision that put that candidate on the list runs; it is ``received`` until an admin decides
``upheld`` (the candidate is disqualified and the next one moves up) or ``rejected``.
"""
import base64
import hashlib
import hmac

from shared.errors import DeadlinePassed, InvalidState, NotFound, ValidationError
from shared.one_time_codes import OTP_MAX_PER_IP_PER_HOUR
from shared.timeutil import iso
from shared.workdays import UnknownYear, publicity_period
from services.aggregation import domain

RECEIVED = "received"
UPHELD = "upheld"
REJECTED = "rejected"
STATUSES = (RECEIVED, UPHELD, REJECTED)
VERDICTS = (UPHELD, REJECTED)
#: How an objection came in: an admin typing a letter, visit or call; a trusted front end;
#: the public 公示 page.
CHANNELS = ("admin", "frontend", "page")
#: The approved SMS template of the verdict notice (services/notification/templates/).
VERDICT_TEMPLATE = "objection_verdict"
VERDICT_ZH = {UPHELD: "经核实，异议成立", REJECTED: "经核实，异议不成立"}
#: Verdict notices not accepted by notification are tried again this many times (sweep).
NOTICE_ATTEMPTS = 20


def code_ip_limit(campaign):
    """Code requests one address may make per hour: the campaign's
    ``publicity.code_ip_limit``, else the voting page's default."""
    return ((campaign.document.get("publicity") or {}).get("code_ip_limit")
            or OTP_MAX_PER_IP_PER_HOUR)


def mobile_hash(key, mobile):
    """The objector's mobile as a keyed hash: what is kept once the verdict notice is sent."""
    return hmac.new(key.encode("utf-8"), f"mobile|{mobile}".encode("utf-8"),
                    hashlib.sha256).hexdigest()


def objection_id(key, campaign_id, candidate_id, mobile, name, grounds):
    """Same objector, candidate and grounds → the same id (idempotent lodging); not guessable,
    since the id is also the receipt number that opens the objection's status page."""
    text = "|".join([campaign_id, candidate_id, mobile, name, grounds])
    mac = hmac.new(key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()
    return "obj-" + base64.b32encode(mac[:10]).decode("ascii").lower()


def revision_on_list_since(revisions, candidate_id):
    """The revision that put the candidate on the current list, or ``None`` if not on it.

    A candidate of the original list is there since revision 1; one who moved up since the
    revision that promoted it: its 公示 period is that revision's.
    """
    since = None
    for entry in revisions:
        on_list = any(cid == candidate_id for seats in entry["seats"].values()
                      for cid, _ in seats)
        if on_list and since is None:
            since = entry["revision"]
        elif not on_list:
            since = None
    return since


def revision_entry(revisions, number):
    return next(entry for entry in revisions if entry["revision"] == number)


def period_of(campaign, entry):
    """``(last_day, ends_at)`` of a revision's 公示, or ``None`` without ``publicity``.

    A year the holiday calendar does not know is refused, never guessed.
    """
    working_days = campaign.publicity_working_days
    if working_days is None:
        return None
    try:
        return publicity_period(entry["at"], working_days, campaign.timezone)
    except UnknownYear as exc:
        raise InvalidState(f"publicity.working_days of campaign {campaign.id}: {exc}")


def check_objection_accepted(campaign, state, candidate_id, now):
    """May an objection against this candidate be lodged now? Returns the revision it is
    against. Before publication → InvalidState; not on the list → NotFound; after the
    candidate's 公示 period or after 審定 → DeadlinePassed."""
    if state["phase"] == domain.OPEN:
        raise InvalidState(f"the list of campaign {campaign.id} has not been published yet; "
                           "objections are taken during 公示")
    if state["phase"] == domain.FINALIZED:
        raise DeadlinePassed(f"the list of campaign {campaign.id} has been finalized; the 公示 "
                             "period is over")
    revisions = state.get("revisions") or []
    since = revision_on_list_since(revisions, candidate_id)
    if since is None:
        raise NotFound(f"candidate {candidate_id} is not on the published list of campaign "
                       f"{campaign.id}")
    period = period_of(campaign, revision_entry(revisions, since))
    if period is not None and now >= period[1]:
        raise DeadlinePassed(f"the 公示 period of revision {since} of campaign {campaign.id} "
                             f"ended on {period[0].isoformat()}; objections to candidate "
                             f"{candidate_id} are no longer taken")
    return since


def check_finalizable_after_publicity(campaign, state, open_objections, now):
    """審定 waits for every objection's verdict and for the latest revision's 公示 to end."""
    if open_objections:
        raise InvalidState(f"{open_objections} objection(s) to the list of campaign "
                           f"{campaign.id} await a verdict; resolve them before finalizing")
    revisions = state.get("revisions") or []
    if not revisions:
        return
    period = period_of(campaign, revisions[-1])
    if period is not None and now < period[1]:
        raise InvalidState(f"the 公示 period of revision {revisions[-1]['revision']} of "
                           f"campaign {campaign.id} runs until {period[0].isoformat()} "
                           "(inclusive); the list can be finalized after it")


def check_resolvable(objection):
    """A verdict is given once."""
    if objection["status"] != RECEIVED:
        raise InvalidState(f"objection {objection['_id']} was already decided "
                           f"({objection['status']}); a verdict is given once")


def check_verdict(verdict):
    if verdict not in VERDICTS:
        raise ValidationError({"verdict": ["must be upheld or rejected"]})
    return verdict


def disqualification_reason(objection, reason):
    """What nomination records as the reason: the verdict's reason, naming the objection."""
    return f"异议成立（回执编号{objection['_id']}）：{reason}"


def verdict_notice_params(campaign, objection, nominee_name):
    """The verdict SMS's parameters (an approved template: parameters, never free text)."""
    return {"campaign_name": campaign.name, "receipt": objection["_id"],
            "nominee_name": nominee_name, "verdict": VERDICT_ZH[objection["status"]]}


def admin_row(objection, nominee_name):
    """An objection as ``objections`` lists it (admins only: the objector is in it)."""
    objector = objection["objector"]
    return {"objection_id": objection["_id"], "campaign_id": objection["campaign_id"],
            "candidate_id": objection["candidate_id"], "nominee_name": nominee_name,
            "category": objection["category"], "status": objection["status"],
            "grounds": objection["grounds"], "received_at": iso(objection["received_at"]),
            "revision": objection["revision"], "channel": objection["channel"],
            "verdict": objection.get("verdict"), "reason": objection.get("reason"),
            "resolved_at": iso(objection.get("resolved_at")),
            "resolved_by": objection.get("resolved_by"),
            "objector": {"name": objector["name"], "mobile": objector.get("mobile"),
                         "mobile_kept": objector.get("mobile") is not None},
            "notice": objection.get("notice")}


def public_status(objection, nominee_name):
    """What the objector's status page shows: no name, no mobile, no grounds."""
    return {"objection_id": objection["_id"], "candidate_id": objection["candidate_id"],
            "nominee_name": nominee_name, "status": objection["status"],
            "received_at": iso(objection["received_at"]), "verdict": objection.get("verdict"),
            "reason": objection.get("reason"), "resolved_at": iso(objection.get("resolved_at"))}
