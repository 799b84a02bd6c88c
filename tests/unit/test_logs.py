"""JSON log lines carry the running worker's call id."""
import json
import logging
from unittest.mock import Mock

from shared.logs import CallIdTracker, JsonFormatter


def record(message):
    return logging.LogRecord("pingxuan.test", logging.INFO, __file__, 1, message, (), None)


def test_a_line_is_json_with_the_call_id_of_the_running_worker():
    tracker = CallIdTracker()
    formatter = JsonFormatter(service="nomination")
    tracker.worker_setup(Mock(call_id="nomination.submit.42"))
    line = json.loads(formatter.format(record("提名已受理")))
    assert line["call_id"] == "nomination.submit.42"
    assert line["service"] == "nomination"
    assert line["message"] == "提名已受理"
    assert line["at"].endswith("Z")
    tracker.worker_teardown(Mock())
    assert "call_id" not in json.loads(formatter.format(record("idle")))
