"""The ``voting`` service: thin nameko entrypoints over ``domain``, ``commit`` and ``store``.

Casting: verify the caller, load each vote through its schema, hash the voter
and the address, hand the votes to the group commit (rules, one insert, one
event per group) and answer with what was stored. The page and its JSON API
verify a resident by mobile number and a one-time code, then cast the same way.
"""
import collections
import logging
import time
import uuid
from datetime import timedelta

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.timer import timer
from nameko.web.handlers import http
from prometheus_client import Counter, Gauge, Histogram

from shared import events
from shared import one_time_codes as otp
from shared.audit import audit_entry
from shared.auth import SERVICE_ROLE
from shared.clock import Clock
from shared.entrypoints import Audited, FollowsCampaigns, PingxuanService, json_response, rpc
from shared.errors import InvalidState, NotFound, PingxuanError, Unauthorized, VotingClosed
from shared.handlers import handles
from shared.outbox import outbox_entry
from shared.plugins import SUSPICION_RULES, load_plugins
from shared.metrics import LATENCY_BUCKETS, Metrics
from shared.service_rpc import ServiceRpc
from shared.store import MongoStore
from shared.timeutil import iso, local_day, parse_iso
from shared.validation import load, mainland_mobile, require_id
from services.voting import commit, domain, openapi, page, schemas, suspicion, voiding, web
from services.voting.commit import CommitContext, GroupCommit
from services.voting.providers import BallotCache, CodeSender, VotingConfig
from services.voting.store import VotingStore

log = logging.getLogger(__name__)

OUTBOX_SWEEP_SECONDS = 5
#: A void left half done by a crash is completed by the sweep after this long.
VOID_GRACE = timedelta(seconds=30)
SESSION_COOKIE = "pxv"
SIZE_COOKIE = "pxsize"
#: Built once: building a schema costs more than loading a vote with it.
PAGE_VOTE_SCHEMA = schemas.PageVote()


def define_metrics(registry):
    return {
        "votes": Counter(
            "pingxuan_votes_total", "Votes answered, by outcome (accepted, resend or the "
            "refusal) and category", ["outcome", "category"], registry=registry),
        "cast_seconds": Histogram(
            "pingxuan_vote_cast_seconds", "Time from a cast's arrival to its answer",
            ["path"], registry=registry, buckets=LATENCY_BUCKETS),
        "ballot_cache_age": Gauge(
            "pingxuan_ballot_cache_age_seconds", "Age of the vote counts the ballot showed last",
            registry=registry),
        "group_size": Histogram(
            "pingxuan_vote_group_size", "Votes stored per group commit", registry=registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)),
        "commit_seconds": Histogram(
            "pingxuan_vote_commit_seconds", "Time of one group commit", registry=registry,
            buckets=LATENCY_BUCKETS),
        "codes": Counter(
            "pingxuan_one_time_codes_total", "One-time codes sent and checked, by outcome",
            ["outcome"], registry=registry),
    }


class VotingService(Audited, FollowsCampaigns, PingxuanService):
    """網絡投票: casting over RPC and on the page, the ballot, receipts, the fraud ledger,
    and 票數清零 (voiding stuffed votes with a reason, and restoring them)."""

    name = "voting"
    metrics = Metrics(define=define_metrics)
    store = MongoStore(VotingStore)
    commit = GroupCommit()
    dispatch = EventDispatcher()
    now = Clock()
    service_rpc = ServiceRpc()
    keys = VotingConfig()
    send_code = CodeSender()
    ballot_cache = BallotCache()
    config = Config()

    # --- casting (trusted front ends) ------------------------------------------------------

    @rpc
    def cast(self, vote):
        """One vote; returns ``{vote_id, status: "accepted", receipt, …}`` or raises the refusal."""
        started = time.perf_counter()
        identity = self.auth.require("frontend")
        try:
            request = self._vote_request(vote, identity.as_actor(), {})
        except PingxuanError as error:
            self._count_invalid(error)
            raise
        outcome = self._cast([request])[0]
        self.metrics.cast_seconds.labels("cast").observe(time.perf_counter() - started)
        if outcome.error is not None:
            raise outcome.error
        return outcome.reply

    @rpc
    def cast_many(self, votes):
        """Up to 500 votes; one result per vote, in order; each vote is judged as a single cast."""
        started = time.perf_counter()
        identity = self.auth.require("frontend")
        votes = schemas.load_batch(votes)
        actor, campaigns = identity.as_actor(), {}
        results, requests, positions = [None] * len(votes), [], []
        for index, raw in enumerate(votes):
            try:
                requests.append(self._vote_request(raw, actor, campaigns, "cast_many"))
                positions.append(index)
            except PingxuanError as error:
                self._count_invalid(error)
                results[index] = domain.refused_result(
                    raw.get("vote_id") if isinstance(raw, dict) else None, error)
        for index, outcome in zip(positions, self._cast(requests)):
            results[index] = outcome.result()
        self.metrics.cast_seconds.labels("cast_many").observe(time.perf_counter() - started)
        return results

    # --- reading ---------------------------------------------------------------------------

    @rpc
    def ballot(self, campaign_id, category=None):
        """The candidates on the ballot with their (cached) vote counts; anyone may read it."""
        query = load(schemas.BallotQuery(), {"campaign_id": campaign_id, "category": category},
                     "ballot")
        campaign = self.campaigns.get(query["campaign_id"])
        self._catch_up(campaign.id)
        return self._ballot_rows(campaign.id, query["category"])

    @rpc
    def votes_page(self, campaign_id, after=None, limit=10000):
        """The counted votes in a stable order, for aggregation's rebuild: ``{votes, next}``."""
        self.auth.require(SERVICE_ROLE, "admin")
        query = load(schemas.VotesPage(), {"campaign_id": campaign_id, "after": after,
                                           "limit": limit}, "votes_page")
        self.campaigns.get(query["campaign_id"])
        rows = self.store.votes_page(query["campaign_id"], query["after"], query["limit"])
        # Voided votes are listed and flagged, so a rebuild counts what the events counted.
        return {"votes": [dict(domain.event_vote(row), voided=bool(row.get("void_id")))
                          for row in rows],
                "next": rows[-1]["_id"] if len(rows) == query["limit"] else None}

    @rpc
    def check_receipt(self, receipt):
        """Was the vote with this receipt counted? Anyone holding the receipt may ask."""
        code = load(schemas.Receipt(), {"receipt": receipt}, "receipt")["receipt"]
        record = self.store.by_receipt(code)
        if record is None:
            raise NotFound(f"no counted vote has receipt {code}")
        entry = self.store.candidate(record["candidate_id"]) or {}
        void = self.store.find_void(record["void_id"]) if record.get("void_id") else None
        return dict(voiding.receipt_status(record, void, entry),
                    receipt=code, campaign_id=record["campaign_id"],
                    candidate_id=record["candidate_id"],
                    nominee_name=entry.get("nominee_name"), category=record["category"],
                    cast_at=iso(record["cast_at"]), day=record["day"])

    @rpc
    def fraud_ledger(self, campaign_id, rule=None, limit=1000):
        """Refused votes with the rule and the evidence, newest first (the department's view)."""
        self.auth.require("admin")
        query = load(schemas.LedgerQuery(), {"campaign_id": campaign_id, "rule": rule,
                                             "limit": limit}, "fraud_ledger")
        entries = self.store.ledger_entries(query["campaign_id"], query["rule"], query["limit"])
        by_rule, by_net = {}, {}
        for entry in entries:
            by_rule[entry["rule"]] = by_rule.get(entry["rule"], 0) + 1
            by_net[entry["ip_net"]] = by_net.get(entry["ip_net"], 0) + 1
        voids = [voiding.void_view(void) for void in self.store.voids_of(query["campaign_id"])]
        return {"campaign_id": query["campaign_id"], "entries": entries,
                "by_rule": by_rule, "by_ip_net": by_net,
                "total": self.store.count_refusals(query["campaign_id"]),
                "voids": voids,
                "voided_now": sum(v["voided"] for v in voids if v["state"] == voiding.VOIDED)}

    # --- 票數清零: suspicious votes, voids and restores (admin) ------------------------------

    @rpc
    def suspicious(self, campaign_id):
        """Findings for a person to look at (rule, threshold, evidence); nothing is voided."""
        self.auth.require("admin")
        campaign = self.campaigns.get(campaign_id)
        seen = [suspicion.SeenVote(
            vote_id=row["vote_id"], candidate_id=row["candidate_id"],
            cast_at=row["cast_at"], ip_net=row.get("ip_net") or "",
            user_agent=row.get("user_agent"), voter=row["voter_day"].split("|")[1])
            for row in self.store.counted_votes_seen(campaign.id)]
        found = suspicion.findings(seen, suspicion.SuspicionSettings.of(campaign),
                                   load_plugins(SUSPICION_RULES))
        return [finding.reply() for finding in found]

    @rpc
    def void_votes(self, campaign_id, selector, reason):
        """Void the counted votes the selector takes; ``{void_id, voided}``.

        The same selector again while its void is in force answers that void; a
        vote already voided is never voided twice.
        """
        identity = self.auth.require("admin")
        data = load(schemas.VoidRequest(), {"campaign_id": campaign_id, "selector": selector,
                                            "reason": reason}, "void_votes")
        chosen = schemas.load_selector(data["selector"])
        campaign = self.campaigns.get(data["campaign_id"])
        voiding.check_not_published(campaign.id, self._publication(campaign.id))
        if "candidate_id" in chosen:
            entry = self.store.candidate(chosen["candidate_id"])
            if entry is None or entry.get("campaign_id") != campaign.id:
                raise NotFound(f"no candidate {chosen['candidate_id']} in campaign {campaign.id}")
        key = voiding.selector_key(campaign.id, chosen)
        current = self.store.current_void(campaign.id, key)
        if current is not None:
            return self._complete_void(current)
        found = voiding.selected(self.store.votes_for_void(
            voiding.selector_query(campaign.id, chosen)), chosen)
        unknown = voiding.unknown_vote_ids(chosen, [row["vote_id"] for row in found])
        if unknown:
            raise NotFound(f"{len(unknown)} of the vote ids are no vote of campaign "
                           f"{campaign.id}: {', '.join(unknown[:5])}")
        counted = [row for row in found if not row.get("void_id")]
        if not counted:
            raise voiding.nothing_to_void(campaign.id)
        void_id = voiding.void_id_for(key, self.store.count_voids(campaign.id, key))
        document = {"_id": void_id, "campaign_id": campaign.id, "key": key,
                    "selector": chosen, "reason": data["reason"], "by": identity.as_actor(),
                    "at": self.now(), "state": voiding.VOIDING}
        if not self.store.create_void(document):
            return self._complete_void(self.store.find_void(void_id))
        self.store.mark_voided(void_id, [row["_id"] for row in counted])
        return self._complete_void(self.store.find_void(void_id))

    @rpc
    def restore_votes(self, void_id, reason):
        """Undo exactly that void: its votes count again; ``{void_id, restored}``."""
        identity = self.auth.require("admin")
        data = load(schemas.RestoreRequest(), {"void_id": void_id, "reason": reason},
                    "restore_votes")
        void = self.store.find_void(data["void_id"])
        voiding.check_restorable(void)
        voiding.check_not_published(void["campaign_id"], self._publication(void["campaign_id"]))
        now = self.now()
        restore = {"at": now, "reason": data["reason"], "by": identity.as_actor()}
        payload = events.make_event(
            events.VOTES_RESTORED, void["campaign_id"], now, void_id=void["_id"],
            reason=data["reason"], restored=void["voided"], counts=void["counts"],
            vote_ids=void["vote_ids"])
        audit = audit_entry(identity.as_actor(), "restore_votes", "void", void["_id"],
                            void["campaign_id"], now,
                            before={"state": voiding.VOIDED, "voided": void["voided"]},
                            after={"state": voiding.RESTORED, "restored": void["voided"],
                                   "counts": void["counts"]},
                            note=data["reason"])
        if not self.store.start_restore(void["_id"], restore,
                                        outbox_entry(events.VOTES_RESTORED, payload, audit, now)):
            raise InvalidState(f"void {void['_id']} was already restored")
        self.store.unmark_voided(void["_id"])
        self._relay_void(void)
        return {"void_id": void["_id"], "restored": void["voided"]}

    @handles(events.AGGREGATION, events.LIST_PUBLISHED)
    def on_list_published(self, payload):
        """From 公示 on, voids and restores are refused (the list stands on its votes)."""
        event = events.read_event(events.LIST_PUBLISHED, payload)
        self.store.mark_published(event["campaign_id"], event["revision"],
                                  event["occurred_at"], event["event_id"])

    # --- the ballot, from nomination's events ------------------------------------------------

    @handles(events.NOMINATION, events.NOMINATION_REVIEWED)
    def on_nomination_reviewed(self, payload):
        event = events.read_event(events.NOMINATION_REVIEWED, payload)
        self._apply_candidate(event, event["decision"] == "accept")

    @handles(events.NOMINATION, events.CANDIDATE_DISQUALIFIED)
    def on_candidate_disqualified(self, payload):
        self._apply_candidate(events.read_event(events.CANDIDATE_DISQUALIFIED, payload), False)

    @handles(events.NOMINATION, events.NOMINATION_WITHDRAWN)
    def on_nomination_withdrawn(self, payload):
        self._apply_candidate(events.read_event(events.NOMINATION_WITHDRAWN, payload), False)

    # --- left behind ---------------------------------------------------------------------------

    @timer(interval=OUTBOX_SWEEP_SECONDS)
    def sweep_outbox(self):
        """Publish the votes a crash left unannounced; forget expired codes' numbers and
        the counters of days and windows that are over."""
        now = self.now()
        commit.sweep(self.store, self.dispatch, now)
        self.store.purge_expired_codes(now)
        self.store.prune_counters(now)
        for void in self.store.stale_voids(now - VOID_GRACE):
            if void["state"] == voiding.VOIDING:
                try:
                    self._complete_void(self.store.find_void(void["_id"]))
                except NotFound:
                    pass  # another void took every vote: nothing was voided by this one
                continue
            if void["state"] == voiding.RESTORED:
                self.store.unmark_voided(void["_id"])  # a crash between restore and unmark
            self._relay_void(void)

    # --- the page ---------------------------------------------------------------------------

    @http("GET", "/")
    def page_index(self, request):
        now = self.now()
        campaigns = []
        for document in self.store.known_campaigns():
            try:
                campaigns.append(page.campaign_view(self.campaigns.get(document["id"]), now))
            except PingxuanError:
                continue
        return web.html(page.render("index", campaigns=campaigns, large=self._large(request),
                                    publicity=page.publicity_base(self.config)),
                        cookies=self._size_cookie(request))

    @http("GET", "/static/<name>")
    def page_static(self, request, name):
        return page.static_file(name)

    @http("GET", "/campaigns/<campaign_id>")
    def page_campaign(self, request, campaign_id):
        notice = {"1": ("验证成功，现在可以投票了。", "ok"), "0": ("已退出验证。", "ok")}.get(
            request.args.get("verified", ""))
        message, kind = notice or (None, None)
        return self._render_campaign(request, campaign_id, message=message, kind=kind)

    @http("POST", "/campaigns/<campaign_id>/code")
    def page_send_code(self, request, campaign_id):
        try:
            form = web.form_body(request)
            sent = self._send_code(campaign_id, form.get("mobile"), self._client_ip(request))
        except PingxuanError as error:
            return self._render_campaign(request, campaign_id, error=error)
        mobile = load(schemas.CodeRequest(), {"campaign_id": campaign_id,
                                              "mobile": form.get("mobile")}, "code")["mobile"]
        return self._render_campaign(
            request, campaign_id, code_sent=True, mobile=mobile, masked=sent["mobile"],
            message=f"验证码已发送到 {sent['mobile']}，请查看短信。", kind="ok")

    @http("POST", "/campaigns/<campaign_id>/verify")
    def page_verify(self, request, campaign_id):
        form = {}
        try:
            form = web.form_body(request)
            session = self._verify_code(campaign_id, form.get("mobile"), form.get("code"))
        except PingxuanError as error:
            # A wrong or expired code keeps the code form; a lock or bad number starts again.
            mobile = form.get("mobile") if isinstance(form.get("mobile"), str) else ""
            digits = mainland_mobile(mobile)
            keep = bool(digits) and "code" in getattr(error, "messages", {})
            return self._render_campaign(
                request, campaign_id, error=error, code_sent=keep,
                mobile=digits if keep else "",
                masked=domain.mask_mobile(digits) if keep else "")
        return web.redirect(f"/campaigns/{campaign_id}?verified=1", cookies=[
            (SESSION_COOKIE, session["session"],
             int(domain.SESSION_TTL.total_seconds()))])

    @http("POST", "/campaigns/<campaign_id>/leave")
    def page_leave(self, request, campaign_id):
        return web.redirect(f"/campaigns/{require_id(campaign_id, 'campaign_id')}?verified=0",
                            cookies=[(SESSION_COOKIE, "", 0)])

    @http("POST", "/campaigns/<campaign_id>/vote")
    def page_vote(self, request, campaign_id):
        started = time.perf_counter()
        try:
            form = web.form_body(request)
            outcome = self._page_vote(request, campaign_id, form,
                                      request.cookies.get(SESSION_COOKIE))
        except PingxuanError as error:
            return self._render_campaign(request, campaign_id, error=error)
        finally:
            self.metrics.cast_seconds.labels("page").observe(time.perf_counter() - started)
        if outcome.error is not None:
            return self._render_campaign(request, campaign_id, error=outcome.error,
                                         settings=outcome.settings)
        return self._render_campaign(request, campaign_id, receipt=outcome.reply,
                                     message="投票成功！", kind="ok")

    @http("GET", "/receipts")
    def page_receipt(self, request):
        code = (request.args.get("code") or "").strip().upper()
        if not code:
            return web.html(page.render("receipt", code="", large=self._large(request)))
        try:
            status = self.check_receipt(code)
        except PingxuanError as error:
            message = ("没有找到这张回执对应的选票，请核对回执编号。"
                       if error.exc_type == "NotFound" else "回执编号的格式不对，应类似 ABCD-EFGH-IJKL-MNOP。")
            return web.html(page.render("receipt", code=code, message=message, kind="error",
                                        large=self._large(request)), web.status_of(error))
        campaign = self.campaigns.get(status["campaign_id"])
        view = dict(status, category_name=domain.category_name_zh(status["category"]),
                    cast_at_local=page.local_time(self.store.by_receipt(code)["cast_at"],
                                                  campaign.timezone),
                    void_at_local=(page.local_time(parse_iso(status["void"]["at"]),
                                                   campaign.timezone)
                                   if status.get("void") else None))
        return web.html(page.render("receipt", code=code, status=view,
                                    large=self._large(request)))

    # --- the page's JSON API -----------------------------------------------------------------

    @http("GET", "/api/openapi.json")
    def api_openapi(self, request):
        return json_response(openapi.document())

    @http("GET", "/api/campaigns/<campaign_id>/ballot")
    def api_ballot(self, request, campaign_id):
        try:
            campaign = self.campaigns.get(campaign_id)
            self._catch_up(campaign.id)
            return json_response(self._ballot_view(campaign))
        except PingxuanError as error:
            return web.refusal(error)

    @http("POST", "/api/codes")
    def api_send_code(self, request):
        try:
            body = web.json_body(request)
            return json_response(self._send_code(body.get("campaign_id"), body.get("mobile"),
                                                 self._client_ip(request), strict=body))
        except PingxuanError as error:
            return web.refusal(error)

    @http("POST", "/api/codes/verify")
    def api_verify(self, request):
        try:
            body = web.json_body(request)
            data = load(schemas.CodeCheck(), body, "body")
            return json_response(self._verify_code(data["campaign_id"], data["mobile"],
                                                   data["code"]))
        except PingxuanError as error:
            return web.refusal(error)

    @http("POST", "/api/votes")
    def api_vote(self, request):
        started = time.perf_counter()
        try:
            body = web.json_body(request)
            data = load(PAGE_VOTE_SCHEMA, body, "body")
            outcome = self._page_vote(request, data["campaign_id"], data, web.bearer(request))
        except PingxuanError as error:
            return web.refusal(error)
        finally:
            self.metrics.cast_seconds.labels("page").observe(time.perf_counter() - started)
        if outcome.error is not None:
            return web.refusal(outcome.error, outcome.settings)
        return json_response(outcome.reply)

    @http("GET", "/api/receipts/<receipt>")
    def api_receipt(self, request, receipt):
        try:
            return json_response(self.check_receipt(receipt))
        except PingxuanError as error:
            return web.refusal(error)

    # --- helpers ------------------------------------------------------------------------------

    def _vote_request(self, raw, actor, campaigns, path="cast"):
        """Validate one vote and hash its voter and address (the plain id goes no further)."""
        data = schemas.load_vote(raw)
        campaign = campaigns.get(data["campaign_id"])
        if campaign is None:
            campaign = campaigns[data["campaign_id"]] = self._voting(data["campaign_id"])
        voter = self.keys.hashes.voter(data["voter"]["channel"], data["voter"]["id"])
        return self._request(campaign[1], data["vote_id"], data["candidate_id"],
                             data["voter"]["channel"], voter, data["client"]["ip"],
                             data["client"]["user_agent"], actor, path)

    def _request(self, settings, vote_id, candidate_id, channel, voter, ip, user_agent, actor,
                 path):
        return domain.VoteRequest(
            vote_id=vote_id, campaign_id=settings.campaign_id, candidate_id=candidate_id,
            channel=channel, voter_key=voter, ip_key=self.keys.hashes.ip(ip),
            ip_net=domain.ip_net(ip), user_agent=(user_agent or "")[:200] or None,
            settings=settings, receipt=self.keys.hashes.receipt(vote_id),
            by=actor, path=path)

    def _voting(self, campaign_id):
        """``(campaign, its VotingSettings)`` for casting, the ballot caught up.

        Kept per stored revision of the campaign: re-reading a campaign costs
        more than a vote, and a cheap read of its revision says when it changed.
        """
        require_id(campaign_id, "campaign_id")
        revision = self.store.campaign_revision(campaign_id)
        found = self.ballot_cache.campaign(campaign_id, revision)
        if found is None:
            campaign = self.campaigns.get(campaign_id)
            found = (campaign, domain.VotingSettings.of(campaign))
            if revision is not None:
                self.ballot_cache.keep_campaign(campaign_id, revision, found)
        self._catch_up(campaign_id)
        return found

    def _cast(self, requests):
        outcomes = self.commit(requests, CommitContext(
            self.store, self.dispatch, self.now, None, self.metrics))
        # Counted per outcome and category, not per vote: a batch has a handful of each.
        counts, stored = collections.Counter(), collections.Counter()
        for outcome in outcomes:
            label = ("resend" if outcome.resend else "accepted") if outcome.error is None \
                else outcome.error.exc_type
            counts[label, outcome.category or "unknown"] += 1
            if label == "accepted":
                stored[outcome.reply["campaign_id"], outcome.reply["candidate_id"]] += 1
        for (label, category), count in counts.items():
            self.metrics.votes.labels(label, category).inc(count)
        for (campaign_id, candidate_id), count in stored.items():
            self.ballot_cache.add(campaign_id, candidate_id, count)
        return outcomes

    def _publication(self, campaign_id):
        """Was the list published? From ``list_published``; if none was heard, aggregation is
        asked (a voting deployed after 公示 never got the event). If it cannot answer, what
        the events said stands: voids are rare and an admin's, and the event normally comes."""
        known = self.store.publication(campaign_id)
        if known is not None:
            return known
        try:
            state = self.service_rpc("aggregation", "publication", campaign_id)
        except Exception as exc:  # aggregation down or not deployed
            log.warning("could not ask aggregation whether %s is published: %s", campaign_id, exc)
            return None
        if not isinstance(state, dict) or state.get("phase") in (None, "open"):
            return None
        self.store.mark_published(campaign_id, state.get("revision"), state.get("published_at"),
                                  "asked")
        return self.store.publication(campaign_id)

    def _complete_void(self, void):
        """Announce a void once its votes are marked (also after a crash, by a resend or the
        sweep); answers ``{void_id, voided}``."""
        if void["state"] != voiding.VOIDING:
            self._relay_void(void)
            return voiding.void_reply(void)
        records = self.store.votes_of_void(void["_id"])
        if not records:
            self.store.drop_void(void["_id"])
            raise voiding.nothing_to_void(void["campaign_id"])
        now = self.now()
        counts = voiding.counts_of(records)
        vote_ids = sorted(record["vote_id"] for record in records)
        payload = events.make_event(
            events.VOTES_VOIDED, void["campaign_id"], now, void_id=void["_id"],
            reason=void["reason"], voided=len(records), counts=counts, vote_ids=vote_ids)
        audit = audit_entry(void["by"], "void_votes", "void", void["_id"], void["campaign_id"],
                            now, before={"state": None},
                            after={"state": voiding.VOIDED, "voided": len(records),
                                   "counts": counts,
                                   "selector": voiding.void_view(void)["selector"]},
                            note=void["reason"])
        self.store.finish_void(void["_id"], {"voided": len(records), "counts": counts,
                                             "vote_ids": vote_ids},
                               outbox_entry(events.VOTES_VOIDED, payload, audit, now))
        self._relay_void(void)
        return voiding.void_reply(self.store.find_void(void["_id"]))

    def _relay_void(self, void):
        try:
            self.store.relay_void(void["_id"], self.dispatch)
        except Exception as exc:  # the broker: the sweep relays it later
            log.warning("event of void %s not published yet: %s", void["_id"], exc)
        self.ballot_cache.forget(void["campaign_id"])

    def _count_invalid(self, error):
        self.metrics.votes.labels(error.exc_type, "unknown").inc()

    def _catch_up(self, campaign_id):
        """After a restart the ballot is caught up with nomination's list (once per store)."""
        if self.ballot_cache.synced(campaign_id, self.store.ballot_synced) or \
                not self.ballot_cache.may_sync(campaign_id):
            return
        marker = events.new_event_id()
        try:
            rows = self.service_rpc("nomination", "list", campaign_id, status="accepted")
        except Exception as exc:  # nomination down: the events will still come
            log.warning("could not catch up the ballot of %s: %s", campaign_id, exc)
            return
        self.store.sync_ballot(campaign_id, rows, marker)
        self.ballot_cache.forget(campaign_id)

    def _apply_candidate(self, event, on_ballot):
        facts = {key: event[key] for key in (
            "category", "org_type", "nominee_name", "nominee_unit", "deeds_summary", "unit",
            "submitted_at")}
        facts["campaign_id"] = event["campaign_id"]
        # A receipt of a vote for a disqualified candidate says so, and why.
        facts["status"] = event["status"]
        facts["disqualification_reason"] = (event.get("reason")
                                            if event["status"] == "disqualified" else None)
        self.store.apply_candidate(event["nomination_id"], facts, on_ballot, event["event_id"])

    def _counts(self, campaign_id):
        counts, age = self.ballot_cache.get(campaign_id, self.keys.ballot_cache_seconds,
                                            lambda: self.store.count_by_candidate(campaign_id))
        self.metrics.ballot_cache_age.set(age)
        return counts, age

    def _ballot_rows(self, campaign_id, category=None):
        counts, _ = self._counts(campaign_id)
        return [domain.ballot_row(entry, counts.get(entry["_id"], 0))
                for entry in self.store.ballot(campaign_id, category)]

    def _ballot_view(self, campaign):
        rows = self._ballot_rows(campaign.id)
        _, age = self._counts(campaign.id)
        view = page.campaign_view(campaign, self.now())
        return {"campaign_id": campaign.id, "name": campaign.name,
                "opens": iso(campaign.voting_opens), "closes": iso(campaign.voting_closes),
                "open": view["open"], "counts_age_seconds": round(age, 3),
                "categories": [
                    {"category": category, "name": domain.category_name_zh(category),
                     "candidates": [row for row in rows if row["category"] == category]}
                    for category in campaign.categories]}

    def _client_ip(self, request):
        return web.client_ip(request, self.keys.trusted_proxies)

    def _send_code(self, campaign_id, mobile, ip, strict=None):
        data = load(schemas.CodeRequest(), strict if strict is not None else
                    {"campaign_id": campaign_id, "mobile": mobile}, "body")
        campaign = self.campaigns.get(data["campaign_id"])
        now = self.now()
        if not campaign.voting_opens <= now < campaign.voting_closes:
            raise VotingClosed(f"voting of campaign {campaign.id} is not open")
        otp_key = f"{campaign.id}|{domain.voter_key(self.keys.voter, 'mobile', data['mobile'])}"
        ip_slot = domain.code_ip_slot(campaign.id, self.keys.hashes.ip(ip), now)

        def send(code):
            try:
                return self.send_code(data["mobile"], code, campaign.name,
                                      f"otp|{otp_key}|{now.timestamp()}")
            except PingxuanError:
                self.metrics.codes.labels("refused_by_channel").inc()
                raise
            except Exception as exc:
                self.metrics.codes.labels("send_failed").inc()
                raise _unavailable("the one-time code could not be sent", exc)

        reply = otp.issue_code(
            self.store, otp_key, {"campaign_id": campaign.id, "mobile": data["mobile"]}, ip_slot,
            domain.code_ip_limit(campaign), now, local_day(now, campaign.timezone), self.keys.code,
            send)
        # notification answers "queued" when its channel's first attempt failed (it retries):
        # the voter has no code yet, which an SMS outage alert must see.
        queued = isinstance(reply, dict) and reply.get("status") == "queued"
        self.metrics.codes.labels("send_delayed" if queued else "sent").inc()
        return {"sent": True, "mobile": domain.mask_mobile(data["mobile"]),
                "valid_seconds": int(domain.OTP_VALID.total_seconds())}

    def _verify_code(self, campaign_id, mobile, code):
        data = load(schemas.CodeCheck(), {"campaign_id": campaign_id, "mobile": mobile,
                                          "code": code}, "body")
        campaign = self.campaigns.get(data["campaign_id"])
        now = self.now()
        voter = domain.voter_key(self.keys.voter, "mobile", data["mobile"])
        otp_key = f"{campaign.id}|{voter}"
        mac = domain.code_mac(self.keys.code, otp_key, data["code"])
        try:
            otp.redeem_code(self.store, otp_key, mac, now)
        except PingxuanError:
            self.metrics.codes.labels("refused").inc()
            raise
        self.metrics.codes.labels("verified").inc()
        session = domain.sign_session(self.keys.session, campaign.id,
                                      {"k": voter, "m": domain.mask_mobile(data["mobile"])}, now)
        return {"session": session, "expires_at": iso(now + domain.SESSION_TTL)}

    def _page_vote(self, request, campaign_id, data, session):
        campaign, settings = self._voting(campaign_id)
        voter = domain.read_session(self.keys.session, session, campaign.id, self.now())
        if not voter:
            raise Unauthorized("verify a mobile number first")
        data = load(PAGE_VOTE_SCHEMA, dict(
            campaign_id=campaign.id, candidate_id=data.get("candidate_id"),
            vote_id=data.get("vote_id") or None), "body")
        ip = web.client_ip(request, self.keys.trusted_proxies)
        vote_id = data["vote_id"] or f"web-{uuid.uuid4().hex}"
        request_ = self._request(settings, vote_id, data["candidate_id"], "mobile", voter["k"],
                                 ip, request.headers.get("User-Agent"),
                                 {"role": "public", "name": "voting-page"}, "page")
        return self._cast([request_])[0]

    def _render_campaign(self, request, campaign_id, error=None, settings=None, receipt=None,
                         message=None, kind=None, **context):
        try:
            campaign = self.campaigns.get(campaign_id)
        except PingxuanError:
            return web.html(page.render("index", campaigns=[], large=self._large(request),
                                        message="没有找到这个评选活动。", kind="error"), 404)
        self._catch_up(campaign.id)
        now = self.now()
        settings = settings or domain.VotingSettings.of(campaign)
        voter = domain.read_session(self.keys.session, request.cookies.get(SESSION_COOKIE),
                                    campaign.id, now)
        view = self._ballot_view(campaign)
        for category in view["categories"]:
            for row in category["candidates"]:
                row["vote_id"] = f"web-{uuid.uuid4().hex}"
        if error is not None:
            message, kind = domain.refusal_zh(error, settings), "error"
        body = page.render(
            "campaign", campaign=page.campaign_view(campaign, now), categories=view["categories"],
            voter=voter["m"] if voter else None, receipt=receipt, message=message, kind=kind,
            rules=page.rules_text(settings), large=self._large(request),
            valid_minutes=int(domain.OTP_VALID.total_seconds() // 60),
            max_wrong=domain.OTP_MAX_WRONG, **context)
        return web.html(body, web.status_of(error) if error is not None else 200,
                        cookies=self._size_cookie(request))

    def _large(self, request):
        size = request.args.get("size")
        if size in ("large", "normal"):
            return size == "large"
        return request.cookies.get(SIZE_COOKIE) == "large"

    def _size_cookie(self, request):
        size = request.args.get("size")
        return [(SIZE_COOKIE, size, 365 * 24 * 3600)] if size in ("large", "normal") else []


def _unavailable(message, cause):
    """A fault that is not the caller's (the channel or the store): HTTP 503, not a refusal."""
    error = PingxuanError(f"{message}: {type(cause).__name__}")
    error.exc_type = "Unavailable"
    error.zh = "暂时无法发送验证码，请稍后再试。"
    return error
