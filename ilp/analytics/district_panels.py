"""Small multiples by district that work for any number of districts: 1, 12 or 200.

A grid of one panel per district stops being readable (and Plotly refuses the spacing) well before 40
districts. So the panels come in pages of :data:`PER_PAGE`, districts ranked by the measure over the
period shown (the heaviest first); the page shows the first page unless the user picks another page or
names districts. Long district names are shortened for the panel titles (the full name stays in the
hover and the picker).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

PER_PAGE = 12
COLUMNS = 4
TITLE_CHARS = 30  # a panel title longer than this is cut (a quarter of a 1400 px page holds about 30)


@dataclass(frozen=True)
class PanelPage:
    """One page of panels: districts ranked ``first`` to ``last`` (1-based, inclusive)."""

    first: int
    last: int
    total: int
    measure: str

    @property
    def label(self) -> str:
        """'Districts 1–12 of 200 by harm (highest first)'."""
        if self.total <= PER_PAGE:
            return f"All {self.total} districts"
        highest = " (highest first)" if self.first == 1 else ""
        return f"Districts {self.first}–{self.last} of {self.total} by {self.measure}{highest}"


def ranking(by_district: pd.DataFrame, measure: str) -> pd.DataFrame:
    """One row per district, heaviest first: district, district_name, total (of ``measure`` over the rows),
    share (of all districts' total), rank and panel (the panel's title: the name, shortened when long)."""
    totals = (
        by_district.groupby(["district", "district_name"], as_index=False)[measure]
        .sum()
        .rename(columns={measure: "total"})
        .sort_values(["total", "district"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    grand = totals["total"].sum()
    totals["share"] = totals["total"] / grand if grand else float("nan")
    totals["rank"] = range(1, len(totals) + 1)
    totals["panel"] = [
        panel_title(name, district) for name, district in zip(totals["district_name"], totals["district"])
    ]
    return totals


def panel_title(name: str, district: str) -> str:
    """The district's name, or for a long name its start and the id: 'North-Eastern Riverside … (017)'."""
    name = str(name)
    if len(name) <= TITLE_CHARS:
        return name
    tail = f" ({district})" if str(district) not in name[: TITLE_CHARS - 4] else ""
    return name[: TITLE_CHARS - len(tail) - 1].rstrip() + "…" + tail


def pages(ranked: pd.DataFrame, measure: str, per_page: int = PER_PAGE) -> list[PanelPage]:
    """The pages of panels in rank order; one page when there are ``per_page`` districts or fewer."""
    total = len(ranked)
    return [
        PanelPage(first=start + 1, last=min(start + per_page, total), total=total, measure=measure)
        for start in range(0, max(total, 1), per_page)
    ]


def chosen(ranked: pd.DataFrame, page: PanelPage, picked: list[str] | None = None) -> pd.DataFrame:
    """The districts to draw: those ``picked`` (ids, in rank order) when any, else the page's."""
    if picked:
        return ranked[ranked["district"].isin(picked)]
    return ranked[(ranked["rank"] >= page.first) & (ranked["rank"] <= page.last)]


def row_spacing(panels: int, columns: int = COLUMNS) -> float:
    """Vertical space between rows of panels, as a share of the figure: room for each panel's own axis
    labels, and always within what Plotly accepts (at most 1 / (rows - 1))."""
    rows = -(-panels // columns)
    return 0.12 if rows <= 1 else min(0.12, 0.9 / (rows - 1))


def height(panels: int, columns: int = COLUMNS) -> int:
    """Figure height in pixels: 170 per row of panels and room for the title."""
    return 170 * -(-max(panels, 1) // columns) + 140
