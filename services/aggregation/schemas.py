"""Shapes of the aggregation service's calls and of the peer replies its rebuild reads."""
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate, validates
from marshmallow import ValidationError as SchemaError

from shared.campaign import CATEGORIES, ORG_TYPES
from shared.validation import ID_PATTERN, Mobile, Text, mainland_mobile

CATEGORY = validate.OneOf(CATEGORIES, error=f"must be one of {', '.join(CATEGORIES)}")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class Query(Strict):
    """``results`` / ``report`` / ``tally``: a category filter (values, never query operators)."""

    category = fields.String(load_default=None, allow_none=True, validate=CATEGORY)
    include_inputs = fields.Boolean(load_default=False)


class InputsQuery(Strict):
    """``inputs``: which revision of the list (the latest when omitted)."""

    revision = fields.Integer(strict=True, load_default=None, allow_none=True,
                              validate=validate.Range(min=1, error="must be 1 or more"))


# --- what the rebuild reads from the other services ------------------------------------------

class Lenient(Schema):
    """Peer replies may carry more than we use (contact details included): keep only ours."""

    class Meta:
        unknown = EXCLUDE


class Disqualification(Lenient):
    reason = fields.String(load_default=None, allow_none=True)


class CandidateRecord(Lenient):
    """A row of ``nomination.list``: the facts aggregation keeps of a candidate."""

    id = fields.String(required=True)
    campaign_id = fields.String(required=True)
    category = fields.String(required=True, validate=CATEGORY)
    org_type = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(ORG_TYPES))
    nominee_name = fields.String(required=True)
    nominee_unit = fields.String(load_default=None, allow_none=True)
    status = fields.String(required=True)
    submitted_at = fields.String(required=True)
    updated_at = fields.String(load_default=None, allow_none=True)
    disqualification = fields.Nested(Disqualification, load_default=None, allow_none=True)


class VotesPage(Lenient):
    """``voting.votes_page``: the list is checked here, each vote while it is counted (a
    schema per vote would cost more than the whole count)."""

    votes = fields.Raw(required=True)
    next = fields.Raw(load_default=None, allow_none=True)

    @validates("votes")
    def a_list(self, value, **kwargs):
        if not isinstance(value, list):
            raise SchemaError("must be a list of votes")


class CurrentScore(Lenient):
    candidate_id = fields.String(required=True)
    category = fields.String(required=True)
    judge_id = fields.String(required=True)
    total = fields.Float(required=True, allow_nan=False)
    scores = fields.Dict(keys=fields.String(), values=fields.Float(allow_nan=False),
                         load_default=dict)
    submitted_at = fields.String(load_default=None, allow_none=True)


class PanelState(Lenient):
    closed = fields.Boolean(required=True)
    method = fields.String(load_default=None, allow_none=True)
    panel_scores = fields.Dict(keys=fields.String(),
                               values=fields.Float(allow_none=True, allow_nan=False),
                               load_default=dict)


class ScoresReply(Lenient):
    """``scoring.scores``: every current score and each category's panel state."""

    scores = fields.List(fields.Nested(CurrentScore), required=True)
    panels = fields.Dict(keys=fields.String(), values=fields.Nested(PanelState),
                         load_default=dict)


# --- objections (異議) during 公示 ------------------------------------------------------------

#: At most this many characters of grounds (CONTRACT.md).
GROUNDS_MAX = 2000


class Objector(Strict):
    """Who objects: a real name and a mainland mobile (seen by admins only)."""

    name = Text(50, required=True)
    mobile = Mobile(required=True)


class Objection(Strict):
    """``lodge_objection(objection)``."""

    campaign_id = fields.String(required=True, validate=validate.Regexp(ID_PATTERN))
    candidate_id = fields.String(required=True, validate=validate.Regexp(ID_PATTERN))
    objector = fields.Nested(Objector, required=True)
    grounds = Text(GROUNDS_MAX, required=True)


class ObjectionQuery(Strict):
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        ("received", "upheld", "rejected"), error="must be received, upheld or rejected"))


class Verdict(Strict):
    """``resolve_objection``: the verdict and its reason (required, shown to the objector)."""

    verdict = fields.String(required=True, validate=validate.OneOf(
        ("upheld", "rejected"), error="must be upheld or rejected"))
    reason = Text(2000, required=True)


class CodeRequest(Strict):
    """The 公示 page asks for a one-time code for the objector's mobile."""

    mobile = Mobile(required=True)


class CodeCheck(Strict):
    code = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9]{6}$", error="must be the 6 digits of the SMS"))


def mainland(text):
    """The 11 digits of a mainland mobile, or ``None`` (what a form may keep)."""
    return mainland_mobile(text)
