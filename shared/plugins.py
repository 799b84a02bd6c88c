"""The plugin registry: vote rules, suspicion rules, panel methods, vote normalisation, channels, exporters.

Plugins are Python entry points; adding one is a module and one line in
``pyproject.toml``. Names can be listed without importing the plugin code, so
validating a campaign file does not load the scoring or aggregation modules.
"""
from importlib.metadata import entry_points

VOTE_RULES = "pingxuan.vote_rules"
SUSPICION_RULES = "pingxuan.suspicion_rules"
PANEL_METHODS = "pingxuan.panel_methods"
VOTE_NORMALISATION = "pingxuan.vote_normalisation"
CHANNELS = "pingxuan.channels"
EXPORTERS = "pingxuan.exporters"


class PluginNotFound(LookupError):
    pass


def plugin_names(group):
    """The names registered in ``group``, sorted."""
    return sorted({ep.name for ep in entry_points(group=group)})


def load_plugin(group, name):
    """The object registered as ``name`` in ``group``."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    raise PluginNotFound(f"no plugin '{name}' in {group} (known: {', '.join(plugin_names(group))})")


def load_plugins(group):
    """Every plugin of ``group`` as ``{name: object}``."""
    return {ep.name: ep.load() for ep in entry_points(group=group)}
