"""Shared fixtures. Keep them generic: each test module builds what is particular to it.

`demo_warehouse` builds one small demo city per test session (3 years so that year-on-year and
52-week views have data, fewer incidents than the default so the suite stays fast); page tests,
end-to-end tests and analytics tests all read it. Tests must not write to it: copy it first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DEMO = dict(years=3, incidents_per_year=60_000, seed=7)


def shared_data(*parts: str) -> Path:
    """A real export under ../shared/data; skips the test with a reason when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available at {path} (../shared/data is outside the repository)")
    return path


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> Path:
    from ilp.demo import build_demo_warehouse

    directory = tmp_path_factory.mktemp("demo_warehouse")
    build_demo_warehouse(directory, **TEST_DEMO)
    return directory


@pytest.fixture
def app_env(demo_warehouse, tmp_path, monkeypatch):
    """Environment for a dashboard run over the shared demo warehouse with a private app-state file."""
    monkeypatch.setenv("ILP_WAREHOUSE", str(demo_warehouse))
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "state.sqlite"))
    monkeypatch.delenv("ILP_ROLE", raising=False)
    monkeypatch.chdir(REPO)
    return {"ILP_WAREHOUSE": str(demo_warehouse), "ILP_STATE": str(tmp_path / "state.sqlite")}
