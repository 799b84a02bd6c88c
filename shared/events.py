"""Event names and one versioned payload schema per event: the only definition of each.

Producers build payloads with :func:`make_event`, which fills the envelope
(``event_id``, ``schema_version``, ``occurred_at``, ``campaign_id``) and
validates against the schema, so a malformed event is never published.
Consumers read them with :func:`read_event`. A schema change that a consumer
cannot ignore bumps ``SCHEMA_VERSIONS[event]``.
"""
import time
import uuid

from marshmallow import INCLUDE, Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from shared.timeutil import iso, utcnow

# Source services (the exchange a nameko event is published to).
NOMINATION = "nomination"
VOTING = "voting"
SCORING = "scoring"
AGGREGATION = "aggregation"
NOTIFICATION = "notification"
#: Pseudo-source of the admin CLI's events (token revocation).
ADMIN = "admin"

# Event types of CONTRACT.md.
NOMINATION_SUBMITTED = "nomination_submitted"
NOMINATION_AMENDED = "nomination_amended"
NOMINATION_WITHDRAWN = "nomination_withdrawn"
NOMINATION_REVIEWED = "nomination_reviewed"
CANDIDATE_DISQUALIFIED = "candidate_disqualified"
VOTE_CAST = "vote_cast"
SCORE_SUBMITTED = "score_submitted"
PANEL_CLOSED = "panel_closed"
RESULTS_UPDATED = "results_updated"
LIST_PUBLISHED = "list_published"
RESULTS_FINALIZED = "results_finalized"
VOTES_VOIDED = "votes_voided"
VOTES_RESTORED = "votes_restored"
OBJECTION_RECEIVED = "objection_received"
OBJECTION_RESOLVED = "objection_resolved"
# Ours (CONTRACT.md leaves the rest to us).
CAMPAIGN_LOADED = "campaign_loaded"
LEADERSHIP_OPINION_RECORDED = "leadership_opinion_recorded"
TOKEN_REVOKED = "token_revoked"


class Envelope(Schema):
    """What every payload carries."""

    class Meta:
        # Consumers accept fields added by a newer producer of the same major version.
        unknown = INCLUDE

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    schema_version = fields.Integer(required=True, strict=True)
    occurred_at = fields.String(required=True)
    campaign_id = fields.String(required=True, allow_none=True)


class Contact(Schema):
    contact_person = fields.String(required=True)
    mobile = fields.String(required=True)
    email = fields.String(required=True)


class NominationFacts(Envelope):
    """What other services need to know of a nomination (no contact details)."""

    nomination_id = fields.String(required=True)
    unit = fields.String(required=True)
    category = fields.String(required=True)
    org_type = fields.String(required=True, allow_none=True)
    nominee_name = fields.String(required=True)
    nominee_unit = fields.String(required=True)
    deeds_summary = fields.String(required=True)
    status = fields.String(required=True)
    submitted_at = fields.String(required=True)


class NominationSubmitted(NominationFacts):
    # The nominating unit's contact, for its receipt; never shown in public.
    contact = fields.Nested(Contact, required=True)


class NominationAmended(NominationFacts):
    changed_fields = fields.List(fields.String(), required=True)


class NominationWithdrawn(NominationFacts):
    reason = fields.String(required=True)


class NominationReviewed(NominationFacts):
    decision = fields.String(required=True, validate=validate.OneOf(["accept", "reject"]))
    opinion = fields.String(required=True)


class CandidateDisqualified(NominationFacts):
    candidate_id = fields.String(required=True)
    reason = fields.String(required=True)


class LeadershipOpinionRecorded(NominationFacts):
    opinion = fields.String(required=True)
    signed_by = fields.String(required=True)
    date = fields.String(required=True)


class VoteRecord(Schema):
    vote_id = fields.String(required=True)
    candidate_id = fields.String(required=True)
    category = fields.String(required=True)
    cast_at = fields.String(required=True)


class VoteCast(Envelope):
    # Votes travel in batches: one event per group commit, not per vote.
    votes = fields.List(fields.Nested(VoteRecord), required=True,
                        validate=validate.Length(min=1))


class VoidedCount(Schema):
    """Votes of one candidate on one local day (the campaign's time zone) taken out or back."""

    candidate_id = fields.String(required=True)
    category = fields.String(required=True)
    day = fields.Date(required=True)  # local date, ISO (2013-11-05)
    votes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class VotesVoided(Envelope):
    """票數清零: an admin voided these votes, with a reason. ``counts`` are per candidate and day."""

    void_id = fields.String(required=True)
    reason = fields.String(required=True)
    voided = fields.Integer(required=True, strict=True)
    counts = fields.List(fields.Nested(VoidedCount), required=True)
    vote_ids = fields.List(fields.String(), required=True)


class VotesRestored(Envelope):
    """A void undone: exactly the votes of ``void_id`` count again."""

    void_id = fields.String(required=True)
    reason = fields.String(required=True)
    restored = fields.Integer(required=True, strict=True)
    counts = fields.List(fields.Nested(VoidedCount), required=True)
    vote_ids = fields.List(fields.String(), required=True)


class ScoreSubmitted(Envelope):
    """One judge's score; with it, scoring's provisional panel score of every candidate of the
    category once it is stored (membership, recusal, the campaign's method and scoring's
    rounding applied; ``None``: nobody who counts has scored that candidate), and the panel
    version it was computed on (the highest version is the newest figure). Both optional: an
    event from before they were added carries neither."""

    candidate_id = fields.String(required=True)
    category = fields.String(required=True)
    judge_id = fields.String(required=True)
    scores = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    total = fields.Float(required=True)
    panel_scores = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    panel_version = fields.Integer(strict=True, validate=validate.Range(min=1))


class PanelClosed(Envelope):
    category = fields.String(required=True)
    method = fields.String(required=True)
    panel_scores = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True),
                               required=True)


class ResultsUpdated(Envelope):
    category = fields.String(required=True)


class ListPublished(Envelope):
    revision = fields.Integer(required=True)
    inputs_hash = fields.String(required=True)


class ResultsFinalized(Envelope):
    inputs_hash = fields.String(required=True)


class ObjectionReceived(Envelope):
    """An objection lodged during 公示. No objector name or mobile: only admins see those."""

    objection_id = fields.String(required=True)
    candidate_id = fields.String(required=True)
    category = fields.String(required=True)
    revision = fields.Integer(required=True)
    channel = fields.String(required=True)  # admin | frontend | page


class ObjectionResolved(Envelope):
    objection_id = fields.String(required=True)
    candidate_id = fields.String(required=True)
    category = fields.String(required=True)
    verdict = fields.String(required=True, validate=validate.OneOf(["upheld", "rejected"]))
    reason = fields.String(required=True)


class CampaignLoaded(Envelope):
    campaign = fields.Dict(required=True)
    revision = fields.Integer(required=True)


class TokenRevoked(Envelope):
    token_id = fields.String(required=True)


SCHEMAS = {
    NOMINATION_SUBMITTED: NominationSubmitted,
    NOMINATION_AMENDED: NominationAmended,
    NOMINATION_WITHDRAWN: NominationWithdrawn,
    NOMINATION_REVIEWED: NominationReviewed,
    CANDIDATE_DISQUALIFIED: CandidateDisqualified,
    VOTE_CAST: VoteCast,
    SCORE_SUBMITTED: ScoreSubmitted,
    PANEL_CLOSED: PanelClosed,
    RESULTS_UPDATED: ResultsUpdated,
    LIST_PUBLISHED: ListPublished,
    RESULTS_FINALIZED: ResultsFinalized,
    VOTES_VOIDED: VotesVoided,
    VOTES_RESTORED: VotesRestored,
    OBJECTION_RECEIVED: ObjectionReceived,
    OBJECTION_RESOLVED: ObjectionResolved,
    CAMPAIGN_LOADED: CampaignLoaded,
    LEADERSHIP_OPINION_RECORDED: LeadershipOpinionRecorded,
    TOKEN_REVOKED: TokenRevoked,
}

SCHEMA_VERSIONS = {event_type: 1 for event_type in SCHEMAS}


class EventSchemaError(ValueError):
    """A payload that does not match its event's schema (a programming error, not user input)."""


def new_event_id():
    """Unique, and sortable by creation time (microsecond prefix), so ties in time keep order."""
    return f"{time.time_ns() // 1000:014x}{uuid.uuid4().hex[:18]}"


def make_event(event_type, campaign_id, occurred_at=None, **fields_):
    """A validated payload for ``event_type`` with its envelope filled in."""
    payload = {
        "event_id": new_event_id(),
        "schema_version": SCHEMA_VERSIONS[event_type],
        "occurred_at": iso(occurred_at or utcnow()),
        "campaign_id": campaign_id,
        **fields_,
    }
    if not _plainly_valid(event_type, payload):
        errors = _schema(event_type).validate(payload)
        if errors:
            raise EventSchemaError(f"{event_type}: {errors}")
    return payload


def _schema(event_type, exclude=()):
    """One schema instance per event type (and exclusion): building one copies every field,
    which cost more than validating a small payload; a schema holds no state between calls."""
    key = (event_type, exclude)
    schema = _SCHEMA_INSTANCES.get(key)
    if schema is None:
        schema = _SCHEMA_INSTANCES[key] = SCHEMAS[event_type](exclude=exclude)
    return schema


_SCHEMA_INSTANCES = {}


def _plain_record_fields(schema_cls):
    """The names of a record schema whose every field is a required, non-null ``String``
    without validators (so: a dict of exactly those keys, each a ``str``, is valid)."""
    declared = schema_cls._declared_fields
    assert all(type(field) is fields.String and field.required and not field.allow_none
               and not field.validators for field in declared.values()), schema_cls
    return frozenset(declared)


#: The lists of plain records an event carries, checked without marshmallow: ``vote_cast``
#: carries a group commit's votes (hundreds per event, on the hot path).
PLAIN_RECORD_LISTS = {VOTE_CAST: ("votes", _plain_record_fields(VoteRecord))}


def _plainly_valid(event_type, payload):
    """True when the payload is certainly valid: its envelope by the schema (the list
    excluded), each record of its plain list by a direct check of keys and types. False
    means "not shown valid" — the whole schema then decides, and words the errors."""
    plain = PLAIN_RECORD_LISTS.get(event_type)
    if plain is None:
        return False
    name, keys = plain
    records = payload.get(name)
    if type(records) is not list or not records or not all(
            type(record) is dict and record.keys() == keys
            and all(type(value) is str for value in record.values()) for record in records):
        return False
    return not _schema(event_type, (name,)).validate(payload)


def read_event(event_type, payload):
    """Validate a received payload; raises ``EventSchemaError`` for a foreign or broken one."""
    try:
        return _schema(event_type).load(payload)
    except SchemaError as exc:
        raise EventSchemaError(f"{event_type}: {exc.messages}")
