"""The contract's typed errors survive nameko's (de)serialisation as typed RemoteErrors."""
import json
import pickle

import pytest
from nameko.exceptions import RemoteError, deserialize, serialize

from shared import errors
from shared.errors import ALL, CONTRACT, PingxuanError, ValidationError, describe, typed

CONTRACT_NAMES = {
    "ValidationError", "Unauthorized", "Forbidden", "NotFound", "Conflict", "DeadlinePassed",
    "QuotaExceeded", "InvalidState", "VotingClosed", "DuplicateVote", "VoteLimitReached",
    "RateLimited", "PanelClosed",
}
#: Beyond the contract: the public pages' HTTP 503 (no RPC method raises it).
REGISTERED = CONTRACT_NAMES | {"Unavailable"}
MESSAGES = {"recommendation.sealed": ["must be true: the form must carry the unit's seal"],
            "mobile": ["must be a mainland China mobile number", "第二条"]}


def example(cls):
    return cls(MESSAGES) if cls is ValidationError else cls(f"{cls.__name__}: 规则拒绝了此调用")


def over_the_wire(exc):
    """What a caller gets: serialise, send as JSON, deserialise."""
    return deserialize(json.loads(json.dumps(serialize(exc))))


def test_all_lists_exactly_the_contracts_errors():
    assert set(CONTRACT) == CONTRACT_NAMES
    assert set(ALL) == REGISTERED
    for name, cls in ALL.items():
        assert cls.__name__ == name
        assert issubclass(cls, PingxuanError)
        assert issubclass(cls, RemoteError)
    assert errors.EXPECTED == (PingxuanError,)


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_round_trip_is_typed_and_a_remote_error(name):
    cls = ALL[name]
    original = example(cls)
    received = over_the_wire(original)
    assert type(received) is cls
    assert isinstance(received, RemoteError)
    assert received.exc_type == name
    assert received.value == original.value
    assert str(received) == original.value


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_serialised_form_has_contract_exc_type_and_value(name):
    original = example(ALL[name])
    data = serialize(original)
    assert data["exc_type"] == name
    assert data["exc_path"] == f"shared.errors.{name}"
    assert data["value"] == original.value


@pytest.mark.parametrize("name", sorted(REGISTERED - {"ValidationError"}))
def test_message_is_the_plain_words(name):
    exc = ALL[name]("the nomination deadline has passed")
    assert exc.value == "the nomination deadline has passed"
    assert str(exc) == "the nomination deadline has passed"
    assert exc.exc_type == name


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_pickle_round_trip(name):
    original = example(ALL[name])
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is ALL[name]
    assert copy.value == original.value


def test_validation_error_value_is_json_of_the_messages():
    exc = ValidationError(MESSAGES)
    assert json.loads(exc.value) == MESSAGES
    assert exc.messages == MESSAGES
    # Chinese stays readable, keys are sorted.
    assert "第二条" in exc.value
    assert exc.value.index('"mobile"') < exc.value.index('"recommendation.sealed"')


def test_validation_error_survives_the_wire_with_its_messages():
    received = over_the_wire(ValidationError(MESSAGES))
    assert isinstance(received, ValidationError)
    assert received.messages == MESSAGES
    assert json.loads(received.value) == MESSAGES


def test_validation_error_messages_are_strings():
    exc = ValidationError({1: [ValueError("bad"), 2]})
    assert exc.messages == {"1": ["bad", "2"]}


def test_plain_remote_error_is_what_an_untyped_caller_sees():
    """A caller that does not import shared.errors gets a RemoteError with the same fields."""
    data = serialize(ValidationError(MESSAGES))
    data["exc_path"] = "somewhere.else.ValidationError"
    plain = deserialize(data)
    assert type(plain) is RemoteError
    assert plain.exc_type == "ValidationError"
    assert json.loads(plain.value) == MESSAGES


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_typed_converts_a_plain_remote_error(name):
    original = example(ALL[name])
    plain = RemoteError(exc_type=name, value=original.value)
    converted = typed(plain)
    assert type(converted) is ALL[name]
    assert converted.value == original.value
    if name == "ValidationError":
        assert converted.messages == MESSAGES


def test_typed_leaves_typed_and_unknown_errors_alone():
    already = ALL["Conflict"]("x")
    assert typed(already) is already
    unknown = RemoteError(exc_type="KeyError", value="'x'")
    assert typed(unknown) is unknown
    no_type = RemoteError()
    assert typed(no_type) is no_type


def test_typed_never_raises_on_a_non_json_validation_error():
    plain = RemoteError(exc_type="ValidationError", value="{'mobile': ['bad']}")
    result = typed(plain)
    assert result is plain or isinstance(result, ValidationError)


class _Refined(errors.RateLimited):
    """A refinement, as a page words one kind of RateLimited apart from the others."""

    def __init__(self, wait_seconds):
        super().__init__("wait")
        self.wait_seconds = wait_seconds


def test_a_refinement_answers_as_the_error_it_refines():
    error = _Refined(30)
    assert error.exc_type == "RateLimited"
    assert typed(error) is error
    assert isinstance(error, errors.RateLimited)


def test_describe_takes_the_nearest_class_of_the_error():
    table = {errors.RateLimited: "太频繁", _Refined: lambda error, unit: f"{error.wait_seconds}{unit}",
             Exception: "系统繁忙"}
    assert describe(table, _Refined(30), "秒") == "30秒"
    assert describe(table, errors.RateLimited("x"), "秒") == "太频繁"
    assert describe(table, errors.NotFound("x"), "秒") == "系统繁忙"
    # A plain RemoteError of a registered type is worded as that type.
    assert describe(table, RemoteError("RateLimited", "x"), "秒") == "太频繁"
    with pytest.raises(LookupError):
        describe({errors.RateLimited: "太频繁"}, errors.NotFound("x"))


def test_errors_carry_no_page_text():
    for cls in ALL.values():
        error = example(cls)
        assert not hasattr(error, "zh") and not hasattr(error, "wrong")
