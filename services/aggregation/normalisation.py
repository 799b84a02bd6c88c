"""Vote normalisation methods (plugins ``pingxuan.vote_normalisation``): pure functions.

Each maps ``{candidate_id: votes}`` of one category to ``{candidate_id: score}``
on 0–100. Pure and deterministic (the published hash's recipe relies on it):
the same counts give the same scores, bit for bit, whatever the order.
"""


def top_100(votes):
    """The usual Chinese rule: the candidate with the most votes scores 100, others pro rata."""
    top = max(votes.values(), default=0)
    return {cid: (100 * count / top if top else 0.0) for cid, count in votes.items()}


def min_max(votes):
    """Fewest votes 0, most votes 100, linear between.

    All equal: everyone 100 — unless nobody has a vote, when everyone scores 0
    as with the other methods (no votes is no public support, not full marks).
    """
    low, high = min(votes.values(), default=0), max(votes.values(), default=0)
    if high == low:
        return {cid: (100.0 if high > 0 else 0.0) for cid in votes}
    return {cid: 100 * (count - low) / (high - low) for cid, count in votes.items()}


def share(votes):
    """Each candidate's share of the category's votes, in percent."""
    total = sum(votes.values())
    return {cid: (100 * count / total if total else 0.0) for cid, count in votes.items()}
