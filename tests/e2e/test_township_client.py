"""End to end: the system started by ``pingxuan up``, driven by a township client
written only from CONTRACT.md (nameko's RPC proxy, ``RemoteError.exc_type``) and
by the admin CLI. The test runs in its own RabbitMQ vhost and PINGXUAN_HOME.
"""
import json
import shutil
import subprocess
import time

import pytest
import requests
import yaml
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import OPEN_CAMPAIGN, nomination_form
from tests.system import ROOT, running_system

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

UNIT = "城关镇党委"


@pytest.fixture
def system(rabbit_config, tmp_path):
    """``pingxuan up`` in the test's own vhost; ``pingxuan down`` afterwards."""
    with running_system(tmp_path, rabbit_config["AMQP_URI"]) as system:
        yield system


def contract_client(amqp_uri, auth_token):
    return ClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data={"auth_token": auth_token},
                           timeout=30)


def refused(call, *args, **kwargs):
    """The ``exc_type`` and ``value`` of a refused call (it must be refused)."""
    try:
        call(*args, **kwargs)
    except RemoteError as error:
        return error.exc_type, error.value
    raise AssertionError("the call was not refused")


def test_a_township_system_nominates_over_rpc(system, tmp_path):
    pingxuan = system.pingxuan
    assert "nomination: running" in system.up.stdout
    assert f"http://{system.http('nomination')}/metrics" in system.up.stdout

    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(yaml.safe_dump(OPEN_CAMPAIGN, allow_unicode=True), encoding="utf-8")
    assert "registered" in pingxuan("campaign", "load", str(campaign_file)).stdout

    unit_token = system.token("unit", UNIT)
    other_token = system.token("unit", "东河乡党委")
    admin_token = system.token("admin", "宣传部")
    amqp = system.amqp_uri

    with contract_client(amqp, unit_token) as township:
        form = nomination_form(client_ref="township-0001")
        record = township.nomination.submit(form)
        assert record["status"] == "submitted"
        assert township.nomination.submit(form)["id"] == record["id"]  # a resend
        assert refused(township.nomination.submit, dict(form, nominee_name="别的"))[0] == "Conflict"

        amended = township.nomination.amend(record["id"], {"deeds_summary": "新的事迹简介"})
        assert amended["deeds_summary"] == "新的事迹简介"
        assert township.nomination.get(record["id"])["deeds_summary"] == "新的事迹简介"

        bad_inputs = [
            (nomination_form(nominee_name=""), "nominee_name"),
            (nomination_form(category="best"), "category"),
            (nomination_form(org_type=None), "org_type"),
            (nomination_form(category="learning_star", org_type=None), "party_post"),
            (nomination_form(mobile="11111111111"), "mobile"),
            (nomination_form(email="a@b"), "email"),
            (nomination_form(materials="字" * 3001), "materials"),
            (nomination_form(recommendation={"opinion": "同意", "signed_by": "王",
                                             "sealed": False, "date": "2026-10-01"}),
             "recommendation.sealed"),
            (nomination_form(client_ref={"$gt": ""}), "client_ref"),
            (nomination_form(materials="字" * (5 * 1024 * 1024)), "materials"),
        ]
        for form_, field in bad_inputs:
            exc_type, value = refused(township.nomination.submit, form_)
            assert exc_type == "ValidationError"
            assert field in json.loads(value)
        assert refused(township.nomination.submit,
                       nomination_form(campaign_id="cb-unknown"))[0] == "NotFound"
        assert refused(township.nomination.review, record["id"], "accept", "好")[0] == "Forbidden"
        assert [r["id"] for r in township.nomination.list("cb-test")] == [record["id"]]

    with contract_client(amqp, other_token) as neighbour:
        assert refused(neighbour.nomination.get, record["id"])[0] == "Forbidden"
        assert refused(neighbour.nomination.amend, record["id"], {"nominee_name": "x"})[0] == "Forbidden"

    with contract_client(amqp, unit_token[:-3] + "xyz") as forger:
        assert refused(forger.nomination.list, "cb-test")[0] == "Unauthorized"
    with contract_client(amqp, None) as anonymous:
        assert refused(anonymous.nomination.list, "cb-test")[0] == "Unauthorized"

    with contract_client(amqp, unit_token) as township:
        withdrawn = township.nomination.withdraw(record["id"], "改推其他单位")
        assert withdrawn["status"] == "withdrawn"

    with contract_client(amqp, admin_token) as department:
        statuses = [r["status"] for r in department.nomination.list("cb-test")]
        assert statuses == ["withdrawn"]  # nothing else was stored by the refusals

    # The agency cap is 20: the 21st agency nomination is refused and not stored.
    with contract_client(amqp, other_token) as neighbour:
        for n in range(20):
            neighbour.nomination.submit(nomination_form(client_ref=f"agency-{n}"))
        exc_type, value = refused(neighbour.nomination.submit,
                                  nomination_form(client_ref="agency-20"))
        assert exc_type == "QuotaExceeded"
        assert "agency" in value
        assert len(neighbour.nomination.list("cb-test", org_type="agency")) == 20

    # Revocation reaches the running service.
    pingxuan("token", "revoke", unit_token)
    with contract_client(amqp, unit_token) as township:
        for _ in range(50):
            try:
                township.nomination.list("cb-test")
            except RemoteError as error:
                assert error.exc_type == "Unauthorized"
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the revoked token was still accepted")

    report = pingxuan("forfeits", "cb-test").stdout
    # 城关镇党委 withdrew its only nomination; 东河乡党委 has twenty standing.
    assert "城关镇党委" in report and "县教育局党组" in report and "东河乡党委" not in report


def test_the_shipped_2013_campaign_loads_and_its_deadline_has_passed(system):
    system.pingxuan("campaign", "load", str(ROOT / "campaigns" / "cb-2013-siping.yml"))
    unit_token = system.token("unit", UNIT)
    with contract_client(system.amqp_uri, unit_token) as township:
        exc_type, value = refused(township.nomination.submit,
                                  nomination_form(campaign_id="cb-2013-siping"))
    assert exc_type == "DeadlinePassed"
    assert "2013-10-30 23:59:59" in value


def test_a_broken_campaign_file_is_refused_with_key_and_line(system, tmp_path):
    pingxuan = system.pingxuan
    broken = dict(OPEN_CAMPAIGN, weights={"public": 0.4, "panel": 0.7})
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True, sort_keys=False), encoding="utf-8")
    done = pingxuan("campaign", "load", str(path), check=False)
    assert done.returncode == 2
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith("weights:"))
    assert f"weights (line {line})" in done.stderr
    assert "add up to 1" in done.stderr


def test_every_service_serves_metrics_that_promtool_accepts(system):
    """The county's Prometheus must be able to scrape every running service."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed: make tools"
    running = [line.split(":")[0] for line in system.up.stdout.splitlines()
               if ": running" in line]
    assert "nomination" in running
    for service in running:
        response = requests.get(f"http://{system.http(service)}/metrics", timeout=10)
        assert response.status_code == 200, service
        assert response.headers["Content-Type"].startswith("text/plain"), service
        checked = subprocess.run([promtool, "check", "metrics"], input=response.text,
                                 capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, f"{service}: {checked.stdout}{checked.stderr}"
        health = requests.get(f"http://{system.http(service)}/health", timeout=10).json()
        assert health["service"] == service and health["status"] == "ok", health
        assert health["store"] in ("embedded", "mongodb"), health
        ready = requests.get(f"http://{system.http(service)}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"mongodb": "ok", "rabbitmq": "ok"}
