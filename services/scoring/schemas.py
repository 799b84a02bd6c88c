"""The shapes of the scoring calls: a panel's judges and a judge's submission.

The scores themselves are checked in ``domain.valid_scores`` against the
criteria of the candidate's category, which only the campaign knows.
"""
from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from shared.validation import ID_PATTERN, Mobile, Text

MAX_JUDGES = 50
COMMENT_MAX_CHARS = 1000
ID_MESSAGE = "must be an identifier (letters, digits, '-', '_', '.', ':'; 1–100 characters)"


class Strict(Schema):
    class Meta:
        unknown = RAISE


class Identifier(fields.String):
    """An id that goes into keys and queries: a plain short string, never an operator."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Regexp(ID_PATTERN, error=ID_MESSAGE), **kwargs)


class Judge(Strict):
    """A panel member (評審委員). ``judge_id`` is the ``--name`` of the judge's token."""

    judge_id = Identifier(required=True)
    name = Text(100, required=True)
    unit = Text(200, required=True)
    # Only for the assignment and reminder messages; never shown to anyone else.
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254),
                         error_messages={"invalid": "must be an e-mail address like name@example.cn"})
    mobile = Mobile(load_default=None, allow_none=True)


class Panel(Strict):
    judges = fields.List(fields.Nested(Judge), required=True, validate=validate.Length(
        min=1, max=MAX_JUDGES, error=f"needs 1–{MAX_JUDGES} judges"))

    @validates_schema
    def one_entry_per_judge(self, data, **kwargs):
        ids = [judge["judge_id"] for judge in data.get("judges") or []]
        repeated = sorted({judge_id for judge_id in ids if ids.count(judge_id) > 1})
        if repeated:
            raise SchemaError({"judges": [f"judge_id listed twice: {', '.join(repeated)}"]})


class Submission(Strict):
    """One judge's scores for one candidate (``scores`` is checked against the criteria)."""

    candidate_id = Identifier(required=True)
    scores = fields.Raw(required=True)
    comment = Text(COMMENT_MAX_CHARS, load_default=None, allow_none=True)


class PanelFilter(Strict):
    category = fields.String(load_default=None, allow_none=True)


class LinkRequest(Strict):
    """Whose links ``send_links`` sends (every judge when ``judge_ids`` is left out), and
    whether the links are renewed first."""

    judge_ids = fields.List(Identifier(), load_default=None, allow_none=True,
                            validate=validate.Length(
                                min=1, max=MAX_JUDGES,
                                error=f"name 1–{MAX_JUDGES} judges, or leave it out for all"))
    renew = fields.Boolean(load_default=False, truthy={True}, falsy={False},
                           error_messages={"invalid": "must be true or false"})
