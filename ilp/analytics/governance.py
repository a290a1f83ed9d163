"""Data and governance: who sees what (from ilp.access) and the safeguards the dashboard applies.

Everything here is derived from the code that enforces it (ilp.access, ilp.analytics.workbench,
ilp.state), so the governance page cannot drift from what the dashboard actually does.
Never imports streamlit.
"""

from __future__ import annotations

import pandas as pd

from ilp import access
from ilp.analytics import workbench

ALLOWED = "✓"
NOT_ALLOWED = "—"


def access_cell(page: access.PageSpec, role: str) -> str:
    """What ``role`` gets on ``page``: '—' (not shown), '✓', '✓ edit' / '✓ read' (taskings) or '✓ aggregates only'."""
    if role not in page.roles:
        return NOT_ALLOWED
    if page.key == "taskings":
        return f"{ALLOWED} edit" if role in access.TASKING_EDITORS else f"{ALLOWED} read"
    if role in access.AGGREGATE_ONLY:
        return f"{ALLOWED} aggregates only"
    return ALLOWED


def access_matrix(pages=access.PAGES, roles=access.ROLES) -> pd.DataFrame:
    """Roles x pages: one row per role (its label), one column per page title, cells from access_cell."""
    return pd.DataFrame(
        [[label, *(access_cell(page, role) for page in pages)] for role, label in roles.items()],
        columns=["Role", *(page.title for page in pages)],
    )


def page_purposes(pages=access.PAGES) -> pd.DataFrame:
    """One row per page: title, section, purpose and the roles that see it (labels)."""
    return pd.DataFrame(
        [
            {
                "page": page.title,
                "section": page.section,
                "purpose": page.purpose,
                "roles": ", ".join(label for role, label in access.ROLES.items() if role in page.roles),
            }
            for page in pages
        ]
    )


def safeguards() -> pd.DataFrame:
    """The privacy and integrity safeguards, each with what it does and where it is enforced."""
    threshold = access.SMALL_COUNT_THRESHOLD
    aggregate_roles = ", ".join(access.ROLES[r] for r in sorted(access.AGGREGATE_ONLY))
    rows = [
        (
            "Small-count suppression",
            f'For {aggregate_roles}: counts from 1 to {threshold - 1} are shown as "<{threshold}", so a small area '
            "or rare offence cannot single out a person.",
            "ilp.access.suppress_small_counts",
        ),
        (
            "No person-level data for city leaders",
            f"{aggregate_roles} sees aggregates only: no person keys, no victim or offender lists, no point "
            "locations and no exact locations of sensitive offences (homicide, rape, other sexual offences).",
            "ilp.access.AGGREGATE_ONLY, PageContext.aggregate_only",
        ),
        (
            "Audit log",
            "Every page view, export, workbench query and tasking change is recorded with user, role, time, "
            "parameters and data snapshot. The log is append-only: the database refuses UPDATE, DELETE and "
            "INSERT OR REPLACE on it.",
            "ilp.state.State.record (SQLite triggers)",
        ),
        (
            "Read-only workbench",
            "Analysts' SQL runs one SELECT at a time on a separate DuckDB connection with the snapshot attached "
            "read-only, external access (files, network, ATTACH, COPY, extensions) off and the configuration "
            f"locked; results stop at {workbench.ROW_LIMIT:,} rows and queries at {workbench.TIME_LIMIT_S:g} s.",
            "ilp.analytics.workbench",
        ),
        (
            "Pseudonymous person keys",
            "People are linked to incidents only by a salted SHA-256 key; the salt is kept outside the "
            "warehouse and no names, dates of birth or addresses are stored.",
            "incident_persons.person_key (ilp ingest)",
        ),
        (
            "Role check on every page",
            "Each page checks the session's role before drawing anything; a page opened directly by URL "
            'without an allowed role shows only "Access refused".',
            "ilp.ui.context.gate",
        ),
        (
            "Formula-safe exports",
            "CSV downloads prefix text beginning with =, +, -, @ so a spreadsheet shows it instead of running it.",
            "ilp.export.csv_bytes",
        ),
        (
            "Offline by default",
            "Nothing is fetched at run time: no usage statistics, CDN, web fonts or map tiles.",
            ".streamlit/config.toml, pydeck map_provider=None",
        ),
    ]
    return pd.DataFrame(rows, columns=["safeguard", "what it does", "enforced by"])


def harm_weight_table(weights: pd.DataFrame) -> pd.DataFrame:
    """Long harm weights (governance_harm_weights) -> one row per category, one weight column per table.

    Columns: label, proactive, then one column per ``harm_table`` ('cchi 2016', ...), ordered by the
    first table's weight, heaviest first.
    """
    if weights.empty:
        return pd.DataFrame(columns=["label", "proactive"])
    wide = weights.pivot_table(index=["label", "proactive"], columns="harm_table", values="weight", aggfunc="first")
    tables = list(dict.fromkeys(weights["harm_table"]))
    wide = wide.reindex(columns=tables).reset_index()
    wide.columns.name = None
    return wide.sort_values([tables[0], "label"], ascending=[False, True], na_position="last").reset_index(drop=True)
