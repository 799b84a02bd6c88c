"""The contract's typed errors survive nameko's (de)serialisation as typed RemoteErrors."""
import json
import pickle

import pytest
from nameko.exceptions import RemoteError, deserialize, serialize

from shared import errors
from shared.errors import ALL, PingxuanError, ValidationError, typed

CONTRACT_NAMES = {
    "ValidationError", "Unauthorized", "Forbidden", "NotFound", "Conflict", "DeadlinePassed",
    "QuotaExceeded", "InvalidState", "VotingClosed", "DuplicateVote", "VoteLimitReached",
    "RateLimited", "PanelClosed",
}
MESSAGES = {"recommendation.sealed": ["must be true: the form must carry the unit's seal"],
            "mobile": ["must be a mainland China mobile number", "第二条"]}


def example(cls):
    return cls(MESSAGES) if cls is ValidationError else cls(f"{cls.__name__}: 规则拒绝了此调用")


def over_the_wire(exc):
    """What a caller gets: serialise, send as JSON, deserialise."""
    return deserialize(json.loads(json.dumps(serialize(exc))))


def test_all_lists_exactly_the_contracts_errors():
    assert set(ALL) == CONTRACT_NAMES
    for name, cls in ALL.items():
        assert cls.__name__ == name
        assert issubclass(cls, PingxuanError)
        assert issubclass(cls, RemoteError)
    assert errors.EXPECTED == (PingxuanError,)


@pytest.mark.parametrize("name", sorted(CONTRACT_NAMES))
def test_round_trip_is_typed_and_a_remote_error(name):
    cls = ALL[name]
    original = example(cls)
    received = over_the_wire(original)
    assert type(received) is cls
    assert isinstance(received, RemoteError)
    assert received.exc_type == name
    assert received.value == original.value
    assert str(received) == original.value


@pytest.mark.parametrize("name", sorted(CONTRACT_NAMES))
def test_serialised_form_has_contract_exc_type_and_value(name):
    original = example(ALL[name])
    data = serialize(original)
    assert data["exc_type"] == name
    assert data["exc_path"] == f"shared.errors.{name}"
    assert data["value"] == original.value


@pytest.mark.parametrize("name", sorted(CONTRACT_NAMES - {"ValidationError"}))
def test_message_is_the_plain_words(name):
    exc = ALL[name]("the nomination deadline has passed")
    assert exc.value == "the nomination deadline has passed"
    assert str(exc) == "the nomination deadline has passed"
    assert exc.exc_type == name


@pytest.mark.parametrize("name", sorted(CONTRACT_NAMES))
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


@pytest.mark.parametrize("name", sorted(CONTRACT_NAMES))
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
