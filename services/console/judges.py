"""A panel's judges from the file the department keeps them in: CSV or Excel (XLSX).

Columns ``judge_id, name, unit`` (or their Chinese headings 评委编号, 姓名, 单位),
one judge a row, the first row the headings. Errors name the row, as the
department will look for it in Excel.
"""
from shared.errors import ValidationError
from shared.spreadsheets import UnreadableFile, read_table

COLUMNS = ("judge_id", "name", "unit")
HEADINGS_ZH = {"评委编号": "judge_id", "编号": "judge_id", "姓名": "name", "单位": "unit",
               "所在单位": "unit"}
MAX_JUDGES = 200
FIELD = "judges_file"


def _refuse(message):
    return ValidationError({FIELD: [message]})


def _table(filename, data):
    try:
        return read_table(filename, data)
    except UnreadableFile as exc:
        raise _refuse(str(exc))


def parse_judges(filename, data, first_row=2, field=FIELD):
    """``[{judge_id, name, unit}]`` from an uploaded file, or a ``ValidationError`` on
    ``field`` naming the row (``first_row``: the number of the first judge's row)."""
    def _refuse(message):
        return ValidationError({field: [message]})

    if not data:
        raise _refuse("请选择评委名单文件（CSV或XLSX）。")
    rows = [row for row in _table(filename or "", data) if any(cell.strip() for cell in row)]
    if not rows:
        raise _refuse("文件是空的。")
    heading = [HEADINGS_ZH.get(cell.strip(), cell.strip().lower()) for cell in rows[0]]
    missing = [column for column in COLUMNS if column not in heading]
    if missing:
        raise _refuse(f"第1行应为列名 judge_id, name, unit（缺少 {', '.join(missing)}）。")
    where = {column: heading.index(column) for column in COLUMNS}
    judges = []
    for number, row in enumerate(rows[1:], start=first_row):
        judge = {column: (row[where[column]].strip() if where[column] < len(row) else "")
                 for column in COLUMNS}
        empty = [column for column in COLUMNS if not judge[column]]
        if empty:
            raise _refuse(f"第{number}行缺少 {', '.join(empty)}。")
        judges.append(judge)
    if not judges:
        raise _refuse("文件中没有评委（第1行之后为空）。")
    if len(judges) > MAX_JUDGES:
        raise _refuse(f"一个评审组最多{MAX_JUDGES}名评委。")
    return judges


def parse_judges_text(text):
    """Judges typed into the form, one a line: ``judge_id, name, unit``."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return []
    return parse_judges("judges.csv", "\n".join(["judge_id,name,unit"] + lines).encode("utf-8"),
                        first_row=1, field="judges_text")
