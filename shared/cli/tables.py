"""Lists the department exchanges as Excel or CSV files: read them into rows, naming bad cells."""
from pathlib import Path

from shared.cli.base import CliError
from shared.spreadsheets import UnreadableFile, read_table


def read_rows(path, columns, required=None, aliases=None):
    """Rows of a ``.csv`` or ``.xlsx`` file as dicts of ``columns`` (the header row names them).

    The header may carry the columns in any order and others beside them, a column also under
    one of its ``aliases`` (``{"unit": ["单位名称"]}``: the headings people write in Excel);
    every column of ``required`` (default: all) must be filled in each row. Errors name the
    file, row and column.
    """
    path = Path(path)
    required = columns if required is None else required
    try:
        table = read_table(path.name, path.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}")
    except UnreadableFile as exc:
        raise CliError(f"{path}: not a readable .xlsx or .csv file ({exc})")
    if not table or not any(cell not in (None, "") for cell in table[0]):
        raise CliError(f"{path}: empty file: the first row must name the columns "
                       f"{', '.join(columns)}")
    header = [("" if cell is None else str(cell)).strip().lstrip("\ufeff") for cell in table[0]]
    for name, others in (aliases or {}).items():
        if name not in header:
            header = [name if heading in others else heading for heading in header]
    missing = [name for name in columns if name not in header]
    if missing:
        raise CliError(f"{path}: the first row must name the columns {', '.join(columns)}; "
                       f"missing: {', '.join(missing)}")
    rows = []
    for number, values in enumerate(table[1:], start=2):
        cells = {name: values[header.index(name)] if header.index(name) < len(values) else None
                 for name in columns}
        cells = {name: ("" if value is None else str(value)).strip()
                 for name, value in cells.items()}
        if not any(cells.values()):
            continue  # a blank line
        empty = [name for name in required if not cells[name]]
        if empty:
            raise CliError(f"{path}: row {number}: column {', '.join(empty)} is empty")
        rows.append(cells)
    return rows

