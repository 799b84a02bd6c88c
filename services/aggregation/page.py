"""The public 公示 page: what it shows, in plain simplified Chinese (Jinja2 templates/).

No personal information reaches a template: the objector's name and mobile are never in
the context, and rows carry only the public fields of the list.
"""
from pathlib import Path
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Response

from shared import one_time_codes as otp
from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH
from shared.errors import (DeadlinePassed, InvalidState, NotFound, RateLimited, Unavailable,
                           ValidationError, describe)
from shared.pages import Pages
from services.aggregation import domain, objections

#: ``/publicity/static/<name>`` serves the shared ``residents.css`` and ``publicity.css``,
#: nothing else.
PAGES = Pages(Path(__file__).resolve().parent, static_files=["residents.css", "publicity.css"],
              optional_context={"message": None, "kind": None})
SIZE_COOKIE = "pxsize"
MAX_BODY = 16 * 1024

STATUS_ZH = {objections.RECEIVED: "已受理，正在核实", objections.UPHELD: "异议成立",
             objections.REJECTED: "异议不成立"}
POOL_ZH = dict(ORG_TYPE_NAMES_ZH, open="")
FIELD_NAMES_ZH = {"objector.name": "真实姓名", "objector.mobile": "手机号码",
                  "mobile": "手机号码", "grounds": "异议内容（不超过2000字）",
                  "candidate_id": "异议对象", "code": "验证码", "campaign_id": "活动编号",
                  "receipt": "回执编号", "body": "提交的内容"}


def render(template, **context):
    return PAGES.render(template, **context)


def html(body, status=200, large=None):
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if large is not None:
        response.set_cookie(SIZE_COOKIE, "large" if large else "normal", max_age=365 * 86400,
                            httponly=True, samesite="Strict", path="/")
    return response


def redirect(location):
    return Response("", status=303, headers={"Location": location})


def static_file(name):
    return PAGES.static_file(name)


def large_text(request):
    """``?size=large`` (remembered in a cookie) or the cookie alone; ``None``: nothing asked."""
    asked = request.args.get("size")
    if asked in ("large", "normal"):
        return asked == "large", True
    return request.cookies.get(SIZE_COOKIE) == "large", False


def form_body(request):
    """The posted form, bounded (a code, a name and 2,000 characters fit in far less)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    request.max_content_length = MAX_BODY
    request.max_form_memory_size = MAX_BODY
    return {key: value for key, value in request.form.items()}


def local_time(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y年%-m月%-d日 %H:%M")


def local_day(day):
    return f"{day.year}年{day.month}月{day.day}日"


def _fields_zh(error, *_):
    names = [FIELD_NAMES_ZH.get(name, name) for name in error.messages]
    return f"请检查以下内容：{'、'.join(names)}。" if names else "填写的内容有误，请检查后重试。"


#: What the page says for each refusal, by its class (the nearest class wins:
#: ``shared.errors.describe``); the one-time code's refusals say what the voting page says.
REFUSALS_ZH = {
    **otp.REFUSALS_ZH,
    InvalidState: "名单尚未公示，或该操作现在不能进行。",
    DeadlinePassed: "该候选对象的公示期已结束，不再受理异议。",
    NotFound: "该候选对象不在公示名单上，或没有找到这条记录。",
    RateLimited: "操作太频繁了，请稍等几分钟再试。",
    ValidationError: _fields_zh,
    Unavailable: "短信验证码发送失败，请稍后再试。",
    Exception: "系统繁忙，请稍后再试。",
}


def refusal_zh(error):
    """What the page says for a refusal."""
    return describe(REFUSALS_ZH, error)


def period_text(campaign, entry):
    """The 公示 period of one revision in words."""
    period = objections.period_of(campaign, entry)
    published = local_time(entry["at"], campaign.timezone)
    if period is None:
        return f"{published}发布；公示期间受理异议，至名单审定为止。"
    return (f"{published}发布；受理异议至{local_day(period[0])}24时"
            f"（{campaign.publicity_working_days}个工作日，遇法定节假日顺延）。")


def revision_views(campaign, revisions, names):
    """Every revision in plain words: who left the list, why, who moved up."""
    views = []
    for entry in revisions:
        view = {"revision": entry["revision"], "period": period_text(campaign, entry),
                "changes": []}
        if entry["revision"] == 1:
            view["title"] = "第1版公示名单"
        else:
            view["title"] = f"第{entry['revision']}版（修订）"
            why = entry.get("disqualification_reason") or "取消参评资格"
            for category, change in (entry.get("changes") or {}).items():
                for gone in change["removed"]:
                    view["changes"].append(
                        f"{names.get(gone['candidate_id'], gone['candidate_id'])}"
                        f"（{CATEGORY_NAMES_ZH.get(category, category)}）被取消参评资格，"
                        f"不再列入名单。原因：{why}")
                for moved in change["promoted"]:
                    pool = POOL_ZH.get(moved["pool"], "")
                    view["changes"].append(
                        f"{names.get(moved['candidate_id'], moved['candidate_id'])}"
                        f"按综合得分递补列入{CATEGORY_NAMES_ZH.get(category, category)}"
                        + (f"（{pool}类）" if pool else "") + "。")
        views.append(view)
    return views


def list_views(report):
    """The published list per category: rank, nominee, unit, composite and its parts."""
    sections = []
    for section in report["categories"]:
        rows = [row for row in section["rows"] if row["status"] == domain.SELECTED]
        sections.append({"category": section["category"], "name": section["name"],
                         "rows": [{"candidate_id": row["candidate_id"],
                                   "rank": row["rank"], "nominee_name": row["nominee_name"],
                                   "nominee_unit": row["nominee_unit"],
                                   "pool": POOL_ZH.get(row["pool"] or "", ""),
                                   "votes": row["votes"],
                                   "vote_score": _score(row["vote_score"]),
                                   "panel_score": _score(row["panel_score"]),
                                   "composite": _score(row["composite"]),
                                   "promoted": row.get("promoted_in_revision")}
                                  for row in rows]})
    return sections


def names_of(report):
    return {row["candidate_id"]: row["nominee_name"] for section in report["categories"]
            for row in section["rows"]}


def _score(value):
    return "—" if value is None else f"{value:.2f}"


def status_view(status, campaign):
    return dict(status, status_zh=STATUS_ZH[status["status"]],
                received_local=local_time(domain_time(status["received_at"]), campaign.timezone),
                resolved_local=(local_time(domain_time(status["resolved_at"]), campaign.timezone)
                                if status.get("resolved_at") else None))


def domain_time(text):
    from shared.timeutil import parse_iso

    return parse_iso(text)
