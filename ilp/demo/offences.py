"""The demo city's offence model: its codes and their parameters, and the expected rate per (beat, code, day).

Background counts are Poisson per (beat, offence code, day) with mean
``rate[beat, code] x season[category, day] x weekday[category, day]``; this module gives the two factors.
It also holds the spec's hour and weekday profiles (``profile``) and ``normalised`` mixes.
"""

from __future__ import annotations

import csv
import dataclasses

import numpy as np

from ilp.demo.city_spec import city_spec_path, taxonomy_path
from ilp.demo.geography import Geography


@dataclasses.dataclass
class OffenceModel:
    """Offence codes (the order every per-code array uses) and their per-code parameters."""

    codes: list[str]
    descriptions: list[str]
    categories: list[str]  # category per code
    category_names: list[str]  # distinct categories in first-seen order
    code_category: np.ndarray  # index into category_names
    share: np.ndarray
    arrest: np.ndarray
    cleared_other: np.ndarray
    domestic: np.ndarray
    victims: np.ndarray  # mean victims per incident (0 = none recorded)
    premises: list[tuple[list[str], np.ndarray]]
    upgraded_from: list[str | None]
    category_spec: dict[str, dict]


def load_offence_model(spec: dict, proactive: set[str]) -> OffenceModel:
    with open(taxonomy_path(), newline="", encoding="utf-8") as handle:
        taxonomy = {row["offense_code"]: row for row in csv.DictReader(handle)}
    codes = list(spec["codes"])
    missing = sorted(set(taxonomy) - set(codes))
    if missing:
        raise ValueError(f"{city_spec_path()}: no [codes.X] entry for demo taxonomy codes {missing}")
    descriptions, categories = [], []
    for code in codes:
        entry = spec["codes"][code]
        if code in taxonomy:
            descriptions.append(taxonomy[code]["offense_description"])
            categories.append(taxonomy[code]["category"])
        elif entry.get("category") == "unmapped":
            descriptions.append(entry["description"])
            categories.append("unmapped")
        else:
            raise ValueError(f"{city_spec_path()}: code {code} is not in {taxonomy_path()} and not marked unmapped")
    category_names = list(dict.fromkeys(categories))
    category_spec = {c: spec["categories"][c] for c in category_names}
    for code, category in zip(codes, categories, strict=True):
        if spec["codes"][code].get("victims", 0) > 0 and "victims" not in category_spec[category]:
            raise ValueError(
                f"{city_spec_path()}: code {code} records victims but [categories.{category}] "
                f"names no victim age profile"
            )
    for c in category_names:
        category_spec[c]["proactive"] = c in proactive
    return OffenceModel(
        codes=codes,
        descriptions=descriptions,
        categories=categories,
        category_names=category_names,
        code_category=np.array([category_names.index(c) for c in categories], dtype=np.int64),
        share=np.array([spec["codes"][c]["share"] for c in codes], dtype=float),
        arrest=np.array([spec["codes"][c]["arrest"] for c in codes], dtype=float),
        cleared_other=np.array([spec["codes"][c]["cleared_other"] for c in codes], dtype=float),
        domestic=np.array([spec["codes"][c]["domestic"] for c in codes], dtype=float),
        victims=np.array([spec["codes"][c].get("victims", 0.0) for c in codes], dtype=float),
        premises=[
            (list(spec["codes"][c]["premises"]), normalised(list(spec["codes"][c]["premises"].values()))) for c in codes
        ],
        upgraded_from=[spec["codes"][c].get("upgraded_from") for c in codes],
        category_spec=category_spec,
    )


def normalised(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values / values.sum()


def profile(spec: dict, kind: str, name: str) -> np.ndarray:
    values = np.asarray(spec[kind][name], dtype=float)
    return values / (values.sum() if kind == "hours" else values.mean())


def base_rates(spec: dict, geo: Geography, model: OffenceModel, incidents_per_year: float) -> np.ndarray:
    """Expected incidents per day per (beat, code), annual average, before seasonality and planting."""
    rates = np.zeros((len(geo.beat_ids), len(model.codes)))
    for j, category in enumerate(model.categories):
        drivers = model.category_spec[category]["drivers"]
        weight = (
            geo.beat_population.astype(float) ** drivers["population"]
            * np.exp(drivers["deprivation"] * geo.beat_deprivation + drivers["commercial"] * geo.beat_commercial)
            * geo.beat_risk
        )
        rates[:, j] = weight / weight.sum()
    per_day = model.share / model.share.sum() * incidents_per_year / 365.25
    return rates * per_day


def day_factors(spec: dict, model: OffenceModel, dates: np.ndarray) -> np.ndarray:
    """Seasonal x weekday multiplier per (category, day); each averages about 1 over a year and a week."""
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    factors = np.zeros((len(model.category_names), len(dates)))
    for k, category in enumerate(model.category_names):
        cat = model.category_spec[category]
        amplitude, peak = cat["season"]
        season = 1.0 + amplitude * np.cos(2 * np.pi * (doy - peak) / 365.25)
        factors[k] = season * profile(spec, "weekdays", cat["weekdays"])[weekday]
    return factors
