"""The OpenAPI 3 document of the page's JSON API, generated from the marshmallow schemas."""
from marshmallow import fields, validate

from services.voting import schemas

_TYPES = [
    (fields.Integer, {"type": "integer"}), (fields.Float, {"type": "number"}),
    (fields.Boolean, {"type": "boolean"}), (fields.String, {"type": "string"}),
    (fields.Dict, {"type": "object"}),
]


def field_schema(field):
    """A marshmallow field as a JSON Schema fragment (types, nesting, validators)."""
    if isinstance(field, fields.Nested):
        nested = field.nested() if callable(field.nested) and not isinstance(field.nested, type) \
            else field.nested
        name = nested.__name__ if isinstance(nested, type) else type(nested).__name__
        out = {"$ref": f"#/components/schemas/{name}"}
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": field_schema(field.inner)}
    else:
        out = next((dict(kind) for cls, kind in _TYPES if isinstance(field, cls)), {})
    validators = field.validators if hasattr(field, "validators") else []
    for validator in validators:
        if isinstance(validator, validate.Length):
            prefix = "Items" if out.get("type") == "array" else "Length"
            if validator.min is not None:
                out[f"min{prefix}"] = validator.min
            if validator.max is not None:
                out[f"max{prefix}"] = validator.max
        elif isinstance(validator, validate.Range):
            if validator.min is not None:
                out["minimum"] = validator.min
            if validator.max is not None:
                out["maximum"] = validator.max
        elif isinstance(validator, validate.OneOf):
            out["enum"] = list(validator.choices)
        elif isinstance(validator, validate.Regexp):
            out["pattern"] = validator.regex.pattern
    if getattr(field, "allow_none", False):
        out["nullable"] = True
    description = (field.metadata or {}).get("description")
    if description:
        out["description"] = description
    return out


def schema_object(schema_cls):
    schema = schema_cls()
    properties, required = {}, []
    for name, field in schema.fields.items():
        key = field.data_key or name
        properties[key] = field_schema(field)
        if field.required:
            required.append(key)
    out = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if schema_cls.__doc__:
        out["description"] = schema_cls.__doc__.strip().splitlines()[0]
    return out


def _components():
    found, queue = {}, [schemas.CodeRequest, schemas.CodeSent, schemas.CodeCheck,
                        schemas.Session, schemas.PageVote, schemas.CastResult, schemas.Ballot,
                        schemas.ReceiptStatus, schemas.Refusal]
    while queue:
        cls = queue.pop()
        if cls.__name__ in found:
            continue
        found[cls.__name__] = schema_object(cls)
        for field in cls().fields.values():
            inner = field.inner if isinstance(field, fields.List) else field
            if isinstance(inner, fields.Nested):
                nested = inner.nested
                queue.append(nested if isinstance(nested, type) else type(nested))
    return found


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name):
    return {"content": {"application/json": {"schema": _ref(name)}}}


def _refusals(*codes):
    words = {400: "bad input (`fields` names them)", 401: "no verified number (session)",
             403: "outside the voting window", 404: "unknown campaign, candidate or receipt",
             409: "already voted for this candidate today, or vote_id reused",
             413: "body over 16 KB", 429: "daily cap, too frequent, or locked after wrong codes",
             503: "the code could not be sent, or the store is unavailable"}
    return {str(code): dict(description=words[code], **_json("Refusal")) for code in codes}


def document():
    """The OpenAPI document served at ``/api/openapi.json``."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "pingxuan voting page API", "version": "1",
                 "description": "The public voting page's JSON API. Every refusal is a 4xx "
                                "with the contract's error type and a message in Chinese."},
        "paths": {
            "/api/campaigns/{campaign_id}/ballot": {"get": {
                "summary": "The ballot: candidates per category with their (cached) vote counts",
                "parameters": [{"name": "campaign_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": dict(description="the ballot", **_json("Ballot")),
                              **_refusals(400, 404)}}},
            "/api/codes": {"post": {
                "summary": "Send a one-time code to a mobile number",
                "requestBody": dict(required=True, **_json("CodeRequest")),
                "responses": {"200": dict(description="sent", **_json("CodeSent")),
                              **_refusals(400, 403, 404, 413, 429, 503)}}},
            "/api/codes/verify": {"post": {
                "summary": "Verify the code (single use); returns the voter's session",
                "requestBody": dict(required=True, **_json("CodeCheck")),
                "responses": {"200": dict(description="verified", **_json("Session")),
                              **_refusals(400, 404, 413, 429)}}},
            "/api/votes": {"post": {
                "summary": "Vote (Authorization: Bearer <session>); idempotent on vote_id",
                "requestBody": dict(required=True, **_json("PageVote")),
                "responses": {"200": dict(description="accepted, with a receipt",
                                          **_json("CastResult")),
                              **_refusals(400, 401, 403, 404, 409, 413, 429, 503)}}},
            "/api/receipts/{receipt}": {"get": {
                "summary": "Check that a vote was counted",
                "parameters": [{"name": "receipt", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": dict(description="counted", **_json("ReceiptStatus")),
                              **_refusals(400, 404)}}},
        },
        "components": {"schemas": _components()},
    }
