"""Fixtures shared by every tier.

nameko's pytest plugin no longer monkey-patches: do it before anything imports
a socket. Every test gets its own database (``MONGO_URI`` chooses mongomock or
a real MongoDB) and drops it afterwards.
"""
import os

# hypothesis loads its "hypothesis" entry points on import; trio (a dependency of
# selenium, for the browser tests) registers one that cannot import on eventlet's
# green sockets. The browser tests run in their own process without eventlet.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")

import eventlet  # noqa: E402

# The browser tier (tests/browser) runs in its own process without nameko's
# plugin and without eventlet: the system it drives runs in other processes.
if os.environ.get("PINGXUAN_BROWSER_TESTS") != "1":
    eventlet.monkey_patch()  # noqa: E402  (must run first)

import copy  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import pytest  # noqa: E402

from shared import signing  # noqa: E402
from shared.auth import SERVICE_ROLE, TrustedKeys, issue_service_token, issue_token  # noqa: E402
from shared.campaign import validate_campaign  # noqa: E402
from shared.store import connect  # noqa: E402

#: The token issuer's private key (what only the admin CLI holds): ``issue_token(TEST_SECRET, …)``.
TEST_SECRET = signing.generate_private_key()
#: What services are given instead: the issuer's public key.
TEST_PUBLIC_KEYS = signing.public_key_of(TEST_SECRET)
SERVICE_NAMES = ("nomination", "voting", "scoring", "aggregation", "notification", "console")
#: Each service's own private key, and the ``name=public key`` list every service trusts.
TEST_SERVICE_KEYS = {name: signing.generate_private_key() for name in SERVICE_NAMES}
TEST_SERVICE_PUBLIC_KEYS = ",".join(f"{name}={signing.public_key_of(key)}"
                                    for name, key in TEST_SERVICE_KEYS.items())
#: ``SERVICE_KEY`` for containers of any service (each picks its own entry).
TEST_SERVICE_KEY_ENTRIES = ",".join(f"{name}={key}" for name, key in TEST_SERVICE_KEYS.items())
#: What a service verifies with: ``read_token(TEST_KEYS, token, now)``.
TEST_KEYS = TrustedKeys(signing.PublicKeys.parse(TEST_PUBLIC_KEYS),
                        signing.PublicKeys.parse_owned(TEST_SERVICE_PUBLIC_KEYS))
#: The key settings of a container's config (``dict(rabbit_config, **TEST_KEY_CONFIG)``).
TEST_KEY_CONFIG = {"TOKEN_PUBLIC_KEYS": TEST_PUBLIC_KEYS, "SERVICE_KEY": TEST_SERVICE_KEY_ENTRIES,
                   "SERVICE_PUBLIC_KEYS": TEST_SERVICE_PUBLIC_KEYS}

#: A campaign whose deadline is far ahead, so submissions are open (tests move the clock).
OPEN_CAMPAIGN = {
    "id": "cb-test",
    "name": "测试活动",
    "timezone": "Asia/Shanghai",
    "nomination": {"deadline": "2099-10-30T23:59:59"},
    "voting": {"opens": "2099-11-01T08:00:00", "closes": "2099-11-20T20:00:00"},
    "weights": {"public": 0.3, "panel": 0.7},
    "vote_normalisation": "top_100",
    "panel_method": "mean",
    "units": ["城关镇党委", "东河乡党委", "县教育局党组"],
    "categories": {
        "advanced_unit": {
            "intake_cap": 50,
            "org_type_caps": {"agency": 20, "school": 5, "enterprise": 2, "community": 3,
                              "rural": 20},
            "award_slots": 20,
            "org_type_slots": {"agency": 8, "school": 2, "enterprise": 1, "community": 1,
                               "rural": 8},
            "criteria": [{"key": "organisation", "name": "组织领导", "weight": 0.3, "max": 100},
                         {"key": "results", "name": "学习成效", "weight": 0.7, "max": 100}],
        },
        "learning_star": {
            "intake_cap": 50, "award_slots": 20,
            "criteria": [{"key": "deeds", "name": "先进事迹", "weight": 1, "max": 100}],
        },
        "learning_activity": {
            "award_slots": 10,
            "criteria": [{"key": "reach", "name": "影响", "weight": 1, "max": 100}],
        },
    },
}


def campaign_document(**overrides):
    """A validated campaign, ``OPEN_CAMPAIGN`` with top-level keys replaced."""
    document = copy.deepcopy(OPEN_CAMPAIGN)
    document.update(copy.deepcopy(overrides))
    return validate_campaign(document)


def nomination_form(**overrides):
    """A complete, valid 推薦表 for an advanced unit (agency)."""
    form = {
        "campaign_id": "cb-test",
        "category": "advanced_unit",
        "org_type": "agency",
        "nominee_name": "县财政局机关党委",
        "nominee_unit": "县财政局",
        "unit_phone": "0734-5551234",
        "fax": "0734-5551235",
        "contact_person": "李明",
        "mobile": "13812345678",
        "email": "liming@example.cn",
        "deeds_summary": "坚持每周集中学习，建成“书香机关”。",
        "materials": "综合材料" * 100,
        "recommendation": {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                           "date": "2026-10-20"},
        "attachments": [{"name": "推荐表扫描件.pdf"}],
        "client_ref": f"ref-{uuid.uuid4().hex[:8]}",
    }
    form.update(copy.deepcopy(overrides))
    return form


def token(role, name, unit=None):
    """A person's token signed by the test issuer; ``token("service", "voting")`` is voting's
    own service credential, signed with voting's key."""
    if role == SERVICE_ROLE:
        return issue_service_token(TEST_SERVICE_KEYS[name], name)[0]
    return issue_token(TEST_SECRET, role, name, unit)[0]


def at(text):
    """An aware UTC datetime from ``2099-10-30T15:59:59``."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture
def mongo_uri():
    return os.environ.get("MONGO_URI") or "mongomock://tests/"


@pytest.fixture
def db_name():
    return f"pxtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def db(mongo_uri, db_name):
    client = connect(mongo_uri)
    yield client[db_name]
    client.drop_database(db_name)


@pytest.fixture
def service_config(rabbit_config, mongo_uri, db_name):
    """Container config: the test's own vhost, database and the test keys."""
    config = dict(rabbit_config)
    config.update({"MONGO_URI": mongo_uri, "MONGO_DB": db_name, **TEST_KEY_CONFIG})
    yield config
    connect(mongo_uri).drop_database(db_name)
