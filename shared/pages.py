"""A service's server-rendered pages: Jinja2 templates and static files beside its package.

Each page-serving service (voting's ``/``, scoring's ``/judge``, aggregation's ``/publicity``,
the console) keeps ``templates/`` and ``static/`` next to its ``page.py`` (the console's
``render.py``) and builds one ``Pages`` from that folder. Templates autoescape every value
and fail on an undefined name (``StrictUndefined``), so a context key misspelt in a view is an
error in the tests, not a blank on a voter's phone.
Only the static files a service lists are served: a name from the URL never reaches the disk.

What the residents' public pages share (voting's ``/`` and aggregation's ``/publicity``) is here
once, in ``shared/templates/`` and ``shared/static/``: ``residents_base.html`` (the page frame:
skip link, header, text sizes, the message box), which a service's ``base.html`` extends, and
``residents.css``, which a service lists to serve it at its own static path. A service's own
file of the same name comes first.
"""
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from werkzeug.wrappers import Response

SHARED_FOLDER = Path(__file__).resolve().parent
CONTENT_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".html": "text/html; charset=utf-8"}


class Pages:
    """The templates and the listed static files of the service package in ``folder``."""

    def __init__(self, folder, static_files, optional_context=None, static_headers=None,
                 filters=None, template_globals=None, trim_blocks=False):
        folder = Path(folder)
        #: The names a template may be rendered without, with the value each then has (no
        #: message, no code sent yet); any other name must be given.
        self.optional_context = dict(optional_context or {})
        self.static_folders = [folder / "static", SHARED_FOLDER / "static"]
        unknown = [name for name in static_files if Path(name).suffix not in CONTENT_TYPES]
        if unknown:
            raise ValueError(f"static_files: no content type for {', '.join(unknown)}")
        self.static_files = frozenset(static_files)
        self.static_headers = dict(static_headers or {"Cache-Control": "public, max-age=3600"})
        self.environment = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(folder / "templates")),
                                 FileSystemLoader(str(SHARED_FOLDER / "templates"))]),
            undefined=StrictUndefined,
            autoescape=select_autoescape(default=True, default_for_string=True),
            # The console's templates are written for it: a block tag's line leaves no blank.
            trim_blocks=trim_blocks, lstrip_blocks=trim_blocks)
        #: What a service's templates may call besides the context: ``filters`` by name
        #: (``{{ when|local_time }}``) and ``template_globals`` (its tables of words).
        self.environment.filters.update(filters or {})
        self.environment.globals.update(template_globals or {})

    def render(self, template, **context):
        return self.environment.get_template(template).render(
            **dict(self.optional_context, **context))

    def static_file(self, name):
        """The listed file ``name`` with its content type, else a plain 404."""
        if name not in self.static_files:
            return Response("没有这个文件", status=404, content_type="text/plain; charset=utf-8")
        path = next((folder / name for folder in self.static_folders
                     if (folder / name).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"static file {name} is listed but in no static folder")
        return Response(path.read_bytes(),
                        content_type=CONTENT_TYPES[Path(name).suffix],
                        headers=self.static_headers)
