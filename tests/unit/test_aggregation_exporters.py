"""The exporter plugins: CSV, XLSX and text, Chinese headers, no contact details."""
import csv
import io

import pytest

from openpyxl import load_workbook

from shared.plugins import EXPORTERS, load_plugin, plugin_names

REPORT = {
    "campaign_id": "cb-test", "campaign_name": "测试活动", "phase": "published", "revision": 2,
    "inputs_hash": "ab" * 32, "weights": {"public": 0.3, "panel": 0.7},
    "vote_normalisation": "top_100", "panel_method": "mean",
    "categories": [{
        "category": "advanced_unit", "name": "创建学习型党组织先进单位",
        "shortfalls": [{"category": "advanced_unit", "pool": "enterprise", "slots": 1,
                        "filled": 0, "missing": 1}],
        "rows": [
            {"candidate_id": "A01", "nominee_name": "县财政局机关党委", "nominee_unit": "县财政局",
             "category": "advanced_unit", "org_type": "agency", "votes": 1800,
             "vote_score": 90.0, "panel_score": 90.0, "composite": 90.0, "rank": 1,
             "pool": "agency", "status": "selected"},
            {"candidate_id": "A09", "nominee_name": "城关镇机关党委", "nominee_unit": "城关镇",
             "category": "advanced_unit", "org_type": "agency", "votes": 1800,
             "vote_score": 90.0, "panel_score": 50.0, "composite": 62.0, "rank": 28,
             "pool": "agency", "status": "selected", "promoted_in_revision": 2,
             "replaces": ["A03"]},
            {"candidate_id": "A03", "nominee_name": "某局党组", "nominee_unit": "某局",
             "category": "advanced_unit", "org_type": "agency", "votes": 1400,
             "vote_score": 70.0, "panel_score": 90.0, "composite": 84.0, "rank": 5,
             "pool": None, "status": "disqualified", "disqualification_reason": "事迹材料失实",
             # Never exported even if a row carried them:
             "mobile": "13812345678", "email": "x@example.cn", "contact_person": "李明"},
            {"candidate_id": "A14", "nominee_name": "无分单位", "nominee_unit": "某单位",
             "category": "advanced_unit", "org_type": "agency", "votes": 600,
             "vote_score": 30.0, "panel_score": None, "composite": None, "rank": None,
             "pool": None, "status": "reserve"},
        ]}],
}
HEADERS = ["奖项类别", "排名", "候选编号", "推荐对象", "所在单位", "组织类型", "网络投票数",
           "作废票数", "投票得分", "评审得分", "综合得分", "名额类别", "状态", "同分排序依据", "备注"]


def test_the_three_exporters_are_registered():
    assert {"csv", "xlsx", "table"} <= set(plugin_names(EXPORTERS))


def test_csv_has_chinese_headers_values_and_notes_and_no_contact_details():
    data = load_plugin(EXPORTERS, "csv")(REPORT)
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads the Chinese only with a BOM
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == HEADERS
    assert rows[1][:4] == ["创建学习型党组织先进单位", "1", "A01", "县财政局机关党委"]
    assert rows[1][5] == "机关" and rows[1][12] == "入选" and rows[1][10] == "90.00"
    assert rows[2][14] == "第2次公示递补（替补 A03）"
    assert rows[3][12] == "取消资格" and rows[3][14] == "取消资格：事迹材料失实"
    assert rows[4][14] == "无评审得分，不参与排名"
    assert ["输入数据哈希(SHA-256)", "ab" * 32] in rows
    assert any(row and row[0] == "名额不足" and "企业" in row[1] for row in rows)
    for secret in ("13812345678", "x@example.cn", "李明"):
        assert secret not in text


def test_the_publicity_list_export_has_only_the_selected():
    data = load_plugin(EXPORTERS, "csv")(REPORT, selected_only=True)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8").lstrip("\ufeff"))))
    table = rows[1:rows.index([])]
    assert [row[2] for row in table] == ["A01", "A09"]


def test_xlsx_is_a_workbook_with_the_table_and_the_notes():
    data = load_plugin(EXPORTERS, "xlsx")(REPORT)
    book = load_workbook(io.BytesIO(data))
    sheet = book["评选结果"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == HEADERS
    assert values[1][2] == "A01" and values[1][10] == 90.0  # scores are numbers
    assert len(values) == 5
    notes = {row[0]: row[1] for row in book["说明"].iter_rows(values_only=True)}
    assert notes["输入数据哈希(SHA-256)"] == "ab" * 32
    assert notes["公示版次"] == "2"
    flat = " ".join(str(v) for row in values for v in row)
    assert "13812345678" not in flat and "x@example.cn" not in flat
    listed = load_workbook(io.BytesIO(load_plugin(EXPORTERS, "xlsx")(REPORT, selected_only=True)))
    assert listed.sheetnames[0] == "公示名单"


def test_the_text_table_aligns_chinese_columns():
    lines = load_plugin(EXPORTERS, "table")(REPORT).decode("utf-8").splitlines()
    assert lines[0].startswith("奖项类别")
    assert "输入数据哈希(SHA-256): " + "ab" * 32 in lines
    from services.aggregation.exporters import width
    # Columns line up: the third column starts at the same display position on every row.
    ids = ["A01", "A09", "A03", "A14"]
    starts = {width(line[:line.index(cid)]) for line, cid in zip(lines[1:5], ids)}
    assert len(starts) == 1


# --- formulas never leave as formulas (OWASP CSV injection) ----------------------------------

TRIGGERS = ["=", "+", "-", "@", "\t", "\r"]


def report_naming(name, unit="县财政局", reason=None):
    """A report whose nominee name, unit and a disqualification reason start with ``name``."""
    rows = [dict(REPORT["categories"][0]["rows"][0], nominee_name=name, nominee_unit=unit),
            dict(REPORT["categories"][0]["rows"][2], nominee_name="某局党组",
                 disqualification_reason=reason)]
    return dict(REPORT, campaign_name=name, categories=[dict(REPORT["categories"][0], rows=rows)])


@pytest.mark.parametrize("trigger", TRIGGERS, ids=repr)
def test_csv_neutralises_every_formula_trigger(trigger):
    name = trigger + 'HYPERLINK("http://evil.example","点我")'
    data = load_plugin(EXPORTERS, "csv")(report_naming(name, unit=trigger + "1+1",
                                                       reason=trigger + "cmd"))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8").lstrip("\ufeff"))))
    assert rows[1][3] == "'" + name and rows[1][4] == "'" + trigger + "1+1"
    assert rows[2][14] == "取消资格：" + trigger + "cmd"  # not at the start: harmless, unchanged
    assert ["活动", "'" + name] in rows
    cells = [cell for row in rows for cell in row]
    assert not any(cell.startswith(tuple(TRIGGERS)) for cell in cells)


@pytest.mark.parametrize("trigger", TRIGGERS, ids=repr)
def test_xlsx_cells_starting_with_a_trigger_are_text_not_formulas(trigger):
    name = trigger + 'HYPERLINK("http://evil.example","点我")'
    data = load_plugin(EXPORTERS, "xlsx")(report_naming(name, unit=trigger + "SUM(A1:A9)"))
    book = load_workbook(io.BytesIO(data))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    # XML reads a carriage return back as a line feed; the quote in front is what matters.
    by_value = {cell.value.replace("\n", "\r") if isinstance(cell.value, str) else cell.value: cell
                for cell in cells}
    assert by_value["'" + name].data_type == "s"
    assert by_value["'" + trigger + "SUM(A1:A9)"].data_type == "s"
    assert not any(cell.data_type == "f" for cell in cells)
    assert not any(isinstance(cell.value, str) and cell.value.startswith(tuple(TRIGGERS))
                   for cell in cells)


@pytest.mark.parametrize("trigger", TRIGGERS, ids=repr)
def test_the_text_table_neutralises_every_formula_trigger(trigger):
    name = trigger + "cmd|' /C calc'!A0"
    text = load_plugin(EXPORTERS, "table")(report_naming(name)).decode("utf-8")
    assert "'" + name in text
    assert "活动: '" + name in text


def test_negative_numbers_stay_numbers_and_are_not_quoted():
    row = dict(REPORT["categories"][0]["rows"][0], vote_score=-1.5, panel_score=-2.0,
               composite=-1.85)
    report = dict(REPORT, categories=[dict(REPORT["categories"][0], rows=[row])])
    values = list(load_workbook(io.BytesIO(load_plugin(EXPORTERS, "xlsx")(report)))
                  ["评选结果"].iter_rows(values_only=True))
    assert values[1][8:11] == (-1.5, -2.0, -1.85)
    rows = list(csv.reader(io.StringIO(
        load_plugin(EXPORTERS, "csv")(report).decode("utf-8").lstrip("\ufeff"))))
    assert rows[1][8:11] == ["-1.50", "-2.00", "-1.85"]


def test_neutralise_formula_is_the_one_rule():
    from services.aggregation.exporters import neutralise_formula
    for trigger in TRIGGERS:
        assert neutralise_formula(trigger + "x") == "'" + trigger + "x"
    assert neutralise_formula("县财政局") == "县财政局"
    assert neutralise_formula("a=b") == "a=b"
    assert neutralise_formula("") == ""
    assert neutralise_formula(-3) == -3


def test_each_exporter_says_which_rule_decided_a_tie():
    tied = [dict(REPORT["categories"][0]["rows"][0], candidate_id="T1", composite=80.0,
                 panel_score=71.43, tie_break="submitted_at", rank=1),
            dict(REPORT["categories"][0]["rows"][0], candidate_id="T2", composite=80.0,
                 panel_score=71.43, tie_break="submitted_at", rank=2)]
    report = dict(REPORT, precision=2, categories=[dict(REPORT["categories"][0], rows=tied)])
    words = "综合得分、评审得分相同，推荐表提交早者在前"
    rows = list(csv.reader(io.StringIO(
        load_plugin(EXPORTERS, "csv")(report).decode("utf-8").lstrip("\ufeff"))))
    assert rows[0][13] == "同分排序依据"
    assert [row[13] for row in rows[1:3]] == [words, words]
    assert [row[10] for row in rows[1:3]] == ["80.00", "80.00"]
    sheet = load_workbook(io.BytesIO(load_plugin(EXPORTERS, "xlsx")(report)))["评选结果"]
    assert [sheet.cell(row=n, column=14).value for n in (2, 3)] == [words, words]
    assert sheet.cell(row=2, column=11).number_format == "0.00"
    assert words in load_plugin(EXPORTERS, "table")(report).decode("utf-8")
    assert any(row and row[0] == "排名规则" and "保留2位小数" in row[1] for row in rows)
