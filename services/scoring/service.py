"""The ``scoring`` service: the panel review (集中評審), thin nameko entrypoints.

Each entrypoint: verify the caller (a token, or a judge's personal link on the
page), load input through a schema, apply the domain's rules, write the change
together with its event (outbox), relay it.
"""
import json
import logging
from datetime import timedelta

from nameko.events import EventDispatcher
from nameko.timer import timer
from nameko.web.handlers import http
from prometheus_client import Counter, Gauge

from shared import events, plugins
from shared.audit import audit_entry
from shared.ballot import FollowsBallot, candidate_of_event
from shared.auth import SERVICE_ROLE
from shared.clock import Clock
from shared.entrypoints import Audited, FollowsCampaigns, PingxuanService, json_response, rpc
from shared.errors import Conflict, Forbidden, NotFound, PingxuanError, Unauthorized, ValidationError
from shared.handlers import handles
from shared.metrics import Metrics
from shared.outbox import outbox_entry
from shared.service_rpc import ServiceRpc
from shared.store import MongoStore
from shared.validation import load, require_id
from services.scoring import domain, page, schemas
from services.scoring.providers import LINK_HEADER, JudgeLinks, JudgeNotifier, NoticeFailed
from services.scoring.store import FAILED, SENT, SKIPPED, ScoringStore, audit_only

log = logging.getLogger(__name__)

OUTBOX_SWEEP_SECONDS = 5
NOTICE_SECONDS = 10
NOTICE_MAX_ATTEMPTS = 10
#: Attempts at a write that lost a race with another (a score, a close) before giving up.
WRITE_ATTEMPTS = 5
MAX_PAGE_BODY = 64 * 1024
#: HTTP status of each refusal on the judge's page API.
PAGE_STATUS = {"ValidationError": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404,
               "InvalidState": 409, "Conflict": 409, "PanelClosed": 410}


def define_metrics(registry):
    return {
        "submissions": Counter(
            "pingxuan_score_submissions_total", "Scores stored, first or replacing an earlier one",
            ["category", "outcome"], registry=registry),
        "panel_pairs": Gauge(
            "pingxuan_panel_pairs", "(judge, candidate) pairs of a panel by state",
            ["campaign_id", "category", "state"], registry=registry),
        "panels_closed": Counter(
            "pingxuan_panels_closed_total", "Panels closed", ["category"], registry=registry),
        "notices": Counter(
            "pingxuan_judge_notices_total", "Judge notices by template and outcome",
            ["template", "outcome"], registry=registry),
    }


class ScoringService(Audited, FollowsCampaigns, FollowsBallot, PingxuanService):
    """集中評審: panels of judges score the candidates of each category."""

    name = "scoring"

    metrics = Metrics(define=define_metrics)
    store = MongoStore(ScoringStore)
    dispatch = EventDispatcher()
    now = Clock()
    service_rpc = ServiceRpc()
    links = JudgeLinks()
    notifier = JudgeNotifier()

    # --- the department: panels --------------------------------------------------------------

    @rpc
    def assign_panel(self, campaign_id, category, judges):
        """Set the judges of a category's panel; answers with each judge's personal link."""
        identity = self.auth.require("admin")
        campaign = self.campaigns.get(campaign_id)
        domain.check_category_run(campaign, category)
        wanted = load(schemas.Panel(), {"judges": judges}, "judges")["judges"]
        self._catch_up_ballot(campaign.id)
        now = self.now()
        for _ in range(WRITE_ATTEMPTS):
            panel = self.store.panel(campaign.id, category)
            domain.check_panel_open(panel)
            current = panel["judges"] if panel else []
            merged = domain.merge_judges(current, wanted, now)
            if panel and not domain.judges_changed(current, merged):
                break
            audit = audit_entry(
                identity.as_actor(), "assign_panel", "panel", domain.panel_id(campaign.id, category),
                campaign.id, now,
                before=[domain.public_judge(j) for j in current] if panel else None,
                after=[domain.public_judge(j) for j in merged])
            if panel is None:
                stored = self.store.create_panel(campaign.id, category, merged, now,
                                                 audit_only(audit, now))
            else:
                stored = self.store.replace_judges(panel, merged, audit_only(audit, now))
            if stored:
                self.store.relay_panel_events(domain.panel_id(campaign.id, category), self.dispatch)
                break
        else:
            raise Conflict(f"the panel of {category} changed while assigning; try again")
        panel = self.store.panel(campaign.id, category)
        self._queue_notices(domain.ASSIGNMENT, panel, panel["judges"], now)
        self._track_progress(panel, self.store.ballot(campaign.id, category))
        return domain.panel_reply(panel, self.links.urls(panel))

    @rpc
    def send_links(self, campaign_id, category, judge_ids=None, renew=False):
        """Queue the judges' assignment notices again (after a new link each, if ``renew``);
        answers with each named judge's link and the state of its message."""
        identity = self.auth.require("admin")
        campaign = self.campaigns.get(campaign_id)
        domain.check_category_run(campaign, category)
        wanted = load(schemas.LinkRequest(), {"judge_ids": judge_ids, "renew": renew}, "links")
        now = self.now()
        renewed = []
        for _ in range(WRITE_ATTEMPTS):
            panel = self._panel(campaign.id, category)
            domain.check_panel_open(panel)
            chosen = domain.chosen_judges(panel, wanted["judge_ids"])
            if not wanted["renew"]:
                break
            judges, renewed = domain.renew_links(
                panel["judges"], {judge["judge_id"] for judge in chosen}, now)
            if not renewed:
                break  # each was renewed moments ago: a double click
            audit = audit_entry(identity.as_actor(), "renew_links", "panel", panel["_id"],
                                campaign.id, now, after={"judge_ids": renewed})
            if self.store.replace_judges(panel, judges, audit_only(audit, now)):
                self.store.relay_panel_events(panel["_id"], self.dispatch)
                break
        else:
            raise Conflict(f"the panel of {category} changed while renewing links; try again")
        panel = self._panel(campaign.id, category)
        chosen = domain.chosen_judges(panel, wanted["judge_ids"])
        queued = self._queue_resends(panel, chosen, now)
        if queued:
            self.store.record_audit(audit_entry(
                identity.as_actor(), "send_links", "panel", panel["_id"], campaign.id, now,
                after={"judge_ids": queued}))
        notices = self.store.notices_of_panel(panel["_id"], [j["judge_id"] for j in chosen])
        rows = []
        for judge in chosen:
            reason = None if judge["judge_id"] in queued else (
                domain.SENT_MOMENTS_AGO if domain.notice_channel(judge) else domain.NO_CONTACT)
            rows.append(domain.link_row(judge, self.links.url(panel, judge),
                                        domain.link_notices(notices, judge),
                                        judge["judge_id"] in queued,
                                        judge["judge_id"] in renewed, reason))
        return {"campaign_id": campaign.id, "category": category, "renewed": renewed,
                "judges": rows}

    @rpc
    def close_panel(self, campaign_id, category):
        """No more scores: the panel score, by the campaign's method, becomes final."""
        identity = self.auth.require("admin")
        campaign = self.campaigns.get(campaign_id)
        criteria = domain.check_category_run(campaign, category)["criteria"]
        method_name = campaign.document["panel_method"]
        method = plugins.load_plugin(plugins.PANEL_METHODS, method_name)
        options = domain.panel_options(campaign)
        self._catch_up_ballot(campaign.id, now=True)  # the panel scores are final: every candidate
        for _ in range(WRITE_ATTEMPTS):
            panel = self._panel(campaign.id, category)
            if panel.get("closed"):
                return domain.panel_reply(panel)  # closing again changes nothing
            now = self.now()
            ballot = self.store.ballot(campaign.id, category)
            panel_scores = domain.panel_scores(method, panel, ballot, criteria, options)
            recusals = domain.recusals(panel, ballot)
            payload = events.make_event(events.PANEL_CLOSED, campaign.id, now, category=category,
                                        method=method_name, panel_scores=panel_scores)
            final = {"method": method_name, "options": options, "panel_scores": panel_scores,
                     "recusals": recusals, "score_range": list(domain.score_range(criteria))}
            audit = audit_entry(identity.as_actor(), "close_panel", "panel", panel["_id"],
                                campaign.id, now, before={"closed": False},
                                after=dict(final, closed=True))
            counted = domain.counted_scores(panel, ballot)
            changes = dict(final, closed_at=now, closed_by=identity.name, counted=[
                {"judge_id": judge_id, "candidate_id": cid, "total": total}
                for judge_id, row in sorted(counted.items()) for cid, total in sorted(row.items())])
            if self.store.close_panel(panel, changes,
                                      outbox_entry(events.PANEL_CLOSED, payload, audit, now)):
                self.store.relay_panel_events(panel["_id"], self.dispatch)
                self.metrics.panels_closed.labels(category).inc()
                return domain.panel_reply(self._panel(campaign.id, category))
        raise Conflict(f"scores kept arriving while closing the panel of {category}; try again")

    @rpc
    def progress(self, campaign_id, category=None):
        """Who has not scored whom, per panel of the campaign (or of one category)."""
        identity = self.auth.require("admin", SERVICE_ROLE)
        campaign = self.campaigns.get(campaign_id)
        if category is not None:
            domain.check_category_run(campaign, category)
            panels = [self._panel(campaign.id, category)]
        else:
            panels = self.store.panels_of(campaign.id)
        reports = []
        for panel in panels:
            ballot = self.store.ballot(campaign.id, panel["category"])
            self._track_progress(panel, ballot)
            report = domain.progress(panel, ballot)
            if identity.role == "admin":  # the judges' notices are the department's business
                report = domain.with_notices(report, panel,
                                             self.store.notices_of_panel(panel["_id"]))
            reports.append(report)
        return {"campaign_id": campaign.id, "panels": reports}

    @rpc
    def scores(self, campaign_id, category=None):
        """Every stored score and each panel's state (aggregation rebuilds from this)."""
        self.auth.require("admin", SERVICE_ROLE)
        campaign = self.campaigns.get(campaign_id)
        if category is not None:
            domain.check_category_run(campaign, category)
        rows, panels = [], {}
        for panel in self.store.panels_of(campaign.id, category):
            ballot = self.store.ballot(campaign.id, panel["category"])
            on_ballot = {c["_id"]: c for c in ballot}
            rows.extend(domain.score_reply(record, domain.is_counted(record, panel, on_ballot))
                        for record in (panel.get("scores") or {}).values())
            if panel.get("closed"):
                panels[panel["category"]] = {"closed": True, "method": panel["method"],
                                             "panel_scores": panel["panel_scores"]}
            else:
                method_name = campaign.document["panel_method"]
                method = plugins.load_plugin(plugins.PANEL_METHODS, method_name)
                panels[panel["category"]] = {
                    "closed": False, "method": method_name,
                    "panel_scores": domain.panel_scores(
                        method, panel, ballot, campaign.criteria(panel["category"]),
                        domain.panel_options(campaign))}
        rows.sort(key=lambda r: (r["category"], r["candidate_id"], r["judge_id"]))
        return {"campaign_id": campaign.id, "scores": rows, "panels": panels}

    # --- a judge -----------------------------------------------------------------------------

    @rpc
    def submit(self, candidate_id, scores, comment=None):
        """A judge's scores of one candidate, per criterion; a resend before close replaces."""
        identity = self.auth.require("judge")
        data = load(schemas.Submission(),
                    {"candidate_id": candidate_id, "scores": scores, "comment": comment},
                    "submission")
        candidate = self.store.candidate(data["candidate_id"])
        domain.check_on_ballot(candidate, data["candidate_id"])
        panel = self.store.panel(candidate["campaign_id"], candidate["category"])
        judge = domain.panel_member(panel, identity.name, candidate["category"])
        return self._save_score(panel, judge, candidate, data, identity.as_actor())

    @rpc
    def worksheet(self, campaign_id, category=None):
        """The judge's own sheets: candidates to score, deeds, what is saved and what is missing."""
        identity = self.auth.require("judge")
        campaign = self.campaigns.get(campaign_id)
        if category is not None:
            domain.check_category_run(campaign, category)
        sheets = []
        for panel in self.store.panels_of(campaign.id, category):
            judge = next((j for j in panel["judges"] if j["judge_id"] == identity.name), None)
            if judge is not None:
                ballot = self.store.ballot(campaign.id, panel["category"])
                sheets.append(domain.worksheet(campaign, panel, judge, ballot))
        if not sheets:
            raise Forbidden(f"judge {identity.name} is not on a panel of campaign {campaign.id}"
                            + (f" for {category}" if category else ""))
        return {"campaign_id": campaign.id, "judge_id": identity.name, "sheets": sheets}

    # --- the judge's page ----------------------------------------------------------------------

    @http("GET", "/judge")
    def judge_page(self, request):
        return page.judge_page()

    @http("GET", "/judge/app.js")
    def judge_script(self, request):
        return page.static_file("app.js")

    @http("GET", "/judge/app.css")
    def judge_style(self, request):
        return page.static_file("app.css")

    @http("GET", "/judge/api/worksheet")
    def judge_api_worksheet(self, request):
        """The worksheet of the judge whose personal link the page sends."""
        def answer():
            panel, judge = self._linked_judge(request)
            campaign = self.campaigns.get(panel["campaign_id"])
            return domain.worksheet(campaign, panel, judge,
                                    self.store.ballot(panel["campaign_id"], panel["category"]))
        return self._page_api(answer)

    @http("POST", "/judge/api/scores")
    def judge_api_submit(self, request):
        """The page's ``submit``: ``{candidate_id, scores, comment}``."""
        def answer():
            panel, judge = self._linked_judge(request)
            data = load(schemas.Submission(), self._json_body(request), "submission")
            candidate = self.store.candidate(data["candidate_id"])
            domain.check_on_ballot(candidate, data["candidate_id"])
            domain.check_in_panel_category(candidate, panel)
            actor = {"role": "judge", "name": judge["judge_id"], "unit": judge["unit"],
                     "token_id": None, "via": "personal_link"}
            return self._save_score(panel, judge, candidate, data, actor)
        return self._page_api(answer)

    # --- candidates, from nomination's events --------------------------------------------------

    @handles(events.NOMINATION, events.NOMINATION_REVIEWED)
    def on_nomination_reviewed(self, payload):
        self.store.ballot_copy.apply(candidate_of_event(
            events.read_event(events.NOMINATION_REVIEWED, payload)))

    @handles(events.NOMINATION, events.NOMINATION_WITHDRAWN)
    def on_nomination_withdrawn(self, payload):
        self.store.ballot_copy.apply(candidate_of_event(
            events.read_event(events.NOMINATION_WITHDRAWN, payload)))

    @handles(events.NOMINATION, events.CANDIDATE_DISQUALIFIED)
    def on_candidate_disqualified(self, payload):
        self.store.ballot_copy.apply(candidate_of_event(
            events.read_event(events.CANDIDATE_DISQUALIFIED, payload)))

    # --- timers ------------------------------------------------------------------------------

    @timer(interval=OUTBOX_SWEEP_SECONDS)
    def sweep_outbox(self):
        """Publish events a crash left between the write and the publish."""
        self.store.sweep_outboxes(self.dispatch, self.now())

    @timer(interval=NOTICE_SECONDS)
    def notify_judges(self):
        """Queue reminders before the announced close; hand due notices to the notifier."""
        now = self.now()
        self._queue_reminders(now)
        for notice in self.store.due_notices(now):
            if not self._send_notice(notice, now):
                break  # the notifier is failing: the rest waits for the next round

    # --- helpers -----------------------------------------------------------------------------

    def _panel(self, campaign_id, category):
        panel = self.store.panel(campaign_id, category)
        if panel is None:
            raise NotFound(f"no panel has been assigned for {category} in campaign {campaign_id}")
        return panel

    def _save_score(self, panel, judge, candidate, data, actor):
        domain.check_panel_open(panel)
        domain.check_not_recused(judge, candidate)
        campaign = self.campaigns.get(candidate["campaign_id"])
        criteria = campaign.criteria(candidate["category"])
        scores = domain.valid_scores(criteria, data["scores"])
        total = domain.weighted_total(criteria, scores)
        method = plugins.load_plugin(plugins.PANEL_METHODS, campaign.document["panel_method"])
        options = domain.panel_options(campaign)
        ballot = self.store.ballot(candidate["campaign_id"], candidate["category"])
        previous = domain.stored_score(panel, candidate["_id"], judge["judge_id"])
        # The event carries the category's provisional panel scores as they stand once this
        # score is stored, so aggregation shows scoring's figure and never recomputes it. The
        # write is conditional on the panel's version, so each event's figures are exactly
        # those of the panel it was stored into; a score of another judge stored meanwhile
        # only means reading the panel again.
        for _ in range(WRITE_ATTEMPTS):
            now = self.now()
            record = domain.score_record(candidate, judge["judge_id"], scores, total,
                                         data.get("comment"), now, previous)
            scored = domain.with_score(panel, record)
            payload = events.make_event(
                events.SCORE_SUBMITTED, campaign.id, now, candidate_id=candidate["_id"],
                category=candidate["category"], judge_id=judge["judge_id"], scores=scores,
                total=total, panel_version=scored["version"],
                panel_scores=domain.panel_scores(method, scored, ballot, criteria, options))
            audit = audit_entry(actor, "replace_score" if previous else "submit_score", "score",
                                candidate["_id"], campaign.id, now,
                                before=domain.score_fields(previous),
                                after=dict(domain.score_fields(record), judge_id=judge["judge_id"]))
            if self.store.save_score(panel, record, previous,
                                     outbox_entry(events.SCORE_SUBMITTED, payload, audit, now)):
                break
            panel = self._reread_for_save(panel, judge, candidate, previous)
        else:
            raise Conflict(f"scores kept arriving in the panel of {candidate['category']}; "
                           "send this one again")
        self.store.relay_panel_events(panel["_id"], self.dispatch)
        self.metrics.submissions.labels(candidate["category"],
                                        "replaced" if previous else "new").inc()
        self._track_progress(self.store.panel(panel["campaign_id"], panel["category"]),
                             self.store.ballot(panel["campaign_id"], panel["category"]))
        return domain.score_reply(record)

    def _reread_for_save(self, panel, judge, candidate, previous):
        """The panel again after a refused write: the same refusals as a first read, and a
        ``Conflict`` when this very score was replaced meanwhile (the caller saw another)."""
        now_panel = self.store.panel(panel["campaign_id"], panel["category"])
        domain.check_panel_open(now_panel)
        domain.check_not_recused(
            domain.panel_member(now_panel, judge["judge_id"], panel["category"]), candidate)
        stored = domain.stored_score(now_panel, candidate["_id"], judge["judge_id"])
        if (stored or {}).get("revision") != (previous or {}).get("revision"):
            self._refused_save(panel, judge)
        return now_panel

    def _refused_save(self, panel, judge):
        """Why the conditional write stored nothing: the panel closed, the judge left, a race."""
        now_panel = self.store.panel(panel["campaign_id"], panel["category"])
        domain.check_panel_open(now_panel)
        domain.panel_member(now_panel, judge["judge_id"], panel["category"])
        raise Conflict("this score was changed at the same time by another request; "
                       "read the worksheet and send it again")

    def _linked_judge(self, request):
        """The panel and judge of the personal link the page sends; valid until close."""
        link = self.links.read(request.headers.get(LINK_HEADER))
        try:
            require_id(link["campaign_id"], "campaign_id")
            require_id(link["judge_id"], "judge_id")
            require_id(link["category"], "category")
        except ValidationError:
            raise Unauthorized("the personal link cannot be read")
        panel = self.store.panel(link["campaign_id"], link["category"])
        judge = next((j for j in (panel or {}).get("judges", [])
                      if j["judge_id"] == link["judge_id"]), None)
        if judge is None or judge["nonce"] != link["nonce"]:
            raise Unauthorized("this personal link is no longer valid; ask the department for "
                               "the current one")
        domain.check_panel_open(panel)
        return panel, judge

    @staticmethod
    def _json_body(request):
        data = request.stream.read(MAX_PAGE_BODY + 1)
        if len(data) > MAX_PAGE_BODY:
            raise ValidationError({"submission": ["is too large"]})
        try:
            return json.loads(data.decode("utf-8") or "null")
        except ValueError:
            raise ValidationError({"submission": ["must be a JSON object"]})

    @staticmethod
    def _page_api(answer):
        """Run ``answer``; refusals become JSON ``{error, message, fields}`` with an HTTP status."""
        try:
            body, status = answer(), 200
        except PingxuanError as error:
            body = {"error": error.exc_type, "message": str(error)}
            if isinstance(error, ValidationError):
                body.update(message="some fields are not valid", fields=error.messages)
            status = PAGE_STATUS.get(error.exc_type, 400)
        response = json_response(body, status)
        response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        return response

    def _track_progress(self, panel, ballot):
        report = domain.progress(panel, ballot)["counts"]
        for state in (domain.SCORED, domain.MISSING, domain.RECUSED):
            self.metrics.panel_pairs.labels(panel["campaign_id"], panel["category"],
                                            state).set(report[state])

    def _queue_notices(self, template, panel, judges, now):
        for judge in judges:
            if domain.notice_channel(judge):
                self.store.queue_notice(domain.notice_key(template, panel, judge),
                                        self._notice(template, panel, judge, now))

    def _queue_resends(self, panel, judges, now):
        """Queue one more assignment notice of each judge's current link; who got one."""
        notices = self.store.notices_of_panel(panel["_id"], [j["judge_id"] for j in judges])
        queued = []
        for judge in judges:
            if not domain.notice_channel(judge):
                continue
            send = domain.next_send(domain.link_notices(notices, judge), now)
            if send is not None and self.store.queue_notice(
                    domain.notice_key(domain.ASSIGNMENT, panel, judge, send),
                    self._notice(domain.ASSIGNMENT, panel, judge, now)):
                queued.append(judge["judge_id"])
        return queued

    @staticmethod
    def _notice(template, panel, judge, now):
        return {"template": template, "panel_id": panel["_id"],
                "campaign_id": panel["campaign_id"], "category": panel["category"],
                "judge_id": judge["judge_id"], "nonce": judge["nonce"],
                "created_at": now, "next_at": now}

    def _queue_reminders(self, now):
        lead = self._reminder_lead()
        for panel in self.store.open_panels():
            try:
                campaign = self.campaigns.get(panel["campaign_id"])
            except NotFound:
                continue
            if domain.reminder_due(domain.panel_closes_at(campaign), now, lead):
                ballot = self.store.ballot(panel["campaign_id"], panel["category"])
                self._queue_notices(domain.REMINDER, panel,
                                    domain.judges_to_remind(panel, ballot), now)

    def _reminder_lead(self):
        return timedelta(hours=self.notifier.reminder_hours)

    def _send_notice(self, notice, now):
        """Send one queued notice; ``False`` when the notifier failed and later may work."""
        key, template = notice["_id"], notice["template"]
        panel = self.store.panel(notice["campaign_id"], notice["category"])
        judge = next((j for j in (panel or {}).get("judges", [])
                      if j["judge_id"] == notice["judge_id"] and j["nonce"] == notice["nonce"]),
                     None)
        if panel is None or judge is None or panel.get("closed"):
            self.store.notice_done(key, SKIPPED, now, "the judge's link is no longer valid")
            self.metrics.notices.labels(template, SKIPPED).inc()
            return True
        campaign = self.campaigns.get(panel["campaign_id"])
        kind, recipient = domain.notice_channel(judge)
        params = domain.notice_params(campaign, panel, judge, self.links.url(panel, judge))
        try:
            status = self.notifier.send(kind, recipient, template, params, key)
        except NoticeFailed as failure:
            # A refusal may quote the recipient; it is stored, shown and logged without it.
            detail = domain.mask_contact(failure.detail, judge)
            attempts = notice.get("attempts", 0) + 1
            if failure.retry and attempts < NOTICE_MAX_ATTEMPTS:
                self.store.notice_retry(key, now + domain.retry_delay(attempts), detail)
                self.metrics.notices.labels(template, "retry").inc()
                return False
            self.store.notice_done(key, FAILED, now, detail)
            self.metrics.notices.labels(template, FAILED).inc()
            log.warning("judge notice %s for judge %s failed: %s", template, notice["judge_id"],
                        detail)
            return True
        outcome = SKIPPED if status == SKIPPED else SENT
        self.store.notice_done(key, outcome, now, status)
        self.metrics.notices.labels(template, outcome).inc()
        return True
