"""What changed, for real: every offence x area change this week and over the last 28 days, tested.

Percent change on small counts misleads (20 -> 30 is "+50%" and usually noise), and with dozens of
districts x offence types tested every week most "significant" changes are noise unless the false
discovery rate is controlled (Benjamini & Hochberg 1995; Wheeler 2018, 2023). So every change here
carries:

* the count and its baseline: the ``baseline_weeks`` (12) weeks before the window, scaled to the
  window's length (7 or 28 days);
* the Poisson z = 2 (sqrt(count) - sqrt(baseline)) (Wheeler 2023) and the two-sided Poisson E-test
  p-value for the ratio of the two rates (Krishnamoorthy & Thomson 2004, with the score statistic of
  Gu et al. 2008, whose two-sided region stays balanced when a 7-day window meets an 84-day baseline),
  Benjamini-Hochberg adjusted within each window's family of tests at the false discovery rate ``fdr``
  (default 10%);
* a percent change only where the baseline expects at least 10 incidents in the window (None
  otherwise), and always beside its significance marker (``marker``, ``change_text``).

:func:`control_chart` gives the weekly control band for one series: each week against the mean of the
8 weeks before it with Poisson limits (sqrt(mean) +/- 3/2)^2 (Wheeler, crimepy), weeks outside marked.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from ilp.analytics.stats import benjamini_hochberg, poisson_e_test, poisson_z, rolling_control_band
from ilp.warehouse import run_query

DEFAULT_FDR = 0.10
MIN_BASELINE_FOR_PERCENT = 10
BASELINE_WEEKS = 12
LEVELS = ("beat", "district", "city")
WINDOWS = {"week": 7, "28d": 28}
WINDOW_LABELS = {"week": "this week", "28d": "last 28 days"}
CONTROL_WEEKS = 8
CONTROL_Z = 3.0

COLUMNS = [
    "window",
    "window_days",
    "area",
    "area_name",
    "level",
    "offense_category",
    "category_label",
    "proactive",
    "count",
    "baseline",
    "baseline_count",
    "baseline_weeks",
    "difference",
    "z",
    "p_value",
    "q_value",
    "significant",
    "direction",
    "pct_change",
    "marker",
    "change_text",
    "harm",
    "baseline_harm",
    "as_of",
    "fdr",
    "tests",
]


def changes(
    con,
    *,
    as_of: dt.date,
    level: str = "district",
    harm_index: str | None = None,
    harm_version: str | None = None,
    fdr: float = DEFAULT_FDR,
    baseline_weeks: int = BASELINE_WEEKS,
    min_baseline: float = MIN_BASELINE_FOR_PERCENT,
    district: str | None = None,
    category: str | None = None,
    exclude_proactive_harm: bool = True,
) -> pd.DataFrame:
    """All offence x area changes for the week and the 28 days ending ``as_of``, tested honestly.

    ``level``: 'district' (default), 'beat' (on demand; combine with ``district`` to look inside one
    district) or 'city'. One row per (window, area, category) with at least one incident in the 28
    days or their baseline; columns::

        window ('week' | '28d'), window_days, area, area_name, level, offense_category, category_label,
        proactive, count, baseline (expected in the window), baseline_count (raw, over baseline_weeks),
        baseline_weeks, difference, z, p_value (two-sided E-test), q_value (BH within the window),
        significant (q_value <= fdr), direction ('up' | 'down' | None when not significant),
        pct_change (None when baseline < min_baseline), marker, change_text,
        harm, baseline_harm (the harm index's weights, the snapshot's default index unless given;
        proactive categories weigh 0 unless exclude_proactive_harm=False), as_of, fdr,
        tests (the size of the BH family)

    sorted by window (week first), significant first, then by |z|.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    from ilp.snapshot import SnapshotInfo

    info = SnapshotInfo.read(con)
    if harm_index is None and harm_version is None:
        from ilp.analytics.threats import resolve_harm

        harm_index, harm_version = resolve_harm(info, None, None)
    params = {
        "as_of": as_of,
        "level": level,
        "baseline_weeks": int(baseline_weeks),
        "harm_index": harm_index,
        "harm_version": harm_version,
        "district": district,
        "category": category,
        "include_proactive": not exclude_proactive_harm,
    }
    rows = run_query(con, "changes_counts", params)
    baseline_days = 7 * int(baseline_weeks)
    weight = rows["weight"].astype(float).fillna(0.0).to_numpy()

    frames = []
    for window, days in WINDOWS.items():
        prefix = "week" if window == "week" else "d28"
        # the baseline counts only the days the data covers (it may start inside the baseline weeks)
        window_start = as_of + dt.timedelta(days=1 - days)
        covered = info.days_covered(window_start - dt.timedelta(days=baseline_days), window_start)
        count = rows[f"{prefix}_count"].to_numpy(dtype=float)
        baseline_count = rows[f"{prefix}_baseline_count"].to_numpy(dtype=float)
        keep = (count + baseline_count) > 0  # nothing to test when both are 0
        frame = pd.DataFrame(
            {
                "window": window,
                "window_days": days,
                "area": rows["area_id"].astype(str).to_numpy()[keep],
                "area_name": rows["area_name"].astype(str).to_numpy()[keep],
                "level": level,
                "offense_category": rows["category"].to_numpy()[keep],
                "category_label": rows["category_label"].to_numpy()[keep],
                "proactive": rows["proactive"].astype(bool).to_numpy()[keep],
            }
        )
        count, baseline_count, w = count[keep], baseline_count[keep], weight[keep]
        baseline = baseline_count * days / covered if covered else np.full(len(count), np.nan)
        frame["count"] = count.astype(int)
        frame["baseline"] = baseline
        frame["baseline_count"] = baseline_count.astype(int)
        frame["baseline_weeks"] = int(baseline_weeks)
        frame["difference"] = count - baseline
        frame["z"] = poisson_z(count, baseline)
        if len(frame) and covered:
            # score statistic: with a 7- or 28-day window against 84 days the Wald statistic's two-sided
            # region is lopsided (see ilp.analytics.stats.poisson_e_test)
            _, p_value = poisson_e_test(
                count, days, baseline_count, covered, alternative="two-sided", statistic="score"
            )
        else:  # no baseline day in the data: nothing to test against
            p_value = np.ones(len(frame))
        q_value, significant = benjamini_hochberg(p_value, fdr)
        frame["p_value"] = p_value
        frame["q_value"] = q_value
        frame["significant"] = significant.astype(bool)
        frame["direction"] = pd.Series(
            [
                ("up" if c > b else "down") if sig else None
                for c, b, sig in zip(count, baseline, significant, strict=True)
            ],
            index=frame.index,
            dtype=object,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(baseline >= min_baseline, (count - baseline) / baseline, np.nan)
        percent = [None if math.isnan(v) else float(v) for v in pct]
        frame["pct_change"] = pd.Series(percent, index=frame.index, dtype=object)
        frame["marker"] = [_marker(d) for d in frame["direction"]]
        frame["change_text"] = [
            _change_text(c, b, p, d, fdr)
            for c, b, p, d in zip(frame["count"], frame["baseline"], percent, frame["direction"], strict=True)
        ]
        frame["harm"] = count * w
        frame["baseline_harm"] = baseline * w
        frame["tests"] = len(frame)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["as_of"] = as_of
    out["fdr"] = fdr
    out["_order"] = out["window"].map({"week": 0, "28d": 1})
    out["_abs_z"] = out["z"].abs()
    out = out.sort_values(
        ["_order", "significant", "_abs_z", "area", "offense_category"],
        ascending=[True, False, False, True, True],
        kind="stable",
    )
    return out[COLUMNS].reset_index(drop=True)


def _marker(direction) -> str:
    if direction == "up":
        return "▲ significant rise"
    if direction == "down":
        return "▼ significant fall"
    return "not significant"


def _change_text(count: int, baseline: float, pct, direction, fdr: float) -> str:
    """'+35% (▲ significant rise at FDR 10%)', or counts when the baseline is too small for a percent."""
    verdict = f"{_marker(direction)} at FDR {fdr:.0%}" if direction else "not significant"
    if pct is not None:
        return f"{pct:+.0%} ({verdict})"
    if baseline != baseline:  # NaN: the data starts after the baseline weeks
        return f"{int(count)}, no baseline (the data starts after the baseline weeks)"
    return f"{int(count)} vs {baseline:.1f} expected ({verdict})"


def significant_changes(frame: pd.DataFrame, window: str | None = None) -> pd.DataFrame:
    """Only the rows that survive the false discovery rate (optionally one window)."""
    rows = frame[frame["significant"]]
    if window is not None:
        rows = rows[rows["window"] == window]
    return rows.reset_index(drop=True)


def to_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-able dicts (NaN -> None, dates -> ISO strings)."""
    out = []
    for row in frame.to_dict(orient="records"):
        record = {}
        for key, value in row.items():
            if isinstance(value, (dt.date, pd.Timestamp)):
                record[key] = value.isoformat()[:10]
            elif isinstance(value, (np.floating, float)):
                record[key] = None if math.isnan(value) else float(value)
            elif isinstance(value, np.integer):
                record[key] = int(value)
            elif isinstance(value, np.bool_):
                record[key] = bool(value)
            else:
                record[key] = value
        out.append(record)
    return out


# ------------------------------------------------------------------------------------ control chart
def control_chart(
    con,
    *,
    as_of: dt.date,
    weeks: int = 26,
    level: str = "district",
    area: str | None = None,
    category: str | None = None,
    window: int = CONTROL_WEEKS,
    z: float = CONTROL_Z,
) -> pd.DataFrame:
    """Weekly control-chart data for one series: ``weeks`` 7-day weeks ending ``as_of``.

    The series is ``category`` (None = all offences) in ``area`` at ``level`` (None = citywide). Each
    week is compared with the mean of the ``window`` (8) weeks before it, limits (sqrt(mean) +/- z/2)^2
    with z = 3 (Wheeler, crimepy ``weekly_data``; :func:`ilp.analytics.stats.control_limits`); a week is
    outside when its count is beyond a limit by more than half a count
    (:func:`ilp.analytics.stats.rolling_control_band`). Columns: week_start, week_end (inclusive dates),
    incidents, prior_mean, lower, upper, outside ('above' | 'below' | None), level, area,
    offense_category. The query fetches ``window`` extra weeks so every week shown has a band.
    """
    if level not in ("beat", "district"):
        raise ValueError(f"level must be 'beat' or 'district', not {level!r}")
    series = run_query(
        con,
        "changes_weekly_series",
        {
            "as_of": as_of,
            "weeks": int(weeks) + int(window),
            "level": level,
            "area": area,
            "category": category,
        },
    )
    counts = series["incidents"].to_numpy(dtype=float)
    mean, lower, upper, outside = rolling_control_band(counts, window=window, z=z)
    frame = pd.DataFrame(
        {
            "week_start": pd.to_datetime(series["week_start"]).dt.date,
            "week_end": pd.to_datetime(series["week_end"]).dt.date,
            "incidents": counts.astype(int),
            "prior_mean": mean,
            "lower": lower,
            "upper": upper,
        }
    )
    frame["outside"] = pd.Series([{1: "above", -1: "below"}.get(int(o)) for o in outside], dtype=object)
    frame["level"] = level
    frame["area"] = area
    frame["offense_category"] = category
    return frame.iloc[int(window) :].reset_index(drop=True)
