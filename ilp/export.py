"""Exports a person opens in a spreadsheet: formula-looking text is neutralised.

Text beginning with ``=``, ``+``, ``-``, ``@`` (or a tab/carriage return) is executed by Excel and
LibreOffice as a formula (OWASP "CSV injection"). The warehouse stores such text as it came; every
export prefixes it with a single quote so a spreadsheet shows it as text.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_text(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell that a spreadsheet would run as a formula made inert."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_text)
    out.columns = [neutralise_text(str(c)) for c in out.columns]
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    # CRLF line ends (RFC 4180) make the writer quote any value holding a bare carriage return; with "\n"
    # it does not, and a spreadsheet would split "x\r=cmd" into a new row whose first cell runs "=cmd".
    return neutralise_formulas(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    Path(path).write_bytes(csv_bytes(frame))
