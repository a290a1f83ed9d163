"""Building the demo city: ``build_demo`` runs every step in its fixed order inside an open write,
``build_demo_warehouse`` does the whole write, and ``table_checksums`` proves two builds identical.

Same (seed, years, incidents_per_year, end_date) gives identical tables: the city is drawn and written a
chunk of days at a time (``chunks``), each chunk from its own generator spawned from the seed, in the
order the steps run here; what spans the whole period (the planted truths, the pools of people who
recur) is planned first, from a generator of its own. Memory stays that of one chunk at any size.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import duckdb
import numpy as np

from ilp.demo.calls import call_names, generate_calls, number_calls
from ilp.demo.chunks import Backlog, chunk_days, chunk_generators
from ilp.demo.city_spec import load_city_spec
from ilp.demo.clock import Clock, YearSequence
from ilp.demo.geography import build_geography
from ilp.demo.history import generate_history
from ilp.demo.incidents import (
    NEAR_REPEAT_BURN_IN_DAYS,
    Events,
    add_near_repeats,
    generate_events,
    incident_details,
    place_events,
)
from ilp.demo.offences import base_rates, load_offence_model
from ilp.demo.people import generate_persons, person_stats, plan_people
from ilp.demo.plan import expected_counts, plan_truths
from ilp.demo.survey import generate_survey
from ilp.demo.truth import Tally, truth_rows
from ilp.demo.use_of_force import generate_use_of_force, number_force
from ilp.demo.write import (
    snapshot_being_written,
    write_areas,
    write_calls,
    write_force,
    write_incidents,
    write_log,
    write_persons,
    write_survey,
    write_truth,
)
from ilp.errors import UserError
from ilp.warehouse import Warehouse, WarehouseError, next_ingest_id


class DemoError(UserError, ValueError):
    """A demo city that cannot be built as asked (too small to show its planted truth)."""


DEFAULT_END_DATE = dt.date(2026, 11, 15)  # a Sunday: the data runs through this day inclusive

# Tables compared by table_checksums: everything a build writes except snapshot_meta and ingest_log,
# which hold wall-clock times.
CHECKSUM_TABLES = (
    "offence_categories",
    "offence_taxonomy",
    "harm_indices",
    "harm_weights",
    "areas",
    "incidents",
    "incident_history",
    "incident_persons",
    "calls_for_service",
    "use_of_force",
    "community_survey",
    "rejects",
    "demo_truth",
)

Progress = Callable[[str, float], None]
DUCKDB_MEMORY_LIMIT = "1GB"  # for the writing connection during a build


def build_demo(
    con: duckdb.DuckDBPyConnection,
    *,
    years: int = 3,
    incidents_per_year: int = 150_000,
    seed: int = 7,
    end_date: dt.date | str = DEFAULT_END_DATE,
    progress: Progress | None = None,
    snapshot: str | None = None,
) -> dict:
    """Fill the open demo warehouse ``con`` (inside ``Warehouse.write(kind="demo", fresh=True)``).

    ``years`` counts whole 52-week years ending on ``end_date`` (inclusive), so with a Sunday end date
    the data starts on a Monday and every week is complete. ``progress(step, fraction_done)`` is called
    as the build goes. ``snapshot`` is the version being written, for ``ingest_log`` (by default it is
    read from the snapshot file's name). Returns a summary: rows per table, the truth rows, how many chunks
    the city was drawn in, seconds.
    """
    if isinstance(end_date, str):
        end_date = dt.date.fromisoformat(end_date)
    elif isinstance(end_date, dt.datetime):
        end_date = end_date.date()
    _check_size(years, incidents_per_year)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    report = progress or (lambda step, fraction: None)

    report("drawing the city", 0.0)
    if con.execute("SELECT count(*) FROM incidents").fetchone()[0]:
        raise WarehouseError("The demo city is built into a fresh warehouse only (Warehouse.write(fresh=True)).")
    ingest_id = next_ingest_id(con)
    con.execute("SET enable_progress_bar = false")  # the caller draws its own progress
    # DuckDB's cache of the segment being written grows with it (about 130 MB per million incidents); capped,
    # it is written out instead, so the build's memory is one chunk's plus this at any size
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    spec = load_city_spec()
    proactive = {row[0] for row in con.execute("SELECT category FROM offence_categories WHERE proactive").fetchall()}
    model = load_offence_model(spec, proactive)
    geo = build_geography(spec)

    n_days = years * 364
    start_date = end_date - dt.timedelta(days=n_days - 1)
    clock = Clock(start_date, end_date)
    chunks = chunk_days(clock, incidents_per_year, -NEAR_REPEAT_BURN_IN_DAYS)
    plan_rng, survey_rng, chunk_rngs = chunk_generators(seed, len(chunks))

    report("planting truths", 0.02)
    rates = base_rates(spec, geo, model, incidents_per_year)
    plan = plan_truths(spec, geo, model, rates, clock)
    pools = plan_people(plan_rng, spec, geo, model, expected_counts(spec, model, rates, plan, clock), plan)
    write_areas(con, geo)

    call_types, dispositions = call_names(spec, model)
    waiting = Events.empty()  # near-repeat burglaries drawn for a later chunk
    calls_due, force_due = Backlog("received"), Backlog("occurred")
    incident_numbers, call_numbers, force_numbers = YearSequence(), YearSequence(), YearSequence()
    tally = Tally.start(geo)
    for k, ((first, end), rng) in enumerate(zip(chunks, chunk_rngs, strict=True)):
        report(f"incidents to {clock.date_of(end - 1)}", 0.03 + 0.93 * k / len(chunks))
        events = generate_events(rng, spec, geo, model, rates, plan, clock, first, end)
        place_events(rng, geo, model, events, plan)
        events, waiting = add_near_repeats(rng, spec, geo, model, events, waiting, clock, end)
        incidents = incident_details(rng, spec, geo, model, events, plan, clock, incident_numbers)
        del events
        persons = generate_persons(rng, spec, geo, model, incidents, plan, pools)
        calls = generate_calls(rng, spec, geo, model, incidents, clock, (first, end), incidents_per_year)
        force = generate_use_of_force(rng, spec, geo, model, incidents, clock)
        history = generate_history(rng, spec, model, incidents, clock)
        tally.add(geo, plan, incidents)

        # calls and use of force timed after this chunk's last day wait for the next chunk, so both are
        # written in time order and numbered in it
        until = clock.epoch_seconds + end * 86400 if end < clock.n_days else np.inf
        write_incidents(con, spec, geo, model, incidents, history, ingest_id)
        write_persons(con, spec, incidents, persons)
        write_calls(con, geo, number_calls(calls_due.release(calls, until), call_numbers), call_types, dispositions)
        write_force(con, geo, number_force(force_due.release(force, until), force_numbers))
        del incidents, persons, calls, force, history

    report("surveys and truth", 0.97)
    write_survey(con, generate_survey(survey_rng, spec, geo, tally, plan, clock))
    truth = truth_rows(spec, geo, model, plan, tally, person_stats(pools), clock)
    write_truth(con, truth)
    rows = {
        table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in (
            "areas",
            "incidents",
            "incident_history",
            "incident_persons",
            "calls_for_service",
            "use_of_force",
            "community_survey",
            "demo_truth",
        )
    }
    parameters = {
        "seed": seed,
        "years": years,
        "incidents_per_year": incidents_per_year,
        "end_date": end_date.isoformat(),
        "start_date": start_date.isoformat(),
        "city": spec["city"]["name"],
    }
    write_log(con, ingest_id, started_at, rows["incidents"], parameters, snapshot or snapshot_being_written(con))
    seconds = round(time.perf_counter() - started, 2)
    report("done", 1.0)
    return {
        "city": spec["city"]["name"],
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "seed": seed,
        "chunks": len(chunks),
        "rows": rows,
        "truth_rows": len(truth),
        "seconds": seconds,
        "truth": [dict(t, start_date=t["start_date"].isoformat(), end_date=t["end_date"].isoformat()) for t in truth],
    }


def _check_size(years: int, incidents_per_year: int) -> None:
    if years < 1:
        raise DemoError("years must be at least 1")
    if incidents_per_year < 5_000:
        raise DemoError("incidents_per_year must be at least 5,000 for the planted truths to be visible")


def build_demo_warehouse(directory, **kwargs) -> dict:
    """Build the demo city as a fresh snapshot in ``directory`` (a warehouse folder) and make it current.

    Takes the same keyword arguments as ``build_demo``; returns its summary plus the new snapshot's version.
    """
    warehouse = Warehouse(directory)
    shown = {"seed": 7, "years": 3, "incidents_per_year": 150_000, "end_date": DEFAULT_END_DATE}
    shown.update({k: v for k, v in kwargs.items() if k in shown})
    _check_size(shown["years"], shown["incidents_per_year"])
    note = "demo city " + ", ".join(f"{k}={v}" for k, v in shown.items())
    with warehouse.write(kind="demo", fresh=True, note=note) as con:
        summary = build_demo(con, snapshot=getattr(warehouse, "writing_version", None), **kwargs)
    summary["snapshot"] = warehouse.current_version()
    summary["directory"] = str(warehouse.directory)
    return summary


def table_checksums(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum (sum of row hashes mod 2^64, hex) per data table."""
    result = {}
    for table in CHECKSUM_TABLES:
        count, total = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) % 18446744073709551616 FROM {table} AS t"
        ).fetchone()
        result[table] = (int(count), f"{int(total):016x}")
    return result
