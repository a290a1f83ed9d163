"""Tasking evaluation (ilp/analytics/evaluation.py, `ilp evaluate`): the statistics against worked examples
and an independent fit, the whole evaluation against the demo city's planted intervention, and placebo
taskings on untreated beats for the false-positive rate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from ilp.analytics import evaluation
from ilp.state import State
from ilp.warehouse import Warehouse

# The demo city's planted intervention (data/demo_city.toml [truth.intervention]).
PLANTED_BEAT, PLANTED_CONTROL, PLANTED_CATEGORY = "4C", "3C", "burglary_residential"


@pytest.fixture(scope="module")
def demo_con(demo_warehouse):
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        yield con


@pytest.fixture(scope="session")
def intervention_city(dense_city):
    """Two years of the demo city at its default density (150,000 incidents a year, conftest.DENSE_CITY): at
    the smaller test size the planted beat has about 2.7 burglaries a week, too few for any honest evaluation
    to find a 40% cut (the evaluation's own minimum detectable effect there is about 60%)."""
    return dense_city


def planted_truth(con) -> dict:
    row = con.execute(
        "SELECT area_id, offense_category, start_date, effect_size, control_area_id FROM demo_truth "
        "WHERE kind = 'intervention'"
    ).fetchone()
    return dict(zip(("beat", "category", "start", "effect", "control"), row))


# ------------------------------------------------------------------------------------------ WDD
def test_wdd_matches_the_worked_example_of_wheeler_and_ratcliffe():
    """Treated 20 -> 10, control 20 -> 20 (the authors' R package): WDD -10, SE about 8.4, 90% CI about
    -23.8 to 3.8."""
    result = evaluation.wdd((20, 10), (20, 20))
    assert result.estimate == -10
    assert result.se == pytest.approx(np.sqrt(70), abs=1e-12) and round(result.se, 1) == 8.4
    low, high = result.interval(0.90)
    assert (round(low, 1), round(high, 1)) == (-23.8, 3.8)
    assert result.z == pytest.approx(-10 / np.sqrt(70))
    assert not result.has_buffer and result.buffer == 0


def test_wdd_with_a_buffer_and_its_control_adds_their_changes_and_variances():
    result = evaluation.wdd((30, 15), (25, 24), (40, 50), (35, 30))
    # dT - dC + dD - dCd = -15 - (-1) + 10 - (-5) = 1; variance = every count
    assert result.estimate == pytest.approx(1.0)
    assert result.se == pytest.approx(np.sqrt(30 + 15 + 25 + 24 + 40 + 50 + 35 + 30))
    assert (result.target, result.buffer) == (pytest.approx(-14.0), pytest.approx(15.0))
    assert result.target_se == pytest.approx(np.sqrt(94)) and result.buffer_se == pytest.approx(np.sqrt(155))


def test_wdd_scales_a_longer_pre_window_to_the_post_window():
    result = evaluation.wdd((40, 10), (40, 20), scale=0.5)  # 24 weeks before, 12 after
    assert result.estimate == pytest.approx((10 - 20) - (20 - 20))
    assert result.se == pytest.approx(np.sqrt(10 + 0.25 * 40 + 20 + 0.25 * 40))


def test_harm_weighted_wdd_combines_categories_with_their_weights():
    """Wheeler's wdd_harm: sum of w x WDD, variance sum of se^2 x w^2."""
    burglary = evaluation.wdd((20, 10), (20, 20))
    robbery = evaluation.wdd((8, 9), (7, 5))
    combined = evaluation.wdd_harm([(273.5, burglary), (365.0, robbery)])
    assert combined.estimate == pytest.approx(273.5 * -10 + 365.0 * 3)
    assert combined.se == pytest.approx(np.sqrt((273.5 * burglary.se) ** 2 + (365.0 * robbery.se) ** 2))


# ------------------------------------------------------------------------------------------ the regression
def weekly_counts(seed: int, effect: float = 0.7, weeks: int = 12, noise: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    week = np.arange(-weeks, weeks)
    season = np.exp(noise * np.sin(week / 4.0))
    target = rng.poisson(6 * season * np.where(week >= 0, effect, 1.0))
    comparison = rng.poisson(9 * season)
    return pd.DataFrame({"week": week, "target": target, "comparison": comparison})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_did_ratio_equals_statsmodels_poisson_with_a_dummy_for_every_week(seed):
    """The estimate, quasi-Poisson se, Pearson dispersion and df from the two-parameter conditional fit equal
    those of statsmodels' GLM with target, target x post and one dummy per week, fitted independently."""
    import statsmodels.api as sm

    weekly = weekly_counts(seed)
    ours = evaluation.did_ratio(weekly)

    kept = weekly[(weekly["target"] + weekly["comparison"]) > 0]
    n = len(kept)
    y = np.r_[kept["target"], kept["comparison"]].astype(float)
    treated = np.r_[np.ones(n), np.zeros(n)]
    post = (np.r_[kept["week"], kept["week"]] >= 0).astype(float)
    dummies = pd.get_dummies(np.r_[kept["week"], kept["week"]]).to_numpy(dtype=float)
    fit = sm.GLM(y, np.column_stack([treated * post, treated, dummies]), family=sm.families.Poisson()).fit(scale="X2")
    assert ours.log_ratio == pytest.approx(fit.params[0], rel=1e-6)
    assert ours.se == pytest.approx(fit.bse[0], rel=1e-5)
    assert ours.df == fit.df_resid
    assert ours.dispersion == pytest.approx(fit.pearson_chi2 / fit.df_resid, rel=1e-6)
    assert ours.weeks == n


def test_did_ratio_without_week_effects_is_the_two_by_two_ratio_with_pearson_scale():
    weekly = weekly_counts(4)
    ours = evaluation.did_ratio(weekly, week_effects=False)
    before, after = weekly[weekly["week"] < 0], weekly[weekly["week"] >= 0]
    t0, t1 = before["target"].sum(), after["target"].sum()
    c0, c1 = before["comparison"].sum(), after["comparison"].sum()
    assert ours.ratio == pytest.approx((t1 / t0) / (c1 / c0), rel=1e-9)
    # Pearson chi^2 / df of the 2 x 2 model, by hand: fitted = the period mean of each area
    fitted = {
        ("target", False): t0 / len(before),
        ("target", True): t1 / len(after),
        ("comparison", False): c0 / len(before),
        ("comparison", True): c1 / len(after),
    }
    chi2 = sum(
        (weekly[area] - np.where(weekly["week"] >= 0, fitted[(area, True)], fitted[(area, False)])) ** 2
        / np.where(weekly["week"] >= 0, fitted[(area, True)], fitted[(area, False)])
        for area in ("target", "comparison")
    ).sum()
    dispersion = chi2 / (2 * len(weekly) - 4)
    assert ours.dispersion == pytest.approx(dispersion, rel=1e-9)
    assert ours.se == pytest.approx(np.sqrt(dispersion * (1 / t0 + 1 / t1 + 1 / c0 + 1 / c1)), rel=1e-6)


def test_did_ratio_is_none_when_a_cell_is_empty_and_calibration_widens_the_interval():
    weekly = weekly_counts(5)
    empty = weekly.assign(target=np.where(weekly["week"] >= 0, 0, weekly["target"]))
    assert evaluation.did_ratio(empty) is None
    plain, widened = evaluation.did_ratio(weekly), evaluation.did_ratio(weekly, calibration=1.5)
    assert widened.ratio == pytest.approx(plain.ratio) and widened.se == pytest.approx(1.5 * plain.se)
    assert widened.low < plain.low and widened.high > plain.high and widened.calibration == 1.5
    assert evaluation.did_ratio(weekly, calibration=0.5).se == pytest.approx(plain.se)  # never narrowed


def test_pre_trend_matches_statsmodels_with_week_dummies():
    import statsmodels.api as sm

    rng = np.random.default_rng(9)
    week = np.arange(-16, 0)
    weekly = pd.DataFrame(
        {"week": week, "target": rng.poisson(8 * np.exp(0.04 * week)), "comparison": rng.poisson(8, len(week))}
    )
    ours = evaluation.pre_trend(weekly)
    n = len(weekly)
    y = np.r_[weekly["target"], weekly["comparison"]].astype(float)
    treated = np.r_[np.ones(n), np.zeros(n)]
    centred = np.r_[week, week] - week.mean()
    dummies = pd.get_dummies(np.r_[week, week]).to_numpy(dtype=float)
    fit = sm.GLM(y, np.column_stack([treated * centred, treated, dummies]), family=sm.families.Poisson()).fit(
        scale="X2"
    )
    assert ours["per_week"] == pytest.approx(fit.params[0], rel=1e-6)
    assert ours["z"] == pytest.approx(fit.params[0] / fit.bse[0], rel=1e-5)
    assert ours["weeks"] == 16


# ------------------------------------------------------------------------------------------ design checks
def test_minimum_detectable_effect_from_the_pre_counts():
    # 100 and 100 before, 12 and 12 weeks: se = sqrt(4 / 100) = 0.2; (1.96 + 0.84) x 0.2
    mde = evaluation.minimum_detectable_effect(100, 100, pre_weeks=12, post_weeks=12)
    assert mde == pytest.approx(1 - np.exp(-(1.959964 + 0.841621) * 0.2), rel=1e-5)
    assert round(mde, 2) == 0.43
    assert evaluation.minimum_detectable_effect(1000, 1000, pre_weeks=12, post_weeks=12) < 0.3
    assert evaluation.minimum_detectable_effect(0, 100, pre_weeks=12, post_weeks=12) == 1.0
    overdispersed = evaluation.minimum_detectable_effect(100, 100, pre_weeks=12, post_weeks=12, dispersion=2.0)
    assert overdispersed > mde


def test_regression_to_the_mean_flags_a_target_tasked_at_its_peak():
    baseline = pd.Series(3.0, index=range(-56, -4))
    peak = pd.concat([baseline, pd.Series([9.0, 10.0, 8.0, 11.0], index=range(-4, 0))])
    found = evaluation.regression_to_mean(peak, first_covered_week=-56)
    assert found["peak"] and found["recent"] == 38 and found["baseline_per_week"] == 3.0 and found["z"] > 5
    calm = pd.concat([baseline, pd.Series([3.0, 2.0, 4.0, 3.0], index=range(-4, 0))])
    assert not evaluation.regression_to_mean(calm, first_covered_week=-56)["peak"]
    assert evaluation.regression_to_mean(calm, first_covered_week=-10) is None  # too little history


def test_choose_comparison_prefers_the_same_level_and_trend_and_skips_excluded_areas():
    weeks = list(range(-12, 0))
    flat = np.full(12, 5.0)
    pre = pd.DataFrame(
        [flat, flat + 0.2, flat * 3, np.linspace(1, 9, 12), flat - 0.1],
        index=["T", "same", "higher", "rising", "neighbour"],
        columns=weeks,
    )
    chosen, ranked = evaluation.choose_comparison(pre, "T", excluded={"neighbour"})
    assert chosen == "same"
    assert ranked["area_id"].tolist() == ["same", "rising", "higher"]  # rising: same mean, other trend


# ------------------------------------------------------------------------------------------ planted truth
def test_the_planted_intervention_is_found_with_its_fraction_inside_the_interval(intervention_city):
    """A tasking recorded on the planted beat at the planted start date: the ratio's 95% interval holds the
    planted fraction and the estimate is a fall, at the default windows (12 weeks each side) and over the
    whole planted period (26 weeks, with 26 before), where the estimate is under 0.8.

    What the planted 40% cut does not reliably give at this density, measured over 20 builds (seeds 1-20):
    an interval that excludes 1 (6 of 20 at 12/12 weeks, where the evaluation's own minimum detectable
    effect is near 50%; 18 of 20 at 26/26) and WDD z below -2 (0 and 3 of 20: with whole neighbouring beats
    as the buffer it has little power). The estimate itself: 0.43-0.82 at 12/12, 0.45-0.73 at 26/26; the
    interval held 0.6 in 20 of 20. So those are not asserted: a pass would be the seed's luck."""
    with contextlib.closing(Warehouse(intervention_city).connect()) as con:
        truth = planted_truth(con)
        assert (truth["beat"], truth["category"], truth["effect"]) == (PLANTED_BEAT, PLANTED_CATEGORY, 0.6)
        for pre, post, below in ((12, 12, 1.0), (26, 26, 0.8)):
            result = evaluation.evaluate(
                con,
                level="beat",
                area_id=truth["beat"],
                categories=(truth["category"],),
                start=truth["start"],
                pre_weeks=pre,
                post_weeks=post,
            )
            assert result.status == "ok", result.message
            ratio = result.ratio
            assert ratio.low <= truth["effect"] <= ratio.high, (pre, post, ratio)
            assert ratio.ratio < below, (pre, post, ratio)
            assert result.comparison_area not in (truth["beat"], *result.buffer)
            kinds = {caveat.kind for caveat in result.caveats}
            assert {"regression_to_mean", "pre_trend", "power", "displacement", "inference"} <= kinds


def test_at_the_test_size_the_evaluation_says_it_is_underpowered(demo_con):
    truth = planted_truth(demo_con)
    result = evaluation.evaluate(
        demo_con, level="beat", area_id=truth["beat"], categories=(truth["category"],), start=truth["start"]
    )
    power = next(c for c in result.caveats if c.kind == "power")
    assert power.flagged and result.mde > 0.4
    assert power.text.startswith("Too few incidents to detect a 30% change")
    assert result.ratio.low <= truth["effect"] <= result.ratio.high


def test_placebo_taskings_on_untreated_beats_are_rarely_significant(demo_con, record_property):
    """60 taskings on untreated beats at random dates (fixed seed): at most about 5% 'significant' at the 95%
    level. The planted intervention's beat and the moving hot spot's two beats are not untreated; the
    intervention is a recorded tasking wherever the windows overlap it."""
    truth = planted_truth(demo_con)
    beats = [b for (b,) in demo_con.execute("SELECT DISTINCT beat FROM incidents ORDER BY 1").fetchall()]
    beats = [b for b in beats if b not in (truth["beat"], "2F", "2G")]
    first, last = demo_con.execute("SELECT min(occurred_at)::DATE, max(occurred_at)::DATE FROM incidents").fetchone()
    low, high = first + dt.timedelta(weeks=12), last - dt.timedelta(weeks=12)
    categories = ["burglary_residential", "robbery", "violence_with_injury", "theft_other", "criminal_damage"]
    rng = np.random.default_rng(20261201)
    significant, estimated = 0, 0
    for _ in range(60):
        beat, category = beats[rng.integers(len(beats))], categories[rng.integers(len(categories))]
        start = low + dt.timedelta(days=int(rng.integers((high - low).days)))
        treated = (truth["beat"],) if start + dt.timedelta(weeks=12) > truth["start"] else ()
        result = evaluation.evaluate(
            demo_con, level="beat", area_id=beat, categories=(category,), start=start, treated=treated
        )
        if result.ratio is not None:
            estimated += 1
            significant += result.ratio.significant
    rate = significant / estimated
    record_property("placebo_false_positive_rate", rate)
    print(f"placebo false-positive rate: {significant}/{estimated} = {rate:.1%}")
    assert estimated >= 50
    assert rate <= 0.07


# ------------------------------------------------------------------------------------------ the evaluation
def test_the_comparison_is_chosen_from_the_pre_weeks_only(demo_con):
    """The same comparison whether or not the post period exists: the choice never sees it."""
    start = dt.date(2026, 3, 2)
    common = dict(level="beat", area_id="1C", categories=("burglary_residential",), start=start)
    full = evaluation.evaluate(demo_con, **common)
    blind = evaluation.evaluate(demo_con, **common, data_through=start - dt.timedelta(days=1))
    assert full.status == "ok" and blind.status == "post_not_covered"
    assert blind.comparison_area == full.comparison_area and blind.ratio is None
    assert blind.post_weeks_covered == 0
    assert "0 weeks of the 12-week post window are covered" in blind.message
    assert blind.regression_to_mean == full.regression_to_mean and blind.mde == pytest.approx(full.mde)


def test_an_uncovered_window_says_so_instead_of_estimating(demo_con):
    late = evaluation.evaluate(
        demo_con, level="beat", area_id="1C", categories=("robbery",), start=dt.date(2026, 10, 26)
    )
    assert late.status == "post_not_covered" and late.ratio is None and late.wdd is None
    assert late.harm_prevented is None and late.post_weeks_covered == 3  # 26 Oct - 15 Nov
    assert late.comparison_area is not None  # chosen already, from the pre weeks
    early = evaluation.evaluate(
        demo_con, level="beat", area_id="1C", categories=("robbery",), start=dt.date(2023, 12, 4)
    )
    assert early.status == "pre_not_covered" and "not covered" in early.message and early.comparison_area is None


def test_a_named_comparison_treated_areas_and_neighbours_are_respected(demo_con):
    common = dict(level="beat", area_id="4C", categories=("burglary_residential",), start=dt.date(2026, 5, 18))
    chosen = evaluation.evaluate(demo_con, **common)
    assert chosen.buffer == ("1E", "1F", "2D", "2E", "4B", "4D")  # the beats whose boundaries touch 4C's
    assert chosen.comparison_area not in chosen.buffer and not chosen.comparison_named
    avoided = evaluation.evaluate(demo_con, **common, treated=(chosen.comparison_area,))
    assert avoided.comparison_area not in (chosen.comparison_area, *chosen.buffer)
    named = evaluation.evaluate(demo_con, **common, comparison=PLANTED_CONTROL)
    assert named.comparison_area == PLANTED_CONTROL and named.comparison_named
    assert "named by the user" in named.chosen_text()
    inside = evaluation.evaluate(demo_con, **common, comparison="4B")
    assert next(c for c in inside.caveats if c.kind == "comparison").flagged
    with pytest.raises(evaluation.EvaluationError, match="no beat"):
        evaluation.evaluate(demo_con, **{**common, "area_id": "99Z"})
    with pytest.raises(evaluation.EvaluationError, match="unknown offence categories"):
        evaluation.evaluate(demo_con, **{**common, "categories": ("piracy",)})


def test_neighbours_from_shared_grid_cells_agree_with_the_boundaries(demo_con):
    """A warehouse without boundaries (a plain ingest) finds neighbours from incidents sharing grid cells."""
    from_boundaries = evaluation._neighbours_from_boundaries(demo_con, "beat")
    from_cells = evaluation._neighbours_from_cells(demo_con, "beat")
    pairs = {(a, b) for a, others in from_boundaries.items() for b in others}
    found = {(a, b) for a, others in from_cells.items() for b in others}
    assert len(pairs & found) / len(pairs) > 0.8  # most real neighbours are found
    assert len(found - pairs) / len(found) < 0.1  # and few that are not


def test_a_location_is_compared_with_a_location_away_from_its_ring_of_cells(demo_con):
    location, beat = demo_con.execute(
        """
        SELECT location_text, mode(beat) FROM incidents
        WHERE offense_category = 'theft_other' AND location_text IS NOT NULL
          AND occurred_at >= DATE '2026-02-23' AND occurred_at < DATE '2026-05-18'
        GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1
        """
    ).fetchone()
    result = evaluation.evaluate(
        demo_con, level="location", area_id=location, categories=("theft_other",), start=dt.date(2026, 5, 18)
    )
    assert result.status in ("ok", "not_estimable"), result.message
    assert len(result.buffer) == 9 and "grid cells of 250 m" in result.buffer_description
    assert result.comparison_area not in (None, location)
    assert result.counts[("buffer", "before")] >= 0 and ("comparison_buffer", "before") in result.counts


def test_the_json_has_the_issue_fields(demo_con):
    result = evaluation.evaluate(
        demo_con, level="beat", area_id="4C", categories=("burglary_residential",), start=dt.date(2026, 5, 18)
    )
    payload = json.loads(json.dumps(result.to_dict()))
    for key in (
        "ratio",
        "ratio_low",
        "ratio_high",
        "wdd",
        "wdd_se",
        "wdd_z",
        "comparison_area",
        "buffer",
        "pre_weeks",
        "post_weeks",
        "harm_prevented",
        "harm_prevented_low",
        "harm_prevented_high",
        "mde",
        "caveats",
    ):
        assert key in payload and payload[key] is not None, key
    assert payload["harm_prevented_low"] <= payload["harm_prevented"] <= payload["harm_prevented_high"]
    assert {"kind", "flagged", "text"} <= set(payload["caveats"][0])


# ------------------------------------------------------------------------------------------ city leaders
def test_quarter_summary_adds_the_taskings_whose_window_ended_in_the_quarter():
    def done(post_end_week: int, prevented: float, low: float, high: float, reduction: bool):
        start = dt.date(2026, 7, 6) + dt.timedelta(weeks=post_end_week - 12)
        e = evaluation.Evaluation(
            level="beat",
            area_id="1A",
            categories=("robbery",),
            start=start,
            pre_weeks=12,
            post_weeks=12,
            status="ok",
            message="",
            data_version="s",
            harm_index="cchi",
            harm_version="2016",
            data_through=dt.date(2026, 11, 15),
        )
        e.ratio = evaluation.RatioEstimate(0.7, 0.5, 0.9 if reduction else 1.1, np.log(0.7), 0.1, 1.0, 20, 0.01, 24)
        e.harm_prevented, e.harm_prevented_low, e.harm_prevented_high = prevented, low, high
        return e

    inside = [done(2, 1000, 200, 1800, True), done(6, 300, -500, 1100, False)]
    outside = [done(20, 5000, 4000, 6000, True)]
    summary = evaluation.quarter_summary(inside + outside, dt.date(2026, 7, 1), dt.date(2026, 10, 1))
    assert (summary.taskings, summary.evaluated, summary.reductions) == (2, 2, 1)
    assert summary.harm_prevented == 1300 and summary.reduction_share == 0.5
    z = 1.959964
    se = np.sqrt((1600 / (2 * z)) ** 2 + (1600 / (2 * z)) ** 2)
    assert summary.harm_prevented_low == pytest.approx(1300 - z * se, rel=1e-5)
    assert summary.label == "Q3 2026 (Jul – Sep)"
    assert evaluation.latest_complete_quarter(dt.date(2026, 11, 15)) == (dt.date(2026, 7, 1), dt.date(2026, 10, 1))
    assert evaluation.latest_complete_quarter(dt.date(2026, 9, 30)) == (dt.date(2026, 7, 1), dt.date(2026, 10, 1))


def test_harm_rate_against_last_year():
    monthly = pd.DataFrame(
        {
            "month": pd.to_datetime(
                ["2025-07-01", "2025-08-01", "2025-09-01", "2026-07-01", "2026-08-01", "2026-09-01"]
            ),
            "harm": [1000.0, 1000.0, 1000.0, 900.0, 900.0, 900.0],
            "harm_variance": [40000.0] * 6,
        }
    )
    found = evaluation.harm_rate_against_last_year(monthly, 100_000, dt.date(2026, 7, 1), dt.date(2026, 10, 1))
    assert found["value"] == pytest.approx(27.0) and found["last_year"] == pytest.approx(30.0)
    se = np.sqrt(120000) / 100
    assert found["high"] - found["value"] == pytest.approx(1.959964 * se, rel=1e-5)
    assert found["z"] == pytest.approx(-3.0 / np.sqrt(2 * se * se), rel=1e-5) and found["per_thousand"]


# ------------------------------------------------------------------------------------------ ilp evaluate
def test_cli_evaluates_an_area_as_text_and_json(run_cli, demo_warehouse):
    area = ["--area", "4C", "--level", "beat", "--category", "burglary_residential", "--start", "2026-05-18"]
    code, out, err = run_cli("evaluate", *area, warehouse=demo_warehouse)
    assert code == 0, err
    assert out.startswith("Residential burglary in beat 4C from 18 May 2026")
    assert "Effect (difference in differences, quasi-Poisson): ratio" in out and "WDD:" in out and "Caveats" in out
    code, out, _ = run_cli(
        "evaluate", *area, "--pre-weeks", "26", "--post-weeks", "26", "--json", warehouse=demo_warehouse
    )
    payload = json.loads(out)
    assert code == 0 and (payload["pre_weeks"], payload["post_weeks"]) == (26, 26) and payload["status"] == "ok"
    code, _, err = run_cli(
        "evaluate", "--area", "4C", "--level", "beat", "--start", "2026-05-18", warehouse=demo_warehouse
    )
    assert code == 1 and "--area needs --category" in err and "Traceback" not in err
    code, _, err = run_cli("evaluate", *area, "--pre-weeks", "2", warehouse=demo_warehouse)
    assert code == 1 and "pre window must be 4 to 156 weeks" in err


def test_cli_evaluates_a_tasking_and_records_its_comparison_once(run_cli, demo_warehouse, tmp_path):
    state_file = tmp_path / "state.sqlite"
    store = State(state_file)
    tasking_id = store.create_tasking(
        by="Ch. Supt. Vale",
        offense_category="burglary_residential",
        area_level="beat",
        area_id="4C",
        owner="Insp. Mensah",
        action="Target hardening",
        due_date=dt.date(2026, 6, 15),
    )
    with contextlib.closing(sqlite3.connect(state_file)) as con, con:
        con.execute("UPDATE taskings SET created_at = '2026-05-18T09:00:00' WHERE id = ?", (tasking_id,))
    code, out, err = run_cli(
        "evaluate", "--tasking", tasking_id, "--state", state_file, "--json", warehouse=demo_warehouse
    )
    assert code == 0, err
    first = json.loads(out)
    assert first["tasking_id"] == tasking_id and first["start"] == "2026-05-18" and not first["comparison_recorded"]
    records = store.audit_log(action=evaluation.RECORD_ACTION)
    assert len(records) == 1
    recorded = json.loads(records["parameters"].iloc[0])
    assert recorded["comparison_area"] == first["comparison_area"] and recorded["tasking_id"] == tasking_id
    assert recorded["chosen_from"] == "2026-02-23 to 2026-05-17"

    code, out, _ = run_cli(
        "evaluate", "--tasking", tasking_id, "--state", state_file, "--json", warehouse=demo_warehouse
    )
    again = json.loads(out)
    assert again["comparison_recorded"] and again["comparison_area"] == first["comparison_area"]
    assert "recorded then" in again["comparison_chosen"]
    assert len(store.audit_log(action=evaluation.RECORD_ACTION)) == 1  # recorded once
    code, out, _ = run_cli(
        "evaluate",
        "--tasking",
        tasking_id,
        "--state",
        state_file,
        "--comparison",
        "3C",
        "--json",
        warehouse=demo_warehouse,
    )
    assert json.loads(out)["comparison_named"] and json.loads(out)["comparison_area"] == "3C"
    code, _, err = run_cli(
        "evaluate", "--tasking", tasking_id, "--start", "2026-01-01", "--state", state_file, warehouse=demo_warehouse
    )
    assert code == 1 and "--start describe an --area" in err


# ------------------------------------------------------------------------------------------ the brief
def backdated_tasking(store: State, created_at: str, **values) -> int:
    tasking_id = store.create_tasking(
        by="Ch. Supt. Vale",
        owner="Insp. Mensah",
        action="Problem-solving plan",
        due_date=dt.date(2026, 11, 30),
        **values,
    )
    with contextlib.closing(sqlite3.connect(store.path)) as con, con:
        con.execute("UPDATE taskings SET created_at = ? WHERE id = ?", (created_at, tasking_id))
    return tasking_id


def test_the_printed_brief_says_what_happened_to_last_months_taskings(demo_warehouse, tmp_path):
    """The brief of the week ending 15 Nov 2026 lists the taskings created in October 2026 with their result
    notes and an interim evaluation over the weeks of data after them; September's are not listed."""
    from ilp import brief_report

    store = State(tmp_path / "state.sqlite")
    october = backdated_tasking(
        store, "2026-10-05T08:00:00", offense_category="burglary_residential", area_level="beat", area_id="2D"
    )
    store.update_tasking(october, by="Ch. Supt. Vale", status="done", result_note="Crime prevention visits")
    late = backdated_tasking(store, "2026-10-28T08:00:00", offense_category="robbery", area_level="beat", area_id="1C")
    backdated_tasking(store, "2026-09-20T08:00:00", offense_category="robbery", area_level="beat", area_id="3D")

    report = brief_report.build_from_warehouse(Warehouse(demo_warehouse), state=store)
    assert report.as_of == dt.date(2026, 11, 15) and report.tasking_month == dt.date(2026, 10, 1)
    results = report.tasking_results.set_index("id")
    assert results.index.tolist() == [october, late]
    first = results.loc[october]
    assert first["result_note"] == "Crime prevention visits" and first["weeks_after"] == 6
    assert first["interim"] and first["reading"].endswith("(interim, 6 of 12 weeks)")
    with contextlib.closing(Warehouse(demo_warehouse).connect()) as con:
        expected = evaluation.evaluate(
            con,
            level="beat",
            area_id="2D",
            categories=("burglary_residential",),
            start=dt.date(2026, 10, 5),
            post_weeks=6,
            data_through=dt.date(2026, 11, 15),
        )
    assert first["ratio"] == pytest.approx(expected.ratio.ratio) and first["comparison"] == expected.comparison_area
    second = results.loc[late]
    assert second["weeks_after"] == 2 and pd.isna(second["ratio"]) and second["reading"].startswith("Too early")

    document = brief_report.render_html(report)
    section = document[document.index("6. Last month's taskings: what happened (October 2026)") :]
    assert "Crime prevention visits" in section and "interim, 6 of 12 weeks" in section
    assert f"{expected.ratio.ratio:.2f} ({expected.ratio.low:.2f} – {expected.ratio.high:.2f})" in section
    assert "Too early: 2 weeks of data after it" in section


@pytest.mark.usefixtures("entry_point_has_run")
def test_the_brief_page_shows_last_months_taskings(app_env):
    from pagetest import frame_with, open_page

    store = State(app_env["ILP_STATE"])
    tasking_id = backdated_tasking(
        store, "2026-10-05T08:00:00", offense_category="burglary_residential", area_level="beat", area_id="2D"
    )
    at = open_page("brief", "commander")
    assert "Last month's taskings: what happened (October 2026)" in [h.value for h in at.header]
    row = frame_with(at, "reading", "ratio").iloc[0]
    assert row["id"] == tasking_id and row["reading"].endswith("(interim, 6 of 12 weeks)")
