"""The shapes of the notification service's calls and of its routing configuration."""
from marshmallow import RAISE, Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from shared.validation import ID_PATTERN, Text

#: Template names: lower-case words joined by ``_`` (they name files in ``templates/``).
TEMPLATE_NAME = r"^[a-z][a-z0-9_]{0,63}$"
MAX_PARAMS = 20
PARAM_MAX_CHARS = 500
IDEMPOTENCY_KEY_MAX = 256


class Strict(Schema):
    class Meta:
        unknown = RAISE


class ParamValue(fields.Field):
    """A template variable: text or a number, short (a variable is not a document)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SchemaError("must be text or a number")
        if isinstance(value, str) and len(value) > PARAM_MAX_CHARS:
            raise SchemaError(f"must be at most {PARAM_MAX_CHARS} characters long")
        return value


class DirectMessage(Strict):
    """``send_direct``'s arguments."""

    kind = fields.String(required=True, validate=validate.OneOf(["sms", "email"]))
    recipient = Text(254, required=True)
    template = fields.String(required=True, validate=validate.Regexp(
        TEMPLATE_NAME, error="must be a template name like otp_code"))
    params = fields.Dict(keys=fields.String(validate=validate.Regexp(
        r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", error="must be a variable name")),
        values=ParamValue(), required=True,
        validate=validate.Length(max=MAX_PARAMS, error=f"at most {MAX_PARAMS} variables"))
    # Any text (callers build keys from their own ids); it is only ever hashed.
    idempotency_key = fields.String(required=True, validate=[
        validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX),
        validate.Regexp(r"^[^\x00-\x1f\x7f]+$", error="must not contain control characters")])


class MessageQuery(Strict):
    campaign_id = fields.String(load_default=None, allow_none=True,
                                validate=validate.Regexp(ID_PATTERN.pattern,
                                                         error="must be an identifier"))


# --- configuration -------------------------------------------------------------------------------

class RouteConfig(Strict):
    """One entry of ``ROUTES.<event>``: which template goes to whom through which channel."""

    template = fields.String(required=True, validate=validate.Regexp(TEMPLATE_NAME))
    to = fields.String(required=True, validate=validate.OneOf(["contact", "admins"]))
    kind = fields.String(required=True, validate=validate.OneOf(["sms", "email"]))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=64))


class DirectChannelsConfig(Strict):
    sms = fields.String(required=True, validate=validate.Length(min=1, max=64))
    email = fields.String(required=True, validate=validate.Length(min=1, max=64))
