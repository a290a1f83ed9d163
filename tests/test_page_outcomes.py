"""Outcomes page (AppTest): each metric's current value matches an independent duckdb computation on the
demo city; city leaders see "<10" for small counts and no person-level or location columns; a real warehouse
without calls, force or survey data says "not available" instead of showing zero."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pagetest import chart_specs, frame_with, open_page, values
from streamlit.testing.v1 import AppTest

from ilp.warehouse import Warehouse, writing_table

pytestmark = pytest.mark.usefixtures("entry_point_has_run")

LOCATION_OR_PERSON_COLUMNS = {
    "latitude",
    "longitude",
    "beat",
    "location_text",
    "cell",
    "person_key",
    "source_id",
    "centre_lat",
    "centre_lon",
}


def query(warehouse: Path, sql: str, *params):
    with contextlib.closing(Warehouse(warehouse).connect()) as con:
        return con.execute(sql, list(params)).fetchone()


def month_of(label: str) -> tuple[dt.date, dt.date]:
    """The first 'Mon YYYY' in a label (e.g. 'Median, Oct 2026') -> (first of month, first of next month)."""
    words = label.replace(",", " ").split()
    for first_word, second_word in zip(words, words[1:]):
        with contextlib.suppress(ValueError):
            first = dt.datetime.strptime(f"{first_word} {second_word}", "%b %Y").date()
            return first, (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    raise AssertionError(f"no month in {label!r}")


def metric(at: AppTest, label_start: str):
    matches = [m for m in at.metric if m.label.startswith(label_start)]
    assert len(matches) == 1, [m.label for m in at.metric]
    return matches[0]


def test_each_metric_matches_an_independent_computation(app_env, demo_warehouse):
    at = open_page("outcomes", "analyst")
    assert [s.value for s in at.subheader] == [
        "Harm per 1,000 residents",
        "Repeat victimisation",
        "Emergency response time",
        "Violent crime clearance rate",
        "Use of force per 1,000 arrests",
        "Community trust in the police",
        "Harm prevented by taskings, Q3 2026 (Jul – Sep)",
    ]
    metrics = at.metric
    assert len(metrics) == 8  # the last: citywide harm against a year earlier (no tasking done yet)

    # 1. Harm per 1,000 residents, latest complete month.
    harm_metric = metrics[0]
    first, following = month_of(harm_metric.label)
    assert (first, following) == (dt.date(2026, 10, 1), dt.date(2026, 11, 1))  # data end 15 Nov 2026
    (harm,) = query(
        demo_warehouse,
        """
        SELECT sum(w.weight) FROM incidents i
        JOIN offence_categories c ON c.category = i.offense_category AND NOT c.proactive
        JOIN harm_weights w ON w.index_name = 'cchi' AND w.version = '2016' AND w.category = i.offense_category
        WHERE i.occurred_at >= ? AND i.occurred_at < ?""",
        first,
        following,
    )
    (population,) = query(demo_warehouse, "SELECT sum(population) FROM areas WHERE level = 'district'")
    assert harm_metric.value == f"{harm / population * 1000:,.1f}"

    # 2. Repeat victimisation: victims in the 12 months to the month's end with 2+ distinct incidents.
    victims, repeats = query(
        demo_warehouse,
        """
        WITH v AS (
            SELECT p.person_key, count(DISTINCT i.source_id) AS n FROM incident_persons p
            JOIN incidents i ON i.source = p.source AND i.source_id = p.source_id
            WHERE p.role = 'victim' AND i.occurred_at >= ? AND i.occurred_at < ?
            GROUP BY 1)
        SELECT count(*), count(*) FILTER (WHERE n >= 2) FROM v""",
        dt.date(2025, 11, 1),
        following,
    )
    assert metrics[1].value == f"{repeats / victims:.1%}"

    # 3. Priority-1 response time, median and 90th percentile (linear interpolation), arrived calls only.
    median, p90 = query(
        demo_warehouse,
        """
        SELECT quantile_cont(m, 0.5), quantile_cont(m, 0.9) FROM (
            SELECT date_diff('second', received_at, arrived_at) / 60.0 AS m FROM calls_for_service
            WHERE priority = 1 AND received_at >= ? AND received_at < ? AND arrived_at IS NOT NULL)
        WHERE m >= 0""",
        first,
        following,
    )
    assert metric(at, "Median").value == f"{median:.1f} min"
    assert metric(at, "90th percentile").value == f"{p90:.1f} min"

    # 4. Violent clearance: the latest month at least 90 days old by the end of the data.
    clearance = metrics[4]
    settled_first, settled_next = month_of(clearance.label)
    assert "latest settled month" in clearance.label
    (last_day,) = query(demo_warehouse, "SELECT max(occurred_at)::DATE FROM incidents")
    assert (
        settled_next - dt.timedelta(days=1) <= last_day - dt.timedelta(days=90) < settled_next + dt.timedelta(days=31)
    )
    total, cleared = query(
        demo_warehouse,
        """
        SELECT count(*), count(*) FILTER (WHERE clearance_status IN ('cleared_arrest', 'cleared_other'))
        FROM incidents i JOIN offence_categories c ON c.category = i.offense_category AND c.violent
        WHERE occurred_at >= ? AND occurred_at < ?""",
        settled_first,
        settled_next,
    )
    assert clearance.value == f"{cleared / total:.1%}"
    assert "not yet settled" in " ".join(c.value for c in at.caption).lower()

    # 5. Use of force per 1,000 arrests.
    (events,) = query(
        demo_warehouse, "SELECT count(*) FROM use_of_force WHERE occurred_at >= ? AND occurred_at < ?", first, following
    )
    (arrests,) = query(
        demo_warehouse,
        "SELECT count(*) FROM incidents WHERE arrest AND occurred_at >= ? AND occurred_at < ?",
        first,
        following,
    )
    assert metrics[5].value == f"{1000 * events / arrests:.1f}"

    # 6. Trust: latest quarter, all districts pooled by respondents.
    quarter, share, respondents = query(
        demo_warehouse,
        """
        SELECT period_label, sum(value * respondents) / sum(respondents), sum(respondents) FROM community_survey
        WHERE measure = 'trust_police' AND area_level = 'district'
        GROUP BY period_label ORDER BY period_label DESC LIMIT 1""",
    )
    assert metrics[6].label == f"All districts, {quarter}"
    assert metrics[6].value == f"{share:.0%}"
    assert f"{respondents:,} respondents" in " ".join(c.value for c in at.caption)
    trust_table = at.dataframe[-1].value
    assert len(trust_table) == 7 and trust_table["period_label"].eq(quarter).all()

    # Every metric has a trend chart; the harm chart's last point is the headline value.
    charts = chart_specs(at)
    assert len(charts) == 6
    harm_spec = charts[0]
    line = next(trace for trace in harm_spec["data"] if trace.get("mode") == "lines+markers")
    assert len(line["x"]) == 24
    assert values(line["y"])[-1] == pytest.approx(harm / population * 1000)


def test_city_leader_sees_small_counts_suppressed_and_no_locations(app_env, demo_warehouse):
    at = open_page("outcomes", "city_leader", district="1")  # one district: monthly use-of-force counts are small
    assert not at.get("deck_gl_json_chart")
    for frame in at.dataframe:
        assert not LOCATION_OR_PERSON_COLUMNS & set(frame.value.columns)

    # Use-of-force months with 1-9 events in the 24 reported months show "<10", and their rates are withheld.
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        small = {
            row[0]
            for row in con.execute("""
            SELECT date_trunc('month', occurred_at)::DATE AS m FROM use_of_force
            WHERE occurred_at >= DATE '2024-11-01' AND occurred_at < DATE '2026-11-01' AND district = '1'
            GROUP BY 1 HAVING count(*) < 10""").fetchall()
        }
    assert small, "district 1 should have months with fewer than 10 use-of-force events"
    force = frame_with(at, "events")
    suppressed = force[force["events"] == "<10"]
    assert {pd.Timestamp(m).date() for m in suppressed["month"]} == small
    assert suppressed["rate"].isna().all()
    assert not force.loc[force["events"] != "<10", "rate"].isna().any()
    # Counts of 10 or more stay visible (the harm table's monthly incident counts).
    harm_table = frame_with(at, "harm")
    assert (
        not harm_table["incidents"].eq("<10").any()
        and harm_table["incidents"].str.replace(",", "").astype(int).min() >= 10
    )
    assert 'counts under 10 are shown as "<10"' in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("role", ["commander", "admin"])
def test_other_roles_see_the_page(app_env, role):
    at = open_page("outcomes", role)
    assert len(at.metric) == 8 and not at.error


# --------------------------------------------------------------------------------- a real warehouse, little data
@pytest.fixture(scope="module")
def bare_real_warehouse(tmp_path_factory) -> Path:
    """A 'real' warehouse with incidents only: no areas (population), calls, use of force, victims or survey."""
    directory = tmp_path_factory.mktemp("bare_real_outcomes")
    days = pd.date_range("2024-01-01 08:00", "2025-03-30 08:00", freq="12h")
    n = len(days)
    incidents = pd.DataFrame(
        {
            "source": "bare",
            "source_id": [f"r{i}" for i in range(n)],
            "occurred_at": days,
            "occurred_precision": "exact",
            "offense_category": (["robbery", "shoplifting", "violence_with_injury"] * n)[:n],
            "location_status": "missing",
            "district": (["001", "002"] * n)[:n],
            "arrest": ([True, False, False, False] * n)[:n],
            "clearance_status": (["cleared_arrest", "open", "open", "open"] * n)[:n],
            "row_hash": "x",
        }
    )
    with Warehouse(directory).write(kind="real", fresh=True) as con:
        con.register("new_rows", incidents)
        con.execute(f"INSERT INTO {writing_table(con, 'incidents')} BY NAME SELECT * FROM new_rows")
    return directory


def test_real_warehouse_metrics_say_not_available(app_env, bare_real_warehouse, monkeypatch):
    monkeypatch.setenv("ILP_WAREHOUSE", str(bare_real_warehouse))
    monkeypatch.setenv("ILP_ROLE", "analyst")
    at = open_page("outcomes", None)
    notes = [info.value for info in at.info]
    assert "Not available: no calls-for-service data loaded." in notes
    assert "Not available: no use-of-force data loaded." in notes
    assert any(note.startswith("Not available: no community survey data loaded") for note in notes)
    assert any(note.startswith("Not available: no victim data loaded") for note in notes)
    assert any("No per-capita rates: no population loaded" in w.value for w in at.warning)
    # Harm and clearance still show, from the incidents; clearance says it counts arrests only.
    labels = [m.label for m in at.metric]
    assert labels[0].startswith("Total harm, ") and "latest settled month" in labels[1]
    assert "clearance only by arrest" in " ".join(c.value for c in at.caption)


# --------------------------------------------------------------------------------- harm prevented by taskings
def done_tasking(store, category: str, beat: str, created_at: str, note: str) -> int:
    import sqlite3

    tasking_id = store.create_tasking(
        by="Ch. Supt. Vale",
        offense_category=category,
        area_level="beat",
        area_id=beat,
        owner="Insp. Mensah",
        action="Problem-solving plan",
        due_date=dt.date(2026, 7, 1),
    )
    with contextlib.closing(sqlite3.connect(store.path)) as con, con:
        con.execute("UPDATE taskings SET created_at = ? WHERE id = ?", (created_at, tasking_id))
    store.update_tasking(tasking_id, by="Ch. Supt. Vale", status="done", result_note=note)
    return tasking_id


@pytest.mark.parametrize("role", ["city_leader", "commander"])
def test_harm_prevented_by_taskings_this_quarter_beside_citywide_harm(app_env, demo_warehouse, role):
    """Two done taskings whose 12-week windows ended in Q3 2026 (the latest complete quarter of the demo
    city): the page sums the library's per-tasking estimates, counts the measurable reductions, and shows
    citywide harm per 1,000 residents against Q3 2025, each figure checked here independently. City leaders
    get the totals only; no arrest count appears."""
    from ilp.analytics import evaluation
    from ilp.state import State

    store = State(app_env["ILP_STATE"])
    done_tasking(store, "burglary_residential", "4C", "2026-05-18T09:00:00", "Visits to 180 homes")
    done_tasking(store, "robbery", "1C", "2026-06-01T09:00:00", "Patrols after school")
    done_tasking(store, "robbery", "2A", "2026-08-17T09:00:00", "Window ends in Q4: not this quarter's")
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        found = [
            evaluation.evaluate(con, level="beat", area_id=beat, categories=(category,), start=start)
            for beat, category, start in (
                ("4C", "burglary_residential", dt.date(2026, 5, 18)),
                ("1C", "robbery", dt.date(2026, 6, 1)),
            )
        ]
    assert all(e.evaluated for e in found)
    prevented = sum(e.harm_prevented for e in found)
    reductions = sum(e.reduction for e in found)

    at = open_page("outcomes", role)
    assert not at.exception and at.subheader[-1].value == "Harm prevented by taskings, Q3 2026 (Jul – Sep)"
    assert metric(at, "Harm prevented by 2 taskings").value == f"{prevented:,.0f} days"
    assert metric(at, "Taskings with a measurable reduction").value == f"{reductions} of 2 ({reductions / 2:.0%})"
    low = sum(e.harm_prevented for e in found) - 1.959964 * np.sqrt(
        sum(((e.harm_prevented_high - e.harm_prevented_low) / (2 * 1.959964)) ** 2 for e in found)
    )
    assert metric(at, "Harm prevented: 95% interval").value.startswith(f"{low:,.0f} to ")

    (population,) = query(demo_warehouse, "SELECT sum(population) FROM areas WHERE level = 'district'")
    rates = []
    for first, following in ((dt.date(2026, 7, 1), dt.date(2026, 10, 1)), (dt.date(2025, 7, 1), dt.date(2025, 10, 1))):
        (harm,) = query(
            demo_warehouse,
            """
            SELECT sum(w.weight) FROM incidents i
            JOIN offence_categories c ON c.category = i.offense_category AND NOT c.proactive
            JOIN harm_weights w ON w.index_name = 'cchi' AND w.version = '2016' AND w.category = i.offense_category
            WHERE i.occurred_at >= ? AND i.occurred_at < ?""",
            first,
            following,
        )
        rates.append(harm / population * 1000)
    city = metric(at, "Citywide harm per 1,000 residents, Q3 2026")
    assert city.value == f"{rates[0]:,.1f}"
    assert city.delta.startswith(f"{rates[0] - rates[1]:+,.1f} vs 2025")

    labels = " ".join([m.label for m in at.metric] + [s.value for s in at.subheader]).lower()
    assert "arrest" not in labels.replace("per 1,000 arrests", "")  # use of force is per arrest; no arrest count
    per_tasking = [f.value for f in at.dataframe if "harm_prevented" in f.value.columns]
    if role == "city_leader":
        assert per_tasking == []  # totals only: the table names places
    else:
        (table,) = per_tasking
        assert table["harm_prevented"].sum() == pytest.approx(prevented)
        assert table["target"].tolist()[0].startswith("Residential burglary in beat 4C from 18 May 2026")


def test_harm_prevented_says_when_no_tasking_window_ended_in_the_quarter(app_env):
    at = open_page("outcomes", "city_leader")
    assert at.subheader[-1].value == "Harm prevented by taskings, Q3 2026 (Jul – Sep)"
    assert any("No done tasking's 12-week window ended in Q3 2026" in c.value for c in at.caption)
    assert [m.label for m in at.metric][-1] == "Citywide harm per 1,000 residents, Q3 2026 (Jul – Sep)"
