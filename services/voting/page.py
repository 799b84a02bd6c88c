"""The voting page (simplified Chinese, mobile-first, large text on request, readable by a
screen reader, no image captcha): server-rendered HTML that works without JavaScript.

The HTML is in ``templates/`` (its frame is shared/templates/residents_base.html), the style
sheet in ``static/``, after the residents' pages' shared one (both served at ``/static/``)."""
from pathlib import Path
from zoneinfo import ZoneInfo

from shared.pages import Pages

PAGES = Pages(Path(__file__).resolve().parent, static_files=["residents.css", "voting.css"],
              optional_context={
                  "message": None, "kind": None, "publicity": "", "receipt": None,
                  "status": None, "code_sent": False, "mobile": "", "masked": ""})


def render(template, **context):
    """The page ``template`` (``index``, ``campaign`` or ``receipt``) as HTML text."""
    return PAGES.render(f"{template}.html", **context)


def static_file(name):
    """``/static/<name>``: the residents' pages' shared style sheet and the page's own."""
    return PAGES.static_file(name)


def local_time(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y年%m月%d日 %H:%M")


def zone_name(zone):
    return "北京时间" if zone in ("Asia/Shanghai", "Asia/Chongqing", "PRC") else zone


def campaign_view(campaign, now):
    return {"id": campaign.id, "name": campaign.name,
            "opens": local_time(campaign.voting_opens, campaign.timezone),
            "closes": local_time(campaign.voting_closes, campaign.timezone),
            "zone": zone_name(campaign.timezone),
            "open": campaign.voting_opens <= now < campaign.voting_closes}


def publicity_base(config):
    """Where the 公示 page is (aggregation's ``/publicity/<id>``), from the service's config."""
    from shared import config as cfg

    url = cfg.read(config, cfg.PUBLICITY_URL)
    if url:
        return url.rstrip("/")
    return f"http://{cfg.read(config, cfg.AGGREGATION_HTTP)}"


def rules_text(settings):
    if settings.daily_limit:
        return f"每人每天最多投{settings.daily_limit}票"
    return ""
