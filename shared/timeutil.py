"""Time rules: stored times are UTC; every rule about days and deadlines uses the campaign's zone."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


def utcnow():
    return datetime.now(UTC)


def as_utc(moment):
    """A timezone-aware UTC datetime (naive values coming back from a store are UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def local_to_utc(local, tz_name):
    """A campaign's local wall-clock time (naive, in ``tz_name``) as UTC."""
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local.replace(tzinfo=ZoneInfo(tz_name)).astimezone(UTC)


def local_day(moment, tz_name):
    """The calendar day (``YYYY-MM-DD``) of ``moment`` in the campaign's zone."""
    return as_utc(moment).astimezone(ZoneInfo(tz_name)).date().isoformat()


def iso(moment):
    """ISO 8601 in UTC with a ``Z``, the form every payload and reply uses."""
    global _last_iso
    if moment is None:
        return None
    # A group commit's votes share one ``cast_at`` object, written into each reply and each
    # event vote: the last conversion is kept by identity (a datetime is immutable).
    last = _last_iso
    if last[0] is moment:
        return last[1]
    text = as_utc(moment).isoformat().replace("+00:00", "Z")
    _last_iso = (moment, text)
    return text


_last_iso = (None, None)


def parse_iso(text):
    """Parse an ISO 8601 instant (``Z`` allowed); naive input is taken as UTC."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def canonical_time(value):
    """An instant (ISO text or datetime) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: fixed width, so
    the text sorts as the instants happened (ordering keys compare it as a string)."""
    moment = parse_iso(value) if isinstance(value, str) else as_utc(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
