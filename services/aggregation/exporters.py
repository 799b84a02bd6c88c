"""Exporters (plugins ``pingxuan.exporters``): a results report as CSV, XLSX or a text table.

Each plugin is ``export(report, selected_only=False) -> bytes`` over the reply
of ``aggregation.report``; ``selected_only`` gives the publicity list (公示名單).
Headers and values are in simplified Chinese. Only the columns below are
written: no contact details ever (aggregation never holds them), and nothing
but what the department may publish.
"""
import csv as csv_module
import io
import unicodedata

from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH

COLUMNS = (
    ("category", "奖项类别"),
    ("rank", "排名"),
    ("candidate_id", "候选编号"),
    ("nominee_name", "推荐对象"),
    ("nominee_unit", "所在单位"),
    ("org_type", "组织类型"),
    ("votes", "网络投票数"),
    ("voided_votes", "作废票数"),
    ("vote_score", "投票得分"),
    ("panel_score", "评审得分"),
    ("composite", "综合得分"),
    ("pool", "名额类别"),
    ("status", "状态"),
    ("note", "备注"),
)
STATUS_ZH = {"selected": "入选", "reserve": "候补", "disqualified": "取消资格"}
PHASE_ZH = {"open": "未公示（实时结果）", "published": "公示中", "finalized": "已审定"}
OPEN_POOL_ZH = "不分类型"
SCORE_FORMAT = "{:.2f}"
#: Excel opens a UTF-8 CSV as Chinese only when it starts with a byte-order mark.
UTF8_BOM = "\ufeff"


def rows_of(report, selected_only=False):
    """The report's rows, in category then rank order, as Chinese display values."""
    out = []
    for section in report["categories"]:
        for row in section["rows"]:
            if selected_only and row["status"] != "selected":
                continue
            out.append(display_row(row))
    return out


def display_row(row):
    pool = row.get("pool")
    pool_zh = (OPEN_POOL_ZH if pool == "open" else ORG_TYPE_NAMES_ZH.get(pool, "")) if pool else ""
    return {
        "category": CATEGORY_NAMES_ZH.get(row["category"], row["category"]),
        "rank": row.get("rank") if row.get("rank") is not None else "",
        "candidate_id": row["candidate_id"],
        "nominee_name": row.get("nominee_name") or "",
        "nominee_unit": row.get("nominee_unit") or "",
        "org_type": ORG_TYPE_NAMES_ZH.get(row.get("org_type"), ""),
        "votes": row.get("votes", 0),
        "voided_votes": row.get("voided_votes", 0),
        "vote_score": score(row.get("vote_score")),
        "panel_score": score(row.get("panel_score")),
        "composite": score(row.get("composite")),
        "pool": pool_zh,
        "status": STATUS_ZH.get(row.get("status"), row.get("status") or ""),
        "note": note(row),
    }


def score(value):
    return "" if value is None else SCORE_FORMAT.format(value)


def note(row):
    if row.get("status") == "disqualified":
        reason = row.get("disqualification_reason")
        return f"取消资格：{reason}" if reason else "取消资格"
    if row.get("promoted_in_revision"):
        replaced = "、".join(row.get("replaces") or [])
        return (f"第{row['promoted_in_revision']}次公示递补" +
                (f"（替补 {replaced}）" if replaced else ""))
    if row.get("rank") is None:
        return "无评审得分，不参与排名"
    return ""


def notes_of(report):
    """The lines under the table: what the list is, its hash, and every shortfall."""
    lines = [
        ("活动", report.get("campaign_name") or report["campaign_id"]),
        ("状态", PHASE_ZH.get(report["phase"], report["phase"])),
        ("公示版次", str(report.get("revision") or 0)),
        ("输入数据哈希(SHA-256)", report["inputs_hash"]),
        ("权重", f"网络投票 {report['weights']['public']} · 评审 {report['weights']['panel']}"),
        ("投票得分方法", report["vote_normalisation"]),
        ("评审计分方法", report["panel_method"]),
    ]
    for section in report["categories"]:
        for shortfall in section["shortfalls"]:
            pool = shortfall["pool"]
            pool_zh = OPEN_POOL_ZH if pool == "open" else ORG_TYPE_NAMES_ZH.get(pool, pool)
            lines.append(("名额不足", f"{section['name']}·{pool_zh}：名额 {shortfall['slots']}，"
                                      f"仅 {shortfall['filled']} 名符合条件，空缺 {shortfall['missing']}"))
    return lines


def csv(report, selected_only=False):
    """UTF-8 CSV (with BOM): the table, a blank line, then the notes as key/value rows."""
    buffer = io.StringIO()
    buffer.write(UTF8_BOM)
    writer = csv_module.writer(buffer, lineterminator="\r\n")
    writer.writerow([header for _, header in COLUMNS])
    for row in rows_of(report, selected_only):
        writer.writerow([row[key] for key, _ in COLUMNS])
    writer.writerow([])
    for key, value in notes_of(report):
        writer.writerow([key, value])
    return buffer.getvalue().encode("utf-8")


def xlsx(report, selected_only=False):
    """An Excel workbook: the table on the first sheet, the notes on a second (说明)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "公示名单" if selected_only else "评选结果"
    sheet.append([header for _, header in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows_of(report, selected_only):
        sheet.append([number_or_text(row[key]) for key, _ in COLUMNS])
    sheet.freeze_panes = "A2"
    notes = book.create_sheet("说明")
    for key, value in notes_of(report):
        notes.append([key, value])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def number_or_text(value):
    """Scores as numbers in Excel (sortable), everything else as given."""
    if isinstance(value, str):
        try:
            return float(value) if value and value.replace(".", "", 1).isdigit() else value
        except ValueError:
            return value
    return value


def table(report, selected_only=False):
    """A plain text table for the terminal (columns aligned for Chinese characters)."""
    keys = [key for key, _ in COLUMNS]
    headers = [header for _, header in COLUMNS]
    body = [[str(row[key]) for key in keys] for row in rows_of(report, selected_only)]
    widths = [max(width(text) for text in column) for column in zip(headers, *body)]
    lines = ["  ".join(pad(text, w) for text, w in zip(line, widths)).rstrip()
             for line in [headers] + body]
    lines.append("")
    lines.extend(f"{key}: {value}" for key, value in notes_of(report))
    return ("\n".join(lines) + "\n").encode("utf-8")


def width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text, target):
    return text + " " * (target - width(text))
