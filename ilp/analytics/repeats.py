"""Repeat locations and repeat victims: the two kinds of problem a commander can task beside the ranked
threats (:mod:`ilp.analytics.threats`), both shown on the Command brief.

* :func:`repeat_locations` — blocks with 3+ harm-bearing incidents in the 28 days, ranked by harm, each
  against its 12-week baseline (``queries/threats_repeat_locations.sql``). Sensitive categories
  (homicide, sexual offences) and domestic incidents are left out: their repeat locations are victims'
  homes.
* :func:`repeat_victims` — victims with 2+ incidents in the 365 days and one in the 28, *counted* per
  area and offence category (``queries/threats_repeat_victims.sql``); no person key or per-person row
  ever leaves the query.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ilp.analytics.stats import poisson_z
from ilp.analytics.threats import LEVELS, ThreatError, require_as_of, resolve_harm
from ilp.snapshot import SnapshotInfo
from ilp.warehouse import run_query

# --------------------------------------------------------------------------------- repeat locations
REPEAT_LOCATION_COLUMNS = [
    "rank",
    "location",
    "beat",
    "district",
    "district_name",
    "incidents",
    "harm",
    "categories",
    "category_count",
    "top_category",
    "top_category_label",
    "top_category_incidents",
    "baseline_count",
    "baseline",
    "z",
    "first_seen",
    "last_seen",
    "explanation",
    "as_of",
    "harm_index",
    "harm_version",
]


def repeat_locations(
    con,
    *,
    as_of: dt.date | None,
    district: str | None = None,
    harm_index: str | None = None,
    harm_version: str | None = None,
    min_incidents: int = 3,
    recent_days: int = 28,
    baseline_weeks: int = 12,
    exclude_proactive: bool = True,
    category: str | None = None,
) -> pd.DataFrame:
    """Repeat locations: places (the source's ``location_text``, a block) with ``min_incidents`` or more
    harm-bearing incidents in the ``recent_days`` days ending ``as_of`` (inclusive), ranked by harm.

    Harm uses the chosen index (the snapshot's default when neither ``harm_index`` nor ``harm_version``
    is given, as :func:`rank_threats` does); ``as_of`` None means the last complete week's Sunday.
    Left out, so that no row points at a victim's home: categories flagged ``sensitive`` in
    ``offence_categories`` (homicide, sexual offences) and incidents flagged domestic. Also left out:
    proactive categories when ``exclude_proactive`` (they count police activity, not harm, as the CCHI
    excludes them), categories without a positive harm weight (non-crime, unmapped), incidents without a
    location. ``district`` and ``category`` count only that district's and that offence category's
    incidents. One row per location, highest harm first::

        rank, location, beat, district, district_name, incidents, harm, categories, category_count,
        top_category, top_category_label, top_category_incidents, baseline_count, baseline, z,
        first_seen, last_seen, explanation, as_of, harm_index, harm_version

    ``beat`` and ``district`` are those of most of the location's recent incidents; ``categories`` its
    top three categories as plain labels with counts, highest harm first ("Robbery 4, Other theft 2"),
    and ``top_category`` the first of them; ``baseline`` the incidents expected over ``recent_days`` from
    the ``baseline_weeks`` weeks before (``baseline_count`` scaled), ``z`` the Poisson z of the recent
    count against it; ``first_seen``/``last_seen`` the days of its first and last recent incident.
    """
    info = SnapshotInfo.read(con)
    as_of = as_of or require_as_of(info)
    harm_index, harm_version = resolve_harm(info, harm_index, harm_version)
    if int(min_incidents) < 2:
        raise ThreatError(f"a repeat location has at least 2 incidents (min_incidents {min_incidents})")
    params = {
        "as_of": as_of,
        "district": district,
        "harm_index": harm_index,
        "harm_version": harm_version,
        "min_incidents": int(min_incidents),
        "recent_days": int(recent_days),
        "baseline_weeks": int(baseline_weeks),
        "exclude_proactive": bool(exclude_proactive),
        "category": category,
    }
    frame = run_query(con, "threats_repeat_locations", params)
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["incidents"] = frame["incidents"].astype(int)
    frame["harm"] = frame["harm"].astype(float)
    frame["baseline_count"] = frame["baseline_count"].astype(int)
    # the baseline counts only the days the data covers (it may start inside the baseline weeks)
    recent_start = as_of + dt.timedelta(days=1 - int(recent_days))
    covered = info.days_covered(recent_start - dt.timedelta(weeks=int(baseline_weeks)), recent_start)
    frame["baseline"] = frame["baseline_count"] * int(recent_days) / covered if covered else np.nan
    frame["z"] = poisson_z(frame["incidents"], frame["baseline"])
    for column in ("first_seen", "last_seen"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    frame["explanation"] = [
        _explain_location(record, recent_days=int(recent_days), baseline_weeks=int(baseline_weeks))
        for record in frame.to_dict(orient="records")
    ]
    frame["as_of"] = as_of
    frame["harm_index"] = harm_index
    frame["harm_version"] = harm_version
    return frame[REPEAT_LOCATION_COLUMNS].reset_index(drop=True)


def _explain_location(row: dict, *, recent_days: int, baseline_weeks: int) -> str:
    """'011XX S CANAL ST (beat 0123, district 001): 7 incidents in 28 days vs 1.2 expected ...'; the
    district by its name when it has one ('86XX BLOCK OF 48TH AVE (beat 1A, Harbour): ...')."""
    where = [f"beat {row['beat']}"] if isinstance(row["beat"], str) else []
    if isinstance(row["district"], str):
        named = isinstance(row["district_name"], str) and row["district_name"] != row["district"]
        where.append(row["district_name"] if named else f"district {row['district']}")
    place = f"{row['location']} ({', '.join(where)})" if where else row["location"]
    count = int(row["incidents"])
    kinds = row["categories"]
    more = int(row["category_count"]) - 3
    if more > 0:
        kinds += f" and {more} more categor{'ies' if more > 1 else 'y'}"
    days = (
        f"on {row['first_seen']:%d %b}"
        if row["first_seen"] == row["last_seen"]
        else f"from {row['first_seen']:%d %b} to {row['last_seen']:%d %b}"
    )
    if row["baseline"] != row["baseline"]:  # NaN: the data starts inside the recent window
        return f"{place}: {count} incidents in {recent_days} days (no baseline: the data starts later); {kinds}; {days}"
    return (
        f"{place}: {count} incidents in {recent_days} days vs {row['baseline']:.1f} expected from its "
        f"{baseline_weeks}-week baseline (z = {round(row['z'], 1) + 0.0:+.1f}); {kinds}; {days}"
    )


# ----------------------------------------------------------------------------------- repeat victims
REPEAT_VICTIM_COLUMNS = [
    "area",
    "area_name",
    "level",
    "offense_category",
    "category_label",
    "repeat_victims",
    "incidents_recent",
    "incidents_window",
    "under_18",
    "aged_65_plus",
    "domestic_share",
    "explanation",
    "as_of",
]


def repeat_victims(
    con,
    *,
    as_of: dt.date | None,
    district: str | None = None,
    level: str = "district",
    recent_days: int = 28,
    window_days: int = 365,
    category: str | None = None,
) -> pd.DataFrame:
    """Repeat victims, counted per area and offence category: never named, never one row per person.

    A repeat victim is a victim (``incident_persons`` role 'victim', by pseudonymous ``person_key``) with
    2+ incidents in the ``window_days`` days ending ``as_of`` (inclusive; any category, anywhere) and at
    least one in the ``recent_days`` days ending ``as_of``. Each is counted in every (area at ``level``,
    offence category) of their recent incidents; ``district`` and ``category`` keep only that district's
    and that category's recent incidents (what makes a victim a repeat victim is never filtered).
    ``as_of`` None means the last complete week's Sunday. Most victims first::

        area, area_name, level, offense_category, category_label, repeat_victims, incidents_recent,
        incidents_window, under_18, aged_65_plus, domestic_share, explanation, as_of

    ``incidents_recent`` counts those victims' recent incidents of the category in the area,
    ``incidents_window`` all their incidents in the window (any category, anywhere), ``under_18`` and
    ``aged_65_plus`` the victims in that age band at a recent incident there, ``domestic_share`` the
    share of the recent incidents flagged domestic. The frame holds no ``person_key`` and no row per
    person. Empty when the warehouse has no victim records (Chicago's public export publishes none:
    the ``threats_victim_records`` query counts them).
    """
    if level not in LEVELS:
        raise ThreatError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if as_of is None:
        as_of = require_as_of(SnapshotInfo.read(con))
    if int(window_days) < int(recent_days):
        raise ThreatError(f"window_days ({window_days}) must cover recent_days ({recent_days})")
    params = {
        "as_of": as_of,
        "district": district,
        "level": level,
        "recent_days": int(recent_days),
        "window_days": int(window_days),
        "category": category,
    }
    rows = run_query(con, "threats_repeat_victims", params)
    frame = pd.DataFrame(
        {
            "area": rows["area"].astype(str),
            "area_name": rows["area_name"].astype(str),
            "level": level,
            "offense_category": rows["offense_category"],
            "category_label": rows["category_label"],
        }
    )
    for column in ("repeat_victims", "incidents_recent", "incidents_window", "under_18", "aged_65_plus"):
        frame[column] = rows[column].astype(int)
    frame["domestic_share"] = rows["domestic_recent"].astype(float) / rows["incidents_recent"].clip(lower=1)
    frame["explanation"] = [
        _explain_victims(record, recent_days=int(recent_days), window_days=int(window_days))
        for record in frame.to_dict(orient="records")
    ]
    frame["as_of"] = as_of
    return frame[REPEAT_VICTIM_COLUMNS].reset_index(drop=True)


def _explain_victims(row: dict, *, recent_days: int, window_days: int) -> str:
    """'9 repeat victims of Violence with injury in district 3 (Harbour): 11 incidents in 28 days ...'."""
    if row["level"] == "city":
        place = "the whole city"
    else:
        place = f"{row['level']} {row['area']}"
        if row["area_name"] != row["area"]:
            place += f" ({row['area_name']})"
    victims = int(row["repeat_victims"])
    facts = [
        f"{victims} repeat victim{'s' if victims != 1 else ''} of {row['category_label']} in {place}: "
        f"{int(row['incidents_recent'])} incident{'s' if row['incidents_recent'] != 1 else ''} in {recent_days} days, "
        f"{int(row['incidents_window'])} in all (any offence, anywhere) in {window_days} days"
    ]
    if row["under_18"]:
        facts.append(f"{int(row['under_18'])} under 18")
    if row["aged_65_plus"]:
        facts.append(f"{int(row['aged_65_plus'])} aged 65+")
    if row["domestic_share"] > 0:
        facts.append(f"{row['domestic_share']:.0%} domestic")
    return "; ".join(facts)
