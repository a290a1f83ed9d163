"""Hot-spot forecasts (ilp.analytics.hotspot_forecast, ilp.analytics.near_repeat), the scoreboard in app state,
the CLI and the Next-week and Scoreboard pages.

Hand-made arrays pin the scores (hit rate, PAI, PEI*, RRI, ties pro rata), the regression and the Knox test;
the session's demo city (3 years) checks the rest: a forecast does not change when data on or after its
week is shuffled, a backtest's choice comes from its selection window only, the planted near-repeat window
is found, and forecasts are recorded, audited and scored once. The planted moving hot spot, flagged by the
chosen method within 8 weeks of the move and ranked above where last year's map ranks it, is checked on
``dense_city`` (2 years at the default density). The Chicago figures are
in benchmarks/hotspots.py, not here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from pagetest import open_page

from ilp.analytics import hotspot_forecast as hf
from ilp.analytics import near_repeat
from ilp.state import State
from ilp.warehouse import Warehouse

# ----------------------------------------------------------------------------------------- scores by hand


def test_scores_of_a_hand_made_week():
    # 10 cells, A = 10, flag 2 (20%): the map's top two are cells 0 and 1.
    scores = np.array([[9.0, 8.0, 7.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    actual = np.array([[3.0, 0.0, 5.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    result = hf.score_maps(scores, actual, (0.2,))[0.2]
    assert result["cells"] == 2
    assert result["hit_rate"][0] == pytest.approx(3 / 10)
    assert result["pai"][0] == pytest.approx((3 / 10) / (2 / 10))
    assert result["pei_star"][0] == pytest.approx(3 / 8)  # the best two cells held 5 + 3
    assert result["rri"][0] == pytest.approx((17 / 25) / (3 / 10))  # predicted share 17/25 over observed 3/10


def test_ties_at_the_cut_share_the_last_places():
    # flag 2 of 4 cells; cell 0 is in, cells 1-3 tie for the last place: each counts a third
    scores = np.array([[5.0, 1.0, 1.0, 1.0]])
    actual = np.array([[1.0, 3.0, 0.0, 0.0]])
    result = hf.score_maps(scores, actual, (0.5,))[0.5]
    assert result["hit_rate"][0] == pytest.approx((1 + 3 / 3) / 4)


def test_the_study_area_sets_the_flagged_share_and_an_empty_week_is_not_scored():
    scores = np.array([[2.0, 1.0], [2.0, 1.0]])
    actual = np.array([[1.0, 1.0], [0.0, 0.0]])
    result = hf.score_maps(scores, actual, (0.1,), area_cells=10)[0.1]
    assert result["cells"] == 1
    assert result["pai"][0] == pytest.approx(0.5 / 0.1)
    assert np.isnan(result["pai"][1])


def test_poisson_regression_recovers_its_coefficients():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20_000, 2))
    y = rng.poisson(np.exp(-0.5 + 0.8 * x[:, 0] - 0.3 * x[:, 1])).astype(float)
    beta = hf.poisson_irls(x, y)
    np.testing.assert_allclose(beta, [-0.5, 0.8, -0.3], atol=0.03)
    # a constant column and an all-zero column stay finite (the ridge)
    beta = hf.poisson_irls(np.column_stack([x, np.zeros(len(x))]), y)
    assert np.isfinite(beta).all() and abs(beta[-1]) < 1e-6


def test_shift_hours_parse_and_refuse_nonsense():
    assert hf.ShiftHours.parse("day=6,evening=14,night=22") == hf.ShiftHours(6, 14, 22)
    assert hf.ShiftHours.parse(None).label("night") == "Night 23:00-07:00"
    for bad in ("day=15,evening=7", "noon=12", "day=seven"):
        with pytest.raises(hf.ForecastError):
            hf.ShiftHours.parse(bad)


def _cell_weeks(counts: np.ndarray, cell_x=None, shifts=None) -> hf.CellWeeks:
    """A CellWeeks from a (weeks, cells) count array: one row per non-zero entry."""
    weeks, cells = counts.shape
    week, cell = np.nonzero(counts)
    cell_x = np.arange(cells) if cell_x is None else np.asarray(cell_x)
    return hf.CellWeeks(
        grid=hf.Grid(150.0, 0.0),
        weeks=np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + 7 * weeks, 7),
        cell_x=cell_x,
        cell_y=np.zeros(cells, dtype=np.int64),
        row_week=week,
        row_cell=cell,
        row_shift=np.full(len(week), hf.NO_SHIFT) if shifts is None else shifts,
        row_incidents=counts[week, cell].astype(float),
        row_harm=counts[week, cell].astype(float),
        row_all=counts[week, cell].astype(float),
    )


def test_methods_read_only_the_weeks_before_each_origin():
    rng = np.random.default_rng(5)
    counts = rng.poisson(rng.gamma(0.5, 2.0, size=60)[None, :], size=(80, 60))
    data = _cell_weeks(counts)
    origins = np.arange(60, 70)
    fitted = hf.fit_methods(hf.History(data, "all", "count"), np.arange(30, 60))
    before = {name: method.scores(origins).copy() for name, method in fitted.items()}
    changed = counts.copy()
    changed[60:] = rng.permutation(changed[60:].ravel()).reshape(changed[60:].shape)  # shuffle the future
    refitted = hf.fit_methods(hf.History(_cell_weeks(changed, data.cell_x), "all", "count"), np.arange(30, 60))
    for name, method in refitted.items():
        first = method.scores(origins[:1])
        np.testing.assert_allclose(first, before[name][:1], err_msg=name)  # origin 60 sees only weeks < 60
    assert fitted["naive_last_year"].scores(np.array([60]))[0] == pytest.approx(counts[8:60].sum(axis=0))
    assert fitted["naive_last_4_weeks"].scores(np.array([60]))[0] == pytest.approx(counts[56:60].sum(axis=0))


def test_the_choice_may_honestly_be_a_naive_map():
    # a perfectly stable map: nothing beats last year's counts, and a tie keeps the simpler method
    counts = np.tile(np.array([[5, 4, 3, 2, 1, 0, 0, 0, 0, 0] * 4]), (70, 1))
    history = hf.History(_cell_weeks(counts), "all", "count")
    fitted = hf.fit_methods(history, np.arange(56, 70))
    chosen, means = hf.choose(history, fitted, np.arange(56, 70))
    assert chosen == "naive_last_year"
    assert means["naive_last_year"] == pytest.approx(max(means.values()))


@pytest.mark.parametrize(
    ("gain", "expected"),
    [(1.01, "naive_last_year"), (1.019, "naive_last_year"), (1.03, "kernel_density"), (1.2, "kernel_density")],
)
def test_last_years_map_stays_unless_beaten_by_the_margin(monkeypatch, gain, expected):
    # the issue's rule: a method that does not clearly beat the naive map on the selection window leaves it in use
    pai = {"naive_last_year": 5.0, "naive_last_4_weeks": 4.0, "kernel_density": 5.0 * gain}

    class Scores:
        def __init__(self, name):
            self.name = name

        def scores(self, selection):
            return self.name

    monkeypatch.setattr(hf, "_mean_pai", lambda history, scores, selection: pai[scores])
    chosen, means = hf.choose(None, {name: Scores(name) for name in pai}, np.arange(3))
    assert chosen == expected and means == pai


# ----------------------------------------------------------------------------------------- near repeats
def _planted_burglaries(follow_ons: bool, n: int = 800, seed: int = 11):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 20_000, size=(n, 2))
    days = rng.integers(0, 365, size=n)
    if follow_ons:
        parents = rng.choice(n, size=n // 2, replace=False)
        angle = rng.uniform(0, 2 * np.pi, len(parents))
        radius = 150 * np.sqrt(rng.random(len(parents)))
        children = xy[parents] + np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None]
        xy = np.vstack([xy, children])
        days = np.concatenate([days, days[parents] + rng.integers(1, 10, len(parents))])
    return xy, days


def test_knox_finds_planted_near_repeats_and_not_chance():
    xy, days = _planted_burglaries(True)
    planted = near_repeat.knox_test(xy, days)
    assert planted.found and planted.distance_m == 200 and planted.days <= 14
    assert planted.nearest().ratio > 3 and planted.nearest().p_value <= 0.01
    chance = near_repeat.knox_test(*_planted_burglaries(False))
    assert not chance.found, chance.table.head()
    assert "No near-repeat pattern" in chance.sentence()


def test_knox_on_too_many_pairs_samples_the_burglaries_and_still_finds_the_window():
    # 6,000 planted burglaries: ~90,000 pairs within 800 m, three times a 30,000-pair budget
    xy, days = _planted_burglaries(True, n=4000, seed=5)
    whole = near_repeat.knox_test(xy, days, max_pairs=10**9)
    sampled = near_repeat.knox_test(xy, days, max_pairs=30_000)
    assert whole.sampled_from is None and whole.events == len(xy)
    assert sampled.sampled_from == len(xy) and sampled.events < 0.7 * len(xy)
    assert whole.found and sampled.found
    assert (sampled.distance_m, sampled.days) == (whole.distance_m, whole.days)
    assert sampled.nearest().ratio > 2
    assert f"a random sample of the {len(xy):,} there were" in sampled.sentence()


# ----------------------------------------------------------------------------------------- the demo city
@pytest.fixture(scope="module")
def con(demo_warehouse):
    connection = Warehouse(demo_warehouse).connect()
    yield connection
    connection.close()


def planted(con) -> dict:
    """The moving hot spot's phase 2 (start and centre) and the near-repeat truth."""
    rows = con.execute("SELECT kind, start_date, details FROM demo_truth ORDER BY kind, start_date").fetchall()
    moving = [(start, json.loads(details)) for kind, start, details in rows if kind == "moving_hotspot"]
    near = next(json.loads(details) for kind, _, details in rows if kind == "near_repeat")
    return {"move": moving[1][0], "to": moving[1][1], "near": near}


@pytest.fixture(scope="module")
def truth(con) -> dict:
    return planted(con)


@pytest.fixture(scope="module")
def dense_con(dense_city):
    """Two years at the default density (conftest.DENSE_CITY), for the moving hot spot. At the test size's
    density last year's map (top 5% of cells) already holds the new centre's cell in the week of the move in
    most builds, so "before last year's map" held in only 7-8 builds of 20 there."""
    connection = Warehouse(dense_city).connect()
    yield connection
    connection.close()


def test_backtest_reports_every_method_and_chooses_on_the_weeks_before(con):
    result = hf.backtest(con, start=dt.date(2026, 8, 3), end=dt.date(2026, 9, 27), selection_weeks=12)
    assert result.reported_window == (dt.date(2026, 8, 3), dt.date(2026, 9, 27))
    assert result.selection_window == (dt.date(2026, 5, 11), dt.date(2026, 8, 2))
    assert set(result.rows["method"]) == set(hf.METHODS) and set(result.rows["coverage"]) == set(hf.COVERAGES)
    assert (result.rows["weeks"] == 8).all()
    means = dict(zip(result.selection["method"], result.selection["pai"]))
    best = max(means, key=means.get)
    kept = means[best] < means["naive_last_year"] * hf.MIN_GAIN_OVER_NAIVE
    assert result.chosen == ("naive_last_year" if kept else best)
    payload = result.as_json()
    assert {"chosen", "rows"} <= payload.keys()
    assert set(payload["rows"][0]) == {"method", "coverage", "hit_rate", "pai", "pei_star", "rri", "weeks"}
    five = result.rows[result.rows["coverage"] == 0.05].set_index("method")
    assert (five["pai"] > 1).all() and (five["hit_rate"] <= 1).all() and (five["pei_star"] <= 1).all()


def test_backtest_cli_prints_and_writes_json(run_cli, demo_warehouse):
    arguments = ("backtest", "hotspots", "--start", "2026-09-07", "--end", "2026-10-04", "--coverage", "0.05")
    code, out, err = run_cli(*arguments, "--category", "robbery", "--json", warehouse=demo_warehouse)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["chosen"] in hf.METHODS
    assert {row["method"] for row in payload["rows"]} >= {"naive_last_year", "naive_last_4_weeks"}
    assert {row["coverage"] for row in payload["rows"]} == {0.05} and {r["weeks"] for r in payload["rows"]} == {4}
    code, out, err = run_cli(*arguments, "--shift", "night", warehouse=demo_warehouse)
    assert code == 0, err
    assert "Chosen on the selection window" in out and "naive_last_year" in out
    code, _, err = run_cli(
        "backtest", "hotspots", "--start", "2030-01-06", "--end", "2030-02-01", warehouse=demo_warehouse
    )
    assert code == 1 and "no complete week with data" in err and "Traceback" not in err


def test_the_moving_hot_spot_is_flagged_by_the_chosen_method_and_ranked_above_last_years_map(dense_con):
    """Within 8 weeks of the move the chosen method has the new centre's cell in its top 5%, and by the 8th
    week it ranks that cell above where last year's map (which still leans on the old beat) ranks it.

    Not "last year's map misses it": the new centre lies by its beat's background hot points, so its cell
    sits near the edge of last year's top 5% (ranks of about 200 to 5,500 in the week of the move; over 12
    builds, seeds 9-20, last year's map already flagged it in the move's week in 5). What the move does is
    lift it up the chosen method's list within two or three weeks (ranks 1 to 137 by the 8th week, flagged
    by week 2 in all 12) while last year's map keeps it at 24 to 1,668 (below the chosen method in all 12)."""
    con, truth = dense_con, planted(dense_con)
    grid = hf.grid_of(con)
    cell_x, cell_y = grid.cell_of([truth["to"]["centre_lat"]], [truth["to"]["centre_lon"]])
    centre = (int(cell_x[0]), int(cell_y[0]))
    move = truth["move"]
    result = hf.backtest(
        con,
        start=move,
        end=move + dt.timedelta(weeks=8, days=-1),
        category="burglary_residential",
        watch=[centre],
    )
    assert result.chosen != "naive_last_year"
    flags = result.watched.pivot(index="week", columns="method", values="flagged")
    ranks = result.watched.pivot(index="week", columns="method", values="rank")
    assert len(ranks) == 8
    caught = flags.index[flags[result.chosen]]
    assert len(caught), f"the chosen {result.chosen} never flagged the moved hot spot:\n{result.watched}"
    assert (caught[0] - move).days < 56
    last = ranks.iloc[-1]
    assert last[result.chosen] < last["naive_last_year"], f"last year's map ranks it higher:\n{result.watched}"


def test_a_forecast_does_not_change_when_its_week_and_later_are_shuffled(demo_warehouse, tmp_path):
    week = dt.date(2026, 10, 12)
    copy = tmp_path / "warehouse"
    shutil.copytree(demo_warehouse, copy, ignore=shutil.ignore_patterns("*.sqlite*"))
    (segment,) = (copy / "segments").glob("g*.duckdb")  # the demo city's incidents: one segment file
    with contextlib.closing(duckdb.connect(str(segment))) as con:
        # move every later incident to another later incident's place and offence
        con.execute(
            """
            UPDATE incidents SET latitude = s.lat, longitude = s.lon, offense_category = s.cat
            FROM (SELECT source, source_id,
                         lead(latitude, 7) OVER w AS lat, lead(longitude, 7) OVER w AS lon,
                         lead(offense_category, 7) OVER w AS cat
                  FROM incidents WHERE occurred_at >= ? WINDOW w AS (ORDER BY source_id)) s
            WHERE incidents.source = s.source AND incidents.source_id = s.source_id AND s.lat IS NOT NULL
            """,
            [week],
        )
    forecasts = []
    for directory in (demo_warehouse, copy):
        with contextlib.closing(Warehouse(directory).connect()) as con:
            forecasts.append(hf.forecast_hotspots(con, week=week, shifts=("evening",), category="burglary_residential"))
    before, after = forecasts[0]["evening"], forecasts[1]["evening"]
    assert before.method == after.method and before.area_cells == after.area_cells
    pd.testing.assert_frame_equal(before.cells, after.cells)
    pd.testing.assert_frame_equal(before.evaluation, after.evaluation)


def test_near_repeat_window_of_the_demo_city_is_the_planted_one(con, truth):
    alerts = near_repeat.near_repeat_alerts(con, week=dt.date(2026, 11, 16), cell_m=150.0, lat_ref=42.5)
    knox = alerts.knox
    assert knox.found
    # The planted window is 14 days: a follow-on comes 1 to 14 days after its burglary. The Knox band of pairs
    # 14-20 days apart holds those 14 days apart and a follow-on's own follow-ons (branching 0.1, up to 28 days
    # after the first): a small real excess that reaches significance in some builds (99 permutations), and
    # the window then reads 21 days. Any other window or radius is not what was planted.
    assert knox.distance_m == truth["near"]["radius_m"]
    assert knox.days in (truth["near"]["window_days"], truth["near"]["window_days"] + 7), knox.days
    cells = alerts.cells
    assert len(cells) and set(cells.columns) >= {"cell_x", "cell_y", "beat", "district", "open_until"}
    assert (
        "latitude" not in cells.columns and (pd.to_datetime(cells["open_until"]).dt.date >= dt.date(2026, 11, 16)).all()
    )


@pytest.fixture(scope="module")
def night_plan(con) -> hf.Plan:
    return hf.next_week_plan(con, week=dt.date(2026, 11, 16), shift="night")


def test_plan_cells_name_blocks_only_from_offences_that_may_be_shown(con, night_plan):
    plan = night_plan
    assert plan.harm.method == plan.count.method
    assert "last year's map" in plan.sentence() and "PAI" in plan.sentence()
    cells = plan.cells
    assert len(cells) == hf.flagged_cells(0.10, plan.harm.area_cells)
    assert list(cells["rank"]) == list(range(1, len(cells) + 1))
    assert (cells["expected_harm"].diff().dropna() <= 1e-9).all()
    assert ((cells["harm_low"] <= cells["harm_high"]) & (cells["count_low"] <= cells["count_high"])).all()
    grid = hf.Grid(plan.harm.cell_m, plan.harm.lat_ref)
    blocks = cells.dropna(subset=["block"]).head(30)
    for row in blocks.itertuples():
        allowed = con.execute(
            """
            SELECT count(*) FROM incidents i JOIN offence_categories c ON c.category = i.offense_category
            WHERE i.location_text = ? AND NOT c.sensitive AND NOT coalesce(i.domestic, false)
              AND floor(i.longitude / ?)::BIGINT = ? AND floor(i.latitude / ?)::BIGINT = ?
            """,
            [row.block, grid.dlon, row.cell_x, grid.dlat, row.cell_y],
        ).fetchone()[0]
        assert allowed > 0, row
    table = hf.plan_table(plan, 5)
    assert list(table["rank"]) == [1, 2, 3, 4, 5] and "nearest_block" in table
    geojson = json.loads(hf.plan_geojson(plan, 5))
    assert len(geojson["features"]) == 5 and geojson["features"][0]["geometry"]["type"] == "Polygon"
    ring = geojson["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]


# ----------------------------------------------------------------------------------------- recorded and scored
def test_forecasts_are_recorded_audited_and_scored_once(con, tmp_path):
    state = State(tmp_path / "state.sqlite")
    week = dt.date(2026, 10, 19)
    [(forecast_id, forecast)] = hf.issue(con, state, week=week, shifts=("night",), by="tester", source="cli")
    recorded = state.forecasts()
    assert recorded.loc[0, "method"] == forecast.method and recorded.loc[0, "snapshot"]
    cells = state.forecast_cells(forecast_id)
    assert len(cells) == hf.flagged_cells(0.10, forecast.area_cells)
    issued = state.audit_log(action="forecast_issued")
    assert len(issued) == 1 and json.loads(issued.loc[0, "parameters"])["cells_sha256"] == hf.cells_sha256(
        [tuple(r) for r in cells.itertuples(index=False)]
    )

    scored = hf.score_recorded(con, state, by="tester")
    assert [item["forecast_id"] for item in scored] == [forecast_id]
    assert hf.score_recorded(con, state, by="tester") == []  # once
    board = state.forecast_scoreboard()
    assert set(board["map"]) == {"issued", "naive_last_year", "naive_last_4_weeks"}
    assert set(board["coverage"].round(6)) == set(hf.COVERAGES)

    # the issued map's hit rate at 5%, counted straight from the incidents
    k = hf.flagged_cells(0.05, forecast.area_cells)
    grid = hf.Grid(forecast.cell_m, forecast.lat_ref)
    harm = con.execute(
        """
        SELECT floor(longitude / ?)::BIGINT AS cell_x, floor(latitude / ?)::BIGINT AS cell_y, sum(harm) AS harm
        FROM incident_harm('cchi', '2016') WHERE occurred_at >= ? AND occurred_at < ? AND location_status = 'ok'
          AND occurred_precision = 'exact' AND (hour(occurred_at) >= 23 OR hour(occurred_at) < 7)
        GROUP BY ALL
        """,
        [grid.dlon, grid.dlat, week, week + dt.timedelta(days=7)],
    ).df()
    assert harm["harm"].sum() > 0
    flagged = cells.head(k).merge(harm, on=["cell_x", "cell_y"], how="left").fillna({"harm": 0.0})
    row = board[(board["map"] == "issued") & np.isclose(board["coverage"], 0.05)].iloc[0]
    assert row["hit_rate"] == pytest.approx(flagged["harm"].sum() / harm["harm"].sum(), rel=1e-6)
    assert row["pai"] == pytest.approx(row["hit_rate"] / (k / forecast.area_cells), rel=1e-6)
    assert state.verify_audit().ok
    assert len(state.audit_log(action="forecast_scored")) == 1

    weekly = hf.scoreboard(board)
    assert set(weekly["map"]) == {"issued", "naive_last_year", "naive_last_4_weeks"} and (weekly["weeks"] == 1).all()


def test_forecast_and_score_from_the_cli(run_cli, demo_warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "state.sqlite"))
    code, out, err = run_cli("forecast", "hotspots", "--week", "2026-11-02", "--json", warehouse=demo_warehouse)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["week"] == "2026-11-02" and [f["shift"] for f in payload["forecasts"]] == list(hf.SHIFTS)
    assert all(f["method"] in hf.METHODS and f["top"] for f in payload["forecasts"])
    code, out, err = run_cli("score", warehouse=demo_warehouse)
    assert code == 0, err
    assert out.startswith("Scored 3 forecast(s); 0 wait") and "PAI" in out
    code, _, err = run_cli("forecast", "hotspots", "--week", "2026-11-04", warehouse=demo_warehouse)
    assert code == 1 and "Wednesday" in err


def test_a_forecast_failure_after_an_ingest_is_reported_not_raised(demo_warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "state.sqlite"))

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(hf, "issue", broken)
    result = hf.after_ingest(Warehouse(demo_warehouse), today=dt.date(2026, 12, 1))
    assert result["week"] == "2026-11-16" and "disk on fire" in result["error"]
    assert "FAILED (the ingest itself succeeded)" in hf.after_ingest_text(result)

    from ilp import ingest

    monkeypatch.setattr(hf, "after_ingest", broken)
    assert "disk on fire" in ingest._forecast_after_ingest(Warehouse(demo_warehouse), dt.date(2026, 12, 1))["error"]


def _chicago_export(path: Path, start: dt.date, weeks: int, seed: int = 2) -> Path:
    """A small export in Chicago's format: a few incidents a day on a 1.5 km square, 13 hot corners."""
    rng = np.random.default_rng(seed)
    codes = ["0820", "0610", "031A", "1310", "0460"]
    hot = rng.uniform([41.880, -87.640], [41.893, -87.622], size=(13, 2))
    lines = [
        "ID,Case Number,Date,Block,IUCR,Primary Type,Description,Location Description,Arrest,Domestic,Beat,"
        "District,Ward,Community Area,FBI Code,X Coordinate,Y Coordinate,Updated On,Latitude,Longitude"
    ]
    number = 0
    for day in range(weeks * 7):
        for _ in range(rng.poisson(12)):
            number += 1
            when = dt.datetime.combine(start + dt.timedelta(days=day), dt.time(int(rng.integers(0, 24)), 30))
            lat, lon = hot[rng.integers(0, 13)] + rng.normal(0, 0.0008, 2)
            lines.append(
                f"{number},JX{number:06d},{when:%m/%d/%Y %I:%M:%S %p},001XX W TEST ST,{rng.choice(codes)},X,Y,"
                f"STREET,false,false,0111,001,42,32,06,,,{when:%m/%d/%Y %I:%M:%S %p},{lat:.6f},{lon:.6f}"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ilp_ingest_forecasts_the_next_week_and_scores_what_has_come_due(real_warehouse, run_cli, tmp_path):
    first = _chicago_export(tmp_path / "first.csv", dt.date(2024, 1, 1), weeks=12)
    code, out, err = run_cli("ingest", "--mapping", "chicago", first, warehouse=real_warehouse)
    assert code == 0, err
    assert "Hot-spot forecast for the week of 2024-03-25 recorded: day " in out, out
    state = State.for_warehouse(real_warehouse.directory)
    issued = state.forecasts()
    assert list(issued["shift"]) == list(hf.SHIFTS) and set(issued["source"]) == {"ingest"}
    assert (issued["week"] == "2024-03-25").all()
    # the next export covers that week: its forecasts are scored, the following week is forecast
    second = _chicago_export(tmp_path / "second.csv", dt.date(2024, 3, 25), weeks=2, seed=3)
    code, out, err = run_cli("ingest", "--mapping", "chicago", "--json", second, warehouse=real_warehouse)
    assert code == 0, err
    forecast = json.loads(out)["forecast"]
    assert forecast["scored"] == 3 and forecast["week"] == "2024-04-08" and len(forecast["issued"]) == 3
    assert set(state.forecast_scoreboard()["forecast_id"]) == set(issued["id"])


def test_an_ingest_without_enough_history_touches_no_state(real_warehouse, monkeypatch):
    monkeypatch.delenv("ILP_STATE", raising=False)
    result = hf.after_ingest(real_warehouse)  # schema and reference data, no incidents
    assert result["note"] == "no incidents: no hot-spot forecast" and not result["error"]
    assert not (real_warehouse.directory / "app-state.sqlite").exists()
    assert hf.after_ingest_text(result) == ""


# ----------------------------------------------------------------------------------------- the pages
pytestmark_pages = pytest.mark.usefixtures("entry_point_has_run")


@pytestmark_pages
def test_next_week_page_names_the_method_and_maps_the_plan(app_env):
    at = open_page("deployment_forecast", "commander")
    assert not at.exception, [e.message for e in at.exception]
    sentence = at.success[0].value
    assert sentence.startswith("Method in use:") and "last year's map" in sentence
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    cells = next(layer for layer in spec["layers"] if layer["id"] == "forecast-cells")
    plan_size = int(at.metric[0].value.replace(",", ""))
    assert len(cells["data"]) == plan_size > 0
    assert {"rank", "cell", "harm_text", "offences"} <= cells["data"][0].keys()
    assert not any("latitude" in row or "lat" in row for row in cells["data"])
    table = at.dataframe[0].value
    assert len(table) == plan_size
    text = "\n".join(x.value for x in [*at.warning, *at.info, *at.caption])
    assert "Near repeats" in text and "Cells, never points" in text
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Plan as CSV", "Plan as GeoJSON"]


def test_a_downloaded_plan_is_recorded_and_audited(night_plan, tmp_path):
    state = State(tmp_path / "state.sqlite")
    plan = night_plan
    audits = []
    render = hf.recorded_download(
        plan,
        7,
        "geojson",
        state,
        lambda action, parameters: audits.append((action, parameters)),
        by="cmdr",
        role="commander",
        what="plan",
    )
    assert state.forecasts().empty  # nothing before the click
    data = json.loads(render())
    assert len(data["features"]) == 7
    recorded = state.forecasts()
    assert list(recorded["source"]) == ["download"] and list(recorded["flagged_cells"]) == [7]
    assert audits == [
        ("export", {"what": "plan", "format": "geojson", "rows": 7, "forecast_id": int(recorded["id"][0])})
    ]
    assert len(state.audit_log(action="forecast_issued")) == 1


@pytestmark_pages
def test_scoreboard_page_empty_then_week_by_week(app_env, demo_warehouse):
    at = open_page("forecast_scoreboard", "analyst")
    assert not at.exception, [e.message for e in at.exception]
    assert "No forecast has been scored yet" in at.info[0].value
    state = State(Path(app_env["ILP_STATE"]))
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        for week in (dt.date(2026, 10, 26), dt.date(2026, 11, 2)):
            hf.issue(con, state, week=week, shifts=("day",), by="tester", source="cli")
        hf.score_recorded(con, state, by="tester")
    at = open_page("forecast_scoreboard", "analyst")
    assert not at.exception, [e.message for e in at.exception]
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {trace["name"] for trace in chart["data"]}
    assert {"Issued forecast", "Last year's map", "Last 4 weeks' map", "Issued: running mean"} <= names
    assert len(at.dataframe[0].value) == 6  # 2 weeks x 3 maps
    assert "scored weeks the issued maps found" in at.subheader[0].value


@pytestmark_pages
def test_next_week_map_outlines_the_near_repeat_alert_cells(app_env):
    at = open_page("deployment_forecast", "commander")
    toggles = [t for t in at.toggle if t.key == "forecast_show_alerts"]
    assert toggles, "the demo city has open near-repeat windows in its last week"
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    assert "near-repeat-cells" not in [entry["id"] for entry in spec["layers"]]
    toggles[0].set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    outline = next(entry for entry in spec["layers"] if entry["id"] == "near-repeat-cells")
    assert outline["@@type"] == "LineLayer"
    # Four edges a cell, each a cell's side long (no stroked polygons: ilp/ui/maps.py).
    edges = outline["data"]
    assert len(edges) % 4 == 0 and len(edges) > 0
    sides = {round(abs(e["t"][0] - e["s"][0]) + abs(e["t"][1] - e["s"][1]), 5) for e in edges}
    assert len(sides) == 2  # the grid's dlon and dlat


def test_grid_latitude_is_remembered_per_read_only_snapshot_only(tmp_path, monkeypatch):
    """grid_of's median latitude (a scan of every incident) is computed once per read-only snapshot file; a
    connection that can write (a snapshot being built) sees its incidents' latitude as they are now."""
    path = tmp_path / "s.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE incidents AS SELECT 41.8 AS latitude, 'ok' AS location_status")
    con.execute("CREATE TABLE areas (level VARCHAR, area_id VARCHAR, area_km2 DOUBLE, geometry_geojson VARCHAR)")
    assert hf.grid_of(con).lat_ref == pytest.approx(42.0)  # rounded to half a degree
    con.execute("UPDATE incidents SET latitude = 51.4")  # a write in progress moves the city
    assert hf.grid_of(con).lat_ref == pytest.approx(51.5)
    con.close()

    calls = []
    real = hf.run_query
    monkeypatch.setattr(hf, "run_query", lambda *args, **kwargs: calls.append(args[1]) or real(*args, **kwargs))
    for _ in range(3):
        with duckdb.connect(str(path), read_only=True) as reader:
            assert hf.grid_of(reader, 100.0).lat_ref == pytest.approx(51.5)
    assert calls.count("deployment_reference") == 1


def test_an_unknown_category_is_refused_with_the_known_ones(demo_warehouse):
    from ilp.warehouse import connect_read_only

    con = connect_read_only(Warehouse(demo_warehouse).require_current())
    with pytest.raises(hf.ForecastError, match="no incidents of category 'arson_of_the_moon'.*burglary_residential"):
        hf._check_category(con, "arson_of_the_moon")
    hf._check_category(con, "burglary_residential")  # a known one passes
    con.close()
