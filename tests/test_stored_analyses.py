"""Analyses stored when a snapshot is written (ilp/stored_analyses.py): the Next-week plan of every shift and
the near-repeat alerts, for the parameters the page opens with, equal the live computation on the same
snapshot after a demo build and after an incremental write; the page reads them instead of fitting; a snapshot
without them (written before, or a catalog copied from another snapshot) is computed live."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import math
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import streamlit as st
from pagetest import open_page

from ilp import stored_analyses
from ilp.analytics import hotspot_forecast as hf
from ilp.analytics import near_repeat
from ilp.warehouse import (
    STORE_ANALYSES_FROM,
    STORE_ANALYSES_FROM_ENV,
    Warehouse,
    connect_read_only,
    read_meta,
    writing_table,
)


def assert_same(stored, live, where: str = "result") -> None:
    """Equal field by field: data frames with pandas' own check, NaN equal to NaN."""
    if isinstance(live, pd.DataFrame):
        pd.testing.assert_frame_equal(stored, live, obj=where)
    elif dataclasses.is_dataclass(live):
        assert type(stored) is type(live), where
        for field in dataclasses.fields(live):
            if field.init:
                assert_same(getattr(stored, field.name), getattr(live, field.name), f"{where}.{field.name}")
    elif isinstance(live, dict):
        assert stored.keys() == live.keys(), where
        for key in live:
            assert_same(stored[key], live[key], f"{where}[{key!r}]")
    elif isinstance(live, (list, tuple)):
        assert type(stored) is type(live) and len(stored) == len(live), where
        for i, (a, b) in enumerate(zip(stored, live)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(live, float) and math.isnan(live):
        assert isinstance(stored, float) and math.isnan(stored), where
    else:
        assert stored == live, (where, stored, live)


def stored_rows(con) -> list[tuple[str, dict, bytes, str]]:
    rows = con.execute("SELECT name, parameters, result, snapshot FROM summary.analyses ORDER BY name").fetchall()
    return [(name, stored_analyses._decode(json.loads(key)), result, snap) for name, key, result, snap in rows]


def function_named(name: str):
    module, function = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), function)


def assert_stored_equal_live(warehouse: Path) -> list[dict]:
    with contextlib.closing(Warehouse(warehouse).connect()) as con:
        rows = stored_rows(con)
        version = read_meta(con)["version"]
        names = [name for name, *_ in rows]
        assert names.count("ilp.analytics.hotspot_forecast.next_week_plan") == len(hf.SHIFT_SCOPES)
        assert names.count("ilp.analytics.near_repeat.near_repeat_alerts") == 1
        for name, parameters, result, snapshot in rows:
            assert snapshot == version
            function = function_named(name)
            stored = stored_analyses.lookup(con, function, parameters)
            assert_same(stored, stored_analyses.decode(result))
            assert_same(stored, function(con, **parameters), f"{name}({parameters})")
        return [parameters for _, parameters, _, _ in rows]


@pytest.fixture(scope="module")
def stored_city(demo_warehouse, tmp_path_factory) -> Path:
    """The test demo city after one write with the size threshold at 0, so the write stores the analyses (the
    test city is far below the default threshold, where nothing is stored)."""
    directory = tmp_path_factory.mktemp("stored_city") / "warehouse"
    shutil.copytree(demo_warehouse, directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STORE_ANALYSES_FROM_ENV, "0")
        with Warehouse(directory).write(kind="demo", note="nothing new"):
            pass
    return directory


def test_a_warehouse_below_the_threshold_stores_nothing_and_above_it_a_second_snapshot_does(
    demo_warehouse, stored_city
):
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] < STORE_ANALYSES_FROM
        assert stored_analyses.META_KEY not in read_meta(con)
        assert stored_analyses.lookup(con, near_repeat.near_repeat_alerts, {}) is None
    snapshots = Warehouse(stored_city).snapshots()
    notes = []
    for path in snapshots[-2:]:
        with contextlib.closing(connect_read_only(path)) as con:
            notes.append((read_meta(con)["last_write"], read_meta(con).get(stored_analyses.META_KEY, "")))
    # the data write first (its rows readable at once), then the same data with the analyses
    assert notes[0] == ("nothing new", "") and notes[1][0] == "analyses the pages open with", notes
    assert notes[1][1].startswith(f"stored {len(hf.SHIFT_SCOPES) + 1} in "), notes


def test_a_write_stores_the_pages_default_analyses_equal_to_live(stored_city):
    parameters = assert_stored_equal_live(stored_city)
    plans = [p for p in parameters if "shift" in p]
    assert {p["shift"] for p in plans} == set(hf.SHIFT_SCOPES)
    with contextlib.closing(Warehouse(stored_city).connect()) as con:
        from ilp.snapshot import SnapshotInfo

        info = SnapshotInfo.read(con)
    week = info.default_week() + dt.timedelta(weeks=1)
    harm_index, harm_version = info.harm_indices[0].key.split(":", 1)
    assert all(
        p["week"] == week and p["category"] is None and p["district"] is None and p["cell_m"] == 150.0 for p in plans
    )
    assert all((p["harm_index"], p["harm_version"]) == (harm_index, harm_version) for p in plans)


@pytest.fixture
def demo_copy(stored_city, tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "demo_copy"
    shutil.copytree(stored_city, directory)
    monkeypatch.setenv(STORE_ANALYSES_FROM_ENV, "0")
    return directory


def test_an_incremental_write_stores_the_new_snapshots_analyses(demo_copy):
    with contextlib.closing(Warehouse(demo_copy).connect()) as con:
        before = {name: result for name, _, result, _ in stored_rows(con)}
        last = con.execute("SELECT max(occurred_at) FROM incidents").fetchone()[0]
    with Warehouse(demo_copy).write(kind="demo", note="200 burglaries copied into the last weeks") as con:
        con.execute(
            f"INSERT INTO {writing_table(con, 'incidents')} SELECT * REPLACE ("
            "source_id || '-copy' AS source_id, occurred_at + INTERVAL 2 DAY AS occurred_at) FROM incidents "
            "WHERE offense_category LIKE 'burglary%' AND occurred_at >= ? - INTERVAL 60 DAY "
            "AND occurred_at + INTERVAL 2 DAY <= ? ORDER BY occurred_at LIMIT 200",
            [last, last],
        )
    assert_stored_equal_live(demo_copy)
    with contextlib.closing(Warehouse(demo_copy).connect()) as con:
        after = {name: result for name, _, result, _ in stored_rows(con)}
        assert read_meta(con)[stored_analyses.META_KEY].startswith(f"stored {len(hf.SHIFT_SCOPES) + 1} in ")
    assert before.keys() == after.keys() and before != after


def test_a_snapshot_without_them_or_with_a_copied_catalog_is_computed_live(demo_copy):
    warehouse = Warehouse(demo_copy)
    current = warehouse.require_current()
    with contextlib.closing(warehouse.connect()) as con:
        name, parameters, _, _ = next(row for row in stored_rows(con) if row[0].endswith("near_repeat_alerts"))
        assert stored_analyses.lookup(con, near_repeat.near_repeat_alerts, parameters) is not None
        assert stored_analyses.lookup(con, near_repeat.near_repeat_alerts, {**parameters, "district": "1"}) is None
    with contextlib.closing(duckdb.connect(str(current))) as con:  # as if copied from another snapshot
        con.execute("UPDATE summary.analyses SET snapshot = 'another'")
    with contextlib.closing(warehouse.connect()) as con:
        assert stored_analyses.lookup(con, near_repeat.near_repeat_alerts, parameters) is None
    with contextlib.closing(duckdb.connect(str(current))) as con:  # as if written before stored analyses
        con.execute("DROP TABLE summary.analyses")
    with contextlib.closing(warehouse.connect()) as con:
        assert stored_analyses.lookup(con, near_repeat.near_repeat_alerts, parameters) is None


def test_stored_values_round_trip_and_code_is_never_loaded():
    value = {"when": dt.date(2026, 1, 5), "pair": (1, float("nan")), "frame": pd.DataFrame({"a": [1.5, None]})}
    back = stored_analyses.decode(stored_analyses.encode(value))
    assert back["when"] == value["when"] and back["pair"][0] == 1 and math.isnan(back["pair"][1])
    pd.testing.assert_frame_equal(back["frame"], value["frame"])
    with pytest.raises(TypeError):
        stored_analyses.decode(b'{"$dataclass": "os:system", "fields": {}}')
    with pytest.raises(TypeError):
        stored_analyses.encode(object())


@pytest.mark.usefixtures("entry_point_has_run")
def test_the_page_reads_the_stored_plan_without_fitting(app_env, stored_city, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the page fitted a forecast the snapshot stores")

    monkeypatch.setenv("ILP_WAREHOUSE", str(stored_city))
    monkeypatch.setattr(hf, "load_for_weeks", refuse)
    monkeypatch.setattr(near_repeat, "knox_test", refuse)
    st.cache_data.clear()
    for shift in hf.SHIFT_SCOPES:
        at = open_page("deployment_forecast", "commander")
        if shift != hf.SHIFT_SCOPES[0]:
            at.radio(key="forecast_shift").set_value(shift).run()
        assert not at.exception, [e.message for e in at.exception]
        assert at.success[0].value.startswith("Method in use:")
        assert int(at.metric[0].value.replace(",", "")) > 0
    st.cache_data.clear()
