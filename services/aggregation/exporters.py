"""Exporters (plugins ``pingxuan.exporters``): a results report as CSV, XLSX or a text table.

Each plugin is ``export(report, selected_only=False) -> bytes`` over the reply
of ``aggregation.report``; ``selected_only`` gives the publicity list (公示名單).
Headers and values are in simplified Chinese. Only the columns below are
written: no contact details ever (aggregation never holds them), and nothing
but what the department may publish. Every text cell of every exporter goes
through :func:`neutralise_formula`, so a nominee named ``=HYPERLINK(…)`` stays text.
"""
import csv as csv_module
import io
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

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
    ("tie_break", "同分排序依据"),
    ("note", "备注"),
)
STATUS_ZH = {"selected": "入选", "reserve": "候补", "disqualified": "取消资格"}
PHASE_ZH = {"open": "未公示（实时结果）", "published": "公示中", "finalized": "已审定"}
OPEN_POOL_ZH = "不分类型"
#: Which rule of the tie rule decided the order of two rows showing the same composite.
TIE_BREAK_ZH = {"panel_score": "综合得分相同，评审得分高者在前",
                "submitted_at": "综合得分、评审得分相同，推荐表提交早者在前",
                "candidate_id": "综合得分、评审得分、提交时间相同，按候选编号"}
#: Digits shown when a report does not say (the campaign default, ``results.precision``).
DEFAULT_PRECISION = 2
#: OWASP "CSV injection": a spreadsheet reads a cell starting with these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: Excel opens a UTF-8 CSV as Chinese only when it starts with a byte-order mark.
UTF8_BOM = "\ufeff"


def neutralise_formula(value):
    """A text cell that a spreadsheet would run as a formula, prefixed with a single quote
    (OWASP's rule for CSV injection); numbers and other text are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def safe_cells(values):
    """The one place every exporter's cells pass through before they are written."""
    return [neutralise_formula(value) for value in values]


def rows_of(report, selected_only=False):
    """The report's rows, in category then rank order, as Chinese display values."""
    digits = report.get("precision", DEFAULT_PRECISION)
    out = []
    for section in report["categories"]:
        for row in section["rows"]:
            if selected_only and row["status"] != "selected":
                continue
            out.append(display_row(row, digits))
    return out


def display_row(row, digits=DEFAULT_PRECISION):
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
        "vote_score": score(row.get("vote_score"), digits),
        "panel_score": score(row.get("panel_score"), digits),
        "composite": score(row.get("composite"), digits),
        "pool": pool_zh,
        "status": STATUS_ZH.get(row.get("status"), row.get("status") or ""),
        "tie_break": TIE_BREAK_ZH.get(row.get("tie_break"), ""),
        "note": note(row),
    }


def score(value, digits=DEFAULT_PRECISION):
    """A score as a number with the published digits (a number, so Excel can sort it)."""
    if value is None:
        return ""
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


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
        ("排名规则", f"按综合得分（保留{report.get('precision', DEFAULT_PRECISION)}位小数，四舍五入）"
                     "排名；综合得分相同者依次比较评审得分、推荐表提交时间、候选编号"),
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
    writer.writerow(safe_cells([header for _, header in COLUMNS]))
    for row in rows_of(report, selected_only):
        writer.writerow(safe_cells([row[key] for key, _ in COLUMNS]))
    writer.writerow([])
    for key, value in notes_of(report):
        writer.writerow(safe_cells([key, value]))
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
        sheet.append(safe_cells([row[key] for key, _ in COLUMNS]))
    digits = report.get("precision", DEFAULT_PRECISION)
    for column, (key, _) in enumerate(COLUMNS, start=1):
        if key in ("vote_score", "panel_score", "composite"):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                cell.number_format = "0." + "0" * digits if digits else "0"
    sheet.freeze_panes = "A2"
    notes = book.create_sheet("说明")
    for key, value in notes_of(report):
        notes.append(safe_cells([key, value]))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def table(report, selected_only=False):
    """A plain text table for the terminal (columns aligned for Chinese characters)."""
    keys = [key for key, _ in COLUMNS]
    headers = [header for _, header in COLUMNS]
    body = [[str(cell) for cell in safe_cells([row[key] for key in keys])]
            for row in rows_of(report, selected_only)]
    widths = [max(width(text) for text in column) for column in zip(headers, *body)]
    lines = ["  ".join(pad(text, w) for text, w in zip(line, widths)).rstrip()
             for line in [headers] + body]
    lines.append("")
    lines.extend("{}: {}".format(*safe_cells([key, value])) for key, value in notes_of(report))
    return ("\n".join(lines) + "\n").encode("utf-8")


def width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text, target):
    return text + " " * (target - width(text))
