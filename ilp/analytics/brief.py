"""The command brief, built once: :func:`build_brief` gathers everything the weekly meeting's brief shows
(ranked threats, repeat locations and victims, what changed, taskings due, this week against its
baselines, the 52-week series) into one :class:`Brief`, which the Command brief page draws and
``ilp.brief_report`` prints as HTML or PDF. The functions before it turn query frames into the brief's
numbers and display tables; nothing here imports Streamlit, so each step is unit-testable.

Honest change (Wheeler 2023, "Percent change is a horrible metric"):

* Counts: Poisson z = 2 * (sqrt(current) - sqrt(baseline)) (Wheeler 2023). |z| >= 3 is worth a look;
  |z| < 2 is ordinary week-to-week noise.
* Harm is not a count: a week's harm H = sum_c w_c N_c is a compound Poisson sum with variance
  sum_c w_c^2 N_c, i.e. phi times its mean with phi = sum w^2 N / sum w N (the harm-weighted dispersion).
  H / phi behaves like a Poisson count, so the same formula applies to it:
  z = 2 * (sqrt(H / phi) - sqrt(B / phi)), with phi pooled over the week and its baseline period.
  With every weight 1 this is exactly the count formula.
* A percent change is given only when the baseline (in effective counts, B / phi for harm) is at least
  10; below that it is left out rather than shown bare.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ilp import taskings as tasking_rules
from ilp.analytics.stats import poisson_z  # z = 2 * (sqrt(current) - sqrt(baseline)); re-exported here
from ilp.errors import UserError
from ilp.snapshot import UNKNOWN_HARM, HarmIndex, SnapshotInfo, area_label, week_end, week_of

CITYWIDE = "Citywide"
UNKNOWN_DISTRICT = "No district recorded"
MIN_BASELINE_FOR_PERCENT = 10
WORTH_A_LOOK = 3.0
WATCH = 2.0

# The baselines the brief compares the selected week with: (column prefix, weeks in the baseline
# period, query column with the incidents in that period).
BASELINES = {
    "prior_4wk": (4, "prior_4wk_incidents"),
    "last_year": (1, "last_year_incidents"),
}


# ------------------------------------------------------------------------------------------ statistics
def harm_z(current_harm, baseline_harm, dispersion):
    """Poisson z on harm scaled to effective counts: 2 * (sqrt(H/phi) - sqrt(B/phi)); NaN when phi is 0."""
    dispersion = np.asarray(dispersion, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(dispersion > 0, dispersion, np.nan)
        return poisson_z(np.asarray(current_harm, dtype=float) / safe, np.asarray(baseline_harm, dtype=float) / safe)


def percent_change(current, baseline, effective_baseline=None):
    """(current - baseline) / baseline, or NaN when the baseline (effective count) is under 10."""
    current = np.asarray(current, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    effective = baseline if effective_baseline is None else np.asarray(effective_baseline, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (current - baseline) / baseline
    return np.where(effective >= MIN_BASELINE_FOR_PERCENT, change, np.nan)


def reading(z) -> np.ndarray:
    """A word for each z: what a commander should make of the change."""
    z = np.asarray(z, dtype=float)
    return np.select(
        [~np.isfinite(z), z >= WORTH_A_LOOK, z <= -WORTH_A_LOOK, np.abs(z) >= WATCH],
        ["no baseline", "up: worth a look", "down: worth a look", "watch"],
        default="normal variation",
    )


# ------------------------------------------------------------------------------------------ change table
def baseline_coverage(info: SnapshotInfo, week: dt.date) -> dict[str, float]:
    """How many weeks of each baseline of ``week`` the data covers: 4 and 1 when it all lies inside the
    data, fewer when the data starts later (0: no baseline at all, shown as 'no baseline')."""
    spans = {
        "prior_4wk": (week - dt.timedelta(weeks=4), week),
        "last_year": (week - dt.timedelta(days=364), week - dt.timedelta(days=357)),
    }
    return {prefix: info.days_covered(start, end) / 7 for prefix, (start, end) in spans.items()}


def district_changes(rows: pd.DataFrame, covered_weeks: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per district plus a citywide row: this week's incidents and harm against each baseline.

    ``rows`` is the ``brief_district_week`` query (one row per district x category with ``weight`` and
    the incident counts for the week, the 4 weeks before it and the same week last year). Columns::

        area_id, area, incidents, harm,
        {b}_incidents, {b}_harm            baseline per week (the 4-week mean, or last year's week)
        {b}_incidents_z, {b}_harm_z        Poisson z (harm: on effective counts, see module docstring)
        {b}_incidents_pct, {b}_harm_pct    percent change, NaN when the baseline is under 10
        {b}_incidents_reading, ...         'worth a look' / 'watch' / 'normal variation'
        harm_dispersion                    phi for the week (days of harm per effective count)

    for b in ``prior_4wk``, ``last_year``. ``covered_weeks`` (``baseline_coverage``) gives the weeks of
    each baseline the data covers; a baseline the data does not reach is NaN ('no baseline'), one it
    partly reaches is the mean of the weeks it covers. The citywide row comes first and includes incidents with no
    district; districts follow in natural id order ('2' before '10'), incidents without a district last.
    """
    frame = rows.copy()
    frame["district_key"] = frame["district"].fillna("")
    frame["district_label"] = frame["district_name"].fillna(UNKNOWN_DISTRICT)
    weight = frame["weight"].astype(float)
    sums = {
        "incidents": frame["current_incidents"],
        "harm": frame["current_incidents"] * weight,
        "harm_sq": frame["current_incidents"] * weight**2,
    }
    for prefix, (_, column) in BASELINES.items():
        sums[f"{prefix}_total_incidents"] = frame[column]
        sums[f"{prefix}_total_harm"] = frame[column] * weight
        sums[f"{prefix}_total_harm_sq"] = frame[column] * weight**2
    parts = pd.DataFrame(sums).astype(float)
    parts["area_id"] = frame["district_key"]
    parts["area"] = frame["district_label"]

    by_district = parts.groupby(["area_id", "area"], as_index=False, sort=True).sum()
    citywide = parts.drop(columns=["area_id", "area"]).sum().to_frame().T
    citywide.insert(0, "area", CITYWIDE)
    citywide.insert(0, "area_id", None)
    by_district = by_district.iloc[
        sorted(range(len(by_district)), key=lambda i: _district_order(by_district["area_id"].iloc[i]))
    ]
    by_district["area_id"] = by_district["area_id"].replace("", None)
    if by_district["area_id"].isna().all():  # no district at all: citywide only
        by_district = by_district.iloc[0:0]
    table = pd.concat([citywide, by_district], ignore_index=True)
    return _add_change_columns(table, covered_weeks or {})


def _district_order(area_id: str) -> tuple:
    """Districts in natural order ('2' before '10'), the 'no district recorded' row last."""
    if area_id == "":
        return (2, 0, "")
    return (0, int(area_id), area_id) if area_id.isdigit() else (1, 0, area_id)


def _add_change_columns(table: pd.DataFrame, covered_weeks: dict[str, float]) -> pd.DataFrame:
    out = table[["area_id", "area", "incidents", "harm"]].copy()
    week_phi = _dispersion(table["harm_sq"], table["harm"])
    out["harm_dispersion"] = week_phi
    for prefix, (weeks, _) in BASELINES.items():
        weeks = covered_weeks.get(prefix, weeks) or np.nan  # 0 weeks covered: no baseline
        base_incidents = table[f"{prefix}_total_incidents"] / weeks
        base_harm = table[f"{prefix}_total_harm"] / weeks
        out[f"{prefix}_incidents"] = base_incidents
        out[f"{prefix}_incidents_z"] = poisson_z(out["incidents"], base_incidents)
        out[f"{prefix}_incidents_pct"] = percent_change(out["incidents"], base_incidents)
        out[f"{prefix}_incidents_reading"] = reading(out[f"{prefix}_incidents_z"])
        # phi pooled over the week and the whole baseline period (both estimate the same mix of weights)
        phi = _dispersion(
            table["harm_sq"] + table[f"{prefix}_total_harm_sq"], table["harm"] + table[f"{prefix}_total_harm"]
        )
        out[f"{prefix}_harm"] = base_harm
        out[f"{prefix}_harm_z"] = harm_z(out["harm"], base_harm, phi)
        with np.errstate(divide="ignore", invalid="ignore"):
            effective = np.where(phi > 0, base_harm / np.where(phi > 0, phi, 1.0), 0.0)
        out[f"{prefix}_harm_pct"] = percent_change(out["harm"], base_harm, effective)
        out[f"{prefix}_harm_reading"] = reading(out[f"{prefix}_harm_z"])
    return out


def _dispersion(sum_w2n, sum_wn) -> np.ndarray:
    sum_w2n = np.asarray(sum_w2n, dtype=float)
    sum_wn = np.asarray(sum_wn, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sum_wn > 0, sum_w2n / np.where(sum_wn > 0, sum_wn, 1.0), 0.0)


def headline(changes: pd.DataFrame, district: str | None) -> pd.Series:
    """The change-table row for the selected district, or the citywide row."""
    if district is not None:
        match = changes[changes["area_id"] == district]
        if len(match):
            return match.iloc[0]
    return changes.iloc[0]


def change_text(current: float, baseline: float, z: float, pct: float, unit: str = "", with_z: bool = True) -> str:
    """'+120 days (+8%), z +1.4' -- the difference, the percent only when allowed, and z beside it."""
    if not np.isfinite(baseline):
        return "no baseline"
    difference = current - baseline
    text = f"{difference:+,.0f}{(' ' + unit) if unit else ''}"
    if np.isfinite(pct):
        text += f" ({pct:+.1%})" if abs(pct) < 0.095 else f" ({pct:+.0%})"
    return f"{text}, z {z:+.1f}" if with_z else text


def measure_table(changes: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Display table for one measure ('incidents' or 'harm'): the week, and for each baseline its value,
    the change (difference, percent only when the baseline is 10 or more) and z, in adjacent columns."""
    if measure not in ("incidents", "harm"):
        raise ValueError("measure must be 'incidents' or 'harm'")
    out = pd.DataFrame({"area": changes["area"], "current": changes[measure]})
    for prefix in BASELINES:
        baseline = changes[f"{prefix}_{measure}"]
        out[f"{prefix}"] = baseline
        out[f"{prefix}_change"] = [
            change_text(c, b, z, p, with_z=False)
            for c, b, z, p in zip(
                changes[measure], baseline, changes[f"{prefix}_{measure}_z"], changes[f"{prefix}_{measure}_pct"]
            )
        ]
        out[f"{prefix}_z"] = changes[f"{prefix}_{measure}_z"]
    return out


# ------------------------------------------------------------------------------------------ top harm
def top_harm_combinations(rows: pd.DataFrame, levels: tuple[str, ...] = ("beat", "district")) -> pd.DataFrame:
    """The ``brief_top_combinations`` rows ready to show: rank, offence (label), then a column for each area
    level the data records (``levels``: beat and district, either, or none), harm, incidents and the share
    of the district's harm (of the city's when there are no districts): the brief's cross-check on the
    threat ranking (harm alone, no trend, vulnerability or confidence)."""
    out = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "offence": rows["category_label"].to_numpy(),
        }
    )
    if "beat" in levels:
        out["beat"] = rows["beat"].fillna("No beat recorded").to_numpy()
    if "district" in levels:
        out["district"] = rows["district_name"].fillna(UNKNOWN_DISTRICT).to_numpy()
    out["harm"] = rows["harm"].astype(float).to_numpy()
    out["incidents"] = rows["incidents"].astype(int).to_numpy()
    out["share_of_district_harm"] = rows["share_of_district_harm"].astype(float).to_numpy()
    return out


def combination_grain(levels: tuple[str, ...]) -> str:
    """What one top-harm row is: 'offence × beat', 'offence × district' or 'offence' (citywide)."""
    return f"offence × {levels[0]}" if levels else "offence"


# ------------------------------------------------------------------------------------------ threats
def threat_table(threats: pd.DataFrame) -> pd.DataFrame:
    """The ranked threats (``rank_threats`` with ``attach_taskings`` columns) as the page shows them:
    labels instead of codes, the significance verdict in words, the tasking as 'owner (status)'."""
    significance = np.select(
        [threats["significant"], threats["z"].isna(), threats["z"] > 0],
        ["▲ significant", "no baseline", "not significant"],
        default="no rise",
    )
    tasking = [
        tasking_rules.summary(owner, status, due)
        for owner, status, due in zip(threats["tasking_owner"], threats["tasking_status"], threats["tasking_due"])
    ]
    return pd.DataFrame(
        {
            "rank": threats["rank"].astype(int).to_numpy(),
            "threat": [
                f"{label}, {area_label(lv, a, n)}"
                for label, lv, a, n in zip(
                    threats["category_label"], threats["level"], threats["area"], threats["area_name"]
                )
            ],
            "score": threats["score"].astype(float).to_numpy(),
            "harm": threats["harm"].astype(float).to_numpy(),
            "count": threats["count"].astype(int).to_numpy(),
            "baseline": threats["baseline"].astype(float).to_numpy(),
            "z": threats["z"].astype(float).to_numpy(),
            "significance": significance,
            "confidence": threats["confidence_label"].str.capitalize().to_numpy(),
            "tasking": tasking,
            "why": threats["explanation"].to_numpy(),
        }
    )


def location_area(beat, district, district_name) -> str:
    """'Beat 1A, Harbour', or 'Beat 0323, district 003' when the district has no name of its own."""
    parts = [f"Beat {beat}"] if isinstance(beat, str) and beat else []
    if isinstance(district, str) and district:
        named = isinstance(district_name, str) and district_name and district_name != district
        parts.append(district_name if named else f"district {district}")
    return ", ".join(parts) or "No area recorded"


def repeat_location_table(locations: pd.DataFrame) -> pd.DataFrame:
    """``threats.repeat_locations`` rows as the page shows them: area and days in words, labels not codes,
    the top offence with its count (the top three are in each row's ``explanation``), and the tasking
    when ``taskings.attach_to_locations`` added one ('Not tasked' otherwise)."""
    none = [None] * len(locations)
    return pd.DataFrame(
        {
            "rank": locations["rank"].astype(int).to_numpy(),
            "location": locations["location"].to_numpy(),
            "area": [
                location_area(b, d, n)
                for b, d, n in zip(locations["beat"], locations["district"], locations["district_name"])
            ],
            "top_offence": [
                f"{label} {int(n)}"
                for label, n in zip(locations["top_category_label"], locations["top_category_incidents"])
            ],
            "incidents": locations["incidents"].astype(int).to_numpy(),
            "baseline": locations["baseline"].astype(float).to_numpy(),
            "z": np.round(locations["z"].astype(float).to_numpy(), 1) + 0.0,  # + 0.0: no "-0.0"
            "harm": locations["harm"].astype(float).to_numpy(),
            "seen": [
                f"{first:%d %b} – {last:%d %b}" if first != last else f"{first:%d %b}"
                for first, last in zip(locations["first_seen"], locations["last_seen"])
            ],
            "tasking": [
                tasking_rules.summary(owner, status, due)
                for owner, status, due in zip(
                    locations.get("tasking_owner", none),
                    locations.get("tasking_status", none),
                    locations.get("tasking_due", none),
                )
            ],
        }
    )


def repeat_victim_table(victims: pd.DataFrame) -> pd.DataFrame:
    """``threats.repeat_victims`` rows as the page shows them (counts only: there is no person to show)."""
    return pd.DataFrame(
        {
            "area": [area_label(lv, a, n) for lv, a, n in zip(victims["level"], victims["area"], victims["area_name"])],
            "offence": victims["category_label"].to_numpy(),
            "repeat_victims": victims["repeat_victims"].astype(int).to_numpy(),
            "incidents_recent": victims["incidents_recent"].astype(int).to_numpy(),
            "incidents_window": victims["incidents_window"].astype(int).to_numpy(),
            "under_18": victims["under_18"].astype(int).to_numpy(),
            "aged_65_plus": victims["aged_65_plus"].astype(int).to_numpy(),
            "domestic_share": victims["domestic_share"].astype(float).to_numpy(),
        }
    )


COMPONENT_LABELS = {
    "harm": "Harm (28 days)",
    "momentum": "Momentum (significance of the rise)",
    "expected_harm": "Expected harm next week",
    "vulnerability": "Vulnerability (repeat, young/old, domestic victims)",
    "concentration": "Concentration (repeat locations)",
}


def component_table(components: dict) -> pd.DataFrame:
    """One threat's score broken down: each component's normalised score, weight and contribution."""
    return pd.DataFrame(
        [
            {
                "component": COMPONENT_LABELS.get(name, name),
                "score": part["score"],
                "weight": part["weight"],
                "contribution": part["contribution"],
            }
            for name, part in components.items()
        ]
    )


def change_table(found: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``changes.changes`` as the page shows them: window and area in words, the change text
    (percent only beside its significance marker and only for baselines of 10 or more)."""
    return pd.DataFrame(
        {
            "window": found["window"].map({"week": "This week", "28d": "Last 28 days"}).to_numpy(),
            "offence": found["category_label"].to_numpy(),
            "area": [area_label(lv, a, n) for lv, a, n in zip(found["level"], found["area"], found["area_name"])],
            "count": found["count"].astype(int).to_numpy(),
            "baseline": found["baseline"].astype(float).to_numpy(),
            "z": found["z"].astype(float).to_numpy(),
            "q_value": found["q_value"].astype(float).to_numpy(),
            "change": found["change_text"].to_numpy(),
        }
    )


# ------------------------------------------------------------------------------------------ weekly series
def weekly_summary(weekly: pd.DataFrame, week) -> dict:
    """Facts for the weekly-harm chart's title: the selected week's harm, the 52-week median and its rank."""
    if weekly.empty:
        return {"weeks": 0}
    week = pd.Timestamp(week)
    harm = weekly.set_index(pd.to_datetime(weekly["week"]))["harm"].astype(float)
    current = float(harm.get(week, np.nan))
    return {
        "weeks": len(harm),
        "current": current,
        "median": float(harm.median()),
        "rank": int((harm > current).sum() + 1) if np.isfinite(current) else None,
        "max_week": harm.idxmax(),
        "max": float(harm.max()),
    }


def ordinal(n: int | None) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    if n is None:
        return "?"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ------------------------------------------------------------------------------------------ the brief, built once
class BriefError(UserError, ValueError):
    """A brief that cannot be built as asked (unknown harm index, no incident data)."""


THREATS_SHOWN = 10
LOCATIONS_SHOWN = 10
VICTIM_ROWS_SHOWN = 10
WEEKLY_WEEKS = 52


@dataclass(frozen=True)
class BriefRequest:
    """What a brief is for: the week (any day of it; None = the last complete week in the data), the
    district and offence category (None = all), the harm index (None = the snapshot's default), the level
    threats and repeat victims are ranked at (None = the lowest level the data records: beat, district,
    or the city as a whole) and the level changes are tested at (None = district, or the lowest level the
    data records when it has no districts)."""

    week: dt.date | None = None
    district: str | None = None
    category: str | None = None
    harm_index: str | None = None
    harm_version: str | None = None
    level: str | None = None
    change_level: str | None = None
    top: int = THREATS_SHOWN


@dataclass
class Brief:
    """Everything the weekly meeting's brief shows, built once by :func:`build_brief`; the Command brief
    page draws it and ``ilp.brief_report`` prints it, so the two cannot disagree."""

    week: dt.date  # Monday of the brief's week
    as_of: dt.date  # the Sunday ending it
    district: str | None
    category: str | None
    level: str
    change_level: str
    harm: HarmIndex
    info: SnapshotInfo
    matrix_version: str
    fdr: float
    generated_at: str
    today: dt.date
    threats: pd.DataFrame  # the top threats (category filter applied), with their taskings
    candidates: int  # all candidates ranked (the false discovery rate's family)
    top_harm: pd.DataFrame  # the highest-harm offence x beat combinations, harm alone
    repeat_locations: pd.DataFrame  # the highest-harm repeat locations, with their taskings
    location_count: int
    victim_records: int  # 0: the source publishes no victims
    repeat_victims: pd.DataFrame
    changes: pd.DataFrame  # every tested change, both windows (``significant`` marks the survivors)
    change_tests: dict  # window -> number of tests
    taskings_due: pd.DataFrame  # live taskings due within a week or overdue, with labels
    district_changes: pd.DataFrame  # this week against its baselines, citywide first, then each district
    weekly: pd.DataFrame  # 52 weeks of incidents and harm ending with the brief's week
    # Last month's taskings, what happened (ilp.analytics.evaluation.last_month_taskings): the month's first day
    # and one row per tasking created in it, with its result note and its evaluation so far.
    tasking_month: dt.date | None = None
    tasking_results: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def snapshot(self) -> str:
        return self.info.version

    @property
    def harm_index(self) -> str:
        return self.harm.name

    @property
    def harm_version(self) -> str:
        return self.harm.version

    @property
    def significant_changes(self) -> pd.DataFrame:
        return self.changes[self.changes["significant"]] if len(self.changes) else self.changes

    @property
    def headline(self) -> pd.Series:
        """The district-changes row of the brief's district, or the citywide row."""
        return headline(self.district_changes, self.district)

    @property
    def scope(self) -> str:
        return self.info.scope(self.district)

    @property
    def category_scope(self) -> str:
        return self.info.category_label(self.category)

    @property
    def parameters(self) -> dict:
        """What reproduces the brief from its snapshot (stamped on it and written to the audit log)."""
        return {
            "week": self.week.isoformat(),
            "as_of": self.as_of.isoformat(),
            "district": self.district,
            "category": self.category,
            "harm": self.harm.key,
            "level": self.level,
            "change_level": self.change_level,
            "top": len(self.threats),
        }

    @property
    def level_note(self) -> str:
        """Why threats are ranked at this level, when the data decided it ('' at beat level)."""
        return self.info.level_note(self.level)

    @property
    def top_harm_levels(self) -> tuple[str, ...]:
        """The area levels the top-harm rows name (the data's own)."""
        return self.info.levels

    @property
    def top_harm_grain(self) -> str:
        return combination_grain(self.top_harm_levels)

    @property
    def no_threats_text(self) -> str:
        """What to say when no threat is ranked: there were no candidates at all, as distinct from the data
        not recording the level asked for (a level the data lacks is never ranked: see ``level_note``)."""
        scope = f" for {self.category_scope}" if self.category else ""
        return (
            f"No candidate threats by {self.level if self.level != 'city' else 'offence'} in the 28 days to "
            f"{self.as_of:%d %b %Y}{scope}: no harm-bearing incident was recorded in them or in the 12 weeks before."
        )

    @property
    def no_locations_text(self) -> str:
        """Why there are no repeat locations: the source has no location text (blocks) at all, or no
        location had 3 or more incidents in the 28 days."""
        if not self.info.has_location_text:
            return (
                "No location text in this source (no block or street is recorded for any incident), so repeat "
                "locations cannot be found."
            )
        scope = f" for {self.category_scope}" if self.category else ""
        return f"No location had 3 or more incidents in the 28 days to {self.as_of:%d %b %Y}{scope}."

    @property
    def coverage_note(self) -> str:
        """What the baselines lack when the data starts late ('' when the data covers every baseline): the
        threats' and changes' 12 weeks before the 28 days, and the same week a year earlier."""
        first = self.info.first_day
        if first is None:
            return ""
        recent_start = self.as_of - dt.timedelta(days=27)
        baseline_start = recent_start - dt.timedelta(weeks=12)
        if first <= baseline_start:
            return ""
        covered = self.info.days_covered(baseline_start, recent_start)
        weeks = f"{covered / 7:.0f} of its 12 weeks" if covered else "none of its 12 weeks"
        return (
            f"The data starts on {first:%d %b %Y}, so the baseline before these 28 days covers {weeks}: "
            + ("expected counts come from the weeks covered, " if covered else "no rise can be tested, ")
            + "and there is no same week last year to compare with."
        )

    @property
    def staleness(self) -> str | None:
        """How old the data is, when its last day is long before the day the brief was made."""
        return self.info.staleness(self.today)

    @property
    def stamp(self) -> str:
        return (
            f"Snapshot {self.snapshot} (created {self.info.created_at}) · harm index {self.harm.tag} · "
            f"threat matrix {self.matrix_version} · generated {self.generated_at}"
        )


def build_brief(
    reader,
    request: BriefRequest | None = None,
    *,
    taskings: pd.DataFrame | None = None,
    today: dt.date | None = None,
    comparisons: dict | None = None,
) -> Brief:
    """Build the brief for ``request`` from ``reader``: a ``SnapshotReader`` (CLI, print) or the dashboard's
    ``PageContext`` (the page, which caches each named query and analysis). ``taskings`` is the app state's
    ``State.taskings()`` frame (live, not snapshot data: due and overdue are judged on ``today``).
    ``comparisons``: the comparison areas recorded for taskings' evaluations
    (``ilp.analytics.evaluation.recorded_comparisons``), used for last month's taskings."""
    from ilp.analytics import changes as change_analysis
    from ilp.analytics import evaluation, repeats
    from ilp.analytics import threats as threat_ranking

    request = request or BriefRequest()
    today = today or dt.date.today()
    info = reader.info
    if request.week is None and info.last_day is None:
        raise BriefError(f"snapshot {info.version} holds no incidents with an occurrence date")
    week = week_of(request.week) if request.week is not None else info.default_week(today)
    as_of = week_end(week)
    harm = info.harm(request.harm_index, request.harm_version)
    if harm is UNKNOWN_HARM:
        raise BriefError(
            f"no harm index {request.harm_index}:{request.harm_version} in snapshot {info.version} (see `ilp status`)"
        )
    level = threat_ranking.resolve_level(info, request.level)
    change_level = threat_ranking.resolve_level(
        info, request.change_level or ("district" if info.has_level("district") else None)
    )
    matrix = threat_ranking.load_matrix()
    fdr = float(matrix["significance"]["false_discovery_rate"])
    scope = {"district": request.district, "harm_index": harm.name, "harm_version": harm.version}
    taskings = taskings if taskings is not None else _no_taskings()

    ranked = reader.analysis(threat_ranking.rank_threats, as_of=as_of, level=level, **scope)
    candidates = int(ranked["candidates"].iloc[0]) if len(ranked) else 0
    if request.category:
        ranked = ranked[ranked["offense_category"] == request.category]
    threats = tasking_rules.attach_to_threats(ranked.head(request.top), taskings).reset_index(drop=True)

    locations = reader.analysis(repeats.repeat_locations, as_of=as_of, category=request.category, **scope)
    victim_records = int(reader.query("threats_victim_records")["victim_records"].iloc[0])
    victims = (
        reader.analysis(
            repeats.repeat_victims,
            as_of=as_of,
            district=request.district,
            level=level,
            category=request.category,
        )
        if victim_records
        else pd.DataFrame(columns=repeats.REPEAT_VICTIM_COLUMNS)
    )

    found = reader.analysis(
        change_analysis.changes, as_of=as_of, level=change_level, fdr=fdr, category=request.category, **scope
    )
    tests = {window: int(group["tests"].iloc[0]) for window, group in found.groupby("window")} if len(found) else {}

    filters = {"week": week, "category": request.category, **scope}
    due = tasking_rules.due_soon(taskings, today)
    due = due.assign(
        category_label=[info.category_label(c) for c in due["offense_category"]],
        place=[area_label(level, area) for level, area in zip(due["area_level"], due["area_id"])],
    )
    tasking_month, tasking_results = evaluation.last_month_taskings(
        reader.analysis,
        taskings,
        as_of=as_of,
        harm_index=harm.name,
        harm_version=harm.version,
        recorded=comparisons,
    )
    return Brief(
        week=week,
        as_of=as_of,
        district=request.district,
        category=request.category,
        level=level,
        change_level=change_level,
        harm=harm,
        info=info,
        matrix_version=str(matrix.get("version", "?")),
        fdr=fdr,
        generated_at=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        today=today,
        threats=threats,
        candidates=candidates,
        top_harm=top_harm_combinations(reader.query("brief_top_combinations", **filters), info.levels),
        repeat_locations=tasking_rules.attach_to_locations(locations.head(LOCATIONS_SHOWN), taskings),
        location_count=len(locations),
        victim_records=victim_records,
        repeat_victims=victims.head(VICTIM_ROWS_SHOWN),
        changes=found,
        change_tests=tests,
        taskings_due=due,
        district_changes=district_changes(
            reader.query("brief_district_week", **filters), baseline_coverage(info, week)
        ),
        weekly=reader.query("trends_weekly", history_start=week - dt.timedelta(weeks=WEEKLY_WEEKS - 1), **filters),
        tasking_month=tasking_month,
        tasking_results=tasking_results,
    )


def _no_taskings() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[
            "id",
            "offense_category",
            "area_level",
            "area_id",
            "owner",
            "action",
            "due_date",
            "status",
            "result_note",
        ]
    )
