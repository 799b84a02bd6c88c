"""Jinja2 for the console's templates (``templates/``): autoescaped, StrictUndefined."""
import json
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@lru_cache(maxsize=1)
def environment():
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                      autoescape=select_autoescape(("html",)), trim_blocks=True,
                      lstrip_blocks=True)
    from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH
    from services.console import messages_zh, views

    env.filters["sentences"] = messages_zh.joined
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True,
                                                   default=str)
    env.filters["local_time"] = views.local_text
    env.globals.update(CATEGORY_ZH=CATEGORY_NAMES_ZH, ORG_TYPE_ZH=ORG_TYPE_NAMES_ZH,
                       STATUS_ZH=messages_zh.STATUS_ZH, PHASE_ZH=messages_zh.PHASE_ZH,
                       VERDICT_ZH=messages_zh.VERDICT_ZH, notice_text=views.notice_text)
    return env


def render(name, **context):
    return environment().get_template(name).render(**context)


def static_file(name):
    """``(bytes, content type)`` of a file in ``static/``, or ``None`` (no path outside it)."""
    path = (STATIC / name).resolve()
    if path.parent != STATIC or path.suffix not in STATIC_TYPES or not path.is_file():
        return None
    return path.read_bytes(), STATIC_TYPES[path.suffix]
