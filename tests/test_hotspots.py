"""Grid binning for the deployment map: known points land in known cells, counts are conserved, and the SQL
binning (queries/deployment_cells.sql) agrees with the Python rule on a tiny hand-made warehouse."""

from __future__ import annotations

import contextlib
import datetime as dt

import pandas as pd
import pyproj
import pytest

from ilp.analytics import hotspots
from ilp.warehouse import Warehouse, run_query, writing_table

GRID = hotspots.Grid(cell_m=250.0, lat_ref=42.0)


def test_cells_are_250_metres_a_side_at_the_reference_latitude():
    geod = pyproj.Geod(ellps="WGS84")
    _, _, north = geod.inv(-101.3, 42.0, -101.3, 42.0 + GRID.dlat)
    _, _, east = geod.inv(-101.3, 42.0, -101.3 + GRID.dlon, 42.0)
    assert north == pytest.approx(250.0, abs=0.5)
    assert east == pytest.approx(250.0, abs=0.5)
    assert GRID.cell_km2 == pytest.approx(0.0625)


def test_known_points_land_in_known_cells():
    # Points placed by construction: centre of cell (x, y), a hair inside its lower-left corner, and a hair
    # below its upper edge (still the same cell); negative longitudes floor away from zero.
    x, y = -33585, 18755
    lat_centre, lon_centre = (y + 0.5) * GRID.dlat, (x + 0.5) * GRID.dlon
    lats = [lat_centre, y * GRID.dlat + 1e-9, (y + 1) * GRID.dlat - 1e-9, (y + 1) * GRID.dlat + 1e-9]
    lons = [lon_centre, x * GRID.dlon + 1e-9, (x + 1) * GRID.dlon - 1e-9, lon_centre]
    cell_x, cell_y = GRID.cell_of(lats, lons)
    assert cell_x.tolist() == [x, x, x, x]
    assert cell_y.tolist() == [y, y, y, y + 1]
    assert lon_centre < 0 and cell_x[0] < 0
    centre_lat, centre_lon = GRID.centre([x], [y])
    assert centre_lat[0] == pytest.approx(lat_centre) and centre_lon[0] == pytest.approx(lon_centre)


def test_cell_outline_is_a_closed_ring_around_its_centre():
    (ring,) = GRID.polygons([10], [-4])
    assert len(ring) == 5 and ring[0] == ring[-1]
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    assert min(lons) == pytest.approx(10 * GRID.dlon, abs=1e-6)
    assert max(lats) == pytest.approx(-3 * GRID.dlat, abs=1e-6)


def test_grid_reference_latitude_is_rounded_to_half_a_degree():
    assert hotspots.grid_for(42.2449).lat_ref == 42.0
    assert hotspots.grid_for(41.84).lat_ref == 42.0
    assert hotspots.grid_for(51.74).lat_ref == 51.5
    assert hotspots.grid_for(None).lat_ref == 0.0


# --------------------------------------------------------------------------------- the SQL binning
@pytest.fixture(scope="module")
def tiny_warehouse(tmp_path_factory):
    """A real-kind warehouse with eight hand-placed incidents (reference data loaded by initialise)."""
    directory = tmp_path_factory.mktemp("tiny_grid")
    x, y = -33585, 18755
    centre = ((y + 0.5) * GRID.dlat, (x + 0.5) * GRID.dlon)
    east = (centre[0], centre[1] + GRID.dlon)  # the next cell east
    rows = [
        # (id, hour, category, (lat, lon) or None)
        ("a", 6, "robbery", centre),  # night
        ("b", 7, "robbery", centre),  # day
        ("c", 14, "drug_possession", centre),  # day, proactive: no harm by default
        ("d", 15, "shoplifting", east),  # evening
        ("e", 22, "shoplifting", east),  # evening
        ("f", 23, "homicide", east),  # night, sensitive
        ("g", 12, "robbery", None),  # unlocated
        ("h", 12, "robbery", (centre[0], centre[1] + 5 * GRID.dlon)),  # day, outside the period below
    ]
    incidents = pd.DataFrame(
        {
            "source": "t",
            "source_id": [r[0] for r in rows],
            "occurred_at": [dt.datetime(2026, 3, 2 if r[0] != "h" else 20, r[1], 30) for r in rows],
            "occurred_precision": "exact",
            "offense_category": [r[2] for r in rows],
            "latitude": [r[3][0] if r[3] else None for r in rows],
            "longitude": [r[3][1] if r[3] else None for r in rows],
            "location_status": ["ok" if r[3] else "missing" for r in rows],
            "district": "1",
            "beat": ["1A", "1A", "1A", "1B", "1B", "1B", "1A", "1C"],
            "row_hash": "x",
        }
    )
    with Warehouse(directory).write(kind="real", fresh=True) as con:
        con.register("new_rows", incidents)
        con.execute(
            f"INSERT INTO {writing_table(con, 'incidents')} (source, source_id, occurred_at, occurred_precision, offense_category, latitude, "
            "longitude, location_status, district, beat, row_hash) SELECT source, source_id, occurred_at, "
            "occurred_precision, offense_category, latitude, longitude, location_status, district, beat, row_hash "
            "FROM new_rows"
        )
    return directory, (x, y)


def _params(**overrides):
    params = dict(
        start=dt.date(2026, 3, 1),
        end=dt.date(2026, 3, 8),
        district=None,
        category=None,
        harm_index="cchi",
        harm_version="2016",
        shift="all",
        include_proactive=False,
        **GRID.params(),
    )
    params.update(overrides)
    return params


def _weights(con, *categories):
    rows = con.execute(
        "SELECT category, weight FROM harm_weights WHERE index_name = 'cchi' AND version = '2016'"
    ).fetchall()
    weights = dict(rows)
    return sum(weights[c] for c in categories)


def test_sql_binning_matches_python_and_conserves_counts(tiny_warehouse):
    directory, (x, y) = tiny_warehouse
    with contextlib.closing(Warehouse(directory).connect()) as con:
        cells = run_query(con, "deployment_cells", _params())
        harm_rob, harm_east = (
            _weights(con, "robbery", "robbery"),
            _weights(con, "shoplifting", "shoplifting", "homicide"),
        )
    assert cells["incidents"].sum() == 6  # 8 incidents - 1 unlocated - 1 outside the period
    by_cell = cells.set_index(["cell_x", "cell_y"])
    assert by_cell.loc[(x, y), "incidents"] == 3 and by_cell.loc[(x + 1, y), "incidents"] == 3
    assert by_cell.loc[(x, y), "harm"] == pytest.approx(harm_rob)  # drug possession counts 0
    assert by_cell.loc[(x + 1, y), "harm"] == pytest.approx(harm_east)
    assert by_cell.loc[(x + 1, y), "sensitive_incidents"] == 1
    assert by_cell.loc[(x, y), "beat"] == "1A" and by_cell.loc[(x + 1, y), "beat"] == "1B"


def test_sql_shift_filter_and_proactive_toggle(tiny_warehouse):
    directory, (x, y) = tiny_warehouse
    with contextlib.closing(Warehouse(directory).connect()) as con:
        counts = {
            shift: int(run_query(con, "deployment_cells", _params(shift=shift))["incidents"].sum())
            for shift in ("day", "evening", "night")
        }
        with_proactive = run_query(con, "deployment_cells", _params(shift="day", include_proactive=True))
        summary = run_query(con, "deployment_summary", _params())
        drug = _weights(con, "robbery", "drug_possession")
    assert counts == {"day": 2, "evening": 2, "night": 2}
    assert with_proactive.set_index(["cell_x", "cell_y"]).loc[(x, y), "harm"] == pytest.approx(drug)
    located = hotspots.summarise_locations(summary, "all")
    assert (located.incidents, located.unlocated, located.mapped) == (7, 1, 6)
    day = hotspots.summarise_locations(summary, "day")
    assert (day.in_shift, day.mapped, day.unlocated_in_shift) == (3, 2, 1)


def test_month_precision_rows_have_no_shift():
    summary = pd.DataFrame({"shift": [None, None, "day"], "located": [True, False, True], "incidents": [90, 5, 5]})
    all_hours = hotspots.summarise_locations(summary, "all")
    assert all_hours.no_shift == 95 and all_hours.exact_share == pytest.approx(0.05)
    day = hotspots.summarise_locations(summary, "day")
    assert day.mapped == 5 and day.in_shift == 5


# --------------------------------------------------------------------------------- concentration
def test_rank_cells_and_concentration():
    cells = pd.DataFrame(
        {
            "cell_x": [0, 1, 2, 3, 4],
            "cell_y": [0, 0, 0, 0, 0],
            "incidents": [1, 3, 2, 4, 10],
            "harm": [50.0, 30.0, 10.0, 10.0, 0.0],
        }
    )
    ranked = hotspots.rank_cells(cells, GRID)
    assert ranked["harm"].tolist() == [50, 30, 10, 10, 0]
    assert ranked["cumulative_harm_share"].tolist() == pytest.approx([0.5, 0.8, 0.9, 1.0, 1.0])
    top2 = hotspots.concentration(ranked, 2, GRID, area_km2=1.0, area_basis="test")
    assert top2.harm_share == pytest.approx(0.8)
    assert top2.incident_share == pytest.approx(4 / 20)
    assert top2.area_share == pytest.approx(2 * 0.0625)
    assert hotspots.area_share_holding(ranked, GRID, 1.0, 0.5) == (1, pytest.approx(0.0625))
    assert hotspots.area_share_holding(ranked, GRID, 1.0, 0.85)[0] == 3
    # Bands by the harm before each cell: 0 -> first 10%, 0.5 -> 50-75%, 0.8 and 0.9 -> 75-100%, no harm -> -1.
    assert hotspots.harm_bands(ranked).tolist() == [0, 3, 4, 4, -1]


def test_map_cells_carry_cells_only():
    cells = pd.DataFrame(
        {"cell_x": [5], "cell_y": [6], "incidents": [3], "harm": [12.0], "beat": ["1A"], "district": ["1"]}
    )
    layer = hotspots.map_cells(hotspots.rank_cells(cells, GRID), {"1": "Harbour"})
    assert layer.loc[0, "district"] == "Harbour" and layer.loc[0, "incidents"] == 3
    assert not {"latitude", "longitude", "location_text"} & set(layer.columns)


def test_empty_period_is_handled():
    empty = pd.DataFrame({"cell_x": [], "cell_y": [], "incidents": [], "harm": [], "beat": [], "district": []})
    ranked = hotspots.rank_cells(empty, GRID)
    assert hotspots.concentration(ranked, 10, GRID, 10.0, "test").harm_share == 0.0
    assert hotspots.map_cells(ranked).empty
