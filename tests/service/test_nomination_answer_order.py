"""A late call is answered ``DeadlinePassed`` before any field is judged (issue 12, item 9).

A unit that is late must learn it is late, not that a field is wrong and worth
correcting; and a resend of a nomination filed in time is still answered after
the deadline. Each refusal is checked to leave the store as it was.
"""
import pytest

from shared import events
from shared.errors import DeadlinePassed, NotFound, ValidationError
from tests.conftest import nomination_form
from tests.service.test_nomination_service import AFTER_DEADLINE, harness  # noqa: F401

#: Field values each refused on their own before the deadline (checked below).
BAD_FIELDS = [
    {"mobile": "12345"},
    {"recommendation": {"opinion": "同意推荐", "signed_by": "王建国", "sealed": False,
                        "date": "2026-10-20"}},
    {"deeds_summary": "事" * 5000},
    {"category": "no_such_category"},
    {"nominee_name": ""},
]


def stored_state(harness):
    return sorted((doc["_id"], doc["status"], doc.get("version"), doc.get("nominee_name"))
                  for doc in harness.store.nominations.find({}))


@pytest.mark.parametrize("bad", BAD_FIELDS)
def test_each_bad_field_is_a_validation_error_before_the_deadline(harness, bad):
    with pytest.raises(ValidationError):
        harness.as_unit().submit(nomination_form(**bad))
    assert harness.stored() == 0


@pytest.mark.parametrize("bad", BAD_FIELDS)
def test_a_late_submission_with_a_bad_field_learns_it_is_late(harness, bad):
    harness.now = AFTER_DEADLINE
    with pytest.raises(DeadlinePassed) as refused:
        harness.as_unit().submit(nomination_form(**bad))
    assert "deadline" in str(refused.value)
    assert harness.stored() == 0 and harness.dispatched == []


def test_a_late_submission_missing_every_field_but_the_campaign_learns_it_is_late(harness):
    harness.now = AFTER_DEADLINE
    with pytest.raises(DeadlinePassed):
        harness.as_unit().submit({"campaign_id": "cb-test"})
    assert harness.stored() == 0


def test_without_a_usable_campaign_id_the_deadline_cannot_be_known(harness):
    harness.now = AFTER_DEADLINE
    with pytest.raises(ValidationError) as refused:
        harness.as_unit().submit(nomination_form(campaign_id={"$gt": ""}))
    assert "campaign_id" in refused.value.messages
    with pytest.raises(NotFound):
        harness.as_unit().submit(nomination_form(campaign_id="no-such-campaign"))
    assert harness.stored() == 0


def test_a_resend_after_the_deadline_still_returns_the_record(harness):
    form = nomination_form(client_ref="on-time")
    first = harness.as_unit().submit(form)
    harness.dispatched.clear()
    harness.now = AFTER_DEADLINE
    assert harness.as_unit().submit(form)["id"] == first["id"]
    assert harness.dispatched == []


def test_a_late_changed_or_malformed_resend_is_late_not_a_conflict(harness):
    harness.as_unit().submit(nomination_form(client_ref="on-time"))
    before = stored_state(harness)
    harness.now = AFTER_DEADLINE
    for changed in ({"nominee_name": "另一个单位"}, {"mobile": "12345"}):
        with pytest.raises(DeadlinePassed):
            harness.as_unit().submit(nomination_form(client_ref="on-time", **changed))
    assert stored_state(harness) == before


def test_a_late_amendment_with_bad_changes_learns_it_is_late(harness):
    record = harness.as_unit().submit(nomination_form())
    before = stored_state(harness)
    harness.now = AFTER_DEADLINE
    for changes in ({"mobile": "12345"}, {"category": "learning_star"}, {}, "not an object"):
        with pytest.raises(DeadlinePassed):
            harness.as_unit().amend(record["id"], changes)
    assert stored_state(harness) == before


def test_a_late_withdrawal_without_a_reason_learns_it_is_late(harness):
    record = harness.as_unit().submit(nomination_form())
    harness.dispatched.clear()
    before = stored_state(harness)
    # Before the deadline a missing reason is the problem ...
    with pytest.raises(ValidationError):
        harness.as_unit().withdraw(record["id"], "")
    harness.now = AFTER_DEADLINE
    # ... after it, lateness is: no reason would make the withdrawal possible.
    for reason in ("", None, "理" * 5000):
        with pytest.raises(DeadlinePassed):
            harness.as_unit().withdraw(record["id"], reason)
    assert stored_state(harness) == before
    assert events.NOMINATION_WITHDRAWN not in harness.event_types()
