"""Panel scoring methods (plugins ``pingxuan.panel_methods``): pure functions.

Each takes ``scores``, a mapping ``judge_id -> {candidate_id: total}`` of the
weighted totals each judge gave, the score range ``(low, high)`` of a total and
options (the campaign's ``panel_options``), and returns ``{candidate_id:
panel_score}`` for every candidate scored by at least one judge. A recused
judge simply has no entry for that candidate. Results do not depend on the
order of judges or candidates (every sum is ``math.fsum``, exactly rounded).
"""
import statistics

#: The campaign schema's default for ``panel_options.trim_min_judges``.
DEFAULT_TRIM_MIN_JUDGES = 5
#: Dropping the highest and the lowest of fewer than three scores would leave nothing.
SMALLEST_TRIMMED_PANEL = 3
#: A judge's totals that differ by less than this share of the range are equal: weighted sums
#: in floating point (0.3 * 70 + 0.7 * 90 = 83.99999999999999) must not become a preference.
SPREAD_TOLERANCE = 1e-9
#: z-score: a mean z of ±Z_AT_RANGE_ENDS lands on the ends of the range.
Z_AT_RANGE_ENDS = 3


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
    """Drop the highest and the lowest score when at least ``trim_min_judges`` scored.

    One of tied extremes is dropped, not all of them. Below three scores
    nothing is dropped whatever the option says.
    """
    min_judges = (options or {}).get("trim_min_judges") or DEFAULT_TRIM_MIN_JUDGES
    min_judges = max(min_judges, SMALLEST_TRIMMED_PANEL)
    result = {}
    for cid, values in _by_candidate(scores).items():
        ordered = sorted(values)
        if len(ordered) >= min_judges:
            ordered = ordered[1:-1]
        result[cid] = statistics.fmean(ordered)
    return result


def z_score(scores, score_range=(0, 100), options=None):
    """Standardise each judge's totals, average per candidate, map back onto the range.

    Each judge's totals become z = (total - judge's mean) / judge's population
    standard deviation, over the candidates that judge scored. So a lenient or
    harsh judge (a constant shift of all their totals) or one who spreads
    totals wider changes nothing. A judge who gave every candidate the same
    total (or scored only one) expresses no preference: z = 0 for each. The
    mean z of a candidate is mapped linearly so that z = 0 is the middle of the
    range and z = ±3 its ends, and clamped to the range.
    """
    low, high = score_range
    middle, half_span = (low + high) / 2, (high - low) / 2
    tolerance = SPREAD_TOLERANCE * (high - low)
    z_columns = {}
    for judge_scores in scores.values():
        values = list(judge_scores.values())
        if not values:
            continue
        centre = statistics.fmean(values)
        spread = statistics.pstdev(values)
        for cid, total in judge_scores.items():
            z = (total - centre) / spread if spread > tolerance else 0.0
            z_columns.setdefault(cid, []).append(z)
    return {cid: min(high, max(low, middle + statistics.fmean(zs) / Z_AT_RANGE_ENDS * half_span))
            for cid, zs in z_columns.items()}
