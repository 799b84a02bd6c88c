from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from shared.timeutil import iso

ZONES = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=8))])


@given(st.lists(st.datetimes(timezones=ZONES), min_size=1, max_size=6), st.data())
def test_iso_answers_each_moment_as_converted_afresh_whatever_came_before(moments, data):
    # The same objects again and again (as a group's votes share one), and equal copies.
    for moment in moments + [data.draw(st.sampled_from(moments)) for _ in moments]:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        expected = aware.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        assert iso(moment) == expected
        assert iso(moment.replace()) == expected


def test_iso_of_nothing_is_nothing():
    assert iso(datetime(2013, 11, 5, tzinfo=timezone.utc)) == "2013-11-05T00:00:00Z"
    assert iso(None) is None
