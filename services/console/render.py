"""The console's pages through shared/pages.py: its templates, its three static files, and the
filters and tables of Chinese words its templates use."""
import json
from pathlib import Path

from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH
from shared.pages import Pages
from services.console import messages_zh, views


def as_json(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


#: ``/static/<name>`` serves these and nothing else; short caching, as before the shared pages.
PAGES = Pages(
    Path(__file__).resolve().parent, static_files=["console.css", "copy.js", "link.js"],
    static_headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    filters={"sentences": messages_zh.joined, "json": as_json, "local_time": views.local_text},
    template_globals={"CATEGORY_ZH": CATEGORY_NAMES_ZH, "ORG_TYPE_ZH": ORG_TYPE_NAMES_ZH,
                      "STATUS_ZH": messages_zh.STATUS_ZH, "PHASE_ZH": messages_zh.PHASE_ZH,
                      "VERDICT_ZH": messages_zh.VERDICT_ZH, "notice_text": views.notice_text},
    trim_blocks=True)


def render(name, **context):
    return PAGES.render(name, **context)


def static_file(name):
    """The listed file ``name`` with its content type and headers, else a plain 404."""
    return PAGES.static_file(name)
