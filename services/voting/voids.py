"""票數清零 for the department: void the votes a selector takes, restore a void, and finish
either after a crash. The rules are pure (``voiding.py``); this is the use case over one
worker's store, dispatcher and clock. Each change is stored with its event and audit entry
in one update (the void's outbox), then relayed.
"""
import logging
from datetime import timedelta

from shared import events
from shared.audit import audit_entry
from shared.errors import InvalidState, NotFound
from shared.outbox import outbox_entry
from services.voting import voiding

log = logging.getLogger(__name__)

#: A void left half done by a crash is completed by the sweep after this long.
VOID_GRACE = timedelta(seconds=30)


class Voids:
    """One worker's view of the voids."""

    def __init__(self, store, dispatch, now, service_rpc, ballot_cache):
        self.store = store
        self.dispatch = dispatch
        self.now = now
        self.service_rpc = service_rpc
        self.ballot_cache = ballot_cache

    def void(self, campaign, chosen, reason, actor):
        """Void the counted votes ``chosen`` (a loaded selector) takes: ``{void_id, voided}``.

        The same selector again while its void is in force answers that void; a
        vote already voided is never voided twice.
        """
        voiding.check_not_published(campaign.id, self.publication(campaign.id))
        if "candidate_id" in chosen:
            entry = self.store.candidate(chosen["candidate_id"])
            if entry is None or entry.get("campaign_id") != campaign.id:
                raise NotFound(f"no candidate {chosen['candidate_id']} in campaign {campaign.id}")
        key = voiding.selector_key(campaign.id, chosen)
        current = self.store.current_void(campaign.id, key)
        if current is not None:
            return self.complete(current)
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
                    "selector": chosen, "reason": reason, "by": actor,
                    "at": self.now(), "state": voiding.VOIDING}
        if not self.store.create_void(document):
            return self.complete(self.store.find_void(void_id))
        self.store.mark_voided(void_id, [row["_id"] for row in counted])
        return self.complete(self.store.find_void(void_id))

    def restore(self, void_id, reason, actor):
        """Undo exactly that void: its votes count again; ``{void_id, restored}``."""
        void = self.store.find_void(void_id)
        voiding.check_restorable(void)
        voiding.check_not_published(void["campaign_id"], self.publication(void["campaign_id"]))
        now = self.now()
        restore = {"at": now, "reason": reason, "by": actor}
        payload = events.make_event(
            events.VOTES_RESTORED, void["campaign_id"], now, void_id=void["_id"],
            reason=reason, restored=void["voided"], counts=void["counts"],
            vote_ids=void["vote_ids"])
        audit = audit_entry(actor, "restore_votes", "void", void["_id"], void["campaign_id"], now,
                            before={"state": voiding.VOIDED, "voided": void["voided"]},
                            after={"state": voiding.RESTORED, "restored": void["voided"],
                                   "counts": void["counts"]},
                            note=reason)
        if not self.store.start_restore(void["_id"], restore,
                                        outbox_entry(events.VOTES_RESTORED, payload, audit, now)):
            raise InvalidState(f"void {void['_id']} was already restored")
        self.store.unmark_voided(void["_id"])
        self.relay(void)
        return {"void_id": void["_id"], "restored": void["voided"]}

    def sweep(self, now):
        """Finish what a crash left: a void whose votes were marked but not announced, a
        restore whose votes were not unmarked, an event not relayed."""
        for void in self.store.stale_voids(now - VOID_GRACE):
            if void["state"] == voiding.VOIDING:
                try:
                    self.complete(self.store.find_void(void["_id"]))
                except NotFound:
                    pass  # another void took every vote: nothing was voided by this one
                continue
            if void["state"] == voiding.RESTORED:
                self.store.unmark_voided(void["_id"])  # a crash between restore and unmark
            self.relay(void)

    def publication(self, campaign_id):
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

    def complete(self, void):
        """Announce a void once its votes are marked (also after a crash, by a resend or the
        sweep); answers ``{void_id, voided}``."""
        if void["state"] != voiding.VOIDING:
            self.relay(void)
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
        self.relay(void)
        return voiding.void_reply(self.store.find_void(void["_id"]))

    def relay(self, void):
        try:
            self.store.relay_void(void["_id"], self.dispatch)
        except Exception as exc:  # the broker: the sweep relays it later
            log.warning("event of void %s not published yet: %s", void["_id"], exc)
        self.ballot_cache.forget(void["campaign_id"])
