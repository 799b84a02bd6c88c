"""The ``aggregation`` service: weighted results (加權統分) and the publicity list (公示名單).

Event handlers apply the other services' events to the incremental state, each
once (by ``event_id``, votes also by ``vote_id``) and in any order; RPC methods
compute results exactly from that state, publish and finalize the list, and
rebuild everything from the other services' records to check it.
"""
import json
import logging
import time
import uuid
from datetime import timezone
from zoneinfo import ZoneInfo

from nameko.events import EventDispatcher
from nameko.timer import timer
from nameko.web.handlers import http
from prometheus_client import Counter, Histogram

from shared import config as cfg
from shared import events
from shared.audit import audit_entry
from shared.ballot import FollowsBallot, candidate_of_event, candidate_of_record
from shared.auth import SERVICE_ROLE
from shared.campaign import CATEGORY_NAMES_ZH, validate_campaign
from shared.clock import Clock
from shared.entrypoints import (Audited, FollowsCampaigns, PingxuanService, client_ip,
                                json_response, rpc)
from shared import one_time_codes as otp
from shared.errors import (InvalidState, NotFound, PingxuanError, Unavailable, ValidationError,
                           typed)
from shared.handlers import handles
from shared.metrics import Metrics
from shared.outbox import outbox_entry
from shared.service_rpc import ServiceRpc
from shared.store import MongoStore
from shared.timeutil import iso, local_day, parse_iso
from shared.validation import load, require_id
from services.aggregation import domain, objections, page, schemas
from services.aggregation.providers import (REBUILD_PAGE_SIZE, ObjectionKeys, Settings,
                                            TallyCache)
from services.aggregation.store import AggregationStore

log = logging.getLogger(__name__)

OUTBOX_SWEEP_SECONDS = 5
#: How often derived fields are written and ``results_updated`` announced (per changed category).
REFRESH_SECONDS = 2
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
REBUILD_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
REVISE_ATTEMPTS = 5
#: Who the audit trail names for changes the service makes on an event.
SERVICE_ACTOR = {"role": SERVICE_ROLE, "name": "aggregation", "unit": None, "token_id": None}
#: Who the audit trail names for an objection lodged on the public page (its mobile verified).
PAGE_ACTOR = {"role": "public", "name": "公示页面", "unit": None, "token_id": None}
#: The approved SMS template of the 公示 page's one-time code.
CODE_TEMPLATE = "objection_code"
PAGE_STATUS = {"ValidationError": 400, "NotFound": 404, "InvalidState": 409,
               "DeadlinePassed": 409, "RateLimited": 429, "TooLarge": 413, "Unavailable": 503}


def define_metrics(registry):
    return {
        "events": Counter(
            "pingxuan_aggregation_events_total",
            # Duplicates never reach a handler: @handles counts them (pingxuan_events_total).
            "Events received, by type and outcome (applied, ignored, refused)",
            ["type", "outcome"], registry=registry),
        "lag": Histogram(
            "pingxuan_aggregation_event_lag_seconds",
            "From an event's occurred_at to its application", ["type"],
            buckets=LAG_BUCKETS, registry=registry),
        "votes": Counter(
            "pingxuan_aggregation_votes_counted_total",
            "Votes counted (each vote_id once)", registry=registry),
        "rebuild_seconds": Histogram(
            "pingxuan_aggregation_rebuild_seconds", "Duration of a rebuild",
            buckets=REBUILD_BUCKETS, registry=registry),
    }


class AggregationService(Audited, FollowsCampaigns, FollowsBallot, PingxuanService):
    """加權統分, ranking within the award slots, 公示 and 審定."""

    name = "aggregation"

    store = MongoStore(AggregationStore)
    metrics = Metrics(define=define_metrics)
    dispatch = EventDispatcher()
    peers = ServiceRpc()
    settings = Settings()
    tallies = TallyCache()
    objection_keys = ObjectionKeys()
    now = Clock()

    # --- events in ---------------------------------------------------------------------------

    @handles(events.NOMINATION, events.CAMPAIGN_LOADED)
    def on_campaign_loaded(self, payload):
        """Keep a copy of each campaign, refusing one the campaign schema refuses."""
        event = self._read(events.CAMPAIGN_LOADED, payload)
        if event is None:
            return
        try:
            document = validate_campaign(event["campaign"])
        except ValidationError as exc:
            log.warning("campaign_loaded %s refused: %s", event["event_id"], exc.messages)
            self.metrics.events.labels(events.CAMPAIGN_LOADED, "refused").inc()
            return
        self.campaigns.remember(document, event["revision"])
        self.metrics.events.labels(events.CAMPAIGN_LOADED, "applied").inc()

    @handles(events.NOMINATION, events.NOMINATION_REVIEWED)
    def on_nomination_reviewed(self, payload):
        self._candidate_event(events.NOMINATION_REVIEWED, payload)

    @handles(events.NOMINATION, events.NOMINATION_WITHDRAWN)
    def on_nomination_withdrawn(self, payload):
        self._candidate_event(events.NOMINATION_WITHDRAWN, payload)

    @handles(events.NOMINATION, events.CANDIDATE_DISQUALIFIED)
    def on_candidate_disqualified(self, payload):
        event = self._candidate_event(events.CANDIDATE_DISQUALIFIED, payload)
        if event is not None:
            # After the redelivery of an applied event too: a crash may have come in between.
            self._revise_after_disqualification(event)

    @handles(events.VOTING, events.VOTE_CAST)
    def on_vote_cast(self, payload):
        event = self._of_campaign(events.VOTE_CAST, payload)
        if event is None:
            return
        campaign_id = event["campaign_id"]
        counted, owned = self.store.count_votes(campaign_id, event["event_id"], event["votes"],
                                                self._day_of(campaign_id))
        self.metrics.votes.inc(counted)
        self.store.mark_dirty(campaign_id, {vote["category"] for vote in event["votes"]})
        if owned:  # a re-run counts nothing new, but the run before it may not have said so
            self.tallies.changed(campaign_id)
        note = f"{counted} of {len(event['votes'])} votes counted"
        self._late(event, events.VOTE_CAST, "counted in the tallies, not in the published list")
        self._done(event, events.VOTE_CAST, "applied", note)

    @handles(events.VOTING, events.VOTES_VOIDED)
    def on_votes_voided(self, payload):
        """票數清零: the void's votes leave the counts (in any order with their vote_cast)."""
        event = self._of_campaign(events.VOTES_VOIDED, payload)
        if event is None:
            return
        campaign_id = event["campaign_id"]
        marked = self.store.apply_void(campaign_id, event["void_id"], event["vote_ids"],
                                       event["event_id"])
        self.store.mark_dirty(campaign_id, {count["category"] for count in event["counts"]})
        # A void is an admin's act whose effect they look at at once: not the cached tally.
        # (Other instances' caches still serve theirs until it expires.)
        self.tallies.forget(campaign_id)
        self._late(event, events.VOTES_VOIDED, "counted in the tallies, not in the published list")
        self._done(event, events.VOTES_VOIDED, "applied",
                   f"void {event['void_id']}: {marked} of {event['voided']} votes marked")

    @handles(events.VOTING, events.VOTES_RESTORED)
    def on_votes_restored(self, payload):
        """A void undone: exactly its votes count again."""
        event = self._of_campaign(events.VOTES_RESTORED, payload)
        if event is None:
            return
        campaign_id = event["campaign_id"]
        unmarked = self.store.apply_restore(campaign_id, event["void_id"], event["event_id"])
        self.store.mark_dirty(campaign_id, {count["category"] for count in event["counts"]})
        self.tallies.forget(campaign_id)
        self._late(event, events.VOTES_RESTORED,
                   "counted in the tallies, not in the published list")
        self._done(event, events.VOTES_RESTORED, "applied",
                   f"void {event['void_id']} restored: {unmarked} marks removed")

    @handles(events.SCORING, events.SCORE_SUBMITTED)
    def on_score_submitted(self, payload):
        event = self._of_campaign(events.SCORE_SUBMITTED, payload)
        if event is None:
            return
        campaign_id = event["campaign_id"]
        key = domain.order_key(event["occurred_at"], event["event_id"])
        # Kept whatever its time: a score after the close is left out when totals are read,
        # so the outcome does not depend on which of the two events arrived first.
        self.store.record_score(campaign_id, event["event_id"], event, key)
        panel = self.store.state(campaign_id)["panels"].get(event["category"])
        if domain.after_close(panel, key):
            self._done(event, events.SCORE_SUBMITTED, "ignored", "given after panel_closed")
            return
        self.store.mark_dirty(campaign_id, {event["category"]})
        self._late(event, events.SCORE_SUBMITTED, "the published list stands")
        self._done(event, events.SCORE_SUBMITTED, "applied")

    @handles(events.SCORING, events.PANEL_CLOSED)
    def on_panel_closed(self, payload):
        event = self._of_campaign(events.PANEL_CLOSED, payload)
        if event is None:
            return
        campaign_id, category = event["campaign_id"], event["category"]
        panel = {"closed_key": domain.order_key(event["occurred_at"], event["event_id"]),
                 "event_id": event["event_id"], "occurred_at": event["occurred_at"],
                 "method": event["method"],
                 "panel_scores": sorted([cid, score] for cid, score in
                                        event["panel_scores"].items())}
        if not self.store.close_panel(campaign_id, category, panel):
            self._done(event, events.PANEL_CLOSED, "ignored", "the panel was already closed")
            return
        self.store.mark_dirty(campaign_id, {category})
        self._late(event, events.PANEL_CLOSED, "the published list stands")
        self._done(event, events.PANEL_CLOSED, "applied")

    # --- the contract's calls ----------------------------------------------------------------

    @rpc
    def results(self, campaign_id, category=None):
        """Ranked rows of one category (or of all): the exact computation, never a cache."""
        self.auth.require("admin", SERVICE_ROLE)
        query = load(schemas.Query(), {"category": category}, "query")
        report = self._report(self._campaign(campaign_id), query["category"])
        return [row for section in report["categories"] for row in section["rows"]]

    @rpc
    def publicity_list(self, campaign_id):
        """公示名單: the selected candidates per category, once published (anyone may read it)."""
        campaign = self._campaign(campaign_id)
        state = self.store.state(campaign.id)
        if state["phase"] == domain.OPEN:
            raise InvalidState(f"the list of campaign {campaign.id} has not been published yet")
        # The public list needs no comparison with the live inputs (a scan of every vote).
        report = self._report(campaign, None, state, live_hash=False)
        stamp = {"revision": report["revision"], "inputs_hash": report["inputs_hash"],
                 "phase": report["phase"]}
        return [dict(public_row(row), **stamp) for section in report["categories"]
                for row in section["rows"] if row["status"] == domain.SELECTED]

    @rpc
    def inputs(self, campaign_id, revision=None):
        """The anonymised inputs document of a revision of the list (the latest by default):
        what anyone needs to recompute the list and its hash offline (``pingxuan verify``)."""
        campaign = self._campaign(campaign_id)
        query = load(schemas.InputsQuery(), {"revision": revision}, "query")
        state = self.store.state(campaign.id)
        if state["phase"] == domain.OPEN:
            raise InvalidState(f"the list of campaign {campaign.id} has not been published yet: "
                               "its inputs are published with it")
        number = query["revision"] or state["revision"]
        entries = {entry["revision"]: entry for entry in state.get("revisions") or []}
        if number not in entries:
            raise NotFound(f"campaign {campaign.id} has no revision {number} of its list "
                           f"(it has revisions 1 to {state['revision']})")
        entry = entries[number]
        stored = self.store.inputs_document(campaign.id, number, entry["inputs_hash"])
        if stored is not None:
            return json.loads(stored)
        # Published before documents were kept: the same document from the frozen inputs.
        left = domain.disqualified_after(state, entry.get("disqualified_after_publish") or [],
                                         number)
        inputs = domain.with_disqualifications(json.loads(state["published"]["inputs_json"]),
                                               left)
        document = domain.verifiable_document(inputs, number, iso(entry["at"]))
        if document["inputs_hash"] != entry["inputs_hash"]:
            raise InvalidState(f"the inputs of revision {number} of campaign {campaign.id} "
                               "cannot be reproduced; run rebuild")
        return document

    @rpc
    def publish(self, campaign_id):
        """Start the 公示 period: freeze the ranking, issue revision 1 with the inputs' hash."""
        identity = self.auth.require("admin")
        campaign = self._campaign(campaign_id)
        now = self.now()
        state = self.store.state(campaign.id)
        domain.check_publishable(campaign, state["phase"], now, self.store.live_inputs(campaign.id))
        # Candidates whose votes came before their nomination: ask nomination (facts only).
        unresolved = self._resolve_orphans(campaign.id)
        live = self._document_live(campaign)
        domain.check_publishable(campaign, state["phase"], now, live, unresolved)
        standings = domain.live_standings(campaign, live)
        inputs = domain.inputs_document(campaign, live, {},
                                        self.store.judge_label_key(campaign.id))
        digest = domain.inputs_hash(inputs)
        seats = domain.seats_of(standings)
        document = self._verifiable(campaign, inputs, 1, now, seats)
        entry = {"revision": 1, "at": now, "reason": "publish", "seats": seats,
                 "shortfalls": domain.shortfalls_of(standings), "inputs_hash": digest,
                 "disqualified_after_publish": [], "changes": {}}
        published = {"at": now, "by": identity.name, "inputs_hash": digest,
                     "inputs_json": domain.canonical_json(inputs).decode("utf-8"),
                     "rows": {category: [dict(row, status=None, pool=None, pool_rank=None)
                                         for row in rows]
                              for category, (rows, _) in standings.items()}}
        payload = events.make_event(events.LIST_PUBLISHED, campaign.id, now, revision=1,
                                    inputs_hash=digest)
        audit = audit_entry(identity.as_actor(), "publish", "publicity_list", campaign.id,
                            campaign.id, now, before={"phase": domain.OPEN},
                            after={"phase": domain.PUBLISHED, "revision": 1,
                                   "inputs_hash": digest, "seats": seats})
        self.store.save_inputs_document(campaign.id, 1, digest, document)
        if not self.store.publish(campaign.id, published, entry,
                                  outbox_entry(events.LIST_PUBLISHED, payload, audit, now)):
            raise InvalidState(f"the list of campaign {campaign.id} was published meanwhile")
        self.store.relay_events(campaign.id, self.dispatch)
        self.store.mark_dirty(campaign.id, domain.campaign_categories(campaign))
        return self._publication(campaign.id)

    @rpc
    def finalize(self, campaign_id):
        """審定: approve the list after the 公示 period; from now on it is frozen."""
        identity = self.auth.require("admin")
        campaign = self._campaign(campaign_id)
        now = self.now()
        state = self.store.state(campaign.id)
        domain.check_finalizable(campaign, state["phase"])
        objections.check_finalizable_after_publicity(
            campaign, state, self.store.open_objections(campaign.id), now)
        digest = state["current"]["inputs_hash"]
        payload = events.make_event(events.RESULTS_FINALIZED, campaign.id, now,
                                    inputs_hash=digest)
        audit = audit_entry(identity.as_actor(), "finalize", "publicity_list", campaign.id,
                            campaign.id, now,
                            before={"phase": domain.PUBLISHED, "revision": state["revision"]},
                            after={"phase": domain.FINALIZED, "revision": state["revision"],
                                   "inputs_hash": digest})
        finalized = {"at": now, "by": identity.name, "revision": state["revision"],
                     "inputs_hash": digest}
        if not self.store.finalize(campaign.id, finalized,
                                   outbox_entry(events.RESULTS_FINALIZED, payload, audit, now)):
            raise InvalidState(f"the list of campaign {campaign.id} changed meanwhile; read it "
                               "and retry")
        self.store.relay_events(campaign.id, self.dispatch)
        return self._publication(campaign.id)

    # --- objections (異議) during 公示 ---------------------------------------------------------

    @rpc(sensitive_arguments=("objection",))
    def lodge_objection(self, objection):
        """An objection to a candidate on the list: a letter, visit or call typed in by an
        admin, or sent by a trusted front end. The same one again returns the same objection."""
        identity = self.auth.require("admin", "frontend")
        return self._lodge(identity.as_actor(), identity.role, objection)

    @rpc
    def objections(self, campaign_id, status=None):
        """Every objection of a campaign, oldest first, with the objector (admins only)."""
        self.auth.require("admin")
        campaign = self._campaign(require_id(campaign_id, "campaign_id"))
        query = load(schemas.ObjectionQuery(), {"status": status}, "query")
        return [objections.admin_row(record, self._nominee_name(record["candidate_id"]))
                for record in self.store.objections_of(campaign.id, query["status"])]

    @rpc
    def resolve_objection(self, objection_id, verdict, reason):
        """The verdict, once: ``upheld`` disqualifies the candidate through nomination and the
        next one moves up (a new revision); ``rejected`` records the reason. Either way the
        objector is told by SMS."""
        identity = self.auth.require("admin")
        require_id(objection_id, "objection_id")
        data = load(schemas.Verdict(), {"verdict": verdict, "reason": reason}, "verdict")
        record = self.store.objection(objection_id)
        if record is None:
            raise NotFound(f"no objection {objection_id}")
        objections.check_resolvable(record)
        campaign = self._campaign(record["campaign_id"])
        if data["verdict"] == objections.UPHELD:
            disqualified = self._disqualify_for(record, data["reason"])
        now = self.now()
        changes = {"status": data["verdict"], "verdict": data["verdict"],
                   "reason": data["reason"], "resolved_at": now, "resolved_by": identity.name,
                   "notice": {"status": "pending", "attempts": 0}}
        payload = events.make_event(events.OBJECTION_RESOLVED, campaign.id, now,
                                    objection_id=record["_id"],
                                    candidate_id=record["candidate_id"],
                                    category=record["category"], verdict=data["verdict"],
                                    reason=data["reason"])
        audit = audit_entry(identity.as_actor(), "resolve_objection", "objection",
                            record["_id"], campaign.id, now,
                            before={"status": objections.RECEIVED},
                            after={"status": data["verdict"], "reason": data["reason"]},
                            note=f"candidate {record['candidate_id']}")
        if not self.store.resolve_objection(record["_id"], changes,
                                            outbox_entry(events.OBJECTION_RESOLVED, payload,
                                                         audit, now)):
            raise InvalidState(f"objection {record['_id']} was decided meanwhile; a verdict "
                               "is given once")
        self.store.relay_objection_events(record["_id"], self.dispatch)
        if data["verdict"] == objections.UPHELD:
            # The same revision the candidate_disqualified event makes (that one then finds
            # the list already revised): done now so that the caller sees revision n + 1.
            self._revise_after_disqualification(disqualified)
        self._send_verdict_notice(self.store.objection(record["_id"]))
        return self._objection_reply(self.store.objection(record["_id"]))

    def _lodge(self, actor, channel, objection):
        data = load(schemas.Objection(), objection, "objection")
        campaign = self._campaign(data["campaign_id"])
        objector = data["objector"]
        keys = self.objection_keys
        objection_id = objections.objection_id(keys["id"], campaign.id, data["candidate_id"],
                                               objector["mobile"], objector["name"],
                                               data["grounds"])
        existing = self.store.objection(objection_id)
        if existing is not None:
            return self._objection_reply(existing)
        now = self.now()
        state = self.store.state(campaign.id)
        revision = objections.check_objection_accepted(campaign, state, data["candidate_id"],
                                                       now)
        candidate = self.store.candidate(data["candidate_id"])
        record = {"_id": objection_id, "campaign_id": campaign.id,
                  "candidate_id": data["candidate_id"], "category": candidate["category"],
                  "revision": revision, "channel": channel,
                  "objector": {"name": objector["name"], "mobile": objector["mobile"],
                               "mobile_hash": objections.mobile_hash(keys["mobile"],
                                                                     objector["mobile"])},
                  "grounds": data["grounds"], "status": objections.RECEIVED,
                  "received_at": now, "lodged_by": actor}
        payload = events.make_event(events.OBJECTION_RECEIVED, campaign.id, now,
                                    objection_id=objection_id,
                                    candidate_id=data["candidate_id"],
                                    category=candidate["category"], revision=revision,
                                    channel=channel)
        # The objector's name and mobile stay out of the trail: `objections` shows them.
        audit = audit_entry(actor, "lodge_objection", "objection", objection_id, campaign.id,
                            now, before=None,
                            after={"status": objections.RECEIVED,
                                   "candidate_id": data["candidate_id"], "revision": revision,
                                   "channel": channel, "grounds": data["grounds"]})
        if self.store.lodge_objection(record, outbox_entry(events.OBJECTION_RECEIVED, payload,
                                                           audit, now)):
            self.store.relay_objection_events(objection_id, self.dispatch)
        return self._objection_reply(self.store.objection(objection_id))

    def _objection_reply(self, record):
        campaign = self._campaign(record["campaign_id"])
        state = self.store.state(campaign.id)
        reply = objections.public_status(record, self._nominee_name(record["candidate_id"]))
        period = None
        for entry in state.get("revisions") or []:
            if entry["revision"] == record["revision"]:
                period = objections.period_of(campaign, entry)
        reply.update(campaign_id=record["campaign_id"], category=record["category"],
                     revision=record["revision"], channel=record["channel"],
                     period_last_day=period[0].isoformat() if period else None)
        return reply

    def _nominee_name(self, candidate_id):
        return (self.store.candidate(candidate_id) or {}).get("nominee_name")

    def _disqualify_for(self, record, reason):
        """Disqualify the candidate through nomination (as this service), naming the objection;
        returns what the list's revision needs. A retry after a crash finds it done."""
        cid = record["candidate_id"]
        try:
            nomination = self.peers("nomination", "disqualify", cid,
                                    objections.disqualification_reason(record, reason),
                                    objection_id=record["_id"])
        except InvalidState:
            nomination = self.peers("nomination", "get", cid)
            if nomination.get("status") != domain.DISQUALIFIED:
                raise
        except PingxuanError:
            raise
        except Exception as exc:
            error = typed(exc)
            if isinstance(error, PingxuanError):
                raise error
            raise InvalidState(f"the nomination service did not disqualify candidate {cid} "
                               f"({type(exc).__name__}); nothing was decided, try again")
        facts = load(schemas.CandidateRecord(), nomination, "nomination")
        self.store.ballot_copy.apply(candidate_of_record(facts))
        return {"event_id": f"objection:{record['_id']}", "campaign_id": record["campaign_id"],
                "candidate_id": cid, "occurred_at": facts["updated_at"],
                "reason": (facts.get("disqualification") or {}).get("reason") or reason}

    def _send_verdict_notice(self, record):
        """The verdict by SMS (an approved template); then only the mobile's hash is kept."""
        mobile = record["objector"].get("mobile")
        if mobile is None or (record.get("notice") or {}).get("status") != "pending":
            return
        campaign = self._campaign(record["campaign_id"])
        params = objections.verdict_notice_params(
            campaign, record, self._nominee_name(record["candidate_id"]))
        now = self.now()
        try:
            self.peers("notification", "send_direct", "sms", mobile,
                       objections.VERDICT_TEMPLATE, params, f"objection-verdict|{record['_id']}")
        except Exception as exc:  # notification down: the sweep tries again
            log.warning("verdict notice of %s not sent: %s", record["_id"], type(exc).__name__)
            self.store.notice_failed(record["_id"], f"{type(exc).__name__}: {exc}"[:300], now)
            return
        self.store.notice_sent(record["_id"], record["objector"]["mobile_hash"], now)

    # --- the public 公示 page -------------------------------------------------------------------

    @http("GET", "/publicity/static/<name>")
    def page_static(self, request, name):
        return page.static_file(name)

    @http("GET", "/publicity/<campaign_id>")
    def page_publicity(self, request, campaign_id):
        return self._render_publicity(request, campaign_id)

    @http("POST", "/publicity/<campaign_id>/code")
    def page_send_code(self, request, campaign_id):
        """Step 1 of the objection form: a one-time code to the objector's mobile."""
        form = page.form_body(request) or {}
        try:
            campaign = self._page_campaign(campaign_id)
            mobile = load(schemas.CodeRequest(), {"mobile": form.get("mobile")},
                          "code")["mobile"]
            self._send_objection_code(campaign, mobile, client_ip(
                request, self.settings[cfg.TRUSTED_PROXIES]))
        except PingxuanError as error:
            return self._render_publicity(request, campaign_id, error=error)
        return self._render_publicity(
            request, campaign_id, code_sent=True, form={"mobile": mobile},
            message=f"验证码已发送到 {otp.mask_mobile(mobile)}，请查看短信。", kind="ok")

    @http("POST", "/publicity/<campaign_id>/objections")
    def page_lodge(self, request, campaign_id):
        """Step 2: the code, the objector's real name, the candidate and the grounds."""
        form = page.form_body(request)
        if form is None:
            error = ValidationError({"body": ["too large"]})
            return self._render_publicity(request, campaign_id, error=error)
        kept = {key: form.get(key) if isinstance(form.get(key), str) else ""
                for key in ("mobile", "name", "candidate_id", "grounds")}
        try:
            campaign = self._page_campaign(campaign_id)
            reply = self._lodge_from_page(campaign, form)
        except PingxuanError as error:
            # A wrong or expired code keeps what was typed; nothing is stored.
            # A wrong code or a field to correct keeps the form as typed (nothing is stored,
            # the code is used only by an objection that is taken); a locked number or a
            # bad mobile starts again.
            messages = getattr(error, "messages", None) or {}
            keep = (bool(schemas.mainland(kept["mobile"]))
                    and getattr(error, "exc_type", "") == "ValidationError"
                    and "objector.mobile" not in messages)
            if keep:
                kept["mobile"] = schemas.mainland(kept["mobile"])
            return self._render_publicity(request, campaign_id, error=error, code_sent=keep,
                                          form=kept if keep else {})
        return page.redirect(f"/publicity/{campaign.id}/objections/{reply['objection_id']}"
                             "?new=1")

    @http("GET", "/publicity/<campaign_id>/status")
    def page_lookup(self, request, campaign_id):
        receipt = (request.args.get("receipt") or "").strip().lower()
        try:
            require_id(receipt, "receipt")
        except ValidationError as error:
            return self._render_publicity(request, campaign_id, error=error, receipt=receipt)
        return page.redirect(f"/publicity/{campaign_id}/objections/{receipt}")

    @http("GET", "/publicity/<campaign_id>/objections/<objection_id>")
    def page_objection(self, request, campaign_id, objection_id):
        """An objection's status and, once decided, the verdict (no name, mobile or grounds)."""
        large, asked = page.large_text(request)
        record = None
        try:
            campaign = self._page_campaign(campaign_id)
            record = self.store.objection(require_id(objection_id, "receipt"))
        except PingxuanError as error:
            return self._render_publicity(request, campaign_id, error=error)
        if record is None or record["campaign_id"] != campaign.id:
            return self._render_publicity(request, campaign_id, error=NotFound("no objection"),
                                          receipt=objection_id,
                                          message="没有找到这个回执编号对应的异议，请核对后重试。")
        status = objections.public_status(record, self._nominee_name(record["candidate_id"]))
        return page.html(page.render("objection.html", campaign=campaign, large=large,
                                     new=request.args.get("new") == "1",
                                     status=page.status_view(status, campaign)),
                         large=large if asked else None)

    def _page_campaign(self, campaign_id):
        return self._campaign(require_id(campaign_id, "campaign_id"))

    def _render_publicity(self, request, campaign_id, error=None, status=None, message=None,
                          kind=None, code_sent=False, form=None, receipt=None):
        large, asked = page.large_text(request)
        try:
            campaign = self._page_campaign(campaign_id)
        except PingxuanError:
            body = page.render("base.html", large=large, message="没有找到这项评选活动。",
                               kind="error")
            return page.html(body, 404)
        if error is not None:
            message = message or page.refusal_zh(error)
            kind = "error"
            status = status or PAGE_STATUS.get(getattr(error, "exc_type", ""), 400)
        state = self.store.state(campaign.id)
        context = {"campaign": campaign, "large": large, "message": message, "kind": kind,
                   "code_sent": code_sent, "form": form or {}, "receipt": receipt,
                   "masked": otp.mask_mobile(form["mobile"]) if code_sent else "",
                   "valid_minutes": int(otp.OTP_VALID.total_seconds() // 60),
                   "max_wrong": otp.OTP_MAX_WRONG,
                   "published": state["phase"] != domain.OPEN}
        if context["published"]:
            report = self._report(campaign, None, state)
            revisions = state.get("revisions") or []
            context.update(
                sections=page.list_views(report),
                revisions=page.revision_views(campaign, revisions, page.names_of(report)),
                current_period=page.period_text(campaign, revisions[-1]),
                accepting=state["phase"] == domain.PUBLISHED,
                phase_text=("公示中" if state["phase"] == domain.PUBLISHED
                            else "已审定，公示期结束") + f" · 第{state['revision']}版名单")
        return page.html(page.render("publicity.html", **context), status or 200,
                         large=large if asked else None)

    def _send_objection_code(self, campaign, mobile, address):
        """The voting page's code rules (shared): per number, per address, lockout."""
        state = self.store.state(campaign.id)
        if state["phase"] != domain.PUBLISHED:
            raise InvalidState(f"the list of campaign {campaign.id} is not in 公示")
        keys = self.objection_keys
        now = self.now()
        otp_key = f"{campaign.id}|{objections.mobile_hash(keys['mobile'], mobile)}"
        slot = otp.code_ip_slot(campaign.id, objections.mobile_hash(keys["code"],
                                                                    f"ip|{address}"), now)

        def send(code):
            try:
                self.peers("notification", "send_direct", "sms", mobile, CODE_TEMPLATE,
                           {"code": code, "campaign_name": campaign.name,
                            "valid_minutes": int(otp.OTP_VALID.total_seconds() // 60)},
                           f"objection-code|{otp_key}|{now.timestamp()}")
            except Exception as exc:
                log.warning("objection code not sent: %s", type(exc).__name__)
                raise Unavailable("the one-time code could not be sent")

        otp.issue_code(self.store, otp_key, {"campaign_id": campaign.id, "mobile": mobile}, slot,
                       objections.code_ip_limit(campaign), now,
                       local_day(now, campaign.timezone), keys["code"], send)

    def _lodge_from_page(self, campaign, form):
        """Check everything first, then use the code (single use), then lodge: a refused
        objection stores nothing and leaves the code usable."""
        objection = {"campaign_id": campaign.id, "candidate_id": form.get("candidate_id"),
                     "objector": {"name": form.get("name"), "mobile": form.get("mobile")},
                     "grounds": form.get("grounds")}
        data = load(schemas.Objection(), objection, "objection")
        code = load(schemas.CodeCheck(), {"code": form.get("code")}, "code")["code"]
        objections.check_objection_accepted(campaign, self.store.state(campaign.id),
                                            data["candidate_id"], self.now())
        keys = self.objection_keys
        mobile = data["objector"]["mobile"]
        otp_key = f"{campaign.id}|{objections.mobile_hash(keys['mobile'], mobile)}"
        mac = otp.code_mac(keys["code"], otp_key, code)
        now = self.now()
        otp.redeem_code(self.store, otp_key, mac, now)
        return self._lodge(PAGE_ACTOR, "page", data)

    # --- our own calls -----------------------------------------------------------------------

    @rpc
    def report(self, campaign_id, category=None, include_inputs=False):
        """Everything about the results: rows, shortfalls, hash, revisions, orphans (admin)."""
        self.auth.require("admin", SERVICE_ROLE)
        query = load(schemas.Query(), {"category": category, "include_inputs": include_inputs},
                     "query")
        return self._report(self._campaign(campaign_id), query["category"],
                            include_inputs=query["include_inputs"])

    @rpc
    def publication(self, campaign_id):
        """The list's phase, revision, hash and revision history (anyone)."""
        return self._publication(self._campaign(campaign_id).id)

    @rpc
    def tally(self, campaign_id, category=None):
        """Live votes per standing candidate, cached for a moment (dashboards, any token)."""
        self.auth.require()
        query = load(schemas.Query(), {"category": category}, "query")
        return self._tally(require_id(campaign_id, "campaign_id"), query["category"])

    @http("GET", "/tally/<campaign_id>")
    def http_tally(self, request, campaign_id):
        """The live tally as JSON for the department's dashboards (counts are public)."""
        try:
            return json_response(self._tally(require_id(campaign_id, "campaign_id"), None))
        except ValidationError as exc:
            return json_response({"error": "ValidationError", "messages": exc.messages}, 400)

    @rpc
    def rebuild(self, campaign_id):
        """Recompute everything from the other services' records; equal to the incremental state?

        Reads ``nomination.list``, ``voting.votes_page`` and ``scoring.scores``
        under the service's own identity. Changes nothing: it reports.
        """
        self.auth.require("admin", SERVICE_ROLE)
        campaign = self._campaign(campaign_id)
        started = time.perf_counter()
        rebuild_id = uuid.uuid4().hex
        self.store.start_rebuild(campaign.id, rebuild_id, self.store.votes_held(campaign.id),
                                 self.now())
        try:
            report = self._rebuild(campaign, started, rebuild_id)
        except Exception as exc:
            self.store.finish_rebuild(campaign.id, rebuild_id, self.now(),
                                      error=f"{type(exc).__name__}: {exc}")
            raise
        self.store.finish_rebuild(campaign.id, rebuild_id, self.now())
        return report

    @rpc
    def rebuild_progress(self, campaign_id):
        """How far the campaign's latest rebuild got, whichever instance runs it (the CLI's
        progress bar polls this while its ``rebuild`` call runs)."""
        self.auth.require("admin", SERVICE_ROLE)
        record = self.store.rebuild_progress(require_id(campaign_id, "campaign_id"))
        if record is None:
            raise NotFound(f"no rebuild of {campaign_id} has run")
        return {"campaign_id": record["_id"], "rebuild_id": record["rebuild_id"],
                "state": record["state"], "votes_read": record["votes_read"],
                "votes_expected": record["votes_expected"], "pages": record["pages"],
                "started_at": iso(record["started_at"]), "updated_at": iso(record["updated_at"]),
                "finished_at": iso(record["finished_at"]), "error": record["error"]}

    def _rebuild(self, campaign, started, rebuild_id):
        def page_read(votes_read, pages):
            self.store.rebuild_read(campaign.id, rebuild_id, votes_read, pages, self.now())

        records = self._peer_candidates(campaign.id)
        vote_counts, voided_counts, minutes, votes_read = self._peer_votes(campaign.id, page_read)
        scores = self._peer_scores(campaign.id)
        rebuilt = domain.live_from_records(
            records, vote_counts, scores, domain.daily_from_minutes(minutes, campaign.timezone),
            voided_counts)
        state = self.store.state(campaign.id)
        incremental = self._document_live(campaign, state)
        published_ids = published_candidate_ids(state)
        incremental, excluded = domain.split_disqualified(incremental, published_ids)
        rebuilt, rebuilt_excluded = domain.split_disqualified(rebuilt, published_ids)
        label_key = self.store.judge_label_key(campaign.id)
        ours = domain.inputs_document(
            campaign, incremental, domain.disqualified_after(state, excluded), label_key)
        theirs = domain.inputs_document(
            campaign, rebuilt, domain.disqualified_after(state, rebuilt_excluded), label_key)
        differences = (domain.compare_inputs(ours, theirs)
                       + domain.compare_voided(incremental, rebuilt))
        same_ranking = (domain.seats_of(domain.live_standings(campaign, incremental))
                        == domain.seats_of(domain.live_standings(campaign, rebuilt)))
        duration = time.perf_counter() - started
        self.metrics.rebuild_seconds.observe(duration)
        report = {
            "campaign_id": campaign.id, "equal": not differences and same_ranking,
            "incremental_hash": domain.inputs_hash(ours),
            "rebuilt_hash": domain.inputs_hash(theirs),
            "published_hash": (state.get("current") or {}).get("inputs_hash"),
            "votes": {"incremental": sum(incremental["votes"].values()),
                      "rebuilt": sum(rebuilt["votes"].values()), "read": votes_read},
            "voided_votes": {"incremental": sum(incremental["voided"].values()),
                             "rebuilt": sum(rebuilt["voided"].values())},
            "candidates": {"incremental": len(incremental["candidates"]),
                           "rebuilt": len(rebuilt["candidates"])},
            "differences": differences,
            "duration_seconds": round(duration, 3),
            "votes_per_second": round(votes_read / duration) if duration > 0 else None,
        }
        log.info("rebuild of %s: equal=%s, %d votes in %.2fs", campaign.id, report["equal"],
                 votes_read, duration)
        return report

    # --- timers ------------------------------------------------------------------------------

    @timer(interval=REFRESH_SECONDS)
    def refresh_results(self):
        """Write derived fields of changed categories and announce ``results_updated``."""
        for campaign_id in self.store.dirty_campaigns():
            try:
                self._refresh(campaign_id)
            except PingxuanError as exc:  # e.g. the campaign's definition has not arrived yet
                log.info("results of %s not refreshed: %s", campaign_id, exc)

    @timer(interval=OUTBOX_SWEEP_SECONDS)
    def sweep_outbox(self):
        """Publish events a crash left between the write and the publish; send verdict
        notices notification could not take."""
        self.store.sweep_outbox(self.dispatch, self.now())
        self.store.purge_expired_codes(self.now())
        for record in self.store.notices_due(objections.NOTICE_ATTEMPTS):
            self._send_verdict_notice(record)

    # --- event helpers -----------------------------------------------------------------------

    def _read(self, event_type, payload):
        """The validated event, or ``None`` for a payload that does not match its schema."""
        try:
            return events.read_event(event_type, payload)
        except events.EventSchemaError as exc:
            log.warning("%s refused: %s", event_type, exc)
            self.metrics.events.labels(event_type, "refused").inc()
            return None

    def _of_campaign(self, event_type, payload):
        """The event if it is valid and names its campaign.

        Not a second de-duplication: ``@handles`` records each event in ``processed_events``
        once its handler returned and acknowledges a redelivery or a replay without running it
        (nothing here applies an event outside it; a rebuild reads the owners' records, not
        events). A redelivery after a crash before that record runs the handler again, and
        every effect is idempotent by itself for it."""
        event = self._read(event_type, payload)
        if event is None:
            return None
        if event["campaign_id"] is None:
            self.metrics.events.labels(event_type, "refused").inc()
            return None
        return event

    def _done(self, event, event_type, outcome, note=None):
        """Count the event's outcome (``note`` says why, for the log) and its lag."""
        applied_at = self.now()
        if note:
            log.debug("%s %s %s: %s", event_type, event["event_id"], outcome, note)
        self.metrics.events.labels(event_type, outcome).inc()
        self.metrics.lag.labels(event_type).observe(
            domain.lag_seconds(event["occurred_at"], applied_at))

    def _late(self, event, event_type, consequence):
        """Inputs that arrive after publication change the tallies, not the published list."""
        state = self.store.state(event["campaign_id"])
        if state["phase"] != domain.OPEN:
            self.store.note_late_event(event["campaign_id"], {
                "event_id": event["event_id"], "type": event_type,
                "occurred_at": event["occurred_at"], "phase": state["phase"],
                "note": consequence})

    def _candidate_event(self, event_type, payload):
        """Apply a nomination event to its candidate; returns the event."""
        event = self._read(event_type, payload)
        if event is None or event["campaign_id"] is None:
            return None
        newer = self.store.ballot_copy.apply(candidate_of_event(event))
        self.store.mark_dirty(event["campaign_id"], {event["category"]})
        self._done(event, event_type, "applied" if newer else "ignored",
                   None if newer else "a later event of this candidate was applied first")
        return event

    def _revise_after_disqualification(self, event):
        """After 公示, a disqualified candidate leaves the list and the next eligible one of
        the same category and sub-pool moves up: a revised list (revision + 1)."""
        campaign_id, candidate_id = event["campaign_id"], event["candidate_id"]
        for _ in range(REVISE_ATTEMPTS):
            state = self.store.state(campaign_id)
            if state["phase"] == domain.OPEN:
                return
            if state["phase"] == domain.FINALIZED:
                self.store.note_late_event(campaign_id, {
                    "event_id": event["event_id"], "type": events.CANDIDATE_DISQUALIFIED,
                    "occurred_at": event["occurred_at"], "phase": state["phase"],
                    "candidate_id": candidate_id, "reason": event["reason"],
                    "note": "the list was finalized: it does not change"})
                return
            campaign = self._campaign(campaign_id)
            revised = self._published_standings(campaign, state)
            seats = domain.seats_of(revised["standings"])
            current = state["current"]
            if seats == current["seats"]:
                return  # already revised (a redelivery), or the candidate was not on the list
            now = self.now()
            revision = state["revision"] + 1
            digest = revised["inputs_hash"]
            self.store.save_inputs_document(campaign_id, revision, digest, self._verifiable(
                campaign, revised["inputs"], revision, now, seats))
            entry = {"revision": revision, "at": now, "reason": "disqualification",
                     "event_id": event["event_id"], "candidate_id": candidate_id,
                     "disqualification_reason": event["reason"], "seats": seats,
                     "changes": domain.seat_changes(current["seats"], seats),
                     "shortfalls": domain.shortfalls_of(revised["standings"]),
                     "inputs_hash": digest,
                     "disqualified_after_publish": revised["excluded"]}
            payload = events.make_event(events.LIST_PUBLISHED, campaign_id, now,
                                        revision=revision, inputs_hash=digest)
            audit = audit_entry(SERVICE_ACTOR, "revise_list", "publicity_list", campaign_id,
                                campaign_id, now,
                                before={"revision": current["revision"], "seats": current["seats"]},
                                after={"revision": revision, "seats": seats,
                                       "changes": entry["changes"]},
                                note=f"candidate {candidate_id} disqualified: {event['reason']}")
            if self.store.revise(campaign_id, state["revision"], entry,
                                 outbox_entry(events.LIST_PUBLISHED, payload, audit, now)):
                self.store.relay_events(campaign_id, self.dispatch)
                self.store.mark_dirty(campaign_id, domain.campaign_categories(campaign))
                return
        raise InvalidState(f"could not revise the list of {campaign_id}: it kept changing")

    # --- computing results -------------------------------------------------------------------

    def _campaign(self, campaign_id):
        return self.campaigns.get(campaign_id)

    def _day_of(self, campaign_id):
        """A vote's local day in the campaign's zone (the per-day counts of the inputs)."""
        try:
            zone = ZoneInfo(self._campaign(campaign_id).timezone)
        except PingxuanError as exc:  # no campaign: its votes are in no result; keep UTC days
            log.warning("votes for unknown campaign %s counted by UTC day: %s", campaign_id, exc)
            zone = timezone.utc
        days = {}  # the votes of a batch share a handful of instants

        def day_of(cast_at):
            day = days.get(cast_at)
            if day is None:
                day = days[cast_at] = parse_iso(cast_at).astimezone(zone).date().isoformat()
            return day
        return day_of

    def _published_standings(self, campaign, state):
        """The published ranking with the candidates disqualified since then skipped."""
        published = state["published"]
        raw = self.store.live_inputs(campaign.id, state)
        live, live_excluded = domain.split_disqualified(raw, published_candidate_ids(state))
        # Once finalized, the list is frozen: later disqualifications do not count.
        excluded = (state["current"]["disqualified_after_publish"]
                    if state["phase"] == domain.FINALIZED else live_excluded)
        reasons = {cid: raw["candidates"][cid].get("disqualification_reason") for cid in excluded}
        inputs = domain.with_disqualifications(json.loads(published["inputs_json"]),
                                               domain.disqualified_after(state, excluded))
        return {"standings": domain.published_standings(campaign, published["rows"], excluded,
                                                        reasons),
                "excluded": excluded, "live_excluded": live_excluded, "inputs": inputs,
                "inputs_hash": domain.inputs_hash(inputs)}

    def _document_live(self, campaign, state=None):
        """The ``live`` mapping with what only an inputs document needs: votes per local day
        (a scan of the counted votes, so never read per event)."""
        live = self.store.live_inputs(campaign.id, state)
        daily = domain.group_daily_votes(self.store.daily_votes(campaign.id))
        live["daily_votes"] = {cid: daily.get(cid, []) for cid in live["candidates"]}
        return live

    def _verifiable(self, campaign, inputs, revision, now, seats):
        """A revision's inputs document (canonical JSON), refused unless the list recomputed
        from it alone is the list being published: what is published can be verified."""
        document = domain.verifiable_document(inputs, revision, iso(now))
        _, recomputed = domain.standings_from_inputs(inputs, revision)
        if domain.seats_of(recomputed) != seats:
            raise InvalidState(f"the list of campaign {campaign.id} recomputed from its inputs "
                               "document differs from the list; nothing was published")
        return domain.canonical_json(document).decode("utf-8")

    def _report(self, campaign, category=None, state=None, include_inputs=False, live_hash=True):
        state = state or self.store.state(campaign.id)
        published = state["phase"] != domain.OPEN
        live = (self.store.live_inputs(campaign.id, state) if published and not live_hash
                else self._document_live(campaign, state))
        label_key = None if published and not live_hash else self.store.judge_label_key(
            campaign.id)
        if not published:
            standings = domain.live_standings(campaign, live)
            inputs = domain.inputs_document(campaign, live, {}, label_key)
            digest = live_digest = domain.inputs_hash(inputs)
        else:
            revised = self._published_standings(campaign, state)
            standings = revised["standings"]
            digest = state["current"]["inputs_hash"]
            inputs = revised["inputs"]
            live_digest = None
            if live_hash:
                standing, live_excluded = domain.split_disqualified(
                    live, published_candidate_ids(state))
                live_digest = domain.inputs_hash(domain.inputs_document(
                    campaign, standing, domain.disqualified_after(state, live_excluded),
                    label_key))
        w_public, w_panel = domain.weights(campaign)
        sections = []
        for name, (rows, shortfalls) in standings.items():
            if category is not None and name != category:
                continue
            rules = campaign.category(name)
            panel = live["panels"].get(name) or {}
            sections.append({
                "category": name, "name": CATEGORY_NAMES_ZH[name],
                "award_slots": rules["award_slots"],
                "org_type_slots": rules.get("org_type_slots") or {},
                "panel_closed": bool(panel.get("closed")),
                "rows": [reply_row(row) for row in
                         domain.annotate_promotions(rows, state.get("revisions") or [])],
                "shortfalls": shortfalls,
            })
        report = {
            "campaign_id": campaign.id, "campaign_name": campaign.name,
            "phase": state["phase"], "revision": state.get("revision", 0),
            "inputs_hash": digest, "live_inputs_hash": live_digest,
            "inputs_changed_since_publish": (None if not published or live_digest is None
                                             else live_digest != digest),
            "weights": {"public": w_public, "panel": w_panel},
            "precision": domain.precision(campaign),
            "vote_normalisation": campaign.document["vote_normalisation"],
            "panel_method": campaign.document["panel_method"],
            "votes_counted": sum(live["votes"].values()),
            "categories": sections,
            "revisions": [revision_reply(entry) for entry in state.get("revisions") or []],
            "orphans": [{"candidate_id": doc["_id"], "category": doc.get("category"),
                         "votes": doc.get("votes", 0),
                         "nomination": doc.get("candidate_status") or "not received"}
                        for doc in self.store.orphans(campaign.id)],
            "late_events": state.get("late_events") or [],
            "published_at": iso((state.get("published") or {}).get("at")),
            "finalized_at": iso((state.get("finalized") or {}).get("at")),
        }
        if include_inputs:
            report["inputs"] = inputs
        return report

    def _publication(self, campaign_id):
        state = self.store.state(campaign_id)
        return {"campaign_id": campaign_id, "phase": state["phase"],
                "revision": state.get("revision", 0),
                "inputs_hash": (state.get("current") or {}).get("inputs_hash"),
                "published_at": iso((state.get("published") or {}).get("at")),
                "finalized_at": iso((state.get("finalized") or {}).get("at")),
                "revisions": [revision_reply(entry) for entry in state.get("revisions") or []]}

    def _tally(self, campaign_id, category):
        def compute():
            voided = self.store.voided_by_candidate(campaign_id)
            return {"campaign_id": campaign_id, "as_of": iso(self.now()),
                    "rows": domain.tally(
                        [dict(doc, candidate_id=doc["_id"], status=doc.get("candidate_status"),
                              votes=doc.get("votes", 0) - voided.get(doc["_id"], 0))
                         for doc in self.store.candidates(campaign_id)
                         if doc.get("known")])}
        tally = self.tallies.get(campaign_id, compute)
        if category is None:
            return tally
        return dict(tally, rows=[row for row in tally["rows"] if row["category"] == category])

    def _refresh(self, campaign_id):
        campaign = self._campaign(campaign_id)
        now = self.now()
        # Taken off the list first: a change from now on marks its category again.
        for category in self.store.state(campaign_id).get("dirty") or []:
            payload = events.make_event(events.RESULTS_UPDATED, campaign_id, now,
                                        category=category)
            self.store.take_dirty(campaign_id, category,
                                  outbox_entry(events.RESULTS_UPDATED, payload, None, now))
        state = self.store.state(campaign_id)
        if state["phase"] == domain.OPEN:
            standings = domain.live_standings(campaign, self.store.live_inputs(campaign_id, state))
        else:
            standings = self._published_standings(campaign, state)["standings"]
        for rows, _ in standings.values():
            self.store.save_derived(rows)
        self.store.relay_events(campaign_id, self.dispatch)

    def _resolve_orphans(self, campaign_id):
        """Catch up with nomination before publishing (votes or scores may have come before
        their nomination's event); returns the orphans still unresolved (nomination did not
        answer). An id nomination lists no candidate of is recorded as not a candidate
        and no longer holds anything up."""
        caught_up = self._catch_up_ballot(campaign_id, now=True)
        unresolved = []
        for orphan in self.store.orphans(campaign_id):
            if orphan.get("candidate_status") == domain.NOT_A_CANDIDATE:
                continue
            if caught_up is None:
                unresolved.append(orphan["_id"])
            else:
                self.store.mark_not_a_candidate(campaign_id, orphan["_id"],
                                                orphan.get("category"))
        return unresolved

    def _list_nominations(self, campaign_id):
        return [load(schemas.CandidateRecord(), row, "nomination.list")
                for row in self.peers("nomination", "list", campaign_id)]

    def _ballot_changed(self, campaign_id, candidates):
        self.store.mark_dirty(campaign_id, {candidate.category for candidate in candidates})

    # --- the rebuild's reads -----------------------------------------------------------------

    def _peer_candidates(self, campaign_id):
        records = []
        for status in domain.CANDIDATE_STATES:
            for record in self.peers("nomination", "list", campaign_id, status=status):
                records.append(self._peer_load(schemas.CandidateRecord(), record,
                                               "nomination.list"))
        return records

    def _peer_votes(self, campaign_id, page_read):
        """Counts of every vote voting holds, one page at a time: only the counts are kept
        (per candidate, per minute), never the votes, so memory does not grow with them."""
        counts, voided, minutes, read, cursor, pages = {}, {}, {}, 0, None, 0
        page_size = self.settings[REBUILD_PAGE_SIZE]
        while True:
            page = self._peer_load(schemas.VotesPage(), self.peers(
                "voting", "votes_page", campaign_id, after=cursor, limit=page_size),
                "voting.votes_page")
            try:
                domain.count_page(counts, page["votes"], voided)
                domain.count_minutes(minutes, page["votes"])
            except (KeyError, TypeError):
                raise InvalidState("voting.votes_page returned a vote without a candidate_id "
                                   "or cast_at")
            read += len(page["votes"])
            pages += 1
            page_read(read, pages)
            cursor = page["next"]
            if cursor is None or not page["votes"]:
                return counts, voided, minutes, read

    def _peer_scores(self, campaign_id):
        return self._peer_load(schemas.ScoresReply(), self.peers("scoring", "scores", campaign_id),
                               "scoring.scores")

    def _peer_load(self, schema, data, source):
        try:
            return load(schema, data, source)
        except ValidationError as exc:
            raise InvalidState(f"{source} replied in an unexpected shape: {exc.messages}")


# --- replies ---------------------------------------------------------------------------------

#: Row fields a reply carries (``submitted_at`` is the tie rule's input, so it is shown).
ROW_FIELDS = ("candidate_id", "nominee_name", "nominee_unit", "category", "org_type", "votes",
              "voided_votes", "vote_score", "panel_score", "composite", "rank", "pool", "pool_rank", "status",
              "tie_break", "submitted_at", "disqualification_reason", "promoted_in_revision",
              "replaces")
PUBLIC_FIELDS = ("candidate_id", "nominee_name", "nominee_unit", "category", "org_type", "votes",
                 "voided_votes", "vote_score", "panel_score", "composite", "rank", "pool", "status",
                 "tie_break", "promoted_in_revision")


def reply_row(row):
    return {name: row.get(name) for name in ROW_FIELDS}


def public_row(row):
    return {name: row.get(name) for name in PUBLIC_FIELDS}


def revision_reply(entry):
    return {"revision": entry["revision"], "at": iso(entry["at"]), "reason": entry["reason"],
            "candidate_id": entry.get("candidate_id"),
            "disqualification_reason": entry.get("disqualification_reason"),
            "changes": entry.get("changes") or {}, "shortfalls": entry.get("shortfalls") or [],
            "inputs_hash": entry["inputs_hash"],
            "disqualified_after_publish": entry.get("disqualified_after_publish") or []}


def published_candidate_ids(state):
    """The candidates standing when the list was published (its ranking)."""
    published = state.get("published") or {}
    return {row["candidate_id"] for rows in (published.get("rows") or {}).values()
            for row in rows if row["candidate_status"] == domain.ACCEPTED}

