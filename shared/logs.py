"""Structured (JSON) logs, each line carrying the nameko call id of the worker that wrote it.

``CallIdTracker`` (a dependency provider on every service) remembers the call id
of the running worker in a greenthread-local; ``JsonFormatter`` writes one JSON
object per line with it. Nothing here logs arguments, tokens or secrets.
"""
import json
import logging
import threading
import time

from nameko.extensions import DependencyProvider

_current = threading.local()  # greenthread-local once eventlet has monkey-patched threading


def current_call_id():
    return getattr(_current, "call_id", None)


class CallIdTracker(DependencyProvider):
    """Makes the running worker's call id available to log records."""

    def worker_setup(self, worker_ctx):
        _current.call_id = worker_ctx.call_id

    def worker_teardown(self, worker_ctx):
        _current.call_id = None


class JsonFormatter(logging.Formatter):
    """``{"at", "level", "logger", "message", "call_id", ...}`` per line."""

    def __init__(self, service=None, **kwargs):
        super().__init__(**kwargs)
        self.service = service

    def format(self, record):
        line = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            line["service"] = self.service
        call_id = current_call_id()
        if call_id:
            line["call_id"] = call_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)

    def formatTime(self, record, datefmt=None):
        return time.strftime(datefmt, time.gmtime(record.created))  # UTC, like stored times
