"""ilp.analytics.changes ("what changed, for real") on the demo city.

The demo city plants a moving burglary hot spot: residential burglary runs at about 4x in beat 2F for the
first 52 weeks, then moves to the neighbouring beat 2G. Four weeks after the move both changes are real,
in opposite directions, and district 2 as a whole has not changed much. Those checks run on
``dense_city`` (2 years at the default 150,000 incidents a year, conftest.DENSE_CITY): at the session's
``demo_warehouse`` density (60,000 a year) beat 2F has about 6 burglaries in the 28 days after the move
against about 27 expected, and over 20 seeds the fall survived the false discovery rate in only 12-16
builds and the control chart marked the move in 6-7, so a pass there was the seed's luck, not the planted
signal. At ``dense_city``'s density, over 20 seeds: rise and fall significant in 20, the control chart
right in 18 (one build with no week above the band in the six after the move, one with a false signal
before it), district 2 unchanged in 19 (one build caught the seasonal autumn fall). The other checks
(counts, Benjamini-Hochberg, percent rules) run on ``demo_warehouse``.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from ilp.analytics import changes
from ilp.analytics.stats import benjamini_hochberg
from ilp.warehouse import Warehouse


@pytest.fixture(scope="module")
def con(demo_warehouse):
    connection = Warehouse(demo_warehouse).connect()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def dense_con(dense_city):
    connection = Warehouse(dense_city).connect()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def hotspot_move(con) -> dict:
    return moving_hotspot(con)


@pytest.fixture(scope="module")
def dense_move(dense_con) -> dict:
    return moving_hotspot(dense_con)


def moving_hotspot(con) -> dict:
    """The moving hot spot's second phase: its beat, the beat it left, and the day it moved."""
    beat, start, details = con.execute(
        "SELECT area_id, start_date, details FROM demo_truth "
        "WHERE kind = 'moving_hotspot' AND json_extract(details, '$.phase')::INTEGER = 2"
    ).fetchone()
    district = con.execute("SELECT parent_id FROM areas WHERE level = 'beat' AND area_id = ?", [beat]).fetchone()[0]
    return {"to": beat, "from": json.loads(details)["from_beat"], "start": start, "district": district}


def change_row(frame, window, area, category):
    rows = frame[(frame["window"] == window) & (frame["area"] == area) & (frame["offense_category"] == category)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_moving_hot_spot_is_a_significant_rise_and_fall(dense_con, dense_move):
    con, hotspot_move = dense_con, dense_move
    as_of = hotspot_move["start"] + dt.timedelta(days=27)  # the first 28 days after the move
    frame = changes.changes(con, as_of=as_of, level="beat", district=hotspot_move["district"])
    rise = change_row(frame, "28d", hotspot_move["to"], "burglary_residential")
    fall = change_row(frame, "28d", hotspot_move["from"], "burglary_residential")
    assert rise["significant"] and rise["direction"] == "up" and "▲ significant rise" in rise["change_text"]
    assert fall["significant"] and fall["direction"] == "down" and "▼ significant fall" in fall["change_text"]
    assert set(frame["level"]) == {"beat"}
    # every area in the frame lies in the district asked for
    beats = set(
        con.execute(
            "SELECT area_id FROM areas WHERE level = 'beat' AND parent_id = ?", [hotspot_move["district"]]
        ).df()["area_id"]
    )
    assert set(frame["area"]) <= beats
    # the whole district moved little: the hot spot changed beats, not size
    district = changes.changes(con, as_of=as_of, level="district", category="burglary_residential")
    assert not change_row(district, "28d", hotspot_move["district"], "burglary_residential")["significant"]


def test_counts_match_an_independent_query(con, hotspot_move):
    as_of = hotspot_move["start"] + dt.timedelta(days=27)
    frame = changes.changes(con, as_of=as_of, level="district")
    end = as_of + dt.timedelta(days=1)
    for window, days in (("week", 7), ("28d", 28)):
        row = change_row(frame, window, hotspot_move["district"], "burglary_residential")
        count, baseline = con.execute(
            """
            SELECT count(*) FILTER (WHERE occurred_at >= $start),
                   count(*) FILTER (WHERE occurred_at < $start AND occurred_at >= $baseline_start)
            FROM incidents WHERE district = $district AND offense_category = 'burglary_residential'
              AND occurred_at < $end
            """,
            {
                "district": hotspot_move["district"],
                "end": end,
                "start": end - dt.timedelta(days=days),
                "baseline_start": end - dt.timedelta(days=days + 84),
            },
        ).fetchone()
        assert row["count"] == count
        assert row["baseline_count"] == baseline
        assert row["baseline"] == pytest.approx(baseline * days / 84)
        assert row["z"] == pytest.approx(2 * (math.sqrt(count) - math.sqrt(baseline * days / 84)))


def test_significance_is_benjamini_hochberg_within_each_window(con):
    frame = changes.changes(con, as_of=dt.date(2026, 11, 15), level="district", fdr=0.10)
    assert set(frame["window"]) == {"week", "28d"}
    for window in ("week", "28d"):
        part = frame[frame["window"] == window]
        adjusted, rejected = benjamini_hochberg(part["p_value"].to_numpy(), 0.10)
        assert part["q_value"].to_numpy() == pytest.approx(adjusted)
        assert part["significant"].tolist() == rejected.tolist()
        assert (part["tests"] == len(part)).all()
    assert (frame["direction"].notna() == frame["significant"]).all()
    assert ((frame["p_value"] >= 0) & (frame["p_value"] <= 1)).all()
    # a stricter FDR never flags more
    strict = changes.changes(con, as_of=dt.date(2026, 11, 15), level="district", fdr=0.01)
    assert strict["significant"].sum() <= frame["significant"].sum()


def test_percent_change_only_with_a_baseline_of_ten_and_always_with_a_marker(con):
    frame = changes.changes(con, as_of=dt.date(2026, 11, 15), level="district")
    small = frame["baseline"] < 10
    assert small.any() and (~small).any()
    assert frame.loc[small, "pct_change"].isna().all()
    big = frame[~small]
    assert big["pct_change"].to_numpy(dtype=float) == pytest.approx(
        ((big["count"] - big["baseline"]) / big["baseline"]).to_numpy()
    )
    for _, row in frame.iterrows():
        assert "significant" in row["change_text"]  # "not significant" or "▲/▼ significant ..."
        if row["pct_change"] is None:
            assert "%" not in row["change_text"] and "expected" in row["change_text"]
        else:
            assert row["change_text"].endswith(")") and "%" in row["change_text"]
    records = changes.to_records(frame)
    json.dumps(records)
    assert all(r["pct_change"] is None for r, s in zip(records, small, strict=True) if s)


def test_control_chart_marks_the_hot_spot_move(dense_con, dense_move):
    con, hotspot_move = dense_con, dense_move
    as_of = hotspot_move["start"] + dt.timedelta(days=6 + 7 * 5)  # six weeks after the move
    chart = changes.control_chart(
        con, as_of=as_of, weeks=20, level="beat", area=hotspot_move["to"], category="burglary_residential"
    )
    assert len(chart) == 20
    assert chart["week_end"].iloc[-1] == as_of
    assert (chart["week_end"] - chart["week_start"]).map(lambda d: d.days).eq(6).all()
    assert chart["prior_mean"].notna().all()  # the query fetched 8 more weeks for the first band
    after = chart[chart["week_start"] >= hotspot_move["start"]]
    before = chart[chart["week_start"] < hotspot_move["start"]]
    assert (after["outside"] == "above").any()
    assert not (before["outside"] == "above").any()
    # the band is Wheeler's: (sqrt(mean) +/- 1.5)^2 from the 8 weeks before
    weekly = chart["incidents"].to_numpy()
    assert chart["prior_mean"].iloc[-1] == pytest.approx(weekly[-9:-1].mean())
    assert chart["upper"].iloc[-1] == pytest.approx((np.sqrt(weekly[-9:-1].mean()) + 1.5) ** 2)
    # the weekly counts agree with the incidents table
    total = con.execute(
        "SELECT count(*) FROM incidents WHERE beat = ? AND offense_category = 'burglary_residential' "
        "AND occurred_at >= ? AND occurred_at < ?",
        [hotspot_move["to"], chart["week_start"].iloc[0], as_of + dt.timedelta(days=1)],
    ).fetchone()[0]
    assert int(chart["incidents"].sum()) == total


def test_control_chart_of_a_district_and_of_the_city(con):
    stacked = pd.concat(
        [
            changes.control_chart(
                con, as_of=dt.date(2026, 11, 15), weeks=6, level="district", area="3", category="robbery"
            ).assign(series=0),
            changes.control_chart(con, as_of=dt.date(2026, 11, 15), weeks=6, level="district").assign(series=1),
        ]
    )
    assert stacked.groupby("series").size().tolist() == [6, 6]
    citywide = stacked[stacked["series"] == 1]
    assert citywide["area"].isna().all() and citywide["offense_category"].isna().all()
    total = con.execute(
        "SELECT count(*) FROM incidents WHERE occurred_at >= ? AND occurred_at < ?",
        [citywide["week_start"].iloc[0], dt.date(2026, 11, 16)],
    ).fetchone()[0]
    assert int(citywide["incidents"].sum()) == total


def test_bad_level_is_refused(con):
    with pytest.raises(ValueError, match="level"):
        changes.changes(con, as_of=dt.date(2026, 11, 15), level="ward")
    with pytest.raises(ValueError, match="level"):
        changes.control_chart(con, as_of=dt.date(2026, 11, 15), level="city")
