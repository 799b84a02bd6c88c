"""What ``pingxuan_one_time_codes_total`` says during an SMS outage (the alert reads it).

notification answers a one-time code request ``queued`` when its SMS channel's first
attempt failed (it will retry): the voter has no code yet. voting counts that as
``send_delayed``, apart from ``sent``; an unreachable notification is ``send_failed``.
deploy/prometheus/alerts.yml pages on both (OneTimeCodesNotDelivered).
"""
import pytest

from tests.service.test_voting_service import (MOBILE, answer, harness, request)  # noqa: F401

CODES = "pingxuan_one_time_codes_total"


def ask_for_code(harness, sender, mobile=MOBILE):
    service = harness.service()
    service.send_code = sender
    return answer(service.api_send_code(
        request("POST", "/api/codes", {"campaign_id": "cb-test", "mobile": mobile})))


@pytest.mark.parametrize("reply, outcome", [
    ({"message_id": "m-1", "status": "sent"}, "sent"),
    ({"message_id": "m-1", "status": "queued"}, "send_delayed"),
])
def test_a_code_notification_only_queued_is_counted_apart_from_a_sent_one(harness, reply,
                                                                          outcome):
    status, _ = ask_for_code(harness, lambda *args: reply)
    assert status == 200
    other = {"sent": "send_delayed", "send_delayed": "sent"}[outcome]
    assert harness.metric(CODES, outcome=outcome) == 1
    assert harness.metric(CODES, outcome=other) == 0


def test_an_unreachable_notification_is_a_failed_send_and_keeps_no_code(harness):
    def down(*args):
        raise TimeoutError("notification did not answer")

    status, _ = ask_for_code(harness, down)
    assert status == 503
    assert harness.metric(CODES, outcome="send_failed") == 1
    assert harness.metric(CODES, outcome="sent") == 0
    assert harness.store.codes.count_documents({"code_mac": {"$exists": True}}) == 0
