"""The nomination rules as pure functions: deadline, caps, idempotency, ownership, review."""
import pytest

from services.nomination import domain
from services.nomination.domain import (
    ACCEPTED, DISQUALIFIED, REJECTED, SUBMITTED, WITHDRAWN, IntakeSlot, amend_fields,
    changed_fields, check_amendable, check_before_deadline, check_category_run,
    check_disqualifiable, check_owner, check_unit_may_nominate, check_withdrawable, fingerprint,
    forfeits, intake_slots, nomination_fields, resend_of, review_outcome)
from shared.auth import Identity
from shared.campaign import Campaign
from shared.errors import (Conflict, DeadlinePassed, Forbidden, InvalidState, ValidationError)
from tests.conftest import at, campaign_document, nomination_form


@pytest.fixture(scope="module")
def campaign():
    return Campaign(campaign_document())


def record(status=SUBMITTED, unit="城关镇党委", **fields):
    form = nomination_form(client_ref="ref-1")
    form.update(fields)
    return dict(form, _id="nom-1", unit=unit, status=status, fingerprint=fingerprint(form),
                version=1, slots=["cb-test|advanced_unit"])


UNIT = Identity("t-unit", "unit", "城关镇党委", None)
UNIT_BY_UNIT_FLAG = Identity("t-clerk", "unit", "张三", "城关镇党委")
OTHER_UNIT = Identity("t-other", "unit", "东河乡党委", None)
ADMIN = Identity("t-admin", "admin", "宣传部", None)
JUDGE = Identity("t-judge", "judge", "城关镇党委", "城关镇党委")
FRONTEND = Identity("t-front", "frontend", "城关镇党委", None)


# --- 逾期未報者視為棄權 -------------------------------------------------------------------

def test_deadline_is_the_campaigns_local_time_in_utc(campaign):
    assert campaign.nomination_deadline == at("2099-10-30T15:59:59")


@pytest.mark.parametrize("moment", ["2099-10-30T15:59:59", "2099-10-30T15:59:58.999999",
                                    "2099-10-30T00:00:00", "2013-10-30T15:59:59"])
def test_at_or_before_the_deadline_passes(campaign, moment):
    assert check_before_deadline(campaign, at(moment), "submit") is None


@pytest.mark.parametrize("moment", ["2099-10-30T15:59:59.000001", "2099-10-30T16:00:00",
                                    "2099-10-31T00:00:00", "2100-01-01T00:00:00"])
def test_after_the_deadline_is_refused(campaign, moment):
    with pytest.raises(DeadlinePassed) as caught:
        check_before_deadline(campaign, at(moment), "submit")
    message = str(caught.value)
    assert "cannot submit" in message
    assert "2099-10-30 23:59:59" in message
    assert "Asia/Shanghai" in message
    assert "cb-test" in message


def test_deadline_is_local_not_utc(campaign):
    """23:59:59 UTC on the 30th is already the 31st in Shanghai: too late."""
    with pytest.raises(DeadlinePassed):
        check_before_deadline(campaign, at("2099-10-30T23:59:59"), "amend")


def test_deadline_follows_the_campaigns_zone():
    urumqi = Campaign(campaign_document(timezone="Asia/Urumqi"))  # UTC+6
    check_before_deadline(urumqi, at("2099-10-30T17:59:59"), "submit")
    with pytest.raises(DeadlinePassed):
        check_before_deadline(urumqi, at("2099-10-30T18:00:00"), "submit")


# --- intake caps --------------------------------------------------------------------------

def test_advanced_unit_counts_against_category_and_org_type(campaign):
    slots = intake_slots(campaign, {"category": "advanced_unit", "org_type": "agency"})
    assert [(s.key, s.cap) for s in slots] == [
        ("cb-test|advanced_unit", 50), ("cb-test|advanced_unit|agency", 20)]
    assert all(isinstance(s, IntakeSlot) for s in slots)
    assert "机关" in slots[1].label


@pytest.mark.parametrize("org_type,cap", [("school", 5), ("enterprise", 2), ("community", 3),
                                          ("rural", 20)])
def test_each_org_type_has_its_own_slot(campaign, org_type, cap):
    slots = intake_slots(campaign, {"category": "advanced_unit", "org_type": org_type})
    assert slots[-1] == IntakeSlot(f"cb-test|advanced_unit|{org_type}", cap, slots[-1].label)


def test_learning_star_counts_against_its_category_only(campaign):
    slots = intake_slots(campaign, {"category": "learning_star", "org_type": None})
    assert [(s.key, s.cap) for s in slots] == [("cb-test|learning_star", 50)]


def test_uncapped_category_has_no_slot(campaign):
    assert intake_slots(campaign, {"category": "learning_activity"}) == []


def test_category_not_run_is_a_validation_error(campaign):
    check_category_run(campaign, "advanced_unit")
    with pytest.raises(ValidationError) as caught:
        check_category_run(campaign, "learning_carrier")
    assert set(caught.value.messages) == {"category"}


def test_only_listed_units_nominate(campaign):
    check_unit_may_nominate(campaign, "城关镇党委")
    with pytest.raises(Forbidden):
        check_unit_may_nominate(campaign, "某外县党委")
    check_unit_may_nominate(Campaign(campaign_document(units=[])), "某外县党委")


# --- idempotent submit --------------------------------------------------------------------

def test_fingerprint_is_stable_under_key_order():
    form = nomination_form(client_ref="ref-1")
    reordered = {key: form[key] for key in reversed(list(form))}
    reordered["recommendation"] = dict(reversed(list(form["recommendation"].items())))
    assert list(reordered) != list(form)
    assert fingerprint(reordered) == fingerprint(form)
    assert len(fingerprint(form)) == 64


def test_fingerprint_changes_with_content():
    form = nomination_form(client_ref="ref-1")
    assert fingerprint(dict(form, nominee_name="另一单位")) != fingerprint(form)
    changed = nomination_form(client_ref="ref-1")
    changed["recommendation"]["signed_by"] = "李四"
    assert fingerprint(changed) != fingerprint(form)


def test_resend_with_same_content_returns_the_existing_record():
    existing = record()
    assert resend_of(existing, fingerprint(nomination_form(client_ref="ref-1"))) is existing


def test_resend_with_different_content_is_a_conflict():
    existing = record()
    different = fingerprint(nomination_form(client_ref="ref-1", nominee_name="另一单位"))
    with pytest.raises(Conflict) as caught:
        resend_of(existing, different)
    assert "client_ref 'ref-1'" in str(caught.value)
    assert "nom-1" in str(caught.value)


# --- ownership ----------------------------------------------------------------------------

@pytest.mark.parametrize("identity", [UNIT, UNIT_BY_UNIT_FLAG, ADMIN], ids=["unit", "unit-flag", "admin"])
def test_owner_and_admin_may_act(identity):
    assert check_owner(identity, record()) is None


@pytest.mark.parametrize("identity", [OTHER_UNIT, JUDGE, FRONTEND], ids=["other-unit", "judge", "frontend"])
def test_others_are_forbidden(identity):
    with pytest.raises(Forbidden) as caught:
        check_owner(identity, record())
    assert "nom-1" in str(caught.value)


def test_admin_may_act_on_any_unit():
    check_owner(ADMIN, record(unit="东河乡党委"))


# --- review, withdrawal, disqualification -------------------------------------------------

def test_review_accept_and_reject():
    assert review_outcome(record(SUBMITTED), "accept") == ACCEPTED
    assert review_outcome(record(SUBMITTED), "reject") == REJECTED


@pytest.mark.parametrize("status", [ACCEPTED, REJECTED, WITHDRAWN, DISQUALIFIED])
@pytest.mark.parametrize("decision", ["accept", "reject"])
def test_review_only_from_submitted(status, decision):
    with pytest.raises(InvalidState) as caught:
        review_outcome(record(status), decision)
    assert f"is {status}" in str(caught.value)


def test_disqualify_only_an_accepted_candidate():
    assert check_disqualifiable(record(ACCEPTED)) is None
    for status in (SUBMITTED, REJECTED, WITHDRAWN, DISQUALIFIED):
        with pytest.raises(InvalidState) as caught:
            check_disqualifiable(record(status))
        assert f"is {status}" in str(caught.value)


def test_amend_only_a_submitted_nomination():
    check_amendable(record(SUBMITTED))
    for status in (ACCEPTED, REJECTED, WITHDRAWN, DISQUALIFIED):
        with pytest.raises(InvalidState):
            check_amendable(record(status))


def test_withdraw_until_disqualified_or_withdrawn():
    for status in (SUBMITTED, ACCEPTED, REJECTED):
        check_withdrawable(record(status))
    for status in (WITHDRAWN, DISQUALIFIED):
        with pytest.raises(InvalidState):
            check_withdrawable(record(status))


def test_withdrawal_gives_the_slot_back():
    assert WITHDRAWN not in domain.HOLDS_SLOT
    assert set(domain.HOLDS_SLOT) == {SUBMITTED, ACCEPTED, REJECTED, DISQUALIFIED}


# --- amend --------------------------------------------------------------------------------

@pytest.mark.parametrize("fixed", [["campaign_id"], ["category"], ["client_ref"],
                                   ["campaign_id", "category", "client_ref"]])
def test_amend_refuses_identifying_fields(fixed):
    changes = {name: "x" for name in fixed}
    changes["mobile"] = "13900000000"
    with pytest.raises(ValidationError) as caught:
        amend_fields(record(), changes)
    assert set(caught.value.messages) == set(fixed)
    assert "cannot be changed by amend" in caught.value.messages[fixed[0]][0]


def test_amend_applies_changes_to_the_form_fields_only():
    amended = amend_fields(record(), {"mobile": "13900000000", "nominee_name": "新名称"})
    assert amended["mobile"] == "13900000000"
    assert amended["nominee_name"] == "新名称"
    assert amended["client_ref"] == "ref-1"
    for private in ("_id", "unit", "status", "fingerprint", "version", "slots"):
        assert private not in amended


@pytest.mark.parametrize("changes", [{}, None, [], "mobile"])
def test_amend_needs_some_changes(changes):
    with pytest.raises(ValidationError) as caught:
        amend_fields(record(), changes)
    assert set(caught.value.messages) == {"changes"}


def test_nomination_fields_and_changed_fields():
    rec = record()
    assert set(nomination_fields(rec)) == set(nomination_form())
    assert changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b", "c"]


# --- forfeits -----------------------------------------------------------------------------

def test_forfeits_lists_units_without_a_standing_nomination(campaign):
    nominations = [
        {"unit": "城关镇党委", "status": SUBMITTED},
        {"unit": "东河乡党委", "status": WITHDRAWN},
    ]
    assert forfeits(campaign, nominations) == ["东河乡党委", "县教育局党组"]


def test_rejected_or_disqualified_units_did_send(campaign):
    nominations = [
        {"unit": "城关镇党委", "status": REJECTED},
        {"unit": "东河乡党委", "status": WITHDRAWN},
        {"unit": "东河乡党委", "status": DISQUALIFIED},
        {"unit": "县教育局党组", "status": ACCEPTED},
    ]
    assert forfeits(campaign, nominations) == []


def test_forfeits_ignores_unlisted_units(campaign):
    assert forfeits(campaign, [{"unit": "外来单位", "status": SUBMITTED}]) == [
        "城关镇党委", "东河乡党委", "县教育局党组"]
    assert forfeits(Campaign(campaign_document(units=[])), []) == []


def test_stale_holders_are_old_claims_without_a_nomination_holding_the_slot():
    now = at("2099-10-01T02:00:00")
    old, young = now - domain.SLOT_CLAIM_GRACE, now - domain.SLOT_CLAIM_GRACE / 2
    key = "cb-test|advanced_unit"
    claims = {"gone": old, "young-gone": young, "held": old, "withdrawn": old, "moved": old,
              "legacy": None}
    records = {"held": {"status": "rejected", "slots": [key]},
               "withdrawn": {"status": "withdrawn", "slots": []},
               "moved": {"status": "submitted", "slots": ["cb-test|advanced_unit|school"]},
               "legacy": {"status": "accepted", "slots": [key]}}
    assert domain.stale_holders(claims, records, key, now) == ["gone", "withdrawn", "moved"]


# --- a signing date is not in the future: the campaign's zone, the service clock -----------

@pytest.mark.parametrize("now, signed, accepted", [
    # 00:30 on 10-21 in Shanghai is 16:30 on 10-20 in UTC: the form of the 21st is today's.
    ("2013-10-20T16:30:00", "2013-10-21", True),
    # 23:59 on 10-20 in Shanghai: the 21st has not yet come there (UTC+14 would take it).
    ("2013-10-20T15:59:00", "2013-10-21", False),
    ("2013-10-20T15:59:00", "2013-10-20", True),
    ("2013-10-20T15:59:00", "2013-09-01", True),
])
def test_a_signing_date_is_judged_by_the_campaigns_local_day(now, signed, accepted):
    campaign = Campaign(campaign_document())
    if accepted:
        domain.check_signed_not_in_future(signed, campaign, at(now), "recommendation.date")
    else:
        with pytest.raises(ValidationError) as caught:
            domain.check_signed_not_in_future(signed, campaign, at(now), "recommendation.date")
        assert "today is 2013-10-20 in the campaign's time zone (Asia/Shanghai)" in \
            caught.value.messages["recommendation.date"][0]


def test_a_signing_date_follows_the_campaigns_own_zone():
    campaign = Campaign(campaign_document(timezone="Asia/Urumqi"))   # UTC+6
    # 17:30 UTC is 23:30 in Urumqi: still the 20th there, though the 21st in Shanghai.
    with pytest.raises(ValidationError):
        domain.check_signed_not_in_future("2013-10-21", campaign, at("2013-10-20T17:30:00"),
                                          "recommendation.date")
