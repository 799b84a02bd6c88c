"""Acceptance: the whole selection, from nomination to the published result, in one flow.

Written only from ../shared/CONTRACT.md (service names, RPC methods and arguments, roles,
errors as ``RemoteError.exc_type``, event names, campaign file keys, the CLI) and the domain
in ../shared/SPEC.md. Nothing from the project's ``services`` or ``shared`` packages is
imported: the system is started by ``pingxuan up`` (tests/system.py, own vhost and home) and
driven as township systems, a voting front end, judges and the department would drive it —
nameko's ``ClusterRpcProxy`` with the token in the context data, and the admin CLI.

The timeline runs on real time: the campaign is loaded with a nomination deadline
``NOMINATION_SECONDS`` ahead and a voting window that opens one second after the deadline and
lasts ``VOTING_SECONDS``. (The rehearsal clock PINGXUAN_CLOCK_START is not used: each service
computes its offset when it starts, so the services' clocks would differ by their start-up
lag, and the embedded store does not survive a second ``pingxuan up``.) While the deadline is
ahead the units nominate, the department reviews and the panels score; after the deadline the
front end votes; after the window the department publishes. The waits are for instants of the
campaign's own timeline, never fixed sleeps; everything that arrives by event is polled with
a deadline.

A voting day is the campaign zone's day (Asia/Shanghai): a run across local midnight
(16:00 UTC) would see the "one vote per candidate per day" rule restart mid-run.
"""
import csv
import io
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
from nameko.events import event_handler
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from tests.system import running_system

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CAMPAIGN = f"e2e-{uuid.uuid4().hex[:8]}"
ZONE = ZoneInfo("Asia/Shanghai")
NOMINATION_SECONDS = 15   # from loading the campaign to the nomination deadline
VOTING_SECONDS = 12       # the voting window, opening one second after the deadline
EVENTUALLY_SECONDS = 30   # how long anything that travels by event may take
W_PUBLIC, W_PANEL = 0.3, 0.7
IP_LIMIT = 5              # accepted votes per address per minute

CONTRACT_ERRORS = {"ValidationError", "Unauthorized", "Forbidden", "NotFound", "Conflict",
                   "DeadlinePassed", "QuotaExceeded", "InvalidState", "VotingClosed",
                   "DuplicateVote", "VoteLimitReached", "RateLimited", "PanelClosed"}
CONTRACT_EVENTS = {
    "nomination": ("nomination_submitted", "nomination_amended", "nomination_withdrawn",
                   "nomination_reviewed", "candidate_disqualified"),
    "voting": ("vote_cast",),
    "scoring": ("score_submitted", "panel_closed"),
    "aggregation": ("results_updated", "list_published", "results_finalized"),
}
ROW_COLUMNS = {"candidate_id", "nominee_name", "org_type", "votes", "vote_score",
               "panel_score", "composite", "rank", "status"}
BALLOT_COLUMNS = {"candidate_id", "nominee_name", "category", "org_type", "deeds_summary",
                  "votes"}

U1, U2, U3 = "城关镇党委", "东河乡党委", "县教育局党组"
CRITERIA = {
    "advanced_unit": {"organisation": 0.3, "results": 0.7},
    "learning_star": {"deeds": 0.6, "influence": 0.4},
    "learning_activity": {"reach": 1.0},
}
# Judges: j-zhang sits on two panels; j-li is of 县教育局党组 (recused for its own candidate);
# j-wang is not on the learning_star panel.
JUDGES = {
    "j-zhang": {"judge_id": "j-zhang", "name": "张评委", "unit": "县委组织部"},
    "j-li": {"judge_id": "j-li", "name": "李评委", "unit": U3},
    "j-wang": {"judge_id": "j-wang", "name": "王评委", "unit": "县委党校"},
}
PANELS = {"advanced_unit": ["j-zhang", "j-wang"], "learning_star": ["j-zhang", "j-li"],
          "learning_activity": ["j-wang"]}
AWARD_SLOTS = {"advanced_unit": 2, "learning_star": 2, "learning_activity": 1}
ORG_TYPE_SLOTS = {"agency": 1, "school": 1}


# --- a client written from the contract ---------------------------------------------------

def client(system, token):
    context = {"auth_token": token} if token is not None else {}
    return ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, context_data=context, timeout=30)


def refused(call, *args, **kwargs):
    """``(exc_type, value)`` of a call that must be refused with a contract error."""
    try:
        result = call(*args, **kwargs)
    except RemoteError as error:
        assert error.exc_type in CONTRACT_ERRORS, f"not a contract error: {error.exc_type}"
        return error.exc_type, error.value
    raise AssertionError(f"the call was not refused; it returned {result!r}")


def fields_of(value):
    """The fields a ValidationError names (its value is JSON ``{"field": [messages]}``)."""
    parsed = json.loads(value)
    assert isinstance(parsed, dict) and parsed, value
    return set(parsed)


def eventually(probe, what, timeout=EVENTUALLY_SECONDS):
    """Poll ``probe`` until it returns something truthy (it may raise meanwhile)."""
    give_up = time.monotonic() + timeout
    last = None
    while True:
        try:
            result = probe()
            if result:
                return result
            last = result
        except (RemoteError, AssertionError, KeyError) as exc:
            last = exc
        if time.monotonic() > give_up:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(0.25)


def wait_until(instant, slack=0.3):
    """Let the campaign's clock pass ``instant`` (an aware datetime)."""
    remaining = (instant - datetime.now(timezone.utc)).total_seconds() + slack
    if remaining > 0:
        time.sleep(remaining)


def local(moment):
    return moment.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M:%S")


# --- the campaign file and the forms --------------------------------------------------------

def campaign_file_text(campaign_id, name, deadline, opens, closes, categories, *,
                       voting_extra="", weights="public: 0.3, panel: 0.7", before_categories=""):
    """A campaign file in the contract's keys: its windows at the given instants, then
    ``categories`` (YAML text); ``voting_extra`` and ``before_categories``: more lines."""
    return f"""\
id: {campaign_id}
name: {name}
timezone: Asia/Shanghai
nomination:
  deadline: {local(deadline)}
voting:
  opens: {local(opens)}
  closes: {local(closes)}
{voting_extra}weights: {{{weights}}}
vote_normalisation: top_100
panel_method: mean
{before_categories}categories:
{categories}"""


#: One category of one award, the shape most flows need.
ONE_ACTIVITY = """\
  learning_activity:
    award_slots: 1
    criteria:
      - {key: reach, name: 活动影响, weight: 1, max: 100}
"""


def campaign_yaml(deadline, opens, closes):
    # `voting.daily_limit` and `voting.ip_limit` are keys of this project (README "Campaigns",
    # services/voting/README.md), not of CONTRACT.md: they make the VoteLimitReached and the
    # per-address RateLimited rules reachable. Everything else is the contract's keys.
    return campaign_file_text(
        CAMPAIGN, '2026年全县"五创四评"活动（验收）', deadline, opens, closes, f"""\
  advanced_unit:
    intake_cap: 10
    org_type_caps: {{agency: 4, school: 1, rural: 2}}
    award_slots: {AWARD_SLOTS["advanced_unit"]}
    org_type_slots: {{agency: 1, school: 1}}
    criteria:
      - {{key: organisation, name: 组织领导, weight: 0.3, max: 100}}
      - {{key: results, name: 学习成效, weight: 0.7, max: 100}}
  learning_star:
    intake_cap: 10
    award_slots: {AWARD_SLOTS["learning_star"]}
    criteria:
      - {{key: deeds, name: 先进事迹, weight: 0.6, max: 100}}
      - {{key: influence, name: 示范影响, weight: 0.4, max: 100}}
  learning_activity:
    award_slots: {AWARD_SLOTS["learning_activity"]}
    criteria:
      - {{key: reach, name: 活动影响, weight: 1, max: 100}}
""", voting_extra=f"  daily_limit: 4\n  ip_limit: {IP_LIMIT}\n",
        weights=f"public: {W_PUBLIC}, panel: {W_PANEL}")


def form(category, nominee_name, nominee_unit, client_ref, org_type=None, party_post=None,
         **overrides):
    """A complete 推薦表 (CONTRACT.md "Fields of a nomination")."""
    signed = (datetime.now(ZONE) - timedelta(days=3)).date().isoformat()
    data = {
        "campaign_id": CAMPAIGN, "category": category, "nominee_name": nominee_name,
        "nominee_unit": nominee_unit, "unit_phone": "0734-5551234", "fax": "0734-5551235",
        "contact_person": "李明", "mobile": "13812345678", "email": "liming@example.cn",
        "deeds_summary": f"{nominee_name}坚持每周集中学习，学用结合成效明显。",
        "materials": "综合材料：" + "学习型党组织建设情况。" * 50,
        "recommendation": {"opinion": "同意推荐", "signed_by": "王建国", "sealed": True,
                           "date": signed},
        "attachments": [{"name": "推荐表扫描件.pdf"}],
        "client_ref": client_ref,
    }
    if org_type is not None:
        data["org_type"] = org_type
    if party_post is not None:
        data["party_post"] = party_post
    data.update(overrides)
    return data


def vote(voter, candidate_id, ip, vote_id=None):
    return {"vote_id": vote_id or f"v-{uuid.uuid4().hex}", "campaign_id": CAMPAIGN,
            "candidate_id": candidate_id, "voter": {"channel": "wechat", "id": voter},
            "client": {"ip": ip, "user_agent": "MicroMessenger/8.0 e2e"}}


# --- events, as any nameko service would consume them ---------------------------------------

def contract_observer(seen):
    """A nameko service with one handler per contract event (source service, event type)."""
    attributes = {"name": f"e2e_contract_observer_{uuid.uuid4().hex[:6]}"}
    for source, event_types in CONTRACT_EVENTS.items():
        for event_type in event_types:
            def handler(self, payload, _key=(source, event_type)):
                seen.append((_key, payload))
            attributes[f"on_{source}_{event_type}"] = event_handler(source, event_type)(handler)
    return type("ContractObserver", (), attributes)


@pytest.fixture
def system(rabbit_config, tmp_path):
    with running_system(tmp_path, rabbit_config["AMQP_URI"]) as system:
        yield system


def test_a_campaign_from_nomination_to_published_result(system, container_factory, tmp_path):
    # --- pingxuan up: all five services; it prints each /metrics and the voting page ----------
    for service in CONTRACT_EVENTS.keys() | {"notification"}:
        assert f"http://{system.http(service)}/metrics" in system.up.stdout, system.up.stdout
        assert requests.get(f"http://{system.http(service)}/metrics", timeout=10).status_code == 200
    assert f"http://{system.http('voting')}/" in system.up.stdout  # the voting page

    seen_events = []
    observer = container_factory(contract_observer(seen_events), {"AMQP_URI": system.amqp_uri})
    observer.start()

    tokens = {
        "admin": system.token("admin", "宣传部党教理教组"),
        "frontend": system.token("frontend", "wechat-mini-program"),
        U1: system.token("unit", U1, U1), U2: system.token("unit", U2, U2),
        U3: system.token("unit", U3, U3),
    }
    for judge in JUDGES.values():
        tokens[judge["judge_id"]] = system.token("judge", judge["judge_id"], judge["unit"])
    for value in tokens.values():
        assert value and not any(ch.isspace() for ch in value)

    # --- the campaign: deadline ahead, voting window right after -------------------------------
    start = datetime.now(timezone.utc).replace(microsecond=0)
    deadline = start + timedelta(seconds=NOMINATION_SECONDS)
    opens = deadline + timedelta(seconds=1)
    closes = opens + timedelta(seconds=VOTING_SECONDS)
    campaign_file = tmp_path / "campaign.yml"
    campaign_file.write_text(campaign_yaml(deadline, opens, closes), encoding="utf-8")
    system.pingxuan("campaign", "load", str(campaign_file))

    admin = client(system, tokens["admin"])
    frontend = client(system, tokens["frontend"])
    units = {name: client(system, tokens[name]) for name in (U1, U2, U3)}
    judges = {jid: client(system, tokens[jid]) for jid in JUDGES}
    with admin as department, frontend as front, units[U1] as u1, units[U2] as u2, \
            units[U3] as u3, judges["j-zhang"] as zhang, judges["j-li"] as li, \
            judges["j-wang"] as wang:

        # --- 1. unit nomination, before the deadline ---------------------------------------
        nominations = {}

        def submit(unit, key, data):
            record = unit.nomination.submit(data)
            assert record["status"] == "submitted" and record["id"], record
            nominations[key] = record["id"]
            return record

        n1_form = form("advanced_unit", "城关镇机关党支部", "城关镇人民政府", "u1-au-1",
                       org_type="agency")
        n1 = submit(u1, "N1", n1_form)
        # A resend (same unit, same client_ref, same content) returns the same record.
        resent = u1.nomination.submit(n1_form)
        assert resent["id"] == n1["id"] and resent["status"] == "submitted"
        # Different content under a used client_ref: Conflict, nothing stored.
        assert refused(u1.nomination.submit, dict(n1_form, nominee_name="另一个支部"))[0] == "Conflict"

        submit(u3, "N2", form("advanced_unit", "县第一中学党总支", "县第一中学", "u3-au-1",
                              org_type="school"))
        submit(u2, "N3", form("advanced_unit", "东河乡机关党支部", "东河乡人民政府", "u2-au-1",
                              org_type="agency"))
        submit(u2, "N4", form("advanced_unit", "东河乡桃园村党支部", "桃园村", "u2-au-2",
                              org_type="rural"))
        submit(u1, "S1", form("learning_star", "张丽", "城关镇人民政府", "u1-ls-1",
                              party_post="支部书记"))
        submit(u2, "S2", form("learning_star", "李强", "东河乡中心学校", "u2-ls-1",
                              party_post="党小组长"))
        submit(u3, "S3", form("learning_star", "王芳", U3, "u3-ls-1", party_post="党员"))
        submit(u1, "A1", form("learning_activity", "城关镇“周末讲堂”", "城关镇人民政府",
                              "u1-la-1"))
        submit(u2, "P", form("learning_activity", "东河乡“农家书屋”", "东河乡人民政府",
                             "u2-la-1"))
        submit(u3, "W", form("learning_activity", "县教育局“读书月”", U3, "u3-la-1"))

        # The school intake cap is 1: a second school is refused and not stored.
        exc_type, value = refused(u3.nomination.submit, form(
            "advanced_unit", "县第二中学党支部", "县第二中学", "u3-au-2", org_type="school"))
        assert exc_type == "QuotaExceeded", value
        # Field-level answers for a bad form.
        exc_type, value = refused(u1.nomination.submit, form(
            "learning_star", "赵军", "城关镇人民政府", "u1-ls-bad"))  # no party_post
        assert exc_type == "ValidationError" and "party_post" in fields_of(value)
        unsealed = form("advanced_unit", "城关镇社区党支部", "城关镇", "u1-au-bad",
                        org_type="community")
        unsealed["recommendation"]["sealed"] = False
        exc_type, value = refused(u1.nomination.submit, unsealed)
        assert exc_type == "ValidationError" and "recommendation.sealed" in fields_of(value)
        exc_type, value = refused(u1.nomination.submit, form(
            "advanced_unit", "城关镇学校党支部", "城关镇", "u1-au-bad2"))  # no org_type
        assert exc_type == "ValidationError" and "org_type" in fields_of(value)
        exc_type, value = refused(u1.nomination.submit, form(
            "learning_activity", "太长的材料", "城关镇", "u1-la-bad", materials="字" * 3001))
        assert exc_type == "ValidationError" and "materials" in fields_of(value)

        # Amend and withdraw before the deadline; the owner only.
        amended = u2.nomination.amend(nominations["P"], {"deeds_summary": "农家书屋全年借阅三千册次。"})
        assert amended["deeds_summary"] == "农家书屋全年借阅三千册次。"
        assert refused(u1.nomination.amend, nominations["P"],
                       {"nominee_name": "x"})[0] == "Forbidden"
        assert refused(u1.nomination.get, nominations["P"])[0] == "Forbidden"
        assert u3.nomination.withdraw(nominations["W"], "改推其他项目")["status"] == "withdrawn"
        assert refused(u1.nomination.get, "nom-does-not-exist")[0] == "NotFound"
        assert {r["id"] for r in u1.nomination.list(CAMPAIGN)} == {
            nominations[k] for k in ("N1", "S1", "A1")}

        # Identity: forged, missing and wrong-role tokens.
        with client(system, tokens[U1][:-4] + "AAAA") as forger:
            assert refused(forger.nomination.list, CAMPAIGN)[0] == "Unauthorized"
        with client(system, None) as anonymous:
            assert refused(anonymous.nomination.submit, form(
                "learning_activity", "匿名", "无", "anon-1"))[0] == "Unauthorized"
        assert refused(u1.nomination.review, nominations["N1"], "accept", "好")[0] == "Forbidden"
        assert refused(front.nomination.submit, form(
            "learning_activity", "前端", "无", "fe-1"))[0] == "Forbidden"

        # Voting is not open yet: a vote is refused and nothing is counted.
        assert datetime.now(timezone.utc) < opens, "nominating took longer than the window allows"
        early = vote("oE2E_voter_early", nominations["N1"], "10.1.0.9")
        assert refused(front.voting.cast, early)[0] == "VotingClosed"

        # --- 2. preliminary review -----------------------------------------------------------
        accepted = ["N1", "N2", "N3", "S1", "S2", "S3", "A1"]
        for key in accepted:
            reviewed = department.nomination.review(
                nominations[key], "accept", "符合条件，同意列为候选对象")
            assert reviewed["status"] == "accepted", reviewed
        # Reject needs a reason.
        assert refused(department.nomination.review, nominations["N4"], "reject",
                       None)[0] == "ValidationError"
        rejected = department.nomination.review(nominations["N4"], "reject", "事迹材料不够典型")
        assert rejected["status"] == "rejected"
        assert refused(department.nomination.review, nominations["N1"], "reject",
                       "再审")[0] == "InvalidState"
        assert refused(department.nomination.disqualify, nominations["N4"],
                       "不是候选对象")[0] == "InvalidState"
        statuses = {r["id"]: r["status"] for r in department.nomination.list(CAMPAIGN)}
        assert statuses == dict(
            {nominations[k]: "accepted" for k in accepted}, **{
                nominations["N4"]: "rejected", nominations["P"]: "submitted",
                nominations["W"]: "withdrawn"})
        assert u1.nomination.get(nominations["N1"])["status"] == "accepted"

        # The ballot shows exactly the accepted candidates (it follows nomination's events).
        category_of = {"N1": "advanced_unit", "N2": "advanced_unit", "N3": "advanced_unit",
                       "S1": "learning_star", "S2": "learning_star", "S3": "learning_star",
                       "A1": "learning_activity"}

        def ballot_ids(category):
            rows = front.voting.ballot(CAMPAIGN, category)
            for row in rows:
                assert BALLOT_COLUMNS <= set(row), row
                assert row["category"] == category
            return {row["candidate_id"] for row in rows}

        for category in CRITERIA:
            expected = {nominations[k] for k, c in category_of.items() if c == category}
            eventually(lambda: ballot_ids(category) == expected, f"the {category} ballot")

        # --- 3. the panel review (集中評審) ---------------------------------------------------
        for category, members in PANELS.items():
            assert refused(u1.scoring.assign_panel, CAMPAIGN, category,
                           [JUDGES[j] for j in members])[0] == "Forbidden"
            department.scoring.assign_panel(CAMPAIGN, category, [JUDGES[j] for j in members])

        scores = {  # (candidate, judge) -> scores per criterion
            ("N1", "j-zhang"): {"organisation": 90, "results": 88},
            ("N1", "j-wang"): {"organisation": 80, "results": 90},
            ("N3", "j-zhang"): {"organisation": 85, "results": 85},
            ("N3", "j-wang"): {"organisation": 80, "results": 80},
            ("N2", "j-zhang"): {"organisation": 70, "results": 75},
            ("N2", "j-wang"): {"organisation": 75, "results": 70},
            ("S1", "j-zhang"): {"deeds": 90, "influence": 80},
            ("S1", "j-li"): {"deeds": 85, "influence": 85},
            ("S2", "j-zhang"): {"deeds": 80, "influence": 70},
            ("S2", "j-li"): {"deeds": 85, "influence": 80},
            ("S3", "j-zhang"): {"deeds": 70, "influence": 60},
            ("A1", "j-wang"): {"reach": 80},
        }
        judge_clients = {"j-zhang": zhang, "j-li": li, "j-wang": wang}
        # A resend before close replaces: j-zhang first sends other marks for N1.
        zhang.scoring.submit(nominations["N1"], {"organisation": 50, "results": 50})
        for (key, judge_id), marks in scores.items():
            judge_clients[judge_id].scoring.submit(nominations[key], marks, "评审意见")

        # j-li belongs to 县教育局党组, which nominated 王芳 of its own unit: recused.
        assert refused(li.scoring.submit, nominations["S3"],
                       {"deeds": 99, "influence": 99})[0] == "Forbidden"
        # Not on the learning_star panel; not a judge; unknown candidate; out of range.
        assert refused(wang.scoring.submit, nominations["S1"],
                       {"deeds": 60, "influence": 60})[0] == "Forbidden"
        assert refused(u1.scoring.submit, nominations["S1"],
                       {"deeds": 60, "influence": 60})[0] == "Forbidden"
        assert refused(zhang.scoring.submit, "nom-does-not-exist",
                       {"deeds": 60, "influence": 60})[0] == "NotFound"
        exc_type, value = refused(zhang.scoring.submit, nominations["S2"],
                                  {"deeds": 101, "influence": 60})
        assert exc_type == "ValidationError" and "scores.deeds" in fields_of(value), value

        for category in PANELS:
            assert refused(u1.scoring.close_panel, CAMPAIGN, category)[0] == "Forbidden"
            department.scoring.close_panel(CAMPAIGN, category)
        assert refused(zhang.scoring.submit, nominations["S2"],
                       {"deeds": 100, "influence": 100})[0] == "PanelClosed"
        assert refused(department.scoring.assign_panel, CAMPAIGN, "learning_star",
                       [JUDGES["j-zhang"]])[0] == "PanelClosed"

        # Publishing needs the vote to be over (aggregation README: publish requires the
        # voting window closed and every panel closed — a precondition CONTRACT.md does not
        # name; InvalidState is the contract's error for it).
        assert refused(department.aggregation.publish, CAMPAIGN)[0] == "InvalidState"
        assert refused(department.aggregation.finalize, CAMPAIGN)[0] == "InvalidState"
        assert refused(u1.aggregation.results, CAMPAIGN, "learning_star")[0] == "Forbidden"

        # --- 4. the deadline passes: late nominations are refused, not queued ---------------
        wait_until(deadline)
        exc_type, value = refused(u1.nomination.submit, form(
            "learning_activity", "迟到的活动", "城关镇人民政府", "u1-la-late"))
        assert exc_type == "DeadlinePassed", value
        assert refused(u2.nomination.amend, nominations["P"],
                       {"deeds_summary": "逾期修改"})[0] == "DeadlinePassed"
        assert refused(u2.nomination.withdraw, nominations["P"], "逾期撤回")[0] == "DeadlinePassed"
        # The resend of a nomination sent in time is still answered with its record.
        assert u1.nomination.submit(n1_form)["id"] == nominations["N1"]
        assert len(department.nomination.list(CAMPAIGN)) == 10

        # --- 5. online voting (網絡投票) -------------------------------------------------------
        wait_until(opens)
        ids = nominations
        # One vote per voter, candidate and day; at most 4 votes per voter per day.
        first = vote("oE2E_voter_1", ids["N1"], "10.1.0.1")
        accepted_first = front.voting.cast(first)
        assert accepted_first["vote_id"] == first["vote_id"]
        assert accepted_first["status"] == "accepted"
        # A resend of the same vote_id is answered as the first time (and counted once).
        again = front.voting.cast(first)
        assert (again["vote_id"], again["status"]) == (first["vote_id"], "accepted")
        for key in ("N3", "N2", "S1"):
            cast = front.voting.cast(vote("oE2E_voter_1", ids[key], "10.1.0.1"))
            assert cast["status"] == "accepted"
        assert refused(front.voting.cast,
                       vote("oE2E_voter_1", ids["S2"], "10.1.0.1"))[0] == "VoteLimitReached"
        assert refused(front.voting.cast,
                       vote("oE2E_voter_1", ids["N1"], "10.1.0.1"))[0] == "DuplicateVote"

        bad_vote = vote("oE2E_voter_9", ids["N1"], "10.1.0.9")
        del bad_vote["voter"]
        exc_type, value = refused(front.voting.cast, bad_vote)
        assert exc_type == "ValidationError" and any("voter" in f for f in fields_of(value))
        assert refused(u1.voting.cast,
                       vote("oE2E_voter_9", ids["N1"], "10.1.0.9"))[0] == "Forbidden"
        with client(system, None) as anonymous:
            assert refused(anonymous.voting.cast,
                           vote("oE2E_voter_9", ids["N1"], "10.1.0.9"))[0] == "Unauthorized"
        with client(system, tokens["frontend"][:-4] + "AAAA") as forger:
            assert refused(forger.voting.cast,
                           vote("oE2E_voter_9", ids["N1"], "10.1.0.9"))[0] == "Unauthorized"

        invalid_in_batch = vote("oE2E_voter_5", ids["N1"], "10.1.0.5")
        del invalid_in_batch["client"]
        batch = [  # (vote, expected status, expected error)
            (vote("oE2E_voter_2", ids["N1"], "10.1.0.2"), "accepted", None),
            (vote("oE2E_voter_2", ids["N3"], "10.1.0.2"), "accepted", None),
            (vote("oE2E_voter_2", ids["N1"], "10.1.0.2"), "refused", "DuplicateVote"),
            (vote("oE2E_voter_2", ids["N2"], "10.1.0.2"), "accepted", None),
            (vote("oE2E_voter_2", ids["S1"], "10.1.0.2"), "accepted", None),
            (first, "accepted", None),  # a resend of a vote_id: counted once
            (vote("oE2E_voter_3", ids["N1"], "10.1.0.3"), "accepted", None),
            (vote("oE2E_voter_3", ids["N3"], "10.1.0.3"), "accepted", None),
            (vote("oE2E_voter_3", ids["S1"], "10.1.0.3"), "accepted", None),
            (vote("oE2E_voter_3", ids["S3"], "10.1.0.3"), "accepted", None),
            (vote("oE2E_voter_3", ids["S2"], "10.1.0.3"), "refused", "VoteLimitReached"),
            (vote("oE2E_voter_4", ids["N1"], "10.1.0.4"), "accepted", None),
            (vote("oE2E_voter_4", ids["S1"], "10.1.0.4"), "accepted", None),
            (vote("oE2E_voter_4", ids["S3"], "10.1.0.4"), "accepted", None),
            (vote("oE2E_voter_4", ids["A1"], "10.1.0.4"), "accepted", None),
            (vote("oE2E_voter_5", ids["N1"], "10.1.0.5"), "accepted", None),
            (vote("oE2E_voter_5", ids["S2"], "10.1.0.5"), "accepted", None),
            (invalid_in_batch, "refused", "ValidationError"),
            # rejected in review, so not on the ballot (the contract names no error for it)
            (vote("oE2E_voter_5", ids["N4"], "10.1.0.5"), "refused", None),
        ]
        results = front.voting.cast_many([v for v, _, _ in batch])
        assert len(results) == len(batch)
        for (sent, status, error), result in zip(batch, results):
            assert result["vote_id"] == sent["vote_id"], (sent, result)
            assert result["status"] == status, (sent, result)
            if status == "refused":
                assert result["error"] in CONTRACT_ERRORS and result.get("message"), result
                if error:
                    assert result["error"] == error, result
        # The same voter, candidate and day in a later batch; a resend of a whole batch.
        later = front.voting.cast_many([vote("oE2E_voter_5", ids["N1"], "10.1.0.5"),
                                        batch[0][0]])
        assert [(r["status"], r.get("error")) for r in later] == [
            ("refused", "DuplicateVote"), ("accepted", None)]
        # Per-address throttling (SPEC): one address, six different voters, one candidate.
        crowd = front.voting.cast_many([vote(f"oE2E_crowd_{n}", ids["A1"], "10.9.9.9")
                                        for n in range(IP_LIMIT + 1)])
        assert [r["status"] for r in crowd] == ["accepted"] * IP_LIMIT + ["refused"]
        assert crowd[-1]["error"] == "RateLimited", crowd[-1]
        too_many = [vote(f"oE2E_voter_x{n}", ids["N1"], "10.2.0.1") for n in range(501)]
        assert refused(front.voting.cast_many, too_many)[0] == "ValidationError"  # up to 500

        expected_votes = {"N1": 5, "N3": 3, "N2": 2, "S1": 4, "S2": 1, "S3": 2, "A1": 1 + IP_LIMIT}

        def ballot_counts():
            counts = {}
            for category in CRITERIA:
                for row in front.voting.ballot(CAMPAIGN, category):
                    counts[row["candidate_id"]] = row["votes"]
            return counts

        want = {ids[k]: n for k, n in expected_votes.items()}
        eventually(lambda: ballot_counts() == want, "the ballot's vote counts")

        # --- 6. results (加權統分) -------------------------------------------------------------
        def expected_panel_score(key):
            category = category_of[key]
            totals = [sum(CRITERIA[category][c] * v for c, v in marks.items())
                      for (k, _), marks in scores.items() if k == key]
            return sum(totals) / len(totals)

        def ranked(category):
            rows = department.aggregation.results(CAMPAIGN, category)
            by_id = {row["candidate_id"]: row for row in rows}
            mine = {ids[k] for k, c in category_of.items() if c == category}
            assert set(by_id) == mine, rows
            top = max(expected_votes[k] for k, c in category_of.items() if c == category)
            for key, c in category_of.items():
                if c != category:
                    continue
                row = by_id[ids[key]]
                assert ROW_COLUMNS <= set(row), row
                assert row["votes"] == expected_votes[key], row
                # Scores are published with two decimals (the default results.precision).
                assert row["panel_score"] == pytest.approx(expected_panel_score(key), abs=0.005)
                # top_100: the most votes score 100, the others pro rata.
                assert row["vote_score"] == pytest.approx(100 * expected_votes[key] / top,
                                                          abs=0.005)
            return rows

        for category in CRITERIA:
            rows = eventually(lambda: ranked(category), f"{category} results with every vote "
                                                        "and the final panel scores")
            for row in rows:
                # The composite is exact and then rounded, its parts are rounded as shown.
                assert row["composite"] == pytest.approx(
                    W_PUBLIC * row["vote_score"] + W_PANEL * row["panel_score"], abs=0.01), row
            order = sorted(rows, key=lambda r: r["rank"])
            assert [r["rank"] for r in order] == list(range(1, len(rows) + 1))
            assert [r["composite"] for r in order] == sorted(
                (r["composite"] for r in rows), reverse=True)
        star_order = [r["candidate_id"] for r in sorted(
            department.aggregation.results(CAMPAIGN, "learning_star"), key=lambda r: r["rank"])]
        assert star_order == [ids["S1"], ids["S2"], ids["S3"]]
        unit_order = [r["candidate_id"] for r in sorted(
            department.aggregation.results(CAMPAIGN, "advanced_unit"), key=lambda r: r["rank"])]
        assert unit_order == [ids["N1"], ids["N3"], ids["N2"]]

        # --- 7. the window closes; publish (公示) ---------------------------------------------
        wait_until(closes)
        assert refused(front.voting.cast,
                       vote("oE2E_voter_7", ids["S2"], "10.1.0.7"))[0] == "VotingClosed"
        late = front.voting.cast_many([vote("oE2E_voter_7", ids["S2"], "10.1.0.7")])
        assert (late[0]["status"], late[0]["error"]) == ("refused", "VotingClosed")

        # The panels' close reaches aggregation by event: publish once it has.
        publication = eventually(lambda: department.aggregation.publish(CAMPAIGN),
                                 "publish (voting closed, panels closed)")
        assert publication
        assert refused(department.aggregation.publish, CAMPAIGN)[0] == "InvalidState"

        def selected():
            rows = u1.aggregation.publicity_list(CAMPAIGN)  # anyone may read it
            chosen = {}
            for row in rows:
                assert ROW_COLUMNS <= set(row), row
                key = next(k for k, v in ids.items() if v == row["candidate_id"])
                chosen.setdefault(category_of[key], set()).add(key)
            return chosen

        listed = selected()
        live = {row["candidate_id"]: row for category in CRITERIA
                for row in department.aggregation.results(CAMPAIGN, category)}
        for row in u1.aggregation.publicity_list(CAMPAIGN):  # rows like those of results
            for column in ("nominee_name", "org_type", "votes", "vote_score", "panel_score",
                           "composite", "rank"):
                assert row[column] == live[row["candidate_id"]][column], (column, row)
        # Within the award slots; advanced units within their org-type slots (agency 1,
        # school 1): 东河乡机关党支部 (agency, 2nd by composite) yields to the school.
        assert listed == {"advanced_unit": {"N1", "N2"}, "learning_star": {"S1", "S2"},
                          "learning_activity": {"A1"}}
        for category, keys in listed.items():
            assert len(keys) <= AWARD_SLOTS[category]

        # --- 8. an objection is verified: 张丽 is disqualified, 王芳 moves up ------------------
        assert refused(department.nomination.disqualify, ids["S1"], "")[0] == "ValidationError"
        assert refused(u1.nomination.disqualify, ids["S1"], "举报属实")[0] == "Forbidden"
        disqualified = department.nomination.disqualify(ids["S1"], "经核实，事迹材料有不实之处")
        assert disqualified["status"] == "disqualified"
        eventually(lambda: selected()["learning_star"] == {"S2", "S3"},
                   "王芳 moves up on the publicity list")
        assert selected()["advanced_unit"] == {"N1", "N2"}
        eventually(lambda: ids["S1"] not in ballot_ids("learning_star"),
                   "the disqualified candidate leaves the ballot")

        # --- 9. approval (審定) ----------------------------------------------------------------
        assert refused(u1.aggregation.finalize, CAMPAIGN)[0] == "Forbidden"
        assert department.aggregation.finalize(CAMPAIGN)
        assert refused(department.aggregation.finalize, CAMPAIGN)[0] == "InvalidState"
        assert selected()["learning_star"] == {"S2", "S3"}

    # --- 10. the results from the CLI, in Chinese, without contact details --------------------
    names = {"城关镇机关党支部", "县第一中学党总支", "东河乡机关党支部", "张丽", "李强", "王芳",
             "城关镇“周末讲堂”"}
    exported = system.pingxuan("results", CAMPAIGN, "--format", "csv").stdout
    table = list(csv.reader(io.StringIO(exported.lstrip("\ufeff"))))
    header = table[0]
    assert header and all(any("\u4e00" <= ch <= "\u9fff" for ch in cell) for cell in header), header
    assert "candidate_id" not in header
    body = "\n".join(",".join(row) for row in table[1:])
    for name in names:
        assert name in body, name
    assert "13812345678" not in exported and "liming@example.cn" not in exported

    stars = system.pingxuan("results", CAMPAIGN, "--category", "learning_star",
                            "--format", "csv").stdout
    assert "王芳" in stars and "城关镇机关党支部" not in stars
    assert "李强" in system.pingxuan("results", CAMPAIGN, "--format", "table").stdout

    # --- 11. every contract event was announced, with its common fields -----------------------
    def every_event_seen():
        kinds = {key for key, payload in seen_events if payload.get("campaign_id") == CAMPAIGN}
        return kinds >= {(s, t) for s, types in CONTRACT_EVENTS.items() for t in types}

    eventually(every_event_seen, "every contract event of the campaign")
    by_id = {}
    for (source, event_type), payload in seen_events:
        assert {"event_id", "schema_version", "occurred_at", "campaign_id"} <= set(payload), payload
        occurred = datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00"))
        assert occurred.utcoffset() == timedelta(0), payload
        by_id.setdefault(payload["event_id"], []).append(((source, event_type), payload))
    for event_id, copies in by_id.items():  # a redelivered event is the same event
        assert all(copy == copies[0] for copy in copies), copies
