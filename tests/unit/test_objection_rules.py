"""The pure rules of objections (services/aggregation/objections.py)."""
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from services.aggregation import domain, objections
from shared.campaign import Campaign
from shared.errors import DeadlinePassed, InvalidState, NotFound
from tests.conftest import campaign_document

KEY = "test-key"


def revision(number, seats, at="2024-09-27T03:00:00"):
    return {"revision": number, "seats": {"advanced_unit": [[cid, "agency"] for cid in seats]},
            "at": datetime.fromisoformat(at).replace(tzinfo=timezone.utc)}


def campaign(**publicity):
    document = campaign_document(
        nomination={"deadline": "2024-09-01T23:59:59"},
        voting={"opens": "2024-09-02T08:00:00", "closes": "2024-09-20T20:00:00"},
        **({"publicity": publicity} if publicity else {}))
    return Campaign(document)


def test_a_candidate_is_on_the_list_since_the_revision_that_put_it_there():
    history = [revision(1, ["A01", "A03"]), revision(2, ["A01", "A09"]),
               revision(3, ["A01", "A09", "A03"])]
    assert objections.revision_on_list_since(history, "A01") == 1
    assert objections.revision_on_list_since(history, "A09") == 2
    assert objections.revision_on_list_since(history, "A03") == 3  # left and came back
    assert objections.revision_on_list_since(history, "A12") is None
    assert objections.revision_on_list_since(history[:2], "A03") is None


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=200))
def test_the_objection_id_is_a_receipt_the_same_objection_always_gets(name, grounds):
    first = objections.objection_id(KEY, "cb", "A01", "13812345678", name, grounds)
    assert first == objections.objection_id(KEY, "cb", "A01", "13812345678", name, grounds)
    assert first != objections.objection_id(KEY, "cb", "A02", "13812345678", name, grounds)
    assert first != objections.objection_id(KEY, "cb", "A01", "13912345678", name, grounds)
    assert first != objections.objection_id("other-key", "cb", "A01", "13812345678", name,
                                             grounds)
    assert first.startswith("obj-") and len(first) == 20


def test_the_mobile_hash_is_keyed():
    assert objections.mobile_hash("a", "13812345678") != objections.mobile_hash(
        "b", "13812345678")
    assert "13812345678" not in objections.mobile_hash("a", "13812345678")


def test_when_an_objection_is_taken():
    state = {"phase": domain.OPEN, "revisions": []}
    with pytest.raises(InvalidState):
        objections.check_objection_accepted(campaign(working_days=5), state, "A01",
                                            datetime(2024, 9, 28, tzinfo=timezone.utc))
    state = {"phase": domain.PUBLISHED, "revisions": [revision(1, ["A01"])]}
    inside = datetime(2024, 10, 10, 15, 59, tzinfo=timezone.utc)
    after = datetime(2024, 10, 10, 16, 0, tzinfo=timezone.utc)
    assert objections.check_objection_accepted(campaign(working_days=5), state, "A01",
                                               inside) == 1
    with pytest.raises(DeadlinePassed):
        objections.check_objection_accepted(campaign(working_days=5), state, "A01", after)
    with pytest.raises(NotFound):
        objections.check_objection_accepted(campaign(working_days=5), state, "A02", inside)
    # Without publicity: until finalize.
    assert objections.check_objection_accepted(campaign(), state, "A01",
                                               datetime(2030, 1, 1, tzinfo=timezone.utc)) == 1
    with pytest.raises(DeadlinePassed):
        objections.check_objection_accepted(campaign(), dict(state, phase=domain.FINALIZED),
                                            "A01", inside)


def test_finalize_waits_for_verdicts_and_the_latest_period():
    state = {"phase": domain.PUBLISHED,
             "revisions": [revision(1, ["A01"]), revision(2, ["A09"], "2024-10-08T02:00:00")]}
    over_for_1 = datetime(2024, 10, 10, 16, 0, tzinfo=timezone.utc)
    over_for_2 = datetime(2024, 10, 14, 16, 0, tzinfo=timezone.utc)
    with pytest.raises(InvalidState):
        objections.check_finalizable_after_publicity(campaign(working_days=5), state, 0,
                                                     over_for_1)
    with pytest.raises(InvalidState):
        objections.check_finalizable_after_publicity(campaign(working_days=5), state, 1,
                                                     over_for_2)
    objections.check_finalizable_after_publicity(campaign(working_days=5), state, 0, over_for_2)
    objections.check_finalizable_after_publicity(campaign(), state, 0, over_for_1)


def test_the_verdict_notice_carries_the_templates_words_never_the_reason():
    record = {"_id": "obj-x", "status": "rejected", "reason": "自由文本"}
    params = objections.verdict_notice_params(campaign(), record, "张三")
    assert params["verdict"] == "经核实，异议不成立" and "自由文本" not in str(params)


def test_the_public_status_names_neither_objector_nor_grounds():
    record = {"_id": "obj-x", "candidate_id": "A01", "status": "received",
              "received_at": datetime(2024, 10, 8, tzinfo=timezone.utc), "grounds": "内容",
              "objector": {"name": "张三", "mobile": "13812345678"}}
    status = objections.public_status(record, "某单位")
    assert "张三" not in str(status) and "138" not in str(status) and "内容" not in str(status)
