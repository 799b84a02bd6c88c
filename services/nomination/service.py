"""The ``nomination`` service: thin nameko entrypoints over ``domain`` and ``store``.

Each entrypoint: verify the caller, load input through a schema, apply the
domain's rules, write the change together with its event (outbox), relay it.
"""
import logging

from nameko.events import EventDispatcher
from nameko.timer import timer

from shared import events
from shared.audit import audit_entry
from shared.auth import SERVICE_ROLE
from shared.campaign import validate_campaign
from shared.campaigns import Campaigns
from shared.clock import Clock
from shared.entrypoints import Audited, PingxuanService, rpc
from shared.errors import Conflict, Forbidden, NotFound, QuotaExceeded
from shared.handlers import handles
from shared.outbox import outbox_entry
from shared.store import MongoStore
from shared.validation import load, require_id
from services.nomination import domain, schemas
from services.nomination.store import DuplicateKeyError, NominationStore

log = logging.getLogger(__name__)

OUTBOX_SWEEP_SECONDS = 5

log = logging.getLogger(__name__)


class NominationService(Audited, PingxuanService):
    """單位推薦 and 初步審核 over RPC."""

    name = "nomination"

    store = MongoStore(NominationStore)
    # This service owns the campaigns; the others keep copies (FollowsCampaigns).
    campaigns = Campaigns(fetch_missing=False)
    dispatch = EventDispatcher()
    now = Clock()

    # --- campaigns -------------------------------------------------------------------------

    @rpc
    def load_campaign(self, campaign):
        """Register or update a campaign (the CLI's ``campaign load``); audited and announced."""
        identity = self.auth.require("admin")
        document = validate_campaign(campaign)
        previous = self.store.campaign_record(document["id"])
        revision = (previous["revision"] + 1) if previous else 1
        now = self.now()
        payload = events.make_event(events.CAMPAIGN_LOADED, document["id"], now,
                                    campaign=document, revision=revision)
        audit = audit_entry(identity.as_actor(), "load_campaign", "campaign", document["id"],
                            document["id"], now,
                            before=previous["document"] if previous else None, after=document)
        self.store.save_campaign(document, revision, now,
                                 outbox_entry(events.CAMPAIGN_LOADED, payload, audit, now))
        self.store.relay_campaign_events(document["id"], self.dispatch)
        return {"id": document["id"], "revision": revision, "created": previous is None}

    @rpc
    def get_campaign(self, campaign_id):
        """The campaign's definition, for any caller with a valid token."""
        self.auth.require()
        return self._campaign(campaign_id).document

    # --- a unit's nominations --------------------------------------------------------------

    @rpc
    def submit(self, nomination):
        identity = self.auth.require("unit")
        unit = identity.unit_name
        # Lateness is answered before any field is judged: only the campaign is read first.
        campaign = self._campaign(domain.campaign_id_of(nomination))
        now = self.now()
        if domain.deadline_passed(campaign, now):
            client_ref = domain.client_ref_of(nomination)
            existing = self.store.by_client_ref(unit, client_ref) if client_ref else None
            return domain.reply(domain.late_submission(existing, nomination, campaign))
        data = load(schemas.Nomination(), nomination, "nomination")
        fingerprint = domain.fingerprint(data)
        existing = self.store.by_client_ref(unit, data["client_ref"])
        if existing:
            return domain.reply(domain.resend_of(existing, fingerprint))

        domain.check_unit_may_nominate(campaign, unit)
        domain.check_category_run(campaign, data["category"])
        domain.check_signed_not_in_future(data["recommendation"]["date"], campaign, now,
                                          "recommendation.date")

        record = dict(data, _id=domain.new_nomination_id(), unit=unit, status=domain.SUBMITTED,
                      fingerprint=fingerprint, submitted_at=now, updated_at=now, version=1)
        slots = domain.intake_slots(campaign, data)
        record["slots"] = [slot.key for slot in slots]
        self._claim(slots, record["_id"], now)
        payload = events.make_event(
            events.NOMINATION_SUBMITTED, campaign.id, now, **domain.event_facts(record),
            contact={key: data[key] for key in ("contact_person", "mobile", "email")})
        audit = audit_entry(identity.as_actor(), "submit", "nomination", record["_id"],
                            campaign.id, now, after=domain.nomination_fields(record))
        try:
            self.store.insert(record, outbox_entry(events.NOMINATION_SUBMITTED, payload, audit, now))
        except DuplicateKeyError:
            # A resend raced this one and won: give its slots back, answer as it did.
            self._release(slots, record["_id"])
            return domain.reply(domain.resend_of(
                self.store.by_client_ref(unit, data["client_ref"]), fingerprint))
        self._confirm_slots(slots, record["_id"], now)
        self.store.relay_nomination_events(record["_id"], self.dispatch)
        return domain.reply(self.store.get(record["_id"]))

    @rpc
    def amend(self, nomination_id, changes):
        identity = self.auth.require("unit")
        record = self._own(identity, nomination_id)
        campaign = self._campaign(record["campaign_id"])
        now = self.now()
        domain.check_before_deadline(campaign, now, "amend")
        domain.check_amendable(record)
        merged = load(schemas.Nomination(), domain.amend_fields(record, changes), "changes")
        domain.check_signed_not_in_future(merged["recommendation"]["date"], campaign, now,
                                          "recommendation.date")
        before = domain.nomination_fields(record)
        changed = domain.changed_fields(before, merged)
        if not changed:
            return domain.reply(record)

        new_slots = domain.intake_slots(campaign, merged)
        new_keys = [slot.key for slot in new_slots]
        added = [slot for slot in new_slots if slot.key not in record["slots"]]
        self._claim(added, record["_id"], now)
        payload = events.make_event(events.NOMINATION_AMENDED, campaign.id, now,
                                    **domain.event_facts(dict(record, **merged)),
                                    changed_fields=changed)
        audit = audit_entry(identity.as_actor(), "amend", "nomination", record["_id"],
                            campaign.id, now,
                            before={k: before.get(k) for k in changed},
                            after={k: merged.get(k) for k in changed})
        updated = self.store.update(
            record, dict(merged, slots=new_keys, updated_at=now),
            outbox_entry(events.NOMINATION_AMENDED, payload, audit, now))
        if updated is None:
            self._release(added, record["_id"])
            raise Conflict(f"nomination {record['_id']} changed while amending; read it and retry")
        for key in set(record["slots"]) - set(new_keys):
            self.store.release_slot(key, record["_id"])
        self.store.relay_nomination_events(record["_id"], self.dispatch)
        return domain.reply(updated)

    @rpc
    def withdraw(self, nomination_id, reason):
        identity = self.auth.require("unit")
        record = self._own(identity, nomination_id)
        campaign = self._campaign(record["campaign_id"])
        now = self.now()
        domain.check_before_deadline(campaign, now, "withdraw")
        domain.check_withdrawable(record)
        reason = load(schemas.Reason(), {"reason": reason}, "reason")["reason"]
        withdrawn = dict(record, status=domain.WITHDRAWN)
        payload = events.make_event(events.NOMINATION_WITHDRAWN, campaign.id, now,
                                    **domain.event_facts(withdrawn), reason=reason)
        audit = audit_entry(identity.as_actor(), "withdraw", "nomination", record["_id"],
                            campaign.id, now, before={"status": record["status"]},
                            after={"status": domain.WITHDRAWN}, note=reason)
        updated = self._update(record, {
            "status": domain.WITHDRAWN, "slots": [], "updated_at": now,
            "withdrawal": {"reason": reason, "at": now, "by": identity.name},
        }, events.NOMINATION_WITHDRAWN, payload, audit, now)
        # A withdrawal frees its slot (after the status change is stored).
        for key in record["slots"]:
            self.store.release_slot(key, record["_id"])
        return domain.reply(updated)

    @rpc
    def get(self, nomination_id):
        identity = self.auth.require("unit", "admin", SERVICE_ROLE)
        return domain.reply(self._own(identity, nomination_id))

    @rpc
    def list(self, campaign_id, **filters):
        """A unit's own nominations; everything for the department and the other services."""
        identity = self.auth.require("unit", "admin", SERVICE_ROLE)
        require_id(campaign_id, "campaign_id")
        filters = load(schemas.ListFilters(), filters, "filters")
        if identity.role == "unit":
            if filters.get("unit", identity.unit_name) != identity.unit_name:
                raise Forbidden("a unit may list only its own nominations")
            filters["unit"] = identity.unit_name
        self._campaign(campaign_id)
        return [domain.reply(record) for record in self.store.find(campaign_id, **filters)]

    # --- the department's decisions --------------------------------------------------------

    @rpc
    def review(self, nomination_id, decision, opinion=None):
        """初步審核: ``accept`` puts the nomination on the ballot; ``reject`` needs a reason."""
        identity = self.auth.require("admin")
        data = load(schemas.Review(), {"decision": decision, "opinion": opinion}, "review")
        record = self._record(nomination_id)
        campaign = self._campaign(record["campaign_id"])
        status = domain.review_outcome(record, data["decision"])
        now = self.now()
        review = dict(domain.signed_opinion(data["opinion"], identity, campaign, now),
                      decision=data["decision"])
        payload = events.make_event(events.NOMINATION_REVIEWED, campaign.id, now,
                                    **domain.event_facts(dict(record, status=status)),
                                    decision=data["decision"], opinion=review["opinion"])
        audit = audit_entry(identity.as_actor(), "review", "nomination", record["_id"],
                            campaign.id, now, before={"status": record["status"]},
                            after={"status": status, "review": review})
        return domain.reply(self._update(record, {
            "status": status, "review": review, "updated_at": now,
        }, events.NOMINATION_REVIEWED, payload, audit, now))

    @rpc
    def record_leadership_opinion(self, nomination_id, opinion):
        """創學領導小組意見: the leadership group's opinion on a candidate, signed and dated."""
        identity = self.auth.require("admin")
        data = load(schemas.LeadershipOpinion(), {"opinion": opinion}, "opinion")
        record = self._record(nomination_id)
        campaign = self._campaign(record["campaign_id"])
        domain.check_leadership_opinion_allowed(record)
        now = self.now()
        signed = domain.signed_opinion(data["opinion"], identity, campaign, now)
        payload = events.make_event(events.LEADERSHIP_OPINION_RECORDED, campaign.id, now,
                                    **domain.event_facts(record), **signed)
        audit = audit_entry(identity.as_actor(), "record_leadership_opinion", "nomination",
                            record["_id"], campaign.id, now,
                            before={"leadership_opinion": record.get("leadership_opinion")},
                            after={"leadership_opinion": signed})
        return domain.reply(self._update(record, {"leadership_opinion": signed, "updated_at": now},
                                         events.LEADERSHIP_OPINION_RECORDED, payload, audit, now))

    @rpc
    def disqualify(self, nomination_id, reason, objection_id=None):
        """After a verified objection during 公示; aggregation moves the next candidate up.

        Aggregation calls it (as itself) when an objection is upheld, naming the objection.
        """
        identity = self.auth.require("admin", SERVICE_ROLE)
        reason = load(schemas.Reason(), {"reason": reason}, "reason")["reason"]
        if objection_id is not None:
            require_id(objection_id, "objection_id")
        record = self._record(nomination_id)
        campaign = self._campaign(record["campaign_id"])
        domain.check_list_not_finalized(campaign.id, self.store.is_finalized(campaign.id))
        domain.check_disqualifiable(record)
        now = self.now()
        payload = events.make_event(
            events.CANDIDATE_DISQUALIFIED, campaign.id, now,
            **domain.event_facts(dict(record, status=domain.DISQUALIFIED)),
            candidate_id=record["_id"], reason=reason)
        audit = audit_entry(identity.as_actor(), "disqualify", "nomination", record["_id"],
                            campaign.id, now, before={"status": record["status"]},
                            after={"status": domain.DISQUALIFIED, "objection_id": objection_id},
                            note=reason)
        return domain.reply(self._update(record, {
            "status": domain.DISQUALIFIED, "updated_at": now,
            "disqualification": {"reason": reason, "at": now, "by": identity.name,
                                 "objection_id": objection_id},
        }, events.CANDIDATE_DISQUALIFIED, payload, audit, now))

    @handles(events.AGGREGATION, events.RESULTS_FINALIZED)
    def on_results_finalized(self, payload):
        """審定 announced by aggregation: from now on ``disqualify`` is refused."""
        try:
            event = events.read_event(events.RESULTS_FINALIZED, payload)
        except events.EventSchemaError as exc:
            log.warning("results_finalized refused: %s", exc)
            return
        if event["campaign_id"] is not None:
            self.store.mark_finalized(event["campaign_id"], event["occurred_at"],
                                      event["inputs_hash"])

    @rpc
    def forfeits(self, campaign_id):
        """逾期未報者視為棄權: the listed units that have no standing nomination."""
        self.auth.require("admin")
        campaign = self._campaign(require_id(campaign_id, "campaign_id"))
        nominations = self.store.find(campaign.id)
        return {
            "campaign_id": campaign.id,
            "deadline": campaign.document["nomination"]["deadline"],
            "timezone": campaign.timezone,
            "deadline_passed": self.now() > campaign.nomination_deadline,
            "forfeited_units": domain.forfeits(campaign, nominations),
        }

    # --- events left behind ----------------------------------------------------------------

    @timer(interval=OUTBOX_SWEEP_SECONDS)
    def sweep_outbox(self):
        """Publish events a crash left between the write and the publish."""
        self.store.sweep_outboxes(self.dispatch, self.now())

    # --- helpers ---------------------------------------------------------------------------

    def _campaign(self, campaign_id):
        return self.campaigns.get(campaign_id)

    def _record(self, nomination_id):
        record = self.store.get(require_id(nomination_id, "nomination_id"))
        if record is None:
            raise NotFound(f"no nomination {nomination_id}")
        return record

    def _own(self, identity, nomination_id):
        record = self._record(nomination_id)
        domain.check_owner(identity, record)
        return record

    def _claim(self, slots, holder, now):
        """Take every slot or none: on a full cap, give back what was taken.

        A full cap first gives back holders left by a crash (``domain.stale_holders``),
        then is tried once more: so a crash never keeps a slot for good.
        """
        taken = []
        for slot in slots:
            if not self.store.claim_slot(slot.key, slot.cap, holder, now) and not (
                    self._release_stale(slot.key, now)
                    and self.store.claim_slot(slot.key, slot.cap, holder, now)):
                self._release(taken, holder)
                raise QuotaExceeded(f"the {slot.label} is reached; no more nominations are taken")
            taken.append(slot)

    def _release_stale(self, key, now):
        """Give back the slots of ``key`` that no stored nomination holds; how many."""
        claims = self.store.slot_claims(key)
        stale = domain.stale_holders(claims, self.store.slot_records(set(claims)), key, now)
        for holder in stale:
            log.warning("intake slot %s: holder %s has no nomination holding it; given back",
                        key, holder)
            self.store.release_slot(key, holder)
        return len(stale)

    def _confirm_slots(self, slots, holder, now):
        """After the insert: still holding every slot? (A submit slower than the grace may
        have been given back by a full cap meanwhile.) Re-take it, or take the nomination
        back before it is announced."""
        lost = [slot for slot in slots if not self.store.slot_held_by(slot.key, holder)]
        if not lost:
            return
        try:
            self._claim(lost, holder, now)
        except QuotaExceeded:
            self._release([slot for slot in slots if slot not in lost], holder)
            self.store.forget_unannounced(holder)
            raise

    def _release(self, slots, holder):
        for slot in slots:
            self.store.release_slot(slot.key, holder)

    def _update(self, record, changes, event_type, payload, audit, now):
        updated = self.store.update(record, changes, outbox_entry(event_type, payload, audit, now))
        if updated is None:
            raise Conflict(f"nomination {record['_id']} changed meanwhile; read it and retry")
        self.store.relay_nomination_events(record["_id"], self.dispatch)
        return updated

