"""The judge's page (评审打分), served by the scoring service.

Panel members are not programmers: one page, simplified Chinese, one column
that fits a phone, real labels for every input (a screen reader reads the
criterion, its weight and its range), a large-text switch, messages in a live
region, and no image anywhere. The personal link's token is read from the
URL fragment and sent only in the ``X-Judge-Link`` header to the JSON API
(``/judge/api/worksheet``, ``/judge/api/scores``); nothing here holds data
of its own, and every value is inserted as text, never as markup.

The frame is ``templates/judge.html``; the script and style are ``static/app.js`` and
``static/app.css``.
"""
from pathlib import Path

from werkzeug.wrappers import Response

from shared.pages import Pages

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self'; form-action 'none'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
}


PAGES = Pages(Path(__file__).resolve().parent, static_files=["app.js", "app.css"],
              static_headers=HEADERS)


def judge_page():
    """``/judge``: the page's frame; the script fills it from the JSON API."""
    return Response(PAGES.render("judge.html"), content_type="text/html; charset=utf-8",
                    headers=HEADERS)


def static_file(name):
    """``/judge/app.js`` and ``/judge/app.css``."""
    return PAGES.static_file(name)
