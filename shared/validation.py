"""Input validation helpers: marshmallow errors become the contract's ``ValidationError``.

Field messages are flattened to dotted names (``recommendation.sealed``) and
every value is type-checked before it could reach a query, so an object such as
``{"$gt": ""}`` where a string belongs is refused as "Not a valid string."
"""
import math
import re

from marshmallow import fields, validate
from marshmallow import ValidationError as SchemaError

from shared.errors import ValidationError

ROOT_KEY = "_schema"


def flatten_messages(messages, prefix=""):
    """``{"a": {"b": ["m"]}}`` -> ``{"a.b": ["m"]}``; list indexes become path parts."""
    flat = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = prefix if key == ROOT_KEY and prefix else (
                f"{prefix}.{key}" if prefix else str(key))
            for sub_key, sub_messages in flatten_messages(value, name).items():
                flat.setdefault(sub_key, []).extend(sub_messages)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            if isinstance(item, (dict, list)):
                for sub_key, sub_messages in flatten_messages(item, prefix).items():
                    flat.setdefault(sub_key, []).extend(sub_messages)
            else:
                flat.setdefault(prefix or ROOT_KEY, []).append(str(item))
    else:
        flat.setdefault(prefix or ROOT_KEY, []).append(str(messages))
    return flat


def load(schema, data, name, partial=None):
    """Load ``data`` through ``schema``; bad input raises the contract's ``ValidationError``.

    ``name`` is used for the message when ``data`` is not even an object.
    """
    if not isinstance(data, dict):
        raise ValidationError({name: ["must be an object"]})
    try:
        return schema.load(data, partial=partial)
    except SchemaError as exc:
        raise ValidationError(flatten_messages(exc.messages))


def require_id(value, field):
    """An identifier argument: a short plain string, never an operator object."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValidationError({field: ["must be an identifier (letters, digits, '-', '_', '.', ':'; 1–100 characters)"]})
    return value


#: Mainland mobile numbers: 11 ASCII digits starting 13–19, optionally written with +86.
MAINLAND_MOBILE = re.compile(r"^(?:\+?86[- ]?)?(1[3-9][0-9]{9})$")
MOBILE_RULE = "must be a mainland China mobile number (11 digits starting 13–19)"


def mainland_mobile(text):
    """The 11 digits of a mainland mobile written in any usual way, or ``None``."""
    if not isinstance(text, str):
        return None
    match = MAINLAND_MOBILE.match(text.strip().replace(" ", ""))
    return match.group(1) if match else None


class Mobile(fields.String):
    """A mainland mobile, stored as its 11 digits."""

    def _deserialize(self, value, attr, data, **kwargs):
        digits = mainland_mobile(super()._deserialize(value, attr, data, **kwargs))
        if digits is None:
            raise SchemaError(MOBILE_RULE)
        return digits


ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class Mapping(fields.Dict):
    """A ``Dict`` whose errors are keyed like a nested object's (``caps.agency``).

    marshmallow files a mapping's errors under extra ``key``/``value`` levels
    (``caps.agency.value``), which would name a field that does not exist.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except SchemaError as exc:
            raise SchemaError(_unwrap_mapping_errors(exc.messages))


def _unwrap_mapping_errors(messages):
    if not isinstance(messages, dict):
        return messages
    unwrapped = {}
    for entry, errors in messages.items():
        if not isinstance(errors, dict) or not set(errors) <= {"key", "value"}:
            unwrapped[entry] = errors
            continue
        key_errors, value_errors = errors.get("key"), errors.get("value")
        if value_errors is None:
            unwrapped[entry] = key_errors
        elif not key_errors:
            unwrapped[entry] = value_errors
        elif isinstance(value_errors, dict):
            unwrapped[entry] = {ROOT_KEY: key_errors, **value_errors}
        else:
            unwrapped[entry] = list(key_errors) + list(value_errors)
    return unwrapped


class Text(fields.String):
    """A string that is stripped, must not be empty when required, and has a length bound."""

    def __init__(self, max_length, *, min_length=1, **kwargs):
        super().__init__(validate=validate.Length(
            min=min_length, max=max_length,
            error=f"must be {min_length}–{max_length} characters long"), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        return text.strip()


class StrictBoolean(fields.Field):
    """``true`` or ``false`` only: ``"yes"`` or ``1`` are not a seal."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise SchemaError("must be true or false")
        return value


class FiniteNumber(fields.Field):
    """An int or float that is finite; bools and strings are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError("must be a number")
        if not math.isfinite(value):
            raise SchemaError("must be a finite number")
        return value
