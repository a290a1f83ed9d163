"""The planted truths, before any incident is drawn: which beats, codes, days and effect sizes.

An emerging street-robbery series, a moving burglary hot spot (two phases) and a burglary intervention
with a matched control beat. The series and hot spot are extra incident ``Stream``s on top of the
background; the intervention scales the treated beat's background. ``plan_truths`` also thins background
burglary so that near-repeat follow-ons keep the configured share. Each event carries a tag saying which
stream (or the background, or a near repeat) made it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import shapely

from ilp.demo.city_spec import city_spec_path
from ilp.demo.clock import Clock
from ilp.demo.geography import Geography
from ilp.demo.offences import OffenceModel, day_factors

TAG_BACKGROUND, TAG_SERIES, TAG_HOTSPOT_1, TAG_HOTSPOT_2, TAG_NEAR_REPEAT = range(5)


@dataclasses.dataclass
class Stream:
    """Extra incidents planted on top of the background: one beat, one code, a daily mean, a centre."""

    tag: int
    beat: int
    code: int
    first_day: int
    last_day: int  # inclusive
    per_day: float  # annual-average rate, before seasonality
    lon: float
    lat: float
    sigma_km: float


@dataclasses.dataclass
class Plan:
    series: dict
    hotspot: dict
    intervention: dict
    streams: list[Stream]
    near_repeat: dict


def plan_truths(spec: dict, geo: Geography, model: OffenceModel, rates: np.ndarray, clock: Clock) -> Plan:
    truth = spec["truth"]
    near = spec["near_repeat"]
    burglary = model.codes.index(truth["intervention"]["code"])
    near_code = [j for j, c in enumerate(model.categories) if c == near["category"]]
    # background burglary is thinned so that background + follow-on repeats keep the configured share
    rates[:, near_code] *= 1.0 - near["branching"]

    # intervention: treated and control beats get the same baseline residential burglary rate
    inter = truth["intervention"]
    treated, control = geo.beat_index(inter["beat"]), geo.beat_index(inter["control"])
    rates[[treated, control], burglary] = rates[[treated, control], burglary].mean()
    intervention = {
        "beat": treated,
        "control": control,
        "code": model.codes.index(inter["code"]),
        "category": inter["category"],
        "effect": float(inter["effect"]),
        "first_day": clock.n_days - 7 * int(inter["weeks"]),
        "survey_effect": list(inter["survey_effect"]),
        # expected per day before the cut, annual average, including near-repeat follow-ons
        "baseline_per_day": rates[treated, burglary] / (1.0 - near["branching"]),
    }

    # emerging series: (effect - 1) x the beat's baseline robbery, as extra street robberies
    ser = truth["emerging_series"]
    s_beat = geo.beat_index(ser["beat"])
    robbery_codes = [j for j, c in enumerate(model.categories) if c == ser["category"]]
    robbery_base = rates[s_beat, robbery_codes].sum()
    robbery_by_beat = rates[:, robbery_codes].sum(axis=1)
    rank = int((robbery_by_beat > robbery_base).sum()) + 1
    if rank == 1:
        raise ValueError(f"{city_spec_path()}: the emerging series beat must not already be the top robbery beat")
    s_lon, s_lat = _centre_in(geo, s_beat, ser.get("centre", 0.5))
    series = {
        "beat": s_beat,
        "code": model.codes.index(ser["code"]),
        "category": ser["category"],
        "effect": float(ser["effect"]),
        "first_day": clock.n_days - 7 * int(ser["weeks"]),
        "baseline_per_day": robbery_base,
        "rank": rank,
        "lon": s_lon,
        "lat": s_lat,
        "sigma_km": ser["sigma_m"] / 1000.0,
        "hours": ser["hours"],
        "victims": ser["victims"],
        "crew": int(ser["crew"]),
        "crew_identified": float(ser["crew_identified"]),
    }
    streams = [
        Stream(
            TAG_SERIES,
            s_beat,
            series["code"],
            series["first_day"],
            clock.n_days - 1,
            (series["effect"] - 1.0) * robbery_base,
            s_lon,
            s_lat,
            series["sigma_km"],
        )
    ]

    # moving hot spot: phase 1 in from_beat for the first 52 weeks, then phase 2 in to_beat
    hs = truth["moving_hotspot"]
    h_code = model.codes.index(hs["code"])
    beats = [geo.beat_index(hs["from_beat"]), geo.beat_index(hs["to_beat"])]
    switch = 364 if clock.n_days >= 2 * 364 else clock.n_days // 2
    others = np.ones(len(geo.beat_ids), dtype=bool)
    others[beats] = False
    top_other = rates[others, h_code].max()
    phases = []
    for phase, (b, first, last) in enumerate(zip(beats, (0, switch), (switch - 1, clock.n_days - 1), strict=True)):
        multiplier = round(float(hs["dominance"]) * top_other / rates[b, h_code], 2)
        lon, lat = _centre_in(geo, b, 0.6)
        phases.append(
            {
                "beat": b,
                "first_day": first,
                "last_day": last,
                "multiplier": multiplier,
                "lon": lon,
                "lat": lat,
                "baseline_per_day": rates[b, h_code] / (1.0 - near["branching"]),
            }
        )
        streams.append(
            Stream(
                TAG_HOTSPOT_1 + phase,
                b,
                h_code,
                first,
                last,
                (multiplier - 1.0) * rates[b, h_code],
                lon,
                lat,
                hs["sigma_m"] / 1000.0,
            )
        )
    hotspot = {"code": h_code, "category": hs["category"], "phases": phases, "sigma_m": hs["sigma_m"]}
    planted = {treated, control, s_beat, *beats}
    if len(planted) != 5:
        raise ValueError(f"{city_spec_path()}: the planted truths need five different beats")
    return Plan(
        series=series,
        hotspot=hotspot,
        intervention=intervention,
        streams=streams,
        near_repeat=dict(near, codes=near_code),
    )


def expected_counts(spec: dict, model: OffenceModel, rates: np.ndarray, plan: Plan, clock: Clock) -> np.ndarray:
    """Expected incidents per (beat, code) over the whole period (day 0 to the end date): the background with
    its seasons and the intervention's cut, the planted streams, and near-repeat follow-ons. Sizes what is
    planned before any incident is drawn (the pools people are drawn from)."""
    factors = day_factors(spec, model, clock.dates())[model.code_category]  # (codes, days)
    expected = rates * factors.sum(axis=1)[None, :]
    inter = plan.intervention
    cut = factors[inter["code"], inter["first_day"] :].sum()
    expected[inter["beat"], inter["code"]] -= (1.0 - inter["effect"]) * rates[inter["beat"], inter["code"]] * cut
    for stream in plan.streams:
        expected[stream.beat, stream.code] += (
            stream.per_day * factors[stream.code, stream.first_day : stream.last_day + 1].sum()
        )
    expected[:, plan.near_repeat["codes"]] /= 1.0 - plan.near_repeat["branching"]
    return expected


def _centre_in(geo: Geography, beat: int, pull: float) -> tuple[float, float]:
    """A fixed point inside a beat: its strongest hot point pulled towards the beat's centre."""
    polygon = geo.beat_polygons[beat]
    hot = geo.hot_points[beat]
    lon, lat = hot[np.argmax(hot[:, 3]), :2]
    c = polygon.representative_point()
    point = (round(lon + pull * (c.x - lon), 6), round(lat + pull * (c.y - lat), 6))
    if not shapely.contains_xy(polygon, *point):
        point = (round(c.x, 6), round(c.y, 6))
    return point
