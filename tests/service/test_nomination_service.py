"""The nomination service's entrypoints with nameko's ``worker_factory``: no broker.

The store is the real repository on the test's database; auth, clock and
dispatch are injected. Every refusal is checked to leave nothing stored.
"""
import json

import pytest
from nameko.testing.services import worker_factory

from services.nomination import domain
from services.nomination.service import NominationService
from services.nomination.store import NominationStore
from shared import events
from shared.campaigns import CampaignBook
from shared.auth import Caller, read_token, token_id_of
from shared.errors import (Conflict, DeadlinePassed, Forbidden, InvalidState, NotFound,
                           QuotaExceeded, Unauthorized, ValidationError)
from shared.timeutil import utcnow
from tests.conftest import TEST_KEYS, at, campaign_document, nomination_form, token

BEFORE_DEADLINE = at("2099-10-01T02:00:00")
AFTER_DEADLINE = at("2099-10-30T16:00:00")  # 00:00 on 31 October in Asia/Shanghai

UNIT = "城关镇党委"
OTHER_UNIT = "东河乡党委"


class Harness:
    """Calls the service as a given token, at a given time, on one store."""

    def __init__(self, db):
        self.store = NominationStore(db)
        self.store.ensure_indexes()
        self.now = BEFORE_DEADLINE
        self.revoked = set()
        self.dispatched = []

    def service(self, auth_token):
        # Tokens expire by real time; the rules run on the service's (test) clock.
        verify = lambda t: read_token(TEST_KEYS, t, utcnow(), self.revoked.__contains__)
        return worker_factory(
            NominationService, store=self.store, now=lambda: self.now,
            campaigns=CampaignBook(self.store.campaigns),
            auth=Caller(verify, auth_token, lambda token_id, at: self.revoked.add(token_id)),
            dispatch=lambda event_type, payload: self.dispatched.append((event_type, payload)))

    def as_unit(self, unit=UNIT):
        return self.service(token("unit", unit))

    def as_admin(self):
        return self.service(token("admin", "宣传部"))

    def stored(self):
        return self.store.nominations.count_documents({})

    def event_types(self):
        return [event_type for event_type, _ in self.dispatched]


@pytest.fixture
def harness(db):
    harness = Harness(db)
    harness.as_admin().load_campaign(campaign_document())
    harness.dispatched.clear()
    return harness


def test_submit_stores_the_nomination_and_announces_it(harness):
    record = harness.as_unit().submit(nomination_form(client_ref="a-1"))
    assert record["status"] == "submitted"
    assert record["unit"] == UNIT
    assert record["id"].startswith("nom-")
    assert harness.event_types() == [events.NOMINATION_SUBMITTED]
    payload = harness.dispatched[0][1]
    assert payload["nomination_id"] == record["id"]
    assert payload["campaign_id"] == "cb-test"
    assert payload["schema_version"] == 1
    # The outbox is empty once relayed, and the change is in the audit trail.
    assert harness.store.nominations.find_one({"_id": record["id"]})["outbox"] == []
    trail = harness.as_admin().audit_trail("cb-test", record["id"])
    assert [row["action"] for row in trail] == ["submit"]
    assert trail[0]["actor"]["name"] == UNIT
    assert trail[0]["after"]["nominee_name"] == record["nominee_name"]


def test_a_resend_returns_the_same_record_and_announces_nothing(harness):
    form = nomination_form(client_ref="same")
    first = harness.as_unit().submit(form)
    again = harness.as_unit().submit(form)
    assert again["id"] == first["id"]
    assert harness.stored() == 1
    assert harness.event_types() == [events.NOMINATION_SUBMITTED]


def test_different_content_under_a_used_client_ref_is_a_conflict(harness):
    harness.as_unit().submit(nomination_form(client_ref="same"))
    with pytest.raises(Conflict):
        harness.as_unit().submit(nomination_form(client_ref="same", nominee_name="另一个单位"))
    assert harness.stored() == 1


def test_the_same_client_ref_from_two_units_is_two_nominations(harness):
    harness.as_unit(UNIT).submit(nomination_form(client_ref="shared-ref"))
    harness.as_unit(OTHER_UNIT).submit(nomination_form(client_ref="shared-ref"))
    assert harness.stored() == 2


@pytest.mark.parametrize("form, field", [
    (nomination_form(nominee_name=""), "nominee_name"),
    (nomination_form(category="best_unit"), "category"),
    (nomination_form(org_type="factory"), "org_type"),
    (nomination_form(org_type=None), "org_type"),
    (nomination_form(category="learning_star", org_type=None), "party_post"),
    (nomination_form(mobile="0734-5551234"), "mobile"),
    (nomination_form(email="liming@"), "email"),
    (nomination_form(materials="字" * 3001), "materials"),
    (nomination_form(recommendation={"opinion": "同意", "signed_by": "王", "sealed": False,
                                     "date": "2026-10-20"}), "recommendation.sealed"),
    (nomination_form(nominee_name={"$gt": ""}), "nominee_name"),
    (nomination_form(client_ref={"$gt": ""}), "client_ref"),
    (nomination_form(deeds_summary="事" * (5 * 1024 * 1024)), "deeds_summary"),
])
def test_bad_input_is_refused_by_field_and_nothing_is_stored(harness, form, field):
    with pytest.raises(ValidationError) as refused:
        harness.as_unit().submit(form)
    assert field in refused.value.messages
    assert json.loads(refused.value.value) == refused.value.messages
    assert harness.stored() == 0
    assert harness.store.slot_holders("cb-test|advanced_unit") == []
    assert harness.dispatched == []


def test_an_unknown_campaign_is_not_found(harness):
    with pytest.raises(NotFound):
        harness.as_unit().submit(nomination_form(campaign_id="cb-none"))
    assert harness.stored() == 0


def test_a_category_the_campaign_does_not_run_is_refused(harness):
    with pytest.raises(ValidationError) as refused:
        harness.as_unit().submit(nomination_form(category="learning_carrier", org_type=None))
    assert "category" in refused.value.messages


def test_a_unit_not_listed_in_the_campaign_may_not_nominate(harness):
    with pytest.raises(Forbidden):
        harness.as_unit("外县某单位").submit(nomination_form())
    assert harness.stored() == 0


def test_after_the_deadline_submit_amend_and_withdraw_are_refused(harness):
    record = harness.as_unit().submit(nomination_form())
    harness.now = AFTER_DEADLINE
    with pytest.raises(DeadlinePassed):
        harness.as_unit().submit(nomination_form())
    with pytest.raises(DeadlinePassed):
        harness.as_unit().amend(record["id"], {"nominee_name": "新名称"})
    with pytest.raises(DeadlinePassed):
        harness.as_unit().withdraw(record["id"], "重复推荐")
    assert harness.stored() == 1
    assert harness.as_unit().get(record["id"])["nominee_name"] == record["nominee_name"]


def test_the_last_second_of_the_deadline_day_is_still_on_time(harness):
    harness.now = at("2099-10-30T15:59:59")  # 23:59:59 in Asia/Shanghai
    assert harness.as_unit().submit(nomination_form())["status"] == "submitted"


def test_the_21st_agency_nomination_exceeds_the_org_type_cap(harness):
    for n in range(20):
        harness.as_unit().submit(nomination_form(client_ref=f"agency-{n}"))
    with pytest.raises(QuotaExceeded) as refused:
        harness.as_unit().submit(nomination_form(client_ref="agency-21"))
    assert "agency" in str(refused.value)
    assert harness.stored() == 20
    assert len(harness.store.slot_holders("cb-test|advanced_unit|agency")) == 20
    # The refused nomination did not keep the county-wide slot it took first.
    assert len(harness.store.slot_holders("cb-test|advanced_unit")) == 20
    # Another org type still has room.
    harness.as_unit().submit(nomination_form(client_ref="school-1", org_type="school"))


def test_a_withdrawal_frees_its_slot(harness):
    campaign = dict(campaign_document())
    campaign["categories"]["learning_star"]["intake_cap"] = 1
    campaign["categories"]["learning_star"]["award_slots"] = 1
    harness.as_admin().load_campaign(campaign)
    star = dict(category="learning_star", org_type=None, party_post="支部书记")
    first = harness.as_unit().submit(nomination_form(**star))
    with pytest.raises(QuotaExceeded):
        harness.as_unit(OTHER_UNIT).submit(nomination_form(**star))
    harness.as_unit().withdraw(first["id"], "改推他人")
    second = harness.as_unit(OTHER_UNIT).submit(nomination_form(**star))
    assert second["status"] == "submitted"
    assert harness.store.slot_holders("cb-test|learning_star") == [second["id"]]


def test_amend_changes_fields_and_records_before_and_after(harness):
    record = harness.as_unit().submit(nomination_form())
    amended = harness.as_unit().amend(record["id"], {"nominee_name": "县财政局党组",
                                                     "mobile": "+86 139 0000 1111"})
    assert amended["nominee_name"] == "县财政局党组"
    assert amended["mobile"] == "13900001111"
    payload = harness.dispatched[-1][1]
    assert harness.dispatched[-1][0] == events.NOMINATION_AMENDED
    assert payload["changed_fields"] == ["mobile", "nominee_name"]
    entry = harness.as_admin().audit_trail("cb-test", record["id"])[-1]
    assert entry["before"] == {"mobile": "13812345678", "nominee_name": record["nominee_name"]}
    assert entry["after"] == {"mobile": "13900001111", "nominee_name": "县财政局党组"}


def test_amend_with_bad_input_changes_nothing(harness):
    record = harness.as_unit().submit(nomination_form())
    for changes, field in [({"mobile": "123"}, "mobile"), ({"category": "learning_star"}, "category"),
                           ({"client_ref": "x"}, "client_ref"), ({"colour": "red"}, "colour"),
                           ({"materials": "字" * 3001}, "materials")]:
        with pytest.raises(ValidationError) as refused:
            harness.as_unit().amend(record["id"], changes)
        assert field in refused.value.messages
    assert harness.as_unit().get(record["id"]) == record


def test_amending_the_org_type_moves_the_slot(harness):
    record = harness.as_unit().submit(nomination_form())
    harness.as_unit().amend(record["id"], {"org_type": "rural"})
    assert harness.store.slot_holders("cb-test|advanced_unit|agency") == []
    assert harness.store.slot_holders("cb-test|advanced_unit|rural") == [record["id"]]
    assert harness.store.slot_holders("cb-test|advanced_unit") == [record["id"]]


def test_a_unit_reads_and_changes_only_its_own_nominations(harness):
    record = harness.as_unit(UNIT).submit(nomination_form())
    other = harness.as_unit(OTHER_UNIT)
    with pytest.raises(Forbidden):
        other.get(record["id"])
    with pytest.raises(Forbidden):
        other.amend(record["id"], {"nominee_name": "篡改"})
    with pytest.raises(Forbidden):
        other.withdraw(record["id"], "恶意撤回")
    with pytest.raises(Forbidden):
        other.list("cb-test", unit=UNIT)
    assert other.list("cb-test") == []
    assert [r["id"] for r in harness.as_unit(UNIT).list("cb-test")] == [record["id"]]
    assert harness.as_unit().get(record["id"])["status"] == "submitted"


def test_list_filters_are_values_not_queries(harness):
    harness.as_unit().submit(nomination_form())
    with pytest.raises(ValidationError) as refused:
        harness.as_admin().list("cb-test", status={"$ne": "x"})
    assert "status" in refused.value.messages
    with pytest.raises(ValidationError):
        harness.as_admin().list({"$gt": ""})
    assert len(harness.as_admin().list("cb-test", status="submitted")) == 1


def test_calls_without_a_valid_token_are_unauthorized(harness):
    form = nomination_form()
    forged = token("unit", UNIT)[:-4] + "AAAA"
    for bad in (None, "", "not-a-token", forged):
        with pytest.raises(Unauthorized):
            harness.service(bad).submit(form)
    revoked = token("unit", UNIT)
    harness.revoked.add(token_id_of(revoked))
    with pytest.raises(Unauthorized):
        harness.service(revoked).submit(form)
    assert harness.stored() == 0


def test_wrong_roles_are_forbidden(harness):
    record = harness.as_unit().submit(nomination_form())
    with pytest.raises(Forbidden):
        harness.as_unit().review(record["id"], "accept", "符合条件")
    with pytest.raises(Forbidden):
        harness.service(token("judge", "j-1", "县教育局")).get(record["id"])
    with pytest.raises(Forbidden):
        harness.as_admin().submit(nomination_form())
    with pytest.raises(Forbidden):
        harness.as_unit().load_campaign(campaign_document())
    assert harness.as_admin().get(record["id"])["status"] == "submitted"


def test_review_accepts_onto_the_ballot_and_reject_needs_a_reason(harness):
    first = harness.as_unit().submit(nomination_form())
    second = harness.as_unit().submit(nomination_form())
    admin = harness.as_admin()
    accepted = admin.review(first["id"], "accept", "符合评选条件")
    assert accepted["status"] == "accepted"
    assert accepted["review"]["signed_by"] == "宣传部"
    assert accepted["review"]["date"] == "2099-10-01"
    with pytest.raises(ValidationError) as refused:
        admin.review(second["id"], "reject", None)
    assert "opinion" in refused.value.messages
    with pytest.raises(ValidationError):
        admin.review(second["id"], "maybe", "?")
    assert admin.get(second["id"])["status"] == "submitted"
    assert admin.review(second["id"], "reject", "材料不实")["status"] == "rejected"
    with pytest.raises(InvalidState):
        admin.review(first["id"], "reject", "再审")
    reviewed = [p for t, p in harness.dispatched if t == events.NOMINATION_REVIEWED]
    assert [(p["nomination_id"], p["decision"]) for p in reviewed] == [
        (first["id"], "accept"), (second["id"], "reject")]


def test_disqualify_only_a_candidate(harness):
    record = harness.as_unit().submit(nomination_form())
    admin = harness.as_admin()
    with pytest.raises(InvalidState):
        admin.disqualify(record["id"], "公示期间查实问题")
    admin.review(record["id"], "accept", "符合条件")
    with pytest.raises(ValidationError):
        admin.disqualify(record["id"], "  ")
    result = admin.disqualify(record["id"], "公示期间查实问题")
    assert result["status"] == "disqualified"
    event_type, payload = harness.dispatched[-1]
    assert event_type == events.CANDIDATE_DISQUALIFIED
    assert payload["candidate_id"] == record["id"]
    assert payload["reason"] == "公示期间查实问题"


def test_aggregation_disqualifies_as_itself_naming_the_objection(harness):
    record = harness.as_unit().submit(nomination_form())
    harness.as_admin().review(record["id"], "accept", "符合条件")
    aggregation = harness.service(token("service", "aggregation"))
    with pytest.raises(ValidationError):
        aggregation.disqualify(record["id"], "异议成立", objection_id={"$ne": None})
    result = aggregation.disqualify(record["id"], "异议obj-x经核实成立：属实",
                                    objection_id="obj-x")
    assert result["disqualification"]["objection_id"] == "obj-x"
    trail = harness.as_admin().audit_trail("cb-test", record["id"])
    assert trail[-1]["after"] == {"status": "disqualified", "objection_id": "obj-x"}
    with pytest.raises(Forbidden):
        harness.service(token("frontend", "x")).disqualify(record["id"], "x")


def test_after_the_list_is_finalized_disqualify_is_refused_and_changes_nothing(harness):
    first = harness.as_unit().submit(nomination_form())
    harness.as_admin().review(first["id"], "accept", "符合条件")
    finalized = events.make_event(events.RESULTS_FINALIZED, "cb-test", inputs_hash="ab" * 32)
    harness.service(None).on_results_finalized(finalized)
    harness.service(None).on_results_finalized(finalized)  # redelivered: the same
    harness.dispatched.clear()
    before = harness.as_admin().get(first["id"])
    with pytest.raises(InvalidState) as raised:
        harness.as_admin().disqualify(first["id"], "公示期间查实问题")
    assert "finalized" in str(raised.value)
    assert harness.as_admin().get(first["id"]) == before and harness.dispatched == []
    # A malformed event is ignored, and only the campaign it names is frozen.
    harness.service(None).on_results_finalized({"campaign_id": "cb-test"})
    assert harness.store.is_finalized("cb-test") and not harness.store.is_finalized("cb-other")


def test_forfeits_lists_units_without_a_standing_nomination(harness):
    record = harness.as_unit(UNIT).submit(nomination_form())
    harness.as_unit(OTHER_UNIT).submit(nomination_form())
    harness.as_unit(UNIT).withdraw(record["id"], "撤回")
    harness.now = AFTER_DEADLINE
    report = harness.as_admin().forfeits("cb-test")
    assert report["deadline_passed"] is True
    assert report["forfeited_units"] == ["城关镇党委", "县教育局党组"]


def test_loading_a_campaign_again_updates_it_and_is_audited(harness):
    admin = harness.as_admin()
    changed = dict(campaign_document(), name="测试活动（修订）")
    assert admin.load_campaign(changed)["revision"] == 2
    assert admin.get_campaign("cb-test")["name"] == "测试活动（修订）"
    loads = [row for row in admin.audit_trail("cb-test") if row["action"] == "load_campaign"]
    assert loads[-1]["before"]["name"] == "测试活动"
    assert loads[-1]["after"]["name"] == "测试活动（修订）"
    with pytest.raises(ValidationError) as refused:
        admin.load_campaign(dict(changed, weights={"public": 0.5, "panel": 0.6}))
    assert "weights" in refused.value.messages
    assert admin.get_campaign("cb-test")["weights"] == {"public": 0.3, "panel": 0.7}


def test_an_event_left_in_the_outbox_by_a_crash_is_published_by_the_sweep(harness):
    record = harness.as_unit().submit(nomination_form())
    # Simulate a crash between the write and the publish of the next change.
    failing = harness.as_unit()
    failing.dispatch = lambda *args: (_ for _ in ()).throw(ConnectionError("broker gone"))
    with pytest.raises(ConnectionError):
        failing.amend(record["id"], {"nominee_name": "改后名称"})
    stuck = harness.store.nominations.find_one({"_id": record["id"]})["outbox"]
    assert [entry["event_type"] for entry in stuck] == [events.NOMINATION_AMENDED]
    harness.dispatched.clear()
    harness.now = at("2099-10-01T03:00:00")
    harness.as_admin().sweep_outbox()
    assert harness.event_types() == [events.NOMINATION_AMENDED]
    assert harness.store.nominations.find_one({"_id": record["id"]})["outbox"] == []
    # The audit entry was written once, by the relay.
    actions = [row["action"] for row in harness.as_admin().audit_trail("cb-test", record["id"])]
    assert actions == ["submit", "amend"]


def test_the_three_opinions_each_carry_a_signer_and_a_date(harness):
    record = harness.as_unit().submit(nomination_form())
    assert record["recommendation"]["signed_by"] == "王建国"
    assert record["recommendation"]["date"] == "2026-10-20"
    admin = harness.as_admin()
    reviewed = admin.review(record["id"], "accept", {"opinion": "同意列为候选", "signed_by": "评审委员会",
                                                     "date": "2026-11-05"})
    assert reviewed["review"] == {"opinion": "同意列为候选", "signed_by": "评审委员会",
                                  "date": "2026-11-05", "decision": "accept"}
    with pytest.raises(ValidationError) as refused:
        admin.record_leadership_opinion(record["id"], {"opinion": "同意", "date": "tomorrow"})
    assert "opinion.date" in refused.value.messages
    endorsed = admin.record_leadership_opinion(record["id"], "同意表彰")
    assert endorsed["leadership_opinion"] == {"opinion": "同意表彰", "signed_by": "宣传部",
                                              "date": "2099-10-01"}
    assert harness.dispatched[-1][0] == events.LEADERSHIP_OPINION_RECORDED


def test_the_leadership_opinion_is_only_for_candidates(harness):
    record = harness.as_unit().submit(nomination_form())
    with pytest.raises(InvalidState):
        harness.as_admin().record_leadership_opinion(record["id"], "同意")
    with pytest.raises(Forbidden):
        harness.as_unit().record_leadership_opinion(record["id"], "同意")
    assert "leadership_opinion" not in harness.as_admin().get(record["id"])


def test_every_problem_of_a_form_is_reported_in_one_answer(harness):
    form = nomination_form(category="learning_star", org_type=None, mobile="123",
                           email="nope")
    with pytest.raises(ValidationError) as refused:
        harness.as_unit().submit(form)
    assert set(refused.value.messages) == {"party_post", "mobile", "email"}


def star_cap_of_one(harness):
    campaign = dict(campaign_document())
    campaign["categories"]["learning_star"]["intake_cap"] = 1
    campaign["categories"]["learning_star"]["award_slots"] = 1
    harness.as_admin().load_campaign(campaign)
    return dict(category="learning_star", org_type=None, party_post="支部书记")


def test_a_slot_whose_submit_died_before_the_insert_is_given_back(harness):
    star = star_cap_of_one(harness)
    # As if a worker claimed the only slot and died before storing its nomination.
    assert harness.store.claim_slot("cb-test|learning_star", 1, "nom-ghost", harness.now)
    with pytest.raises(QuotaExceeded):           # within the grace it may still be stored
        harness.as_unit().submit(nomination_form(**star))
    assert harness.store.slot_holders("cb-test|learning_star") == ["nom-ghost"]
    assert harness.stored() == 0
    harness.now += domain.SLOT_CLAIM_GRACE
    record = harness.as_unit().submit(nomination_form(**star))
    assert harness.store.slot_holders("cb-test|learning_star") == [record["id"]]
    assert harness.stored() == 1


def test_a_slot_whose_withdrawal_died_before_the_release_is_given_back(harness):
    star = star_cap_of_one(harness)
    first = harness.as_unit().submit(nomination_form(**star))
    release = harness.store.release_slot
    harness.store.release_slot = lambda key, holder: None      # the worker dies here
    harness.as_unit().withdraw(first["id"], "改推他人")
    harness.store.release_slot = release
    assert harness.store.slot_holders("cb-test|learning_star") == [first["id"]]
    harness.now += domain.SLOT_CLAIM_GRACE
    second = harness.as_unit(OTHER_UNIT).submit(nomination_form(**star))
    assert harness.store.slot_holders("cb-test|learning_star") == [second["id"]]


def test_a_held_slot_of_a_stored_nomination_is_never_given_back(harness):
    star = star_cap_of_one(harness)
    first = harness.as_unit().submit(nomination_form(**star))
    harness.now += 10 * domain.SLOT_CLAIM_GRACE
    with pytest.raises(QuotaExceeded):
        harness.as_unit(OTHER_UNIT).submit(nomination_form(**star))
    assert harness.store.slot_holders("cb-test|learning_star") == [first["id"]]
    assert harness.stored() == 1


def test_a_submit_that_lost_its_slot_while_slow_is_taken_back_before_it_is_announced(harness):
    star = star_cap_of_one(harness)
    insert = harness.store.insert

    def slow_insert(record, pending):
        # Meanwhile the grace ran out and another unit's submit reconciled the cap.
        harness.store.release_slot("cb-test|learning_star", record["_id"])
        harness.store.claim_slot("cb-test|learning_star", 1, "nom-other", harness.now)
        insert(record, pending)

    harness.store.insert = slow_insert
    with pytest.raises(QuotaExceeded):
        harness.as_unit().submit(nomination_form(**star))
    assert harness.stored() == 0
    assert events.NOMINATION_SUBMITTED not in harness.event_types()
    assert harness.store.slot_holders("cb-test|learning_star") == ["nom-other"]


# --- a signing date is judged on the service clock in the campaign's zone ------------------

def test_a_form_signed_tomorrow_on_the_rehearsal_clock_is_refused_and_nothing_stored(harness):
    # The service clock (a rehearsal of 2013) says it is 23:59 on 2013-10-20 in Shanghai;
    # the real clock (and UTC+14) long since passed 2013-10-21.
    harness.now = at("2013-10-20T15:59:00")
    form = nomination_form(recommendation={"opinion": "同意推荐", "signed_by": "王建国",
                                           "sealed": True, "date": "2013-10-21"})
    with pytest.raises(ValidationError) as caught:
        harness.as_unit().submit(form)
    assert list(caught.value.messages) == ["recommendation.date"]
    assert harness.stored() == 0 and harness.dispatched == []
    harness.now = at("2013-10-20T16:30:00")   # 00:30 on the 21st in Shanghai
    assert harness.as_unit().submit(form)["recommendation"]["date"] == "2013-10-21"


def test_amend_to_a_date_not_yet_come_changes_nothing(harness):
    harness.now = at("2013-10-20T15:59:00")
    form = nomination_form(recommendation={"opinion": "同意推荐", "signed_by": "王建国",
                                           "sealed": True, "date": "2013-10-19"})
    record = harness.as_unit().submit(form)
    harness.dispatched.clear()
    with pytest.raises(ValidationError):
        harness.as_unit().amend(record["id"], {"recommendation": dict(
            form["recommendation"], date="2013-10-21")})
    assert harness.store.get(record["id"])["recommendation"]["date"] == "2013-10-19"
    assert harness.dispatched == []
