"""Roles and what each may see (README "Roles"). The one table every gate reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

ROLES = {
    "commander": "Commander",
    "city_leader": "City leader",
    "analyst": "Crime analyst",
    "admin": "Administrator",
}


@dataclass(frozen=True)
class PageSpec:
    key: str  # also the URL path
    title: str
    icon: str  # an emoji: Streamlit turns a page's :material/...: icon into a favicon fetched from
    # Google's font CDN, which an air-gapped site must never request
    section: str
    roles: frozenset[str]
    purpose: str
    uses_filters: bool = True  # False: the sidebar's shared filters do not change this page (it says so)


PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "brief",
        "Command brief",
        "🚩",
        "Weekly meeting",
        frozenset({"commander", "analyst"}),
        "What does the most harm this week, and what changed.",
    ),
    PageSpec(
        "trends",
        "Trends and forecasts",
        "📈",
        "Weekly meeting",
        frozenset({"commander", "analyst", "city_leader"}),
        "Weekly counts and harm with an 8-week forecast.",
    ),
    PageSpec(
        "deployment",
        "Deployment map",
        "🗺️",
        "Weekly meeting",
        frozenset({"commander", "analyst"}),
        "Where and when harm concentrates, by shift.",
    ),
    PageSpec(
        "deployment_forecast",
        "Next-week patrol plan",
        "🔮",
        "Weekly meeting",
        frozenset({"commander", "analyst"}),
        "Where harm is forecast next week, by shift, from a method measured against last year's map; "
        "near-repeat burglary alerts.",
    ),
    PageSpec(
        "forecast_scoreboard",
        "Forecast scoreboard",
        "🎯",
        "Weekly meeting",
        frozenset({"commander", "analyst"}),
        "Every issued hot-spot forecast scored against what happened, beside the two naive baselines.",
        uses_filters=False,
    ),
    PageSpec(
        "taskings",
        "Taskings",
        "📋",
        "Weekly meeting",
        frozenset({"commander", "analyst"}),
        "Who owns the response to each threat, and what came of it.",
    ),
    PageSpec(
        "outcomes",
        "Outcomes",
        "📊",
        "Results",
        frozenset({"commander", "analyst", "city_leader", "admin"}),
        "Harm-reduction metrics instead of arrest counts.",
    ),
    PageSpec(
        "workbench",
        "Analyst workbench",
        "🧮",
        "Analysis",
        frozenset({"analyst"}),
        "Read-only SQL over the current snapshot.",
        uses_filters=False,
    ),
    PageSpec(
        "governance",
        "Data and governance",
        "🛡️",
        "Governance",
        frozenset({"analyst", "admin"}),
        "Freshness, quality, rejects, harm tables, and who sees what.",
        uses_filters=False,
    ),
)
PAGE_BY_KEY = {page.key: page for page in PAGES}

# Roles that may edit taskings (others with the page read them).
TASKING_EDITORS = frozenset({"commander"})
# Roles that see only aggregates: small counts suppressed, no person-level data, no point locations.
AGGREGATE_ONLY = frozenset({"city_leader"})
SMALL_COUNT_THRESHOLD = 10


def allowed(page_key: str, role: str | None) -> bool:
    page = PAGE_BY_KEY.get(page_key)
    return bool(role) and page is not None and role in page.roles


def pages_for(role: str | None) -> list[PageSpec]:
    return [page for page in PAGES if allowed(page.key, role)]


def is_small_count(value, threshold: int = SMALL_COUNT_THRESHOLD) -> bool:
    """The small-count rule: a count from 1 to ``threshold - 1`` could single out a person. Zero and missing
    values are not small (an absence identifies no one)."""
    return value is not None and value == value and 0 < value < threshold


def suppress_small_counts(
    data, counts=(), dependent: Mapping[str, Sequence[str]] | None = None, *, threshold: int = SMALL_COUNT_THRESHOLD
):
    """Small counts hidden for aggregate-only roles: the one place the rule is applied.

    ``data`` a DataFrame: a display copy in which each column named in ``counts`` becomes text, "<10" where
    the count is small and "1,234" otherwise ("" when missing), and each column in ``dependent[count]`` (a
    rate or interval built from that count) is blanked where the count is small, so a rate times its
    denominator cannot give the suppressed count back.
    ``data`` a sequence of numbers: the same values with the small ones replaced by "<10".
    """
    hidden = f"<{threshold}"
    if not isinstance(data, pd.DataFrame):
        return [hidden if is_small_count(v, threshold) else v for v in data]
    shown = data.copy()
    for count in counts:
        values = data[count].astype(float)
        small = values.map(lambda v: is_small_count(v, threshold)).astype(bool)
        for column in (dependent or {}).get(count, ()):
            shown[column] = shown[column].astype(float).where(~small)
        shown[count] = [hidden if is_small else ("" if v != v else f"{int(v):,}") for v, is_small in zip(values, small)]
    return shown


@dataclass(frozen=True)
class Audience:
    """What a role may be shown of counts and the facts built from them.

    Aggregate-only roles (``AGGREGATE_ONLY``) get small counts suppressed and no person-level detail
    (exact victim, event or respondent counts) in text; every other role sees everything.
    """

    role: str | None
    threshold: int = SMALL_COUNT_THRESHOLD

    @property
    def aggregate_only(self) -> bool:
        return self.role in AGGREGATE_ONLY

    def is_small(self, count) -> bool:
        """True when ``count`` must not be shown to this role."""
        return self.aggregate_only and is_small_count(count, self.threshold)

    def frame(
        self, frame: pd.DataFrame, counts: Sequence[str] = (), dependent: Mapping[str, Sequence[str]] | None = None
    ) -> pd.DataFrame:
        """``frame`` as this role may see it (``suppress_small_counts``); unchanged for other roles."""
        if not (self.aggregate_only and counts):
            return frame
        return suppress_small_counts(frame, counts, dependent, threshold=self.threshold)

    def detail(self, text: str, public: str = "") -> str:
        """``text`` (person-level detail) for roles that may see it, else ``public``."""
        return public if self.aggregate_only else text

    def count(self, count, text: str, public: str) -> str:
        """``text`` about ``count`` unless the count is small for this role, then ``public``."""
        return public if self.is_small(count) else text
