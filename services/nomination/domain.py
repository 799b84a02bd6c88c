"""The rules of unit nomination and preliminary review, as plain functions (no I/O).

Each rule of SPEC.md that concerns a nomination is one function here, named
after the rule. The service calls them between loading input and writing.
"""
import hashlib
import json
import uuid
from datetime import timedelta
from dataclasses import dataclass

from marshmallow import ValidationError as SchemaError

from shared.auth import SERVICE_ROLE
from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH
from shared.errors import (DeadlinePassed, Conflict, Forbidden, InvalidState, ValidationError)
from shared.timeutil import iso, local_day
from shared.validation import require_id
from services.nomination.schemas import IMMUTABLE_FIELDS, Nomination

SUBMITTED = "submitted"
ACCEPTED = "accepted"      # on the ballot: a candidate
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
DISQUALIFIED = "disqualified"
STATUSES = (SUBMITTED, ACCEPTED, REJECTED, WITHDRAWN, DISQUALIFIED)

#: Statuses that hold an intake slot: a nomination received counts against the
#: cap whatever its review says; only a withdrawal gives the slot back.
HOLDS_SLOT = (SUBMITTED, ACCEPTED, REJECTED, DISQUALIFIED)

#: Record keys that are bookkeeping, never part of a reply.
PRIVATE_KEYS = ("_id", "outbox", "fingerprint", "slots", "version")


def new_nomination_id():
    return f"nom-{uuid.uuid4().hex[:20]}"


def fingerprint(nomination):
    """A digest of a submission's content, to tell a resend from a different nomination."""
    canonical = json.dumps(nomination, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def resend_of(existing, submitted_fingerprint):
    """``submit`` is idempotent on (unit, client_ref): same content -> same record, else Conflict."""
    if existing["fingerprint"] != submitted_fingerprint:
        raise Conflict(
            f"client_ref '{existing['client_ref']}' was already used by this unit for a "
            f"different nomination ({existing['_id']}); use a new client_ref or amend that one")
    return existing


def deadline_passed(campaign, now):
    """The deadline is the last second on time: ``now > deadline`` is late."""
    return now > campaign.nomination_deadline


def check_before_deadline(campaign, now, action):
    """逾期未報者視為棄權: after the deadline a nomination is refused, not queued.

    Callers check it before they validate any field: a late unit must learn it is
    late, not that a field is wrong and worth correcting.
    """
    if deadline_passed(campaign, now):
        raise late(campaign, action)


def late(campaign, action):
    """The refusal of a call after the deadline, naming the deadline in the campaign's zone."""
    local = campaign.document["nomination"]["deadline"].replace("T", " ")
    return DeadlinePassed(
        f"cannot {action}: the nomination deadline of campaign {campaign.id} "
        f"({local}, {campaign.timezone}) has passed; late nominations are refused")


def campaign_id_of(submission):
    """The campaign a submission is for, read before any other field (its deadline comes first)."""
    if not isinstance(submission, dict):
        raise ValidationError({"nomination": ["must be an object"]})
    return require_id(submission.get("campaign_id"), "campaign_id")


def client_ref_of(submission):
    """The submission's ``client_ref`` as sent, when it is a plain string (else ``None``)."""
    value = submission.get("client_ref")
    return value if isinstance(value, str) else None


def late_submission(existing, submission, campaign):
    """After the deadline only a resend of a nomination filed in time is answered.

    A resend of the same content returns the record (idempotency outlives the
    deadline); anything else -- new, changed or malformed -- is refused as late.
    """
    if existing is not None:
        try:
            if existing["fingerprint"] == fingerprint(Nomination().load(submission)):
                return existing
        except SchemaError:
            pass  # malformed content cannot be a resend
    raise late(campaign, "submit")


def check_signed_not_in_future(signed, campaign, now, field):
    """A 推薦表 or an opinion cannot be signed on a day that has not yet come in the campaign's zone.

    "Today" is the campaign's local day at the service clock (the rehearsal clock
    too), so a form dated today in Asia/Shanghai is taken at 00:30 there, and a
    form dated tomorrow is refused whatever the server's own zone says.
    """
    today = local_day(now, campaign.timezone)
    if signed and signed > today:
        raise ValidationError({field: [
            f"must not be in the future: today is {today} in the campaign's time zone "
            f"({campaign.timezone})"]})


def check_unit_may_nominate(campaign, unit):
    """When the campaign lists its nominating units, only they may nominate."""
    if campaign.units and unit not in campaign.units:
        raise Forbidden(f"unit '{unit}' is not a nominating unit of campaign {campaign.id}")


def check_category_run(campaign, category):
    if campaign.category(category) is None:
        raise ValidationError({"category": [
            f"campaign {campaign.id} does not run category {category}"]})


@dataclass(frozen=True)
class IntakeSlot:
    """One cap a nomination must fit under: the county-wide category cap or an org-type cap."""

    key: str
    cap: int
    label: str


#: How long a claimed intake slot may wait for its nomination to be stored before a full cap
#: takes it back: far longer than a submit takes (an RPC times out well before).
SLOT_CLAIM_GRACE = timedelta(minutes=2)


def stale_holders(claims, records, key, now):
    """The holders of slot ``key`` to give back: claimed more than ``SLOT_CLAIM_GRACE`` ago
    and without a stored nomination that holds this slot (its submit died between claim and
    insert, or a withdrawal or amendment died before releasing it)."""
    stale = []
    for holder, since in claims.items():
        if since is not None and now - since < SLOT_CLAIM_GRACE:
            continue
        record = records.get(holder)
        if record is None or record.get("status") not in HOLDS_SLOT \
                or key not in (record.get("slots") or ()):
            stale.append(holder)
    return stale


def intake_slots(campaign, nomination):
    """The caps this nomination counts against (a category with no cap is open)."""
    category, org_type = nomination["category"], nomination.get("org_type")
    slots = []
    cap = campaign.intake_cap(category)
    if cap is not None:
        slots.append(IntakeSlot(f"{campaign.id}|{category}", cap,
                                f"{category} ({CATEGORY_NAMES_ZH[category]}) intake cap of {cap}"))
    org_cap = campaign.org_type_cap(category, org_type) if org_type else None
    if org_cap is not None:
        slots.append(IntakeSlot(
            f"{campaign.id}|{category}|{org_type}", org_cap,
            f"{category} {org_type} ({ORG_TYPE_NAMES_ZH[org_type]}) intake cap of {org_cap}"))
    return slots


def check_owner(identity, record):
    """A unit sees and changes only its own nominations; the department sees all."""
    if identity.role in ("admin", SERVICE_ROLE):
        return
    if identity.role != "unit" or record["unit"] != identity.unit_name:
        raise Forbidden(f"nomination {record['_id']} belongs to another unit")


def amend_fields(record, changes):
    """The nomination's fields with ``changes`` applied.

    The result must be validated as a whole nomination by the caller.
    """
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"changes": ["must be an object with at least one field"]})
    fixed = sorted(set(changes) & set(IMMUTABLE_FIELDS))
    if fixed:
        raise ValidationError({name: [
            "cannot be changed by amend; withdraw this nomination and submit a new one"]
            for name in fixed})
    return dict(nomination_fields(record), **changes)


def changed_fields(before, after):
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))


def check_amendable(record):
    if record["status"] != SUBMITTED:
        raise InvalidState(f"nomination {record['_id']} is {record['status']}; "
                           "only a submitted nomination can be amended")


def check_withdrawable(record):
    if record["status"] not in (SUBMITTED, ACCEPTED, REJECTED):
        raise InvalidState(f"nomination {record['_id']} is {record['status']} and cannot be withdrawn")


def review_outcome(record, decision):
    """初步審核: ``accept`` puts a submitted nomination on the ballot; ``reject`` takes it off."""
    if record["status"] != SUBMITTED:
        raise InvalidState(f"nomination {record['_id']} is {record['status']}; "
                           "only a submitted nomination can be reviewed")
    return ACCEPTED if decision == "accept" else REJECTED


def check_disqualifiable(record):
    """Only a candidate (accepted in review) can be disqualified after an objection."""
    if record["status"] != ACCEPTED:
        raise InvalidState(f"nomination {record['_id']} is {record['status']}; "
                           "only a candidate accepted in review can be disqualified")


def check_list_not_finalized(campaign_id, finalized):
    """After 審定 nothing changes the list: a disqualification would contradict it."""
    if finalized:
        raise InvalidState(f"the list of campaign {campaign_id} has been finalized (審定); "
                           "no candidate can be disqualified any more")


def signed_opinion(opinion, identity, campaign, now):
    """An opinion with its signer and date: as given, else the caller and today in the campaign's zone."""
    opinion = opinion or {"opinion": ""}
    check_signed_not_in_future(opinion.get("date"), campaign, now, "opinion.date")
    return {"opinion": opinion["opinion"],
            "signed_by": opinion.get("signed_by") or identity.name,
            "date": opinion.get("date") or local_day(now, campaign.timezone)}


def check_leadership_opinion_allowed(record):
    """創學領導小組意見 is given on candidates (accepted, or disqualified after an objection)."""
    if record["status"] not in (ACCEPTED, DISQUALIFIED):
        raise InvalidState(f"nomination {record['_id']} is {record['status']}; the leadership "
                           "group's opinion is recorded only on candidates")


def forfeits(campaign, nominations):
    """逾期未報者視為棄權: listed units with no nomination that still stands."""
    sent = {n["unit"] for n in nominations if n["status"] != WITHDRAWN}
    return [unit for unit in campaign.units if unit not in sent]


def nomination_fields(record):
    """The 推薦表 fields of a stored record (what the unit sent, as amended)."""
    return {name: record[name] for name in Nomination().fields if name in record}


def reply(record):
    """A record as callers see it: ``id`` and ISO times, no bookkeeping."""
    out = {key: value for key, value in record.items() if key not in PRIVATE_KEYS}
    out["id"] = record["_id"]
    for key in ("submitted_at", "updated_at"):
        if out.get(key) is not None:
            out[key] = iso(out[key])
    for key in ("withdrawal", "disqualification"):
        if out.get(key):
            out[key] = dict(out[key], at=iso(out[key]["at"]))
    return out


def event_facts(record):
    """The fields every nomination event carries (no contact details)."""
    return {
        "nomination_id": record["_id"], "unit": record["unit"], "category": record["category"],
        "org_type": record.get("org_type"), "nominee_name": record["nominee_name"],
        "nominee_unit": record["nominee_unit"], "deeds_summary": record["deeds_summary"],
        "status": record["status"], "submitted_at": iso(record["submitted_at"]),
    }
