"""Deployment map page (AppTest): the cell layer adds up to the period's located incidents counted
independently with duckdb, boundaries come from the demo city's beats, captions count what the map cannot
show, and roles without the page are refused."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from pagetest import open_page, page_file_as, rerun, switch_refused
from streamlit.testing.v1 import AppTest

from ilp.warehouse import Warehouse, writing_table

pytestmark = pytest.mark.usefixtures("entry_point_has_run")


def deck(at: AppTest) -> dict:
    charts = at.get("deck_gl_json_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.json)


def layer(spec: dict, layer_id: str) -> dict | None:
    return next((entry for entry in spec["layers"] if entry.get("id") == layer_id), None)


def scalar(warehouse: Path, sql: str, *params):
    with contextlib.closing(Warehouse(warehouse).connect()) as con:
        return con.execute(sql, list(params)).fetchone()[0]


def period(at: AppTest) -> tuple[dt.date, dt.date]:
    filters = at.session_state["ilp_context"]["filters"]
    return filters.start, filters.end


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def _polygons(coordinates: list) -> list:
    """A Polygon's rings, or a MultiPolygon's polygons' rings, as one list of rings."""
    return (
        [ring for polygon in coordinates for ring in polygon] if isinstance(coordinates[0][0][0], list) else coordinates
    )


def test_cell_layer_adds_up_to_located_incidents_and_beats_are_drawn(app_env, demo_warehouse):
    at = open_page("deployment", "analyst")
    start, end = period(at)
    spec = deck(at)
    cells = layer(spec, "harm-cells")
    assert cells["@@type"] == "PolygonLayer"

    located = scalar(
        demo_warehouse,
        "SELECT count(*) FROM incidents WHERE occurred_at >= ? AND occurred_at < ? AND location_status = 'ok'",
        start,
        end,
    )
    assert located > 1000
    assert sum(cell["incidents"] for cell in cells["data"]) == located

    harm = scalar(
        demo_warehouse,
        """
        SELECT sum(w.weight) FROM incidents i
        JOIN offence_categories c ON c.category = i.offense_category AND NOT c.proactive
        JOIN harm_weights w ON w.index_name = 'cchi' AND w.version = '2016' AND w.category = i.offense_category
        WHERE i.occurred_at >= ? AND i.occurred_at < ? AND i.location_status = 'ok'""",
        start,
        end,
    )
    assert sum(cell["harm"] for cell in cells["data"]) == pytest.approx(harm, abs=0.1 * len(cells["data"]))

    beats = layer(spec, "beat-areas")
    assert beats["@@type"] == "GeoJsonLayer"
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        demo_beats = {row[0] for row in con.execute("SELECT area_id FROM areas WHERE level = 'beat'").fetchall()}
        rings = {
            level: [
                json.loads(g)["coordinates"]
                for (g,) in con.execute("SELECT geometry_geojson FROM areas WHERE level = ?", [level]).fetchall()
            ]
            for level in ("beat", "district")
        }
    assert {f["properties"]["area_id"] for f in beats["data"]["features"]} == demo_beats
    # Outlines are lines along every ring edge (no stroked polygons: ilp/ui/maps.py), drawn over the cells.
    for level in ("beat", "district"):
        outline = layer(spec, f"{level}-boundaries")
        assert outline["@@type"] == "LineLayer"
        edges = sum(len(ring) - 1 for polygon in rings[level] for ring in _polygons(polygon))
        assert len(outline["data"]) == edges > 7
    ids = [entry["id"] for entry in spec["layers"]]
    assert ids == ["beat-areas", "harm-cells", "beat-boundaries", "district-boundaries"]

    # Offline and cells only: no basemap style, no point layers, no coordinates of incidents.
    assert spec.get("mapStyle") in (None, "__MAP_STYLE__")
    assert {entry["@@type"] for entry in spec["layers"]} <= {"GeoJsonLayer", "PolygonLayer", "LineLayer"}
    assert not cells.get("stroked")
    assert not {"latitude", "longitude", "location_text"} & set(cells["data"][0])

    unlocated = scalar(
        demo_warehouse,
        "SELECT count(*) FROM incidents WHERE occurred_at >= ? AND occurred_at < ? AND location_status <> 'ok'",
        start,
        end,
    )
    text = captions(at)
    assert f"{unlocated:,} incidents ({unlocated / (unlocated + located):.1%}) had no usable location" in text
    assert "excludes proactive offences" in text

    # The table of top cells: 10 rows, shares of the period's located harm, in rank order.
    table = at.dataframe[0].value
    assert len(table) == 10
    assert table["rank"].tolist() == list(range(1, 11))
    top = max(cells["data"], key=lambda c: c["harm"])
    assert table["harm"].iloc[0] == pytest.approx(top["harm"], abs=0.1)
    assert table["harm_share"].iloc[0] == pytest.approx(top["harm"] / harm, rel=1e-3)
    headline = at.subheader[0].value
    assert headline.startswith(f"The top 10 cells hold {table['harm_share'].sum():.0%} of harm")


def test_night_shift_counts_only_night_hours(app_env, demo_warehouse):
    at = open_page("deployment", "commander")
    start, end = period(at)
    at.radio(key="deployment_shift").set_value("night")
    rerun(at)
    cells = layer(deck(at), "harm-cells")
    night = scalar(
        demo_warehouse,
        "SELECT count(*) FROM incidents WHERE occurred_at >= ? AND occurred_at < ? "
        "AND location_status = 'ok' AND occurred_precision = 'exact' "
        "AND (hour(occurred_at) >= 23 OR hour(occurred_at) < 7)",
        start,
        end,
    )
    assert sum(cell["incidents"] for cell in cells["data"]) == night
    assert "(night 23:00-07:00)" in at.subheader[0].value


def test_district_filter_limits_cells(app_env, demo_warehouse):
    at = open_page("deployment", "analyst", district="3")
    start, end = period(at)
    cells = layer(deck(at), "harm-cells")
    located = scalar(
        demo_warehouse,
        "SELECT count(*) FROM incidents WHERE occurred_at >= ? AND occurred_at < ? "
        "AND location_status = 'ok' AND district = '3'",
        start,
        end,
    )
    assert sum(cell["incidents"] for cell in cells["data"]) == located
    assert {cell["district"] for cell in cells["data"]} == {"Old Town"}


@pytest.mark.parametrize("role", ["city_leader", "admin"])
def test_roles_without_the_page_are_refused(app_env, role):
    # Reached by URL inside the frame: the refusal, no content ...
    at = switch_refused(role, "deployment")
    # ... and the page file itself, reached directly with that role's session, shows only the refusal.
    direct = page_file_as("deployment", role, at.session_state["ilp_context"])
    assert len(direct.error) == 1 and direct.error[0].value.startswith("Access refused")
    assert not direct.get("deck_gl_json_chart") and not direct.title and not direct.dataframe
    assert len(direct.main.children) == 1


# --------------------------------------------------------------------------------- a real warehouse, no areas
@pytest.fixture(scope="module")
def bare_real_warehouse(tmp_path_factory) -> Path:
    """A 'real' warehouse with a few weeks of incidents and nothing else: no areas, calls, force or survey."""
    directory = tmp_path_factory.mktemp("bare_real")
    days = pd.date_range("2025-01-06 08:00", "2025-03-30 08:00", freq="6h")
    incidents = pd.DataFrame(
        {
            "source": "bare",
            "source_id": [f"r{i}" for i in range(len(days))],
            "occurred_at": days,
            "occurred_precision": "exact",
            "offense_category": ["robbery", "shoplifting", "drug_possession", "burglary_residential"] * (len(days) // 4)
            + ["robbery"] * (len(days) % 4),
            "latitude": 41.88 + (pd.Series(range(len(days))) % 7) * 0.003,
            "longitude": -87.63 + (pd.Series(range(len(days))) % 5) * 0.004,
            "location_status": "ok",
            "district": ["001", "002"] * (len(days) // 2) + ["001"] * (len(days) % 2),
            "beat": "0111",
            "arrest": [True, False, False] * (len(days) // 3) + [False] * (len(days) % 3),
            "clearance_status": "open",
            "row_hash": "x",
        }
    )
    incidents.loc[::10, ["latitude", "longitude"]] = None
    incidents.loc[::10, "location_status"] = "missing"
    with Warehouse(directory).write(kind="real", fresh=True) as con:
        con.register("new_rows", incidents)
        con.execute(f"INSERT INTO {writing_table(con, 'incidents')} BY NAME SELECT * FROM new_rows")
    return directory


def test_real_warehouse_without_areas_says_why_there_are_no_boundaries(app_env, bare_real_warehouse, monkeypatch):
    monkeypatch.setenv("ILP_WAREHOUSE", str(bare_real_warehouse))
    monkeypatch.setenv("ILP_ROLE", "analyst")
    at = open_page("deployment", None)
    spec = deck(at)
    assert [entry["id"] for entry in spec["layers"]] == ["harm-cells"]
    start, end = period(at)
    located = scalar(
        bare_real_warehouse,
        "SELECT count(*) FROM incidents WHERE occurred_at >= ? AND occurred_at < ? AND location_status = 'ok'",
        start,
        end,
    )
    assert sum(cell["incidents"] for cell in layer(spec, "harm-cells")["data"]) == located > 0
    text = captions(at)
    assert "No district or beat boundaries are drawn: none are loaded" in text and "ilp areas" in text
    assert "the area that has ever had a located incident" in at.subheader[0].value


def test_month_precision_source_has_no_shift(app_env, tmp_path, monkeypatch):
    """A data.police.uk-style export: month of occurrence only, so the shift selector is off and says why."""
    months = pd.date_range("2025-01-01", "2025-06-01", freq="MS").repeat(40)
    incidents = pd.DataFrame(
        {
            "source": "uk",
            "source_id": [f"m{i}" for i in range(len(months))],
            "occurred_at": months,
            "occurred_precision": "month",
            "offense_category": "burglary_residential",
            "latitude": 51.5 + (pd.Series(range(len(months))) % 9) * 0.003,
            "longitude": -0.12,
            "location_status": "ok",
            "district": "E1",
            "row_hash": "x",
        }
    )
    with Warehouse(tmp_path / "uk").write(kind="real", fresh=True) as con:
        con.register("new_rows", incidents)
        con.execute(f"INSERT INTO {writing_table(con, 'incidents')} BY NAME SELECT * FROM new_rows")
    monkeypatch.setenv("ILP_WAREHOUSE", str(tmp_path / "uk"))
    monkeypatch.setenv("ILP_ROLE", "commander")
    at = open_page("deployment", None, weeks="26")
    assert at.radio(key="deployment_shift").disabled
    assert any("records only the day or month of each offence" in info.value for info in at.info)
    start, end = period(at)
    located = scalar(
        tmp_path / "uk", "SELECT count(*) FROM incidents WHERE occurred_at >= ? AND occurred_at < ?", start, end
    )
    assert sum(cell["incidents"] for cell in layer(deck(at), "harm-cells")["data"]) == located > 0
