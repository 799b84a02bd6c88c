"""The ``aggregation`` service: weighted results (加權統分) and the publicity list (公示名單).

Event handlers apply the other services' events to the incremental state, each
once (by ``event_id``, votes also by ``vote_id``) and in any order; RPC methods
compute results exactly from that state, publish and finalize the list, and
rebuild everything from the other services' records to check it.
"""
import json
import logging
import time
from datetime import timezone
from zoneinfo import ZoneInfo

from nameko.events import EventDispatcher, event_handler
from nameko.timer import timer
from nameko.web.handlers import http
from prometheus_client import Counter, Histogram

from shared import events
from shared.audit import audit_entry
from shared.auth import SERVICE_ROLE
from shared.campaign import CATEGORY_NAMES_ZH, validate_campaign
from shared.clock import Clock
from shared.entrypoints import Audited, FollowsCampaigns, PingxuanService, json_response, rpc
from shared.errors import InvalidState, NotFound, PingxuanError, ValidationError
from shared.metrics import Metrics
from shared.outbox import outbox_entry
from shared.service_rpc import ServiceRpc
from shared.store import MongoStore
from shared.timeutil import iso, parse_iso
from shared.validation import load, require_id
from services.aggregation import domain, schemas
from services.aggregation.providers import REBUILD_PAGE_SIZE, Settings, TallyCache
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


def define_metrics(registry):
    return {
        "events": Counter(
            "pingxuan_aggregation_events_total",
            "Events received, by type and outcome (applied, duplicate, ignored, refused)",
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


class AggregationService(Audited, FollowsCampaigns, PingxuanService):
    """加權統分, ranking within the award slots, 公示 and 審定."""

    name = "aggregation"

    store = MongoStore(AggregationStore)
    metrics = Metrics(define=define_metrics)
    dispatch = EventDispatcher()
    peers = ServiceRpc()
    settings = Settings()
    tallies = TallyCache()
    now = Clock()

    # --- events in ---------------------------------------------------------------------------

    @event_handler(events.NOMINATION, events.CAMPAIGN_LOADED)
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

    @event_handler(events.NOMINATION, events.NOMINATION_REVIEWED, requeue_on_error=True)
    def on_nomination_reviewed(self, payload):
        self._candidate_event(events.NOMINATION_REVIEWED, payload)

    @event_handler(events.NOMINATION, events.NOMINATION_WITHDRAWN, requeue_on_error=True)
    def on_nomination_withdrawn(self, payload):
        self._candidate_event(events.NOMINATION_WITHDRAWN, payload)

    @event_handler(events.NOMINATION, events.CANDIDATE_DISQUALIFIED, requeue_on_error=True)
    def on_candidate_disqualified(self, payload):
        event = self._candidate_event(events.CANDIDATE_DISQUALIFIED, payload)
        if event is not None:
            # After the redelivery of an applied event too: a crash may have come in between.
            self._revise_after_disqualification(event)

    @event_handler(events.VOTING, events.VOTE_CAST, requeue_on_error=True)
    def on_vote_cast(self, payload):
        event = self._fresh(events.VOTE_CAST, payload)
        if event is None:
            return
        campaign_id = event["campaign_id"]
        counted, _ = self.store.count_votes(campaign_id, event["event_id"], event["votes"],
                                            self._day_of(campaign_id))
        self.metrics.votes.inc(counted)
        self.store.mark_dirty(campaign_id, {vote["category"] for vote in event["votes"]})
        note = f"{counted} of {len(event['votes'])} votes counted"
        self._late(event, events.VOTE_CAST, "counted in the tallies, not in the published list")
        self._done(event, events.VOTE_CAST, "applied", note)

    @event_handler(events.VOTING, events.VOTES_VOIDED, requeue_on_error=True)
    def on_votes_voided(self, payload):
        """票數清零: the void's votes leave the counts (in any order with their vote_cast)."""
        event = self._fresh(events.VOTES_VOIDED, payload)
        if event is None:
            return
        campaign_id = event["campaign_id"]
        marked = self.store.apply_void(campaign_id, event["void_id"], event["vote_ids"],
                                       event["event_id"])
        self.store.mark_dirty(campaign_id, {count["category"] for count in event["counts"]})
        self._late(event, events.VOTES_VOIDED, "counted in the tallies, not in the published list")
        self._done(event, events.VOTES_VOIDED, "applied",
                   f"void {event['void_id']}: {marked} of {event['voided']} votes marked")

    @event_handler(events.VOTING, events.VOTES_RESTORED, requeue_on_error=True)
    def on_votes_restored(self, payload):
        """A void undone: exactly its votes count again."""
        event = self._fresh(events.VOTES_RESTORED, payload)
        if event is None:
            return
        campaign_id = event["campaign_id"]
        unmarked = self.store.apply_restore(campaign_id, event["void_id"], event["event_id"])
        self.store.mark_dirty(campaign_id, {count["category"] for count in event["counts"]})
        self._late(event, events.VOTES_RESTORED,
                   "counted in the tallies, not in the published list")
        self._done(event, events.VOTES_RESTORED, "applied",
                   f"void {event['void_id']} restored: {unmarked} marks removed")

    @event_handler(events.SCORING, events.SCORE_SUBMITTED, requeue_on_error=True)
    def on_score_submitted(self, payload):
        event = self._fresh(events.SCORE_SUBMITTED, payload)
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

    @event_handler(events.SCORING, events.PANEL_CLOSED, requeue_on_error=True)
    def on_panel_closed(self, payload):
        event = self._fresh(events.PANEL_CLOSED, payload)
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
        report = self._report(campaign, None, state)
        stamp = {"revision": report["revision"], "inputs_hash": report["inputs_hash"],
                 "phase": report["phase"]}
        return [dict(public_row(row), **stamp) for section in report["categories"]
                for row in section["rows"] if row["status"] == domain.SELECTED]

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
        live = self.store.live_inputs(campaign.id)
        domain.check_publishable(campaign, state["phase"], now, live, unresolved)
        standings = domain.live_standings(campaign, live)
        inputs = domain.inputs_document(campaign, live)
        digest = domain.inputs_hash(inputs)
        seats = domain.seats_of(standings)
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
        records = self._peer_candidates(campaign.id)
        vote_counts, voided_counts, votes_read = self._peer_votes(campaign.id)
        scores = self._peer_scores(campaign.id)
        rebuilt = domain.live_from_records(records, vote_counts, scores, voided_counts)
        state = self.store.state(campaign.id)
        incremental = self.store.live_inputs(campaign.id, state)
        published_ids = published_candidate_ids(state)
        incremental, excluded = domain.split_disqualified(incremental, published_ids)
        rebuilt, rebuilt_excluded = domain.split_disqualified(rebuilt, published_ids)
        ours = domain.inputs_document(campaign, incremental, excluded)
        theirs = domain.inputs_document(campaign, rebuilt, rebuilt_excluded)
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
        """Publish events a crash left between the write and the publish."""
        self.store.sweep_outbox(self.dispatch, self.now())

    # --- event helpers -----------------------------------------------------------------------

    def _read(self, event_type, payload):
        """The validated event, or ``None`` for a payload that does not match its schema."""
        try:
            return events.read_event(event_type, payload)
        except events.EventSchemaError as exc:
            log.warning("%s refused: %s", event_type, exc)
            self.metrics.events.labels(event_type, "refused").inc()
            return None

    def _fresh(self, event_type, payload):
        """The event if it is valid and not applied yet (redeliveries and replays stop here)."""
        event = self._read(event_type, payload)
        if event is None:
            return None
        if event["campaign_id"] is None:
            self.metrics.events.labels(event_type, "refused").inc()
            return None
        if self.store.was_applied(event["event_id"]):
            self.metrics.events.labels(event_type, "duplicate").inc()
            return None
        return event

    def _done(self, event, event_type, outcome, note=None):
        applied_at = self.now()
        self.store.mark_applied(event["event_id"], event_type, event["campaign_id"], outcome,
                                applied_at, note)
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
        """Apply a nomination event to its candidate; returns the event (even if a duplicate)."""
        event = self._read(event_type, payload)
        if event is None or event["campaign_id"] is None:
            return None
        if self.store.was_applied(event["event_id"]):
            self.metrics.events.labels(event_type, "duplicate").inc()
            return event
        facts = domain.candidate_facts(event, event.get("candidate_id"))
        key = domain.order_key(event["occurred_at"], event["event_id"])
        newer = self.store.apply_candidate_facts(event["campaign_id"], facts, key)
        self.store.mark_dirty(event["campaign_id"], {facts["category"]})
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
        inputs = domain.inputs_document(campaign, domain.live_from_inputs(
            json.loads(published["inputs_json"])), excluded)
        return {"standings": domain.published_standings(campaign, published["rows"], excluded,
                                                        reasons),
                "excluded": excluded, "inputs_hash": domain.inputs_hash(inputs),
                "live_inputs_hash": domain.inputs_hash(
                    domain.inputs_document(campaign, live, live_excluded))}

    def _report(self, campaign, category=None, state=None, include_inputs=False):
        state = state or self.store.state(campaign.id)
        live = self.store.live_inputs(campaign.id, state)
        if state["phase"] == domain.OPEN:
            standings = domain.live_standings(campaign, live)
            inputs = domain.inputs_document(campaign, live)
            digest = live_digest = domain.inputs_hash(inputs)
        else:
            revised = self._published_standings(campaign, state)
            standings = revised["standings"]
            digest = state["current"]["inputs_hash"]
            live_digest = revised["live_inputs_hash"]
            inputs = domain.inputs_document(campaign, domain.live_from_inputs(
                json.loads(state["published"]["inputs_json"])), revised["excluded"])
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
            "inputs_changed_since_publish": (None if state["phase"] == domain.OPEN
                                             else live_digest != digest),
            "weights": {"public": w_public, "panel": w_panel},
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
        """Ask nomination about candidates whose votes or scores came without their nomination.

        Returns the ids still unresolved (nomination unreachable); an id nomination does
        not know as a candidate is recorded as such and no longer holds anything up.
        """
        unresolved = []
        for orphan in self.store.orphans(campaign_id):
            if orphan.get("candidate_status") == domain.NOT_A_CANDIDATE:
                continue
            cid = orphan["_id"]
            try:
                record = load(schemas.CandidateRecord(), self.peers("nomination", "get", cid),
                              "nomination")
            except (NotFound, ValidationError):
                # Below every real event's key: a nomination event arriving later still wins.
                self.store.apply_candidate_facts(campaign_id, {
                    "candidate_id": cid, "category": orphan.get("category"),
                    "candidate_status": domain.NOT_A_CANDIDATE}, "")
                continue
            except Exception as exc:  # nomination down or timing out: publish must wait
                log.warning("cannot resolve orphan %s: %s", cid, exc)
                unresolved.append(cid)
                continue
            facts = domain.candidate_from_record(record)
            self.store.apply_candidate_facts(campaign_id, facts, domain.order_key(
                record.get("updated_at") or record["submitted_at"], ""))
        return unresolved

    # --- the rebuild's reads -----------------------------------------------------------------

    def _peer_candidates(self, campaign_id):
        records = []
        for status in domain.CANDIDATE_STATES:
            for record in self.peers("nomination", "list", campaign_id, status=status):
                records.append(self._peer_load(schemas.CandidateRecord(), record,
                                               "nomination.list"))
        return records

    def _peer_votes(self, campaign_id):
        counts, voided, read, cursor = {}, {}, 0, None
        page_size = self.settings[REBUILD_PAGE_SIZE]
        while True:
            page = self._peer_load(schemas.VotesPage(), self.peers(
                "voting", "votes_page", campaign_id, after=cursor, limit=page_size),
                "voting.votes_page")
            try:
                domain.count_page(counts, page["votes"], voided)
            except (KeyError, TypeError):
                raise InvalidState("voting.votes_page returned a vote without a candidate_id")
            read += len(page["votes"])
            cursor = page["next"]
            if cursor is None or not page["votes"]:
                return counts, voided, read

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
              "submitted_at", "disqualification_reason", "promoted_in_revision", "replaces")
PUBLIC_FIELDS = ("candidate_id", "nominee_name", "nominee_unit", "category", "org_type", "votes",
                 "voided_votes", "vote_score", "panel_score", "composite", "rank", "pool", "status",
                 "promoted_in_revision")


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

