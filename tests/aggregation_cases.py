"""Shared cases of the aggregation tests: 40 advanced-unit candidates computed by hand.

Votes are multiples of 200 and panel scores multiples of 10; the most votes
(R01, 2,000) score 100 under ``top_100``, so with weights 0.3/0.7::

    composite = 0.3 × (votes / 20) + 0.7 × panel = 3 × (votes / 200) + 7 × (panel / 10)

The composites below were worked out by hand from that formula.
"""
from datetime import datetime, timedelta, timezone

SUBMISSIONS_START = datetime(2099, 10, 10, 1, 0, tzinfo=timezone.utc)

#: (candidate id, org type, votes, panel score, composite by hand, submission minute)
FORTY = [
    ("A01", "agency", 1800, 90, 90, 1),
    ("A02", "agency", 1600, 90, 87, 2),   # ties S01 (87, panel 90): submitted earlier
    ("A03", "agency", 1400, 90, 84, 3),
    ("A04", "agency", 1000, 90, 78, 4),
    ("A05", "agency", 1200, 80, 74, 5),
    ("A06", "agency", 800, 80, 68, 6),
    ("A07", "agency", 1000, 70, 64, 7),
    ("A08", "agency", 400, 80, 62, 9),    # ties A09 at 62: the higher panel score ranks first,
    ("A09", "agency", 1800, 50, 62, 8),   # though A09 was submitted earlier
    ("A10", "agency", 600, 70, 58, 10),
    ("A11", "agency", 1200, 50, 53, 11),
    ("A12", "agency", 200, 60, 45, 12),
    ("A13", "agency", 0, 60, 42, 13),
    ("A14", "agency", 600, None, None, 14),  # no panel score: not ranked, cannot be selected
    ("S01", "school", 1600, 90, 87, 15),
    ("S02", "school", 800, 90, 75, 16),
    ("S03", "school", 1200, 80, 74, 17),  # the best reserve overall after the 公示 list
    ("S04", "school", 400, 70, 55, 18),
    ("S05", "school", 200, 50, 38, 19),
    ("E01", "enterprise", 600, 80, 65, 20),
    ("E02", "enterprise", 1400, 60, 63, 21),
    ("C01", "community", 400, 90, 69, 22),
    ("C02", "community", 1000, 80, 71, 23),
    ("C03", "community", 0, 90, 63, 24),
    ("R01", "rural", 2000, 80, 86, 25),
    ("R02", "rural", 1800, 80, 83, 26),
    ("R03", "rural", 1200, 90, 81, 27),
    ("R04", "rural", 1600, 80, 80, 28),
    ("R05", "rural", 1000, 90, 78, 29),
    ("R06", "rural", 1400, 80, 77, 30),
    ("R07", "rural", 800, 90, 75, 31),
    ("R08", "rural", 600, 90, 72, 33),    # ties R09 at 72 and panel 90: R09 submitted earlier
    ("R09", "rural", 600, 90, 72, 32),
    ("R10", "rural", 1600, 60, 66, 34),
    ("R11", "rural", 400, 80, 62, 35),
    ("R12", "rural", 1200, 60, 60, 36),
    ("R13", "rural", 200, 80, 59, 37),
    ("R14", "rural", 800, 60, 54, 38),
    ("R15", "rural", 0, 70, 49, 39),
    ("R16", "rural", 400, 50, 41, 40),
]

#: The publicity list by hand: slots agency 8, school 2, enterprise 1, community 1, rural 8.
SELECTED_BY_HAND = {
    "agency": ["A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08"],
    "school": ["S01", "S02"],
    "enterprise": ["E01"],
    "community": ["C02"],
    "rural": ["R01", "R02", "R03", "R04", "R05", "R06", "R07", "R09"],
}
#: A03 disqualified after 公示: the next agency (A09, 62) moves up — not S03 (74) nor R08 (72).
DISQUALIFIED_AFTER_PUBLISH = "A03"
PROMOTED_BY_HAND = "A09"


def submitted_at(minute):
    return SUBMISSIONS_START + timedelta(minutes=minute)


def candidate_facts(cid, org_type, minute, category="advanced_unit", status="accepted"):
    return {"candidate_id": cid, "category": category, "org_type": org_type,
            "nominee_name": f"{cid}单位党组织", "nominee_unit": f"{cid}单位",
            "submitted_at": submitted_at(minute).isoformat().replace("+00:00", "Z"),
            "status": status, "disqualification_reason": None}


def forty_live():
    """The 40 as the domain's ``live`` mapping (panel closed)."""
    return {
        "candidates": {cid: candidate_facts(cid, org, minute)
                       for cid, org, _, _, _, minute in FORTY},
        "votes": {cid: votes for cid, _, votes, _, _, _ in FORTY},
        "judge_scores": {},
        "panels": {"advanced_unit": {
            "closed": True, "closed_key": "9999",
            "panel_scores": {cid: (None if panel is None else float(panel))
                             for cid, _, _, panel, _, _ in FORTY}}},
    }
