"""queries/outcomes_repeat_victimisation.sql, which counts victims and repeat victims per month in DuckDB,
against the pandas computation it replaced (kept here as the reference: person-months from SQL, then
per-person windows in numpy) on the demo city, and against counts made by hand on a small warehouse whose
victims repeat across the edges of the 12-month windows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ilp.analytics import outcomes, repeats
from ilp.snapshot import SnapshotInfo
from ilp.warehouse import Warehouse, replace_incidents, run_query, writing_table

QUERY = "outcomes_repeat_victimisation"

# The person-months the page used to fetch (one row per victim and month) and the pandas function that
# turned them into the monthly counts, as they were before the counting moved into SQL.
REFERENCE_PERSON_MONTHS = """
SELECT p.person_key, date_trunc('month', i.occurred_at)::DATE AS month,
       count(DISTINCT (i.source, i.source_id)) AS incidents
FROM incident_persons p
JOIN incidents i ON i.source = p.source AND i.source_id = p.source_id
WHERE p.role = 'victim' AND i.occurred_at >= $window_from AND i.occurred_at < $month_to
  AND ($district IS NULL OR i.district = $district)
GROUP BY 1, 2
"""


def reference_counts(con, window: outcomes.ReportingWindow, district: str | None) -> pd.DataFrame:
    """month, victims, repeat_victims for the window's months, the way the page counted them before."""
    params = {"window_from": window.params()["window_from"], "month_to": window.month_to, "district": district}
    victim_months = con.execute(REFERENCE_PERSON_MONTHS, params).df()
    window_months = outcomes.REPEAT_WINDOW_MONTHS
    months = outcomes.month_range(window.month_from, window.month_to)
    if victim_months.empty:
        return pd.DataFrame({"month": months, "victims": 0, "repeat_victims": 0})
    month_index = _month_index(pd.to_datetime(victim_months["month"]))
    person, _ = pd.factorize(victim_months["person_key"])
    incidents = victim_months["incidents"].to_numpy(dtype=np.int64)
    wanted = _month_index(months)
    first = int(wanted.min())
    # Each person-month counts towards the windows ending in that month and the next window_months-1.
    ends = (month_index[:, None] + np.arange(window_months)[None, :]).ravel()
    people = np.repeat(person.astype(np.int64), window_months)
    counts_each = np.repeat(incidents, window_months)
    keep = np.isin(ends, wanted)
    persons = int(person.max()) + 1
    key = (ends[keep] - first) * persons + people[keep]
    inverse, unique_keys = pd.factorize(key)
    per_person = np.bincount(inverse, weights=counts_each[keep])
    end_of_key = unique_keys // persons
    slots = int(wanted.max()) - first + 1
    victims = np.bincount(end_of_key, minlength=slots)
    repeats = np.bincount(end_of_key, weights=(per_person >= 2).astype(float), minlength=slots)
    return pd.DataFrame(
        {
            "month": months,
            "victims": victims[wanted - first].astype(np.int64),
            "repeat_victims": repeats[wanted - first].astype(np.int64),
        }
    )


def _month_index(months) -> np.ndarray:
    stamps = pd.DatetimeIndex(months)
    return (stamps.year * 12 + stamps.month - 1).to_numpy(dtype=np.int64)


def counted(con, window: outcomes.ReportingWindow, district: str | None = None) -> pd.DataFrame:
    frame = run_query(con, QUERY, {**window.params(), "district": district})
    return frame.assign(month=pd.to_datetime(frame["month"]))


# ------------------------------------------------------------------------------------------ by hand
# Reported months Jan-Mar 2025: their windows are Feb 2024-Jan 2025, Mar 2024-Feb 2025, Apr 2024-Mar 2025.
WINDOW = outcomes.ReportingWindow(
    month_from=dt.date(2025, 1, 1), month_to=dt.date(2025, 4, 1), data_start=dt.date(2023, 1, 1)
)
# (incident, occurred_at, district, [(person, role), ...])
EARLIER = [
    ("a1", "2024-02-01 00:00", "1", [("A", "victim")]),  # the first moment of Jan 2025's window
    ("b1", "2024-01-31 23:59", "1", [("B", "victim")]),  # just before it: in no reported window
    ("f1", "2024-03-15 12:00", "1", [("F", "victim")]),  # in Jan's and Feb's windows, not March's
    ("e1", "2024-12-31 23:59", "1", [("E", "victim")]),
    ("a2", "2025-01-31 23:59", "1", [("A", "victim")]),  # replaced by the second write: still one incident
]
LATER = [
    ("g1", "2025-01-10 08:00", "2", [("G", "victim")]),
    ("g2", "2025-02-10 08:00", "1", [("G", "victim")]),
    ("d1", "2025-02-20 09:00", "1", [("D", "victim"), ("D", "victim")]),  # linked twice: one incident
    ("e2", "2025-02-21 09:00", "1", [("E", "offender")]),  # not as a victim
    ("b2", "2025-03-01 00:00", "1", [("B", "victim")]),
    ("c1", "2025-03-02 10:00", "1", [("C", "victim")]),
    ("c2", "2025-03-30 10:00", "1", [("C", "victim"), ("C", "victim")]),  # 2 in one month; c2 linked twice
    ("f2", "2025-03-15 12:00", "1", [("F", "victim")]),  # exactly 12 months after f1: not a repeat
    ("h1", "2025-04-01 00:00", "1", [("H", "victim"), ("A", "victim")]),  # after the last reported month
]


def _write(con, rows) -> None:
    incidents = pd.DataFrame(
        {
            "source": "hand",
            "source_id": [r[0] for r in rows],
            "occurred_at": pd.to_datetime([r[1] for r in rows]),
            "occurred_precision": "exact",
            "offense_category": "violence_with_injury",
            "location_status": "missing",
            "district": [r[2] for r in rows],
            "row_hash": [r[0] for r in rows],
        }
    )
    persons = pd.DataFrame(
        [("hand", r[0], person, role) for r in rows for person, role in r[3]],
        columns=["source", "source_id", "person_key", "role"],
    )
    for table, frame in (("incidents", incidents), ("incident_persons", persons)):
        con.register("new_rows", frame)
        con.execute(f"INSERT INTO {writing_table(con, table)} BY NAME SELECT * FROM new_rows")
        con.unregister("new_rows")


@pytest.fixture(scope="module")
def hand_warehouse(tmp_path_factory) -> Warehouse:
    """Two writes, so two segments; the second also replaces one incident of the first."""
    warehouse = Warehouse(tmp_path_factory.mktemp("repeat_victims") / "warehouse")
    with warehouse.write(kind="real", fresh=True, note="earlier") as con:
        _write(con, EARLIER)
    with warehouse.write(kind="real", note="later") as con:
        _write(con, LATER)
        replaced = replace_incidents(
            con,
            "SELECT * REPLACE ('robbery' AS offense_category, 'a2v2' AS row_hash) FROM incidents "
            "WHERE source_id = 'a2'",
        )
        assert replaced == 1
    return warehouse


@pytest.mark.parametrize(
    "district, victims, repeats",
    [
        # Jan: A (Feb 2024 + Jan 2025, repeat), E, F, G; Feb: A, D, E, F, G (Jan + Feb, repeat);
        # Mar: A, B, C (2 in March, repeat), D, E, F, G (repeat).
        (None, [4, 5, 7], [1, 1, 2]),
        # District 1 only: G's January incident (district 2) is left out, so G repeats nowhere.
        ("1", [3, 5, 7], [1, 0, 1]),
    ],
)
def test_victims_and_repeat_victims_counted_by_hand(hand_warehouse, district, victims, repeats):
    with hand_warehouse.connect() as con:
        frame = counted(con, WINDOW, district)
        reference = reference_counts(con, WINDOW, district)
    assert frame["month"].tolist() == list(outcomes.month_range(WINDOW.month_from, WINDOW.month_to))
    assert frame["victims"].tolist() == victims == reference["victims"].tolist()
    assert frame["repeat_victims"].tolist() == repeats == reference["repeat_victims"].tolist()
    assert list(frame.columns) == ["month", "victims", "repeat_victims"]  # counts only, nobody's key


def test_a_month_without_victims_is_a_zero_row(hand_warehouse):
    window = outcomes.ReportingWindow(dt.date(2022, 1, 1), dt.date(2022, 3, 1), dt.date(2021, 1, 1))
    with hand_warehouse.connect() as con:
        frame = counted(con, window)
    assert frame["victims"].tolist() == [0, 0] and frame["repeat_victims"].tolist() == [0, 0]


# ------------------------------------------------------------------------------------------ demo city
def test_the_demo_city_counts_as_the_pandas_computation_did(demo_warehouse):
    with Warehouse(demo_warehouse).connect() as con:
        info = SnapshotInfo.read(con)
        districts = [None, *sorted(info.districts)[:2]]
        windows = [
            outcomes.reporting_window(info.last_day + dt.timedelta(days=1), info.first_day, info.last_day),
            # a window that starts with the data: its first months' windows reach back before it
            outcomes.reporting_window(info.first_day + dt.timedelta(days=400), info.first_day, info.last_day),
        ]
        compared = 0
        for window in windows:
            for district in districts:
                frame = counted(con, window, district)
                reference = reference_counts(con, window, district)
                pd.testing.assert_frame_equal(
                    frame, reference.assign(month=pd.to_datetime(reference["month"])), check_dtype=False
                )
                compared += int(frame["repeat_victims"].gt(0).sum())
    assert compared > 20  # months with repeat victims, not only empty ones


def test_the_measure_reads_the_counts_through_the_query(hand_warehouse):
    """outcomes.repeat_victimisation on the query's rows: the rates of the hand-counted months."""
    with hand_warehouse.connect() as con:
        result = outcomes.repeat_victimisation(counted(con, WINDOW), WINDOW)
    assert result["rate"].tolist() == pytest.approx([1 / 4, 1 / 5, 2 / 7])
    assert result["complete_window"].all()


def test_the_briefs_repeat_victims_on_the_same_warehouse(hand_warehouse):
    """threats_repeat_victims on the hand-made links: the 365 days to Sunday 30 March 2025, recent from 3 March.
    Only C repeats with a recent incident (c1 on 2 March, c2, linked to C twice, on 30 March); F's
    incidents are a year and a day apart, B's, D's and G's are before the recent days."""
    with hand_warehouse.connect() as con:
        frame = repeats.repeat_victims(con, as_of=dt.date(2025, 3, 30), level="district")
        earlier = repeats.repeat_victims(con, as_of=dt.date(2025, 2, 23), level="district")
    assert frame[["area", "offense_category", "repeat_victims", "incidents_recent", "incidents_window"]].to_dict(
        "records"
    ) == [
        {
            "area": "1",
            "offense_category": "violence_with_injury",
            "repeat_victims": 1,
            "incidents_recent": 1,
            "incidents_window": 2,
        }
    ]
    # 23 February: G (10 January, 10 February) and nobody else; D's incident on the 20th is their only one
    assert earlier[["area", "repeat_victims", "incidents_recent", "incidents_window"]].to_dict("records") == [
        {"area": "1", "repeat_victims": 1, "incidents_recent": 1, "incidents_window": 2}
    ]
