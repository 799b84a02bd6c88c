"""票數清零: voiding counted votes with a reason, and restoring them, as plain rules.

No nameko, no pymongo: what a selector matches, what a void is called, the
per-candidate and per-day counts its events carry, and what a receipt says.
"""
import hashlib
import ipaddress
import json
from collections import defaultdict

from shared.errors import InvalidState, NotFound
from shared.timeutil import as_utc, iso

VOIDING = "voiding"    # votes being marked (a crash here is completed by the sweep)
VOIDED = "voided"
RESTORED = "restored"


def check_not_published(campaign_id, publication):
    """After 公示 the list stands on the votes it was computed from: no void, no restore."""
    if publication is not None:
        raise InvalidState(f"the list of campaign {campaign_id} was published (revision "
                           f"{publication.get('revision')}): votes can no longer be voided "
                           "or restored")


def selector_key(campaign_id, selector):
    """The same selector, whatever order or spelling it came in: a repeated call's key."""
    canonical = {key: (iso(value) if key in ("from", "to") else
                       sorted(set(value)) if key == "vote_ids" else value)
                 for key, value in selector.items()}
    text = json.dumps({"campaign_id": campaign_id, "selector": canonical}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def void_id_for(key, generation):
    """A void's id: its selector's key and how many voids of it came before (restored ones)."""
    return f"void-{key}-{generation + 1}"


def selector_query(campaign_id, selector):
    """The store query for a selector, all but the network (matched by :func:`in_network`)."""
    query = {"campaign_id": campaign_id, "void_id": None}
    if "vote_ids" in selector:
        query["vote_id"] = {"$in": sorted(set(selector["vote_ids"]))}
    if "candidate_id" in selector:
        query["candidate_id"] = selector["candidate_id"]
    times = {}
    if "from" in selector:
        times["$gte"] = selector["from"]
    if "to" in selector:
        times["$lt"] = selector["to"]
    if times:
        query["cast_at"] = times
    return query


def in_network(ip_net, network):
    """Does a vote's kept network (/24, /48) lie inside the selector's network?"""
    if network is None:
        return True
    try:
        return ipaddress.ip_network(ip_net).subnet_of(ipaddress.ip_network(network))
    except (ValueError, TypeError):
        return False  # an IPv4 net inside an IPv6 selector or the other way round


def selected(records, selector):
    """The records a selector takes (the store has already applied the rest of it)."""
    network = selector.get("network")
    return [record for record in records if in_network(record.get("ip_net"), network)]


def unknown_vote_ids(selector, found_ids):
    """Vote ids named in the selector that are no vote of the campaign (a typo in a file)."""
    return sorted(set(selector.get("vote_ids") or ()) - set(found_ids))


def nothing_to_void(campaign_id):
    return NotFound(f"no counted vote of campaign {campaign_id} matches the selector "
                    "(votes already voided are not voided twice)")


def counts_of(records):
    """Per candidate and local day (the campaign's zone, as stored): the events' ``counts``."""
    counts = defaultdict(int)
    for record in records:
        counts[record["candidate_id"], record["category"], record["day"]] += 1
    return [{"candidate_id": cid, "category": category, "day": day, "votes": n}
            for (cid, category, day), n in sorted(counts.items())]


def void_reply(void):
    return {"void_id": void["_id"], "voided": void.get("voided", 0)}


def void_view(void):
    """A void as the department reads it (the fraud ledger, the CLI)."""
    selector = {key: (iso(value) if key in ("from", "to") else value)
                for key, value in (void.get("selector") or {}).items()}
    restore = void.get("restore") or {}
    return {"void_id": void["_id"], "campaign_id": void["campaign_id"],
            "state": void["state"], "reason": void["reason"], "selector": selector,
            "voided": void.get("voided", 0), "counts": void.get("counts") or [],
            "by": void.get("by"), "at": iso(void.get("at")),
            "restored_at": iso(restore.get("at")), "restore_reason": restore.get("reason"),
            "restored_by": restore.get("by")}


def check_restorable(void):
    if void is None:
        raise NotFound("no such void")
    if void["state"] == RESTORED:
        raise InvalidState(f"void {void['_id']} was already restored: its votes count again")
    if void["state"] != VOIDED:
        raise InvalidState(f"void {void['_id']} is still being applied; try again in a moment")


def receipt_status(record, void, candidate):
    """What a receipt says: counted, voided (when and why) or for a disqualified candidate."""
    if void is not None and record.get("void_id"):
        return {"counted": False, "status": VOIDED,
                "void": {"void_id": void["_id"], "reason": void["reason"],
                         "at": iso(as_utc(void["at"]))},
                "disqualification_reason": None}
    if candidate and candidate.get("status") == "disqualified":
        return {"counted": False, "status": "candidate_disqualified", "void": None,
                "disqualification_reason": candidate.get("disqualification_reason")}
    return {"counted": True, "status": "counted", "void": None, "disqualification_reason": None}
