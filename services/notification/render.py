"""Messages from Jinja2 templates: one file per message in ``templates/``, simplified Chinese.

A template sets its subject line with ``{% set subject %}…{% endset %}``; the
rest is the text. Every variable is required (``StrictUndefined``): a message
with a hole in it is refused, never sent. The text is plain (no HTML escaping).
"""
import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, meta
from jinja2.exceptions import TemplateError, UndefinedError

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
SUFFIX = ".j2"


class UnknownTemplate(LookupError):
    """No template file by that name."""


class MissingVariables(ValueError):
    """The template needs variables the caller did not give."""

    def __init__(self, template, names):
        self.template = template
        self.names = sorted(names)
        super().__init__(f"template {template} needs {', '.join(self.names)}")


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class Renderer:
    """Lists, inspects and renders the templates of one directory."""

    def __init__(self, directory=TEMPLATES_DIR):
        self.directory = Path(directory)
        self.env = Environment(loader=FileSystemLoader(str(self.directory)),
                               undefined=StrictUndefined, autoescape=False,
                               trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
        self._variables = {}

    def names(self):
        """Every template name (the file name without ``.j2``)."""
        return frozenset(path.name[:-len(SUFFIX)] for path in self.directory.glob(f"*{SUFFIX}"))

    def variables(self, name):
        """The variables the template uses (each one is required)."""
        if name not in self._variables:
            try:
                source = self.env.loader.get_source(self.env, name + SUFFIX)[0]
            except TemplateNotFound:
                known = ", ".join(sorted(self.names()))
                raise UnknownTemplate(f"no template {name} (known: {known})")
            parsed = self.env.parse(source)
            self._variables[name] = frozenset(meta.find_undeclared_variables(parsed))
        return self._variables[name]

    def render(self, name, params):
        """The subject and text of ``name`` with ``params``; a missing variable is refused."""
        missing = self.variables(name) - set(params)
        if missing:
            raise MissingVariables(name, missing)
        template = self.env.get_template(name + SUFFIX)
        try:
            module = template.make_module(dict(params))
            subject = str(getattr(module, "subject", "")).strip()
            body = str(module)
        except UndefinedError as exc:
            raise MissingVariables(name, [str(exc)])
        except TemplateError as exc:
            raise ValueError(f"template {name}: {exc}")
        return Rendered(subject=subject, body=_tidy(body))


def _tidy(text):
    """Strip trailing spaces and fold the blank lines that conditional blocks leave."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
