"""HTTP plumbing of the voting page and its JSON API: bounded bodies, the client's address,
each refusal's HTTP status (never a 500 for bad input; the words are ``messages.py``)."""
import json

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from shared.errors import ValidationError

#: A vote, a number or a code fits in far less; anything bigger is refused unread.
MAX_BODY = 16 * 1024

STATUS = {
    "ValidationError": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404,
    "Conflict": 409, "VotingClosed": 403, "DuplicateVote": 409, "VoteLimitReached": 429,
    "RateLimited": 429, "InvalidState": 409, "TooLarge": 413, "Unavailable": 503,
}


class TooLarge(ValidationError):
    """A request body over ``MAX_BODY`` (HTTP 413; the JSON API names it ``TooLarge``)."""

    def __init__(self):
        super().__init__({"body": [f"must be at most {MAX_BODY} bytes"]})
        self.exc_type = "TooLarge"

    def __reduce__(self):
        return (type(self), ())


class NotJson(ValidationError):
    """A body that is not JSON text at all."""

    def __init__(self):
        super().__init__({"body": ["must be a JSON object"]})

    def __reduce__(self):
        return (type(self), ())


class NotAnObject(ValidationError):
    """A body that is JSON, but not an object."""

    def __init__(self):
        super().__init__({"body": ["must be a JSON object"]})

    def __reduce__(self):
        return (type(self), ())


def status_of(error):
    return STATUS.get(getattr(error, "exc_type", ""), 400)


def bounded(request):
    """Refuse a body over ``MAX_BODY`` before reading it (a declared length) or while reading."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise TooLarge()
    request.max_content_length = MAX_BODY
    request.max_form_memory_size = MAX_BODY


def json_body(request):
    """The request's JSON object, or a ``ValidationError`` naming ``body``."""
    bounded(request)
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise TooLarge()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise NotJson()
    if not isinstance(data, dict):
        raise NotAnObject()
    return data


def form_body(request):
    bounded(request)
    try:
        return {key: value for key, value in request.form.items()}
    except RequestEntityTooLarge:
        raise TooLarge()


def bearer(request):
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def html(body, status=200, cookies=()):
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    for name, value, max_age in cookies:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict",
                            path="/")
    return response


def redirect(location, cookies=()):
    response = Response("", status=303, headers={"Location": location})
    for name, value, max_age in cookies:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict",
                            path="/")
    return response
