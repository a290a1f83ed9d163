"""Onboarding that cannot silently go wrong (issue 9, section 2): exports with no id column, time formats
and the plausibility check of parsed times, rejects that name their rule and keep the raw line once per
file line, a taxonomy kept beside the mapping, inputs that fail fast naming the file, repeated ids in
linear time, and the unfinished snapshot a killed write leaves.

Each test writes a small export and a mapping into tmp_path and ingests it into a private copy of an
empty real warehouse (``real_warehouse``), in-process through ``ilp.ingest`` or ``ilp.cli.main``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import time
from pathlib import Path

import duckdb
import pytest

from ilp import mapping
from ilp import warehouse as warehouse_module
from ilp.ingest import IngestError, ingest
from ilp.mapping import MappingError
from ilp.status import content_id_duplicates, ingest_warnings, likely_duplicate_rows
from ilp.warehouse import Warehouse

BAD_INPUT = Path(__file__).resolve().parent / "bad_input"
CORPUS_MAPPING = BAD_INPUT / "mapping.toml"
REPO = Path(__file__).resolve().parents[1]
HEADER = "ID,Date,Block,IUCR,Primary Type,Arrest,Latitude,Longitude"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def corpus_mapping(tmp_path: Path, old: str = "", new: str = "", name: str = "mapping.toml") -> Path:
    """The bad-input corpus mapping with one text replacement, written into tmp_path."""
    text = CORPUS_MAPPING.read_text(encoding="utf-8")
    if old:
        assert old in text, old
        text = text.replace(old, new)
    return write(tmp_path / name, text)


def query(warehouse: Warehouse, sql: str, params=None) -> list[tuple]:
    with contextlib.closing(warehouse.connect()) as con:
        return con.execute(sql, params or []).fetchall()


def rejects_of(warehouse: Warehouse) -> list[dict]:
    with contextlib.closing(warehouse.connect()) as con:
        cursor = con.execute("SELECT * FROM rejects ORDER BY ingest_id, file, line_number")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


# ------------------------------------------------------------------------------------------ no id column
NO_ID_MAPPING = """
[source]
name = "no_ids"
taxonomy = "chicago_iucr"

[id]
columns = []

[occurred]
columns = ["Date"]
formats = ["%Y-%m-%d %H:%M"]

[offense]
code = "Code"

[location]
text = "Place"
"""
NO_ID_HEADER = "Date,Code,Place,Outcome"


def no_id_files(tmp_path: Path, mapping_text: str = NO_ID_MAPPING) -> Path:
    return write(tmp_path / "no_ids.toml", mapping_text)


def test_an_export_with_no_id_column_loads_identical_rows_as_separate_incidents(real_warehouse, tmp_path):
    """Before: `[id] columns = []` was refused; content-hash ids counted identical rows over the batch."""
    m = mapping.load(no_id_files(tmp_path))
    assert m.id_columns == () and m.content_ids
    export = write(
        tmp_path / "week1.csv",
        "\n".join(
            [
                NO_ID_HEADER,
                "2024-03-01 22:10,0820,High Street,",
                "2024-03-01 22:10,0820,High Street,",  # the same again: a second theft, as the export says
                "2024-03-02 09:00,0486,Mill Lane,",
            ]
        )
        + "\n",
    )
    first = ingest(real_warehouse, m, [export])
    assert (first.rows_read, first.loaded, first.rejected) == (3, 3, 0)
    ids = sorted(r[0] for r in query(real_warehouse, "SELECT source_id FROM incidents"))
    assert [i.rsplit("#", 1)[1] for i in ids].count("2") == 1  # #1 and #2 for the identical pair
    assert all(i.startswith("h:") for i in ids)

    again = ingest(real_warehouse, m, [export])
    assert (again.loaded, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 0)
    assert sorted(r[0] for r in query(real_warehouse, "SELECT source_id FROM incidents")) == ids


def test_content_ids_count_identical_rows_within_their_file(real_warehouse, tmp_path):
    """The same file ingested alone and then inside a batch with an overlapping export gives the same ids
    (before: the ordinal counted across the batch, so the overlap loaded as new incidents)."""
    m = mapping.load(no_id_files(tmp_path))
    rows = ["2024-03-01 22:10,0820,High Street,", "2024-03-01 22:10,0820,High Street,"]
    march = write(tmp_path / "march.csv", "\n".join([NO_ID_HEADER, *rows]) + "\n")
    rolling = write(
        tmp_path / "rolling.csv", "\n".join([NO_ID_HEADER, *rows, "2024-03-09 11:00,0486,Mill Lane,"]) + "\n"
    )
    ingest(real_warehouse, m, [march])
    result = ingest(real_warehouse, m, [march, rolling])
    # march's two rows are superseded by rolling's identical two (same ids); only the new row loads
    assert (result.rows_read, result.loaded, result.unchanged, result.rejected) == (5, 1, 2, 2)
    assert query(real_warehouse, "SELECT count(*) FROM incidents") == [(3,)]


def test_status_counts_identical_rows_and_likely_corrected_duplicates(real_warehouse, tmp_path, run_cli):
    m = no_id_files(tmp_path)
    first = write(
        tmp_path / "jan.csv",
        "\n".join(
            [
                NO_ID_HEADER,
                "2024-01-05 10:00,0820,High Street,Under investigation",
                "2024-01-05 10:00,0820,High Street,Under investigation",
                "2024-01-06 10:00,0486,Mill Lane,Under investigation",
            ]
        )
        + "\n",
    )
    # the February export repeats 6 January's row with its outcome corrected
    corrected = write(
        tmp_path / "feb.csv",
        "\n".join([NO_ID_HEADER, "2024-01-06 10:00,0486,Mill Lane,Charged"]) + "\n",
    )
    mapping_path = write(m, NO_ID_MAPPING + '\n[fields]\noutcome = "Outcome"\n')
    ingest(real_warehouse, mapping_path, [first])
    result = ingest(real_warehouse, mapping_path, [corrected])
    assert result.loaded == 1  # the corrected row is a new incident: its content changed
    with contextlib.closing(real_warehouse.connect()) as con:
        counts = content_id_duplicates(con).to_dict(orient="records")
        pairs = likely_duplicate_rows(con)
    assert counts == [{"source": "no_ids", "content_ids": 4, "identical_rows": 1, "likely_duplicates": 1}]
    assert len(pairs) == 1 and pairs["later_ingest"].tolist() == [2] and pairs["earlier_ingest"].tolist() == [1]
    code, out, err = run_cli("status", warehouse=real_warehouse)
    assert code == 0, err
    assert "Content ids (no_ids" in out and "4 incidents; 1 are identical rows of one file kept apart" in out
    assert "WARNING 1 look like corrected versions of a row an earlier ingest loaded" in out


# ------------------------------------------------------------------------------------------ times
TIME_MAPPING = """
[source]
name = "timed"
taxonomy = "chicago_iucr"

[id]
columns = ["ID"]

[occurred]
columns = ["Date"]
formats = ["%d.%m.%Y"]
time_column = "Time"
time_format = {time_format}

[offense]
code = "Code"
"""


def timed(tmp_path: Path, time_format: str, values: list[str], name: str = "times.csv") -> tuple[Path, Path]:
    mapping_path = write(tmp_path / f"{name}.toml", TIME_MAPPING.format(time_format=time_format))
    export = write(
        tmp_path / name,
        "\n".join(["ID,Date,Time,Code", *(f"{i},0{1 + i % 9}.03.2024,{v},0820" for i, v in enumerate(values))]) + "\n",
    )
    return mapping_path, export


def stored_times(warehouse: Warehouse) -> dict[str, str]:
    return dict(query(warehouse, "SELECT source_id, strftime(occurred_at, '%H:%M:%S') FROM incidents"))


@pytest.mark.parametrize(
    ("time_format", "values", "expected"),
    [
        ('"%H"', ["0", "7", "23"], ["00:00:00", "07:00:00", "23:00:00"]),
        ('"%H:%M"', ["7:40", "23:15", "00:05"], ["07:40:00", "23:15:00", "00:05:00"]),
        ('"%H%M"', ["5", "740", "2315"], ["00:05:00", "07:40:00", "23:15:00"]),
        ('"%I:%M %p"', ["11:15 PM", "7:40 am", "12:05 AM"], ["23:15:00", "07:40:00", "00:05:00"]),
        ('"seconds"', ["0", "27600", "83700.5"], ["00:00:00", "07:40:00", "23:15:00"]),
        ('["%H:%M", "%H%M"]', ["7:40", "2315", "5"], ["07:40:00", "23:15:00", "00:05:00"]),
    ],
    ids=["hour-only", "hh:mm", "hhmm", "12-hour", "seconds", "list"],
)
def test_time_formats(real_warehouse, tmp_path, time_format, values, expected):
    mapping_path, export = timed(tmp_path, time_format, values)
    result = ingest(real_warehouse, mapping_path, [export])
    assert (result.loaded, result.rejected) == (3, 0)
    assert [stored_times(real_warehouse)[str(i)] for i in range(3)] == expected


def test_a_time_longer_than_its_format_is_rejected_not_cut(real_warehouse, tmp_path):
    """Before: lpad cut "12345" to "1234" (12:34) and "2315" read with %H to "23" (23:00), silently."""
    mapping_path, export = timed(tmp_path, '"%H%M"', ["2315", "12345", "", "2460"])
    result = ingest(real_warehouse, mapping_path, [export])
    assert (result.loaded, result.rejected) == (1, 3)
    rejects = rejects_of(real_warehouse)
    assert [(r["line_number"], r["field"], r["rule"], r["value"]) for r in rejects] == [
        (3, "Time", "[occurred] time_format: unparseable time", "12345"),
        (4, "Time", "[occurred] time_column: time is empty", None),
        (5, "Time", "[occurred] time_format: unparseable time", "2460"),
    ]
    assert rejects[0]["reason"] == "unparseable time 12345 (expected %H%M)"
    assert rejects[0]["raw_row"] == "1,02.03.2024,12345,0820"


def hour_only_rows(n: int = 30) -> list[str]:
    return [str(i % 24) for i in range(n)]


def test_hours_read_as_minutes_load_with_a_warning_everywhere(real_warehouse, tmp_path, run_cli):
    """An hour-only column (0-23) mapped with the default "%H%M" loads as 00:00-00:23. Before: silently."""
    mapping_path, export = timed(tmp_path, '"%H%M"', hour_only_rows())
    code, out, err = run_cli("ingest", "--mapping", mapping_path, export, warehouse=real_warehouse)
    assert code == 0, err
    assert "WARNING times.csv: every occurred time falls in the first hour (00:00-00:59) and every minute" in out
    assert 'set [occurred] time_format = "%H"' in out

    code, out, _ = run_cli("ingest", "--mapping", mapping_path, "--json", export, warehouse=real_warehouse)
    assert json.loads(out)["warnings"] and json.loads(out)["unchanged"] == 30
    assert query(real_warehouse, "SELECT count(*), min(check_name) FROM ingest_warnings") == [(1, "first_hour")]

    code, out, _ = run_cli("status", warehouse=real_warehouse)
    assert "WARNINGS: implausible data that loaded" in out and "#1 timed times.csv: every occurred time" in out
    report = json.loads(run_cli("status", "--json", warehouse=real_warehouse)[1])
    assert [(w["ingest_id"], w["check_name"], w["rows"]) for w in report["warnings"]] == [(1, "first_hour", 30)]

    # the corrected mapping reads the same file: times updated, the warning retires
    fixed = write(mapping_path, TIME_MAPPING.format(time_format='"%H"'))
    result = ingest(real_warehouse, fixed, [export])
    assert (result.updated, result.unchanged, result.warnings) == (28, 2, [])  # "0" is 00:00 either way
    with contextlib.closing(real_warehouse.connect()) as con:
        assert ingest_warnings(con).empty
    assert "WARNINGS" not in run_cli("status", warehouse=real_warehouse)[1]


@pytest.mark.parametrize(
    ("time_format", "values", "check"),
    [
        ('"%H%M"', ["0000"] * 25, "all_midnight"),
        # 24-hour hh:mm read with hours and minutes swapped: minutes over 23 fail, the rest load
        ('"%M:%H"', [f"{i % 24:02d}:{(5 * i) % 24:02d}" for i in range(30)], "minutes_below_24"),
        ('"%H:%M"', [f"{1 + i % 12}:{(7 * i) % 60:02d}" for i in range(30)], "no_afternoon"),
        ('"%H"', [str(i % 24) for i in range(30)], None),  # hour-only read right: no warning
        ('"%H:%M"', [f"{i % 24}:{(7 * i) % 60:02d}" for i in range(30)], None),
    ],
    ids=["all-midnight", "hour-minute-swapped", "12-hour-clock", "hours-right", "times-right"],
)
def test_implausible_time_distributions(real_warehouse, tmp_path, time_format, values, check):
    mapping_path, export = timed(tmp_path, time_format, values)
    result = ingest(real_warehouse, mapping_path, [export])
    checks = [name for (name,) in query(real_warehouse, "SELECT check_name FROM ingest_warnings")]
    assert checks == ([check] if check else []), result.warnings
    assert len(result.warnings) == len(checks)


def test_dates_checks_months_only_and_day_month_swapped(real_warehouse, tmp_path):
    rows = [f"{i},{1 + i % 12:02d}/01/2017 12:00:00 AM,X,0820,T,false,," for i in range(24)]
    months = write(tmp_path / "months.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    result = ingest(real_warehouse, CORPUS_MAPPING, [months])
    assert result.loaded == 24
    assert [w.split(":", 1)[0] for w in result.warnings] == ["months.csv", "months.csv"]
    assert "every occurred time is 00:00 (24 rows)" in result.warnings[0]
    assert (
        'every occurred date is the 1st of a month (24 rows): the export seems to give months only. Set [occurred] precision = "month".'
        in result.warnings[1]
    )

    # day/month swapped: the export is dd/mm/yyyy, the mapping reads %m/%d/%Y
    rows = [f"{100 + i},{1 + i % 28:02d}/03/2017 0{1 + i % 9}:15:00 PM,X,0820,T,false,," for i in range(60)]
    swapped = write(tmp_path / "swapped.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    result = ingest(real_warehouse, CORPUS_MAPPING, [swapped])
    assert result.rejected == sum(1 + i % 28 > 12 for i in range(60))  # days 13-28 read as months
    assert any("day and month look swapped in [occurred] formats" in w for w in result.warnings), result.warnings


# ------------------------------------------------------------------------------------------ validity and rejects
def test_a_reject_names_its_rule_and_value(real_warehouse, tmp_path):
    ingest(real_warehouse, CORPUS_MAPPING, [BAD_INPUT / "unparseable_date.csv"])
    by_line = {r["line_number"]: r for r in rejects_of(real_warehouse)}
    assert by_line[5]["rule"] == "[validity] min_date = 2001-01-01: date too early"
    assert by_line[5]["value"] == "1999-01-04 23:15:00"
    assert by_line[5]["reason"].endswith(
        "outside the valid range 2001-01-01 .. 2025-12-31 (before [validity] min_date)"
    )
    assert by_line[6]["rule"] == "[validity] max_date = 2025-12-31: date too late"
    assert by_line[6]["reason"].endswith("(after [validity] max_date)")
    assert (by_line[2]["rule"], by_line[2]["value"]) == ("[occurred] formats: unparseable date", "not a date")
    assert (by_line[3]["rule"], by_line[3]["value"]) == ("[occurred] columns: date is empty", None)


def test_max_date_far_in_the_future_is_a_date_not_a_crash(real_warehouse, tmp_path):
    """Before: max_date = "9999-12-31" crashed with "date value out of range" (the day after it)."""
    far = corpus_mapping(tmp_path, 'max_date = "2025-12-31"', 'max_date = "9999-12-31"')
    result = ingest(real_warehouse, far, [BAD_INPUT / "unparseable_date.csv"])
    assert (result.loaded, result.rejected) == (2, 5)  # 2099-01-05 is valid now


def test_max_date_today_names_the_day(real_warehouse, tmp_path):
    today_mapping = corpus_mapping(tmp_path, 'max_date = "2025-12-31"', 'max_date = "today"')
    ingest(real_warehouse, today_mapping, [BAD_INPUT / "unparseable_date.csv"], today=dt.date(2026, 12, 1))
    (line6,) = [r for r in rejects_of(real_warehouse) if r["line_number"] == 6]
    assert "outside the valid range 2001-01-01 .. today (2026-12-01) (after [validity] max_date)" in line6["reason"]
    assert line6["rule"] == "[validity] max_date = today: date too late"


def test_reingesting_an_unchanged_file_records_no_rejects_again(real_warehouse, run_cli):
    """Before: every re-ingest stored the file's rejects again, doubling the table and the governance counts."""
    for _ in range(3):
        code, out, err = run_cli(
            "ingest", "--mapping", CORPUS_MAPPING, BAD_INPUT / "many_problems.csv", warehouse=real_warehouse
        )
        assert code == 0, err
    assert "rejected            6  (all recorded before, by the same file's earlier ingest: see `ilp rejects" in out
    assert query(real_warehouse, "SELECT count(*), min(ingest_id), max(ingest_id) FROM rejects") == [(6, 1, 1)]
    assert query(real_warehouse, "SELECT list(rejected ORDER BY ingest_id) FROM ingest_log") == [([6, 6, 6],)]

    from ilp.warehouse import run_query

    with contextlib.closing(real_warehouse.connect()) as con:
        by_rule = run_query(con, "governance_rejects_by_reason")
        sample = run_query(con, "governance_rejects_sample")
    assert by_rule["rows"].sum() == 6 and len(sample) == 6
    assert "[id] columns: id repeated in the batch (the last row wins)" in by_rule["reason"].tolist()


def test_governance_groups_rejects_by_rule_not_by_text_with_the_id(real_warehouse, tmp_path):
    rows = [f"{5000 + i % 7},01/0{1 + i % 9}/2017 10:00:00 AM,X,0820,THEFT,false,41.88,-87.63" for i in range(40)]
    write(tmp_path / "repeats.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    ingest(real_warehouse, CORPUS_MAPPING, [tmp_path / "repeats.csv"])
    from ilp.warehouse import run_query

    with contextlib.closing(real_warehouse.connect()) as con:
        by_rule = run_query(con, "governance_rejects_by_reason")
    assert by_rule[["reason", "field", "rows"]].values.tolist() == [
        ["[id] columns: id repeated in the batch (the last row wins)", "ID", 33]
    ]


def test_every_reject_keeps_the_raw_line_as_in_the_file(real_warehouse, tmp_path):
    """Before: duplicates and date failures stored a JSON of the mapped columns."""
    lines = [
        HEADER,
        '7001,01/01/2017 10:00:00 AM,"001XX N STATE ST',  # a record over two lines ...
        'REAR",0486,BATTERY,false,41.8781,-87.6298',  # ... superseded by line 5
        "7002,not a date,  002XX W MADISON ST ,0820,THEFT,true,41.8819,-87.6340",
        "7001,01/02/2017 10:00:00 AM,001XX N STATE ST,0486,BATTERY,false,41.8781,-87.6298",
    ]
    export = tmp_path / "raw.csv"
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    ingest(real_warehouse, CORPUS_MAPPING, [export])
    rejects = {r["line_number"]: r for r in rejects_of(real_warehouse)}
    assert (
        rejects[2]["raw_row"]
        == '7001,01/01/2017 10:00:00 AM,"001XX N STATE ST\r\nREAR",0486,BATTERY,false,41.8781,-87.6298'
    )
    assert rejects[2]["reason"] == "duplicate id 7001 in this batch: superseded by raw.csv line 5"
    assert rejects[4]["raw_row"] == lines[3]  # spaces kept, as in the file


# ------------------------------------------------------------------------------------------ repeated ids
def test_repeated_ids_cost_linear_time(real_warehouse, tmp_path):
    """Before: 20,000 repeats of one id took 32 s (each reject looked up its winner's line over the file)."""
    rows = [
        f"1001,01/0{1 + i % 9}/2017 10:00:00 AM,00{i % 10}XX W LAKE ST,0820,THEFT,false,41.885,-87.63"
        for i in range(20_000)
    ]
    export = write(tmp_path / "repeats.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    started = time.perf_counter()
    result = ingest(real_warehouse, CORPUS_MAPPING, [export])
    seconds = time.perf_counter() - started
    assert (result.loaded, result.rejected) == (1, 19_999)
    assert seconds < 10, f"{seconds:.1f} s for 20,000 repeated ids"
    last = query(real_warehouse, "SELECT reason FROM rejects WHERE line_number = 2")[0][0]
    assert last == "duplicate id 1001 in this batch: superseded by repeats.csv line 20001"


# ------------------------------------------------------------------------------------------ the mapping's taxonomy
def taxonomy_mapping(folder: Path, taxonomy: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = CORPUS_MAPPING.read_text(encoding="utf-8").replace('taxonomy = "chicago_iucr"', f'taxonomy = "{taxonomy}"')
    return write(folder / "agency.toml", text)


def test_a_taxonomy_beside_the_mapping_is_loaded_and_only_taxonomies_in_use_stay(real_warehouse, tmp_path):
    folder = tmp_path / "agency"
    mapping_path = taxonomy_mapping(folder, "codes/agency_codes.csv")
    (folder / "codes").mkdir()
    codes = folder / "codes" / "agency_codes.csv"
    write(codes, "offense_code,offense_description,category,provenance\n0486,Battery,violence_without_injury,test\n")
    m = mapping.load(mapping_path)
    assert (m.taxonomy, m.taxonomy_path) == ("agency_codes", codes.resolve())
    result = ingest(real_warehouse, m, [BAD_INPUT / "good.csv"])
    assert result.unmapped_codes == 2  # 0820 and 0560 are not in the agency's list
    assert query(real_warehouse, "SELECT DISTINCT source FROM offence_taxonomy") == [("agency_codes",)]
    meta = dict(query(real_warehouse, "SELECT key, value FROM snapshot_meta WHERE key LIKE 'taxonomy.%'"))
    assert meta["taxonomy.agency_codes.file"] == str(codes.resolve())

    # an edit to the taxonomy takes effect at the next ingest: the re-classified incidents are updated
    write(codes, codes.read_text() + "0820,Theft,theft_other,test\n0560,Assault,violence_without_injury,test\n")
    again = ingest(real_warehouse, mapping.load(mapping_path), [BAD_INPUT / "good.csv"])
    assert (again.updated, again.unchanged, again.unmapped_codes) == (2, 1, 0)


@pytest.mark.parametrize("taxonomy", ["../outside.csv", "/etc/passwd", "link.csv"])
def test_a_taxonomy_outside_the_mapping_folder_is_refused(tmp_path, taxonomy):
    """Before: only a name under data/taxonomy was possible; a path would have loaded as all-unmapped."""
    folder = tmp_path / "agency"
    mapping_path = taxonomy_mapping(folder, taxonomy)
    write(tmp_path / "outside.csv", "offense_code,offense_description,category,provenance\n")
    (folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    with pytest.raises(MappingError, match=r"outside the mapping's folder .* and data/taxonomy"):
        mapping.load(mapping_path)


def test_a_taxonomy_named_like_a_shipped_one_or_missing_is_refused(tmp_path):
    folder = tmp_path / "agency"
    folder.mkdir()
    write(folder / "lapd.csv", "x")
    with pytest.raises(MappingError, match=r"has the name of the shipped taxonomy data/taxonomy/lapd.csv"):
        mapping.load(taxonomy_mapping(folder, "lapd.csv"))
    with pytest.raises(MappingError, match=r"no such file .*nothing.csv \(a path is read relative to the mapping"):
        mapping.load(taxonomy_mapping(folder, "nothing.csv"))
    write(folder / "riverton.csv", "x")
    with pytest.raises(MappingError, match=r'A file .*riverton.csv exists: write taxonomy = "riverton.csv"'):
        mapping.load(taxonomy_mapping(folder, "riverton"))


# ------------------------------------------------------------------------------------------ failing fast
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_bbox_with_nan_or_inf_blames_the_mapping(run_cli, real_warehouse, tmp_path, folder_state, value):
    """Before: the bbox went into the SQL and the error blamed the data file."""
    bad = corpus_mapping(tmp_path, "bbox = [-87.95,", f"bbox = [{value},")
    before = folder_state(real_warehouse.directory)
    code, out, err = run_cli("ingest", "--mapping", bad, BAD_INPUT / "good.csv", warehouse=real_warehouse)
    assert code == 1 and out == ""
    assert err.startswith(f"ilp ingest: error: {bad}: [location] bbox must be") and "finite" in err
    assert "good.csv" not in err
    assert folder_state(real_warehouse.directory) == before


def test_a_folder_that_turns_read_only_reports_the_real_error(real_warehouse, run_cli, folder_state, monkeypatch):
    """Before: the cleanup's own PermissionError (unlinking the partial file) replaced the real error."""
    before = folder_state(real_warehouse.directory)
    real_unlink = Path.unlink

    def refuse_replace(source, target):
        raise PermissionError(13, "Permission denied (the folder turned read-only)", str(source))

    def refuse_unlink(self, missing_ok=False):
        if self.name.endswith(".partial"):
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(warehouse_module.os, "replace", refuse_replace)
    monkeypatch.setattr(Path, "unlink", refuse_unlink)
    code, out, err = run_cli("ingest", "--mapping", CORPUS_MAPPING, BAD_INPUT / "good.csv", warehouse=real_warehouse)
    monkeypatch.undo()
    assert code == 1 and out == ""
    assert "the folder turned read-only" in err and "Traceback" not in err
    leftover = [name for name in folder_state(real_warehouse.directory) if name.endswith(".partial")]
    assert len(leftover) == 1  # it could not be removed then ...
    code, out, err = run_cli("status", warehouse=real_warehouse)  # ... and goes at the next ilp command
    assert code == 0 and f"ilp: removed {leftover[0]}" in err and f"Removed {leftover[0]}" in out
    assert folder_state(real_warehouse.directory) == before


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ('min_date = "2001-01-01"', "[validity] min_date must be a date YYYY-MM-DD, not '01/01/2001'"),
        ('max_date = "2025-12-31"', "[validity] min_date 2001-01-01 is after max_date 2000-01-01"),
    ],
)
def test_validity_dates_are_checked_when_the_mapping_is_read(tmp_path, changes, expected):
    """Before: a date that was not ISO crashed the ingest with a ValueError traceback."""
    replacement = 'min_date = "01/01/2001"' if changes.startswith("min") else 'max_date = "2000-01-01"'
    with pytest.raises(MappingError) as caught:
        mapping.load(corpus_mapping(tmp_path, changes, replacement))
    assert expected in str(caught.value)


# ------------------------------------------------------------------------------------------ unfinished snapshots
def test_a_killed_writes_partial_file_is_removed_at_the_next_command_and_reported(real_warehouse, run_cli):
    """Before: a killed ingest's .partial (93 MB at Chicago size) stayed until the next successful write."""
    leftover = real_warehouse.directory / "s00002-20260101T000000Z.duckdb.partial"
    leftover.write_bytes(b"\0" * 4096)
    (real_warehouse.directory / f"{leftover.name}.wal").write_bytes(b"\0")
    code, out, err = run_cli("rejects", warehouse=real_warehouse)
    assert code == 0
    assert f"ilp: removed {leftover.name} (0.0 MiB), an unfinished snapshot left by an interrupted write" in err
    assert not leftover.exists() and not Path(f"{leftover}.wal").exists()

    leftover.write_bytes(b"\0" * 4096)
    report = json.loads(run_cli("status", "--json", warehouse=real_warehouse)[1])
    assert report["partial_files"]["removed"] == [{"file": leftover.name, "bytes": 4096}]


def test_a_running_writes_partial_file_is_left_alone(real_warehouse, run_cli):
    partial = real_warehouse.directory / "s00002-20260101T000000Z.duckdb.partial"
    partial.write_bytes(b"\0" * 1024)
    with open(real_warehouse.directory / ".write.lock", "a+") as lock:  # as a running write holds it
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        code, out, err = run_cli("status", warehouse=real_warehouse)
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    assert code == 0 and partial.exists() and "removed" not in err
    assert f"Unfinished snapshot file {partial.name} (0.0 MiB): a write is running now" in out


def test_status_reads_a_snapshot_written_before_rules_and_warnings(real_warehouse, tmp_path):
    """A snapshot from older code has no ingest_warnings table and no rule/value columns in rejects."""
    ingest(real_warehouse, CORPUS_MAPPING, [BAD_INPUT / "many_problems.csv"])
    path = real_warehouse.current_path()
    with contextlib.closing(duckdb.connect(str(path))) as con:
        con.execute("DROP TABLE ingest_warnings")
        for column in ("rule", "value", "file_sha256"):
            con.execute(f"ALTER TABLE rejects DROP COLUMN {column}")
    from ilp.status import rejects, status
    from ilp.warehouse import run_query

    report = status(real_warehouse)
    assert report["warnings"] == [] and report["tables"]["rejects"] == 6
    assert rejects(real_warehouse)["rule"].isna().all()
    with contextlib.closing(real_warehouse.connect()) as con:
        assert run_query(con, "governance_rejects_by_reason")["rows"].sum() == 6
    # the next ingest brings the snapshot up to date
    again = ingest(real_warehouse, CORPUS_MAPPING, [BAD_INPUT / "good.csv"])
    assert (again.loaded, again.updated) == (2, 1)
    assert query(real_warehouse, "SELECT count(*) FROM ingest_warnings") == [(0,)]


def test_the_ingest_refuses_before_copying_the_snapshot(real_warehouse, tmp_path, monkeypatch):
    """File checks run before the (possibly large) current snapshot is copied."""
    copies = []
    monkeypatch.setattr(warehouse_module.shutil, "copyfile", lambda *a: copies.append(a))
    with pytest.raises(IngestError, match="missing required column"):
        ingest(real_warehouse, CORPUS_MAPPING, [BAD_INPUT / "missing_column.csv"])
    assert copies == []


# ------------------------------------------------------------------------------------------ the governance page
@pytest.mark.usefixtures("entry_point_has_run")
def test_the_governance_page_shows_the_warning_and_rejects_by_rule(app_env, real_warehouse, tmp_path, monkeypatch):
    from pagetest import frame_with, open_page

    mapping_path, export = timed(tmp_path, '"%H%M"', [*hour_only_rows(), "99:99", "", "2500"])
    result = ingest(real_warehouse, mapping_path, [export])
    assert (result.loaded, result.rejected, len(result.warnings)) == (30, 3, 1)
    monkeypatch.setenv("ILP_WAREHOUSE", str(real_warehouse.directory))
    monkeypatch.setenv("ILP_ROLE", "analyst")
    at = open_page("governance", None)
    warnings = [w.value for w in at.warning]
    assert any(
        w.startswith("**timed: times.csv** (ingest 1): every occurred time falls in the first hour") for w in warnings
    ), warnings
    by_rule = frame_with(at, "reason", "example")
    assert sorted(zip(by_rule["reason"], by_rule["rows"])) == [
        ("[occurred] time_column: time is empty", 1),
        ("[occurred] time_format: unparseable time", 2),
    ]


def test_rejects_from_before_file_hashes_are_not_stored_again(real_warehouse):
    """A snapshot whose rejects predate file_sha256: the upgrade takes each hash from its ingest's file list."""
    ingest(real_warehouse, CORPUS_MAPPING, [BAD_INPUT / "many_problems.csv"])
    with contextlib.closing(duckdb.connect(str(real_warehouse.current_path()))) as con:
        con.execute("ALTER TABLE rejects DROP COLUMN file_sha256")
    again = ingest(real_warehouse, CORPUS_MAPPING, [BAD_INPUT / "many_problems.csv"])
    assert (again.rejected, again.rejects_already_recorded, again.rejects_recorded_by) == (6, 6, [1])
    assert query(real_warehouse, "SELECT count(*), count(file_sha256) FROM rejects") == [(6, 6)]


def test_two_sources_cannot_share_a_taxonomy_name_from_different_files(real_warehouse, tmp_path):
    for agency in ("north", "south"):
        folder = tmp_path / agency
        folder.mkdir()
        write(folder / "codes.csv", "offense_code,offense_description,category,provenance\n0486,B,robbery,x\n")
        text = taxonomy_mapping(folder, "codes.csv").read_text().replace('name = "bad_input"', f'name = "{agency}"')
        write(folder / "agency.toml", text)
    ingest(real_warehouse, tmp_path / "north" / "agency.toml", [BAD_INPUT / "good.csv"])
    with pytest.raises(IngestError, match=r"already has a taxonomy of that name from .*north.*used by source north"):
        ingest(real_warehouse, tmp_path / "south" / "agency.toml", [BAD_INPUT / "good.csv"])
    # north itself ingests again with its own file
    ingest(real_warehouse, tmp_path / "north" / "agency.toml", [BAD_INPUT / "good.csv"])


def test_a_header_read_across_a_chunk_boundary_is_whole(real_warehouse, tmp_path):
    """The header is read in 64 KiB chunks up to 1 MiB: a skipped line ending just at a chunk's end (CRLF)
    must not leave the header cut."""
    preamble = "x" * ((1 << 16) - 3) + "\r\n"
    rows = (BAD_INPUT / "good.csv").read_text(encoding="utf-8").replace("\n", "\r\n")
    export = tmp_path / "preamble.csv"
    export.write_bytes((preamble + rows).encode())
    skipping = corpus_mapping(tmp_path, "header = true", "header = true\nskip_rows = 1")
    assert ingest(real_warehouse, skipping, [export]).loaded == 3
