"""Where the demo city's parameters live: ``data/demo_city.toml`` (districts, offence mix, profiles, response
times, planted truths) and its offence codes, ``data/taxonomy/demo.csv``."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ilp import paths


def city_spec_path() -> Path:
    return paths.DATA_DIR / "demo_city.toml"


def taxonomy_path() -> Path:
    return paths.TAXONOMY_DIR / "demo.csv"


def load_city_spec() -> dict:
    with open(city_spec_path(), "rb") as handle:
        return tomllib.load(handle)
