"""No silent in-memory store: a service starts only on a store it was told to use, and
says which (``/health``) and whether MongoDB and RabbitMQ answer (``/ready``)."""
import os
from pathlib import Path
from unittest.mock import Mock

import pytest
import requests
from nameko.cli.main import setup_yaml_parser
import yaml

from shared.auth import Auth
from shared.campaigns import Campaigns
from shared.entrypoints import Readiness
from shared.store import MongoStore, StoreNotConfigured, store_uri
from services.nomination.service import NominationService
from services.nomination.store import NominationStore
from tests.conftest import TEST_KEY_CONFIG
from tests.providers.test_providers import bound

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("nomination", "voting", "scoring", "aggregation", "notification")


def service_config_without_store(name, monkeypatch):
    """The service's own config.yml as ``nameko run`` reads it, with MONGO_URI unset."""
    monkeypatch.delenv("MONGO_URI", raising=False)
    setup_yaml_parser()
    with open(ROOT / "services" / name / "config.yml") as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_config_without_mongo_uri_names_no_store(name, monkeypatch):
    config = service_config_without_store(name, monkeypatch)
    with pytest.raises(StoreNotConfigured, match="MONGO_URI is not set") as refused:
        store_uri(config)
    # The message says what to set, for a server and for the embedded store.
    assert "MONGO_URI=mongodb://" in str(refused.value)
    assert "MONGO_URI=mongomock://" in str(refused.value)


@pytest.mark.parametrize("provider", [lambda: MongoStore(NominationStore), Auth, Campaigns,
                                      Readiness])
def test_every_store_provider_refuses_to_start_without_a_store_uri(provider, db_name):
    config = {"MONGO_DB": db_name, "AMQP_URI": "amqp://x/", **TEST_KEY_CONFIG}
    with pytest.raises(StoreNotConfigured, match="MONGO_URI"):
        bound(provider(), config)
    with pytest.raises(StoreNotConfigured, match="must start with mongodb://"):
        bound(provider(), dict(config, MONGO_URI="localhost:27017"))


@pytest.mark.broker
def test_a_container_without_mongo_uri_does_not_start(container_factory, rabbit_config):
    container = container_factory(NominationService, dict(rabbit_config, **TEST_KEY_CONFIG))
    with pytest.raises(StoreNotConfigured):
        container.start()


def test_the_embedded_store_is_asked_for_by_its_scheme(mongo_uri, db_name):
    store = bound(MongoStore(NominationStore), {"MONGO_URI": mongo_uri, "MONGO_DB": db_name})
    assert store.kind == ("embedded" if mongo_uri.startswith("mongomock://") else "mongodb")
    store.stop()


@pytest.mark.broker
def test_readiness_asks_mongodb_and_rabbitmq(rabbit_config, mongo_uri, db_name):
    config = {"MONGO_URI": mongo_uri, "MONGO_DB": db_name, "AMQP_URI": rabbit_config["AMQP_URI"]}
    ready = bound(Readiness(), config)
    assert ready.checks() == {"mongodb": "ok", "rabbitmq": "ok"}
    ready.stop()
    no_broker = bound(Readiness(), dict(config, AMQP_URI="amqp://guest:guest@127.0.0.1:1/"))
    assert no_broker.checks()["mongodb"] == "ok"
    assert no_broker.checks()["rabbitmq"] != "ok"
    no_broker.stop()
    no_store = bound(Readiness(), dict(
        config, MONGO_URI="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"))
    assert no_store.checks()["mongodb"] != "ok"
    assert no_store.checks()["rabbitmq"] == "ok"
    no_store.stop()
