"""Writing the generated demo city into the open warehouse's tables (areas, incidents and their history,
people, calls, use of force, survey, truth, and the ingest log entry).

The generators hand over numpy arrays and frames with integer codes; this module registers them with
DuckDB and turns them into the schema's rows (source ids, names, hashed person keys) in SQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ilp import paths
from ilp.demo.city_spec import city_spec_path, taxonomy_path
from ilp.demo.geography import Geography, geojson
from ilp.demo.incidents import Incidents
from ilp.demo.offences import OffenceModel
from ilp.warehouse import SNAPSHOT_PATTERN, writing_table

SOURCE = "demo"


def write_areas(con, geo: Geography) -> None:
    rows = []
    district_pop = np.bincount(geo.beat_district, weights=geo.beat_population, minlength=len(geo.district_ids))
    for d, polygon in enumerate(geo.district_polygons):
        c = polygon.centroid
        rows.append(
            (
                "district",
                geo.district_ids[d],
                geo.district_names[d],
                None,
                None,
                int(district_pop[d]),
                round(float(geo.district_area_km2[d]), 3),
                round(c.y, 6),
                round(c.x, 6),
                geojson(polygon),
            )
        )
    for b, polygon in enumerate(geo.beat_polygons):
        c = polygon.centroid
        d = geo.beat_district[b]
        rows.append(
            (
                "beat",
                geo.beat_ids[b],
                f"{geo.district_names[d]} {geo.beat_ids[b]}",
                "district",
                geo.district_ids[d],
                int(geo.beat_population[b]),
                round(float(geo.beat_area_km2[b]), 3),
                round(c.y, 6),
                round(c.x, 6),
                geojson(polygon),
            )
        )
    con.executemany("INSERT INTO areas VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


@contextlib.contextmanager
def _registered(con, **frames):
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        yield
    finally:
        for name in frames:
            con.unregister(name)


def _beat_frame(geo: Geography) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "beat": np.arange(len(geo.beat_ids)),
            "beat_id": geo.beat_ids,
            "district_id": [geo.district_ids[d] for d in geo.beat_district],
        }
    )


def _street_frame(spec, geo: Geography) -> pd.DataFrame:
    st = spec["streets"]
    ew = list(st["ew_names"])
    n_ns = int(geo.width_km / st["ns_spacing_km"]) + 2
    ns = [f"{_ordinal(k + 1)} {st['ns_suffix']}" for k in range(n_ns)]
    return pd.DataFrame({"street": np.arange(len(ew) + n_ns), "street_name": ew + ns})


def _ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def _streets_and_blocks(spec, geo: Geography, lon, lat):
    st = spec["streets"]
    x, y = geo.to_km(lon, lat)
    n_ew = len(st["ew_names"])
    ew = np.clip(np.round(y / st["ew_spacing_km"]), 0, n_ew - 1).astype(np.int64)
    ns = np.clip(np.round(x / st["ns_spacing_km"]), 0, None).astype(np.int64)
    on_ew = np.abs(y - ew * st["ew_spacing_km"]) <= np.abs(x - ns * st["ns_spacing_km"])
    street = np.where(on_ew, ew, n_ew + ns)
    block = np.floor(np.where(on_ew, x, y) / st["block_km"]).astype(np.int64) + 1
    return street, block


def write_incidents(
    con, spec, geo: Geography, model: OffenceModel, incidents: Incidents, history: pd.DataFrame, ingest_id: int
) -> None:
    ev = incidents.events
    street, block = _streets_and_blocks(spec, geo, ev.lon, ev.lat)
    missing = incidents.missing_location
    frame = pd.DataFrame(
        {
            "event": np.arange(len(ev)),
            "year": incidents.year,
            "seq": incidents.seq,
            "occurred_at": incidents.occurred.astype("datetime64[s]"),
            "reported_at": incidents.reported.astype("datetime64[s]"),
            "code": ev.code,
            "lat": np.where(missing, np.nan, ev.lat),
            "lon": np.where(missing, np.nan, ev.lon),
            "missing": missing,
            "street": street,
            "block": block,
            "beat": ev.beat,
            "premise": incidents.premise,
            "domestic": incidents.domestic,
            "arrest": incidents.arrest,
            "clearance": incidents.clearance,
            "identified": incidents.identified,
        }
    )
    codes = pd.DataFrame(
        {
            "code": np.arange(len(model.codes)),
            "offense_code": model.codes,
            "offense_description": model.descriptions,
            "offense_category": model.categories,
        }
    )
    premises = pd.DataFrame(
        {"premise": np.arange(len(incidents.premise_names)), "premise_type": incidents.premise_names}
    )
    with _registered(
        con,
        demo_events=frame,
        demo_codes=codes,
        demo_premises=premises,
        demo_beats=_beat_frame(geo),
        demo_streets=_street_frame(spec, geo),
        demo_history=history,
    ):
        con.execute("""
            CREATE TEMP TABLE demo_incident_rows AS
            SELECT e.event,
                   printf('PM%d-%06d', e.year, e.seq) AS source_id,
                   e.occurred_at::TIMESTAMP AS occurred_at, e.reported_at::TIMESTAMP AS reported_at,
                   c.offense_code, c.offense_description, c.offense_category,
                   e.lat AS latitude, e.lon AS longitude,
                   CASE WHEN e.missing THEN 'missing' ELSE 'ok' END AS location_status,
                   e.block::VARCHAR || 'XX BLOCK OF ' || s.street_name AS location_text,
                   b.district_id AS district, b.beat_id AS beat, p.premise_type, e.domestic, e.arrest,
                   ['open', 'cleared_arrest', 'cleared_other'][e.clearance + 1] AS clearance_status,
                   CASE WHEN e.clearance = 1 THEN 'Arrest made'
                        WHEN e.clearance = 2 AND e.identified THEN 'Cleared - victim declined to prosecute'
                        WHEN e.clearance = 2 THEN 'Cleared - no further action'
                        WHEN e.identified THEN 'Open - suspect identified'
                        ELSE 'Open - no suspect identified' END AS outcome_description
            FROM demo_events e
            JOIN demo_codes c USING (code)
            JOIN demo_beats b USING (beat)
            JOIN demo_premises p USING (premise)
            JOIN demo_streets s USING (street)
        """)
        con.execute(
            f"""
            INSERT INTO {writing_table(con, "incidents")}
            SELECT $source, source_id, occurred_at, 'exact', reported_at, offense_code, offense_description,
                   offense_category, latitude, longitude, location_status, location_text, district, beat,
                   NULL, premise_type, domestic, arrest, clearance_status, outcome_description,
                   md5(concat_ws('|', $source, source_id, occurred_at, reported_at, offense_code, offense_category,
                                 latitude, longitude, location_status, location_text, district, beat,
                                 premise_type, domestic, arrest, clearance_status, outcome_description)),
                   $ingest_id, $ingest_id
            FROM demo_incident_rows ORDER BY event
        """,
            {"source": SOURCE, "ingest_id": ingest_id},
        )
        con.execute(
            f"""
            INSERT INTO {writing_table(con, "incident_history")}
            SELECT $source, r.source_id, $ingest_id, h.superseded_at::TIMESTAMP, h.prev_code, h.prev_description,
                   h.prev_category, h.prev_clearance, h.prev_arrest,
                   json_object('offense_code', h.prev_code, 'offense_description', h.prev_description,
                               'offense_category', h.prev_category, 'clearance_status', h.prev_clearance,
                               'arrest', h.prev_arrest, 'occurred_at', r.occurred_at, 'beat', r.beat)
            FROM demo_history h JOIN demo_incident_rows r USING (event)
            ORDER BY h.event
        """,
            {"source": SOURCE, "ingest_id": ingest_id},
        )


def write_persons(con, spec, incidents: Incidents, persons: pd.DataFrame) -> None:
    with _registered(con, demo_persons=persons):
        con.execute(
            f"""
            INSERT INTO {writing_table(con, "incident_persons")}
            SELECT $source, r.source_id, sha256($salt || p.person_no::VARCHAR),
                   ['victim', 'offender', 'suspect'][p.role + 1],
                   ['<18', '18-24', '25-44', '45-64', '65+'][p.age + 1]
            FROM demo_persons p JOIN demo_incident_rows r USING (event)
            ORDER BY p.event, p.role, p.person_no
        """,
            {"source": SOURCE, "salt": spec["city"]["person_salt"]},
        )
    con.execute("DROP TABLE demo_incident_rows")


def write_calls(con, geo: Geography, calls: pd.DataFrame, call_types: list[str], dispositions: list[str]) -> None:
    types = pd.DataFrame({"call_type": np.arange(len(call_types)), "call_type_name": call_types})
    outcomes = pd.DataFrame({"disposition": np.arange(len(dispositions)), "disposition_name": dispositions})
    with _registered(
        con, demo_calls=calls, demo_beats=_beat_frame(geo), demo_call_types=types, demo_dispositions=outcomes
    ):
        con.execute(
            f"""
            INSERT INTO {writing_table(con, "calls_for_service")}
            SELECT $source, printf('C%d-%07d', c.year, c.seq), c.priority, t.call_type_name,
                   c.received::TIMESTAMP, c.dispatched::TIMESTAMP, c.arrived::TIMESTAMP, c.cleared::TIMESTAMP,
                   b.district_id, b.beat_id, d.disposition_name
            FROM demo_calls c
            JOIN demo_beats b USING (beat)
            JOIN demo_call_types t USING (call_type)
            JOIN demo_dispositions d USING (disposition)
            ORDER BY c.year, c.seq
        """,
            {"source": SOURCE},
        )


def write_force(con, geo: Geography, force: pd.DataFrame) -> None:
    with _registered(con, demo_force=force, demo_beats=_beat_frame(geo)):
        con.execute(
            f"""
            INSERT INTO {writing_table(con, "use_of_force")}
            SELECT $source, printf('UOF-%d-%05d', f.year, f.seq), f.occurred::TIMESTAMP, b.district_id, b.beat_id,
                   f.force_type, f.subject_injury, f.officer_injury
            FROM demo_force f JOIN demo_beats b USING (beat)
            ORDER BY f.year, f.seq
        """,
            {"source": SOURCE},
        )


def write_survey(con, survey: pd.DataFrame) -> None:
    with _registered(con, demo_survey=survey):
        con.execute(
            """
            INSERT INTO community_survey
            SELECT $source, 'district', area_id, period_start::DATE, period_label, measure, value, respondents
            FROM demo_survey ORDER BY period_start, area_id, measure
        """,
            {"source": SOURCE},
        )


def write_truth(con, truth: list[dict]) -> None:
    con.executemany(
        "INSERT INTO demo_truth VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?)",
        [
            (
                t["kind"],
                t["area_level"],
                t["area_id"],
                t["offense_category"],
                t["start_date"],
                t["end_date"],
                t["effect_size"],
                t["control_area_id"],
                json.dumps(t["details"], sort_keys=True),
                t["description"],
            )
            for t in truth
        ],
    )


def write_log(
    con, ingest_id: int, started_at: dt.datetime, incidents: int, parameters: dict, snapshot: str | None
) -> None:
    files = []
    for path in (city_spec_path(), taxonomy_path()):
        data = path.read_bytes()
        files.append({"path": _display_path(path), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    con.execute(
        "INSERT INTO ingest_log VALUES (?, 'demo', ?, NULL, NULL, ?::JSON, ?, ?, ?, ?, 0, 0, 0, ?)",
        [
            ingest_id,
            SOURCE,
            json.dumps(files),
            started_at,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            incidents,
            incidents,
            snapshot,
        ],
    )
    con.executemany(
        "INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)",
        [("demo_parameters", json.dumps(parameters, sort_keys=True))],
    )


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(paths.PROJECT_DIR))
    except ValueError:
        return str(path)


def snapshot_being_written(con) -> str | None:
    """The version an open write will become (its file's stem, less '.partial'), or None if it cannot be told."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    name = Path(row[0]).name if row and row[0] else ""
    name = name.removesuffix(".partial")
    return Path(name).stem if SNAPSHOT_PATTERN.match(name) else None
