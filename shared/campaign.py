"""The campaign definition (the YAML file the department writes) and its validation.

``load_campaign_file`` reads YAML and reports each error with its dotted key and
line; ``validate_campaign`` checks a parsed document (as the services receive it
over RPC) and returns its canonical form; :class:`Campaign` answers the
questions the rules ask (deadline in UTC, caps, slots, criteria).
"""
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from marshmallow import (RAISE, Schema, fields, validate, validates, validates_schema)
from marshmallow import ValidationError as SchemaError

from shared import plugins, workdays, yamlfiles
from shared.errors import ValidationError
from shared.timeutil import local_to_utc
from shared.validation import FiniteNumber, Mapping, Text, load

CATEGORIES = ("advanced_unit", "learning_activity", "learning_carrier", "learning_star")
ORG_TYPES = ("agency", "school", "enterprise", "community", "rural")
CATEGORY_NAMES_ZH = {
    "advanced_unit": "创建学习型党组织先进单位",
    "learning_activity": "优秀学习活动",
    "learning_carrier": "优秀学习载体",
    "learning_star": "党员学习明星",
}
ORG_TYPE_NAMES_ZH = {
    "agency": "机关", "school": "学校", "enterprise": "企业", "community": "社区", "rural": "农村",
}
#: Only advanced units are split by org type (the notice's 20/5/2/3/20).
ORG_TYPED_CATEGORIES = ("advanced_unit",)
WEIGHT_TOLERANCE = 1e-9
CAMPAIGN_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
#: Vote rules a campaign may reorder or add to, never leave out (SPEC: the window, the
#: ballot, one vote per voter per candidate per day).
REQUIRED_VOTE_RULES = ("voting_window", "candidate_on_ballot", "one_vote_per_candidate_per_day")
#: A date with a time of day (an offset is matched here so that it can be refused by name).
LOCAL_DATETIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9:]+)?$")


class LocalDateTime(fields.Field):
    """A wall-clock time in the campaign's zone: ``2013-10-30T23:59:59`` (YAML may parse it)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            raise SchemaError("needs a time as well as a date, e.g. 2013-10-30T23:59:59")
        elif isinstance(value, str):
            if not LOCAL_DATETIME.match(value.strip()):
                raise SchemaError("needs a time as well as a date, e.g. 2013-10-30T23:59:59")
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise SchemaError("must be a local date and time like 2013-10-30T23:59:59")
        else:
            raise SchemaError("must be a local date and time like 2013-10-30T23:59:59")
        if moment.tzinfo is not None:
            raise SchemaError("must be local time without an offset; the zone is `timezone`")
        return moment.isoformat(timespec="seconds")

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class Criterion(StrictSchema):
    key = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z][a-z0-9_]{0,39}$", error="must be a lower-case identifier like `results`"))
    name = Text(100, required=True)
    weight = FiniteNumber(required=True)
    min = FiniteNumber(load_default=0)
    max = FiniteNumber(required=True)

    @validates("weight")
    def weight_in_range(self, value, **kwargs):
        if not 0 < value <= 1:
            raise SchemaError("must be greater than 0 and at most 1")

    @validates_schema
    def range_not_empty(self, data, **kwargs):
        if "max" in data and data["max"] <= data.get("min", 0):
            raise SchemaError({"max": ["must be greater than min"]})


def _count(**kwargs):
    return fields.Integer(strict=True, validate=validate.Range(min=0, error="must be 0 or more"),
                          **kwargs)


def _org_type_counts():
    return Mapping(keys=fields.String(validate=validate.OneOf(
        ORG_TYPES, error=f"unknown org type; one of {', '.join(ORG_TYPES)}")),
        values=fields.Integer(strict=True, validate=validate.Range(min=0, error="must be 0 or more")))


class CategoryRules(StrictSchema):
    """One award category: intake caps, award slots and panel criteria."""

    intake_cap = _count(load_default=None)
    org_type_caps = _org_type_counts()
    award_slots = fields.Integer(strict=True, required=True,
                                 validate=validate.Range(min=1, error="must be 1 or more"))
    org_type_slots = _org_type_counts()
    criteria = fields.List(fields.Nested(Criterion), required=True,
                           validate=validate.Length(min=1, error="needs at least one criterion"))

    @validates_schema
    def consistent(self, data, **kwargs):
        errors = {}
        criteria = data.get("criteria") or []
        keys = [c["key"] for c in criteria]
        if len(keys) != len(set(keys)):
            errors["criteria"] = ["criterion keys must be unique"]
        elif criteria and abs(sum(c["weight"] for c in criteria) - 1) > WEIGHT_TOLERANCE:
            errors["criteria"] = ["criterion weights must add up to 1"]
        cap, caps = data.get("intake_cap"), data.get("org_type_caps") or {}
        if cap is not None and sum(caps.values()) > cap:
            errors["org_type_caps"] = [f"add up to {sum(caps.values())}, more than intake_cap {cap}"]
        slots, org_slots = data.get("award_slots"), data.get("org_type_slots") or {}
        if slots is not None and sum(org_slots.values()) > slots:
            errors["org_type_slots"] = [
                f"add up to {sum(org_slots.values())}, more than award_slots {slots}"]
        if cap is not None and slots is not None and slots > cap:
            errors["award_slots"] = [f"{slots} slots but an intake cap of only {cap}"]
        over = {org_type: n for org_type, n in org_slots.items()
                if org_type in caps and n > caps[org_type]}
        if over:
            errors.setdefault("org_type_slots", []).extend([
                f"{org_type}: {n} slots but an intake cap of only {caps[org_type]}"
                for org_type, n in sorted(over.items())])
        if errors:
            raise SchemaError(errors)


class Suspicion(StrictSchema):
    """Thresholds of ``voting.suspicious`` (刷票 findings; services/voting/README.md)."""

    rules = fields.List(fields.String(), validate=validate.Length(
        min=1, error="needs at least one rule"))
    burst_votes = fields.Integer(strict=True, validate=validate.Range(
        min=2, error="must be 2 or more"))
    burst_minutes = fields.Integer(strict=True, validate=validate.Range(
        min=1, max=1440, error="must be 1–1440"))
    spike_factor = FiniteNumber(validate=validate.Range(min=1, error="must be 1 or more"))
    spike_min_votes = fields.Integer(strict=True, validate=validate.Range(
        min=1, error="must be 1 or more"))
    agent_voters = fields.Integer(strict=True, validate=validate.Range(
        min=2, error="must be 2 or more"))
    agent_minutes = fields.Integer(strict=True, validate=validate.Range(
        min=1, max=1440, error="must be 1–1440"))

    @validates("rules")
    def known_rules(self, value, **kwargs):
        for name in value:
            _known_plugin(plugins.SUSPICION_RULES, name)


class Window(StrictSchema):
    opens = LocalDateTime(required=True)
    closes = LocalDateTime(required=True)
    # Voting rules of the public window (used by the voting service).
    daily_limit = fields.Integer(strict=True, load_default=None,
                                 validate=validate.Range(min=1, error="must be 1 or more"))
    # Optional (voting service, services/voting/README.md): per-IP throttle and rule plugins.
    ip_limit = fields.Integer(strict=True, validate=validate.Range(
        min=1, error="must be 1 or more"))
    ip_window_seconds = fields.Integer(strict=True, validate=validate.Range(
        min=1, max=86400, error="must be 1–86400"))
    # One-time code requests per address per hour (default in services/voting/domain.py);
    # raise it where many residents share one carrier NAT address.
    code_ip_limit = fields.Integer(strict=True, validate=validate.Range(
        min=1, error="must be 1 or more"))
    rules = fields.List(fields.String(), validate=validate.Length(
        min=1, error="needs at least one rule"))
    # What ``voting.suspicious`` flags (defaults in services/voting/suspicion.py).
    suspicion = fields.Nested(Suspicion)

    @validates("rules")
    def known_rules(self, value, **kwargs):
        for name in value:
            _known_plugin(plugins.VOTE_RULES, name)
        missing = [name for name in REQUIRED_VOTE_RULES if name not in value]
        if missing:
            raise SchemaError(f"must include {', '.join(missing)}: every vote must be inside the "
                              "window, for a candidate on the ballot, once per voter, candidate "
                              "and day")

    @validates_schema
    def ordered(self, data, **kwargs):
        if "opens" in data and "closes" in data and data["opens"] >= data["closes"]:
            raise SchemaError({"closes": ["must be after opens"]})


class NominationWindow(StrictSchema):
    deadline = LocalDateTime(required=True)


class Weights(StrictSchema):
    public = FiniteNumber(required=True)
    panel = FiniteNumber(required=True)

    @validates_schema
    def add_up_to_one(self, data, **kwargs):
        for key in ("public", "panel"):
            if key in data and not 0 <= data[key] <= 1:
                raise SchemaError({key: ["must be between 0 and 1"]})
        if {"public", "panel"} <= data.keys() and abs(
                data["public"] + data["panel"] - 1) > WEIGHT_TOLERANCE:
            raise SchemaError({"_schema": ["public and panel weights must add up to 1"]})


class PanelOptions(StrictSchema):
    #: trimmed_mean drops the highest and lowest score only with at least this many judges.
    trim_min_judges = fields.Integer(strict=True, load_default=5,
                                     validate=validate.Range(min=3, error="must be 3 or more"))
    #: When the panel review is due to close (local time): told to judges, and judges with
    #: scores missing are reminded before it. The panel closes only by ``close_panel``.
    closes = LocalDateTime(load_default=None)


class ResultsOptions(StrictSchema):
    #: Decimals of the published scores: the composite is ranked on what is shown.
    precision = fields.Integer(strict=True, load_default=2, validate=validate.Range(
        min=0, max=6, error="must be a whole number from 0 to 6"))


#: A 公示 published this long after voting closes still falls in years the calendar must know
#: when the campaign is loaded (services/aggregation/README.md, "The 公示 period").
PUBLICITY_HORIZON_DAYS = 120
MAX_PUBLICITY_WORKING_DAYS = 30


class Publicity(StrictSchema):
    """公示: each revision of the list is open to objections for this many working days."""

    working_days = fields.Integer(strict=True, validate=validate.Range(
        min=1, max=MAX_PUBLICITY_WORKING_DAYS,
        error=f"must be 1–{MAX_PUBLICITY_WORKING_DAYS} working days"))
    # One-time code requests per address per hour on the 公示 page's objection form
    # (default in shared/one_time_codes.py), as voting.code_ip_limit is for the voting page.
    code_ip_limit = fields.Integer(strict=True, validate=validate.Range(
        min=1, error="must be 1 or more"))


class CampaignSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Regexp(
        CAMPAIGN_ID_PATTERN, error="must be lower-case letters, digits and '-' (2–64), like cb-2013-siping"))
    name = Text(200, required=True)
    timezone = fields.String(load_default="Asia/Shanghai")
    nomination = fields.Nested(NominationWindow, required=True)
    voting = fields.Nested(Window, required=True)
    weights = fields.Nested(Weights, required=True)
    vote_normalisation = fields.String(required=True)
    panel_method = fields.String(required=True)
    panel_options = fields.Nested(PanelOptions, load_default=lambda: {"trim_min_judges": 5})
    results = fields.Nested(ResultsOptions, load_default=lambda: {"precision": 2})
    #: Optional: without it objections are taken from publication until ``finalize``.
    publicity = fields.Nested(Publicity)
    #: The nominating units expected to send (for the forfeit report); optional.
    units = fields.List(Text(200), load_default=list)
    categories = Mapping(
        keys=fields.String(validate=validate.OneOf(
            CATEGORIES, error=f"unknown category; one of {', '.join(CATEGORIES)}")),
        values=fields.Nested(CategoryRules), required=True,
        validate=validate.Length(min=1, error="needs at least one category"))

    @validates("timezone")
    def known_zone(self, value, **kwargs):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SchemaError(f"unknown time zone '{value}'")

    @validates("vote_normalisation")
    def known_normalisation(self, value, **kwargs):
        _known_plugin(plugins.VOTE_NORMALISATION, value)

    @validates("panel_method")
    def known_panel_method(self, value, **kwargs):
        _known_plugin(plugins.PANEL_METHODS, value)

    @validates("units")
    def unique_units(self, value, **kwargs):
        if len(value) != len(set(value)):
            raise SchemaError("units must be unique")

    @validates_schema
    def publicity_years_known(self, data, **kwargs):
        """The holiday calendar must know every year the 公示 can fall in: never guess one."""
        if not (data.get("publicity") or {}).get("working_days") or "voting" not in data \
                or "timezone" not in data:
            return
        closes = datetime.fromisoformat(data["voting"]["closes"])
        horizon = closes + timedelta(days=PUBLICITY_HORIZON_DAYS)
        try:
            workdays.check_years_known(closes.year, horizon.year)
        except workdays.UnknownYear as exc:
            raise SchemaError({"publicity.working_days": [
                f"cannot count working days of {exc.year}: {exc}. A 公示 published within "
                f"{PUBLICITY_HORIZON_DAYS} days after voting closes may fall in it"]})

    @validates_schema
    def only_advanced_units_by_org_type(self, data, **kwargs):
        errors = {}
        for name, rules in (data.get("categories") or {}).items():
            if name not in ORG_TYPED_CATEGORIES:
                for key in ("org_type_caps", "org_type_slots"):
                    if rules.get(key):
                        errors[f"categories.{name}.{key}"] = [
                            "only advanced_unit is divided by org type"]
        if errors:
            raise SchemaError(errors)


def _known_plugin(group, value):
    names = plugins.plugin_names(group)
    if value not in names:
        raise SchemaError(f"unknown method '{value}'; one of {', '.join(names)}")


def validate_campaign(document):
    """The canonical (JSON-safe) campaign, or the contract's ``ValidationError``."""
    return load(CampaignSchema(), document, "campaign")


class CampaignFileError(ValueError):
    """A campaign file that cannot be loaded; ``problems`` lists ``(key, line, message)``."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = problems
        lines = [f"{path}: {key}" + (f" (line {line})" if line else "") + f": {message}"
                 for key, line, message in problems]
        super().__init__("\n".join(lines))


def _key_lines(node, prefix="", lines=None):
    """Map each dotted key of a composed YAML document to its 1-based line."""
    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            lines[path] = key_node.start_mark.line + 1
            _key_lines(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = f"{prefix}.{index}"
            lines[path] = item.start_mark.line + 1
            _key_lines(item, path, lines)
    return lines


def _line_of(key, lines):
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None


def load_campaign_file(path):
    """Read and validate a campaign YAML file; returns the canonical document."""
    with open(path, encoding="utf-8") as handle:
        return load_campaign_text(handle.read(), path)


def load_campaign_text(text, path="campaign.yml"):
    """Validate a campaign file's text (an upload); errors name ``path``, the key and its line."""
    try:
        document = yamlfiles.load(text)
        lines = _key_lines(yamlfiles.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CampaignFileError(path, [("(yaml)", mark.line + 1 if mark else None, str(exc))])
    try:
        return validate_campaign(document)
    except ValidationError as exc:
        raise CampaignFileError(path, [
            (key, _line_of(key, lines), "; ".join(messages))
            for key, messages in sorted(exc.messages.items())])


class Campaign:
    """A validated campaign and the questions the rules ask of it."""

    def __init__(self, document):
        self.document = document
        self.id = document["id"]
        self.name = document["name"]
        self.timezone = document["timezone"]
        self.units = document.get("units") or []

    @property
    def nomination_deadline(self):
        """The deadline as an aware UTC datetime (the file gives local time)."""
        return local_to_utc(datetime.fromisoformat(self.document["nomination"]["deadline"]),
                            self.timezone)

    @property
    def voting_opens(self):
        return local_to_utc(datetime.fromisoformat(self.document["voting"]["opens"]), self.timezone)

    @property
    def voting_closes(self):
        return local_to_utc(datetime.fromisoformat(self.document["voting"]["closes"]), self.timezone)

    @property
    def categories(self):
        return self.document["categories"]

    def category(self, name):
        """The rules of one category, or ``None`` if the campaign does not run it."""
        return self.categories.get(name)

    def intake_cap(self, category):
        return self.categories[category].get("intake_cap")

    def org_type_cap(self, category, org_type):
        return (self.categories[category].get("org_type_caps") or {}).get(org_type)

    def criteria(self, category):
        return self.categories[category]["criteria"]

    @property
    def publicity_working_days(self):
        """Working days of each revision's 公示, or ``None`` (objections until ``finalize``)."""
        return (self.document.get("publicity") or {}).get("working_days")

