"""Analyses computed when a snapshot is written, for the view a page opens with, and read by the page instead
of computing them on its first visit.

Some analyses cost seconds at a large force's size whatever the query: the Next-week plan fits and scores five
forecasting methods on three years of cell-weeks, and its Knox test counts millions of pairs of burglaries
under 99 permutations of their dates (about 20 s at 10 million incidents). Their answer does not change until
the next write, so each write (``Warehouse._write_locked``, after the summaries and the snapshot's metadata)
runs them once for the parameters the page opens with (the sidebar's defaults: the week after the last
complete week, all districts and categories, the first harm index, the default cell size; every shift) and
stores the results in ``summary.analyses``: one row per (function, parameters), the result encoded by
:func:`encode` (JSON; data frames as Arrow IPC; only the dataclasses in ``RESULT_TYPES``, so reading a row
never runs code from the file). ``ilp.ui.context.Page.analysis`` looks a call up here first
(:func:`lookup`) and computes it live when it is not stored: other weeks, districts, categories, cell sizes,
and every snapshot written before this table. The stored result is the live function's own result on the
same snapshot (tests/test_stored_analyses.py compares them), so a stored and a live answer are the same.

What is stored is listed by ``ilp.analytics.hotspot_forecast.prepare_page_defaults``; a new expensive view
adds its own function to ``PREPARERS``. A failure is printed and never fails the write: the page then computes
live.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import importlib
import io
import json
import math
import sys
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

VERSION = "1"  # raise when an encoding or a stored function's result changes shape: older rows are ignored
TABLE = "summary.analyses"
META_KEY = "stored_analyses"  # snapshot_meta key saying what the write stored ('stored 5 in 21.3 s', or why not)
# Functions (module, name) that list what to store: each takes (con, today) and returns (function, parameters,
# result) triples, computing the results (it may share work between them).
PREPARERS = (("ilp.analytics.hotspot_forecast", "prepare_page_defaults"),)
RESULT_TYPES = {  # the dataclasses a stored result may hold
    "ilp.analytics.hotspot_forecast:Plan",
    "ilp.analytics.hotspot_forecast:Forecast",
    "ilp.analytics.near_repeat:NearRepeatAlerts",
    "ilp.analytics.near_repeat:KnoxResult",
}


def function_name(function: Callable) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def parameters_key(parameters: dict) -> str:
    """The parameters as canonical JSON (sorted keys; dates ISO), the lookup key beside the function's name."""
    return json.dumps(_encode(dict(parameters)), sort_keys=True)


# ------------------------------------------------------------------------------------------ writing
def store(con: duckdb.DuckDBPyConnection, today: dt.date | None = None) -> str:
    """Compute every listed analysis on the snapshot being written and replace ``summary.analyses`` with them.
    Returns a short note ('stored N in S s' or the failure), also kept in snapshot_meta; never raises."""
    import time

    started = time.perf_counter()
    rows: list[tuple[str, str, str, str, bytes]] = []
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS summary")
        con.execute(
            f"CREATE OR REPLACE TABLE {TABLE} "
            "(name VARCHAR, parameters VARCHAR, version VARCHAR, snapshot VARCHAR, result BLOB)"
        )
        snapshot = _snapshot_version(con)
        for module, name in PREPARERS:
            prepare = getattr(importlib.import_module(module), name)
            for function, parameters, result in prepare(con, today):
                rows.append((function_name(function), parameters_key(parameters), VERSION, snapshot, encode(result)))
        if rows:
            con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?)", rows)
        note = f"stored {len(rows)} in {time.perf_counter() - started:.1f} s"
    except Exception as error:  # noqa: BLE001 - the write has succeeded; the page computes live instead
        note = f"skipped ({type(error).__name__}: {error}); pages compute them live"
        print(f"ilp: stored analyses {note}", file=sys.stderr)
    with contextlib.suppress(duckdb.Error):
        con.execute("INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)", [META_KEY, note])
    return note


def _snapshot_version(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT value FROM snapshot_meta WHERE key = 'version'").fetchone()
    return row[0] if row else ""


# ------------------------------------------------------------------------------------------ reading
def lookup(con: duckdb.DuckDBPyConnection, function: Callable, parameters: dict):
    """The stored result of ``function(con, **parameters)`` on this snapshot, or None when it is not stored."""
    try:
        row = con.execute(
            f"SELECT result FROM {TABLE} WHERE name = ? AND parameters = ? AND version = ? AND snapshot = ("
            "SELECT value FROM snapshot_meta WHERE key = 'version')",  # a copied catalog's rows are not its own
            [function_name(function), parameters_key(parameters), VERSION],
        ).fetchone()
    except duckdb.CatalogException:  # a snapshot written before stored analyses
        return None
    return decode(row[0]) if row else None


# ------------------------------------------------------------------------------------------ encoding
def encode(value) -> bytes:
    """``value`` as JSON, data frames inside as zstd-compressed Arrow IPC (base64)."""
    return json.dumps(_encode(value)).encode("utf-8")


def decode(data: bytes):
    return _decode(json.loads(bytes(data)))


def _encode(value):
    if isinstance(value, pd.DataFrame):
        import pyarrow as pa

        sink = io.BytesIO()
        table = pa.Table.from_pandas(value, preserve_index=True)
        with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
            writer.write_table(table)
        return {"$frame": base64.b64encode(sink.getvalue()).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = f"{type(value).__module__}:{type(value).__qualname__}"
        if kind not in RESULT_TYPES:
            raise TypeError(f"{kind} is not a storable result type")
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"$dataclass": kind, "fields": fields}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"$dict": {k: _encode(v) for k, v in value.items()}}
        raise TypeError("only dicts with text keys are storable")
    if isinstance(value, np.generic):
        return _encode(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} is not storable")


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$frame" in value:
        import pyarrow as pa

        with pa.ipc.open_stream(base64.b64decode(value["$frame"])) as reader:
            return reader.read_all().to_pandas()
    if "$dataclass" in value:
        kind = value["$dataclass"]
        if kind not in RESULT_TYPES:
            raise TypeError(f"{kind} is not a storable result type")
        module, name = kind.split(":")
        cls = getattr(importlib.import_module(module), name)
        return cls(**{k: _decode(v) for k, v in value["fields"].items()})
    if "$datetime" in value:
        return dt.datetime.fromisoformat(value["$datetime"])
    if "$date" in value:
        return dt.date.fromisoformat(value["$date"])
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    if "$float" in value:
        return float(value["$float"])
    if "$dict" in value:
        return {k: _decode(v) for k, v in value["$dict"].items()}
    raise TypeError(f"unknown stored value {sorted(value)}")
