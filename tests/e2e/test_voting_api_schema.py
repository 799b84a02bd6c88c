"""The voting page's JSON API answers only what its OpenAPI document says, and never a 500.

schemathesis reads the document where the voting service serves it (``/api/openapi.json``)
and sends every operation both data that fits the document and data that does not; each
answer must be a documented status with a JSON body of the documented schema (a refusal is a
``Refusal``), and none a server error. The system runs with ``pingxuan up``
(tests/system.py, its own vhost and home), one-time codes going to voting's own log
(``VOTING_OTP_SENDER=log``) so that a real session can be made for ``/api/votes``; a
campaign open for voting has one candidate on the ballot, so that the ballot, votes and
receipts are also tried on real data, not only on unknown ids. Bounded: a few dozen
examples per operation and mode, no shrinking and no example database, well under a minute.
"""
import copy
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from nameko.standalone.rpc import ClusterRpcProxy
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from tests.conftest import OPEN_CAMPAIGN, nomination_form
from tests.system import running_system

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CAMPAIGN = "cb-api-schema"
UNIT = "城关镇党委"
MOBILE = "13812345678"
EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def system(tmp_path):
    with running_system(tmp_path / "home", extra_env={"VOTING_OTP_SENDER": "log"}) as system:
        system.home = tmp_path / "home"
        yield system


def local(moment):
    return (moment + timedelta(hours=8)).replace(microsecond=0, tzinfo=None).isoformat()


def open_campaign():
    now = datetime.now(timezone.utc)
    document = copy.deepcopy(OPEN_CAMPAIGN)
    document.update({"id": CAMPAIGN, "nomination": {"deadline": local(now + timedelta(days=5))},
                     "voting": {"opens": local(now - timedelta(days=1)),
                                "closes": local(now + timedelta(days=10))}})
    return document


def client(system, auth_token):
    return ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, context_data={"auth_token": auth_token},
                           timeout=30)


def eventually(probe, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def one_time_code(system):
    log = system.home / "logs" / "voting.log"

    def found():
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        codes = re.findall(r"otp_code sms to 138\*\*\*\*5678: .*?验证码为(\d{6})", text)
        return codes[-1] if codes else None

    return eventually(found, "the one-time code in voting's log")


def a_candidate_on_the_ballot(system, tmp_path, api):
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(yaml.safe_dump(open_campaign(), allow_unicode=True), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))
    with client(system, system.token("unit", UNIT)) as unit:
        cid = unit.nomination.submit(nomination_form(
            campaign_id=CAMPAIGN, client_ref="api-schema-1",
            recommendation={"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                            "date": datetime.now(timezone.utc).date().isoformat()}))["id"]
    with client(system, system.token("admin", "宣传部")) as admin:
        admin.nomination.review(cid, "accept", "同意")

    def listed():
        ballot = requests.get(f"{api}/api/campaigns/{CAMPAIGN}/ballot", timeout=10).json()
        return any(row["candidate_id"] == cid for category in ballot.get("categories", [])
                   for row in category["candidates"])

    eventually(listed, "the accepted nomination on voting's ballot")
    return cid


def a_session(system, api):
    sent = requests.post(f"{api}/api/codes", json={"campaign_id": CAMPAIGN, "mobile": MOBILE},
                         timeout=10)
    assert sent.status_code == 200, sent.text
    verified = requests.post(f"{api}/api/codes/verify", timeout=10, json={
        "campaign_id": CAMPAIGN, "mobile": MOBILE, "code": one_time_code(system)})
    assert verified.status_code == 200, verified.text
    return verified.json()["session"]


def test_every_answer_of_the_voting_api_is_documented_and_none_is_a_server_error(system,
                                                                                 tmp_path):
    api = f"http://{system.http('voting')}"
    cid = a_candidate_on_the_ballot(system, tmp_path, api)
    session = a_session(system, api)
    vote = requests.post(f"{api}/api/votes", json={"campaign_id": CAMPAIGN, "candidate_id": cid},
                         headers={"Authorization": f"Bearer {session}"}, timeout=10)
    assert vote.status_code == 200, vote.text
    receipt = vote.json()["receipt"]

    schema = schemathesis.openapi.from_url(f"{api}/api/openapi.json")
    # Besides what the document alone suggests: the real campaign, candidate and receipt, and
    # the real session (a random one is only ever refused).
    known = {"campaign_id": CAMPAIGN, "receipt": receipt}
    tried = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = [operation.as_strategy(generation_mode=mode)
                      for mode in (schemathesis.GenerationMode.POSITIVE,
                                   schemathesis.GenerationMode.NEGATIVE)]
        names = {p.name for p in operation.path_parameters}
        if names:
            strategies.append(operation.as_strategy(
                path_parameters={name: known[name] for name in names}))
        if operation.body:
            strategies.append(operation.as_strategy().map(
                lambda case: real_ids(case, cid)))
        statuses = tried.setdefault(operation.label, [])

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), authorised=st.booleans())
        def answers_as_documented(case, authorised):
            headers = {"Authorization": f"Bearer {session}"} if authorised else None
            response = case.call_and_validate(base_url=api, headers=headers, checks=CHECKS,
                                              timeout=10)
            statuses.append(response.status_code)

        answers_as_documented()
    assert set(tried) == {"GET /api/campaigns/{campaign_id}/ballot", "POST /api/codes",
                          "POST /api/codes/verify", "POST /api/votes",
                          "GET /api/receipts/{receipt}"}
    # Not only refusals: the real data was answered too.
    assert 200 in tried["GET /api/campaigns/{campaign_id}/ballot"]
    assert 200 in tried["GET /api/receipts/{receipt}"]
    assert all(len(statuses) >= 10 for statuses in tried.values()), tried


def real_ids(case, candidate_id):
    """A generated body with the real campaign (and candidate), where it has those fields."""
    if isinstance(case.body, dict):
        if "campaign_id" in case.body:
            case.body["campaign_id"] = CAMPAIGN
        if "candidate_id" in case.body:
            case.body["candidate_id"] = candidate_id
    return case
