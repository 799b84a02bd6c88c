"""The notification service's own nameko extensions: the courier and the retry timer.

The :class:`Courier` reads the service's settings, loads the channel plugins the
routes use and the templates, all in ``setup()`` (a configuration that cannot
work stops the service at start, naming the key), and hands each worker a
:class:`Post`: render a message, deliver one through its channel.
"""
import logging

from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.notification import domain
from services.notification.channels import ChannelConfigError, Outgoing, load_channel
from services.notification.render import Renderer
from shared import config as cfg
from shared.auth import own_service_key
from shared.plugins import PluginNotFound

log = logging.getLogger(__name__)


class Post:
    """What a worker sees: the settings, the templates and the channels."""

    def __init__(self, settings, renderer, channels):
        self.settings = settings
        self.renderer = renderer
        self.channels = channels

    def templates(self):
        return self.renderer.names()

    def variables(self, template):
        return self.renderer.variables(template)

    def render(self, template, params):
        return self.renderer.render(template, params)

    def deliver(self, message):
        """One attempt to send a stored message: an :class:`domain.Outcome`, never a raise."""
        channel = self.channels.get(message["channel"])
        if channel is None:
            return domain.Outcome.failure(
                f"channel '{message['channel']}' is not configured in this service", permanent=True)
        outgoing = Outgoing(message_id=message["_id"], kind=message["kind"],
                            recipient=message["recipient"], template=message["template"],
                            subject=message["subject"], body=message["body"],
                            params=message.get("params") or {})
        try:
            reference = channel.send(outgoing)
        except Exception as exc:  # a channel's failure is a record, never a crash
            permanent = getattr(exc, "permanent", False)
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            return domain.Outcome.failure(f"{message['channel']}: {reason}", permanent=permanent)
        return domain.Outcome.ok(reference)


class Courier(DependencyProvider):
    """Builds the :class:`Post` from the container's config once, in ``setup()``."""

    def __init__(self, renderer=None):
        self.renderer = renderer

    def setup(self):
        renderer = self.renderer or Renderer()
        if not renderer.names():
            # A wheel built without the package data "templates/*.j2" (pyproject.toml).
            raise domain.ConfigError(f"no message templates in {renderer.directory}: the "
                                     f"package was installed without templates/*.j2")
        settings = domain.settings_from_config(
            self.container.config, renderer.names(),
            own_service_key(self.container.config, self.container.service_name))
        channels = {}
        for name in settings.channels_used():
            try:
                channels[name] = load_channel(name, settings.channel_settings.get(name))
            except (PluginNotFound, ChannelConfigError) as exc:
                raise domain.ConfigError(str(exc))
        domain.check_channels_fit(settings, {name: channel.kinds
                                             for name, channel in channels.items()})
        self.post = Post(settings, renderer, channels)
        log.info("notification channels: %s", ", ".join(sorted(channels)))

    def get_dependency(self, worker_ctx):
        return self.post


class ConfiguredTimer(Timer):
    """A ``@timer`` whose interval comes from the container's config (``config_key``).

    Tests set a long interval and call the entrypoint themselves.
    """

    def __init__(self, config_key, interval, **kwargs):
        self.config_key = config_key
        super().__init__(interval, **kwargs)

    def setup(self):
        self.interval = cfg.read(self.container.config, self.config_key)


configured_timer = ConfiguredTimer.decorator
