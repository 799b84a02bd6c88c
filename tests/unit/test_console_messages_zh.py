"""Every refusal the console can show has Chinese words (services/console/messages_zh.py).

The messages are collected from the code, not listed by hand: each literal a service
passes to a refusal (``ValidationError``, ``InvalidState``, marshmallow's ``SchemaError``,
a validator's ``error=``, ...) in the five services the console calls and ``shared/``,
and marshmallow's own messages. A new refusal without Chinese fails here, and so does
a new kind of error nobody has said is, or is not, a refusal.
"""
import ast
import itertools
import string
from pathlib import Path

import pytest
from marshmallow import Schema, fields as marshmallow_fields, validate

from services.console import messages_zh
from shared.errors import ALL

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("nomination", "voting", "scoring", "aggregation", "notification")
SOURCES = [path for service in SERVICES
           for path in sorted((ROOT / "services" / service).rglob("*.py"))] + \
    sorted((ROOT / "shared").glob("*.py"))
#: The errors whose words reach a caller (BadRecipient's become a ValidationError's).
REFUSALS = set(ALL) | {"PingxuanError", "SchemaError", "BadRecipient"}
#: Errors (by the name of their class or factory) that never reach a caller as a refusal.
NOT_REFUSALS = {
    "ConfigError": "notification's configuration, refused when the service starts",
    "ChannelConfigError": "a channel's configuration, refused when the service starts",
    "_config_error": "notification's configuration, refused when the service starts",
    "DeliveryError": "a channel's failure, kept as the message's last error (data, not a refusal)",
    "EventSchemaError": "an event breaking its schema: a handler's failure, parked",
    "CampaignFileError": "its problems are the campaign schema's messages, collected as such",
    "AssertionError": "a bug", "RuntimeError": "a deployment mistake, at start",
    "ValueError": "caught inside the service", "TypeError": "a bug", "KeyError": "a bug",
    "SettingError": "a setting the service refuses at start (shared/config.py), not a call's",
    "LookupError": "a page's table of words lacks an error class: a bug, caught by its tests",
    "FileNotFoundError": "a page lists a static file that is in no folder: a bug, caught by its tests",
    "UnserializableValueError": "a method returning what JSON cannot carry: a bug, answered as nameko answers it",
}
#: Functions whose errors are no refusal of the console's calls, and why.
NOT_REFUSING = {
    "services/aggregation/service.py::rebuild":
        "error= there is the failure kept in the rebuild's progress record (data, not a refusal)",
    "services/voting/service.py::_unavailable":
        "the voting page's 503 when a channel or the store fails, with its own Chinese",
}
#: Refusals whose words are not a literal where raised, and where their words come from.
PASSED_ON = {
    "services/voting/schemas.py exc.messages": "the selector schema's messages, collected here",
    "services/voting/schemas.py value": "the same messages, filed under selector.",
    "services/notification/service.py str(exc)": "BadRecipient's words, collected here",
    "shared/errors.py text": "ValidationError's field messages, collected where it is raised",
    "shared/validation.py flatten_messages(exc.messages)": "every schema's messages, collected",
    "shared/validation.py _unwrap_mapping_errors(exc.messages)": "the same messages, re-keyed",
}
#: The console's own sentences about a service, and nameko's, that reach a refusal box.
OTHER_SENTENCES = [
    ("services/console/providers.py Unavailable", "{}.{} did not answer within the time allowed"),
    ("nameko UnknownService", "Unknown service `{}`"),
]


def _escaped(text):
    return text.replace("{", "{{").replace("}", "}}")


def _templates(node):
    """A string literal as format templates: each ``{expression}`` of an f-string is ``{}``,
    except a choice between two literals, which gives a template for each."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [_escaped(node.value)]
    if not isinstance(node, ast.JoinedStr):
        return None
    choices = []
    for part in node.values:
        if isinstance(part, ast.Constant):
            choices.append([_escaped(part.value)])
        elif isinstance(part.value, ast.IfExp) and _templates(part.value.body) \
                and _templates(part.value.orelse):
            choices.append(_templates(part.value.body) + _templates(part.value.orelse))
        else:
            choices.append(["{}"])
    return ["".join(parts) for parts in itertools.product(*choices)]


def _filed_under(function, name):
    """What a function files under ``name[...] = [...]`` or ``name.setdefault(...).extend(...)``."""
    found = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == name
                for t in node.targets):
            found.append(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("extend", "append") \
                and name in {n.id for n in ast.walk(node.func.value) if isinstance(n, ast.Name)}:
            found.extend(node.args)
    return found


class Collector:
    """The message templates in an expression passed to a refusal."""

    def __init__(self, tree):
        self.constants = {target.id: node.value for node in tree.body
                          if isinstance(node, ast.Assign) for target in node.targets
                          if isinstance(target, ast.Name) and _templates(node.value)}
        self.unread = []

    def messages(self, node, function):
        texts = _templates(node)
        if texts is not None:
            return texts
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [m for item in node.elts for m in self.messages(item, function)]
        if isinstance(node, ast.Dict):
            return [m for value in node.values for m in self.messages(value, function)]
        if isinstance(node, ast.DictComp):
            return self.messages(node.value, function)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self.messages(node.elt, function)
        if isinstance(node, ast.IfExp):
            return self.messages(node.body, function) + self.messages(node.orelse, function)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return [left + right for left in self.messages(node.left, function)
                    for right in self.messages(node.right, function)]
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.messages(self.constants[node.id], function)
        if isinstance(node, ast.Name) and function is not None:
            filed = _filed_under(function, node.id)
            if filed:
                return [m for value in filed for m in self.messages(value, function)]
        self.unread.append(ast.unparse(node))
        return []


def _name(func):
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None) or ""


def _with_functions(tree):
    """Each node with the innermost function around it."""
    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else function
            yield child, inner
            yield from visit(child, inner)
    yield from visit(tree, None)


def collect(source, where):
    """``(templates, unread, undecided)`` of one module's refusals: ``[(where, template)]``,
    the arguments that are no literal, the error names nobody has classified."""
    tree = ast.parse(source)
    collector = Collector(tree)
    # A refusal's subclass says its words in its own __init__: super().__init__("...").
    refusing_inits = {id(item) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                      and any(_name(base) in REFUSALS for base in node.bases)
                      for item in node.body
                      if isinstance(item, ast.FunctionDef) and item.name == "__init__"}
    found, unread, undecided = [], [], []
    for node, function in _with_functions(tree):
        if not isinstance(node, ast.Call) or \
                f"{where}::{getattr(function, 'name', '')}" in NOT_REFUSING:
            continue
        name = _name(node.func)
        arguments = []
        if name == "__init__" and id(function) in refusing_inits:
            arguments = node.args[:1]
        elif name in REFUSALS or (name.endswith("_error") and name not in NOT_REFUSALS):
            arguments = node.args[:1]
        elif name.endswith("Error") and name not in NOT_REFUSALS:
            undecided.append(f"{where}:{node.lineno} {name}")
        before = len(collector.unread)
        for argument in arguments:
            found += [(f"{where}:{node.lineno}", text)
                      for text in collector.messages(argument, function)]
        unread += [f"{where} {text}" for text in collector.unread[before:]]
        # A validator's own words: error="..." or error_messages={...}.
        for keyword in node.keywords:
            if keyword.arg in ("error", "error_messages") and (
                    _templates(keyword.value) or isinstance(keyword.value, (ast.Dict, ast.Name))):
                found += [(f"{where}:{node.lineno}", text)
                          for text in Collector(tree).messages(keyword.value, function)]
    return found, unread, undecided


def service_messages():
    found, unread, undecided = [], [], []
    for path in SOURCES:
        result = collect(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
        for into, items in zip((found, unread, undecided), result):
            into += items
    return found, unread, undecided


def marshmallow_messages():
    """marshmallow's own words: every field's and validator's default message, the schema's."""
    texts = set(Schema._default_error_messages.values())
    for value in vars(marshmallow_fields).values():
        if isinstance(value, type) and issubclass(value, marshmallow_fields.Field):
            for klass in value.__mro__:
                texts |= {m for m in getattr(klass, "default_error_messages", {}).values()
                          if isinstance(m, str)}
    for value in vars(validate).values():
        if isinstance(value, type) and issubclass(value, validate.Validator):
            texts |= {getattr(value, attribute) for attribute in dir(value)
                      if "message" in attribute and isinstance(getattr(value, attribute), str)}
    out = []
    for text in sorted(t for t in texts if t.endswith(".")):
        if "{{" in text:  # Range fills in its comparison first, then the bound
            out += [text.format(min_op=low, max_op=high) for low, high in (
                ("greater than or equal to", "less than or equal to"),
                ("greater than", "less than"))]
        else:
            out.append(text)
    return out


def sample(template):
    """The template with a made-up number in each hole, as a service would fill it."""
    holes = [(name, conversion) for _, name, _, conversion in string.Formatter().parse(template)
             if name is not None]
    named = {name: str(17 + i) for i, (name, _) in enumerate(holes) if name}
    positional = [str(17 + i) for i, (name, _) in enumerate(holes) if not name]
    return template.format(*positional, **named)


FOUND, UNREAD, UNDECIDED = service_messages()
SAID = sorted({(where, text) for where, text in FOUND
               if not messages_zh.already_chinese(text)}
              | {("marshmallow", text) for text in marshmallow_messages()}
              | set(OTHER_SENTENCES))


@pytest.mark.parametrize("where,template", SAID, ids=[f"{w} {t[:50]}" for w, t in SAID])
def test_every_refusal_a_service_can_give_has_chinese(where, template):
    said = sample(template)
    chinese = messages_zh.translate(said)
    assert chinese, f"{where}: no Chinese for {template!r}: add it to messages_zh.SENTENCES"
    assert messages_zh.already_chinese(chinese), (said, chinese)


def test_every_error_raised_is_known_to_be_a_refusal_or_not():
    assert UNDECIDED == [], "add the error to REFUSALS (and its words to SENTENCES) or " \
                            "NOT_REFUSALS with the reason"


def test_every_refusal_that_is_no_literal_passes_on_words_collected_elsewhere():
    assert sorted(set(UNREAD) - set(PASSED_ON)) == []


def test_every_sentence_of_the_table_is_one_a_service_says():
    said = [sample(template) for _, template in SAID]
    unused = [english for (pattern, _), english in zip(
        (compiled for compiled, _ in messages_zh.COMPILED), messages_zh.SENTENCES)
        if not any(pattern.fullmatch(text) for text in said)]
    assert unused == [], "remove what no service says any more"


def test_a_new_refusal_without_chinese_is_found():
    source = ('from shared.errors import InvalidState\n'
              'def f(x):\n'
              '    raise InvalidState(f"the moon of {x} is not full yet")\n')
    found, _, _ = collect(source, "services/nomination/new.py")
    assert found == [("services/nomination/new.py:3", "the moon of {} is not full yet")]
    assert messages_zh.translate(sample(found[0][1])) is None


def test_a_schema_error_filed_field_by_field_is_collected():
    source = ('def check(data):\n'
              '    errors = {}\n'
              '    errors["a"] = ["must be round"]\n'
              '    errors.setdefault("b", []).extend([f"{k} is odd" for k in data])\n'
              '    raise SchemaError(errors)\n'
              'N = fields.Integer(validate=validate.Range(min=1, error="must be 1 or more"))\n')
    found, unread, _ = collect(source, "shared/x.py")
    assert sorted(text for _, text in found) == ["must be 1 or more", "must be round",
                                                 "{} is odd"]
    assert unread == []


def test_a_new_kind_of_error_must_be_classified():
    _, _, undecided = collect("raise PanelFullError('x')\n", "services/scoring/new.py")
    assert undecided == ["services/scoring/new.py:1 PanelFullError"]


def test_the_sentence_carries_the_record_and_translates_known_words():
    assert messages_zh.translate(
        "nomination nom-1 is rejected; only a submitted nomination can be reviewed") == \
        "推荐表 nom-1 当前为“未通过”，只有待审核的推荐表才能审核。"
    assert messages_zh.translate(
        "the list of campaign cb-1 is already finalized; after publication only a "
        "disqualification changes it") == \
        "评选活动 cb-1 的名单已审定，不能再次发布；发布后只有取消资格才会改变名单。"
    assert messages_zh.translate("Must be greater than or equal to 1.") == "应不小于1。"
    assert messages_zh.translate("no panel has been assigned for learning_star in campaign "
                                 "cb-1") == "评选活动 cb-1 的“党员学习明星”尚未组建评审组。"


def test_sentences_joined_under_one_field_are_translated_one_by_one():
    assert messages_zh.translate("Not a valid string.; Unknown field.") == "应填写文字；不认识的字段。"
    assert messages_zh.joined(["此项必填。", "not a CIDR", "应为数字。"]) == \
        "此项必填；not a CIDR；应为数字。"
    assert messages_zh.translate("the moon is not full; Unknown field.") is None


def test_chinese_is_shown_as_it_is_and_an_english_sentence_with_a_chinese_term_is_not():
    assert messages_zh.translate("请选择评委名单文件（CSV或XLSX）。") == "请选择评委名单文件（CSV或XLSX）。"
    assert not messages_zh.already_chinese("objections are taken during 公示")
