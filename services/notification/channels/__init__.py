"""Channel plugins: how a rendered message leaves the service.

A channel is a class registered in the ``pingxuan.channels`` entry-point group
(``pyproject.toml``). It is built once at start-up from its settings (the
``CHANNELS.<name>`` section of ``config.yml``), refusing settings that cannot
work, and then ``send(message)`` delivers one :class:`Outgoing` or raises
:class:`DeliveryError`, saying whether a retry could help. A new channel is a
module and one line in ``pyproject.toml``.
"""
from dataclasses import dataclass, field

from shared.plugins import CHANNELS, load_plugin

__all__ = ["Channel", "ChannelConfigError", "DeliveryError", "Outgoing", "load_channel"]


@dataclass(frozen=True)
class Outgoing:
    """One message as a channel sees it."""

    message_id: str
    kind: str            # "email" or "sms"
    recipient: str       # the normalised address
    template: str        # the template's name (an SMS gateway maps it to its template id)
    subject: str
    body: str
    params: dict = field(default_factory=dict)   # the template's variables, as text


class DeliveryError(Exception):
    """An attempt that failed; ``permanent`` when no retry can succeed (a refused address)."""

    def __init__(self, reason, permanent=False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class ChannelConfigError(ValueError):
    """A channel's settings cannot work (refused when the service starts)."""


class Channel:
    """Base of the channel plugins: ``kinds`` it can deliver to, ``send`` one message."""

    name = None
    kinds = frozenset()

    def __init__(self, settings=None):
        self.settings = dict(settings or {})

    def send(self, message):
        """Deliver ``message``; return the provider's reference (or ``None``)."""
        raise NotImplementedError

    def setting(self, key, default=None, required=False):
        value = self.settings.get(key)
        if value is None or value == "":
            if required:
                raise ChannelConfigError(f"CHANNELS.{self.name}.{key} is required")
            return default
        return value

    def number(self, key, default):
        value = self.setting(key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ChannelConfigError(f"CHANNELS.{self.name}.{key} must be a number")
        if number <= 0:
            raise ChannelConfigError(f"CHANNELS.{self.name}.{key} must be positive")
        return number

    def flag(self, key, default=False):
        value = self.setting(key, default)
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ChannelConfigError(f"CHANNELS.{self.name}.{key} must be true or false")


def load_channel(name, settings):
    """The channel plugin ``name``, built with ``settings``."""
    channel_cls = load_plugin(CHANNELS, name)
    channel = channel_cls(settings)
    channel.name = name
    return channel
