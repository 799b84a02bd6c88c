"""The 推薦表 (nomination form) as marshmallow schemas, and the shapes of the other calls."""
import re

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from shared.campaign import CAMPAIGN_ID_PATTERN, CATEGORIES, ORG_TYPES
from shared.validation import Mobile, StrictBoolean, Text

#: A landline or mobile: digits with the usual separators, 7–20 characters.
PHONE = re.compile(r"^(?:\+|\()?[0-9][0-9 ()-]{5,18}[0-9]$")
#: 綜合材料: "3000字以內", counted in characters, not bytes.
MATERIALS_MAX_CHARS = 3000
DEEDS_SUMMARY_MAX_CHARS = 2000
OPINION_MAX_CHARS = 2000
MAX_ATTACHMENTS = 20

#: Fields a unit may change with ``amend``; the rest identify the nomination.
IMMUTABLE_FIELDS = ("campaign_id", "category", "client_ref")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class Phone(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not PHONE.match(text):
            raise SchemaError("must be a telephone number (digits, spaces, '-', '(', ')'; 7–20 characters)")
        return text


class SigningDate(fields.Date):
    """A signing date: ``YYYY-MM-DD``.

    That it is not in the future needs the campaign's zone and the service clock:
    ``domain.check_signed_not_in_future``, once the campaign is known.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise SchemaError("must be a date like 2013-10-20")
        return super()._deserialize(value, attr, data, **kwargs).isoformat()


class Recommendation(Strict):
    """推薦意見: the nominating unit's opinion, signed by its leader and sealed, with a date."""

    opinion = Text(OPINION_MAX_CHARS, required=True)
    signed_by = Text(50, required=True)
    sealed = StrictBoolean(required=True)
    date = SigningDate(required=True)

    @validates_schema
    def must_be_sealed(self, data, **kwargs):
        # "推薦表必須有推薦單位領導簽字並加蓋公章"
        if data.get("sealed") is False:
            raise SchemaError({"sealed": ["must be true: the form must carry the unit's seal"]})


class Attachment(Strict):
    name = Text(200, required=True)
    url = Text(2000, load_default=None)
    sha256 = fields.String(load_default=None, validate=validate.Regexp(
        r"^[0-9a-f]{64}$", error="must be a lower-case hex SHA-256"))


class Nomination(Strict):
    """One 推薦表. The nominating unit is the caller's token, never a field."""

    campaign_id = fields.String(required=True, validate=validate.Regexp(
        CAMPAIGN_ID_PATTERN, error="must be a campaign id like cb-2013-siping"))
    category = fields.String(required=True, validate=validate.OneOf(
        CATEGORIES, error=f"must be one of {', '.join(CATEGORIES)}"))
    org_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        ORG_TYPES, error=f"must be one of {', '.join(ORG_TYPES)}"))
    nominee_name = Text(100, required=True)
    nominee_unit = Text(200, required=True)
    party_post = Text(100, load_default=None, allow_none=True)
    unit_phone = Phone(required=True)
    fax = Phone(load_default=None, allow_none=True)
    contact_person = Text(50, required=True)
    mobile = Mobile(required=True)
    email = fields.Email(required=True, validate=validate.Length(max=254),
                         error_messages={"invalid": "must be an e-mail address like name@example.cn"})
    deeds_summary = Text(DEEDS_SUMMARY_MAX_CHARS, required=True)
    materials = Text(MATERIALS_MAX_CHARS, required=True)
    recommendation = fields.Nested(Recommendation, required=True)
    attachments = fields.List(fields.Nested(Attachment), load_default=list, validate=validate.Length(
        max=MAX_ATTACHMENTS, error=f"at most {MAX_ATTACHMENTS} attachments"))
    client_ref = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$",
        error="must be 1–100 letters, digits or _ . : / - (your system's own reference)"))

    # Runs even when fields have errors, so a sender sees every problem in one answer.
    @validates_schema(skip_on_field_errors=False)
    def category_requirements(self, data, **kwargs):
        errors = {}
        category = data.get("category")
        if category == "advanced_unit" and not data.get("org_type"):
            errors["org_type"] = ["is required for advanced_unit (one of "
                                  f"{', '.join(ORG_TYPES)})"]
        if category not in (None, "advanced_unit") and data.get("org_type"):
            errors["org_type"] = ["only advanced_unit nominations have an org type"]
        if category == "learning_star" and not data.get("party_post"):
            errors["party_post"] = ["is required for learning_star (黨內職務)"]
        if errors:
            raise SchemaError(errors)


class Opinion(Strict):
    """評審委員會意見 / 創學領導小組意見: text, who signed, when.

    ``signed_by`` and ``date`` default to the admin making the call and today
    (in the campaign's zone) when the opinion is given as plain text.
    """

    opinion = Text(OPINION_MAX_CHARS, required=True)
    signed_by = Text(50, load_default=None)
    date = SigningDate(load_default=None)


class OpinionField(fields.Field):
    """An opinion as plain text or as ``{opinion, signed_by, date}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = {"opinion": value}
        if not isinstance(value, dict):
            raise SchemaError("must be text or an object {opinion, signed_by, date}")
        return Opinion().load(value)


class Review(Strict):
    decision = fields.String(required=True, validate=validate.OneOf(
        ["accept", "reject"], error="must be accept or reject"))
    opinion = OpinionField(load_default=None, allow_none=True)

    @validates_schema
    def reject_needs_reason(self, data, **kwargs):
        if data.get("decision") == "reject" and not data.get("opinion"):
            raise SchemaError({"opinion": ["a rejection needs a reason"]})


class LeadershipOpinion(Strict):
    opinion = OpinionField(required=True)


class Reason(Strict):
    reason = Text(OPINION_MAX_CHARS, required=True)


class ListFilters(Strict):
    """Filters of ``list``; values are plain strings, never query operators."""

    category = fields.String(validate=validate.OneOf(CATEGORIES, error=f"must be one of {', '.join(CATEGORIES)}"))
    org_type = fields.String(validate=validate.OneOf(ORG_TYPES, error=f"must be one of {', '.join(ORG_TYPES)}"))
    status = fields.String(validate=validate.OneOf(
        ["submitted", "accepted", "rejected", "withdrawn", "disqualified"],
        error="must be submitted, accepted, rejected, withdrawn or disqualified"))
    unit = Text(200)
