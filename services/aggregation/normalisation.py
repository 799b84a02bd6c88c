"""Vote normalisation methods (plugins ``pingxuan.vote_normalisation``): pure functions.

Each maps ``{candidate_id: votes}`` of one category to ``{candidate_id: score}``
on 0–100. Pure and deterministic (the published hash's recipe relies on it):
the same counts give the same scores, whatever the order. Scores are exact
fractions (``Fraction``), so that composites are computed as on paper and only
the published rounding rounds them.
"""
from fractions import Fraction


def top_100(votes):
    """The usual Chinese rule: the candidate with the most votes scores 100, others pro rata."""
    top = max(votes.values(), default=0)
    return {cid: (Fraction(100 * count, top) if top else Fraction(0))
            for cid, count in votes.items()}


def min_max(votes):
    """Fewest votes 0, most votes 100, linear between.

    All equal: everyone 100 — unless nobody has a vote, when everyone scores 0
    as with the other methods (no votes is no public support, not full marks).
    """
    low, high = min(votes.values(), default=0), max(votes.values(), default=0)
    if high == low:
        return {cid: Fraction(100 if high > 0 else 0) for cid in votes}
    return {cid: Fraction(100 * (count - low), high - low) for cid, count in votes.items()}


def share(votes):
    """Each candidate's share of the category's votes, in percent."""
    total = sum(votes.values())
    return {cid: (Fraction(100 * count, total) if total else Fraction(0))
            for cid, count in votes.items()}
