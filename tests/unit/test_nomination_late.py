"""After the deadline only lateness is judged (issue 12, item 9): the pure rules.

``late_submission`` answers a submission after the deadline: the record for an exact
resend of a nomination filed in time, ``DeadlinePassed`` for anything else, whatever the
fields hold. ``campaign_id_of`` reads the one field the deadline depends on.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.nomination import domain
from services.nomination.schemas import Nomination
from shared.campaign import Campaign
from shared.errors import DeadlinePassed, ValidationError
from tests.conftest import at, campaign_document, nomination_form

CAMPAIGN = Campaign(campaign_document())
ON_TIME = nomination_form(client_ref="on-time")
EXISTING = dict(ON_TIME, _id="nom-1", unit="城关镇党委", status="submitted", version=1,
                fingerprint=domain.fingerprint(Nomination().load(ON_TIME)))

#: Any JSON-like value, including the shapes an injection or a broken client would send.
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
FIELDS = st.sampled_from(sorted(Nomination().fields)) | st.text(max_size=12)


def test_deadline_passed_is_strictly_after_the_last_second():
    assert not domain.deadline_passed(CAMPAIGN, at("2099-10-30T15:59:59"))
    assert domain.deadline_passed(CAMPAIGN, at("2099-10-30T15:59:59.000001"))


def test_an_exact_resend_after_the_deadline_is_answered_with_the_record():
    assert domain.late_submission(EXISTING, dict(ON_TIME), CAMPAIGN) is EXISTING


def test_a_resend_written_differently_but_loading_the_same_is_still_a_resend():
    # The fingerprint is of the validated form: surrounding spaces are stripped on load.
    again = dict(ON_TIME, nominee_name=f"  {ON_TIME['nominee_name']} ")
    assert domain.late_submission(EXISTING, again, CAMPAIGN) is EXISTING


@settings(max_examples=200, deadline=None)
@given(changes=st.dictionaries(FIELDS, VALUES, min_size=1, max_size=4))
def test_anything_else_after_the_deadline_is_late_whatever_its_fields(changes):
    submission = dict(ON_TIME, **changes)
    resend = False
    try:
        resend = domain.fingerprint(Nomination().load(submission)) == EXISTING["fingerprint"]
    except Exception:  # noqa: BLE001  (malformed: cannot be a resend)
        pass
    for existing in (None, EXISTING):
        if existing is EXISTING and resend:
            assert domain.late_submission(existing, submission, CAMPAIGN) is EXISTING
            continue
        with pytest.raises(DeadlinePassed) as refused:
            domain.late_submission(existing, submission, CAMPAIGN)
        assert "deadline of campaign cb-test" in str(refused.value)


@pytest.mark.parametrize("submission", [None, [], "cb-test", {"campaign_id": {"$gt": ""}},
                                        {"campaign_id": ""}, {}])
def test_without_a_usable_campaign_id_the_deadline_cannot_be_read(submission):
    with pytest.raises(ValidationError):
        domain.campaign_id_of(submission)


def test_the_campaign_id_is_read_from_an_otherwise_broken_submission():
    assert domain.campaign_id_of({"campaign_id": "cb-test", "mobile": 5}) == "cb-test"
    assert domain.client_ref_of({"client_ref": {"$ne": None}}) is None
    assert domain.client_ref_of({"client_ref": "r-1"}) == "r-1"
