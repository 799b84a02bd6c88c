"""The campaign file: the shipped 2013 campaign loads; broken files are reported by key and line."""
import copy
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared.campaign import Campaign, CampaignFileError, load_campaign_file, validate_campaign
from shared.errors import ValidationError
from tests.conftest import OPEN_CAMPAIGN, campaign_document

SHIPPED = Path(__file__).resolve().parents[2] / "campaigns" / "cb-2013-siping.yml"

DICT_ERRORS_BUG = (
    "BUG: marshmallow 4 nests fields.Dict errors under 'key'/'value' "
    "({'categories': {'advanced_unit': {'value': {...}}}}); shared.validation.flatten_messages "
    "keeps those markers, so the dotted key reads 'categories.advanced_unit.value.award_slots' "
    "(or 'categories.x.key') and load_campaign_file then reports the category's line, not the "
    "offending key's line")

DATE_ONLY_BUG = (
    "BUG: LocalDateTime refuses a YAML date but accepts the string '2013-10-30' "
    "(datetime.fromisoformat gives midnight), so a quoted or RPC date-only deadline silently "
    "becomes 00:00 at the start of that day, a day early")

# A small, valid campaign file; the line numbers below are this text's.
BASE = """\
id: cb-test-file
name: 测试活动
timezone: Asia/Shanghai
nomination:
  deadline: 2013-10-30T23:59:59
voting:
  opens: 2013-11-01T08:00:00
  closes: 2013-11-20T20:00:00
weights: {public: 0.3, panel: 0.7}
vote_normalisation: top_100
panel_method: trimmed_mean
categories:
  advanced_unit:
    intake_cap: 50
    org_type_caps: {agency: 20, school: 5, enterprise: 2, community: 3, rural: 20}
    award_slots: 20
    criteria:
      - {key: organisation, name: 组织领导, weight: 0.3, max: 100}
      - {key: results, name: 学习成效, weight: 0.7, max: 100}
  learning_star:
    intake_cap: 50
    award_slots: 20
    criteria:
      - {key: deeds, name: 先进事迹, weight: 1, max: 100}
"""


def write(tmp_path, replacements=None):
    """BASE with some 1-based lines replaced (a replacement may hold several lines)."""
    lines = BASE.splitlines()
    for number, text in (replacements or {}).items():
        lines[number - 1] = text
    path = tmp_path / "campaign.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def problems_of(path):
    with pytest.raises(CampaignFileError) as caught:
        load_campaign_file(path)
    return caught.value.problems


# --- the shipped 2013 campaign ------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    return load_campaign_file(SHIPPED)


def test_shipped_campaign_loads_with_the_notices_caps(shipped):
    advanced = shipped["categories"]["advanced_unit"]
    assert shipped["id"] == "cb-2013-siping"
    assert advanced["intake_cap"] == 50
    assert advanced["org_type_caps"] == {
        "agency": 20, "school": 5, "enterprise": 2, "community": 3, "rural": 20}
    assert shipped["categories"]["learning_star"]["intake_cap"] == 50
    # The notice gives no caps for activities and carriers: open.
    assert shipped["categories"]["learning_activity"].get("intake_cap") is None
    assert shipped["categories"]["learning_carrier"].get("intake_cap") is None


def test_shipped_campaign_deadline_is_local_shanghai_time(shipped):
    campaign = Campaign(shipped)
    assert shipped["timezone"] == "Asia/Shanghai"
    assert shipped["nomination"]["deadline"] == "2013-10-30T23:59:59"
    assert campaign.nomination_deadline == datetime(2013, 10, 30, 15, 59, 59, tzinfo=timezone.utc)
    assert campaign.nomination_deadline.utcoffset().total_seconds() == 0
    assert campaign.voting_opens == datetime(2013, 11, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert campaign.voting_closes == datetime(2013, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


def test_shipped_campaign_answers_the_rules_questions(shipped):
    campaign = Campaign(shipped)
    assert campaign.intake_cap("advanced_unit") == 50
    assert campaign.org_type_cap("advanced_unit", "enterprise") == 2
    assert campaign.org_type_cap("learning_star", "agency") is None
    assert campaign.category("nonexistent") is None
    assert [c["key"] for c in campaign.criteria("advanced_unit")] == ["organisation", "results"]
    assert shipped["panel_method"] == "trimmed_mean"
    assert shipped["panel_options"]["trim_min_judges"] == 5


def test_shipped_campaign_validates_to_itself(shipped):
    """Its canonical form is stable: validating it again changes nothing."""
    assert validate_campaign(copy.deepcopy(shipped)) == shipped


# --- broken files: dotted key and line ---------------------------------------------------

CASES = [
    pytest.param({9: "weights: {public: 0.3, panel: 0.6}"},
                 "weights", 9, "add up to 1", id="weights-not-summing-to-1"),
    pytest.param({15: "    org_type_caps: {agency: 20, army: 5}"},
                 "categories.advanced_unit.org_type_caps.army", 15, "unknown org type",
                 id="unknown-org-type"),
    pytest.param({15: "    org_type_caps: {agency: 40, school: 20}"},
                 "categories.advanced_unit.org_type_caps", 15, "more than intake_cap 50",
                 id="org-type-caps-above-intake-cap"),
    pytest.param({16: "    award_slots: 60"},
                 "categories.advanced_unit.award_slots", 16, "intake cap of only 50",
                 id="award-slots-above-intake-cap"),
    pytest.param({19: "      - {key: results, name: 学习成效, weight: 0.6, max: 100}"},
                 "categories.advanced_unit.criteria", 17, "weights must add up to 1",
                 id="criteria-weights-not-summing-to-1"),
    pytest.param({19: "      - {key: organisation, name: 学习成效, weight: 0.7, max: 100}"},
                 "categories.advanced_unit.criteria", 17, "must be unique",
                 id="duplicate-criterion-keys"),
    pytest.param({19: "      - {key: results, name: 学习成效, weight: 0.7, min: 100, max: 100}"},
                 "categories.advanced_unit.criteria.1.max", 19, "greater than min",
                 id="max-not-above-min"),
    pytest.param({20: "  learning_stars:"},
                 "categories.learning_stars", 20, "unknown category",
                 id="unknown-category"),
    pytest.param({10: "vote_normalisation: top_1000"},
                 "vote_normalisation", 10, "unknown method 'top_1000'", id="unknown-normalisation"),
    pytest.param({11: "panel_method: median"},
                 "panel_method", 11, "unknown method 'median'", id="unknown-panel-method"),
    pytest.param({3: "timezone: Asia/Peking"},
                 "timezone", 3, "unknown time zone 'Asia/Peking'", id="unknown-timezone"),
    pytest.param({8: "  closes: 2013-10-20T20:00:00"},
                 "voting.closes", 8, "must be after opens", id="voting-closes-before-opens"),
    pytest.param({8: "  closes: 2013-11-01T08:00:00"},
                 "voting.closes", 8, "must be after opens", id="voting-closes-when-it-opens"),
    pytest.param({5: "  deadline: 2013-10-30"},
                 "nomination.deadline", 5, "needs a time as well as a date", id="deadline-date-only"),
    pytest.param({5: '  deadline: "2013-10-30"'},
                 "nomination.deadline", 5, "needs a time as well as a date",
                 id="deadline-quoted-date-only"),
    pytest.param({5: "  deadline: 2013-10-30T23:59:59+08:00"},
                 "nomination.deadline", 5, "without an offset", id="deadline-with-offset"),
    pytest.param({11: "panel_method: trimmed_mean\nbogus: 1"},
                 "bogus", 12, "Unknown field.", id="unknown-top-level-key"),
    pytest.param({21: "    intake_cap: 50\n    org_type_caps: {agency: 5}"},
                 "categories.learning_star.org_type_caps", 22, "only advanced_unit",
                 id="org-type-caps-on-learning-star"),
]


def test_base_file_is_valid(tmp_path):
    document = load_campaign_file(write(tmp_path))
    assert document["id"] == "cb-test-file"
    assert document["nomination"]["deadline"] == "2013-10-30T23:59:59"


@pytest.mark.parametrize("replacements,key,line,message", CASES)
def test_broken_file_reports_dotted_key_and_line(tmp_path, replacements, key, line, message):
    problems = problems_of(write(tmp_path, replacements))
    assert [(k, n) for k, n, _ in problems] == [(key, line)]
    assert message in problems[0][2]


@pytest.mark.parametrize("replacements,fragment,line,message", [
    ({20: "  learning_stars:"}, "learning_stars", 20, "unknown category"),
    ({15: "    org_type_caps: {agency: 20, army: 5}"}, "army", 15, "unknown org type"),
])
def test_bad_dictionary_key_is_named_and_reported(tmp_path, replacements, fragment, line, message):
    """What works today despite the dotted-key bug: the bad key is named in the report."""
    problems = problems_of(write(tmp_path, replacements))
    assert len(problems) == 1
    key, _, text = problems[0]
    assert key.startswith("categories.") and fragment in key
    assert message in text
    if fragment == "learning_stars":
        assert problems[0][1] == line


def test_file_error_message_names_path_key_and_line(tmp_path):
    path = write(tmp_path, {9: "weights: {public: 0.3, panel: 0.6}"})
    with pytest.raises(CampaignFileError) as caught:
        load_campaign_file(path)
    assert str(caught.value) == (
        f"{path}: weights (line 9): public and panel weights must add up to 1")
    assert caught.value.path == path


def test_several_problems_are_all_reported_sorted_by_key(tmp_path):
    problems = problems_of(write(tmp_path, {
        3: "timezone: Mars/Olympus", 9: "weights: {public: 0.3, panel: 0.6}",
        10: "vote_normalisation: top_1000"}))
    assert [(k, n) for k, n, _ in problems] == [
        ("timezone", 3), ("vote_normalisation", 10), ("weights", 9)]


def test_yaml_syntax_error_reports_its_line(tmp_path):
    problems = problems_of(write(tmp_path, {9: "weights: {public: 0.3, panel: [0.7}"}))
    assert len(problems) == 1
    key, line, _ = problems[0]
    assert (key, line) == ("(yaml)", 9)


def test_empty_file_is_refused_as_not_an_object(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("", encoding="utf-8")
    problems = problems_of(path)
    assert [(k, n) for k, n, _ in problems] == [("campaign", None)]


# --- validate_campaign: the RPC form ------------------------------------------------------

def invalid(document):
    with pytest.raises(ValidationError) as caught:
        validate_campaign(document)
    return caught.value.messages


def modified(**changes):
    document = copy.deepcopy(OPEN_CAMPAIGN)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = document
        for part in parents:
            target = target[part]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return document


def test_validate_campaign_fills_defaults():
    document = copy.deepcopy(OPEN_CAMPAIGN)
    del document["timezone"], document["units"]
    result = validate_campaign(document)
    assert result["timezone"] == "Asia/Shanghai"
    assert result["units"] == []
    assert result["panel_options"]["trim_min_judges"] == 5
    assert result["categories"]["learning_activity"]["criteria"][0]["min"] == 0


@pytest.mark.parametrize("document,key,message", [
    (modified(weights={"public": 0.5, "panel": 0.6}), "weights", "add up to 1"),
    (modified(weights={"public": 1.5, "panel": -0.5}), "weights.public", "between 0 and 1"),
    (modified(weights={"public": True, "panel": 0.7}), "weights.public", "must be a number"),
    (modified(voting={"opens": "2099-11-20T20:00:00", "closes": "2099-11-01T08:00:00"}),
     "voting.closes", "must be after opens"),
    pytest.param(modified(nomination={"deadline": "2099-10-30"}), "nomination.deadline",
                 "a time as well as a date"),
    (modified(nomination={"deadline": "2099-10-30T23:59:59Z"}), "nomination.deadline",
     "without an offset"),
    (modified(nomination={"deadline": 20991030}), "nomination.deadline", "local date and time"),
    (modified(vote_normalisation="median"), "vote_normalisation", "unknown method"),
    (modified(panel_method="top_100"), "panel_method", "unknown method"),
    (modified(timezone="Beijing"), "timezone", "unknown time zone"),
    (modified(bogus=1), "bogus", "Unknown field."),
    (modified(id="CB 2013"), "id", "lower-case"),
    (modified(units=["城关镇党委", "城关镇党委"]), "units", "unique"),
    (modified(panel_options={"trim_min_judges": 2}), "panel_options.trim_min_judges", "3 or more"),
    (modified(categories={}), "categories", "at least one category"),
    (modified(categories__learning_star__org_type_caps={"agency": 5}),
     "categories.learning_star.org_type_caps", "only advanced_unit"),
    (modified(categories__learning_activity__org_type_slots={"agency": 1}),
     "categories.learning_activity.org_type_slots", "only advanced_unit"),
    (modified(name=KeyError), "name", "Missing data for required field."),
])
def test_validate_campaign_names_the_dotted_field(document, key, message):
    messages = invalid(document)
    assert set(messages) == {key}
    assert any(message in text for text in messages[key])


@pytest.mark.parametrize("document,key,message", [
    (modified(categories__advanced_unit__award_slots=60),
     "categories.advanced_unit.award_slots", "intake cap of only 50"),
    (modified(categories__advanced_unit__org_type_slots={"agency": 30}),
     "categories.advanced_unit.org_type_slots", "more than award_slots 20"),
    (modified(categories__learning_star__criteria=[
        {"key": "deeds", "name": "先进事迹", "weight": 0.5, "max": 100}]),
     "categories.learning_star.criteria", "weights must add up to 1"),
    (modified(categories__learning_star__criteria=[
        {"key": "Deeds", "name": "先进事迹", "weight": 1, "max": 100}]),
     "categories.learning_star.criteria.0.key", "lower-case identifier"),
])
def test_validate_campaign_names_fields_inside_a_category(document, key, message):
    messages = invalid(document)
    assert set(messages) == {key}
    assert any(message in text for text in messages[key])


def test_validate_campaign_refuses_a_non_object():
    assert invalid(["cb-test"]) == {"campaign": ["must be an object"]}


def test_validation_error_value_is_json_of_the_messages():
    with pytest.raises(ValidationError) as caught:
        validate_campaign(modified(timezone="Beijing"))
    assert caught.value.exc_type == "ValidationError"
    assert caught.value.value == '{"timezone": ["unknown time zone \'Beijing\'"]}'


def test_campaign_document_helper_is_open():
    campaign = Campaign(campaign_document())
    assert campaign.nomination_deadline == datetime(2099, 10, 30, 15, 59, 59, tzinfo=timezone.utc)
    assert campaign.units == ["城关镇党委", "东河乡党委", "县教育局党组"]
