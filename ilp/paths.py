"""Where the project's shipped files live. ``ILP_DATA_DIR`` overrides the data folder (tests use it)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DATA_DIR = Path(os.environ.get("ILP_DATA_DIR", PROJECT_DIR / "data"))
QUERIES_DIR = PROJECT_DIR / "queries"
MAPPINGS_DIR = DATA_DIR / "mappings"
TAXONOMY_DIR = DATA_DIR / "taxonomy"
HARM_DIR = DATA_DIR / "harm"
