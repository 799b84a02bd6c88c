"""The Mongo dependency: one pymongo code path; mongomock when the URI says ``mongomock://``.

Services and tests run the same repository code on either. Only what both
implement is used: single-document atomic updates, unique indexes, ``_id``
lookups; no transactions, no change streams, no aggregation pipelines.
"""
import threading

import pymongo
from nameko.extensions import DependencyProvider

from shared import config as cfg

EMBEDDED_SCHEME = "mongomock://"

_embedded_clients = {}
_embedded_lock = threading.Lock()


def is_embedded(uri):
    return not uri or uri.startswith(EMBEDDED_SCHEME)


def connect(uri):
    """A client for ``uri``.

    Embedded clients are shared per URI within a process, so two containers of
    one service in a test see one store, as two instances against one MongoDB do.
    """
    if is_embedded(uri):
        import mongomock  # only the embedded mode and the tests need it

        with _embedded_lock:
            client = _embedded_clients.get(uri or "")
            if client is None:
                client = mongomock.MongoClient(tz_aware=True)
                _embedded_clients[uri or ""] = client
            return client
    return pymongo.MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)


def release(uri, client):
    """Close a real client; embedded clients live as long as the process."""
    if not is_embedded(uri):
        client.close()


class Repository:
    """Base of each service's store: domain verbs over its own database."""

    def __init__(self, db):
        self.db = db

    def ensure_indexes(self):
        """Create the indexes (unique ones included) the verbs rely on; idempotent."""


class MongoStore(DependencyProvider):
    """Builds the service's repository in ``setup()`` and hands it to every worker."""

    def __init__(self, repository_cls):
        self.repository_cls = repository_cls

    def setup(self):
        config = self.container.config
        self.uri = config.get(cfg.MONGO_URI) or cfg.DEFAULT_MONGO_URI
        self.client = connect(self.uri)
        db = self.client[cfg.database_name(config, self.container.service_name)]
        self.repository = self.repository_cls(db)
        self.repository.ensure_indexes()

    def get_dependency(self, worker_ctx):
        return self.repository

    def stop(self):
        release(self.uri, self.client)

    def kill(self):
        self.stop()
