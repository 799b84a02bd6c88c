"""The clock dependency: real time, or a rehearsal clock that starts at a configured instant."""
import time
from datetime import datetime

from nameko.extensions import DependencyProvider

from shared import config as cfg
from shared.timeutil import UTC, parse_iso


class Clock(DependencyProvider):
    """Injects ``now()`` -> aware UTC datetime.

    ``CLOCK_START`` lets the department rehearse a past campaign (the 2013 example):
    the clock starts at that instant when the service starts and runs forward.
    """

    def setup(self):
        start = self.container.config.get(cfg.CLOCK_START) or ""
        if isinstance(start, datetime):  # nameko's YAML loader parses an ISO value itself
            start = start.isoformat()
        self.offset = parse_iso(start).timestamp() - time.time() if start else 0.0

    def get_dependency(self, worker_ctx):
        return self.now

    def now(self):
        return datetime.fromtimestamp(time.time() + self.offset, UTC)
