"""Names of the config keys every service reads, and their defaults.

Each service's ``config.yml`` fills these from the environment with nameko's
``${VAR:default}`` syntax; nothing below the service reads the environment.
"""

AMQP_URI = "AMQP_URI"
#: ``mongodb://…`` for a real server; ``mongomock://…`` for the embedded store. Required:
#: a service refuses to start without it (``shared.store.store_uri``).
MONGO_URI = "MONGO_URI"
#: Database name; each service has its own (``pingxuan_<service>`` unless set).
MONGO_DB = "MONGO_DB"
#: The token issuer's public keys (``pxpk_…``, comma-separated: two during a rollover).
TOKEN_PUBLIC_KEYS = "TOKEN_PUBLIC_KEYS"
#: This service's own private key (``pxsk_…``): signs its service credential, and its own
#: keyed hashes, sessions and links are derived from it. Never given to another service.
SERVICE_KEY = "SERVICE_KEY"
#: The public keys of the services allowed to call this one: ``name=pxpk_…,name=pxpk_…``.
SERVICE_PUBLIC_KEYS = "SERVICE_PUBLIC_KEYS"
#: Rehearsal clock: the ISO instant the services' clock showed at ``CLOCK_ANCHOR`` (empty = real time).
CLOCK_START = "CLOCK_START"
#: The real ISO instant that corresponds to ``CLOCK_START``; empty: ``CLOCK_START`` itself
#: is not anchored, and the clock starts there when the process starts (a single process only).
CLOCK_ANCHOR = "CLOCK_ANCHOR"
#: Seconds between outbox sweeps (events stored but not yet published).
OUTBOX_SWEEP_SECONDS = "OUTBOX_SWEEP_SECONDS"

#: Tries of a failed event before it is parked (``shared/handlers.py``).
EVENT_HANDLER_ATTEMPTS = "EVENT_HANDLER_ATTEMPTS"
#: Seconds before the first retry of a failed event; each further retry waits twice as long.
EVENT_RETRY_SECONDS = "EVENT_RETRY_SECONDS"
#: The longest wait between two tries of an event.
EVENT_RETRY_MAX_SECONDS = "EVENT_RETRY_MAX_SECONDS"

#: What ``pingxuan up`` sets when ``MONGO_URI`` is unset: it asks for the embedded store.
EMBEDDED_MONGO_URI = "mongomock://localhost/"
MIN_SECRET_LENGTH = 16


def database_name(config, service_name):
    """The service's own database: ``MONGO_DB`` or ``pingxuan_<service>``."""
    return config.get(MONGO_DB) or f"pingxuan_{service_name}"
