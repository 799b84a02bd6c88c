"""Working days of the PRC calendar (statutory holidays and 调休 make-up days), for the 公示 period.

The calendar comes from ``chinesecalendar``, which the State Council's yearly notice feeds;
a year it does not know yet is never guessed: :class:`UnknownYear` names it.
"""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from shared.timeutil import UTC, as_utc


class UnknownYear(ValueError):
    """The holiday calendar has no data for ``year`` (the State Council has not published it,
    or the installed ``chinesecalendar`` predates it)."""

    def __init__(self, year):
        super().__init__(f"the holiday calendar knows no data for {year} (it covers "
                         f"{first_known_year()}–{last_known_year()}); install a newer "
                         "chinesecalendar")
        self.year = year


def first_known_year():
    return min(chinese_calendar.holidays).year


def last_known_year():
    return max(max(chinese_calendar.holidays), max(chinese_calendar.workdays)).year


def check_years_known(first, last):
    """Raise :class:`UnknownYear` for the first year in ``first..last`` the calendar lacks."""
    for year in range(first, last + 1):
        if not first_known_year() <= year <= last_known_year():
            raise UnknownYear(year)


def is_working_day(day):
    """A day people work: Monday–Friday that is no holiday, or a weekend 调休 day."""
    check_years_known(day.year, day.year)
    return chinese_calendar.is_workday(day)


def nth_working_day_after(day, count):
    """The ``count``-th working day strictly after ``day`` (``count`` ≥ 1)."""
    if count < 1:
        raise ValueError("count must be 1 or more")
    current = day
    while count:
        current += timedelta(days=1)
        if is_working_day(current):
            count -= 1
    return current


def publicity_period(published_at, working_days, tz_name):
    """公示 period of a list published at ``published_at`` (an instant).

    It runs from publication through the end of the ``working_days``-th working day after the
    local day of publication. Returns ``(last_day, ends_at)``: the last local day and the UTC
    instant the period ends (local midnight after that day), objections taken before it.
    """
    zone = ZoneInfo(tz_name)
    published_day = as_utc(published_at).astimezone(zone).date()
    last_day = nth_working_day_after(published_day, working_days)
    ends_at = datetime.combine(last_day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return last_day, ends_at


def local_date(moment, tz_name):
    return as_utc(moment).astimezone(ZoneInfo(tz_name)).date()
