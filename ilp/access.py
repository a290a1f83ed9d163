"""Roles and what each may see (DESIGN.md "Roles and access"). The one table every gate reads."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = {
    "commander": "Commander",
    "city_leader": "City leader",
    "analyst": "Crime analyst",
    "admin": "Administrator",
}


@dataclass(frozen=True)
class PageSpec:
    key: str          # also the URL path
    title: str
    icon: str         # an emoji: Streamlit turns a page's :material/...: icon into a favicon fetched from
                      # Google's font CDN, which an air-gapped site must never request
    section: str
    roles: frozenset[str]
    purpose: str
    uses_filters: bool = True   # False: the sidebar's shared filters do not change this page (it says so)


PAGES: tuple[PageSpec, ...] = (
    PageSpec("brief", "Command brief", "🚩", "Weekly meeting",
             frozenset({"commander", "analyst"}), "What does the most harm this week, and what changed."),
    PageSpec("trends", "Trends and forecasts", "📈", "Weekly meeting",
             frozenset({"commander", "analyst", "city_leader"}), "Weekly counts and harm with an 8-week forecast."),
    PageSpec("deployment", "Deployment map", "🗺️", "Weekly meeting",
             frozenset({"commander", "analyst"}), "Where and when harm concentrates, by shift."),
    PageSpec("taskings", "Taskings", "📋", "Weekly meeting",
             frozenset({"commander", "analyst"}), "Who owns the response to each threat, and what came of it."),
    PageSpec("outcomes", "Outcomes", "📊", "Results",
             frozenset({"commander", "analyst", "city_leader", "admin"}), "Harm-reduction metrics instead of arrest counts."),
    PageSpec("workbench", "Analyst workbench", "🧮", "Analysis",
             frozenset({"analyst"}), "Read-only SQL over the current snapshot.", uses_filters=False),
    PageSpec("governance", "Data and governance", "🛡️", "Governance",
             frozenset({"analyst", "admin"}), "Freshness, quality, rejects, harm tables, and who sees what.",
             uses_filters=False),
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


def suppress_small_counts(values, threshold: int = SMALL_COUNT_THRESHOLD):
    """Counts under ``threshold`` become the text '<10' (for aggregate-only roles)."""
    return [f"<{threshold}" if v is not None and v == v and 0 < v < threshold else v for v in values]
