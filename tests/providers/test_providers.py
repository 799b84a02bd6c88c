"""The shared dependency providers, bound to a container as nameko binds them."""
from datetime import timedelta
from unittest.mock import Mock

import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter
from pymongo.errors import DuplicateKeyError

from services.nomination.store import NominationStore
from shared.audit import AuditTrail, audit_entry
from shared.auth import Auth, token_id_of
from shared.clock import Clock
from shared.entrypoints import PingxuanService, rpc
from shared.errors import Unauthorized
from shared.metrics import Metrics
from shared.outbox import OutboxRelay, outbox_entry
from shared.store import MongoStore
from shared.timeutil import utcnow
from tests.conftest import TEST_KEY_CONFIG, TEST_SECRET, TEST_SERVICE_KEYS, at, token


def bound(provider, config, service_name="nomination", attr="dependency"):
    container = Mock(config=config, service_name=service_name)
    instance = provider.bind(container, attr)
    instance.setup()
    return instance


def test_mongo_store_builds_the_repository_and_its_unique_index(mongo_uri, db_name):
    store = bound(MongoStore(NominationStore), {"MONGO_URI": mongo_uri, "MONGO_DB": db_name})
    try:
        repository = store.get_dependency(Mock())
        assert isinstance(repository, NominationStore)
        assert repository.db.name == db_name
        repository.nominations.insert_one({"_id": "a", "unit": "u", "client_ref": "r"})
        with pytest.raises(DuplicateKeyError):
            repository.nominations.insert_one({"_id": "b", "unit": "u", "client_ref": "r"})
    finally:
        store.client.drop_database(db_name)
        store.stop()


def test_mongo_store_defaults_to_the_service_database(mongo_uri):
    store = bound(MongoStore(NominationStore), {"MONGO_URI": mongo_uri}, service_name="voting")
    assert store.get_dependency(Mock()).db.name == "pingxuan_voting"
    store.stop()


@pytest.mark.parametrize("keys, message", [
    ({}, "TOKEN_PUBLIC_KEYS must name the token issuer's public key"),
    ({"TOKEN_PUBLIC_KEYS": "short"}, "not an Ed25519 public key"),
    # The old shared secret, or the issuer's private key, has no place on a service.
    ({"TOKEN_PUBLIC_KEYS": TEST_SECRET}, "holds a private key"),
    ({"TOKEN_PUBLIC_KEYS": TEST_KEY_CONFIG["TOKEN_PUBLIC_KEYS"],
      "SERVICE_PUBLIC_KEYS": f"voting={TEST_SERVICE_KEYS['voting']}"}, "holds a private key"),
])
def test_auth_refuses_to_start_without_public_keys_only(mongo_uri, db_name, keys, message):
    with pytest.raises(RuntimeError, match=message):
        bound(Auth(), {"MONGO_URI": mongo_uri, "MONGO_DB": db_name, **keys})


def test_auth_verifies_and_honours_revocations(mongo_uri, db_name, db):
    auth = bound(Auth(), {"MONGO_URI": mongo_uri, "MONGO_DB": db_name, **TEST_KEY_CONFIG})
    unit_token = token("unit", "城关镇党委")
    caller = auth.get_dependency(Mock(context_data={"auth_token": unit_token}))
    assert caller.require("unit").unit_name == "城关镇党委"
    caller.record_revocation(token_id_of(unit_token), "2099-01-01T00:00:00Z")
    caller.record_revocation(token_id_of(unit_token), "2099-01-01T00:00:00Z")  # redelivered
    assert db["revoked_tokens"].count_documents({}) == 1
    with pytest.raises(Unauthorized):
        auth.get_dependency(Mock(context_data={"auth_token": unit_token})).require("unit")
    auth.stop()


def test_the_rehearsal_clock_starts_at_the_configured_instant():
    clock = bound(Clock(), {"CLOCK_START": "2013-10-15T02:00:00Z"})
    now = clock.get_dependency(Mock())()
    assert at("2013-10-15T02:00:00") <= now < at("2013-10-15T02:00:05")
    real = bound(Clock(), {})
    assert abs(real.get_dependency(Mock())() - utcnow()) < timedelta(seconds=2)


def test_outbox_relays_in_order_and_sweeps_only_stale_entries(db):
    trail = AuditTrail(db)
    relay = OutboxRelay(db["things"], trail)
    now = at("2099-01-01T00:00:00")
    entries = [outbox_entry(kind, {"event_id": f"e{n}", "n": n},
                            audit_entry({"name": "t"}, kind, "thing", "t1", "c", now), now)
               for n, kind in enumerate(["made", "changed"])]
    db["things"].insert_one({"_id": "t1", "outbox": entries})
    sent = []
    assert relay.sweep(lambda *a: sent.append(a), now + timedelta(seconds=1)) == 0
    assert relay.sweep(lambda *a: sent.append(a), now + timedelta(seconds=10)) == 2
    assert [event_type for event_type, _ in sent] == ["made", "changed"]
    assert db["things"].find_one({"_id": "t1"})["outbox"] == []
    # Replaying the same entries (a crash before the pull) does not double the audit trail.
    db["things"].update_one({"_id": "t1"}, {"$set": {"outbox": entries}})
    relay.relay("t1", lambda *a: sent.append(a))
    assert len(trail.read(campaign_id="c")) == 2


class Probe(PingxuanService):
    """A minimal service on the shared base, to see the metrics of each entrypoint kind."""

    name = "probe"

    @rpc
    def echo(self, value):
        return value

    @event_handler("somewhere", "happened")
    def on_happened(self, payload):
        if payload.get("fail"):
            raise ValueError("failed on purpose")


@pytest.mark.broker
def test_metrics_time_rpc_and_event_handlers_and_count_errors(container_factory, rabbit_config):
    config = dict(rabbit_config, **TEST_KEY_CONFIG, MONGO_URI="mongomock://probe/")
    config["SERVICE_KEY"] += f",probe={TEST_SERVICE_KEYS['voting']}"
    container = container_factory(Probe, config)
    container.start()
    with ServiceRpcProxy("probe", config) as probe:
        assert probe.echo(3) == 3
    with entrypoint_waiter(container, "on_happened"):
        event_dispatcher(config)("somewhere", "happened", {"fail": False})
    with entrypoint_waiter(container, "on_happened"):
        event_dispatcher(config)("somewhere", "happened", {"fail": True})
    provider = next(ext for ext in container.extensions if isinstance(ext, Metrics))
    registry = provider.registry
    assert registry.get_sample_value("pingxuan_rpc_seconds_count", {"method": "echo"}) == 1
    assert registry.get_sample_value("pingxuan_event_handler_seconds_count",
                                     {"handler": "on_happened"}) == 2
    assert registry.get_sample_value(
        "pingxuan_errors_total", {"entrypoint": "on_happened", "error": "ValueError"}) == 1
