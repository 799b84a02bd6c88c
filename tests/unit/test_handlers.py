"""The event-handler entrypoint's rules (shared/handlers.py) and the ``pingxuan events`` usage."""
import sys
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from shared import cli
from shared.handlers import (ATTEMPTS_HEADER, PARKED, QUEUE_HEADER, RETRIED, attempts_of,
                             next_step, origin_queue, retry_delay)


@given(st.integers(1, 40), st.floats(0.01, 10), st.floats(10, 3600))
def test_each_retry_waits_twice_as_long_up_to_the_cap(attempt, base, cap):
    delay = retry_delay(attempt, base, cap)
    assert 0 < delay <= cap
    assert retry_delay(attempt + 1, base, cap) == min(cap, 2 * delay) or delay == cap


@given(st.integers(1, 20))
def test_an_event_is_tried_exactly_the_configured_number_of_times(max_attempts):
    steps = [next_step(made, max_attempts) for made in range(1, max_attempts + 1)]
    assert steps == [RETRIED] * (max_attempts - 1) + [PARKED]


def test_a_missing_or_garbled_attempt_count_counts_as_none():
    assert attempts_of(None) == 0
    assert attempts_of({}) == 0
    assert attempts_of({ATTEMPTS_HEADER: "x"}) == 0
    assert attempts_of({ATTEMPTS_HEADER: -3}) == 0
    assert attempts_of({ATTEMPTS_HEADER: 4}) == 4


def test_a_parked_event_is_replayed_only_into_a_queue_of_its_own_service():
    def parked(queue):
        return SimpleNamespace(headers={QUEUE_HEADER: queue})

    own = "evt-nomination-nomination_reviewed--voting.on_nomination_reviewed"
    assert origin_queue("voting", parked(own)) == own
    assert origin_queue("scoring", parked(own)) is None
    assert origin_queue("voting", parked("rpc-voting")) is None
    assert origin_queue("voting", parked(None)) is None


def test_replay_must_be_told_which_events(capsys):
    assert cli.main(["events", "replay"]) == 2
    assert "--event-id" in capsys.readouterr().err
    assert cli.main(["events", "parked", "--service", "nobody"]) == 2
    assert "unknown service" in capsys.readouterr().err


# --- what the entrypoint does with a worker's outcome (no broker: the publish is recorded) ----

class Recorder:
    """Stands in for the queue consumer and the confirmed publish."""

    def __init__(self, publish_fails=False):
        self.publish_fails = publish_fails
        self.published, self.acked, self.requeued = [], [], []

    def publish(self, message, queue, headers, expiration=None):
        if self.publish_fails:
            raise ConnectionResetError("broker connection lost before the confirm")
        self.published.append((queue.name, headers, expiration))

    def ack_message(self, message):
        self.acked.append(message)

    def requeue_message(self, message):
        self.requeued.append(message)


def entrypoint(recorder, max_attempts=3):
    from shared.handlers import ReliableEventHandler, parking_queue, retry_queue

    handler = ReliableEventHandler("nomination", "nomination_reviewed")
    queue = "evt-nomination-nomination_reviewed--voting.on_nomination_reviewed"
    handler.method_name = "on_nomination_reviewed"
    handler.container = SimpleNamespace(dependencies=[], service_name="voting")
    handler.queue = SimpleNamespace(name=queue)
    handler.queue_consumer = recorder
    handler._publish = recorder.publish
    handler._metrics = None
    handler.max_attempts, handler.retry_base, handler.retry_cap = max_attempts, 1.0, 300.0
    handler.retry_queue, handler.parking_queue = retry_queue("voting", queue), parking_queue("voting")
    return handler


def failed():
    try:
        raise RuntimeError("store down")
    except RuntimeError:
        return sys.exc_info()


def test_a_failed_event_goes_to_the_retry_queue_with_its_try_count_and_is_then_acked():
    recorder = Recorder()
    message = SimpleNamespace(headers={ATTEMPTS_HEADER: 1})
    entrypoint(recorder).handle_message_processed(message, exc_info=failed())
    queue = "evt-nomination-nomination_reviewed--voting.on_nomination_reviewed.retry"
    assert recorder.published == [(queue, {ATTEMPTS_HEADER: 2}, 2.0)]
    assert recorder.acked == [message] and recorder.requeued == []


def test_the_last_failed_try_parks_the_event_with_the_error():
    from shared.handlers import ERROR_HEADER, HANDLER_HEADER

    recorder = Recorder()
    message = SimpleNamespace(headers={ATTEMPTS_HEADER: 2})
    entrypoint(recorder, max_attempts=3).handle_message_processed(message, exc_info=failed())
    [(queue, headers, expiration)] = recorder.published
    assert queue == "voting.parked" and expiration is None
    assert headers[ATTEMPTS_HEADER] == 3
    assert headers[ERROR_HEADER] == "RuntimeError: store down"
    assert headers[HANDLER_HEADER] == "on_nomination_reviewed"
    assert headers[QUEUE_HEADER] == \
        "evt-nomination-nomination_reviewed--voting.on_nomination_reviewed"
    assert recorder.acked == [message]


def test_an_event_whose_retry_is_not_confirmed_stays_with_the_broker():
    recorder = Recorder(publish_fails=True)
    message = SimpleNamespace(headers={})
    entrypoint(recorder).handle_message_processed(message, exc_info=failed())
    assert recorder.acked == []
    assert recorder.requeued == [message]


def test_an_applied_event_is_acked_and_nothing_published():
    recorder = Recorder()
    message = SimpleNamespace(headers={})
    entrypoint(recorder).handle_message_processed(message, result=None, exc_info=None)
    assert recorder.acked == [message] and recorder.published == []
