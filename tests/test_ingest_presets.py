"""Each shipped mapping preset on the real exports under ../shared/data (skipped when that folder is absent).

Row counts are reconciled against an independent DuckDB count of the raw files, the accounting rule is
checked, and a few known rows are spot-checked. The Chicago ingest (three years, ~770k rows) runs once per
module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from ilp.ingest import IngestResult, ingest
from ilp.warehouse import Warehouse

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHICAGO = [SHARED_DATA / "chicago" / f"crimes_{year}.csv.gz" for year in (2016, 2017, 2018)]
UK = sorted((SHARED_DATA / "uk_police").glob("*-merseyside-street.csv.gz"))
LAPD = [SHARED_DATA / "la_west" / "crime_2020_2021_west_la.csv"]

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(
        not SHARED_DATA.is_dir(),
        reason=f"real exports folder {SHARED_DATA} is absent (it sits beside the project checkout as ../shared/data)",
    ),
]


def _require(files: list[Path], expected: int) -> None:
    missing = [str(f) for f in files if not f.exists()]
    if missing or len(files) != expected:
        pytest.skip(f"real exports missing under {SHARED_DATA}: expected {expected} files, missing {missing or files}")


def raw(sql: str, files: list[Path]) -> tuple:
    """An independent look at the raw files: plain read_csv with DuckDB's own sniffer, all text."""
    relation = f"read_csv({[str(f) for f in files]!r}, all_varchar = true)"
    with contextlib.closing(duckdb.connect()) as con:
        return con.execute(sql.format(raw=relation)).fetchone()


def one(warehouse: Warehouse, sql: str, params=None):
    with contextlib.closing(warehouse.connect()) as con:
        return con.execute(sql, params or []).fetchone()


def check_accounting(result: IngestResult) -> None:
    assert result.loaded + result.updated + result.unchanged + result.rejected == result.rows_read


@pytest.fixture(scope="module")
def chicago(tmp_path_factory) -> tuple[Warehouse, IngestResult]:
    _require(CHICAGO, 3)
    warehouse = Warehouse(tmp_path_factory.mktemp("chicago") / "warehouse")
    return warehouse, ingest(warehouse, "chicago", CHICAGO)


@pytest.fixture(scope="module")
def uk(tmp_path_factory) -> tuple[Warehouse, IngestResult]:
    _require(UK, 5)
    warehouse = Warehouse(tmp_path_factory.mktemp("uk") / "warehouse")
    return warehouse, ingest(warehouse, "uk_police", UK)


@pytest.fixture(scope="module")
def lapd(tmp_path_factory) -> tuple[Warehouse, IngestResult]:
    _require(LAPD, 1)
    warehouse = Warehouse(tmp_path_factory.mktemp("lapd") / "warehouse")
    return warehouse, ingest(warehouse, "lapd", LAPD)


def statuses(warehouse: Warehouse) -> dict[str, int]:
    with contextlib.closing(warehouse.connect()) as con:
        return dict(con.execute("SELECT location_status, count(*) FROM incidents GROUP BY ALL").fetchall())


# ------------------------------------------------------------------------------------------ Chicago
@pytest.fixture(scope="module")
def chicago_raw() -> dict[str, int]:
    """The raw facts the Chicago tests reconcile against, in one pass over the three files."""
    _require(CHICAGO, 3)
    rows, empty_latitude, arrests = raw(
        "SELECT count(*), count(*) FILTER (WHERE nullif(trim(Latitude), '') IS NULL), "
        "count(*) FILTER (WHERE lower(Arrest) = 'true') FROM {raw}",
        CHICAGO,
    )
    return {"rows": rows, "empty_latitude": empty_latitude, "arrests": arrests}


def test_chicago_counts_reconcile(chicago, chicago_raw):
    warehouse, result = chicago
    rows = chicago_raw["rows"]
    assert rows > 700_000
    assert result.rows_read == rows
    check_accounting(result)
    assert (result.loaded, result.updated, result.unchanged, result.rejected) == (rows, 0, 0, 0)
    assert one(warehouse, "SELECT count(*) FROM incidents")[0] == rows
    assert result.unmapped_codes == 0
    assert one(warehouse, "SELECT count(*) FROM incidents WHERE offense_category = 'unmapped'")[0] == 0


def test_chicago_missing_locations_match_empty_latitude(chicago, chicago_raw):
    warehouse, result = chicago
    empty = chicago_raw["empty_latitude"]
    assert empty > 0
    counted = statuses(warehouse)
    assert counted["missing"] == empty
    assert result.missing_location == sum(n for status, n in counted.items() if status != "ok")
    assert (
        one(warehouse, "SELECT count(*) FROM incidents WHERE location_status <> 'ok' AND latitude IS NOT NULL")[0] == 0
    )


def test_chicago_known_row(chicago):
    warehouse, _ = chicago
    row = one(
        warehouse,
        "SELECT occurred_at, offense_code, offense_category, offense_description, location_status, district, beat, "
        "other_areas['ward'], other_areas['community_area'], domestic, arrest, clearance_status, occurred_precision "
        "FROM incidents WHERE source = 'chicago' AND source_id = '11227508'",
    )
    assert row == (
        dt.datetime(2017, 1, 1, 0, 1),
        "1754",
        "rape",
        "OFFENSE INVOLVING CHILDREN - AGG SEX ASSLT OF CHILD FAM MBR",
        "missing",
        "010",
        "1033",
        "12",
        "30",
        False,
        False,
        "open",
        "exact",
    )


def test_chicago_located_row_and_arrest_clearance(chicago, chicago_raw):
    warehouse, _ = chicago
    latitude, longitude, status = one(
        warehouse, "SELECT latitude, longitude, location_status FROM incidents WHERE source_id = '10805378'"
    )
    assert status == "ok"
    assert (latitude, longitude) == pytest.approx((41.80993288, -87.613843427))
    arrests, cleared = one(
        warehouse,
        "SELECT count(*) FILTER (WHERE arrest), count(*) FILTER (WHERE clearance_status = 'cleared_arrest') FROM incidents",
    )
    assert arrests == cleared == chicago_raw["arrests"]


# ------------------------------------------------------------------------------------------ data.police.uk
def test_uk_counts_reconcile(uk):
    warehouse, result = uk
    rows, without_id = raw(
        "SELECT count(*), count(*) FILTER (WHERE nullif(trim(\"Crime ID\"), '') IS NULL) FROM {raw}", UK
    )
    assert result.rows_read == rows
    check_accounting(result)
    assert (result.loaded, result.rejected) == (rows, 0)
    assert result.unmapped_codes == 0
    # rows without a Crime ID (anti-social behaviour) get content-hash ids instead of being rejected
    hashed = one(warehouse, "SELECT count(*) FROM incidents WHERE source_id LIKE 'h:%'")[0]
    assert hashed == without_id > 10_000
    asb = one(
        warehouse,
        "SELECT count(*), count(*) FILTER (WHERE source_id LIKE 'h:%') FROM incidents "
        "WHERE offense_code = 'Anti-social behaviour'",
    )
    assert asb[0] == asb[1] > 0
    assert (
        one(
            warehouse,
            "SELECT count(*) FROM incidents WHERE source_id NOT SIMILAR TO 'h:[0-9a-f]{32}#[0-9]+' "
            "AND source_id LIKE 'h:%'",
        )[0]
        == 0
    )


def test_uk_month_precision(uk):
    warehouse, _ = uk
    precision, first, last, not_first_of_month = one(
        warehouse,
        "SELECT string_agg(DISTINCT occurred_precision, ','), min(occurred_at), max(occurred_at), "
        "count(*) FILTER (WHERE occurred_at <> date_trunc('month', occurred_at)) FROM incidents",
    )
    assert precision == "month"
    assert (first, last) == (dt.datetime(2018, 10, 1), dt.datetime(2019, 2, 1))
    assert not_first_of_month == 0
    with contextlib.closing(warehouse.connect()) as con:
        months = con.execute(
            "SELECT strftime(occurred_at, '%Y-%m') AS month, count(*) FROM incidents GROUP BY ALL ORDER BY 1"
        ).fetchall()
    with contextlib.closing(duckdb.connect()) as con:
        raw_months = con.execute(
            f"SELECT Month, count(*) FROM read_csv({[str(f) for f in UK]!r}, all_varchar = true) GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert months == raw_months


def test_uk_known_row(uk):
    warehouse, _ = uk
    crime_id = "a2202f7d81ebcfcd29b894f6d3dba640e9c9424966d2f07f3734eb91efe21e76"
    row = one(
        warehouse,
        "SELECT occurred_at, offense_code, offense_category, beat, location_text, clearance_status, "
        "outcome_description, round(latitude, 6), round(longitude, 6) FROM incidents WHERE source_id = ?",
        [crime_id],
    )
    assert row[:7] == (
        dt.datetime(2018, 10, 1),
        "Drugs",
        row[2],
        "E01012391",
        "On or near Higher Road",
        "cleared_arrest",
        "Offender deprived of property",
    )
    assert row[2] != "unmapped"
    assert row[7:] == (53.352456, -2.804451)


def test_uk_reingest_is_all_unchanged(uk):
    warehouse, first = uk
    again = ingest(warehouse, "uk_police", UK)
    check_accounting(again)
    assert (again.rows_read, again.loaded, again.updated, again.unchanged, again.rejected) == (
        first.rows_read,
        0,
        0,
        first.rows_read,
        0,
    )
    assert one(warehouse, "SELECT count(*) FROM incidents")[0] == first.loaded


# ------------------------------------------------------------------------------------------ LAPD
def test_lapd_counts_reconcile(lapd):
    warehouse, result = lapd
    (rows,) = raw("SELECT count(*) FROM {raw}", LAPD)
    assert rows == 12_954
    assert result.rows_read == rows
    check_accounting(result)
    assert (result.loaded, result.rejected) == (rows, 0)
    assert result.unmapped_codes == 0
    assert one(warehouse, "SELECT count(*) FROM incidents WHERE offense_category = 'unmapped'")[0] == 0


def test_lapd_zero_coordinates(lapd):
    warehouse, result = lapd
    counted = statuses(warehouse)
    assert counted.get("zero") == 31
    assert result.missing_location == sum(n for status, n in counted.items() if status != "ok")
    (raw_zero,) = raw(
        "SELECT count(*) FROM {raw} WHERE try_cast(LAT AS DOUBLE) = 0 AND try_cast(LON AS DOUBLE) = 0", LAPD
    )
    assert raw_zero == 31


def test_lapd_known_row(lapd):
    warehouse, _ = lapd
    row = one(
        warehouse,
        "SELECT occurred_at, reported_at, offense_code, offense_description, district, beat, "
        "premise_type, clearance_status, outcome_description, latitude, longitude, location_status "
        "FROM incidents WHERE source_id = '200815333'",
    )
    assert row == (
        dt.datetime(2020, 10, 15, 20, 0),
        dt.datetime(2020, 10, 15),
        "624",
        "BATTERY - SIMPLE ASSAULT",
        "West LA",
        "814",
        "SINGLE FAMILY DWELLING",
        "cleared_other",
        "Adult Other",
        34.0701,
        -118.4679,
        "ok",
    )


def test_lapd_time_without_leading_zeros(lapd):
    """TIME OCC is hhmm without leading zeros: "5" is 00:05, "100" is 01:00."""
    warehouse, _ = lapd
    with contextlib.closing(warehouse.connect()) as con:
        stored = dict(con.execute("SELECT source_id, strftime(occurred_at, '%H:%M') FROM incidents").fetchall())
    with contextlib.closing(duckdb.connect()) as con:
        samples = con.execute(
            f"SELECT DR_NO, \"TIME OCC\" FROM read_csv('{LAPD[0]}', all_varchar = true) "
            'WHERE length("TIME OCC") < 4 ORDER BY DR_NO LIMIT 20'
        ).fetchall()
    assert samples
    for dr_no, time_occ in samples:
        padded = time_occ.zfill(4)
        assert stored[dr_no] == f"{padded[:2]}:{padded[2:]}", (dr_no, time_occ)


# ------------------------------------------------------------------------------------------ plausibility
@pytest.mark.parametrize("preset", ["chicago", "uk", "lapd"])
def test_real_exports_load_without_plausibility_warnings(preset, request):
    """The time checks (ilp.ingest.plausibility_warnings) find nothing wrong in a correctly mapped real export."""
    _, result = request.getfixturevalue(preset)
    assert result.warnings == []
