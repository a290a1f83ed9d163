"""`ilp areas`: boundaries and populations for a real warehouse, and point-in-polygon assignment."""

from __future__ import annotations

import contextlib
import json

import pytest

from ilp import areas
from ilp.cli import main
from ilp.warehouse import Warehouse

MAPPING = """
[source]
name = "tiny"
taxonomy = "chicago_iucr"
[id]
columns = ["id"]
[occurred]
columns = ["date"]
formats = ["%Y-%m-%d %H:%M"]
[offense]
code = "iucr"
[location]
latitude = "lat"
longitude = "lon"
"""

ROWS = """id,date,iucr,lat,lon
1,2024-03-01 10:00,0486,41.05,-87.95
2,2024-03-01 11:00,0486,41.05,-87.85
3,2024-03-02 12:00,0820,41.06,-87.84
4,2024-03-02 13:00,0820,,
5,2024-03-02 14:00,0820,42.50,-86.00
"""


def square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@pytest.fixture
def real_warehouse(tmp_path):
    (tmp_path / "tiny.toml").write_text(MAPPING)
    (tmp_path / "tiny.csv").write_text(ROWS)
    directory = tmp_path / "wh"
    assert (
        main(
            [
                "--warehouse",
                str(directory),
                "ingest",
                "--mapping",
                str(tmp_path / "tiny.toml"),
                str(tmp_path / "tiny.csv"),
            ]
        )
        == 0
    )
    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"BEAT": "W1", "NAME": "West", "DIST": "D1"},
                "geometry": square(-88.0, 41.0, -87.9, 41.1),
            },
            {
                "type": "Feature",
                "properties": {"BEAT": "E1", "NAME": "East", "DIST": "D1"},
                "geometry": square(-87.9, 41.0, -87.8, 41.1),
            },
        ],
    }
    (tmp_path / "beats.geojson").write_text(json.dumps(geojson))
    (tmp_path / "population.csv").write_text('area_id,population\nW1,12000\nE1,"8,500"\n')
    return tmp_path, directory


def test_areas_load_assigns_incidents_by_location(real_warehouse, capsys):
    folder, directory = real_warehouse
    code = main(
        [
            "--warehouse",
            str(directory),
            "areas",
            "--geojson",
            str(folder / "beats.geojson"),
            "--level",
            "beat",
            "--id-field",
            "BEAT",
            "--name-field",
            "NAME",
            "--parent-level",
            "district",
            "--parent-field",
            "DIST",
            "--population",
            str(folder / "population.csv"),
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["areas"] == 2 and report["with_population"] == 2
    assert report["incidents_assigned_by_location"] == 3  # row 4 has no location, row 5 is outside both squares
    with contextlib.closing(Warehouse(directory).connect()) as con:
        beats = dict(con.execute("SELECT source_id, beat FROM incidents").fetchall())
        assert beats == {"1": "W1", "2": "E1", "3": "E1", "4": None, "5": None}
        rows = con.execute(
            "SELECT area_id, name, parent_id, population, round(area_km2) FROM areas ORDER BY area_id"
        ).fetchall()
    # 0.1 x 0.1 degrees at latitude 41 is about 8.4 km x 11.1 km
    assert rows == [("E1", "East", "D1", 8500, 93.0), ("W1", "West", "D1", 12000, 93.0)]


def test_areas_errors_name_the_problem(real_warehouse, capsys):
    folder, directory = real_warehouse
    before = Warehouse(directory).current_version()
    code = main(
        [
            "--warehouse",
            str(directory),
            "areas",
            "--geojson",
            str(folder / "beats.geojson"),
            "--level",
            "beat",
            "--id-field",
            "BEAT_NO",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "feature 1 has no property 'BEAT_NO'" in err and "Traceback" not in err
    (folder / "bad_population.csv").write_text("area_id,population\nW1,many\n")
    code = main(
        [
            "--warehouse",
            str(directory),
            "areas",
            "--geojson",
            str(folder / "beats.geojson"),
            "--level",
            "beat",
            "--id-field",
            "BEAT",
            "--population",
            str(folder / "bad_population.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "bad_population.csv, line 2, field population: 'many' is not a whole number" in err
    assert Warehouse(directory).current_version() == before


def test_projected_geojson_is_refused(tmp_path):
    path = tmp_path / "projected.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"id": "A"},
                        "geometry": square(1160000, 1900000, 1170000, 1910000),
                    }
                ],
            }
        )
    )
    with pytest.raises(areas.AreasError, match="WGS84"):
        areas.read_features(path, "id", None, None)
