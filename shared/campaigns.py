"""The campaign dependency: each service's own copy of the campaign definitions.

The nomination service owns campaigns (``load_campaign``) and announces each
revision with ``campaign_loaded``; every other service keeps the copies in its
own database (``campaigns`` collection: ``{_id, document, revision}``) and, for
a campaign it has not heard of (a service deployed late, an embedded store
after a restart), asks ``nomination.get_campaign`` under its service identity.
"""
from nameko.extensions import DependencyProvider
from pymongo.errors import DuplicateKeyError

from shared import config as cfg
from shared.campaign import Campaign
from shared.errors import NotFound
from shared.service_rpc import ServiceCalls
from shared.store import connect, release, store_uri
from shared.validation import require_id

CAMPAIGNS_COLLECTION = "campaigns"


class CampaignBook:
    """What a worker sees: ``get(campaign_id)`` and ``remember(document, revision)``."""

    def __init__(self, collection, fetch=None):
        self.collection = collection
        self.fetch = fetch

    def get(self, campaign_id):
        """The campaign, or ``NotFound``; ``campaign_id`` is checked to be a plain identifier."""
        require_id(campaign_id, "campaign_id")
        doc = self.collection.find_one({"_id": campaign_id}, {"document": 1})
        if doc is None and self.fetch is not None:
            try:
                document = self.fetch("nomination", "get_campaign", campaign_id)
            except NotFound:
                document = None
            if document is not None:
                self.remember(document, 0)
                doc = {"document": document}
        if doc is None:
            raise NotFound(f"no campaign {campaign_id}")
        return Campaign(doc["document"])

    def remember(self, document, revision):
        """Keep a revision unless a newer one is already kept (events may arrive out of order).

        A copy fetched over RPC is kept as revision 0: any announced revision replaces it.
        """
        try:
            self.collection.insert_one(
                {"_id": document["id"], "document": document, "revision": revision})
        except DuplicateKeyError:
            self.collection.update_one(
                {"_id": document["id"], "revision": {"$lte": revision}},
                {"$set": {"document": document, "revision": revision}})


class Campaigns(DependencyProvider):
    """Injects a :class:`CampaignBook` over the service's own database."""

    def __init__(self, fetch_missing=True):
        self.fetch_missing = fetch_missing
        if fetch_missing:
            # A sub-extension only where it is used: the owner of campaigns calls nobody.
            self.calls = ServiceCalls()

    def setup(self):
        config = self.container.config
        self.uri = store_uri(config)
        self.client = connect(self.uri)
        db = self.client[cfg.database_name(config, self.container.service_name)]
        self.collection = db[CAMPAIGNS_COLLECTION]

    def stop(self):
        release(self.uri, self.client)

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return CampaignBook(self.collection, self.calls.call if self.fetch_missing else None)
