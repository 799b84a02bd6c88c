"""The 公示 period in working days: real holidays and 调休 make-up days, and its properties."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from shared.campaign import validate_campaign
from shared.errors import ValidationError
from shared.workdays import (UnknownYear, is_working_day, last_known_year, nth_working_day_after,
                             publicity_period)
from tests.conftest import OPEN_CAMPAIGN

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text):
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_national_day_2013_skips_the_golden_week_and_counts_the_make_up_sunday():
    # 2013: 10月1日至7日放假调休, 9月29日（星期日）、10月12日（星期六）上班.
    last_day, ends_at = publicity_period(local("2013-09-27T15:00:00"), 5, "Asia/Shanghai")
    # 9/29 (Sun, worked), 9/30, then 10/8, 10/9, 10/10.
    assert last_day == date(2013, 10, 10)
    assert ends_at == datetime(2013, 10, 10, 16, 0, tzinfo=timezone.utc)  # local midnight


def test_spring_festival_2013_counts_the_make_up_weekend():
    # 2013: 2月9日至15日放假调休, 2月16日（星期六）、17日（星期日）上班.
    last_day, _ = publicity_period(local("2013-02-08T10:00:00"), 3, "Asia/Shanghai")
    assert last_day == date(2013, 2, 18)  # 2/16, 2/17, 2/18


def test_spring_festival_2024_make_up_sundays_count_and_the_holiday_week_does_not():
    # 2024: 2月10日至17日放假调休, 2月4日（星期日）、2月18日（星期日）上班.
    assert publicity_period(local("2024-02-02T18:00:00"), 3, "Asia/Shanghai")[0] \
        == date(2024, 2, 6)  # 2/4 (Sun), 2/5, 2/6
    assert publicity_period(local("2024-02-08T09:00:00"), 2, "Asia/Shanghai")[0] \
        == date(2024, 2, 18)  # 2/9, then nothing until the make-up Sunday 2/18


def test_national_day_2024():
    # 2024: 10月1日至7日放假调休, 9月29日（星期日）、10月12日（星期六）上班.
    assert publicity_period(local("2024-09-27T09:00:00"), 5, "Asia/Shanghai")[0] \
        == date(2024, 10, 10)
    assert publicity_period(local("2024-10-10T09:00:00"), 2, "Asia/Shanghai")[0] \
        == date(2024, 10, 12)  # 10/11 (Fri), 10/12 (Sat, worked)


def test_the_local_day_of_publication_decides_where_counting_starts():
    # 2024-09-27 17:00Z is already Saturday 28 September in Beijing: counting starts on the 29th.
    at = datetime(2024, 9, 27, 17, 0, tzinfo=timezone.utc)
    assert publicity_period(at, 1, "Asia/Shanghai")[0] == date(2024, 9, 29)
    at = datetime(2024, 9, 27, 15, 0, tzinfo=timezone.utc)  # 23:00 on Friday 27th
    assert publicity_period(at, 1, "Asia/Shanghai")[0] == date(2024, 9, 29)


def test_a_year_the_calendar_does_not_know_is_refused_not_guessed():
    with pytest.raises(UnknownYear) as raised:
        publicity_period(local(f"{last_known_year()}-12-30T09:00:00"), 10, "Asia/Shanghai")
    assert raised.value.year == last_known_year() + 1
    with pytest.raises(UnknownYear):
        is_working_day(date(2099, 1, 5))


def test_a_campaign_whose_publicity_may_fall_in_an_unknown_year_is_refused_at_load():
    document = dict(OPEN_CAMPAIGN, publicity={"working_days": 5})  # voting closes in 2099
    with pytest.raises(ValidationError) as raised:
        validate_campaign(document)
    assert list(raised.value.messages) == ["publicity.working_days"]
    assert "2099" in raised.value.messages["publicity.working_days"][0]


def test_a_campaign_with_publicity_in_known_years_loads():
    document = dict(OPEN_CAMPAIGN, nomination={"deadline": "2024-09-01T23:59:59"},
                    voting={"opens": "2024-09-02T08:00:00", "closes": "2024-09-20T20:00:00"},
                    publicity={"working_days": 5})
    assert validate_campaign(document)["publicity"] == {"working_days": 5}
    for bad in (0, 31, "5", 2.5, {"$gt": 0}):
        with pytest.raises(ValidationError) as raised:
            validate_campaign(dict(document, publicity={"working_days": bad}))
        assert "publicity.working_days" in raised.value.messages


KNOWN_DAYS = st.dates(min_value=date(2005, 1, 1), max_value=date(2025, 11, 30))


@settings(max_examples=200, deadline=None)
@given(day=KNOWN_DAYS, count=st.integers(min_value=1, max_value=30),
       hour=st.integers(min_value=0, max_value=23))
def test_the_period_holds_exactly_n_working_days_and_ends_at_local_midnight(day, count, hour):
    published = datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)
    last_day, ends_at = publicity_period(published, count, "Asia/Shanghai")
    assert last_day > day
    assert is_working_day(last_day)
    between = [day + timedelta(days=n) for n in range(1, (last_day - day).days + 1)]
    assert sum(is_working_day(d) for d in between) == count
    local_end = ends_at.astimezone(SHANGHAI)
    assert (local_end.date(), local_end.hour, local_end.minute) == (
        last_day + timedelta(days=1), 0, 0)


@settings(max_examples=100, deadline=None)
@given(day=KNOWN_DAYS, count=st.integers(min_value=1, max_value=29))
def test_one_more_working_day_ends_later(day, count):
    assert nth_working_day_after(day, count + 1) > nth_working_day_after(day, count)
