"""Top threats: which offence x area combinations most deserve the weekly meeting's attention, and why.

A *candidate threat* is an offence category in one area (a beat or a district). Each is scored on the
components of ``data/threat_matrix.toml`` (MoRiLE-style: Management of Risk in Law Enforcement, the
UK police prioritisation matrix feeding the National Intelligence Model's tasking meeting), each
normalised to 0..1:

* **harm** — harm-weighted total over the recent window (28 days ending ``as_of``), with the chosen
  harm index (CCHI by default). Normalised as sqrt(harm / the largest candidate's harm): the square
  root, as for Poisson counts, keeps one homicide from flattening everything else.
* **momentum** — evidence of a *rise*: the recent count against the 12 weeks before it, scaled to 28
  days, by the one-sided Poisson E-test (Krishnamoorthy & Thomson 2004; :mod:`ilp.analytics.stats`).
  Normalised as min(1, -log10(p) / cap). The Poisson z (Wheeler) is reported beside it, and the
  p-values are Benjamini-Hochberg adjusted across all candidates of the ranking at the configured false
  discovery rate: ``significant`` means "a rise that survives the FDR", not "p < 0.05 somewhere in
  thousands of tests".
* **expected_harm** — expected harm next week: an exponentially weighted weekly count over the recent
  and baseline windows (half-life 4 weeks by default) x the harm weight. This is a deliberately simple
  forecast computed in SQL in one pass; ``ilp/analytics/forecast.py`` fits a seasonal GLM per series,
  which is the right tool for one series on a chart but too slow for thousands of candidates a ranking.
* **vulnerability** — the mean of: the share of victims who are repeat victims (2+ incidents in the
  365 days ending ``as_of``, counted by pseudonymous ``person_key``, never named), the share under 18
  or 65+, and the share of incidents flagged domestic. Shares carry 2 pseudo-observations in the
  denominator so one victim of one is not "100%". Without victim records (e.g. Chicago's public
  export) only the domestic share counts.
* **concentration** — the share of recent incidents at repeat locations (the same ``location_text``,
  a block, with 2+ incidents of the category in the area in the window).

The score is the weighted sum of the normalised components (weights divided by their total); a
separate **confidence** (data volume, geocoding, time precision, reporting lag) is reported beside it,
as MoRiLE does, without changing it. Proactive categories (drugs, weapons possession, vehicle
offences) measure police activity, not harm: left out by default (``exclude_proactive``), as the CCHI
does. Non-crime and unmapped categories carry no harm weight and are never candidates.

The heavy lifting is one named query, ``queries/threats_candidates.sql``.

Repeat locations and repeat victims, the two other kinds of problem a commander can task, are in
:mod:`ilp.analytics.repeats`.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from ilp import paths
from ilp.analytics.stats import benjamini_hochberg, poisson_e_test, poisson_z
from ilp.errors import UserError
from ilp.snapshot import SnapshotInfo
from ilp.warehouse import run_query

LEVELS = ("beat", "district", "city")  # 'city': one area, citywide (data placed in neither beats nor districts)
COMPONENTS = ("harm", "momentum", "expected_harm", "vulnerability", "concentration")
CONFIDENCE_PARTS = ("volume", "geocoded", "precision", "timeliness")


class ThreatError(UserError, ValueError):
    """A problem with the request a user can fix (unknown level or harm index, no data, ...)."""


# ------------------------------------------------------------------------------------------- matrix
def matrix_path() -> Path:
    return paths.DATA_DIR / "threat_matrix.toml"


def load_matrix(path: str | Path | None = None) -> dict:
    """The threat matrix (``data/threat_matrix.toml`` unless ``path``), checked for the keys used."""
    path = Path(path) if path is not None else matrix_path()
    with open(path, "rb") as handle:
        matrix = tomllib.load(handle)
    required = {
        "windows": ("recent_days", "baseline_weeks"),
        "components": COMPONENTS,
        "scaling": ("momentum_log10p_cap", "forecast_half_life_weeks", "share_prior"),
        "significance": ("false_discovery_rate", "min_baseline_for_percent", "exclude_proactive", "repeat_victim_days"),
        "confidence": (*CONFIDENCE_PARTS, "volume_full", "timely_days", "high", "medium"),
    }
    if "version" not in matrix:
        raise ThreatError(f"{path}: no `version` key")
    for section, keys in required.items():
        missing = [k for k in keys if k not in matrix.get(section, {})]
        if missing:
            raise ThreatError(f"{path}: [{section}] is missing {', '.join(missing)}")
    if sum(float(matrix["components"][c]) for c in COMPONENTS) <= 0:
        raise ThreatError(f"{path}: the [components] weights must not all be 0")
    fdr = float(matrix["significance"]["false_discovery_rate"])
    if not 0 < fdr < 1:
        raise ThreatError(f"{path}: false_discovery_rate must be between 0 and 1, not {fdr}")
    return matrix


# ------------------------------------------------------------------------------------------ context
def require_as_of(info: SnapshotInfo) -> dt.date:
    """The Sunday ending the last complete week in the data (the brief's default)."""
    as_of = info.default_as_of()
    if as_of is None:
        raise ThreatError("the warehouse holds no incidents with an occurrence date")
    return as_of


def resolve_level(info: SnapshotInfo, level: str | None) -> str:
    """The level to rank at: ``level`` when the data has it, the lowest level the data has when None."""
    if level is None:
        return info.lowest_level
    if level not in LEVELS:
        raise ThreatError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if not info.has_level(level):
        have = ", ".join(info.ranking_levels)
        raise ThreatError(
            f"this warehouse records no {level}s, so threats cannot be ranked by {level}; it has: {have} "
            f"(leave the level out for the lowest, {info.lowest_level})"
        )
    return level


def parse_harm(spec: str) -> tuple[str, str]:
    """'cchi:2016' -> ('cchi', '2016')."""
    name, sep, version = spec.partition(":")
    if not sep or not name or not version:
        raise ThreatError(f"--harm takes INDEX:VERSION, e.g. cchi:2016 (got {spec!r})")
    return name, version


def resolve_harm(info: SnapshotInfo, harm_index: str | None, harm_version: str | None) -> tuple[str, str]:
    """The harm index to use: the snapshot's default when neither is given; checked to exist."""
    if harm_index is None and harm_version is None:
        if info.default_harm is None:
            raise ThreatError("this snapshot holds no harm index (see `ilp status`)")
        return info.default_harm.name, info.default_harm.version
    if harm_index is None or harm_version is None:
        raise ThreatError("give both a harm index and its version, e.g. cchi:2016")
    if not info.has_harm(harm_index, harm_version):
        raise ThreatError(f"no harm index {harm_index}:{harm_version} in this snapshot (see `ilp status`)")
    return harm_index, harm_version


# ------------------------------------------------------------------------------------------ ranking
def rank_threats(
    con,
    *,
    as_of: dt.date | None = None,
    level: str | None = None,
    harm_index: str | None = None,
    harm_version: str | None = None,
    top: int | None = None,
    matrix: dict | None = None,
    district: str | None = None,
) -> pd.DataFrame:
    """Rank every candidate threat (offence category x area at ``level``) as of ``as_of``.

    ``level`` is 'beat', 'district' or 'city' (offence categories citywide); None means the lowest level
    the data has (:attr:`SnapshotInfo.lowest_level`), and a level the data does not record is refused
    (:func:`resolve_level`). ``as_of`` defaults to the last complete week's Sunday in the data; the harm index to the snapshot's
    default; ``matrix`` to :func:`load_matrix`. ``district`` (optional) restricts the candidates, and so
    the family of tests the false discovery rate is controlled over, to one district. Returns one row
    per candidate, best first, ``top`` rows (all when None), with columns::

        rank, area, area_name, level, offense_category, category_label, proactive, sensitive,
        score, components (dict), harm, baseline_harm, count, baseline, baseline_count, ratio,
        z, p_value, q_value, significant, expected_harm, vulnerability, concentration,
        victims, victims_under_18, victims_65_plus, repeat_victims, domestic_share,
        repeat_locations, at_repeat_locations, top_location, top_location_incidents,
        confidence, confidence_label, confidence_parts (dict), explanation,
        as_of, harm_index, harm_version, matrix_version, candidates

    ``count`` is incidents in the recent window, ``baseline`` the count expected over the same days from
    the baseline weeks, ``ratio`` count / baseline (NaN when the baseline expects fewer than
    ``min_baseline_for_percent``), ``p_value`` the one-sided E-test for a rise and ``q_value`` its
    Benjamini-Hochberg adjustment over all ``candidates``.
    """
    matrix = matrix if matrix is not None else load_matrix()
    info = SnapshotInfo.read(con)
    level = resolve_level(info, level)
    as_of = as_of or require_as_of(info)
    harm_index, harm_version = resolve_harm(info, harm_index, harm_version)

    windows, scaling, significance = matrix["windows"], matrix["scaling"], matrix["significance"]
    recent_days = int(windows["recent_days"])
    baseline_days = 7 * int(windows["baseline_weeks"])
    decay = 0.5 ** (1.0 / float(scaling["forecast_half_life_weeks"]))
    params = {
        "as_of": as_of,
        "level": level,
        "harm_index": harm_index,
        "harm_version": harm_version,
        "recent_days": recent_days,
        "baseline_weeks": int(windows["baseline_weeks"]),
        "decay": decay,
        "repeat_victim_days": int(significance["repeat_victim_days"]),
        "timely_days": float(matrix["confidence"]["timely_days"]),
        "exclude_proactive": bool(significance["exclude_proactive"]),
        "district": district,
    }
    rows = run_query(con, "threats_candidates", params)
    recent_start = as_of + dt.timedelta(days=1 - recent_days)
    # a baseline reaching back before the data starts counts only the days the data covers
    covered = info.days_covered(recent_start - dt.timedelta(days=baseline_days), recent_start)
    frame = _score(rows, matrix, recent_days=recent_days, baseline_days=covered, decay=decay)
    frame["level"] = level
    frame["as_of"] = as_of
    frame["harm_index"] = harm_index
    frame["harm_version"] = harm_version
    frame["matrix_version"] = str(matrix["version"])
    if top is not None:
        frame = frame.head(int(top))
    frame = frame.copy()
    records = frame.to_dict(orient="records")  # plain dicts: far faster than iterrows for thousands of rows
    frame["components"] = [_components(record, matrix) for record in records]
    frame["confidence_parts"] = [
        {part: _clean(record[f"confidence_{part}"]) for part in CONFIDENCE_PARTS} for record in records
    ]
    frame["explanation"] = [_explain(record, matrix) for record in records]
    return frame[OUTPUT_COLUMNS].reset_index(drop=True)


OUTPUT_COLUMNS = [
    "rank",
    "area",
    "area_name",
    "level",
    "offense_category",
    "category_label",
    "proactive",
    "sensitive",
    "score",
    "components",
    "harm",
    "baseline_harm",
    "count",
    "baseline",
    "baseline_count",
    "ratio",
    "z",
    "p_value",
    "q_value",
    "significant",
    "expected_harm",
    "vulnerability",
    "concentration",
    "victims",
    "victims_under_18",
    "victims_65_plus",
    "repeat_victims",
    "domestic_share",
    "repeat_locations",
    "at_repeat_locations",
    "top_location",
    "top_location_incidents",
    "confidence",
    "confidence_label",
    "confidence_parts",
    "explanation",
    "as_of",
    "harm_index",
    "harm_version",
    "matrix_version",
    "candidates",
]


def _score(rows: pd.DataFrame, matrix: dict, *, recent_days: int, baseline_days: int, decay: float) -> pd.DataFrame:
    """Components, significance, score, confidence and rank for the candidate rows (vectorised)."""
    weights = {c: float(matrix["components"][c]) for c in COMPONENTS}
    scaling, significance, conf = matrix["scaling"], matrix["significance"], matrix["confidence"]
    prior = float(scaling["share_prior"])
    frame = pd.DataFrame(
        {
            "area": rows["area_id"].astype(str),
            "area_name": rows["area_name"].astype(str),
            "offense_category": rows["category"],
            "category_label": rows["category_label"],
            "proactive": rows["proactive"].astype(bool),
            "sensitive": rows["sensitive"].astype(bool),
        }
    )
    count = rows["recent_count"].to_numpy(dtype=float)
    baseline_count = rows["baseline_count"].to_numpy(dtype=float)
    weight = rows["weight"].to_numpy(dtype=float)
    # baseline_days: the days of the baseline window the data covers (0: the data starts inside the recent
    # window, so there is no baseline: no z, no test, no rise)
    with np.errstate(divide="ignore", invalid="ignore"):
        baseline = baseline_count * recent_days / baseline_days if baseline_days else np.full(len(rows), np.nan)
    frame["count"] = count.astype(int)
    frame["baseline_count"] = baseline_count.astype(int)
    frame["baseline"] = baseline
    frame["harm"] = count * weight
    frame["baseline_harm"] = baseline * weight
    min_baseline = float(significance["min_baseline_for_percent"])
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["ratio"] = np.where(baseline >= min_baseline, count / baseline, np.nan)

    # momentum: one-sided E-test for a rise, BH across every candidate of this ranking
    frame["z"] = poisson_z(count, baseline)
    if len(frame) and baseline_days:
        _, p_value = poisson_e_test(count, recent_days, baseline_count, baseline_days, alternative="larger")
    else:
        p_value = np.ones(len(frame))
    q_value, significant = benjamini_hochberg(p_value, float(significance["false_discovery_rate"]))
    frame["p_value"] = p_value
    frame["q_value"] = q_value
    frame["significant"] = significant.astype(bool)
    frame["candidates"] = len(frame)

    # expected harm next week: exponentially weighted weekly count x weight
    frame["expected_harm"] = (
        rows["weighted_count"].to_numpy(dtype=float) / _weekly_normaliser(decay, recent_days + baseline_days) * weight
    )

    # vulnerability and concentration (shares with `prior` pseudo-observations)
    victims = rows["victims"].to_numpy(dtype=float)
    frame["victims"] = victims.astype(int)
    for column in ("victims_under_18", "victims_65_plus", "repeat_victims", "repeat_locations", "at_repeat_locations"):
        frame[column] = rows[column].to_numpy(dtype=int)
    frame["top_location"] = rows["top_location"].where(~frame["sensitive"], None)
    frame["top_location_incidents"] = rows["top_location_incidents"]
    domestic_share = rows["recent_domestic"].to_numpy(dtype=float) / (count + prior)
    domestic = rows["recent_domestic"].to_numpy(dtype=float)
    frame["domestic_share"] = np.where(count > 0, domestic / np.maximum(count, 1), np.nan)
    parts = [domestic_share]
    if victims.sum() > 0:  # the warehouse records victims: their shares count too
        young_or_old = rows["victims_under_18"].to_numpy(dtype=float) + rows["victims_65_plus"].to_numpy(dtype=float)
        parts.append(rows["repeat_victims"].to_numpy(dtype=float) / (victims + prior))
        parts.append(young_or_old / (victims + prior))
    frame["vulnerability"] = np.mean(parts, axis=0)
    frame["concentration"] = rows["at_repeat_locations"].to_numpy(dtype=float) / (count + prior)

    # normalised components and the score
    cap = float(scaling["momentum_log10p_cap"])
    normalised = {
        "harm": _sqrt_share(frame["harm"].to_numpy()),
        "momentum": np.minimum(1.0, -np.log10(np.clip(p_value, 1e-300, 1.0)) / cap),
        "expected_harm": _sqrt_share(frame["expected_harm"].to_numpy()),
        "vulnerability": np.clip(frame["vulnerability"].to_numpy(), 0, 1),
        "concentration": np.clip(frame["concentration"].to_numpy(), 0, 1),
    }
    total = sum(weights.values())
    score = np.zeros(len(frame))
    for name in COMPONENTS:
        frame[f"score_{name}"] = normalised[name]
        score = score + weights[name] * normalised[name]
    frame["score"] = score / total

    # confidence (beside the score, not in it)
    volume = np.minimum(1.0, (count + baseline_count) / float(conf["volume_full"]))
    in_both = np.maximum(count + baseline_count, 1)
    with_time = rows["recent_with_report_time"].to_numpy(dtype=float)
    confidence_parts = {
        "volume": volume,
        "geocoded": rows["geocoded"].to_numpy(dtype=float) / in_both,
        "precision": rows["precise"].to_numpy(dtype=float) / in_both,
        # unknown when no recent incident has a report time: left out of the mean
        "timeliness": np.where(
            with_time > 0, rows["recent_timely"].to_numpy(dtype=float) / np.maximum(with_time, 1), np.nan
        ),
    }
    numerator = np.zeros(len(frame))
    denominator = np.zeros(len(frame))
    for part in CONFIDENCE_PARTS:
        values = confidence_parts[part]
        frame[f"confidence_{part}"] = values
        known = ~np.isnan(values)
        numerator += np.where(known, float(conf[part]) * np.nan_to_num(values), 0.0)
        denominator += np.where(known, float(conf[part]), 0.0)
    frame["confidence"] = np.where(denominator > 0, numerator / np.maximum(denominator, 1e-12), 0.0)
    frame["confidence_label"] = np.select(
        [frame["confidence"] >= float(conf["high"]), frame["confidence"] >= float(conf["medium"])],
        ["high", "medium"],
        default="low",
    )

    frame = frame.sort_values(
        ["score", "harm", "area", "offense_category"], ascending=[False, False, True, True], kind="stable"
    )
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


def _weekly_normaliser(decay: float, days: int) -> float:
    """Sum of the weekly decay weights over ``days`` days, in weeks: turns the weighted count into a weekly rate."""
    ages = np.arange(days) // 7
    return float((decay**ages).sum() / 7.0)


def _sqrt_share(values: np.ndarray) -> np.ndarray:
    largest = float(np.max(values)) if len(values) else 0.0
    if largest <= 0:
        return np.zeros(len(values))
    return np.sqrt(np.clip(values, 0, None) / largest)


def _clean(value):
    """A JSON-able scalar: numpy types to Python, NaN to None."""
    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _components(row: dict, matrix: dict) -> dict:
    """The ``components`` dict of one threat: each component's normalised score, weight, contribution
    to the score, raw value and the facts behind it."""
    weights = {c: float(matrix["components"][c]) for c in COMPONENTS}
    total = sum(weights.values())
    components = {}
    for name in COMPONENTS:
        score = float(row[f"score_{name}"])
        components[name] = {
            "score": round(score, 4),
            "weight": round(weights[name] / total, 4),
            "contribution": round(weights[name] / total * score, 4),
        }
    components["harm"]["value"] = _clean(row["harm"])
    components["momentum"].update(
        value=_clean(row["p_value"]),
        z=_clean(row["z"]),
        q_value=_clean(row["q_value"]),
        significant=bool(row["significant"]),
    )
    components["expected_harm"]["value"] = _clean(row["expected_harm"])
    components["vulnerability"].update(
        value=_clean(row["vulnerability"]),
        victims=int(row["victims"]),
        victims_under_18=int(row["victims_under_18"]),
        victims_65_plus=int(row["victims_65_plus"]),
        repeat_victims=int(row["repeat_victims"]),
        domestic_share=_clean(row["domestic_share"]),
    )
    components["concentration"].update(
        value=_clean(row["concentration"]),
        repeat_locations=int(row["repeat_locations"]),
        incidents_at_repeat_locations=int(row["at_repeat_locations"]),
    )
    return components


# -------------------------------------------------------------------------------------- explanation
def _explain(row: dict, matrix: dict) -> str:
    """One plain-language line: what, where, how far above baseline, how sure, who and where it falls on."""
    recent_days = int(matrix["windows"]["recent_days"])
    weeks = int(matrix["windows"]["baseline_weeks"])
    fdr = float(matrix["significance"]["false_discovery_rate"])
    if row["level"] == "city":
        place = "the whole city"
    else:
        place = f"{row['level']} {row['area']}"
        if row["area_name"] != row["area"]:
            place += f" ({row['area_name']})"
    count, baseline = int(row["count"]), float(row["baseline"])
    if math.isnan(baseline):
        change = (
            f"{count} incident{'s' if count != 1 else ''} in {recent_days} days, no baseline (the data starts "
            f"inside the {recent_days} days)"
        )
    elif not math.isnan(row["ratio"]):
        change = (
            f"harm {row['ratio']:.1f}x its {weeks}-week baseline ({count} incidents in {recent_days} days "
            f"vs {baseline:.1f} expected)"
        )
    else:
        change = (
            f"{count} incident{'s' if count != 1 else ''} in {recent_days} days vs {baseline:.1f} expected "
            f"from its {weeks}-week baseline"
        )
    if math.isnan(row["z"]):
        verdict = "no test of a rise"
    elif row["significant"]:
        verdict = f"z = {row['z']:.1f} (significant at FDR {fdr:.0%})"
    elif row["z"] > 0:
        verdict = f"z = {row['z']:.1f} (not significant at FDR {fdr:.0%})"
    else:
        verdict = f"z = {row['z']:.1f} (no rise)"
    facts = [f"{row['category_label']} in {place}: {change}, {verdict}"]

    victims = int(row["victims"])
    if victims:
        young, old, repeat = int(row["victims_under_18"]), int(row["victims_65_plus"]), int(row["repeat_victims"])
        if young >= 2 and young >= old:
            facts.append(f"{young} of {victims} victims under 18")
        elif old >= 2:
            facts.append(f"{old} of {victims} victims aged 65+")
        if repeat >= 2:
            facts.append(f"{repeat} of {victims} victims are repeat victims")
    domestic = row["domestic_share"]
    if count >= 3 and not math.isnan(domestic) and domestic >= 0.3:
        facts.append(f"{domestic:.0%} domestic")
    at_repeat = int(row["at_repeat_locations"])
    if at_repeat >= 2:
        where = f"{at_repeat} of {count} at repeat locations"
        if isinstance(row["top_location"], str) and not row["sensitive"]:
            where += f" (most at {row['top_location']}: {int(row['top_location_incidents'])})"
        facts.append(where)
    if row["confidence_label"] == "low":
        facts.append(f"low confidence ({_weakest_part(row, matrix)})")
    return "; ".join(facts)


def _weakest_part(row: dict, matrix: dict) -> str:
    weeks = int(matrix["windows"]["baseline_weeks"]) + int(matrix["windows"]["recent_days"]) / 7
    texts = {
        "volume": lambda v: f"only {int(row['count'] + row['baseline_count'])} incidents in {weeks:g} weeks",
        "geocoded": lambda v: f"{v:.0%} geocoded",
        "precision": lambda v: f"{v:.0%} timed to the day",
        "timeliness": lambda v: f"{v:.0%} reported within a week",
    }
    known = {p: row[f"confidence_{p}"] for p in CONFIDENCE_PARTS if not pd.isna(row[f"confidence_{p}"])}
    weakest = min(known, key=known.get)
    return texts[weakest](known[weakest])


# -------------------------------------------------------------------------------------------- output
def to_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-able dicts, one per threat, in rank order (NaN -> None, dates -> ISO strings)."""
    records = []
    for row in frame.to_dict(orient="records"):
        record = {}
        for key, value in row.items():
            if isinstance(value, dict):
                record[key] = value
            elif isinstance(value, (dt.date, pd.Timestamp)):
                record[key] = value.isoformat()[:10]
            else:
                record[key] = _clean(value)
        records.append(record)
    return records


def format_table(
    frame: pd.DataFrame,
    harm_unit: str | None = None,
    *,
    level: str | None = None,
    as_of: dt.date | None = None,
    notes: tuple[str, ...] = (),
) -> str:
    """The ranking as text for the terminal: one line of numbers and one of explanation per threat.

    Areas and categories are printed whole (the columns are as wide as their longest entry). ``level`` and
    ``as_of`` say what an empty ranking was asked for; ``notes`` (e.g. why the level is not the beat, how
    old the data is) are printed under the header."""
    from ilp.snapshot import area_label

    said = [f"  {note}" for note in notes if note]
    if frame.empty:
        where = f" by {level if level != 'city' else 'offence, citywide'}" if level else ""
        when = f" in the 28 days to {as_of:%Y-%m-%d}" if as_of else " in this window"
        return "\n".join([f"No candidate threats{where}{when}.", *said])
    first = frame.iloc[0]
    by = "offence, citywide" if first["level"] == "city" else first["level"]
    header = (
        f"Top threats as of {first['as_of']} by {by} (harm index {first['harm_index']} "
        f"{first['harm_version']}, threat matrix {first['matrix_version']}; "
        f"{int(first['candidates'])} candidates tested, BH-adjusted)"
    )
    areas = [area_label(lv, a, n) for lv, a, n in zip(frame["level"], frame["area"], frame["area_name"])]
    categories = [str(label) for label in frame["category_label"]]
    area_width = max(4, *(len(a) for a in areas))
    category_width = max(8, *(len(c) for c in categories))
    lines = [header, *said, ""]
    lines.append(
        f"{'#':>3}  {'area':<{area_width}} {'category':<{category_width}} {'score':>5}  {'count':>5} {'base':>6} "
        f"{'z':>5} {'q':>8}  sig  conf"
    )
    for (_, row), area, category in zip(frame.iterrows(), areas, categories):
        lines.append(
            f"{int(row['rank']):>3}  {area:<{area_width}} {category:<{category_width}} "
            f"{row['score']:>5.2f}  {int(row['count']):>5} {_number(row['baseline'], '6.1f')} "
            f"{_number(row['z'], '5.1f')} {row['q_value']:>8.2g}  {'yes' if row['significant'] else ' no'}  "
            f"{row['confidence_label']}"
        )
        lines.append(f"     {row['explanation']}")
    return "\n".join(lines)


def _number(value, spec: str) -> str:
    """``value`` formatted with ``spec`` ('6.1f'), or a dash of the same width when it is missing."""
    width = int(spec.split(".")[0])
    return f"{'-':>{width}}" if value != value else f"{value:>{spec}}"
