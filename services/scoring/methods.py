"""Panel scoring methods (plugins ``pingxuan.panel_methods``): pure functions.

Each takes ``scores``, a mapping ``judge_id -> {candidate_id: total}`` of the
weighted totals each judge gave, the score range ``(low, high)`` and options,
and returns ``{candidate_id: panel_score}`` for every candidate scored by at
least one judge. Recused judges simply have no entry for that candidate.
"""
import statistics


def _by_candidate(scores):
    columns = {}
    for judge_scores in scores.values():
        for candidate_id, total in judge_scores.items():
            columns.setdefault(candidate_id, []).append(total)
    return columns


def mean(scores, score_range=(0, 100), options=None):
    """Arithmetic mean of the judges who scored the candidate."""
    return {cid: statistics.fmean(values) for cid, values in _by_candidate(scores).items()}


def trimmed_mean(scores, score_range=(0, 100), options=None):
    """Drop the highest and the lowest score when at least ``trim_min_judges`` scored."""
    min_judges = (options or {}).get("trim_min_judges", 5)
    result = {}
    for cid, values in _by_candidate(scores).items():
        ordered = sorted(values)
        if len(ordered) >= min_judges:
            ordered = ordered[1:-1]
        result[cid] = statistics.fmean(ordered)
    return result


def z_score(scores, score_range=(0, 100), options=None):
    """Standardise each judge's scores, average per candidate, map back onto the range.

    A lenient or harsh judge (a constant shift of all their scores) changes
    nothing. A judge whose scores are all equal contributes 0 (the panel's
    middle). The mean z is mapped linearly so that z = ±3 are the range's ends.
    """
    low, high = score_range
    middle, half_span = (low + high) / 2, (high - low) / 2
    z_columns = {}
    for judge_scores in scores.values():
        values = list(judge_scores.values())
        centre = statistics.fmean(values) if values else 0
        spread = statistics.pstdev(values) if len(values) > 1 else 0
        for cid, total in judge_scores.items():
            z = (total - centre) / spread if spread > 0 else 0.0
            z_columns.setdefault(cid, []).append(z)
    return {cid: min(high, max(low, middle + statistics.fmean(zs) / 3 * half_span))
            for cid, zs in z_columns.items()}
