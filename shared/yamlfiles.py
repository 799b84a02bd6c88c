"""Reading YAML files as they are written.

nameko's command line registers an implicit ``${VAR}`` resolver on PyYAML's global
``SafeLoader`` (for its own config files), after which ``yaml.safe_load`` of a
campaign or a deploy file in the same process would substitute the environment.
``PlainLoader`` is ``SafeLoader`` without that resolver.
"""
import yaml

NAMEKO_ENV_TAG = "!env_var"


class PlainLoader(yaml.SafeLoader):
    """``SafeLoader`` that never reads the environment."""

    @classmethod
    def _plain_resolvers(cls):
        return {first: [resolver for resolver in resolvers if resolver[0] != NAMEKO_ENV_TAG]
                for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def __init__(self, stream):
        # Taken at each load: nameko may register its resolver after this module is imported.
        self.yaml_implicit_resolvers = self._plain_resolvers()
        super().__init__(stream)


def load(text):
    return yaml.load(text, Loader=PlainLoader)


def load_all(text):
    return [doc for doc in yaml.load_all(text, Loader=PlainLoader)]


def compose(text):
    return yaml.compose(text, Loader=PlainLoader)
