"""The event-handler entrypoint's rules (shared/handlers.py) and the ``pingxuan events`` usage."""
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
