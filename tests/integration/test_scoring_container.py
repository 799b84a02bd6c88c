"""The scoring service in a real container on the real RabbitMQ.

Candidates arrive as nomination events, judges score over RPC and on the page
(HTTP), and ``score_submitted`` / ``panel_closed`` leave through the broker.
"""

import eventlet
import pytest
import requests
from nameko.events import event_handler
from nameko.rpc import rpc as nameko_rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.scoring.service import ScoringService
from shared import events
from shared.errors import Forbidden, PanelClosed, ValidationError
from tests.conftest import campaign_document, token
from tests.system import free_port

pytestmark = pytest.mark.broker

JUDGES = [{"judge_id": "j1", "name": "张评委", "unit": "县委党校"},
          {"judge_id": "j2", "name": "李评委", "unit": "县财政局"}]
GOOD = {"organisation": 80, "results": 90}


def facts(cid, nominee_unit="县教育局"):
    return {"nomination_id": cid, "unit": "城关镇党委", "category": "advanced_unit",
            "org_type": "agency", "nominee_name": f"候选{cid}", "nominee_unit": nominee_unit,
            "deeds_summary": "坚持每周集中学习。", "status": "accepted",
            "submitted_at": "2099-10-01T02:00:00Z"}


class ScoringEvents:
    """A stand-in consumer of what scoring announces (aggregation, later)."""

    name = "scoring_event_log"
    received = []

    @event_handler(events.SCORING, events.SCORE_SUBMITTED)
    def on_score_submitted(self, payload):
        self.received.append((events.SCORE_SUBMITTED, payload))

    @event_handler(events.SCORING, events.PANEL_CLOSED)
    def on_panel_closed(self, payload):
        self.received.append((events.PANEL_CLOSED, payload))


class NominationStub:
    """Answers the ballot catch-up as the nomination service would."""

    name = "nomination"

    @nameko_rpc
    def list(self, campaign_id, **filters):
        assert filters == {}  # every nomination: the catch-up also learns withdrawals
        return [dict(facts("nom-late", "县水利局"), id="nom-late", campaign_id=campaign_id),
                dict(facts("nom-new", "县水利局"), id="nom-new", campaign_id=campaign_id,
                     status="submitted")]


@pytest.fixture
def config(service_config):
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
                JUDGE_NOTIFIER="log")


@pytest.fixture
def scoring(container_factory, config):
    container = container_factory(ScoringService, config)
    container.start()
    return container


def rpc(config, auth_token):
    return ClusterRpcProxy(config, context_data={"auth_token": auth_token}, timeout=30)


def announce(container, handler, config, event_type, **fields_):
    payload = events.make_event(event_type, "cb-test", **fields_)
    with entrypoint_waiter(container, handler):
        event_dispatcher(config)(events.NOMINATION, event_type, payload)


def test_events_in_scores_and_close_out(scoring, container_factory, config):
    ScoringEvents.received = []
    log = container_factory(ScoringEvents, config)
    log.start()
    container_factory(NominationStub, config).start()

    # In: the campaign and two candidates, from nomination's events.
    announce(scoring, "on_campaign_loaded", config, events.CAMPAIGN_LOADED,
             campaign=campaign_document(), revision=1)
    for cid, unit in (("nom-a", "县财政局"), ("nom-b", "县教育局")):
        announce(scoring, "on_nomination_reviewed", config, events.NOMINATION_REVIEWED,
                 **facts(cid, unit), decision="accept", opinion="同意")

    with rpc(config, token("admin", "宣传部")) as admin:
        links = {j["judge_id"]: j["link"]
                 for j in admin.scoring.assign_panel("cb-test", "advanced_unit", JUDGES)["judges"]}
    with rpc(config, token("judge", "j1")) as judge:
        sheet = judge.scoring.worksheet("cb-test")["sheets"][0]
        assert [r["candidate_id"] for r in sheet["candidates"]] == ["nom-a", "nom-b", "nom-late"]
        with entrypoint_waiter(log, "on_score_submitted"):
            judge.scoring.submit("nom-b", GOOD, "扎实")
        with pytest.raises(ValidationError) as refused:
            judge.scoring.submit("nom-b", {"organisation": 101, "results": 90})
        assert set(refused.value.messages) == {"scores.organisation"}
    event_type, payload = ScoringEvents.received[-1]
    assert events.read_event(event_type, payload)["total"] == 87
    assert (payload["candidate_id"], payload["judge_id"]) == ("nom-b", "j1")

    # The page: j2 scores through the personal link, which travels in a header only.
    address = f"http://{config['WEB_SERVER_ADDRESS']}"
    assert links["j2"].startswith(f"{address}/judge#")
    header = {"X-Judge-Link": links["j2"].split("#", 1)[1]}
    page = requests.get(f"{address}/judge", timeout=5)
    assert page.status_code == 200 and "评审打分" in page.text
    with entrypoint_waiter(log, "on_score_submitted"):
        saved = requests.post(f"{address}/judge/api/scores", headers=header, timeout=5,
                              json={"candidate_id": "nom-b", "scores": {"organisation": 60,
                                                                         "results": 70}})
    assert saved.status_code == 200 and saved.json()["total"] == 67
    recused = requests.post(f"{address}/judge/api/scores", headers=header, timeout=5,
                            json={"candidate_id": "nom-a", "scores": GOOD})
    assert (recused.status_code, recused.json()["error"]) == (403, "Forbidden")

    # A candidate disqualified before the close is not in the panel scores.
    announce(scoring, "on_candidate_disqualified", config, events.CANDIDATE_DISQUALIFIED,
             **dict(facts("nom-late", "县水利局"), status="disqualified"),
             candidate_id="nom-late", reason="查实问题")

    # Out: the close, with the final panel scores.
    with rpc(config, token("admin", "宣传部")) as admin:
        with entrypoint_waiter(log, "on_panel_closed"):
            closed = admin.scoring.close_panel("cb-test", "advanced_unit")
        assert closed["panel_scores"] == {"nom-a": None, "nom-b": 77.0}
    event_type, payload = ScoringEvents.received[-1]
    assert event_type == events.PANEL_CLOSED
    assert events.read_event(event_type, payload)["panel_scores"] == {"nom-a": None, "nom-b": 77.0}

    with rpc(config, token("judge", "j1")) as judge:
        with pytest.raises(PanelClosed):
            judge.scoring.submit("nom-b", GOOD)
    with rpc(config, token("unit", "城关镇党委")) as unit:
        with pytest.raises(Forbidden):
            unit.scoring.submit("nom-b", GOOD)
    gone = requests.get(f"{address}/judge/api/worksheet", headers=header, timeout=5)
    assert (gone.status_code, gone.json()["error"]) == (410, "PanelClosed")

    eventlet.sleep(0)  # let the last worker's result hook run
    metrics = requests.get(f"{address}/metrics", timeout=5).text
    assert 'pingxuan_score_submissions_total{category="advanced_unit",outcome="new"} 2.0' in metrics
    assert 'pingxuan_panels_closed_total{category="advanced_unit"} 1.0' in metrics
    assert 'pingxuan_panel_pairs{campaign_id="cb-test",category="advanced_unit",state="scored"}' \
        in metrics
    assert 'pingxuan_errors_total{entrypoint="submit",error="PanelClosed"} 1.0' in metrics


def test_a_renewed_link_replaces_the_old_one_at_once(scoring, container_factory, config):
    container_factory(NominationStub, config).start()
    announce(scoring, "on_campaign_loaded", config, events.CAMPAIGN_LOADED,
             campaign=campaign_document(), revision=1)
    address = f"http://{config['WEB_SERVER_ADDRESS']}"
    with rpc(config, token("admin", "宣传部")) as admin:
        old = admin.scoring.assign_panel("cb-test", "advanced_unit", JUDGES)["judges"][1]["link"]
        reply = admin.scoring.send_links("cb-test", "advanced_unit", ["j2"], renew=True)
        with pytest.raises(ValidationError) as refused:
            admin.scoring.send_links("cb-test", "advanced_unit", ["j9"])
        assert set(refused.value.messages) == {"judge_ids"}
        notice = admin.scoring.progress("cb-test")["panels"][0]["judges"][1]["notice"]
    assert reply["renewed"] == ["j2"] and reply["judges"][0]["not_queued_reason"] == "no_contact"
    assert notice["state"] == "no_contact"
    new = reply["judges"][0]["link"]
    assert new != old
    for link, status in ((old, 401), (new, 200)):
        answer = requests.get(f"{address}/judge/api/worksheet", timeout=5,
                              headers={"X-Judge-Link": link.split("#", 1)[1]})
        assert answer.status_code == status
