"""Lists the department exchanges as Excel (XLSX) or CSV files, read into rows of text.

One reader for the console's uploads and the CLI's files: Excel workbooks by their
ending, anything else as CSV in UTF-8 (with or without its BOM) or, failing that,
GB18030 (what Excel's "CSV" is on a Chinese Windows).
"""
import csv
import io

EXCEL_ENDINGS = (".xlsx", ".xlsm")


class UnreadableFile(ValueError):
    """A file that is not a workbook or CSV this reader can decode; the message is for people."""


def read_table(filename, data):
    """Rows (lists of strings, ``""`` for an empty cell) of the file ``filename`` holding ``data``."""
    if (filename or "").lower().endswith(EXCEL_ENDINGS):
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
        except Exception:  # openpyxl raises many kinds for a file that is not a workbook
            raise UnreadableFile("无法读取该Excel文件，请另存为 .xlsx 或 .csv 后再上传。")
        return [["" if cell is None else str(cell) for cell in row]
                for row in sheet.iter_rows(values_only=True)]
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise UnreadableFile("CSV文件的编码无法识别，请以UTF-8保存。")
    return list(csv.reader(io.StringIO(text)))
