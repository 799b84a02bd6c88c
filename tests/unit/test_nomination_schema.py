"""The 推薦表 schema: every bad input is a ValidationError that names its field."""
import re
from datetime import date, timedelta

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.nomination.schemas import Nomination
from shared.errors import ValidationError
from shared.validation import load
from tests.conftest import nomination_form

FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

REQUIRED = ("campaign_id", "category", "nominee_name", "nominee_unit", "unit_phone",
            "contact_person", "mobile", "email", "deeds_summary", "materials",
            "recommendation", "client_ref")
STRING_FIELDS = ("campaign_id", "category", "nominee_name", "nominee_unit", "unit_phone",
                 "contact_person", "mobile", "email", "deeds_summary", "materials", "client_ref")
MOBILE_PATTERN = re.compile(r"^1[3-9]\d{9}$")
RECOMMENDATION = {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                  "date": "2013-10-20"}


def nominate(form):
    return load(Nomination(), form, "nomination")


def refused(form):
    with pytest.raises(ValidationError) as caught:
        nominate(form)
    assert caught.value.exc_type == "ValidationError"
    return caught.value.messages


def recommendation(**changes):
    value = dict(RECOMMENDATION, **changes)
    return {k: v for k, v in value.items() if v is not KeyError}


def without(field):
    form = nomination_form()
    del form[field]
    return form


# --- a good form --------------------------------------------------------------------------

def test_complete_form_loads():
    result = nominate(nomination_form(client_ref="ref-001"))
    assert result["client_ref"] == "ref-001"
    assert result["org_type"] == "agency"
    assert result["party_post"] is None
    assert result["attachments"] == [{"name": "推荐表扫描件.pdf", "url": None, "sha256": None}]
    assert result["recommendation"]["sealed"] is True


def test_text_is_stripped():
    result = nominate(nomination_form(nominee_name="  县财政局机关党委\n", contact_person=" 李明 "))
    assert result["nominee_name"] == "县财政局机关党委"
    assert result["contact_person"] == "李明"


def test_learning_star_with_party_post_and_no_org_type_loads():
    result = nominate(nomination_form(category="learning_star", org_type=None,
                                      party_post="党支部书记", nominee_name="张三"))
    assert (result["category"], result["org_type"], result["party_post"]) == (
        "learning_star", None, "党支部书记")


def test_optional_fields_may_be_left_out():
    form = nomination_form()
    del form["fax"], form["attachments"]
    result = nominate(form)
    assert result["fax"] is None
    assert result["attachments"] == []


# --- required fields ----------------------------------------------------------------------

@pytest.mark.parametrize("field", REQUIRED)
def test_missing_required_field_is_named(field):
    assert refused(without(field)) == {field: ["Missing data for required field."]}


@pytest.mark.parametrize("field", REQUIRED)
def test_null_required_field_is_named(field):
    messages = refused(nomination_form(**{field: None}))
    assert set(messages) == {field}
    assert messages[field] == ["Field may not be null."]


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
@pytest.mark.parametrize("field", STRING_FIELDS)
def test_empty_or_whitespace_string_is_named(field, blank):
    assert set(refused(nomination_form(**{field: blank}))) == {field}


@pytest.mark.parametrize("field,limit", [("nominee_name", 100), ("nominee_unit", 200),
                                         ("contact_person", 50)])
def test_empty_text_message_gives_the_bounds(field, limit):
    assert refused(nomination_form(**{field: "  "})) == {
        field: [f"must be 1–{limit} characters long"]}


# --- category and org type ----------------------------------------------------------------

def test_unknown_category_is_named():
    messages = refused(nomination_form(category="best_unit"))
    assert set(messages) == {"category"}
    assert "must be one of advanced_unit" in messages["category"][0]


def test_unknown_org_type_is_named():
    messages = refused(nomination_form(org_type="army"))
    assert set(messages) == {"org_type"}
    assert "must be one of agency, school, enterprise, community, rural" in messages["org_type"][0]


@pytest.mark.parametrize("missing", [None, KeyError])
def test_advanced_unit_needs_an_org_type(missing):
    form = nomination_form(org_type=None)
    if missing is KeyError:
        del form["org_type"]
    messages = refused(form)
    assert set(messages) == {"org_type"}
    assert messages["org_type"][0].startswith("is required for advanced_unit")


@pytest.mark.parametrize("category", ["learning_activity", "learning_carrier", "learning_star"])
def test_org_type_only_on_advanced_unit(category):
    messages = refused(nomination_form(category=category, org_type="school", party_post="书记"))
    assert messages == {"org_type": ["only advanced_unit nominations have an org type"]}


@pytest.mark.parametrize("party_post", [KeyError, None, "   "])
def test_learning_star_needs_a_party_post(party_post):
    form = nomination_form(category="learning_star", org_type=None)
    if party_post is not KeyError:
        form["party_post"] = party_post
    messages = refused(form)
    assert set(messages) == {"party_post"}


def test_learning_star_without_party_post_message():
    assert refused(nomination_form(category="learning_star", org_type=None)) == {
        "party_post": ["is required for learning_star (黨內職務)"]}


# --- mobile, phone, e-mail ----------------------------------------------------------------

@pytest.mark.parametrize("mobile", ["12345678901", "2381234567", "1381234567", "138123456789",
                                    "10812345678", "23812345678", "+1 138 1234 5678",
                                    "138-1234-5678x", "852 9123 4567", "+886912345678",
                                    "1381234567a", "13812345678 ext 1"])
def test_non_mainland_mobile_is_refused(mobile):
    assert refused(nomination_form(mobile=mobile)) == {
        "mobile": ["must be a mainland China mobile number (11 digits starting 13–19)"]}


@pytest.mark.parametrize("mobile", ["+86 138 1234 5678", "+8613812345678", "86 13812345678",
                                    "8613812345678", "+86-13812345678", " 138 1234 5678 ",
                                    "13812345678"])
def test_mainland_mobile_is_normalised(mobile):
    assert nominate(nomination_form(mobile=mobile))["mobile"] == "13812345678"


@pytest.mark.parametrize("mobile", ["19912345678", "13012345678", "15912345678"])
def test_every_mainland_prefix_13_to_19_loads(mobile):
    assert nominate(nomination_form(mobile=mobile))["mobile"] == mobile


@pytest.mark.parametrize("mobile", ["13８１２３４５６７８", "13\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"])
def test_mobile_with_non_ascii_digits_is_refused_or_normalised(mobile):
    try:
        result = nominate(nomination_form(mobile=mobile))
    except ValidationError as exc:
        assert set(exc.messages) == {"mobile"}
    else:
        assert result["mobile"] == "13812345678"


@pytest.mark.parametrize("email", ["liming", "liming@", "@example.cn", "li ming@example.cn",
                                   "liming@example", "liming@@example.cn"])
def test_malformed_email_is_refused(email):
    assert refused(nomination_form(email=email)) == {
        "email": ["must be an e-mail address like name@example.cn"]}


def test_unit_phone_and_fax_must_be_telephone_numbers():
    assert set(refused(nomination_form(unit_phone="call me"))) == {"unit_phone"}
    assert set(refused(nomination_form(fax="12"))) == {"fax"}
    assert set(refused(nomination_form(unit_phone={"$gt": ""}))) == {"unit_phone"}
    assert nominate(nomination_form(unit_phone="0734 555-1234"))["unit_phone"] == "0734 555-1234"
    assert nominate(nomination_form(fax="+86 734 5551235"))["fax"] == "+86 734 5551235"


def test_phone_with_area_code_in_parentheses_loads():
    assert nominate(nomination_form(unit_phone="(0734) 555-1234"))["unit_phone"] == "(0734) 555-1234"


# --- lengths: characters, not bytes -------------------------------------------------------

def test_materials_of_exactly_3000_chinese_characters_load():
    materials = "学" * 3000
    assert len(materials.encode("utf-8")) == 9000
    assert nominate(nomination_form(materials=materials))["materials"] == materials


def test_materials_of_3001_characters_are_refused():
    assert refused(nomination_form(materials="学" * 3001)) == {
        "materials": ["must be 1–3000 characters long"]}


@pytest.mark.parametrize("field,message", [
    ("materials", "must be 1–3000 characters long"),
    ("deeds_summary", "must be 1–2000 characters long"),
])
def test_five_megabyte_text_is_refused(field, message):
    huge = "x" * (5 * 1024 * 1024)
    assert refused(nomination_form(**{field: huge})) == {field: [message]}


# --- the recommendation (推薦意見) -------------------------------------------------------

def test_unsealed_recommendation_is_refused_by_dotted_key():
    assert refused(nomination_form(recommendation=recommendation(sealed=False))) == {
        "recommendation.sealed": ["must be true: the form must carry the unit's seal"]}


@pytest.mark.parametrize("sealed", ["true", 1, "yes", None, [True]])
def test_seal_must_be_a_boolean(sealed):
    messages = refused(nomination_form(recommendation=recommendation(sealed=sealed)))
    assert set(messages) == {"recommendation.sealed"}
    if sealed is not None:
        assert messages["recommendation.sealed"] == ["must be true or false"]


@pytest.mark.parametrize("field", ["opinion", "signed_by", "sealed", "date"])
def test_recommendation_fields_are_required(field):
    assert refused(nomination_form(recommendation=recommendation(**{field: KeyError}))) == {
        f"recommendation.{field}": ["Missing data for required field."]}


def test_blank_signed_by_is_refused():
    assert set(refused(nomination_form(recommendation=recommendation(signed_by=" ")))) == {
        "recommendation.signed_by"}


def test_the_schema_leaves_the_future_to_the_campaigns_clock():
    # Only the campaign's zone and the service clock can say what "today" is
    # (domain.check_signed_not_in_future); the schema checks the form of the date.
    future = (date.today() + timedelta(days=30)).isoformat()
    assert nominate(nomination_form(recommendation=recommendation(date=future)))[
        "recommendation"]["date"] == future


def test_recommendation_dated_today_loads():
    today = date.today().isoformat()
    assert nominate(nomination_form(recommendation=recommendation(date=today)))[
        "recommendation"]["date"] == today


@pytest.mark.parametrize("bad_date", ["2013-02-30", "2013/10/20", "yesterday", "2013-10-20T08:00:00",
                                      20131020, {"$gt": ""}, None])
def test_malformed_recommendation_date_is_refused(bad_date):
    messages = refused(nomination_form(recommendation=recommendation(date=bad_date)))
    assert set(messages) == {"recommendation.date"}


def test_recommendation_date_is_normalised_to_iso():
    result = nominate(nomination_form(recommendation=recommendation(date="20131020")))
    assert result["recommendation"]["date"] == "2013-10-20"


def test_extra_field_in_recommendation_is_refused():
    assert refused(nomination_form(recommendation=recommendation(stamp="公章"))) == {
        "recommendation.stamp": ["Unknown field."]}


@pytest.mark.parametrize("value", ["同意推荐", ["同意推荐"], 1])
def test_recommendation_must_be_an_object(value):
    assert refused(nomination_form(recommendation=value)) == {
        "recommendation": ["Invalid input type."]}


# --- injection-shaped and unknown input ---------------------------------------------------

@pytest.mark.parametrize("field", ["nominee_name", "client_ref", "campaign_id", "mobile",
                                   "nominee_unit", "category", "contact_person"])
@pytest.mark.parametrize("operator", [{"$gt": ""}, {"$ne": None}, ["$gt"]])
def test_operator_object_where_a_string_belongs_is_refused(field, operator):
    assert refused(nomination_form(**{field: operator})) == {field: ["Not a valid string."]}


@pytest.mark.parametrize("operator", [{"$gt": ""}, ["$gt"]])
def test_operator_object_as_email_is_refused(operator):
    assert refused(nomination_form(email=operator)) == {
        "email": ["must be an e-mail address like name@example.cn"]}


def test_unknown_extra_field_is_refused():
    assert refused(nomination_form(unit="城关镇党委")) == {"unit": ["Unknown field."]}


def test_unknown_field_in_attachment_is_refused():
    assert refused(nomination_form(attachments=[{"name": "a.pdf", "$where": "1"}])) == {
        "attachments.0.$where": ["Unknown field."]}


def test_too_many_attachments_are_refused():
    assert refused(nomination_form(attachments=[{"name": f"{i}.pdf"} for i in range(21)])) == {
        "attachments": ["at most 20 attachments"]}


@pytest.mark.parametrize("client_ref", ["-leading-dash", "has space", "x" * 101, "引用"])
def test_bad_client_ref_is_refused(client_ref):
    assert set(refused(nomination_form(client_ref=client_ref))) == {"client_ref"}


@pytest.mark.parametrize("payload", [None, [], "nomination", 42, [nomination_form()]])
def test_non_dict_payload_is_refused(payload):
    assert refused(payload) == {"nomination": ["must be an object"]}


# --- properties ---------------------------------------------------------------------------

mobile_like = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"(\+?86[- ]?)?1[0-9]{10}", fullmatch=True),
    st.text(alphabet="0123456789 +-", max_size=20),
    st.builds(lambda digits, spaces: "".join(d + (" " if s else "") for d, s in zip(digits, spaces)),
              st.text(alphabet="0123456789", min_size=10, max_size=12),
              st.lists(st.booleans(), min_size=12, max_size=12)),
)


@FAST
@given(mobile=mobile_like)
def test_any_mobile_text_loads_to_a_mainland_number_or_is_refused(mobile):
    try:
        result = nominate(nomination_form(mobile=mobile))
    except ValidationError as exc:
        assert set(exc.messages) == {"mobile"}
    else:
        assert len(result["mobile"]) == 11
        assert MOBILE_PATTERN.match(result["mobile"])


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

TOP_FIELDS = tuple(Nomination().fields)
NESTED_FIELDS = tuple(f"recommendation.{name}" for name in RECOMMENDATION)
#: A valid but different category moves the complaint to the field it now requires.
RELATED = {"category": {"category", "org_type", "party_post"}}


def with_value(field, value):
    form = nomination_form()
    if field.startswith("recommendation."):
        form["recommendation"][field.split(".", 1)[1]] = value
    else:
        form[field] = value
    return form


@FAST
@given(field=st.sampled_from(TOP_FIELDS + NESTED_FIELDS), value=json_like)
def test_any_json_value_in_any_field_is_loaded_or_refused_by_name(field, value):
    try:
        nominate(with_value(field, value))
    except ValidationError as exc:
        allowed = RELATED.get(field, {field})
        for key in exc.messages:
            assert key in allowed or key.startswith(f"{field}."), (field, value, exc.messages)
