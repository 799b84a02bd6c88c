"""The ``log`` channel, the embedded default: one log line per message.

The line carries the rendered Chinese text (a test or an operator reads the
one-time code from it) and the recipient masked (138****5678), never in full.
"""
import json
import logging

from services.notification.channels import Channel
from services.notification.domain import mask

LOGGER = "pingxuan.notification"


class LogChannel(Channel):
    name = "log"
    kinds = frozenset({"email", "sms"})

    def __init__(self, settings=None):
        super().__init__(settings)
        self.logger = logging.getLogger(self.setting("logger", LOGGER))

    def send(self, message):
        # The text comes before the message id, whose hex digits could pass for a code.
        self.logger.info("notification %s to %s (%s): %s [%s]", message.kind,
                         mask(message.recipient), message.template,
                         json.dumps({"subject": message.subject, "text": message.body},
                                    ensure_ascii=False), message.message_id)
        return None
