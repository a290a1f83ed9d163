"""Harm is defined once: the ``category_harm`` / ``incident_harm`` table macros (ilp/harm.sql).

* the macros follow the rule (a category's weight in the chosen index; 0 when the category is proactive,
  unless asked, or the index does not weigh it), checked against a hand-made join of the raw tables;
* every named query that reports harm agrees with an independent aggregation over ``incident_harm``,
  and so does the README's "Adding a view" example;
* the per-snapshot weekly cube (ilp/summaries.sql), whose counts times ``category_harm``'s weight give
  the pages' harm, agrees with ``incident_harm`` summed per week, month, area and category, and stores
  no harm of its own;
* no query reads ``harm_weights`` itself except the listings of the weight table, so a copy of the rule
  cannot creep back;
* a snapshot written before the macros existed gains them on its next write, and reading it before
  that gives an error that says what to do.

All on the session's demo city (``demo_warehouse``), opened read-only; the upgrade tests use a copy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ilp import paths
from ilp.warehouse import Warehouse, WarehouseError, run_query

REPO = Path(__file__).resolve().parents[1]
INDICES = [("cchi", "2016"), ("csi", "2009")]

# Queries that read the weight table itself to list it, not to compute harm.
READS_WEIGHT_TABLE = {"governance_harm_indices", "governance_harm_weights"}
# Queries that take $harm_index without reporting harm figures.
NAMES_HARM_INDEX_ONLY = {"threats_harm_index"}


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def con(demo_warehouse):
    connection = Warehouse(demo_warehouse).connect()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def days(con) -> dict:
    """Dates inside the demo city's data: its last day, the Monday of the last complete week, ..."""
    first_day, last_day = con.execute("SELECT min(occurred_at)::DATE, max(occurred_at)::DATE FROM incidents").fetchone()
    week = last_day - dt.timedelta(days=last_day.weekday() + 7)  # Monday of the last complete week
    return dict(first_day=first_day, last_day=last_day, week=week, as_of=week + dt.timedelta(days=6))


@pytest.fixture(scope="module")
def busy(con, days) -> dict:
    """A busy district, beat and location, and a non-proactive category present in the last 28 days."""
    since = days["as_of"] - dt.timedelta(days=27)
    district, beat = con.execute(
        "SELECT district, beat FROM incidents WHERE occurred_at >= ? AND beat IS NOT NULL "
        "GROUP BY ALL ORDER BY count(*) DESC, beat LIMIT 1",
        [since],
    ).fetchone()
    location = con.execute(
        "SELECT location_text FROM incidents WHERE occurred_at >= ? AND location_text IS NOT NULL "
        "GROUP BY ALL ORDER BY count(*) DESC, location_text LIMIT 1",
        [since],
    ).fetchone()[0]
    return dict(district=district, beat=beat, location=location)


def harm_params(index: tuple[str, str]) -> dict:
    return {"harm_index": index[0], "harm_version": index[1]}


def incident_harm(
    con,
    index,
    where: str = "true",
    params: list | None = None,
    *,
    include_proactive: bool = False,
    group_by: str | None = None,
    select: str = "",
) -> pd.DataFrame:
    """sum(harm), sum(harm^2) and count(*) over incident_harm(index) WHERE ``where`` [GROUP BY ...]."""
    keys = f"{group_by}, " if group_by else ""
    sql = (
        f"SELECT {keys}{select} sum(harm) AS harm, sum(harm * harm) AS harm_squared, count(*) AS incidents "
        f"FROM incident_harm(?, ?, include_proactive := ?) WHERE {where}" + (" GROUP BY ALL" if group_by else "")
    )
    return con.execute(sql, [index[0], index[1], include_proactive, *(params or [])]).df()


def query_files() -> list[Path]:
    return sorted(paths.QUERIES_DIR.glob("*.sql"))


def sql_without_comments(path: Path) -> str:
    return re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ the rule itself
def test_category_harm_follows_the_rule_for_every_category(con):
    categories = dict(con.execute("SELECT category, proactive FROM offence_categories").fetchall())
    for index in [*INDICES, ("no_such_index", "1")]:
        raw = dict(
            con.execute(
                "SELECT category, weight FROM harm_weights WHERE index_name = ? AND version = ?", list(index)
            ).fetchall()
        )
        for include in (False, True):
            macro = dict(
                con.execute(
                    "SELECT category, harm_weight FROM category_harm(?, ?, include_proactive := ?)", [*index, include]
                ).fetchall()
            )
            assert macro.keys() == categories.keys()
            for category, proactive in categories.items():
                expected = 0.0 if (proactive and not include) else raw.get(category, 0.0)
                assert macro[category] == expected, (index, include, category)


def test_macros_on_chosen_categories_against_a_hand_join(con):
    """Robbery carries its weight; a proactive category weighs 0 unless asked; CSI is not CCHI."""
    proactive = con.execute("SELECT category FROM offence_categories WHERE proactive ORDER BY category").fetchall()
    assert ("drug_possession",) in proactive and ("weapons_possession",) in proactive
    hand = (
        con.execute("""
        SELECT h.index_name, h.category, h.weight, c.proactive,
               (SELECT count(*) FROM incidents i WHERE i.offense_category = h.category) AS incidents
        FROM harm_weights h JOIN offence_categories c USING (category)
        WHERE h.category IN ('robbery', 'burglary_residential', 'drug_possession', 'weapons_possession')
    """)
        .df()
        .set_index(["index_name", "category"])
    )
    assert hand.loc[("cchi", "weapons_possession"), "weight"] > 0  # the index weighs it; the rule zeroes it
    assert hand.loc[("cchi", "robbery"), "weight"] != hand.loc[("csi", "robbery"), "weight"]
    for index in INDICES:
        for category in ("robbery", "burglary_residential", "drug_possession", "weapons_possession"):
            row = hand.loc[(index[0], category)]
            assert row["incidents"] > 0, category
            for include in (False, True):
                got = incident_harm(con, index, "offense_category = ?", [category], include_proactive=include)
                weight = 0.0 if (row["proactive"] and not include) else row["weight"]
                assert got["incidents"].iloc[0] == row["incidents"]
                assert got["harm"].iloc[0] == pytest.approx(weight * row["incidents"])
                assert got["harm_squared"].iloc[0] == pytest.approx(weight * weight * row["incidents"])
        drug = incident_harm(con, index, "offense_category = 'drug_possession'")
        assert drug["harm"].iloc[0] == 0


def test_incident_harm_keeps_every_incident_and_column(con):
    incidents = con.execute("SELECT * FROM incidents LIMIT 0").df().columns.tolist()
    macro = con.execute("SELECT * FROM incident_harm('cchi', '2016') LIMIT 0").df().columns.tolist()
    assert macro == [*incidents, "harm"]
    assert (
        con.execute("SELECT count(*) FROM incident_harm('cchi', '2016')").fetchone()
        == con.execute("SELECT count(*) FROM incidents").fetchone()
    )


# ------------------------------------------------------------------------- every harm query agrees
def check_trends_weekly(con, index, days, busy):
    start = days["week"] - dt.timedelta(weeks=30)
    for district, category in [(None, None), (busy["district"], None), (None, "robbery")]:
        frame = run_query(
            con,
            "trends_weekly",
            {
                **harm_params(index),
                "history_start": start,
                "week": days["week"],
                "district": district,
                "category": category,
            },
        )
        expected = incident_harm(
            con,
            index,
            "occurred_at >= ? AND occurred_at < ? AND (?::VARCHAR IS NULL OR district = ?) "
            "AND (?::VARCHAR IS NULL OR offense_category = ?)",
            [start, days["week"] + dt.timedelta(days=7), district, district, category, category],
            group_by="CAST(date_trunc('week', occurred_at) AS DATE) AS week",
        )
        merged = frame.merge(expected, on="week", how="left", suffixes=("", "_macro")).fillna({"harm_macro": 0.0})
        assert len(frame) == 31 and frame["harm"].sum() > 0
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])


def check_trends_weekly_by_district(con, index, days, busy):
    start = days["week"] - dt.timedelta(weeks=12)
    frame = run_query(
        con,
        "trends_weekly_by_district",
        {**harm_params(index), "history_start": start, "week": days["week"], "category": None},
    )
    expected = incident_harm(
        con,
        index,
        "occurred_at >= ? AND occurred_at < ? AND district IS NOT NULL",
        [start, days["week"] + dt.timedelta(days=7)],
        group_by="CAST(date_trunc('week', occurred_at) AS DATE) AS week, district",
    )
    merged = frame.merge(expected, on=["week", "district"], how="left", suffixes=("", "_macro"))
    assert frame["harm"].sum() > 0
    np.testing.assert_allclose(merged["harm"], merged["harm_macro"].fillna(0.0))


def check_outcomes_harm_monthly(con, index, days, busy):
    month_to = days["last_day"].replace(day=1)
    month_from = (month_to - dt.timedelta(days=200)).replace(day=1)
    for district, category in [(None, None), (busy["district"], "burglary_residential"), (None, "weapons_possession")]:
        frame = run_query(
            con,
            "outcomes_harm_monthly",
            {
                **harm_params(index),
                "month_from": month_from,
                "month_to": month_to,
                "district": district,
                "category": category,
            },
        )
        expected = incident_harm(
            con,
            index,
            "occurred_at >= ? AND occurred_at < ? AND (?::VARCHAR IS NULL OR district = ?) "
            "AND (?::VARCHAR IS NULL OR offense_category = ?)",
            [month_from, month_to, district, district, category, category],
            group_by="date_trunc('month', occurred_at)::DATE AS month",
        )
        merged = frame.merge(expected, on="month", how="outer", suffixes=("", "_macro"))
        assert len(merged) == len(frame) >= 6
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
        np.testing.assert_allclose(merged["harm_variance"], merged["harm_squared"])
        if category == "weapons_possession":
            assert (frame["harm"] == 0).all() and (frame["incidents"] > 0).all()


def check_brief_district_week(con, index, days, busy):
    frame = run_query(con, "brief_district_week", {**harm_params(index), "week": days["week"], "category": None})
    weights = con.execute("SELECT category, harm_weight FROM category_harm(?, ?)", list(index)).df()
    merged = frame.merge(weights, on="category", how="left")
    np.testing.assert_allclose(merged["weight"], merged["harm_weight"])
    current = (
        frame.assign(harm=frame["weight"] * frame["current_incidents"]).groupby("district", dropna=False)["harm"].sum()
    )
    expected = incident_harm(
        con,
        index,
        "occurred_at >= ? AND occurred_at < ?",
        [days["week"], days["week"] + dt.timedelta(days=7)],
        group_by="district",
    )
    expected = expected.set_index("district")["harm"]
    assert current.sum() > 0
    np.testing.assert_allclose(current.reindex(expected.index).to_numpy(), expected.to_numpy())


def check_brief_top_combinations(con, index, days, busy):
    start, end = days["week"] - dt.timedelta(days=21), days["week"] + dt.timedelta(days=7)
    for district in (None, busy["district"]):
        frame = run_query(
            con,
            "brief_top_combinations",
            {**harm_params(index), "week": days["week"], "district": district, "category": None},
        )
        assert len(frame) == 10
        combos = incident_harm(
            con,
            index,
            "occurred_at >= ? AND occurred_at < ?",
            [start, end],
            group_by="district, beat, offense_category AS category",
        )
        merged = frame.merge(combos, on=["district", "beat", "category"], how="left", suffixes=("", "_macro"))
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
        per_district = incident_harm(
            con, index, "occurred_at >= ? AND occurred_at < ?", [start, end], group_by="district"
        ).set_index("district")["harm"]
        np.testing.assert_allclose(frame["district_harm"], per_district.reindex(frame["district"]).to_numpy())
        top = combos[combos["district"] == district] if district else combos
        assert frame["harm"].max() == pytest.approx(top["harm"].max())


def check_changes_counts(con, index, days, busy):
    for include_proactive in (True, False):
        frame = run_query(
            con,
            "changes_counts",
            {
                **harm_params(index),
                "as_of": days["as_of"],
                "level": "district",
                "baseline_weeks": 12,
                "district": None,
                "category": None,
                "include_proactive": include_proactive,
            },
        )
        weights = con.execute(
            "SELECT category, harm_weight FROM category_harm(?, ?, include_proactive := ?)", [*index, include_proactive]
        ).df()
        merged = frame.merge(weights, on="category", how="left")
        np.testing.assert_allclose(merged["weight"], merged["harm_weight"])
        assert merged.loc[merged["proactive"], "weight"].gt(0).any() == include_proactive
    # the rule's harm (proactive 0) over the 28 days, as ilp/analytics/changes.py computes it
    harm = (frame["weight"] * frame["d28_count"]).sum()
    expected = incident_harm(
        con,
        index,
        "occurred_at >= ? AND occurred_at < ? AND district IS NOT NULL",
        [days["as_of"] - dt.timedelta(days=27), days["as_of"] + dt.timedelta(days=1)],
    )
    assert harm == pytest.approx(expected["harm"].iloc[0]) and harm > 0


def check_hotspot_cell_weeks(con, index, days, busy):
    """The forecasts' input: harm per cell x week (all shifts added) of one category, and of every offence."""
    start, end = days["week"] - dt.timedelta(weeks=6), days["week"] + dt.timedelta(days=7)
    for category, include in ((None, False), ("robbery", False), (None, True)):
        frame = run_query(
            con,
            "hotspot_cell_weeks",
            {
                **harm_params(index),
                "start": start,
                "end": end,
                "district": None,
                "category": category,
                "include_proactive": include,
                "cell_dlat": 0.01,
                "cell_dlon": 0.01,
                "day_start": 7,
                "evening_start": 15,
                "night_start": 23,
            },
        )
        summed = frame.groupby(["cell_x", "cell_y", "week"], as_index=False)[["harm", "incidents"]].sum()
        expected = incident_harm(
            con,
            index,
            "occurred_at >= ? AND occurred_at < ? AND location_status = 'ok' "
            "AND (?::VARCHAR IS NULL OR offense_category = ?)",
            [start, end, category, category],
            include_proactive=include,
            group_by="floor(longitude / 0.01)::BIGINT AS cell_x, floor(latitude / 0.01)::BIGINT AS cell_y, "
            "date_trunc('week', occurred_at)::DATE AS week",
        )
        merged = summed.merge(expected, on=["cell_x", "cell_y", "week"], how="left", suffixes=("", "_macro"))
        merged = merged.fillna({"harm_macro": 0.0})
        assert frame["harm"].sum() > 0 and len(merged) == len(summed)
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
        assert frame["incidents"].sum() == expected["incidents"].sum()


def check_hotspot_cell_offences(con, index, days, busy):
    """What drives a forecast cell: harm per cell x category."""
    start, end = days["week"] - dt.timedelta(weeks=6), days["week"] + dt.timedelta(days=7)
    frame = run_query(
        con,
        "hotspot_cell_offences",
        {
            **harm_params(index),
            "start": start,
            "end": end,
            "district": None,
            "shift": "all",
            "include_proactive": False,
            "cell_dlat": 0.01,
            "cell_dlon": 0.01,
            "day_start": 7,
            "evening_start": 15,
            "night_start": 23,
        },
    )
    expected = incident_harm(
        con,
        index,
        "occurred_at >= ? AND occurred_at < ? AND location_status = 'ok'",
        [start, end],
        group_by="floor(longitude / 0.01)::BIGINT AS cell_x, floor(latitude / 0.01)::BIGINT AS cell_y, "
        "offense_category AS category",
    )
    merged = frame.merge(expected, on=["cell_x", "cell_y", "category"], how="outer", suffixes=("", "_macro"))
    assert len(merged) == len(frame) > 10
    np.testing.assert_allclose(merged["harm"], merged["harm_macro"])


def check_deployment_cells(con, index, days, busy):
    start, end = (
        dt.datetime.combine(days["week"] - dt.timedelta(days=21), dt.time()),
        dt.datetime.combine(days["week"] + dt.timedelta(days=7), dt.time()),
    )
    for include in (False, True):
        frame = run_query(
            con,
            "deployment_cells",
            {
                **harm_params(index),
                "start": start,
                "end": end,
                "district": None,
                "category": None,
                "shift": "all",
                "include_proactive": include,
                "cell_dlat": 0.01,
                "cell_dlon": 0.01,
            },
        )
        cells = incident_harm(
            con,
            index,
            "occurred_at >= ? AND occurred_at < ? AND location_status = 'ok'",
            [start, end],
            include_proactive=include,
            group_by="floor(longitude / 0.01)::BIGINT AS cell_x, floor(latitude / 0.01)::BIGINT AS cell_y",
        )
        merged = frame.merge(cells, on=["cell_x", "cell_y"], how="outer", suffixes=("", "_macro"))
        assert len(merged) == len(frame) > 10
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
    proactive = run_query(
        con,
        "deployment_cells",
        {
            **harm_params(index),
            "start": start,
            "end": end,
            "district": None,
            "category": "weapons_possession",
            "shift": "all",
            "include_proactive": False,
            "cell_dlat": 0.01,
            "cell_dlon": 0.01,
        },
    )
    assert len(proactive) and (proactive["harm"] == 0).all()


def check_taskings_before_after(con, index, days, busy):
    anchor = days["week"] - dt.timedelta(days=28)
    targets = [
        ("robbery", "district", busy["district"]),
        ("burglary_residential", "beat", busy["beat"]),
        ("drug_possession", "district", busy["district"]),
    ]
    location_category = con.execute(
        "SELECT offense_category FROM incidents WHERE location_text = ? GROUP BY ALL ORDER BY count(*) DESC LIMIT 1",
        [busy["location"]],
    ).fetchone()[0]
    targets.append((location_category, "location", busy["location"]))
    frame = run_query(
        con,
        "taskings_before_after",
        {
            **harm_params(index),
            "tasking_ids": list(range(1, len(targets) + 1)),
            "categories": [t[0] for t in targets],
            "area_levels": [t[1] for t in targets],
            "area_ids": [t[2] for t in targets],
            "anchor_dates": [anchor] * len(targets),
        },
    )
    column = {"district": "district", "beat": "beat", "location": "location_text"}
    for (category, level, area), row in zip(targets, frame.itertuples()):
        for side, lower, upper in (
            ("before", anchor - dt.timedelta(days=28), anchor),
            ("after", anchor, anchor + dt.timedelta(days=28)),
        ):
            expected = incident_harm(
                con,
                index,
                f"offense_category = ? AND {column[level]} = ? AND occurred_at >= ? AND occurred_at < ?",
                [category, area, lower, upper],
            )
            assert getattr(row, f"{side}_incidents") == expected["incidents"].iloc[0]
            assert getattr(row, f"{side}_harm") == pytest.approx(expected["harm"].fillna(0.0).iloc[0])
    assert frame["before_harm"].iloc[0] > 0 and frame["before_harm"].iloc[2] == 0  # drug possession weighs 0


def check_threats_candidates(con, index, days, busy):
    recent_start = days["as_of"] - dt.timedelta(days=27)
    for exclude in (True, False):
        frame = run_query(
            con,
            "threats_candidates",
            {
                **harm_params(index),
                "as_of": days["as_of"],
                "level": "district",
                "recent_days": 28,
                "baseline_weeks": 12,
                "decay": 0.8,
                "timely_days": 7,
                "repeat_victim_days": 365,
                "exclude_proactive": exclude,
                "district": None,
            },
        )
        weights = con.execute(
            "SELECT category, harm_weight FROM category_harm(?, ?, include_proactive := ?) WHERE harm_weight > 0",
            [*index, not exclude],
        ).df()
        assert set(frame["category"]) <= set(weights["category"])
        assert frame["proactive"].any() != exclude
        merged = frame.merge(weights, on="category", how="left")
        np.testing.assert_allclose(merged["weight"], merged["harm_weight"])
        harm = frame.assign(harm=frame["weight"] * frame["recent_count"]).groupby(["area_id", "category"])["harm"].sum()
        expected = incident_harm(
            con,
            index,
            "occurred_at >= ? AND occurred_at < ? AND district IS NOT NULL AND harm > 0",
            [recent_start, days["as_of"] + dt.timedelta(days=1)],
            include_proactive=not exclude,
            group_by="district AS area_id, offense_category AS category",
        ).set_index(["area_id", "category"])["harm"]
        np.testing.assert_allclose(harm.reindex(expected.index).fillna(0.0).to_numpy(), expected.to_numpy())


def check_threats_repeat_locations(con, index, days, busy):
    recent_start = days["as_of"] - dt.timedelta(days=27)
    for exclude in (True, False):
        frame = run_query(
            con,
            "threats_repeat_locations",
            {
                **harm_params(index),
                "as_of": days["as_of"],
                "recent_days": 28,
                "baseline_weeks": 12,
                "min_incidents": 3,
                "exclude_proactive": exclude,
                "district": None,
                "category": None,
            },
        )
        assert len(frame) > 0
        expected = con.execute(
            """
            SELECT h.location_text AS location, sum(h.harm) AS harm_macro, count(*) AS incidents_macro
            FROM incident_harm(?, ?, include_proactive := ?) h
            JOIN offence_categories c ON c.category = h.offense_category
            WHERE h.occurred_at >= ? AND h.occurred_at < ? AND h.location_text IS NOT NULL
              AND NOT coalesce(h.domestic, false) AND NOT c.sensitive AND h.harm > 0
            GROUP BY ALL HAVING count(*) >= 3
        """,
            [*index, not exclude, recent_start, days["as_of"] + dt.timedelta(days=1)],
        ).df()
        merged = frame.merge(expected, on="location", how="outer")
        assert len(merged) == len(frame)
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
        assert (merged["incidents"] == merged["incidents_macro"]).all()


def check_evaluation_weekly_series(con, index, days, busy):
    """Tasking evaluation: weekly harm per area and category, in weeks counted from a start date."""
    start = days["week"] - dt.timedelta(weeks=8) + dt.timedelta(days=3)  # weeks need not start on a Monday
    categories = ["burglary_residential", "robbery", "drug_possession"]
    window = [start - dt.timedelta(weeks=4), start + dt.timedelta(weeks=4)]
    for level, column, areas in (("beat", "beat", None), ("location", "location_text", [busy["location"]])):
        frame = run_query(
            con,
            "evaluation_weekly_series",
            {
                **harm_params(index),
                "level": level,
                "categories": categories,
                "start": start,
                "first_week": -4,
                "last_week": 4,
                "areas": areas,
            },
        )
        where = (
            "offense_category IN ('burglary_residential', 'robbery', 'drug_possession') AND occurred_at >= ? "
            f"AND occurred_at < ? AND {column} IS NOT NULL AND (? IS NULL OR {column} = ?)"
        )
        only = areas[0] if areas else None
        expected = incident_harm(
            con,
            index,
            where,
            [*window, only, only],
            group_by=f"{column} AS area_id, offense_category, occurred_at::DATE AS day",
        )
        expected["week"] = (pd.to_datetime(expected["day"]) - pd.Timestamp(start)).dt.days // 7
        keys = ["area_id", "offense_category", "week"]
        expected = expected.groupby(keys, as_index=False)[["harm", "incidents"]].sum()
        merged = frame.merge(expected, on=keys, how="outer", suffixes=("", "_macro"))
        assert len(merged) == len(frame) > (10 if level == "beat" else 0)
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
        assert (merged["incidents"] == merged["incidents_macro"]).all()
        assert (frame.loc[frame["offense_category"] == "drug_possession", "harm"] == 0).all()  # proactive


def check_evaluation_cell_series(con, index, days, busy):
    """Tasking evaluation: weekly harm in a location's ring of grid cells, the location itself left out."""
    from ilp.analytics.hotspots import grid_for

    latitude, longitude = con.execute(
        "SELECT median(latitude), median(longitude) FROM incidents WHERE location_text = ? AND location_status = 'ok'",
        [busy["location"]],
    ).fetchone()
    grid = grid_for(con.execute("SELECT avg(latitude) FROM incidents WHERE location_status = 'ok'").fetchone()[0])
    x, y = (int(v) for v in grid.cell_of(latitude, longitude))
    cells = [(x + i, y + j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    start = days["week"] - dt.timedelta(weeks=8)
    categories = ["burglary_residential", "theft_other", "criminal_damage"]
    frame = run_query(
        con,
        "evaluation_cell_series",
        {
            **harm_params(index),
            **grid.params(),
            "cell_groups": ["ring"] * len(cells),
            "cell_xs": [c[0] for c in cells],
            "cell_ys": [c[1] for c in cells],
            "categories": categories,
            "start": start,
            "first_week": -8,
            "last_week": 4,
            "exclude_locations": [busy["location"]],
        },
    )
    expected = incident_harm(
        con,
        index,
        "offense_category IN ('burglary_residential', 'theft_other', 'criminal_damage') AND location_status = 'ok' "
        "AND occurred_at >= ? AND occurred_at < ? AND floor(longitude / ?)::BIGINT BETWEEN ? AND ? "
        "AND floor(latitude / ?)::BIGINT BETWEEN ? AND ? AND location_text IS DISTINCT FROM ?",
        [
            start - dt.timedelta(weeks=8),
            start + dt.timedelta(weeks=4),
            grid.dlon,
            x - 1,
            x + 1,
            grid.dlat,
            y - 1,
            y + 1,
            busy["location"],
        ],
        group_by="offense_category, occurred_at::DATE AS day",
    )
    expected["week"] = (pd.to_datetime(expected["day"]) - pd.Timestamp(start)).dt.days // 7
    expected = expected.groupby(["offense_category", "week"], as_index=False)[["harm", "incidents"]].sum()
    merged = frame.merge(expected, on=["offense_category", "week"], how="outer", suffixes=("", "_macro"))
    assert len(merged) == len(frame) > 0 and set(frame["cell_group"]) == {"ring"}
    np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
    assert (merged["incidents"] == merged["incidents_macro"]).all()


def check_evaluation_category_weights(con, index, days, busy):
    """Tasking evaluation: one incident's harm per category (the harm-weighted WDD's weights)."""
    categories = ["burglary_residential", "robbery", "drug_possession", "shoplifting"]
    frame = run_query(con, "evaluation_category_weights", {**harm_params(index), "categories": categories})
    expected = incident_harm(
        con,
        index,
        "offense_category IN ('burglary_residential', 'robbery', 'drug_possession', 'shoplifting')",
        group_by="offense_category AS category",
    )
    merged = frame.merge(expected, on="category")
    assert sorted(frame["category"]) == sorted(categories) == sorted(merged["category"])
    np.testing.assert_allclose(merged["harm_weight"] * merged["incidents"], merged["harm"])


def check_trends_monthly_by_district(con, index, days, busy):
    month_to = days["last_day"].replace(day=1)
    month_from = (month_to - dt.timedelta(days=200)).replace(day=1)
    frame = run_query(
        con,
        "trends_monthly_by_district",
        {**harm_params(index), "month_from": month_from, "month_to": month_to, "category": None},
    )
    expected = incident_harm(
        con,
        index,
        "occurred_at >= ? AND occurred_at < ? AND district IS NOT NULL",
        [month_from, month_to],
        group_by="date_trunc('month', occurred_at)::DATE AS month, district",
    )
    merged = frame.merge(expected, on=["month", "district"], how="left", suffixes=("", "_macro"))
    assert frame["harm"].sum() > 0 and frame["month"].nunique() >= 6
    np.testing.assert_allclose(merged["harm"], merged["harm_macro"].fillna(0.0))


def check_deployment_areas(con, index, days, busy):
    start, end = (
        dt.datetime.combine(days["week"] - dt.timedelta(days=21), dt.time()),
        dt.datetime.combine(days["week"] + dt.timedelta(days=7), dt.time()),
    )
    for level, include in (("beat", False), ("district", True)):
        frame = run_query(
            con,
            "deployment_areas",
            {
                **harm_params(index),
                "start": start,
                "end": end,
                "district": None,
                "category": None,
                "level": level,
                "include_proactive": include,
            },
        )
        expected = incident_harm(
            con,
            index,
            f"occurred_at >= ? AND occurred_at < ? AND {level} IS NOT NULL",
            [start, end],
            include_proactive=include,
            group_by=f"{level} AS area_id",
        )
        merged = frame.merge(expected, on="area_id", how="outer", suffixes=("", "_macro"))
        assert len(merged) == len(frame) > 3
        np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
        assert (merged["incidents"] == merged["incidents_macro"]).all()


HARM_QUERIES = {
    "deployment_areas": check_deployment_areas,
    "hotspot_cell_weeks": check_hotspot_cell_weeks,
    "hotspot_cell_offences": check_hotspot_cell_offences,
    "trends_monthly_by_district": check_trends_monthly_by_district,
    "brief_district_week": check_brief_district_week,
    "brief_top_combinations": check_brief_top_combinations,
    "changes_counts": check_changes_counts,
    "deployment_cells": check_deployment_cells,
    "outcomes_harm_monthly": check_outcomes_harm_monthly,
    "taskings_before_after": check_taskings_before_after,
    "threats_candidates": check_threats_candidates,
    "threats_repeat_locations": check_threats_repeat_locations,
    "trends_weekly": check_trends_weekly,
    "trends_weekly_by_district": check_trends_weekly_by_district,
    "evaluation_weekly_series": check_evaluation_weekly_series,
    "evaluation_cell_series": check_evaluation_cell_series,
    "evaluation_category_weights": check_evaluation_category_weights,
}


@pytest.mark.parametrize("index", INDICES, ids=lambda index: ":".join(index))
@pytest.mark.parametrize("name", sorted(HARM_QUERIES))
def test_harm_query_agrees_with_the_macro(con, days, busy, name, index):
    HARM_QUERIES[name](con, index, days, busy)


def test_every_query_taking_a_harm_index_is_checked_against_the_macro():
    taking = {p.stem for p in query_files() if "$harm_index" in sql_without_comments(p)}
    unchecked = sorted(taking - HARM_QUERIES.keys() - NAMES_HARM_INDEX_ONLY)
    assert not unchecked, (
        f"queries {unchecked} take $harm_index: compute harm with incident_harm/category_harm (ilp/harm.sql) "
        f"and add a check to HARM_QUERIES in {Path(__file__).name}"
    )
    for name in HARM_QUERIES:
        sql = sql_without_comments(paths.QUERIES_DIR / f"{name}.sql")
        assert re.search(r"\b(incident_harm|category_harm)\(", sql), name


def test_only_listings_of_the_weight_table_read_harm_weights():
    readers = {p.stem for p in query_files() if re.search(r"\bharm_weights\b", sql_without_comments(p))}
    copies = sorted(readers - READS_WEIGHT_TABLE)
    assert not copies, (
        f"queries {copies} read harm_weights: take harm from incident_harm(...) or category_harm(...) "
        f"(ilp/harm.sql, the one definition of harm) instead of joining the weight table"
    )
    assert READS_WEIGHT_TABLE <= readers  # the allow-list names real files that still need it


@pytest.mark.parametrize("include_proactive", [False, True])
@pytest.mark.parametrize("index", INDICES, ids=lambda index: ":".join(index))
def test_the_weekly_cube_times_category_harm_is_incident_harm(con, index, include_proactive):
    keys = "week, month, district, beat, category"
    from_cube = con.execute(
        "SELECT k.week, k.month, k.district, k.beat, k.category, sum(k.incidents * coalesce(h.harm_weight, 0.0)) AS harm, "
        "sum(k.incidents * coalesce(h.harm_weight, 0.0) ^ 2) AS harm_squared, sum(k.incidents) AS incidents "
        "FROM summary.weeks k LEFT JOIN category_harm(?, ?, include_proactive := ?) h ON h.category = k.category "
        "GROUP BY ALL",
        [*index, include_proactive],
    ).df()
    direct = incident_harm(
        con,
        index,
        include_proactive=include_proactive,
        group_by="CAST(date_trunc('week', occurred_at) AS DATE) AS week, "
        "CAST(date_trunc('month', occurred_at) AS DATE) AS month, district, beat, offense_category AS category",
    )
    merged = from_cube.merge(direct, on=keys.split(", "), how="outer", suffixes=("", "_macro"))
    assert len(merged) == len(from_cube) == len(direct)
    np.testing.assert_allclose(merged["harm"], merged["harm_macro"], rtol=1e-12)
    np.testing.assert_allclose(merged["harm_squared"], merged["harm_squared_macro"], rtol=1e-12)
    assert (merged["incidents"] == merged["incidents_macro"]).all()
    assert merged["harm"].sum() > 0


def test_summaries_store_no_harm_of_their_own():
    sql = sql_without_comments(paths.PACKAGE_DIR / "summaries.sql")
    assert not re.search(r"\b(harm_weights|harm_weight|category_harm|incident_harm)\b", sql), (
        "ilp/summaries.sql must not store harm: pages multiply the cube's counts by category_harm's weight, so a "
        "harm index loaded later, or a changed weight, is seen without rebuilding the summaries"
    )


def test_readme_example_view_computes_the_macros_harm(con, days, busy):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Adding a view") :]
    sql = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    sql = "\n".join(line.strip() for line in sql.splitlines())
    assert "incident_harm(" in sql and "harm_weights" not in sql
    start, end = days["week"] - dt.timedelta(days=21), days["week"] + dt.timedelta(days=7)
    values = {**harm_params(INDICES[0]), "start": start, "end": end, "district": busy["district"], "category": None}
    wanted = set(re.findall(r"\$(\w+)", re.sub(r"--[^\n]*", "", sql)))
    frame = con.execute(sql, {name: values[name] for name in wanted}).df()
    expected = incident_harm(
        con,
        INDICES[0],
        "occurred_at >= ? AND occurred_at < ? AND district = ?",
        [start, end, busy["district"]],
        group_by="beat",
    )
    merged = frame.merge(expected, on="beat", how="outer", suffixes=("", "_macro"))
    assert len(merged) == len(frame) > 1
    np.testing.assert_allclose(merged["harm"], merged["harm_macro"])
    assert (merged["incidents"] == merged["incidents_macro"]).all()


# -------------------------------------------------------------------- snapshots from older code
@pytest.fixture
def old_snapshot(demo_warehouse, tmp_path) -> Path:
    """A copy of the demo warehouse whose snapshot predates the harm macros."""
    source = Warehouse(demo_warehouse).require_current()
    directory = tmp_path / "old_warehouse"
    directory.mkdir()
    shutil.copyfile(source, directory / source.name)
    shutil.copytree(Path(demo_warehouse) / "segments", directory / "segments")
    (directory / "CURRENT").write_text(source.name + "\n", encoding="utf-8")
    with contextlib.closing(duckdb.connect(str(directory / source.name))) as connection:
        connection.execute("DROP MACRO TABLE incident_harm")
        connection.execute("DROP MACRO TABLE category_harm")
    return directory


def harm_macros(connection) -> set[str]:
    return {
        row[0]
        for row in connection.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_type = 'table_macro' "
            "AND function_name IN ('incident_harm', 'category_harm')"
        ).fetchall()
    }


def test_reading_a_snapshot_without_the_macros_says_what_to_do(old_snapshot, days):
    params = {
        **harm_params(INDICES[0]),
        "history_start": days["week"] - dt.timedelta(weeks=4),
        "week": days["week"],
        "district": None,
        "category": None,
    }
    with contextlib.closing(Warehouse(old_snapshot).connect()) as connection:
        assert harm_macros(connection) == set()
        with pytest.raises(WarehouseError, match=r"predates.*`ilp demo`.*`ilp ingest`") as raised:
            run_query(connection, "trends_weekly", params)
    assert "trends_weekly" in str(raised.value)


def test_an_old_snapshot_gains_the_macros_on_its_next_write(old_snapshot, con, days):
    warehouse = Warehouse(old_snapshot)
    before = warehouse.current_version()
    with warehouse.write(kind="demo", note="any write") as connection:
        connection.execute("SELECT 1")
    assert warehouse.current_version() != before
    params = {
        **harm_params(INDICES[0]),
        "history_start": days["week"] - dt.timedelta(weeks=4),
        "week": days["week"],
        "district": None,
        "category": None,
    }
    with contextlib.closing(warehouse.connect()) as connection:
        assert harm_macros(connection) == {"incident_harm", "category_harm"}
        pd.testing.assert_frame_equal(
            run_query(connection, "trends_weekly", params), run_query(con, "trends_weekly", params)
        )


def test_a_new_warehouse_has_the_macros(con):
    assert harm_macros(con) == {"incident_harm", "category_harm"}
