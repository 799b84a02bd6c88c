"""The vote rules, each a plugin (entry-point group ``pingxuan.vote_rules``).

A rule is ``rule(vote, history, settings)``: a pure function of the vote
(:class:`services.voting.domain.Vote`), what the store knows of the voter's day
and of the address's current window (:class:`~services.voting.domain.History`) and
the campaign's voting settings (:class:`~services.voting.domain.VotingSettings`).
It returns nothing or raises the contract's error. A new rule is a module with
such a function and one line in ``pyproject.toml``; a campaign lists the rules it
applies, in order, under ``voting.rules``.
"""
from shared.errors import DuplicateVote, NotFound, RateLimited, VoteLimitReached, VotingClosed
from shared.timeutil import iso


def voting_window(vote, history, settings):
    """網絡投票 runs from ``voting.opens`` (inclusive) to ``voting.closes`` (exclusive)."""
    if vote.cast_at < settings.opens:
        raise VotingClosed(f"voting of campaign {settings.campaign_id} opens at "
                           f"{iso(settings.opens)}")
    if vote.cast_at >= settings.closes:
        raise VotingClosed(f"voting of campaign {settings.campaign_id} closed at "
                           f"{iso(settings.closes)}")


def candidate_on_ballot(vote, history, settings):
    """Only a nomination accepted in review (and not disqualified or withdrawn) gets votes."""
    if vote.candidate is None:
        raise NotFound(f"candidate {vote.candidate_id} is not on the ballot of campaign "
                       f"{settings.campaign_id}")


def one_vote_per_candidate_per_day(vote, history, settings):
    """One vote per voter per candidate per day in the campaign's zone.

    The store enforces it too (the vote's ``_id`` is voter|candidate|day), so
    it holds under concurrency; this rule answers early and explains.
    """
    if vote.candidate_id in history.candidates_today:
        raise DuplicateVote(f"this voter already voted for candidate {vote.candidate_id} on "
                            f"{vote.day} ({settings.timezone})")


def daily_limit(vote, history, settings):
    """At most ``voting.daily_limit`` votes per voter per day (no cap when it is not set)."""
    if settings.daily_limit is not None and history.votes_today >= settings.daily_limit:
        raise VoteLimitReached(f"this voter has cast the {settings.daily_limit} votes allowed "
                               f"on {vote.day} ({settings.timezone})")


def ip_throttle(vote, history, settings):
    """At most ``voting.ip_limit`` accepted votes from one address per ``ip_window_seconds``
    (fixed windows aligned to the epoch: one counter per address and window)."""
    if history.ip_votes >= settings.ip_limit:
        raise RateLimited(f"too many votes from this address: {settings.ip_limit} in "
                          f"{int(settings.ip_window.total_seconds())} s; try again later")
