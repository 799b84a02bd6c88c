"""What looks like 刷票 (vote stuffing): explainable findings for a person to look at.

Each rule is a plugin of ``pingxuan.suspicion_rules``: ``rule(votes, settings)``
returning a list of :class:`Finding`. ``votes`` are the counted (not voided)
votes of one campaign as :class:`SeenVote`; ``settings`` is the campaign's
:class:`SuspicionSettings`. A rule only suggests: nothing is voided by it.

Voting keeps no plain address, only a keyed hash of it and its /24 (IPv4) or
/48 (IPv6) network, and the user agent as sent (at most 200 characters): the
rules work on the network, which is what a burst from one place shows.

A finding's ``candidate_id``, ``network``, ``from`` and ``to`` (half-open,
``from`` ≤ cast_at < ``to``, to the millisecond as stored) select exactly the votes it counts whenever the rule
can say so with those keys; ``vote_ids`` always lists them, for a void by ids.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.timeutil import iso

#: Applied when the campaign's ``voting.suspicion.rules`` names none, in this order.
DEFAULT_RULES = ("network_burst", "candidate_hour_spike", "shared_user_agent")
DEFAULTS = {
    # 50 votes from one /24 within 10 minutes: far more than a household or an office
    # behind one address casts, and well under what a script casts.
    "burst_votes": 50, "burst_minutes": 10,
    # An hour with 5 times the candidate's average hour, and at least 30 votes.
    "spike_factor": 5.0, "spike_min_votes": 30,
    # 20 different voters with the same user agent from one network within 10 minutes.
    "agent_voters": 20, "agent_minutes": 10,
}
HOUR = timedelta(hours=1)
#: Stored times have millisecond precision (BSON dates), and so do a query's times.
MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class SeenVote:
    """A counted vote as the rules see it (the voter only as its keyed hash)."""

    vote_id: str
    candidate_id: str
    cast_at: datetime
    ip_net: str
    user_agent: str | None
    voter: str


@dataclass(frozen=True)
class SuspicionSettings:
    rules: tuple
    burst_votes: int
    burst_minutes: int
    spike_factor: float
    spike_min_votes: int
    agent_voters: int
    agent_minutes: int

    @classmethod
    def of(cls, campaign):
        given = (campaign.document.get("voting") or {}).get("suspicion") or {}
        values = {name: given.get(name, default) for name, default in DEFAULTS.items()}
        return cls(rules=tuple(given.get("rules") or DEFAULT_RULES), **values)


@dataclass
class Finding:
    rule: str
    evidence: str
    votes: int
    vote_ids: list = field(default_factory=list)
    candidate_id: str | None = None
    network: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    threshold: dict = field(default_factory=dict)

    def reply(self):
        return {"rule": self.rule, "evidence": self.evidence, "votes": self.votes,
                "candidate_id": self.candidate_id, "network": self.network,
                "from": iso(self.start), "to": iso(self.end), "threshold": self.threshold,
                "vote_ids": sorted(self.vote_ids)}


def findings(votes, settings, rules):
    """Every rule of the campaign over the counted votes, most votes first."""
    found = []
    for name in settings.rules:
        found.extend(rules[name](votes, settings))
    found.sort(key=lambda f: (-f.votes, f.rule, f.candidate_id or "", f.network or "",
                              f.start or datetime.min))
    return found


def clusters(votes, window, enough):
    """Runs of ``votes`` (sorted by time) in which some ``window`` holds ``enough`` of them.

    ``enough(run)`` says whether the votes of one window are too many. Overlapping
    windows that are too many merge into one run, so a long burst is one finding.
    """
    runs, current, start = [], None, 0
    for end in range(len(votes)):
        while votes[end].cast_at - votes[start].cast_at > window:
            start += 1
        if enough(votes[start:end + 1]):
            if current is not None and start <= current[1]:
                current[1] = end
            else:
                current = [start, end]
                runs.append(current)
    return [votes[first:last + 1] for first, last in runs]


def _span(run):
    """``from``/``to`` that hold exactly the run (``to`` exclusive, one millisecond on).

    The run is every vote of its group between its first and its last, so a void
    of that span (with the group's keys) takes exactly these votes.
    """
    return run[0].cast_at, run[-1].cast_at + MILLISECOND


def _only_candidate(run):
    candidates = {vote.candidate_id for vote in run}
    return candidates.pop() if len(candidates) == 1 else None


def _by_candidate(run):
    counts = defaultdict(int)
    for vote in run:
        counts[vote.candidate_id] += 1
    return "、".join(f"{cid} {n} 票" for cid, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def network_burst(votes, settings):
    """A burst from one network (/24, /48): ``burst_votes`` or more within ``burst_minutes``."""
    window = timedelta(minutes=settings.burst_minutes)
    by_network = defaultdict(list)
    for vote in votes:
        by_network[vote.ip_net].append(vote)
    out = []
    for network, group in sorted(by_network.items()):
        group.sort(key=lambda v: v.cast_at)
        for run in clusters(group, window, lambda w: len(w) >= settings.burst_votes):
            start, end = _span(run)
            out.append(Finding(
                rule="network_burst", votes=len(run), vote_ids=[v.vote_id for v in run],
                candidate_id=_only_candidate(run), network=network, start=start, end=end,
                threshold={"burst_votes": settings.burst_votes,
                           "burst_minutes": settings.burst_minutes},
                evidence=(f"{len(run)} votes from network {network} between {iso(start)} and "
                          f"{iso(end)} ({_by_candidate(run)}); the rule flags "
                          f"{settings.burst_votes} or more votes from one network within "
                          f"{settings.burst_minutes} minutes")))
    return out


def candidate_hour_spike(votes, settings):
    """An hour of one candidate far above the candidate's own average hour.

    The average is over the candidate's other hours from its first to its last
    vote, quiet hours included: a steady candidate has a pattern, a stuffed hour
    stands out of it. Flagged at ``spike_factor`` times that average and at least
    ``spike_min_votes`` votes.
    """
    by_candidate = defaultdict(lambda: defaultdict(list))
    for vote in votes:
        hour = vote.cast_at.replace(minute=0, second=0, microsecond=0)
        by_candidate[vote.candidate_id][hour].append(vote)
    out = []
    for cid, hours in sorted(by_candidate.items()):
        first, last = min(hours), max(hours)
        span = int((last - first) / HOUR) + 1
        total = sum(len(v) for v in hours.values())
        for hour, in_hour in sorted(hours.items()):
            others = span - 1
            average = (total - len(in_hour)) / others if others else 0.0
            needed = max(settings.spike_min_votes, settings.spike_factor * average)
            if len(in_hour) < needed:
                continue
            out.append(Finding(
                rule="candidate_hour_spike", votes=len(in_hour),
                vote_ids=[v.vote_id for v in in_hour], candidate_id=cid,
                start=hour, end=hour + HOUR,
                threshold={"spike_factor": settings.spike_factor,
                           "spike_min_votes": settings.spike_min_votes},
                evidence=(f"candidate {cid} got {len(in_hour)} votes in the hour from "
                          f"{iso(hour)}, against {average:.1f} votes in an average hour of "
                          f"its other {others} hours; the rule flags an hour with at least "
                          f"{settings.spike_factor:g} times the candidate's average and at "
                          f"least {settings.spike_min_votes} votes")))
    return out


def shared_user_agent(votes, settings):
    """Many voters behind one user agent and network: ``agent_voters`` different voters
    within ``agent_minutes`` (a phone farm or a script changing numbers)."""
    window = timedelta(minutes=settings.agent_minutes)
    groups = defaultdict(list)
    for vote in votes:
        if vote.user_agent:
            groups[vote.ip_net, vote.user_agent].append(vote)
    out = []
    for (network, agent), group in sorted(groups.items()):
        group.sort(key=lambda v: v.cast_at)
        enough = lambda w: len({v.voter for v in w}) >= settings.agent_voters  # noqa: E731
        for run in clusters(group, window, enough):
            start, end = _span(run)
            voters = len({v.voter for v in run})
            out.append(Finding(
                rule="shared_user_agent", votes=len(run), vote_ids=[v.vote_id for v in run],
                candidate_id=_only_candidate(run), network=network, start=start, end=end,
                threshold={"agent_voters": settings.agent_voters,
                           "agent_minutes": settings.agent_minutes},
                evidence=(f"{voters} different voters cast {len(run)} votes from network "
                          f"{network} with the same user agent ({agent[:80]}) between "
                          f"{iso(start)} and {iso(end)} ({_by_candidate(run)}); the rule "
                          f"flags {settings.agent_voters} or more voters behind one user "
                          f"agent and network within {settings.agent_minutes} minutes. A "
                          "void by network and time would take other user agents' votes "
                          "too: void these by vote_ids")))
    return out
