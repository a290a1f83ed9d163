"""Per-snapshot summaries (ilp/summaries.py): the weekly cube and the snapshot's metadata equal a direct
aggregation over ``incidents`` after a demo build, after ingests that add rows and that update them (a
changed date moves an incident out of its old week), after a harm-weight change, and on a snapshot
written before summaries (read through views, stored by its next write). Writes recompute only the weeks
they touch."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ilp import summaries
from ilp.ingest import ingest
from ilp.snapshot import SnapshotInfo
from ilp.warehouse import Warehouse, read_meta, run_query, writing_table

BAD_INPUT = Path(__file__).resolve().parent / "bad_input"
MAPPING = BAD_INPUT / "mapping.toml"
GOOD = BAD_INPUT / "good.csv"

# The cube's rows written out independently of ilp/summaries.sql: the same grouping and counts.
DIRECT_CUBE = """
SELECT
    CAST(date_trunc('week', occurred_at) AS DATE) AS week,
    CAST(date_trunc('month', occurred_at) AS DATE) AS month,
    district, beat, offense_category AS category, occurred_precision,
    CASE WHEN occurred_precision = 'exact' AND occurred_at IS NOT NULL THEN
        CASE WHEN hour(occurred_at) BETWEEN 7 AND 14 THEN 'day'
             WHEN hour(occurred_at) BETWEEN 15 AND 22 THEN 'evening' ELSE 'night' END
    END AS shift,
    count(*) AS incidents,
    count(*) FILTER (WHERE location_status = 'ok') AS located,
    count(location_text) AS with_location_text,
    count(*) FILTER (WHERE domestic) AS domestic,
    min(occurred_at) AS first_at,
    max(occurred_at) AS last_at
FROM incidents
GROUP BY ALL
"""
CUBE_COLUMNS = "week, month, district, beat, category, occurred_precision, shift, incidents, located, "
CUBE_COLUMNS += "with_location_text, domestic, first_at, last_at"

DIRECT_FACTS = """
SELECT
    CAST(min(occurred_at) AS DATE) AS first_day, CAST(max(occurred_at) AS DATE) AS last_day, count(*) AS incidents,
    count(beat) AS with_beat, count(DISTINCT beat) AS beats, count(district) AS with_district,
    count(DISTINCT district) AS districts, count(*) FILTER (WHERE location_status = 'ok') AS located,
    count(location_text) AS with_location_text,
    count(*) FILTER (WHERE occurred_precision = 'exact') AS exact_times,
    count(*) FILTER (WHERE occurred_precision = 'day') AS day_only,
    count(*) FILTER (WHERE occurred_precision = 'month') AS month_only
FROM incidents
"""


def assert_summaries_match_incidents(con) -> int:
    """Every summary equals the direct aggregation over incidents; returns the cube's row count."""
    cube = con.execute(f"SELECT {CUBE_COLUMNS} FROM summary.weeks").df()
    direct = con.execute(f"SELECT {CUBE_COLUMNS} FROM ({DIRECT_CUBE})").df()
    keys = list(cube.columns)
    cube = cube.sort_values(keys, na_position="first").reset_index(drop=True)
    direct = direct.sort_values(keys, na_position="first").reset_index(drop=True)
    pd.testing.assert_frame_equal(cube, direct, check_dtype=False)
    facts = con.execute("SELECT * FROM summary.facts").df()
    pd.testing.assert_frame_equal(facts, con.execute(DIRECT_FACTS).df(), check_dtype=False)
    districts = con.execute("SELECT district, incidents FROM summary.districts ORDER BY district").fetchall()
    assert (
        districts
        == con.execute(
            "SELECT district, count(*) FROM incidents WHERE district IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    categories = con.execute("SELECT category, incidents FROM summary.categories ORDER BY category").fetchall()
    assert (
        categories == con.execute("SELECT offense_category, count(*) FROM incidents GROUP BY 1 ORDER BY 1").fetchall()
    )
    return len(cube)


def cube_harm_matches_incident_harm(con, index: tuple[str, str], include_proactive: bool) -> None:
    """Harm per (week, district, category) from the cube times category_harm equals incident_harm summed."""
    from_cube = con.execute(
        "SELECT k.week, k.district, k.category, sum(k.incidents * coalesce(h.harm_weight, 0.0)) AS harm "
        "FROM summary.weeks k LEFT JOIN category_harm(?, ?, include_proactive := ?) h ON h.category = k.category "
        "GROUP BY ALL",
        [*index, include_proactive],
    ).df()
    direct = con.execute(
        "SELECT CAST(date_trunc('week', occurred_at) AS DATE) AS week, district, offense_category AS category, "
        "sum(harm) AS harm FROM incident_harm(?, ?, include_proactive := ?) GROUP BY ALL",
        [*index, include_proactive],
    ).df()
    merged = from_cube.merge(direct, on=["week", "district", "category"], how="outer", suffixes=("", "_direct"))
    assert len(merged) == len(from_cube) == len(direct)
    np.testing.assert_allclose(merged["harm"], merged["harm_direct"], rtol=1e-12)
    assert merged["harm"].sum() > 0


def meta(warehouse: Warehouse) -> dict:
    with contextlib.closing(warehouse.connect()) as con:
        return read_meta(con)


# ------------------------------------------------------------------------------------------ demo city
def test_a_demo_build_stores_summaries_equal_to_direct_aggregation(demo_warehouse):
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        assert summaries.stored(con)
        rows = assert_summaries_match_incidents(con)
        incidents = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
        assert 0 < rows < incidents  # a summary, not a copy
        for index in [("cchi", "2016"), ("csi", "2009")]:
            for include_proactive in (False, True):
                cube_harm_matches_incident_harm(con, index, include_proactive)
        assert read_meta(con)[summaries.META_KEY] == summaries.VERSION


@pytest.fixture
def demo_copy(demo_warehouse, tmp_path) -> Warehouse:
    directory = tmp_path / "demo_copy"
    shutil.copytree(demo_warehouse, directory)
    return Warehouse(directory)


def test_a_harm_weight_change_is_seen_by_every_harm_figure(demo_copy):
    with contextlib.closing(demo_copy.connect()) as con:
        last = con.execute("SELECT max(week) FROM summary.weeks").fetchone()[0]
    with demo_copy.write(kind="demo", note="CCHI robbery weight tripled") as con:
        con.execute("UPDATE harm_weights SET weight = weight * 3 WHERE index_name = 'cchi' AND category = 'robbery'")
    assert meta(demo_copy)[summaries.REFRESH_KEY] == "unchanged"  # harm is not stored: nothing to rebuild
    with contextlib.closing(demo_copy.connect()) as con:
        cube_harm_matches_incident_harm(con, ("cchi", "2016"), False)
        params = {
            "harm_index": "cchi",
            "harm_version": "2016",
            "week": last,
            "history_start": last - dt.timedelta(weeks=30),
            "district": None,
            "category": "robbery",
        }
        weekly = run_query(con, "trends_weekly", params).set_index("week")["harm"]
        direct = con.execute(
            "SELECT CAST(date_trunc('week', occurred_at) AS DATE) AS week, sum(harm) AS harm "
            "FROM incident_harm('cchi', '2016') WHERE offense_category = 'robbery' GROUP BY 1"
        ).df()
        direct = direct.set_index("week")["harm"].reindex(weekly.index, fill_value=0.0)
        np.testing.assert_allclose(weekly.to_numpy(), direct.to_numpy())
        assert weekly.sum() > 0


def test_rows_added_and_replaced_in_a_write_update_only_their_weeks(demo_copy):
    with contextlib.closing(demo_copy.connect()) as con:
        untouched_before = con.execute("SELECT * FROM summary.weeks WHERE week < DATE '2025-01-01'").df()
        moved = con.execute(
            "SELECT source, source_id, occurred_at FROM incidents WHERE occurred_at >= TIMESTAMP '2025-03-03' "
            "ORDER BY occurred_at LIMIT 1"
        ).fetchone()
    with demo_copy.write(kind="demo", note="20 new incidents, one moved by 8 weeks, one undated") as con:
        con.execute(
            f"INSERT INTO {writing_table(con, 'incidents')} SELECT * REPLACE ("
            "source_id || '-copy' AS source_id, occurred_at + INTERVAL 3 DAY AS occurred_at) "
            "FROM incidents WHERE occurred_at >= TIMESTAMP '2025-06-02' ORDER BY occurred_at LIMIT 20"
        )
        con.execute(
            f"INSERT INTO {writing_table(con, 'incidents')} SELECT * REPLACE ("
            "source_id || '-undated' AS source_id, NULL AS occurred_at) FROM incidents LIMIT 1"
        )
        from ilp.warehouse import replace_incidents

        replaced = replace_incidents(
            con,
            "SELECT * REPLACE (occurred_at + INTERVAL 56 DAY AS occurred_at, 'robbery' AS offense_category) "
            "FROM incidents WHERE source = ? AND source_id = ?",
            [moved[0], moved[1]],
        )
        assert replaced == 1
    done = meta(demo_copy)[summaries.REFRESH_KEY]
    assert done.startswith("updated ") and int(done.split()[1]) <= 4, done  # the new, old and undated weeks
    with contextlib.closing(demo_copy.connect()) as con:
        assert_summaries_match_incidents(con)
        assert con.execute("SELECT sum(incidents) FROM summary.weeks WHERE week IS NULL").fetchone()[0] >= 1
        after = con.execute("SELECT * FROM summary.weeks WHERE week < DATE '2025-01-01'").df()
    key = list(untouched_before.columns[:7])
    pd.testing.assert_frame_equal(
        untouched_before.sort_values(key, na_position="first").reset_index(drop=True),
        after.sort_values(key, na_position="first").reset_index(drop=True),
    )


# ------------------------------------------------------------------------------------------ real ingests
def test_ingests_that_add_and_update_rows_keep_the_summaries_exact(real_warehouse, tmp_path):
    ingest(real_warehouse, MAPPING, [GOOD])
    with contextlib.closing(real_warehouse.connect()) as con:
        assert assert_summaries_match_incidents(con) == 3

    header, *rows = GOOD.read_text(encoding="utf-8").splitlines()
    added = tmp_path / "added.csv"
    added.write_text(
        "\n".join([header, *rows, "1004,03/15/2017 09:00:00 PM,004XX S STATE ST,0820,THEFT,false,41.8760,-87.6270"])
        + "\n",
        encoding="utf-8",
    )
    result = ingest(real_warehouse, MAPPING, [added])
    assert (result.loaded, result.unchanged) == (1, 3)
    assert meta(real_warehouse)[summaries.REFRESH_KEY] == "updated 1 weeks"
    with contextlib.closing(real_warehouse.connect()) as con:
        assert_summaries_match_incidents(con)

    # 1002 moves from the week of 2 Jan 2017 to that of 6 Feb and becomes a battery
    moved = tmp_path / "moved.csv"
    rows[1] = "1002,02/06/2017 01:30:00 PM,002XX W MADISON ST,0460,BATTERY,true,41.8819,-87.6340"
    moved.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = ingest(real_warehouse, MAPPING, [moved])
    assert result.updated == 1
    with contextlib.closing(real_warehouse.connect()) as con:
        assert_summaries_match_incidents(con)
        weeks = dict(con.execute("SELECT week, sum(incidents) FROM summary.weeks GROUP BY 1").fetchall())
    assert weeks == {
        dt.date(2016, 12, 26): 1,  # 1001, 1 Jan 2017 (a Sunday)
        dt.date(2017, 1, 2): 1,  # 1003 only: 1002 left this week
        dt.date(2017, 2, 6): 1,
        dt.date(2017, 3, 13): 1,
    }


# ------------------------------------------------------------------------------------------ old snapshots
@pytest.fixture
def old_snapshot(demo_copy) -> Warehouse:
    """A copy of the demo warehouse whose snapshot predates summaries."""
    path = demo_copy.require_current()
    with contextlib.closing(duckdb.connect(str(path))) as con:
        con.execute("DROP SCHEMA summary CASCADE")
        con.execute("DELETE FROM snapshot_meta WHERE key IN (?, ?)", [summaries.META_KEY, summaries.REFRESH_KEY])
    return demo_copy


def test_a_snapshot_without_summaries_reads_the_same_figures_through_views(old_snapshot, demo_warehouse):
    with (
        contextlib.closing(old_snapshot.connect()) as old,
        contextlib.closing(Warehouse(demo_warehouse).connect()) as new,
    ):
        assert not summaries.stored(old)
        assert_summaries_match_incidents(old.cursor())  # a cursor sees the views too
        info_old, info_new = SnapshotInfo.read(old), SnapshotInfo.read(new)
        assert (info_old.first_day, info_old.last_day, info_old.incidents) == (
            info_new.first_day,
            info_new.last_day,
            info_new.incidents,
        )
        assert info_old.districts == info_new.districts and info_old.coverage == info_new.coverage
        week = info_new.default_week()
        params = {
            "harm_index": "cchi",
            "harm_version": "2016",
            "week": week,
            "history_start": week - dt.timedelta(weeks=52),
            "district": None,
            "category": None,
        }
        for name in ("trends_weekly", "brief_district_week", "brief_top_combinations"):
            pd.testing.assert_frame_equal(run_query(old, name, params), run_query(new, name, params))


def test_the_next_write_stores_the_summaries_of_an_old_snapshot(old_snapshot):
    with old_snapshot.write(kind="demo", note="any write"):
        pass
    assert meta(old_snapshot)[summaries.REFRESH_KEY] == "rebuilt"
    with contextlib.closing(old_snapshot.connect()) as con:
        assert summaries.stored(con)
        assert_summaries_match_incidents(con)


def test_a_summary_built_by_another_definition_is_rebuilt(demo_copy, monkeypatch):
    monkeypatch.setattr(summaries, "VERSION", "0-test")
    with demo_copy.write(kind="demo", note="any write"):
        pass
    assert meta(demo_copy)[summaries.REFRESH_KEY] == "rebuilt"
    assert meta(demo_copy)[summaries.META_KEY] == "0-test"


# ------------------------------------------------------------------------------------------ queries on them
def test_area_and_category_listings_count_what_incidents_hold(demo_warehouse):
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        levels = run_query(con, "evaluation_levels")
        direct = con.execute(
            "SELECT 'beat' AS level, beat AS area_id, count(*) AS incidents FROM incidents WHERE beat IS NOT NULL "
            "GROUP BY ALL UNION ALL SELECT 'district', district, count(*) FROM incidents WHERE district IS NOT NULL "
            "GROUP BY ALL ORDER BY level, area_id"
        ).df()
        pd.testing.assert_frame_equal(levels, direct, check_dtype=False)
        areas = run_query(con, "taskings_areas").set_index(["area_level", "area_id"])
        beats = con.execute(
            "SELECT beat, mode(district) AS district, count(*) AS incidents FROM incidents WHERE beat IS NOT NULL "
            "GROUP BY beat"
        ).df()
        for beat in beats.itertuples():
            assert areas.loc[("beat", beat.beat), "incidents"] == beat.incidents
            assert areas.loc[("beat", beat.beat), "district"] == beat.district  # demo beats lie in one district
        categories = run_query(con, "taskings_categories").set_index("category")["incidents"]
        counted = dict(con.execute("SELECT offense_category, count(*) FROM incidents GROUP BY 1").fetchall())
        assert categories.to_dict() == {c: counted.get(c, 0) for c in categories.index}
        assert categories.sum() > 0
