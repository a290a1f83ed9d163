"""The demo city's calls for service: calls about its incidents (with duplicates) and calls about no
recorded crime, with priorities, dispositions and response times."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ilp.demo.clock import Clock, YearSequence, timestamps
from ilp.demo.geography import Geography
from ilp.demo.incidents import Incidents
from ilp.demo.offences import OffenceModel, normalised, profile


def call_names(spec, model: OffenceModel) -> tuple[list[str], list[str]]:
    """The call type names and disposition names that calls' codes index."""
    cats = [model.category_spec[c] for c in model.category_names]
    nc = spec["non_crime_calls"]
    call_types = sorted(
        {c["call"] for c in cats if "call" in c} | {"DOMESTIC DISTURBANCE"} | {t[0] for t in nc["types"]}
    )
    dispositions = ["DUPLICATE", "ARREST", "REPORT TAKEN", "CANCELLED"] + [d[0] for d in nc["dispositions"]]
    return call_types, dispositions


def generate_calls(
    rng,
    spec,
    geo: Geography,
    model: OffenceModel,
    incidents: Incidents,
    clock: Clock,
    days: tuple[int, int],
    incidents_per_year: float,
) -> pd.DataFrame:
    """One chunk's calls for service, about its incidents and on its ``days`` (first, end exclusive), with
    call_type/disposition as codes (``call_names``) and times in epoch seconds (-1 for none), not yet in order.

    Every reported (non-proactive) incident brings one call and sometimes duplicates; calls about no
    recorded crime (collisions, alarms, welfare checks, ...) are a stationary Poisson stream per beat.
    """
    ev = incidents.events
    category = model.code_category[ev.code]
    cats = [model.category_spec[c] for c in model.category_names]
    nc = spec["non_crime_calls"]
    types = nc["types"]
    call_types, _ = call_names(spec, model)

    has_call = np.array([("call" in c) and not c["proactive"] for c in cats])[category]
    call_rate = np.array([c.get("call_rate", 1.0) for c in cats])[category]
    calling = np.flatnonzero(has_call & (rng.random(len(ev)) < call_rate))
    extra_calls = np.array([c.get("extra_calls", 0.0) for c in cats])[category[calling]]
    n_calls = 1 + rng.poisson(extra_calls)
    incident = np.repeat(calling, n_calls)
    duplicate = np.ones(len(incident), dtype=bool)
    duplicate[np.r_[0, np.cumsum(n_calls)[:-1]]] = False
    type_of_category = np.array([call_types.index(c["call"]) if "call" in c else -1 for c in cats])
    crime_type = type_of_category[category[incident]]
    violent_dv = incidents.domestic[incident] & np.isin(
        np.array(model.categories)[ev.code[incident]], ["violence_with_injury", "violence_without_injury"]
    )
    crime_type[violent_dv] = call_types.index("DOMESTIC DISTURBANCE")
    priority_mix = np.array([c.get("priority", [0, 0, 1, 0]) for c in cats], dtype=float)
    priority_by_incident = np.zeros(len(ev), dtype=np.int64)
    for k in range(len(cats)):
        pick = calling[category[calling] == k]
        priority_by_incident[pick] = 1 + rng.choice(4, size=len(pick), p=normalised(priority_mix[k]))
    crime_received = incidents.reported[incident] + np.where(duplicate, rng.integers(20, 900, len(incident)), 0)
    crime_disposition = np.where(duplicate, 0, np.where(incidents.arrest[incident], 1, 2))

    weight = geo.beat_population**0.9 * np.exp(0.3 * geo.beat_deprivation)
    per_day = nc["per_incident"] * incidents_per_year / 365.25
    first = max(days[0], 0)
    dates = clock.dates(first)[: days[1] - first]
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    season = 1.0 + nc["season"][0] * np.cos(2 * np.pi * (doy - nc["season"][1]) / 365.25)
    means = (
        (weight / weight.sum())[:, None, None]
        * (per_day * normalised([t[1] for t in types]))[None, :, None]
        * season[None, None, :]
    )
    counts = rng.poisson(means)
    flat = np.flatnonzero(counts)
    other_beat, kind, day = np.unravel_index(np.repeat(flat, counts.ravel()[flat]), counts.shape)
    hours = rng.choice(24, size=len(day), p=profile(spec, "hours", nc["hours"]))
    other_received = clock.epoch_seconds + (first + day) * 86400 + hours * 3600 + rng.integers(0, 3600, len(day))
    other_priority = np.zeros(len(day), dtype=np.int64)
    for t, row in enumerate(types):
        pick = np.flatnonzero(kind == t)
        other_priority[pick] = 1 + rng.choice(4, size=len(pick), p=normalised(row[2:6]))
    other_disposition = 4 + rng.choice(
        len(nc["dispositions"]), size=len(day), p=normalised([d[1] for d in nc["dispositions"]])
    )

    received = np.minimum(np.r_[crime_received, other_received], clock.end_seconds)
    priority = np.r_[priority_by_incident[incident], other_priority]
    call_type = np.r_[crime_type, np.array([call_types.index(t[0]) for t in types])[kind]]
    beat = np.r_[ev.beat[incident], other_beat]
    disposition = np.r_[crime_disposition, other_disposition]
    duplicate = np.r_[duplicate, np.zeros(len(day), dtype=bool)]

    # response times: lognormal dispatch delay and travel, slower at night and in outer districts
    resp = spec["response"]
    n = len(received)
    p = priority - 1
    hour = (received // 3600) % 24
    night = np.where((hour >= 22) | (hour < 6), resp["night_factor"], 1.0)
    district_factor = geo.district_response[geo.beat_district[beat]]
    dispatch = (
        60
        * np.asarray(resp["dispatch_median_min"])[p]
        * night
        * np.exp(np.asarray(resp["dispatch_sigma"])[p] * rng.standard_normal(n))
    )
    travel = (
        60
        * np.asarray(resp["travel_median_min"])[p]
        * night
        * district_factor
        * np.exp(np.asarray(resp["travel_sigma"])[p] * rng.standard_normal(n))
    )
    on_scene = 60 * np.asarray(resp["on_scene_median_min"])[p] * rng.lognormal(0, resp["on_scene_sigma"], n)
    cancelled = ~duplicate & (rng.random(n) < np.asarray(resp["cancelled_share"])[p])
    dispatched = received + np.round(dispatch).astype(np.int64)
    arrived = dispatched + np.round(travel).astype(np.int64)
    cleared = np.where(
        duplicate, received + 60, np.where(cancelled, dispatched + 120, arrived + np.round(on_scene).astype(np.int64))
    )
    dispatched = np.where(duplicate, -1, dispatched)
    arrived = np.where(duplicate | cancelled, -1, arrived)
    disposition = np.where(cancelled, 3, disposition)

    return pd.DataFrame(
        {
            "received": received,
            "dispatched": dispatched,
            "arrived": arrived,
            "cleared": cleared,
            "priority": priority,
            "call_type": call_type,
            "beat": beat,
            "disposition": disposition,
        }
    )


def number_calls(calls: pd.DataFrame, numbers: YearSequence) -> pd.DataFrame:
    """Calls put in their defined order (by time received, then beat, type, priority, dispatch) and numbered
    on within the year (``numbers``), times as timestamps: the rows ``write_calls`` writes."""
    order = np.lexsort(tuple(calls[c].to_numpy() for c in ("dispatched", "priority", "call_type", "beat", "received")))
    calls = calls.iloc[order].reset_index(drop=True)
    calls.insert(0, "seq", 0)
    calls.insert(0, "year", 0)
    calls["year"], calls["seq"] = numbers.number(calls["received"].to_numpy())
    for column in ("received", "dispatched", "arrived", "cleared"):
        calls[column] = timestamps(calls[column].to_numpy())
    return calls
