"""The clock dependency: real time, or a rehearsal clock that every instance agrees on."""
import time
from datetime import datetime

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared.timeutil import UTC, parse_iso


def _instant(value, key):
    if isinstance(value, datetime):  # a config given as YAML without !raw_env_var parses it
        value = value.isoformat()
    try:
        return parse_iso(str(value)).timestamp()
    except ValueError:
        raise RuntimeError(f"{key} must be an ISO 8601 instant like 2013-10-15T02:00:00Z")


def rehearsal_offset(start, anchor, process_start):
    """Seconds the rehearsal clock runs ahead of (or behind) real time.

    The clock showed ``start`` at the real instant ``anchor``, so every instance
    and every restart given the same two computes the same offset. Without an
    anchor the clock starts at ``start`` when the process starts
    (``process_start``): one process agrees only with itself, which is why
    ``pingxuan up`` writes one anchor into its home and gives it to every service.
    """
    if not start:
        return 0.0
    real = _instant(anchor, cfg.CLOCK_ANCHOR) if anchor else process_start
    return _instant(start, cfg.CLOCK_START) - real


class Clock(DependencyProvider):
    """Injects ``now()`` -> aware UTC datetime.

    ``CLOCK_START`` and ``CLOCK_ANCHOR`` let the department rehearse a past
    campaign (the 2013 example): the clock showed ``CLOCK_START`` at the real
    instant ``CLOCK_ANCHOR`` and runs forward from there.
    """

    def setup(self):
        config = self.container.config
        self.offset = rehearsal_offset(cfg.read(config, cfg.CLOCK_START),
                                       cfg.read(config, cfg.CLOCK_ANCHOR), time.time())

    def get_dependency(self, worker_ctx):
        return self.now

    def now(self):
        return datetime.fromtimestamp(time.time() + self.offset, UTC)
