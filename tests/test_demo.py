"""The synthetic demo city: deterministic, complete, and really carrying its planted truth.

One city of 2 years x 100,000 incidents a year is checked for content and planted truth; statistical
checks use tolerances derived from Poisson noise at that size, so they hold for any seed, not just the
one used here. Determinism is checked on three smaller builds (1 year x 60,000: still over one DuckDB
row group of calls, so parallel paths run): two with one seed must be identical, another seed differs.
Both are drawn in several chunks of days (smaller chunks than a real build's), so the truths and people
planned over the whole period, and the numbering and time order carried from chunk to chunk, are tested
across chunk boundaries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re

import numpy as np
import pytest
import shapely

from ilp import demo
from ilp.demo import chunks
from ilp.warehouse import Warehouse

YEARS = 2
PER_YEAR = 100_000
SMALL = dict(years=1, incidents_per_year=60_000)
END = demo.DEFAULT_END_DATE
CHUNK_INCIDENTS = 15_000  # about 13 weeks a chunk at 60,000 a year, 8 at 100,000


def _build(tmp_path_factory, name: str, seed: int, progress=None, **size):
    directory = tmp_path_factory.mktemp(name)
    size = size or dict(years=YEARS, incidents_per_year=PER_YEAR)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "CHUNK_INCIDENTS", CHUNK_INCIDENTS)
        summary = demo.build_demo_warehouse(directory, seed=seed, progress=progress, **size)
    return directory, summary


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    steps = []
    directory, summary = _build(tmp_path_factory, "demo", 7, progress=lambda step, f: steps.append((step, f)))
    return {"directory": directory, "summary": summary, "steps": steps}


@pytest.fixture(scope="module")
def con(built):
    connection = Warehouse(built["directory"]).connect()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def truth(con):
    frame = con.execute("SELECT * FROM demo_truth").df()
    frame["details"] = frame["details"].map(json.loads)
    return frame


def _checksums(directory):
    with contextlib.closing(Warehouse(directory).connect()) as connection:
        return demo.table_checksums(connection)


# ----------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_tables_and_other_seed_differs(tmp_path_factory):
    first = _checksums(_build(tmp_path_factory, "small_a", 7, **SMALL)[0])
    again, _ = _build(tmp_path_factory, "small_b", 7, **SMALL)
    other, _ = _build(tmp_path_factory, "small_c", 8, **SMALL)
    assert first["calls_for_service"][0] > 122_880  # more than one DuckDB row group
    assert _checksums(again) == first
    different = _checksums(other)
    for table in ("incidents", "incident_persons", "calls_for_service", "use_of_force", "community_survey"):
        assert different[table] != first[table], table
    # the map and the reference data do not depend on the seed
    for table in ("areas", "offence_categories", "offence_taxonomy", "harm_weights"):
        assert different[table] == first[table], table


def test_chunks_join_up(built, con):
    """Drawn in chunks, the tables read as one: ids numbered without gaps within each year, incidents and
    calls stored in time order, and people who recur across chunks (their pools span the whole period)."""
    assert built["summary"]["chunks"] >= 5
    for table, column, pattern in (
        ("incidents", "source_id", r"PM(\d{4})-(\d{6})"),
        ("calls_for_service", "call_id", r"C(\d{4})-(\d{7})"),
        ("use_of_force", "event_id", r"UOF-(\d{4})-(\d{5})"),
    ):
        numbering = con.execute(
            f"""
            SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM (
                SELECT regexp_extract({column}, $pattern, 1) AS year, regexp_extract({column}, $pattern, 2)::INT AS seq
                FROM {table})
            GROUP BY year""",
            {"pattern": pattern},
        ).fetchall()
        assert len(numbering) >= 2, table
        for count, distinct, first, last in numbering:
            assert count == distinct == last and first == 1, (table, count, distinct, first, last)
    (segment,) = con.execute("SELECT segment_id FROM segments").fetchone()
    for table, column in (
        ("incidents", "occurred_at"),
        ("calls_for_service", "received_at"),
        ("use_of_force", "occurred_at"),
    ):
        out_of_order = con.execute(
            f"SELECT count(*) FROM (SELECT {column} < lag({column}) OVER (ORDER BY rowid) AS back "
            f"FROM g{segment:05d}.{table}) WHERE back"
        ).fetchone()[0]
        assert out_of_order == 0, table
    longest = con.execute("""
        SELECT p.role = 'victim', max(span) FROM (
            SELECT p.person_key, any_value(p.role) AS role, max(i.occurred_at) - min(i.occurred_at) AS span
            FROM incident_persons p JOIN incidents i USING (source, source_id) GROUP BY p.person_key) p
        GROUP BY ALL""").fetchall()
    chunk_days = CHUNK_INCIDENTS * 364 // PER_YEAR
    for _, span in longest:  # domestic-abuse victims and offenders both recur further apart than a chunk
        assert span > dt.timedelta(days=2 * chunk_days), longest


def test_summary_and_progress(built, con):
    summary = built["summary"]
    assert summary["rows"]["incidents"] == con.execute("SELECT count(*) FROM incidents").fetchone()[0]
    assert summary["truth_rows"] == len(summary["truth"]) >= 3
    assert summary["snapshot"] == Warehouse(built["directory"]).current_version()
    fractions = [f for _, f in built["steps"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    expected = PER_YEAR * YEARS * 52 / 52.18
    assert abs(summary["rows"]["incidents"] - expected) < 0.05 * expected


def test_every_table_but_rejects_is_filled_and_logged(con):
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    ]
    for table in tables:
        count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if table in ("rejects", "ingest_warnings", "superseded"):  # mapping mistakes; versions a later export replaced
            assert count == 0
        else:
            assert count > 0, f"the demo city leaves table {table} empty: fill it in the ilp/demo package"
    for table in ("incidents", "incident_persons", "calls_for_service", "use_of_force", "community_survey"):
        assert con.execute(f"SELECT list(DISTINCT source) FROM {table}").fetchone()[0] == ["demo"], table
    log = con.execute("SELECT ingest_id, kind, rows_read, loaded, snapshot FROM ingest_log").fetchall()
    incidents = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
    version = con.execute("SELECT value FROM snapshot_meta WHERE key = 'version'").fetchone()[0]
    assert log == [(1, "demo", incidents, incidents, version)]
    assert (
        con.execute("SELECT count(*) FROM incidents WHERE first_ingest_id <> 1 OR last_ingest_id <> 1").fetchone()[0]
        == 0
    )


# ----------------------------------------------------------------------------- planted truth
def test_truth_kinds_present(truth):
    kinds = set(truth["kind"])
    assert {"emerging_series", "moving_hotspot", "intervention"} <= kinds
    planted = truth[truth["kind"].isin(["emerging_series", "moving_hotspot", "intervention"])]
    assert (planted["area_level"] == "beat").all()
    assert planted["description"].str.len().min() > 20


def test_emerging_series_is_in_the_data(con, truth):
    row = truth[truth["kind"] == "emerging_series"].iloc[0]
    assert row["end_date"].date() == END and row["start_date"].date() == END - dt.timedelta(days=41)
    weekly = con.execute("""
        SELECT beat, date_trunc('week', occurred_at)::DATE AS week, count(*) AS n
        FROM incidents WHERE offense_category = 'robbery' GROUP BY ALL
    """).df()
    series = weekly[weekly["beat"] == row["area_id"]]
    last6 = series.loc[series["week"] >= row["start_date"], "n"].sum()
    n_prior_weeks = YEARS * 52 - 6
    prior_per_6_weeks = series.loc[series["week"] < row["start_date"], "n"].sum() / n_prior_weeks * 6
    assert last6 >= 2 * prior_per_6_weeks, (last6, prior_per_6_weeks)  # several times the usual
    # near the planted effect: within 3 Poisson standard deviations of effect x baseline
    expected = row["effect_size"] * prior_per_6_weeks
    assert abs(last6 - expected) < 3 * math.sqrt(expected) + 0.15 * expected
    # not already the top robbery beat before the series started
    before = weekly[weekly["week"] < row["start_date"]].groupby("beat")["n"].sum()
    assert before.idxmax() != row["area_id"]
    # victims skew under 18
    young = con.execute(
        """
        SELECT avg((p.age_band = '<18')::INT) FROM incident_persons p JOIN incidents i USING (source, source_id)
        WHERE p.role = 'victim' AND i.beat = $beat AND i.offense_category = 'robbery' AND i.occurred_at >= $start
    """,
        {"beat": row["area_id"], "start": row["start_date"]},
    ).fetchone()[0]
    assert young > 0.4
    assert row["details"]["victim_age_bands"]["<18"] >= 0.5


def test_moving_hotspot_is_in_the_data(con, truth):
    phases = truth[truth["kind"] == "moving_hotspot"].sort_values("start_date")
    assert len(phases) == 2
    first, second = phases.iloc[0], phases.iloc[1]
    assert first["area_id"] != second["area_id"]
    assert second["start_date"] == first["end_date"] + dt.timedelta(days=1)
    for phase in (first, second):
        by_beat = con.execute(
            """
            SELECT beat, count(*) AS n FROM incidents
            WHERE offense_category = $category AND occurred_at::DATE BETWEEN $start AND $end
            GROUP BY beat ORDER BY n DESC
        """,
            {"category": phase["offense_category"], "start": phase["start_date"], "end": phase["end_date"]},
        ).df()
        assert by_beat.iloc[0]["beat"] == phase["area_id"], by_beat.head()
        assert by_beat.iloc[0]["n"] > 1.3 * by_beat.iloc[1]["n"]
        assert phase["effect_size"] > 1


def test_intervention_is_in_the_data(con, truth):
    row = truth[truth["kind"] == "intervention"].iloc[0]
    assert row["control_area_id"] and row["control_area_id"] != row["area_id"]
    assert row["start_date"].date() == END - dt.timedelta(weeks=26) + dt.timedelta(days=1)
    counts = (
        con.execute(
            """
        SELECT beat, count(*) FILTER (occurred_at < $start) AS before, count(*) FILTER (occurred_at >= $start) AS after
        FROM incidents WHERE offense_category = $category AND beat IN ($treated, $control) GROUP BY beat
    """,
            {
                "start": row["start_date"],
                "category": row["offense_category"],
                "treated": row["area_id"],
                "control": row["control_area_id"],
            },
        )
        .df()
        .set_index("beat")
    )
    t, c = counts.loc[row["area_id"]], counts.loc[row["control_area_id"]]
    # same baseline: the before counts agree within Poisson noise
    assert abs(t["before"] - c["before"]) < 3.5 * math.sqrt(t["before"] + c["before"])
    ratio = (t["after"] / t["before"]) / (c["after"] / c["before"])
    se = math.sqrt(1 / t["after"] + 1 / t["before"] + 1 / c["after"] + 1 / c["before"])
    assert abs(math.log(ratio) - math.log(row["effect_size"])) < 3 * se, (ratio, se)
    assert ratio < 1, (ratio, se)  # a cut, not just noise around no change
    populations = dict(con.execute("SELECT area_id, population FROM areas WHERE level = 'beat'").fetchall())
    assert abs(populations[row["area_id"]] / populations[row["control_area_id"]] - 1) < 0.15


# ----------------------------------------------------------------------------- geography
def _polygons(con, level):
    rows = con.execute("SELECT area_id, geometry_geojson FROM areas WHERE level = ?", [level]).fetchall()
    polygons = {}
    for area_id, text in rows:
        geometry = json.loads(text)
        assert geometry["type"] == "Polygon"
        ring = geometry["coordinates"][0]
        assert ring[0] == ring[-1]
        polygons[area_id] = shapely.from_geojson(text)
    return polygons


def test_incidents_lie_inside_their_beat(con):
    beats = _polygons(con, "beat")
    points = con.execute("SELECT beat, longitude, latitude FROM incidents WHERE location_status = 'ok'").df()
    assert points["longitude"].notna().all()
    for beat, group in points.groupby("beat"):
        inside = shapely.contains_xy(beats[beat], group["longitude"].to_numpy(), group["latitude"].to_numpy())
        assert inside.all(), (beat, int((~inside).sum()))
    missing = con.execute("""
        SELECT avg((location_status = 'missing')::INT), count(*) FILTER (location_status = 'missing' AND latitude IS NOT NULL)
        FROM incidents""").fetchone()
    assert 0.005 < missing[0] < 0.02 and missing[1] == 0


def test_beats_tile_districts(con):
    districts, beats = _polygons(con, "district"), _polygons(con, "beat")
    assert 6 <= len(districts) <= 8 and 40 <= len(beats) <= 50
    areas = con.execute("SELECT level, area_id, parent_level, parent_id, population, area_km2 FROM areas").df()
    beat_rows = areas[areas["level"] == "beat"]
    assert (beat_rows["parent_level"] == "district").all()
    district_rows = areas[areas["level"] == "district"].set_index("area_id")
    sums = beat_rows.groupby("parent_id")["population"].sum()
    assert (sums == district_rows["population"].loc[sums.index]).all()
    assert 600_000 <= district_rows["population"].sum() <= 900_000
    assert beat_rows.groupby("parent_id").size().between(5, 8).all()
    for district, polygon in districts.items():
        members = [beats[b] for b in beat_rows.loc[beat_rows["parent_id"] == district, "area_id"]]
        union = shapely.union_all(members)
        assert union.symmetric_difference(polygon).area < 1e-9 * polygon.area  # no gaps
        assert abs(sum(m.area for m in members) - polygon.area) < 1e-9 * polygon.area  # no overlaps
    city = shapely.union_all(list(districts.values()))
    assert abs(city.area - shapely.box(*city.bounds).area) < 1e-6 * city.area  # districts tile the rectangle
    assert 15 <= (city.bounds[2] - city.bounds[0]) * 111.32 * math.cos(math.radians(city.centroid.y)) <= 30


# ----------------------------------------------------------------------------- content
def test_offence_codes_follow_the_demo_taxonomy(con):
    rows = con.execute("""
        SELECT i.offense_code, i.offense_category, t.category
        FROM (SELECT DISTINCT offense_code, offense_category FROM incidents) i
        LEFT JOIN offence_taxonomy t ON t.source = 'demo' AND t.offense_code = i.offense_code
    """).fetchall()
    for code, category, mapped in rows:
        assert category == (mapped or "unmapped"), code
    unmapped = con.execute("SELECT avg((offense_category = 'unmapped')::INT) FROM incidents").fetchone()[0]
    assert 0.0005 < unmapped < 0.005
    categories = {
        r[0] for r in con.execute("SELECT category FROM offence_categories WHERE category <> 'unmapped'").fetchall()
    }
    in_taxonomy = {
        r[0] for r in con.execute("SELECT DISTINCT category FROM offence_taxonomy WHERE source = 'demo'").fetchall()
    }
    assert categories == in_taxonomy
    provenance = con.execute("SELECT list(DISTINCT provenance) FROM offence_taxonomy WHERE source = 'demo'").fetchone()[
        0
    ]
    assert provenance == ["synthetic demo code"]


def test_incident_fields_are_plausible(con):
    start = END - dt.timedelta(days=YEARS * 364 - 1)
    bad = con.execute(
        """
        SELECT count(*) FILTER (reported_at < occurred_at),
               count(*) FILTER (occurred_at::DATE < $start OR occurred_at::DATE > $end),
               count(*) FILTER (occurred_precision <> 'exact'),
               count(*) FILTER (NOT regexp_full_match(location_text, '[0-9]+XX BLOCK OF [A-Z0-9 ]+')),
               count(*) FILTER (clearance_status NOT IN ('open', 'cleared_arrest', 'cleared_other')),
               count(*) FILTER (arrest <> (clearance_status = 'cleared_arrest')),
               count(*) FILTER (district IS NULL OR beat IS NULL OR premise_type IS NULL OR row_hash IS NULL)
        FROM incidents""",
        {"start": start, "end": END},
    ).fetchone()
    assert bad == (0,) * 7
    clearance = dict(
        con.execute("""
        SELECT offense_category, avg((clearance_status <> 'open')::INT) FROM incidents GROUP BY 1""").fetchall()
    )
    assert clearance["burglary_residential"] < 0.2 < clearance["violence_with_injury"]
    homicides = con.execute("SELECT count(*) FROM incidents WHERE offense_category = 'homicide'").fetchone()[0]
    assert 5 <= homicides / YEARS <= 40


def test_time_patterns(con):
    shares = (
        con.execute("""
        SELECT avg((dayofweek(occurred_at) IN (0, 6))::INT) FILTER (offense_category = 'violence_with_injury') AS violent_weekend,
               avg((hour(occurred_at) BETWEEN 8 AND 17)::INT) FILTER (offense_category = 'burglary_residential') AS burglary_day,
               avg((hour(occurred_at) BETWEEN 8 AND 17)::INT) FILTER (offense_category = 'violence_with_injury') AS violence_day,
               avg((month(occurred_at) IN (6, 7, 8))::INT) FILTER (offense_category = 'violence_with_injury') AS violence_summer
        FROM incidents""")
        .df()
        .iloc[0]
    )
    assert shares["violent_weekend"] > 2 / 7 + 0.03
    assert shares["burglary_day"] > 0.5 > shares["violence_day"]
    assert shares["violence_summer"] > 0.25 + 0.02


def test_hot_spots_concentrate_crime(con):
    per_beat = con.execute("SELECT beat, count(*) AS n FROM incidents GROUP BY beat ORDER BY n DESC").df()
    top = per_beat["n"].head(max(1, len(per_beat) // 10)).sum() / per_beat["n"].sum()
    assert top > 0.2  # the top 10% of beats carry well over 10% of crime


def test_people_are_pseudonymous(con):
    columns = [row[0] for row in con.execute("DESCRIBE incident_persons").fetchall()]
    assert columns == ["source", "source_id", "person_key", "role", "age_band"]
    bad = con.execute("""
        SELECT count(*) FILTER (NOT regexp_full_match(person_key, '[0-9a-f]{64}')),
               count(*) FILTER (role NOT IN ('victim', 'offender', 'suspect')),
               count(*) FILTER (age_band IS NOT NULL AND age_band NOT IN ('<18', '18-24', '25-44', '45-64', '65+')),
               count(*) FILTER (source_id NOT IN (SELECT source_id FROM incidents))
        FROM incident_persons""").fetchone()
    assert bad == (0, 0, 0, 0)
    ages = {
        r[0] for r in con.execute("SELECT DISTINCT age_band FROM incident_persons WHERE role = 'victim'").fetchall()
    }
    assert {"<18", "65+"} <= ages
    repeat_dv = con.execute("""
        SELECT max(n) FROM (SELECT person_key, count(*) AS n FROM incident_persons p JOIN incidents i USING (source, source_id)
                            WHERE p.role = 'victim' AND i.domestic GROUP BY person_key)""").fetchone()[0]
    assert repeat_dv >= 3
    counts = np.sort(
        np.array(
            [
                r[0]
                for r in con.execute("""
        SELECT count(*) FROM incident_persons WHERE role IN ('offender', 'suspect') GROUP BY person_key""").fetchall()
            ]
        )
    )[::-1]
    top = counts[: max(1, len(counts) // 20)].sum() / counts.sum()
    assert top > 0.3  # the power few: 5% of offenders, a large share of offences


def test_calls_and_response_times(con):
    incidents = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
    stats = (
        con.execute("""
        SELECT priority, count(*) AS n,
               median(epoch(arrived_at - received_at)) / 60 AS median_min,
               quantile_cont(epoch(arrived_at - received_at) / 60, 0.9) AS p90_min,
               count(*) FILTER (dispatched_at < received_at OR arrived_at < dispatched_at OR cleared_at < received_at) AS bad
        FROM calls_for_service GROUP BY priority ORDER BY priority""")
        .df()
        .set_index("priority")
    )
    assert 1.5 * incidents < stats["n"].sum() < 3.5 * incidents
    assert list(stats.index) == [1, 2, 3, 4] and stats["bad"].sum() == 0
    assert 5.5 <= stats.loc[1, "median_min"] <= 8.5 and 11 <= stats.loc[1, "p90_min"] <= 19
    assert stats["median_min"].is_monotonic_increasing
    night, day = con.execute("""
        SELECT median(epoch(arrived_at - received_at)) FILTER (hour(received_at) >= 22 OR hour(received_at) < 6),
               median(epoch(arrived_at - received_at)) FILTER (hour(received_at) BETWEEN 8 AND 20)
        FROM calls_for_service WHERE priority = 1""").fetchone()
    assert night > day


def test_use_of_force_and_survey(con):
    force, arrests = con.execute(
        "SELECT (SELECT count(*) FROM use_of_force), (SELECT count(*) FROM incidents WHERE arrest)"
    ).fetchone()
    assert 0.01 <= force / arrests <= 0.03
    survey = con.execute("""
        SELECT measure, min(value), max(value), min(respondents), max(respondents), count(DISTINCT area_id)
        FROM community_survey GROUP BY measure ORDER BY measure""").fetchall()
    assert [row[0] for row in survey] == ["feel_safe_night", "police_listen", "trust_police"]
    for _, low, high, fewest, most, districts in survey:
        assert 0 <= low <= high <= 1 and 80 <= fewest <= most <= 300 and districts >= 6
    labels = [r[0] for r in con.execute("SELECT DISTINCT period_label FROM community_survey ORDER BY 1").fetchall()]
    assert all(re.fullmatch(r"\d{4}-Q[1-4]", label) for label in labels)


def test_build_rejects_silly_sizes(tmp_path):
    with pytest.raises(ValueError):
        demo.build_demo_warehouse(tmp_path / "w", years=0)
    assert Warehouse(tmp_path / "w").current_path() is None
