"""The strict TOML mapping parser (ilp/mapping.py) and an x/y + EPSG mapping reprojecting for real."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path

import pyproj
import pytest

from ilp import mapping
from ilp.ingest import ingest
from ilp.mapping import MappingError

BAD_INPUT = Path(__file__).resolve().parent / "bad_input"
PATH = Path("test.toml")

MINIMAL = {
    "source": {"name": "agency", "taxonomy": "chicago_iucr"},
    "id": {"columns": ["ID"]},
    "occurred": {"columns": "Date", "formats": ["%Y-%m-%d"]},
    "offense": {"code": "IUCR"},
}


def parse(changes: dict | None = None, drop: tuple[str, ...] = ()) -> mapping.Mapping:
    """MINIMAL with sections/keys replaced (``{"file": {"delimiter": ";"}}``) and ``section`` or
    ``section.key`` entries dropped."""
    document = copy.deepcopy(MINIMAL)
    for section, table in (changes or {}).items():
        document.setdefault(section, {}).update(table)
    for item in drop:
        section, _, key = item.partition(".")
        if key:
            del document[section][key]
        else:
            del document[section]
    return mapping.parse(document, path=PATH)


def error_of(changes: dict | None = None, drop: tuple[str, ...] = ()) -> str:
    with pytest.raises(MappingError) as caught:
        parse(changes, drop)
    message = str(caught.value)
    assert message.startswith(f"{PATH}: "), message  # every message names the mapping file
    return message


# ------------------------------------------------------------------------------------------ presets
@pytest.mark.parametrize("preset", ["chicago", "uk_police", "lapd"])
def test_each_preset_parses(preset):
    m = mapping.load(preset)
    assert m.name == preset
    assert m.path == mapping.paths.MAPPINGS_DIR / f"{preset}.toml"
    assert len(m.sha256) == 64
    assert m.id_columns and m.occurred_columns and m.occurred_formats and m.offense_code
    assert m.latitude and m.longitude and m.bbox is not None
    assert m.bbox[0] < m.bbox[2] and m.bbox[1] < m.bbox[3]
    assert len(m.columns_used()) == len(set(m.columns_used()))


def test_preset_details():
    chicago, uk, lapd = (mapping.load(p) for p in ("chicago", "uk_police", "lapd"))
    assert chicago.id_columns == ("ID",) and chicago.code_width == 4 and chicago.arrest_means_cleared
    assert chicago.other_areas == {"ward": "Ward", "community_area": "Community Area"}
    assert uk.precision == "month" and uk.id_when_missing == "content_hash" and uk.occurred_formats == ("%Y-%m",)
    assert lapd.time_column == "TIME OCC" and lapd.time_format == "%H%M"
    assert "Adult Arrest" in lapd.cleared_arrest and lapd.open_values == ("Invest Cont",)


def test_a_preset_loads_by_path_too():
    by_path = mapping.load(mapping.paths.MAPPINGS_DIR / "chicago.toml")
    assert by_path == mapping.load("chicago")


def test_minimal_mapping_defaults():
    m = parse()
    assert (m.delimiter, m.encoding, m.header, m.quote, m.skip_rows) == (",", "utf-8", True, '"', 0)
    assert m.occurred_columns == ("Date",)  # a single string is a one-element list
    assert m.id_when_missing == "reject" and m.precision == "exact" and m.max_date == "today"
    assert m.latitude is None and m.x is None and m.bbox is None


def test_the_corpus_mapping_parses():
    m = mapping.load(BAD_INPUT / "mapping.toml")
    assert m.taxonomy == "chicago_iucr" and m.max_date == "2025-12-31"


# ------------------------------------------------------------------------------------------ strictness
def test_typo_key_is_named_with_a_suggestion():
    with pytest.raises(MappingError) as caught:
        mapping.load(BAD_INPUT / "mapping_typo.toml")
    message = str(caught.value)
    assert "mapping_typo.toml" in message
    assert "unknown key in [file] 'delimeter'" in message
    assert "Did you mean 'delimiter'?" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"occurred": {"format": ["%Y"]}}, "unknown key in [occurred] 'format'. Did you mean 'formats'?"),
        ({"location": {"lattitude": "Lat"}}, "unknown key in [location] 'lattitude'. Did you mean 'latitude'?"),
        ({"offense": {"cod": "X"}}, "Did you mean 'code'?"),
        ({"ofense": {"code": "X"}}, "unknown section 'ofense'. Did you mean 'offense'?"),
        ({"file": {"zzz": 1}}, "unknown key in [file] 'zzz'. Valid: delimiter, encoding, header, quote, skip_rows."),
    ],
)
def test_unknown_keys_and_sections(changes, expected):
    assert expected in error_of(changes)


@pytest.mark.parametrize("section", ["source", "id", "occurred", "offense"])
def test_missing_required_section(section):
    assert f"missing required section [{section}]" in error_of(drop=(section,))


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("source.name", "[source] is missing required key 'name'"),
        ("source.taxonomy", "[source] is missing required key 'taxonomy'"),
        ("id.columns", "[id] is missing required key 'columns'"),
        ("occurred.formats", "[occurred] is missing required key 'formats'"),
        ("offense.code", "[offense] is missing required key 'code'"),
    ],
)
def test_missing_required_key(item, expected):
    assert expected in error_of(drop=(item,))


def test_missing_required_key_in_an_optional_section():
    assert "[reported] is missing required key 'formats'" in error_of({"reported": {"columns": "Reported"}})


@pytest.mark.parametrize("name", ["ebcdic", "cp1252", "utf-32"])
def test_bad_encoding_name(name):
    message = error_of({"file": {"encoding": name}})
    assert f"encoding {name!r} is not supported" in message and "utf-8, latin-1, utf-16" in message


@pytest.mark.parametrize(
    ("name", "normalised"), [("UTF8", "utf-8"), ("latin1", "latin-1"), ("ISO-8859-1", "latin-1"), ("utf_16", "utf-16")]
)
def test_encoding_aliases(name, normalised):
    assert parse({"file": {"encoding": name}}).encoding == normalised


@pytest.mark.parametrize(
    "bbox",
    [
        [-87.9, 41.6, -87.5],
        [-87.5, 41.6, -87.9, 42.0],
        [-87.9, 42.0, -87.5, 41.6],
        ["a", 41.6, -87.5, 42.0],
        [-87.9, 41.6, -87.9, 42.0],
    ],
)
def test_bad_bbox(bbox):
    assert "bbox must be [min_longitude, min_latitude, max_longitude, max_latitude]" in error_of(
        {"location": {"latitude": "Lat", "longitude": "Lon", "bbox": bbox}}
    )


def test_bbox_must_be_a_list():
    assert "[location] bbox must be list" in error_of({"location": {"bbox": "-87.9,41.6,-87.5,42.0"}})


def test_good_bbox_is_floats():
    m = parse({"location": {"latitude": "Lat", "longitude": "Lon", "bbox": [-88, 41, -87.5, 42]}})
    assert m.bbox == (-88.0, 41.0, -87.5, 42.0)


@pytest.mark.parametrize("location", [{"x": "X", "y": "Y"}, {"x": "X"}, {"y": "Y", "epsg": 3435}])
def test_xy_without_epsg_or_partner(location):
    assert "x/y coordinates need x, y and epsg" in error_of({"location": location})


def test_latitude_without_longitude():
    assert "needs both latitude and longitude" in error_of({"location": {"latitude": "Lat"}})


def test_unknown_epsg():
    assert "epsg 999999 is not a known coordinate system" in error_of(
        {"location": {"x": "X", "y": "Y", "epsg": 999999}}
    )


def test_epsg_must_be_an_integer():
    assert "[location] epsg must be int" in error_of({"location": {"x": "X", "y": "Y", "epsg": "3435"}})


def test_unknown_taxonomy():
    message = error_of({"source": {"taxonomy": "atlantis"}})
    assert "taxonomy 'atlantis' has no file data/taxonomy/atlantis.csv" in message
    assert "chicago_iucr" in message and "uk_police" in message  # lists the known ones


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"file": {"header": "yes"}}, "[file] header must be bool, not 'yes'"),
        ({"file": {"skip_rows": True}}, "[file] skip_rows must be int"),
        ({"file": {"delimiter": ";;"}}, "delimiter must be one character"),
        ({"occurred": {"precision": "week"}}, "precision must be one of exact, day, month, not 'week'"),
        ({"occurred": {"columns": ["A", "B", "C"]}}, "[occurred] columns takes one column, or two"),
        ({"occurred": {"formats": []}}, "[occurred] formats must be a non-empty string or list of strings"),
        ({"id": {"when_missing": "drop"}}, "when_missing must be 'reject' or 'content_hash', not 'drop'"),
        ({"id": {"columns": ["ID", ""]}}, "[id] columns must be a non-empty string or list of strings"),
        ({"source": {"name": "demo"}}, "name must be a non-empty name other than 'demo'"),
        ({"areas": {"other": {"ward": 3}}}, "[areas] other must map level names to column names"),
        ({"offense": {"code_width": "4"}}, "[offense] code_width must be int"),
    ],
)
def test_bad_values(changes, expected):
    assert expected in error_of(changes)


@pytest.mark.parametrize(("given", "expected"), [("tab", "\t"), ("\\t", "\t"), (";", ";"), ("|", "|")])
def test_delimiter_spellings(given, expected):
    assert parse({"file": {"delimiter": given}}).delimiter == expected


def test_section_that_is_not_a_table():
    with pytest.raises(MappingError, match=r"\[source\] must be a table of keys"):
        mapping.parse({**copy.deepcopy(MINIMAL), "source": "chicago"}, path=PATH)


def test_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[source]\nname = "x\n', encoding="utf-8")
    with pytest.raises(MappingError, match=r"broken\.toml: not valid TOML"):
        mapping.load(path)


def test_non_utf8_mapping_file(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b'[source]\nname = "caf\xe9"\n')
    with pytest.raises(MappingError, match=r"latin\.toml: not valid TOML"):
        mapping.load(path)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(MappingError) as caught:
        mapping.load("chicgo")
    assert "No mapping named 'chicgo'" in str(caught.value)
    assert "chicago, lapd, uk_police" in str(caught.value)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(MappingError, match="does not exist"):
        mapping.load(tmp_path / "nowhere.toml")


def test_cli_reports_a_bad_mapping_in_one_line(run_cli, real_warehouse, folder_state):
    before = folder_state(real_warehouse.directory)
    code, out, err = run_cli("ingest", "--mapping", "chicgo", BAD_INPUT / "good.csv", warehouse=real_warehouse)
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.strip() == (
        "ilp ingest: error: No mapping named 'chicgo'. Presets: chicago, lapd, uk_police; "
        "or give a path to a .toml file."
    )
    assert folder_state(real_warehouse.directory) == before


# ------------------------------------------------------------------------------------------ x/y + EPSG
# Three rows of ../shared/data/chicago/crimes_2017.csv.gz: X/Y Coordinate are Illinois State Plane East
# (EPSG:3435, US feet); Latitude/Longitude are the city's own WGS84 values for the same rows.
CHICAGO_ROWS = [
    # ID, Date, IUCR, X Coordinate, Y Coordinate, Latitude, Longitude
    ("10805378", "01/01/2017 02:00:00 AM", "0281", "1180398", "1874151", 41.80993288, -87.613843427),
    ("10811558", "01/01/2017 08:00:00 PM", "1153", "1177178", "1833706", 41.69902045, -87.626871965),
    ("10814234", "01/01/2017 01:35:00 AM", "0870", "1169525", "1910220", 41.909152038, -87.652675042),
]
XY_MAPPING = """
[source]
name = "chicago_xy"
taxonomy = "chicago_iucr"

[id]
columns = ["ID"]

[occurred]
columns = ["Date"]
formats = ["%m/%d/%Y %I:%M:%S %p"]

[offense]
code = "IUCR"

[location]
x = "X Coordinate"
y = "Y Coordinate"
epsg = 3435
bbox = [-87.95, 41.64, -87.52, 42.03]
"""


def test_xy_mapping_reprojects_to_wgs84(real_warehouse, tmp_path):
    mapping_path = tmp_path / "chicago_xy.toml"
    mapping_path.write_text(XY_MAPPING, encoding="utf-8")
    m = mapping.load(mapping_path)
    assert (m.x, m.y, m.epsg, m.latitude) == ("X Coordinate", "Y Coordinate", 3435, None)

    data = tmp_path / "xy.csv"
    lines = ["ID,Date,IUCR,X Coordinate,Y Coordinate,Latitude,Longitude"]
    lines += [",".join([*row[:5], str(row[5]), str(row[6])]) for row in CHICAGO_ROWS]
    lines += [
        "20000001,01/02/2017 10:00:00 AM,0820,,,,",  # no coordinates
        "20000002,01/02/2017 10:00:00 AM,0820,0,0,,",  # the 0,0 placeholder
        '20000003,01/02/2017 10:00:00 AM,0820,"1,169,525","1,910,220",,',  # thousands separators
        "20000004,01/02/2017 10:00:00 AM,0820,100,100,,",  # far outside the city
    ]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest(real_warehouse, m, [data])
    assert (result.rows_read, result.loaded, result.rejected) == (7, 7, 0)

    with contextlib.closing(real_warehouse.connect()) as con:
        stored = {
            r[0]: r[1:]
            for r in con.execute("SELECT source_id, latitude, longitude, location_status FROM incidents").fetchall()
        }
    geod = pyproj.Geod(ellps="WGS84")
    for source_id, *_rest, latitude, longitude in CHICAGO_ROWS:
        lat, lon, status = stored[source_id]
        assert status == "ok"
        metres = geod.inv(lon, lat, longitude, latitude)[2]
        assert metres < 50, f"{source_id}: reprojected point is {metres:.1f} m from the published one"
    assert stored["20000001"][2] == "missing"
    assert stored["20000002"][2] == "zero"
    assert stored["20000003"][2] == "ok"
    assert geod.inv(stored["20000003"][1], stored["20000003"][0], -87.652675042, 41.909152038)[2] < 50
    assert stored["20000004"][2] == "out_of_bounds"
    for source_id in ("20000001", "20000002", "20000004"):
        assert stored[source_id][:2] == (None, None)


def test_mapping_hash_is_recorded_with_the_ingest(real_warehouse):
    m = mapping.load(BAD_INPUT / "mapping.toml")
    result = ingest(real_warehouse, m, [BAD_INPUT / "good.csv"])
    with contextlib.closing(real_warehouse.connect()) as con:
        source, mapping_path, sha256, files = con.execute(
            "SELECT source, mapping, mapping_sha256, files FROM ingest_log WHERE ingest_id = ?", [result.ingest_id]
        ).fetchone()
    assert (source, Path(mapping_path).name, sha256) == ("bad_input", "mapping.toml", m.sha256)
    assert [Path(f["path"]).name for f in json.loads(files)] == ["good.csv"]


# ------------------------------------------------------------------------------------------ [file] options
GOOD_CSV = (BAD_INPUT / "good.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("file_options", "data"),
    [
        ('encoding = "utf-16"', GOOD_CSV.encode("utf-16")),
        ('encoding = "latin-1"', GOOD_CSV.replace("STATE ST", "CAF\u00c9 ST").encode("latin-1")),
        ('delimiter = "tab"', GOOD_CSV.replace(",", "\t").encode()),
        (
            'delimiter = "|"\nquote = "\'"',
            GOOD_CSV.replace(",", "|").replace("002XX W MADISON ST", "'002XX W MADISON | ST'").encode(),
        ),
        (
            "skip_rows = 2",
            ("Exported by the records system\nRun at 2017-02-01\n" + GOOD_CSV + "1004,bad,x,0486,B,false,,\n").encode(),
        ),
    ],
    ids=["utf-16", "latin-1", "tab", "pipe-and-single-quote", "skip-rows"],
)
def test_file_options_are_honoured(file_options, data, real_warehouse, tmp_path):
    text = (BAD_INPUT / "mapping.toml").read_text(encoding="utf-8")
    text = text.replace('[file]\ndelimiter = ","\nencoding = "utf-8"', f"[file]\n{file_options}")
    path = tmp_path / "options.toml"
    path.write_text(text, encoding="utf-8")
    source = tmp_path / "data.csv"
    source.write_bytes(data)
    result = ingest(real_warehouse, mapping.load(path), [source])
    skip = "skip_rows" in file_options
    assert (result.rows_read, result.loaded, result.rejected) == ((4, 3, 1) if skip else (3, 3, 0))
    with contextlib.closing(real_warehouse.connect()) as con:
        blocks = dict(con.execute("SELECT source_id, location_text FROM incidents").fetchall())
        lines = [r[0] for r in con.execute("SELECT line_number FROM rejects").fetchall()]
    assert sorted(blocks) == ["1001", "1002", "1003"]
    if "latin-1" in file_options:
        assert blocks["1001"] == "001XX N CAF\u00c9 ST"
    if "quote" in file_options:
        assert blocks["1002"] == "002XX W MADISON | ST"
    if skip:
        assert lines == [7]  # 2 preamble lines, the header, 3 good rows, then the bad one


def test_headerless_file_uses_column_numbers(real_warehouse, tmp_path):
    path = tmp_path / "headerless.toml"
    path.write_text(
        '[source]\nname = "headerless"\ntaxonomy = "chicago_iucr"\n[file]\nheader = false\n'
        '[id]\ncolumns = ["column0"]\n[occurred]\ncolumns = "column1"\nformats = "%m/%d/%Y %I:%M:%S %p"\n'
        '[offense]\ncode = "column3"\n',
        encoding="utf-8",
    )
    source = tmp_path / "rows.csv"
    source.write_text("\n".join(GOOD_CSV.splitlines()[1:]) + "\n1004,bad,x,0486\n", encoding="utf-8")
    result = ingest(real_warehouse, mapping.load(path), [source])
    assert (result.rows_read, result.loaded, result.rejected) == (4, 3, 1)
    with contextlib.closing(real_warehouse.connect()) as con:
        assert con.execute("SELECT line_number, field FROM rejects").fetchall() == [(4, "column4")]  # too few fields


# ------------------------------------------------------------------------------------------ issue 9: refused at read
def test_an_empty_id_column_list_means_content_ids():
    """Before: `[id] columns = []` was refused; it now says the export has no id column."""
    m = parse({"id": {"columns": []}})
    assert m.id_columns == () and m.id_when_missing == "content_hash" and m.content_ids
    assert "ID" not in m.columns_used()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"occurred": {"formats": ["%m/%d/%Y %I:%M"]}}, "reads a 12-hour clock (%I) without AM/PM (%p)"),
        (
            {"occurred": {"time_column": "T", "time_format": "%I:%M"}},
            "[occurred] time_format '%I:%M' reads a 12-hour clock (%I) without AM/PM (%p)",
        ),
        ({"occurred": {"time_column": "T", "time_format": "%Y%m%d"}}, "time_format '%Y%m%d' is not a time of day"),
        ({"occurred": {"time_column": "T", "time_format": "%M"}}, "time_format '%M' is not a time of day"),
        ({"occurred": {"time_format": "%H"}}, "[occurred] time_format is set but time_column is not"),
        (
            {"occurred": {"time_column": "T", "precision": "day"}},
            "time_column is set but precision is 'day', which drops the time",
        ),
        ({"location": {"bbox": [float("nan"), 41.6, -87.5, 42.0]}}, "four finite numbers"),
        ({"location": {"bbox": [-87.9, 41.6, float("inf"), 42.0]}}, "four finite numbers"),
        ({"location": {"bbox": [1180000, 1830000, 1200000, 1950000]}}, "is outside the world"),
        ({"validity": {"min_date": "yesterday"}}, "[validity] min_date must be a date YYYY-MM-DD, not 'yesterday'"),
        ({"validity": {"max_date": "2025-02-30"}}, '[validity] max_date must be a date YYYY-MM-DD or "today"'),
        ({"validity": {"max_field_length": 0}}, "[validity] max_field_length must be a positive int"),
    ],
)
def test_settings_that_would_load_wrong_data_are_refused(changes, expected):
    assert expected in error_of(changes)


@pytest.mark.parametrize(
    ("time_format", "expected"),
    [
        ("%H", ("%H",)),
        ("%I:%M %p", ("%I:%M %p",)),
        ("seconds", ("seconds",)),
        (["%H:%M", "%H%M"], ("%H:%M", "%H%M")),
    ],
)
def test_time_formats_parse(time_format, expected):
    m = parse({"occurred": {"time_column": "Time", "time_format": time_format}})
    assert m.time_formats == expected and m.time_format == expected[0]


def test_validity_dates_may_be_toml_dates_and_far_ahead():
    import datetime as dt

    m = parse({"validity": {"min_date": dt.date(2001, 1, 1), "max_date": "9999-12-31"}})
    assert (m.min_date, m.max_date) == ("2001-01-01", "9999-12-31")
