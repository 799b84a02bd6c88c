"""The exporter plugins: CSV, XLSX and text, Chinese headers, no contact details."""
import csv
import io

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
           "作废票数", "投票得分", "评审得分", "综合得分", "名额类别", "状态", "备注"]


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
    assert rows[2][13] == "第2次公示递补（替补 A03）"
    assert rows[3][12] == "取消资格" and rows[3][13] == "取消资格：事迹材料失实"
    assert rows[4][13] == "无评审得分，不参与排名"
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
