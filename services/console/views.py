"""What each console page shows, computed from the services' replies (no I/O here).

Every function takes what an RPC answered and returns plain data a template
lays out: the campaign's phases, intake against caps, vote traffic per
minute, the 推薦表 as the paper form reads, refusals by field, one audit view.
"""
import json
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH, ORG_TYPED_CATEGORIES
from shared.timeutil import as_utc, local_to_utc, parse_iso
from services.console import messages_zh
from services.console.messages_zh import STATUS_ZH

#: How many minutes of vote traffic the chart shows (the most recent ones).
TRAFFIC_MINUTES = 60


def field_message_zh(message):
    """A field's message in Chinese where the table has it, else the service's own words."""
    return messages_zh.translate(message) or str(message)


def refusal(error):
    """A refusal as the page shows it: a Chinese title, the Chinese of the service's
    words (with those words kept as ``original``), and the Chinese of each field's.

    ``untranslated`` lists the sentences the table lacks; they are shown as the service
    wrote them, and the service counts and logs them so that the gap is found.
    """
    exc_type = getattr(error, "exc_type", None) or type(error).__name__
    original = getattr(error, "value", None) or str(error)
    messages = getattr(error, "messages", None)
    if messages is None and exc_type == "ValidationError":
        try:
            messages = json.loads(original or "")
        except ValueError:
            messages = None
    untranslated = []

    def chinese(text):
        words = messages_zh.translate(text)
        if words is None:
            untranslated.append(str(text))
        return words or str(text)

    fields = {}
    if isinstance(messages, dict):
        for field, items in messages.items():
            items = items if isinstance(items, list) else [items]
            fields[field] = [chinese(item) for item in items]
    if fields:
        original = "; ".join(f"{name}: {'; '.join(map(str, items))}" for name, items in
                             sorted(messages.items()) if isinstance(items, list))
        words = messages_zh.joined(
            f"{messages_zh.field_name(name)}：{messages_zh.joined(items)}"
            if messages_zh.field_name(name) else messages_zh.joined(items)
            for name, items in sorted(fields.items()))
    elif exc_type == "MethodNotFound":  # nameko's words are the method's name
        words = f"服务方法 {original}"
    else:
        words = chinese(original)
    return {"type": exc_type, "summary": messages_zh.title(exc_type), "message": words,
            "original": original if words != original else "", "fields": fields,
            "untranslated": untranslated}


def local_text(moment, zone):
    """An instant as the department reads it: local date and time in the campaign's zone."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = parse_iso(moment)
    return as_utc(moment).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def timeline(document, publication, now):
    """The phases with their dates, and where the campaign stands at ``now``."""
    zone = document["timezone"]

    def utc(local):
        return local_to_utc(datetime.fromisoformat(local), zone)

    deadline = utc(document["nomination"]["deadline"])
    opens, closes = utc(document["voting"]["opens"]), utc(document["voting"]["closes"])
    panel_closes = (document.get("panel_options") or {}).get("closes")
    publication = publication or {}
    published = parse_iso(publication["published_at"]) if publication.get("published_at") else None
    finalized = parse_iso(publication["finalized_at"]) if publication.get("finalized_at") else None
    phases = [
        {"key": "nomination", "name": "单位推荐", "until": deadline,
         "when": f"截止 {local_text(deadline, zone)}", "done": now > deadline},
        {"key": "voting", "name": "网络投票", "from": opens, "until": closes,
         "when": f"{local_text(opens, zone)} 至 {local_text(closes, zone)}", "done": now > closes},
        {"key": "panel", "name": "集中评审",
         "when": (f"截止 {local_text(utc(panel_closes), zone)}" if panel_closes
                  else "由宣传部关闭评审组"),
         "done": published is not None},
        {"key": "publicity", "name": "公示",
         "when": f"{local_text(published, zone)} 起" if published else "尚未公示",
         "done": finalized is not None},
        {"key": "final", "name": "审定",
         "when": local_text(finalized, zone) if finalized else "尚未审定",
         "done": finalized is not None},
    ]
    # Nomination and voting may overlap (a campaign may open the vote before the deadline).
    if finalized:
        current = ["final"]
    elif published:
        current = ["publicity"]
    else:
        current = [key for key, running in (("nomination", now <= deadline),
                                            ("voting", opens <= now <= closes)) if running]
        if not current:
            current = ["waiting"] if now < opens else ["panel"]
    for phase in phases:
        phase["current"] = phase["key"] in current
    words = "；".join({"nomination": "正在接受单位推荐", "waiting": "推荐已截止，等待网络投票开始",
                      "voting": "网络投票进行中", "panel": "投票已结束，集中评审阶段",
                      "publicity": "公示中", "final": "已审定"}[key] for key in current)
    return {"phases": phases, "current": current, "now_words": words,
            "now": local_text(now, zone)}


def counts_against_caps(nomination):
    """A nomination holds its intake slot unless withdrawn (a rejected one was received)."""
    return nomination.get("status") != "withdrawn"


def intake(document, nominations):
    """Per category: nominations received against ``intake_cap`` and each org-type cap."""
    out = []
    for category, rules in document["categories"].items():
        held = [n for n in nominations
                if n.get("category") == category and counts_against_caps(n)]
        by_type = Counter(n.get("org_type") for n in held)
        caps = rules.get("org_type_caps") or {}
        bars = [("合计", len(held),
                 rules.get("intake_cap"))]
        if category in ORG_TYPED_CATEGORIES:
            bars += [(ORG_TYPE_NAMES_ZH.get(t, t), by_type.get(t, 0), caps.get(t))
                     for t in ORG_TYPE_NAMES_ZH if t in caps or by_type.get(t)]
        out.append({"category": category, "name": CATEGORY_NAMES_ZH.get(category, category),
                    "bars": bars})
    return out


def minute_of(text):
    return parse_iso(text).replace(second=0, microsecond=0)


def traffic(votes, zone, now, candidate_id=None, minutes=TRAFFIC_MINUTES):
    """Votes per minute over the last ``minutes`` ending at ``now``: overall, per category,
    and for one candidate when asked. ``votes`` are ``{cast_at, category, candidate_id}``
    as ``voting.votes_page`` lists them; a vote flagged ``voided`` (票數清零) is counted apart,
    never in the chart or the total."""
    voided = sum(1 for vote in votes if vote.get("voided"))
    votes = [vote for vote in votes if not vote.get("voided")]
    end = as_utc(now).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    slots = [start + timedelta(minutes=i) for i in range(minutes)]
    index = {slot: i for i, slot in enumerate(slots)}
    overall = [0] * minutes
    by_category = {}
    chosen = [0] * minutes
    for vote in votes:
        slot = index.get(minute_of(vote["cast_at"]))
        if slot is None:
            continue
        overall[slot] += 1
        by_category.setdefault(vote["category"], [0] * minutes)[slot] += 1
        if candidate_id is not None and vote["candidate_id"] == candidate_id:
            chosen[slot] += 1
    labels = [as_utc(slot).astimezone(ZoneInfo(zone)).strftime("%H:%M") for slot in slots]
    return {"labels": labels, "overall": overall,
            "by_category": [(CATEGORY_NAMES_ZH.get(c, c), values)
                            for c, values in sorted(by_category.items())],
            "candidate": chosen if candidate_id is not None else None,
            "total": len(votes), "in_window": sum(overall), "voided": voided}


def leading(tally_rows, per_category=5):
    """The first few of each category by votes (the tally comes sorted)."""
    out = {}
    for row in tally_rows:
        rows = out.setdefault(row["category"], [])
        if len(rows) < per_category:
            rows.append(row)
    return [{"category": c, "name": CATEGORY_NAMES_ZH.get(c, c), "rows": rows}
            for c, rows in out.items()]


def form_sections(record):
    """The 推薦表 as the paper form reads: its boxes in order, then the three opinions."""
    rec = record.get("recommendation") or {}
    review = record.get("review") or {}
    leadership = record.get("leadership_opinion") or {}
    boxes = [
        ("奖项类别", CATEGORY_NAMES_ZH.get(record.get("category"), record.get("category"))),
        ("组织类型", ORG_TYPE_NAMES_ZH.get(record.get("org_type"), "—")),
        ("推荐对象", record.get("nominee_name")),
        ("所在单位", record.get("nominee_unit")),
        ("党内职务", record.get("party_post") or "—"),
        ("推荐单位", record.get("unit")),
        ("单位电话", record.get("unit_phone")),
        ("传真", record.get("fax") or "—"),
        ("联系人", record.get("contact_person")),
        ("手机", record.get("mobile") or "（已隐去）"),
        ("电子邮箱", record.get("email")),
    ]
    opinions = [
        {"title": "推荐单位意见", "opinion": rec.get("opinion"), "signed_by": rec.get("signed_by"),
         "date": rec.get("date"), "sealed": rec.get("sealed")},
        {"title": "评审委员会初审意见", "opinion": review.get("opinion"),
         "signed_by": review.get("signed_by"), "date": review.get("date"),
         "decision": {"accept": "通过", "reject": "不通过"}.get(review.get("decision"))},
        {"title": "创学领导小组意见", "opinion": leadership.get("opinion"),
         "signed_by": leadership.get("signed_by"), "date": leadership.get("date")},
    ]
    return {"boxes": [(label, value if value not in (None, "") else "—") for label, value in boxes],
            "deeds_summary": record.get("deeds_summary") or "",
            "materials": record.get("materials") or "",
            "attachments": record.get("attachments") or [],
            "opinions": opinions,
            "status": STATUS_ZH.get(record.get("status"), record.get("status"))}


def filter_nominations(nominations, unit=None, org_type=None):
    """The filters nomination.list does not take for an admin (unit, org type) applied here."""
    return [n for n in nominations
            if (not unit or unit in (n.get("unit") or ""))
            and (not org_type or n.get("org_type") == org_type)]


def audit_rows(trails, entity=None, actor=None, since=None, until=None):
    """Every service's trail in one list, oldest first, filtered by entity, actor and time.

    ``trails`` maps a service to its rows; ``since``/``until`` are aware datetimes.
    """
    rows = []
    for service, entries in trails.items():
        for entry in entries:
            who = entry.get("actor") or {}
            if entity and entity not in (entry.get("entity_id") or "") \
                    and entity != entry.get("entity"):
                continue
            if actor and actor not in (who.get("name") or "") and actor != who.get("role"):
                continue
            at = parse_iso(entry["at"]) if entry.get("at") else None
            if since and (at is None or at < since):
                continue
            if until and (at is None or at > until):
                continue
            rows.append(dict(entry, service=service, changes=changes(entry.get("before"),
                                                                       entry.get("after")),
                             actor_text=(f"{who.get('name', '')}（{who.get('role', '')}）"
                                         if who else "")))
    rows.sort(key=lambda row: (row.get("at") or "", row.get("service")))
    return rows


#: Characters of a changed value shown in the audit table (the whole value is one click away).
CHANGE_PREVIEW = 120


def _text(value):
    return "—" if value is None else (value if isinstance(value, str) else json.dumps(
        value, ensure_ascii=False, sort_keys=True, default=str))


def changes(before, after):
    """What an audit entry changed, key by key: ``[(key, before, after, long)]``.

    A campaign or a nomination is thousands of characters; the department wants
    to see which keys changed, and to open the full value only when needed.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        pairs = [(k, before.get(k), after.get(k)) for k in keys]
    else:
        pairs = [("", before, after)]
    out = []
    for key, old, new in pairs:
        old_text, new_text = _text(old), _text(new)
        out.append({"key": key, "before": old_text, "after": new_text,
                    "long": len(old_text) > CHANGE_PREVIEW or len(new_text) > CHANGE_PREVIEW,
                    "before_short": old_text[:CHANGE_PREVIEW], "after_short": new_text[:CHANGE_PREVIEW]})
    return out


#: A judge's last message, as the panels page says it (scoring's ``notice.state``).
NOTICE_ZH = {"queued": "排队待发", "sent": "已发出", "failed": "发送失败",
             "skipped": "未发送（链接已更换，或未接通短信/邮件通道）",
             "no_contact": "无手机和邮箱", "not_sent": "尚未发送"}
#: Why ``send_links`` queued no message for a judge.
NOT_QUEUED_ZH = {"no_contact": "没有手机和邮箱，无法发送：请把下面的链接交给评委本人。",
                 "sent_moments_ago": "一分钟内刚发送过，未重复发送（防止重复点击）。"}


def notice_text(notice):
    """A judge's last message in a few words: state, when, and why it failed."""
    if not notice:
        return ""
    words = NOTICE_ZH.get(notice["state"], notice["state"])
    if notice["state"] == "queued" and notice.get("attempts"):
        words += f"（已重试 {notice['attempts']} 次）"
    if notice["state"] in ("failed", "queued") and notice.get("detail"):
        words += f"：{notice['detail']}"
    return words


def link_results(reply):
    """What ``send_links`` did, judge by judge; the link only where no message can carry it."""
    rows = []
    for judge in reply["judges"]:
        if judge["queued"]:
            outcome = "已排队，约10秒内发出（刷新本页查看发送状态）。"
        else:
            outcome = NOT_QUEUED_ZH.get(judge["not_queued_reason"], judge["not_queued_reason"])
        rows.append({"judge_id": judge["judge_id"], "name": judge["name"],
                     "renewed": judge["renewed"], "outcome": outcome,
                     "link": judge["link"] if not judge["has_contact"] else None})
    return {"category": reply["category"], "renewed": reply["renewed"], "rows": rows}
