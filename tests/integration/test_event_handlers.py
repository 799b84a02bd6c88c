"""``@handles`` on the real RabbitMQ: a failed event is retried, a poisoned one parked, a repeat
applied once, and none of it holds up the events behind.

The voting service stands in for every consumer: its ballot comes from nomination's
``nomination_reviewed`` events, and a ballot entry lost to one failed store write is
the loss the entrypoint is there to prevent.
"""
import json

import pytest
from kombu import Connection
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter
from pymongo.errors import AutoReconnect

from services.voting.service import VotingService
from services.voting.store import VotingStore, ballot_entry
from shared.ballot import BallotCopy, candidate_of_event
from shared import events
from shared.handlers import (ATTEMPTS_HEADER, ERROR_HEADER, HANDLER_HEADER, QUEUE_HEADER,
                             ProcessedEvents, parking_queue_name)
from shared.metrics import Metrics
from shared.store import MongoStore, connect
from tests.system import free_port

pytestmark = pytest.mark.broker

HANDLER = "on_nomination_reviewed"
QUEUE = f"evt-{events.NOMINATION}-{events.NOMINATION_REVIEWED}--voting.{HANDLER}"


class FlakyBallotCopy(BallotCopy):
    """Voting's ballot whose writes fail as a test says, and which counts them."""

    failures_left = 0          # the next N writes fail (the store is briefly away)
    poisoned = set()           # candidates whose every write fails
    applied = []               # (candidate_id, ordering key) of each write that went through
    tried = []                 # candidate_id of each write tried, in order

    def write(self, candidate_id, fields, key):
        cls = FlakyBallotCopy
        cls.tried.append(candidate_id)
        if candidate_id in cls.poisoned:
            raise AutoReconnect(f"write of {candidate_id} refused")
        if cls.failures_left > 0:
            cls.failures_left -= 1
            raise AutoReconnect("primary stepped down")
        cls.applied.append((candidate_id, key))
        return super().write(candidate_id, fields, key)


class FlakyVotingStore(VotingStore):
    def __init__(self, db):
        super().__init__(db)
        self.ballot_copy = FlakyBallotCopy(db, "candidates", ballot_entry)


class FlakyVoting(VotingService):
    store = MongoStore(FlakyVotingStore)


@pytest.fixture
def config(service_config):
    FlakyBallotCopy.failures_left, FlakyBallotCopy.poisoned = 0, set()
    FlakyBallotCopy.applied, FlakyBallotCopy.tried = [], []
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}", OTP_SENDER="log",
                EVENT_HANDLER_ATTEMPTS=3, EVENT_RETRY_SECONDS=0.05)


@pytest.fixture
def voting(container_factory, config):
    container = container_factory(FlakyVoting, config)
    container.start()
    return container


def reviewed(candidate_id):
    return events.make_event(
        events.NOMINATION_REVIEWED, "cb-test", nomination_id=candidate_id, unit="城关镇党委",
        category="advanced_unit", org_type="agency", nominee_name=f"候选{candidate_id}",
        nominee_unit="县财政局", deeds_summary="坚持每周集中学习。", status="accepted",
        submitted_at="2099-10-20T02:00:00Z", decision="accept", opinion="符合条件")


def on_ballot(mongo_uri, config):
    db = connect(mongo_uri)[config["MONGO_DB"]]
    return {doc["_id"] for doc in VotingStore(db).candidates.find({"on_ballot": True})}


def events_total(container, outcome):
    metrics = next(d for d in container.dependencies if isinstance(d, Metrics))
    return metrics.registry.get_sample_value(
        "pingxuan_events_total", {"handler": HANDLER, "outcome": outcome}) or 0


def parked_messages(config):
    """Every message in voting's parking queue (taken off it)."""
    found = []
    with Connection(config["AMQP_URI"]) as connection:
        queue = connection.SimpleQueue(parking_queue_name("voting"))
        while True:
            try:
                message = queue.get(block=True, timeout=0.5)
            except queue.Empty:
                break
            found.append(message)
            message.ack()
        queue.close()
    return found


def succeeded(worker_ctx, result, exc_info):
    return exc_info is None


def test_an_event_whose_store_write_fails_once_still_applies(voting, config, mongo_uri):
    FlakyBallotCopy.failures_left = 1
    with entrypoint_waiter(voting, HANDLER, callback=succeeded, timeout=10):
        event_dispatcher(config)(events.NOMINATION, events.NOMINATION_REVIEWED, reviewed("nom-a"))
    assert on_ballot(mongo_uri, config) == {"nom-a"}
    assert events_total(voting, "retried") == 1
    assert events_total(voting, "applied") == 1
    assert events_total(voting, "parked") == 0


def test_an_event_that_always_fails_is_parked_and_the_events_behind_it_apply(
        voting, config, mongo_uri):
    FlakyBallotCopy.poisoned = {"nom-bad"}
    dispatch = event_dispatcher(config)
    poisoned = reviewed("nom-bad")
    failures = []

    def parked_after_three(worker_ctx, result, exc_info):
        if exc_info is not None:
            failures.append(exc_info)
        return len(failures) == 3

    with entrypoint_waiter(voting, HANDLER, callback=parked_after_three, timeout=15):
        dispatch(events.NOMINATION, events.NOMINATION_REVIEWED, poisoned)
        for candidate_id in ("nom-a", "nom-b"):
            dispatch(events.NOMINATION, events.NOMINATION_REVIEWED, reviewed(candidate_id))
            # Behind the poisoned event in the queue, yet applied while it waits for its retry.
    assert on_ballot(mongo_uri, config) == {"nom-a", "nom-b"}
    # The first try of the poisoned event came first; the later ones came after the others.
    assert FlakyBallotCopy.tried == ["nom-bad", "nom-a", "nom-b", "nom-bad", "nom-bad"]
    assert events_total(voting, "parked") == 1
    assert events_total(voting, "retried") == 2
    assert events_total(voting, "applied") == 2

    parked = parked_messages(config)
    assert len(parked) == 1
    message = parked[0]
    assert message.payload == poisoned
    assert message.headers[ATTEMPTS_HEADER] == 3
    assert message.headers[QUEUE_HEADER] == QUEUE
    assert message.headers[HANDLER_HEADER] == HANDLER
    assert "AutoReconnect" in message.headers[ERROR_HEADER]
    db = connect(mongo_uri)[config["MONGO_DB"]]
    assert not ProcessedEvents(db).seen(HANDLER, poisoned["event_id"])


def test_a_redelivered_event_applies_once(voting, config, mongo_uri):
    payload = reviewed("nom-a")
    dispatch = event_dispatcher(config)
    for _ in range(3):
        with entrypoint_waiter(voting, HANDLER, callback=succeeded, timeout=10):
            dispatch(events.NOMINATION, events.NOMINATION_REVIEWED, payload)
    assert FlakyBallotCopy.applied == [("nom-a", candidate_of_event(
        events.read_event(events.NOMINATION_REVIEWED, payload)).key)]
    assert events_total(voting, "applied") == 1
    assert events_total(voting, "duplicate") == 2
    db = connect(mongo_uri)[config["MONGO_DB"]]
    assert ProcessedEvents(db).seen(HANDLER, payload["event_id"])


def test_a_token_revocation_survives_a_failed_write(container_factory, config):
    """The shared handler too: one failed write used to lose a revocation for good."""
    from shared.auth import Auth

    class FlakyAuth(Auth):
        failures_left = 1

        def revoke(self, token_id, revoked_at):
            if FlakyAuth.failures_left:
                FlakyAuth.failures_left -= 1
                raise AutoReconnect("primary stepped down")
            return super().revoke(token_id, revoked_at)

    class RevokingVoting(VotingService):
        auth = FlakyAuth()

    container = container_factory(RevokingVoting, config)
    container.start()
    payload = events.make_event(events.TOKEN_REVOKED, None, token_id="tok-1")
    with entrypoint_waiter(container, "on_token_revoked", callback=succeeded, timeout=10):
        event_dispatcher(config)(events.ADMIN, events.TOKEN_REVOKED, payload)
    auth = next(d for d in container.dependencies if isinstance(d, FlakyAuth))
    assert auth.is_revoked("tok-1")


def test_the_operator_lists_a_parked_event_and_replays_it_once_fixed(
        voting, config, mongo_uri, monkeypatch, capsys):
    from shared import cli

    monkeypatch.setenv("AMQP_URI", config["AMQP_URI"])
    FlakyBallotCopy.poisoned = {"nom-bad"}
    poisoned = reviewed("nom-bad")
    failures = []

    def parked_after_three(worker_ctx, result, exc_info):
        failures.append(exc_info)
        return len(failures) == 3

    with entrypoint_waiter(voting, HANDLER, callback=parked_after_three, timeout=15):
        event_dispatcher(config)(events.NOMINATION, events.NOMINATION_REVIEWED, poisoned)

    for _ in range(2):  # listing leaves them parked
        assert cli.main(["events", "parked", "--service", "voting", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [(row["handler"], row["event_id"], row["attempts"]) for row in rows] == [
            (HANDLER, poisoned["event_id"], 3)]
        assert "AutoReconnect" in rows[0]["error"]

    assert cli.main(["events", "replay", "--service", "voting", "--event-id", "other"]) == 0
    assert "no parked event replayed" in capsys.readouterr().out

    FlakyBallotCopy.poisoned = set()  # the cause is fixed
    with entrypoint_waiter(voting, HANDLER, callback=succeeded, timeout=10):
        assert cli.main(["events", "replay", "--service", "voting", "--all"]) == 0
    assert "1 event(s) replayed" in capsys.readouterr().out
    assert on_ballot(mongo_uri, config) == {"nom-bad"}
    assert parked_messages(config) == []
    assert events_total(voting, "applied") == 1

