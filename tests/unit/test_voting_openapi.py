"""The voting page API's OpenAPI document: built by apispec from the schemas, and valid."""
import re

import pytest
from openapi_spec_validator import validate

from shared.validation import mainland_mobile
from services.voting import openapi, schemas, web

DOCUMENT = openapi.document()
COMPONENTS = DOCUMENT["components"]["schemas"]
OPERATIONS = [(path, method, operation) for path, item in DOCUMENT["paths"].items()
              for method, operation in item.items()]


def test_the_document_is_a_valid_openapi_3_document():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.0.3"
    assert {(path, method) for path, method, _ in OPERATIONS} == {
        ("/api/campaigns/{campaign_id}/ballot", "get"), ("/api/codes", "post"),
        ("/api/codes/verify", "post"), ("/api/votes", "post"),
        ("/api/receipts/{receipt}", "get")}


def test_request_bodies_are_the_schemas_the_entrypoints_load():
    for name, schema in [("CodeRequest", schemas.CodeRequest), ("CodeCheck", schemas.CodeCheck),
                         ("PageVote", schemas.PageVote)]:
        component = COMPONENTS[name]
        assert set(component["properties"]) == set(schema().fields)
        assert set(component["required"]) == {key for key, field in schema().fields.items()
                                              if field.required}
        assert component["additionalProperties"] is False          # unknown=RAISE
    assert COMPONENTS["CodeCheck"]["properties"]["code"]["pattern"] == r"^\d{6}$"
    assert COMPONENTS["PageVote"]["properties"]["vote_id"]["nullable"] is True


def test_nested_reply_schemas_are_components_of_their_own():
    ballot = COMPONENTS["Ballot"]["properties"]["categories"]["items"]
    assert ballot == {"$ref": "#/components/schemas/BallotCategory"}
    assert COMPONENTS["BallotCategory"]["properties"]["candidates"]["items"] == {
        "$ref": "#/components/schemas/BallotRow"}
    assert "VoidInfo" in COMPONENTS


@pytest.mark.parametrize("number, accepted", [
    ("13812345678", True), ("+8613812345678", True), ("86-13812345678", True),
    ("12812345678", False), ("1381234567", False), ("138123456789", False)])
def test_the_documented_mobile_pattern_is_the_rule_the_field_applies(number, accepted):
    pattern = COMPONENTS["CodeRequest"]["properties"]["mobile"]["pattern"]
    assert bool(re.match(pattern, number)) is accepted
    assert (mainland_mobile(number) is not None) is accepted


def test_path_parameters_carry_the_rule_of_the_field_that_loads_them():
    receipt = DOCUMENT["paths"]["/api/receipts/{receipt}"]["get"]["parameters"][0]
    assert receipt["in"] == "path" and receipt["required"] is True
    assert re.match(receipt["schema"]["pattern"], "ABCD-EFGH-IJKL-MNOP")
    assert not re.match(receipt["schema"]["pattern"], "abcd-efgh-ijkl-mnop")


@pytest.mark.parametrize("path, method, operation", OPERATIONS)
def test_every_refusal_is_documented_with_the_refusal_schema(path, method, operation):
    responses = operation["responses"]
    assert responses["200"]["content"]["application/json"]["schema"]["$ref"].startswith(
        "#/components/schemas/")
    refusals = {int(status) for status in responses if status != "200"}
    assert 400 in refusals and refusals <= set(web.STATUS.values()) | {400}
    for status in refusals:
        assert responses[str(status)]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Refusal"}
    assert set(COMPONENTS["Refusal"]["properties"]) == {"error", "message", "fields"}
