"""The demo city's incidents: drawn, placed inside their beats, near repeats added, then put in their
final order with times, premises and outcomes.

All vectorised with numpy, one chunk of days at a time on the chunk's own ``Generator``; the functions are
called in a fixed order (``build.build_demo``), which is what makes a seed reproduce the same tables.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import shapely

from ilp.demo.clock import Clock, YearSequence
from ilp.demo.geography import KM_PER_DEGREE_LAT, Geography
from ilp.demo.offences import OffenceModel, day_factors, profile
from ilp.demo.plan import TAG_BACKGROUND, TAG_NEAR_REPEAT, TAG_SERIES, Plan

NEAR_REPEAT_BURN_IN_DAYS = 14
NEAR_REPEAT_SAME_ADDRESS = 0.2  # share of follow-on burglaries at the very same address


@dataclasses.dataclass
class Events:
    """One entry per incident, as parallel numpy arrays."""

    beat: np.ndarray
    code: np.ndarray
    day: np.ndarray
    tag: np.ndarray  # 0 background, 1 series, 2 hot spot phase 1, 3 hot spot phase 2, 4 near repeat
    lon: np.ndarray
    lat: np.ndarray

    def take(self, index) -> Events:
        return Events(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Events)}
        )

    @staticmethod
    def empty() -> Events:
        none = np.zeros(0, dtype=np.int64)
        return Events(beat=none, code=none, day=none, tag=none, lon=np.zeros(0), lat=np.zeros(0))

    def __len__(self) -> int:
        return len(self.beat)


def generate_events(rng, spec, geo, model, rates, plan: Plan, clock: Clock, first: int, end: int) -> Events:
    """The background and planted-stream incidents of days ``first`` to ``end`` (exclusive) of one chunk."""
    dates = clock.dates(first)[: end - first]
    factors = day_factors(spec, model, dates)[model.code_category]  # (codes, days)
    means = rates[:, :, None] * factors[None, :, :]  # (beats, codes, days)
    inter = plan.intervention
    means[inter["beat"], inter["code"], max(inter["first_day"] - first, 0) :] *= inter["effect"]
    counts = rng.poisson(means)
    flat = np.flatnonzero(counts)
    cells = np.repeat(flat, counts.ravel()[flat])
    beat, code, day = np.unravel_index(cells, counts.shape)
    parts = [
        Events(
            beat=beat.astype(np.int64),
            code=code.astype(np.int64),
            day=day.astype(np.int64) + first,
            tag=np.zeros(len(cells), dtype=np.int64),
            lon=np.full(len(cells), np.nan),
            lat=np.full(len(cells), np.nan),
        )
    ]
    for stream in plan.streams:
        days = np.arange(max(stream.first_day, first), min(stream.last_day + 1, end))
        daily = stream.per_day * factors[stream.code, days - first]
        n = rng.poisson(daily)
        stream_days = np.repeat(days, n)
        k = len(stream_days)
        parts.append(
            Events(
                beat=np.full(k, stream.beat),
                code=np.full(k, stream.code),
                day=stream_days,
                tag=np.full(k, stream.tag),
                lon=np.full(k, stream.lon),
                lat=np.full(k, stream.lat),
            )
        )
    return Events.concat(parts)


def place_events(rng, geo: Geography, model: OffenceModel, events: Events, plan: Plan) -> None:
    """Give every event a location inside its beat: near a hot point (or its stream's centre) or anywhere."""
    n = len(events)
    centre_lon, centre_lat = events.lon.copy(), events.lat.copy()  # streams carry their centre
    sigma = np.full(n, np.nan)
    streamed = events.tag != TAG_BACKGROUND
    for stream in plan.streams:
        sigma[events.tag == stream.tag] = stream.sigma_km
    clustering = np.array([model.category_spec[c]["clustering"] for c in model.category_names])
    clustered = (~streamed) & (rng.random(n) < clustering[model.code_category[events.code]])
    for b in range(len(geo.beat_ids)):
        pick = np.flatnonzero(clustered & (events.beat == b))
        hot = geo.hot_points[b]
        which = rng.choice(len(hot), size=len(pick), p=hot[:, 3])
        centre_lon[pick], centre_lat[pick], sigma[pick] = hot[which, 0], hot[which, 1], hot[which, 2]
    events.lon, events.lat = _sample_in_beats(rng, geo, events.beat, centre_lon, centre_lat, sigma)


def _sample_in_beats(rng, geo: Geography, beat, centre_lon, centre_lat, sigma_km):
    """Gaussian around a centre (sigma_km) or uniform where sigma is NaN; resampled until inside the beat."""
    n = len(beat)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    bounds = np.array([p.bounds for p in geo.beat_polygons])
    todo = np.arange(n)
    for attempt in range(60):
        if not len(todo):
            break
        near = ~np.isnan(sigma_km[todo]) & (attempt < 40)
        b = beat[todo]
        x = rng.uniform(bounds[b, 0], bounds[b, 2])
        y = rng.uniform(bounds[b, 1], bounds[b, 3])
        dx, dy = rng.standard_normal(len(todo)), rng.standard_normal(len(todo))
        s = np.where(near, sigma_km[todo], 0.0)
        x = np.where(near, centre_lon[todo] + dx * s / geo.km_per_lon, x).round(6)
        y = np.where(near, centre_lat[todo] + dy * s / KM_PER_DEGREE_LAT, y).round(6)
        inside = _inside_beats(geo, b, x, y)
        lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
        todo = todo[~inside]
    if len(todo):
        raise RuntimeError("could not place demo incidents inside their beats")
    return lon, lat


def _inside_beats(geo: Geography, beat, x, y) -> np.ndarray:
    """Whether each point (x, y) lies inside its beat ``beat``: one vectorised test per beat."""
    inside = np.zeros(len(beat), dtype=bool)
    order = np.argsort(beat, kind="stable")
    splits = np.flatnonzero(np.diff(beat[order])) + 1
    for group in np.split(order, splits):
        if len(group):
            inside[group] = shapely.contains_xy(geo.beat_polygons[beat[group[0]]], x[group], y[group])
    return inside


def add_near_repeats(
    rng, spec, geo: Geography, model: OffenceModel, events: Events, waiting: Events, clock: Clock, end: int
) -> tuple[Events, Events]:
    """Each residential burglary may trigger follow-on burglaries within radius_m in the next window_days.

    ``waiting`` holds follow-ons that earlier chunks drew for days from this chunk on. Returns this chunk's
    incidents (its own, its follow-ons and the waiting ones due before ``end``; burn-in days dropped) and the
    follow-ons still waiting for a later chunk. Follow-ons trigger their own when their chunk comes.
    """
    near = spec["near_repeat"]
    codes = [j for j, c in enumerate(model.categories) if c == near["category"]]
    radius_km = near["radius_m"] / 1000.0
    due = waiting.day < end
    later = [waiting.take(np.flatnonzero(~due))]
    waiting = waiting.take(np.flatnonzero(due))
    parts = [events, waiting]
    parents = Events.concat([events.take(np.flatnonzero(np.isin(events.code, codes))), waiting])
    while len(parents):
        k = rng.poisson(near["branching"], len(parents))
        child = parents.take(np.repeat(np.arange(len(parents)), k))
        n = len(child)
        child.day = child.day + rng.integers(1, near["window_days"] + 1, n)
        child.tag = np.full(n, TAG_NEAR_REPEAT)
        # some at the same address, the rest uniform in a disc of radius_km around the parent
        todo = np.flatnonzero(rng.random(n) >= NEAR_REPEAT_SAME_ADDRESS)
        for _ in range(10):  # redraw those that fall outside the parent's beat; the last few stay put
            r = radius_km * np.sqrt(rng.random(len(todo)))
            angle = rng.uniform(0, 2 * np.pi, len(todo))
            lon = (child.lon[todo] + r * np.cos(angle) / geo.km_per_lon).round(6)
            lat = (child.lat[todo] + r * np.sin(angle) / KM_PER_DEGREE_LAT).round(6)
            inside = _inside_beats(geo, child.beat[todo], lon, lat)
            child.lon[todo[inside]], child.lat[todo[inside]] = lon[inside], lat[inside]
            todo = todo[~inside]
        child = child.take(np.flatnonzero(child.day < clock.n_days))
        now = child.day < end
        later.append(child.take(np.flatnonzero(~now)))
        parents = child.take(np.flatnonzero(now))
        parts.append(parents)
    all_events = Events.concat(parts)
    return all_events.take(np.flatnonzero(all_events.day >= 0)), Events.concat(later)


@dataclasses.dataclass
class Incidents:
    """The final incidents in their defined order (by time, then beat, code, place)."""

    events: Events
    occurred: np.ndarray  # seconds since the epoch
    reported: np.ndarray
    year: np.ndarray
    seq: np.ndarray  # number within its year, from 1
    premise: np.ndarray  # index into premise_names
    premise_names: list[str]
    domestic: np.ndarray
    arrest: np.ndarray
    identified: np.ndarray
    clearance: np.ndarray  # 0 open, 1 cleared_arrest, 2 cleared_other
    missing_location: np.ndarray

    def __len__(self) -> int:
        return len(self.events)


def incident_details(
    rng, spec, geo, model: OffenceModel, events: Events, plan: Plan, clock: Clock, numbers: YearSequence
) -> Incidents:
    """One chunk's incidents in their final order, numbered on from the chunk before (``numbers``)."""
    n = len(events)
    category = model.code_category[events.code]
    hours = np.zeros(n, dtype=np.int64)
    profile_name = np.array([model.category_spec[c]["hours"] for c in model.category_names], dtype=object)[category]
    profile_name[events.tag == TAG_SERIES] = plan.series["hours"]
    for name in spec["hours"]:
        pick = np.flatnonzero(profile_name == name)
        hours[pick] = rng.choice(24, size=len(pick), p=profile(spec, "hours", name))
    occurred = clock.epoch_seconds + events.day * 86400 + hours * 3600 + rng.integers(0, 3600, n)

    order = np.lexsort((events.lat, events.lon, events.code, events.beat, occurred))
    events, occurred, category = events.take(order), occurred[order], category[order]
    year, seq = numbers.number(occurred)

    lag_median = np.array([model.category_spec[c]["report_lag_min"] for c in model.category_names], dtype=float)
    lag = np.round(60 * lag_median[category] * rng.lognormal(0.0, 1.0, n)).astype(np.int64)
    reported = np.minimum(occurred + lag, clock.end_seconds)
    reported = np.maximum(reported, occurred)

    premise_names = sorted({p for names, _ in model.premises for p in names})
    premise = np.zeros(n, dtype=np.int64)
    for j, (names, probs) in enumerate(model.premises):
        pick = np.flatnonzero(events.code == j)
        lookup = np.array([premise_names.index(p) for p in names])
        premise[pick] = lookup[rng.choice(len(names), size=len(pick), p=probs)]

    domestic = rng.random(n) < model.domestic[events.code]
    arrest_p = model.arrest[events.code].copy()
    arrest_p[events.tag == TAG_SERIES] = 0.0  # the series is live: nobody caught yet
    arrest = rng.random(n) < arrest_p
    identified_rate = np.array([model.category_spec[c]["identified"] for c in model.category_names])[category]
    identified_rate = np.maximum(identified_rate, arrest_p)
    identified_rate[events.tag == TAG_SERIES] = plan.series["crew_identified"]
    suspect_p = np.where(arrest_p < 1, (identified_rate - arrest_p) / np.maximum(1 - arrest_p, 1e-9), 0.0)
    identified = arrest | (rng.random(n) < suspect_p)
    cleared_other = ~arrest & (rng.random(n) < model.cleared_other[events.code])
    clearance = np.where(arrest, 1, np.where(cleared_other, 2, 0))
    missing = rng.random(n) < spec["quality"]["missing_location"]
    return Incidents(
        events=events,
        occurred=occurred,
        reported=reported,
        year=year,
        seq=seq,
        premise=premise,
        premise_names=premise_names,
        domestic=domestic,
        arrest=arrest,
        identified=identified,
        clearance=clearance,
        missing_location=missing,
    )
