"""The OpenAPI 3 document of the page's JSON API, built by apispec from the marshmallow schemas.

apispec's MarshmallowPlugin turns each schema of ``services.voting.schemas`` into a component
(types, nesting, validators, ``unknown=RAISE`` as ``additionalProperties: false``); this module
only says which path takes and answers which schema, and which refusals each path can give.
"""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from shared.validation import MAINLAND_MOBILE, Mobile
from services.voting import schemas

#: Why each refusal status is given (``web.STATUS`` maps the contract's error types to them);
#: 503 is a dependency down (the store, notification), possible on every path.
REFUSALS = {
    400: "bad input (`fields` names them)", 401: "no verified number (session)",
    403: "outside the voting window", 404: "unknown campaign, candidate or receipt",
    409: "already voted for this candidate today, vote_id reused, or the candidate is no "
         "longer on the ballot",
    413: "body over 16 KB", 429: "daily cap, too frequent, or locked after wrong codes",
    503: "the code could not be sent, or the store is unavailable",
}


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok_description, ok_schema, *refusals):
    responses = {"200": dict(description=ok_description, **_json(ok_schema))}
    responses.update({str(status): dict(description=REFUSALS[status], **_json("Refusal"))
                      for status in refusals})
    return responses


def mobile_pattern(converter, field, **kwargs):
    """``Mobile`` checks its number in code, not with a validator apispec could read."""
    if isinstance(field, Mobile):
        return {"pattern": MAINLAND_MOBILE.pattern,
                "description": "a mainland mobile: 11 digits starting 13–19, optionally +86; "
                               "spaces are ignored"}
    return {}


def _path_parameter(plugin, schema, name, description):
    """A path parameter described by the field its entrypoint loads it with."""
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": plugin.converter.field2property(schema().fields[name])}


def document():
    """The OpenAPI document served at ``/api/openapi.json``."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="pingxuan voting page API", version="1", openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": "The public voting page's JSON API. Every refusal is a 4xx "
                             "(503 when a dependency is down) with the contract's error type "
                             "and a message in Chinese."})
    plugin.converter.add_attribute_function(mobile_pattern)
    for schema in (schemas.Ballot, schemas.CodeRequest, schemas.CodeSent, schemas.CodeCheck,
                   schemas.Session, schemas.PageVote, schemas.CastResult, schemas.ReceiptStatus,
                   schemas.Refusal):
        spec.components.schema(schema.__name__, schema=schema)
    spec.components.security_scheme("session", {"type": "http", "scheme": "bearer",
                                                "description": "the session of /api/codes/verify"})
    spec.path("/api/campaigns/{campaign_id}/ballot", operations={"get": {
        "summary": "The ballot: candidates per category with their (cached) vote counts",
        "parameters": [_path_parameter(plugin, schemas.BallotQuery, "campaign_id", "the campaign's id")],
        "responses": _responses("the ballot", "Ballot", 400, 404, 503)}})
    spec.path("/api/codes", operations={"post": {
        "summary": "Send a one-time code to a mobile number",
        "requestBody": dict(required=True, **_json("CodeRequest")),
        "responses": _responses("sent", "CodeSent", 400, 403, 404, 413, 429, 503)}})
    spec.path("/api/codes/verify", operations={"post": {
        "summary": "Verify the code (single use); returns the voter's session",
        "requestBody": dict(required=True, **_json("CodeCheck")),
        "responses": _responses("verified", "Session", 400, 404, 413, 429, 503)}})
    spec.path("/api/votes", operations={"post": {
        "summary": "Vote (Authorization: Bearer <session>); idempotent on vote_id",
        "security": [{"session": []}],
        "requestBody": dict(required=True, **_json("PageVote")),
        "responses": _responses("accepted, with a receipt", "CastResult",
                                400, 401, 403, 404, 409, 413, 429, 503)}})
    spec.path("/api/receipts/{receipt}", operations={"get": {
        "summary": "Check that a vote was counted",
        "parameters": [_path_parameter(plugin, schemas.Receipt, "receipt",
                                       "the receipt, like ABCD-EFGH-IJKL-MNOP")],
        "responses": _responses("the vote's status", "ReceiptStatus", 400, 404, 503)}})
    return spec.to_dict()

