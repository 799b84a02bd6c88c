"""The pages as files (shared/pages.py): strict, escaped templates; only listed static files;
every template and static file shipped in the package."""
import fnmatch
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from shared.pages import Pages
from services.aggregation import page as publicity_page
from services.console import render as console_pages
from services.scoring import page as judge_page
from services.voting import page as voting_page

ROOT = Path(__file__).resolve().parents[2]
PAGE_SERVICES = ["voting", "scoring", "aggregation"]


def campaign_view():
    return {"id": "cb-test", "name": "测试活动", "opens": "2013年11月01日 08:00",
            "closes": "2013年11月10日 18:00", "zone": "北京时间", "open": True}


def ballot(nominee_name):
    return [{"category": "advanced_unit", "name": "先进单位", "candidates": [
        {"candidate_id": "nom-a", "nominee_name": nominee_name, "nominee_unit": "",
         "deeds_summary": "事迹", "votes": 3, "vote_id": "web-1"}]}]


def render_campaign(**overrides):
    context = dict(campaign=campaign_view(), categories=ballot("县财政局"), voter=None,
                   rules="", large=False, valid_minutes=5, max_wrong=5)
    context.update(overrides)
    return voting_page.render("campaign", **context)


def test_the_voting_page_renders_from_its_templates_and_links_its_style_sheet():
    html = render_campaign()
    assert html.startswith("<!doctype html>") and '<html lang="zh-CN">' in html
    assert '<link rel="stylesheet" href="/static/voting.css">' in html
    assert 'id="candidate-nom-a"' in html and "当前票数：<span class=\"count\">3</span>" in html
    assert 'id="mobile-form"' in html and 'id="message"' not in html      # nothing to say yet
    assert 'action="/receipts"' in html                                    # the macro's form


def test_a_name_the_template_needs_and_was_not_given_is_an_error_not_a_blank():
    with pytest.raises(UndefinedError):
        render_campaign(campaign={"id": "cb-test", "name": "缺少时间"})
    with pytest.raises(UndefinedError):
        voting_page.render("index", large=False)                           # no campaigns


def test_every_value_is_escaped():
    html = render_campaign(categories=ballot("<script>alert(1)</script>"),
                           message='"><b>', kind="error")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&#34;&gt;&lt;b&gt;" in html


def test_the_receipt_page_shows_a_void_with_its_reason():
    status = {"status": "voided", "void": {"reason": "经核实为刷票"},
              "void_at_local": voting_page.local_time(
                  datetime(2013, 11, 5, 2, tzinfo=timezone.utc), "Asia/Shanghai"),
              "receipt": "ABCD-EFGH-IJKL-MNOP", "nominee_name": "县财政局",
              "category_name": "先进单位", "cast_at_local": "2013年11月05日 09:00"}
    html = voting_page.render("receipt", code="ABCD-EFGH-IJKL-MNOP", status=status, large=True)
    assert "已被作废" in html and "经核实为刷票" in html and "2013年11月05日 10:00" in html
    assert '<body class="large">' in html


@pytest.mark.parametrize("module, name, content_type, text", [
    (voting_page, "voting.css", "text/css; charset=utf-8", ".wrap{max-width:40rem"),
    (voting_page, "residents.css", "text/css; charset=utf-8",
     'font:18px/1.6 -apple-system,"PingFang SC"'),
    (judge_page, "app.css", "text/css; charset=utf-8", "html.large { font-size: 24px; }"),
    (judge_page, "app.js", "text/javascript; charset=utf-8", "X-Judge-Link"),
    (publicity_page, "publicity.css", "text/css; charset=utf-8", ".wrap{max-width:44rem"),
    (publicity_page, "residents.css", "text/css; charset=utf-8", "body.large{font-size:24px}"),
    (console_pages, "copy.js", "text/javascript; charset=utf-8", "copy-link"),
    (console_pages, "console.css", "text/css; charset=utf-8", "body"),
])
def test_each_page_serves_its_listed_static_files(module, name, content_type, text):
    response = module.static_file(name)
    assert response.status_code == 200 and response.content_type == content_type
    assert text in response.get_data(as_text=True)


@pytest.mark.parametrize("module", [voting_page, judge_page, publicity_page, console_pages])
@pytest.mark.parametrize("name", ["../config.yml", "../page.py", "missing.css", ""])
def test_a_name_not_listed_never_reaches_the_disk(module, name):
    response = module.static_file(name)
    assert response.status_code == 404 and "没有这个文件" in response.get_data(as_text=True)


def test_the_judge_page_and_its_files_keep_the_content_security_policy():
    frame = judge_page.judge_page()
    assert frame.content_type == "text/html; charset=utf-8"
    html = frame.get_data(as_text=True)
    assert '<script src="/judge/app.js" defer></script>' in html and "<style" not in html
    for response in (frame, judge_page.static_file("app.js"), judge_page.static_file("app.css")):
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert response.headers["Cache-Control"] == "no-store"


def test_a_static_file_without_a_known_content_type_is_refused_when_listed(tmp_path):
    with pytest.raises(ValueError, match="static_files: no content type for logo.svg"):
        Pages(tmp_path, static_files=["logo.svg"])


def test_every_template_and_static_file_is_package_data():
    """An installed wheel has the files: each matches the package-data patterns."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]["package-data"]["*"]
    files = [path for service in PAGE_SERVICES for folder in ("templates", "static")
             for path in (ROOT / "services" / service / folder).iterdir()]
    assert len(files) >= 9
    for path in files:
        relative = path.relative_to(path.parents[1]).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_a_service_gives_its_templates_filters_and_globals_and_may_trim_block_lines(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "list.html").write_text(
        "<ul>\n{% for item in items %}\n  <li>{{ item|shout }} {{ WORDS[item] }}</li>\n"
        "{% endfor %}\n</ul>\n", encoding="utf-8")
    options = dict(static_files=[], filters={"shout": str.upper},
                   template_globals={"WORDS": {"a": "<甲>"}})
    assert Pages(tmp_path, trim_blocks=True, **options).render("list.html", items=["a"]) == \
        "<ul>\n  <li>A &lt;甲&gt;</li>\n</ul>"
    assert Pages(tmp_path, **options).render("list.html", items=["a"]) == \
        "<ul>\n\n  <li>A &lt;甲&gt;</li>\n\n</ul>"


def test_the_console_lists_every_file_of_its_static_folder_with_its_caching():
    folder = ROOT / "services" / "console" / "static"
    assert console_pages.PAGES.static_files == {path.name for path in folder.iterdir()}
    response = console_pages.static_file("link.js")
    assert response.headers["Cache-Control"] == "max-age=300"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_console_templates_see_its_filters_and_tables_of_words():
    html = console_pages.PAGES.environment.from_string(
        "{{ STATUS_ZH['accepted'] }}|{{ {'b': 1, 'a': '甲'}|json }}|{{ ['甲。', '乙。']|sentences }}"
    ).render()
    assert html == "已通过（候选）|{&#34;a&#34;: &#34;甲&#34;, &#34;b&#34;: 1}|甲；乙。"


@pytest.mark.parametrize("module, static_path, own_sheet, title", [
    (voting_page, "/static/", "voting.css", "网络投票"),
    (publicity_page, "/publicity/static/", "publicity.css", "公示"),
])
def test_the_residents_pages_share_one_frame_and_one_style_sheet(module, static_path, own_sheet,
                                                                  title):
    html = module.PAGES.environment.from_string(
        '{% extends "base.html" %}{% block main %}<p>正文</p>{% endblock %}').render(
        large=True, message="已发送", kind="ok")
    assert f'<link rel="stylesheet" href="{static_path}residents.css">\n' \
        f'<link rel="stylesheet" href="{static_path}{own_sheet}">' in html
    assert f"<title>{title}</title>" in html and '<body class="large">' in html
    assert '<a class="skip" href="#main">跳到主要内容</a>' in html and 'id="large-text"' in html
    assert '<div class="msg ok" role="status" id="message">已发送</div>' in html
    assert "<p>正文</p>" in html
    shared = (ROOT / "shared" / "static" / "residents.css").read_bytes()
    assert module.static_file("residents.css").get_data() == shared


def test_a_services_own_file_comes_before_the_shared_one_and_a_missing_one_is_an_error(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "static").mkdir()
    (tmp_path / "templates" / "residents_base.html").write_text("own", encoding="utf-8")
    (tmp_path / "static" / "residents.css").write_text("own{}", encoding="utf-8")
    pages = Pages(tmp_path, static_files=["residents.css", "gone.css"])
    assert pages.render("residents_base.html") == "own"
    assert pages.static_file("residents.css").get_data(as_text=True) == "own{}"
    with pytest.raises(FileNotFoundError, match="gone.css"):
        pages.static_file("gone.css")


def test_the_shared_templates_and_static_files_are_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]["package-data"]["*"]
    files = [path for folder in ("templates", "static")
             for path in (ROOT / "shared" / folder).iterdir()]
    assert {path.name for path in files} == {"residents_base.html", "residents.css"}
    for path in files:
        relative = path.relative_to(path.parents[1]).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
