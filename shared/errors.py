"""The typed errors of CONTRACT.md, shared by services and their callers.

Every error is a subclass of nameko's ``RemoteError`` registered with
``deserialize_to_instance``. A service raises ``ValidationError({...})``; a caller
that imports this module catches ``ValidationError`` by type, and a caller that
does not (a township system written from CONTRACT.md) still receives a plain
``RemoteError`` whose ``exc_type`` is ``"ValidationError"`` and whose ``value``
is the JSON of the field messages. Either way ``exc_type`` and ``value`` agree.

Errors carry no page text: a page words a refusal by looking its class up in its own table
(:func:`describe`). A page that words one kind of refusal in several ways raises a
*refinement*, a subclass holding the facts the words need (``WrongCode(ValidationError)``
with the tries left); a refinement answers with the ``exc_type`` of the error it refines.
"""
import json

from nameko.exceptions import RemoteError, deserialize_to_instance


class PingxuanError(RemoteError):
    """Root of every refusal a pingxuan service gives. The message is plain words."""

    def __init__(self, message=""):
        message = str(message)
        Exception.__init__(self, message)
        self.exc_type = _registered_name(type(self))
        self.value = message

    def __str__(self):
        return self.value

    def __reduce__(self):
        return (type(self), (self.value,))


@deserialize_to_instance
class ValidationError(PingxuanError):
    """Bad input. ``messages`` maps dotted field names to lists of messages."""

    def __init__(self, messages):
        if isinstance(messages, str):
            text = messages
            try:
                messages = json.loads(messages)
            except ValueError:
                messages = None
            if not isinstance(messages, dict):
                # Not ours (e.g. a library's error that escaped a service): keep its words.
                messages = {"_schema": [text]}
        else:
            messages = {str(k): [str(m) for m in v] for k, v in messages.items()}
            text = json.dumps(messages, ensure_ascii=False, sort_keys=True)
        super().__init__(text)
        self.messages = messages


@deserialize_to_instance
class Unauthorized(PingxuanError):
    """The token is missing, forged, expired or revoked."""


@deserialize_to_instance
class Forbidden(PingxuanError):
    """A valid token whose role or scope does not allow the call."""


@deserialize_to_instance
class NotFound(PingxuanError):
    """No such campaign, nomination or candidate (or not visible to the caller)."""


@deserialize_to_instance
class Conflict(PingxuanError):
    """The call contradicts something already recorded (e.g. a reused client_ref)."""


@deserialize_to_instance
class DeadlinePassed(PingxuanError):
    """The campaign's nomination deadline has passed (逾期未報者視為棄權)."""


@deserialize_to_instance
class QuotaExceeded(PingxuanError):
    """An intake cap (county-wide or per org type) is full."""


@deserialize_to_instance
class InvalidState(PingxuanError):
    """The record is not in a state that allows the call."""


@deserialize_to_instance
class VotingClosed(PingxuanError):
    """A vote outside the campaign's voting window."""


@deserialize_to_instance
class DuplicateVote(PingxuanError):
    """The voter already voted for this candidate today."""


@deserialize_to_instance
class VoteLimitReached(PingxuanError):
    """The voter reached the daily vote cap."""


@deserialize_to_instance
class RateLimited(PingxuanError):
    """Too many requests from one device or address."""


@deserialize_to_instance
class PanelClosed(PingxuanError):
    """The panel is closed: no more scores."""


@deserialize_to_instance
class Unavailable(PingxuanError):
    """A fault that is not the caller's (the SMS channel, the store): the public pages answer
    HTTP 503. Not one of CONTRACT.md's refusals: no RPC method raises it."""


#: The errors a service may raise to a caller; pass to ``@rpc(expected_exceptions=...)``.
EXPECTED = (PingxuanError,)

#: CONTRACT.md's refusals.
CONTRACT = {cls.__name__: cls for cls in (
    ValidationError, Unauthorized, Forbidden, NotFound, Conflict, DeadlinePassed,
    QuotaExceeded, InvalidState, VotingClosed, DuplicateVote, VoteLimitReached,
    RateLimited, PanelClosed,
)}
#: Every registered error type, by the ``exc_type`` it travels as.
ALL = dict(CONTRACT, Unavailable=Unavailable)


def _registered_name(cls):
    """The ``exc_type`` of an error: its own name, or for a refinement the name of the
    registered error it refines (a caller written from CONTRACT.md knows only those)."""
    for base in cls.__mro__:
        if ALL.get(base.__name__) is base:
            return base.__name__
    return cls.__name__


def describe(table, error, *context):
    """What ``table`` says for ``error``: the entry of its class, or of the nearest class it
    derives from (so a refinement's words win over those of the error it refines, and an
    entry for ``Exception`` words everything else). An entry is the words, or a function of
    the error and ``context`` that returns them."""
    error = typed(error) if isinstance(error, RemoteError) else error
    for cls in type(error).__mro__:
        if cls in table:
            words = table[cls]
            return words(error, *context) if callable(words) else words
    raise LookupError(f"no words for {type(error).__name__}")


def typed(remote_error):
    """Return the typed error for a plain ``RemoteError`` (or it unchanged if unknown)."""
    if isinstance(remote_error, PingxuanError):
        return remote_error
    cls = ALL.get(getattr(remote_error, "exc_type", None))
    return cls(remote_error.value) if cls else remote_error
