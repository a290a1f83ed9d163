"""The Outcomes page's measures as specifications, each computed and reduced for the viewer's role.

A ``MeasureSpec`` says everything one outcome measure needs: its title and definition, what it needs
loaded (and the "not available" message), its named query and the ``ilp.analytics.outcomes`` function
that computes it, its count columns and the rates that depend on them (for small-count suppression), its
headline figure(s) with formats, its chart and its table. ``measure(spec, context, query, role)`` runs it
and returns a ``MeasureView``: frames already reduced for the role (``ilp.access.suppress_small_counts``),
headline metrics, captions and the chart title as text with person-level detail left out for
aggregate-only roles. pages/outcomes.py only draws the views of ``MEASURES``, in order.

Adding a measure is adding a spec to ``MEASURES`` (and its ``queries/*.sql``). Text in a spec is a
``str.format`` template; the fields it may use are listed in ``_fields``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ilp import access
from ilp.analytics import outcomes

Query = Callable[..., pd.DataFrame]  # runs a named query with parameters, e.g. PageContext.query

THRESHOLD = access.SMALL_COUNT_THRESHOLD
WITHHELD = (
    f"Withheld for this role: the monthly counts behind this figure are under {THRESHOLD}, and rates "
    f"built from counts under {THRESHOLD} are not shown."
)
AGGREGATE_NOTE = (
    f'Aggregate view: counts under {THRESHOLD} are shown as "<{THRESHOLD}" and rates built from '
    "them are withheld; no person-level data or locations are shown."
)


def role_note(role: str | None) -> str | None:
    """What the page says once, at the top, about how it is reduced for ``role`` (None: not reduced)."""
    return AGGREGATE_NOTE if access.Audience(role).aggregate_only else None


def month_label(when) -> str:
    return f"{pd.Timestamp(when):%b %Y}" if when is not None else "—"


# ------------------------------------------------------------------------------------------ inputs
@dataclasses.dataclass(frozen=True)
class OutcomeContext:
    """What every measure is computed for: the reporting window, the area and what the snapshot holds."""

    window: outcomes.ReportingWindow
    last_data_day: dt.date
    available: Mapping[str, int]  # the outcomes_availability row
    population: float | None  # residents of the area; None unless every district has one
    scope: str  # "All districts" or the district's name
    district: str | None
    category_label: str | None  # the offence-category filter (harm only), None for all
    harm_unit: str  # e.g. "days of imprisonment"
    harm_unit_short: str  # e.g. "days"

    @classmethod
    def load(cls, query: Query, **fields) -> OutcomeContext:
        """The context with ``available`` and ``population`` read through ``query``."""
        population_row = query("areas_population").iloc[0]
        population = population_row["population"]
        has_population = bool(
            pd.notna(population) and population > 0 and population_row["districts_without_population"] == 0
        )
        return cls(
            available=query("outcomes_availability").iloc[0],
            population=population if has_population else None,
            **fields,
        )


# ------------------------------------------------------------------------------------------ specifications
@dataclasses.dataclass(frozen=True)
class HeadlineSpec:
    """One headline figure: the latest usable period's ``value`` with its ``lo`` – ``hi`` interval, and its
    change from the same period a year earlier."""

    label: str = "{period}"
    value: str = "rate"
    lo: str = "rate_lo"
    hi: str = "rate_hi"
    shown: str = "{value:.1f}"  # the metric's value
    delta: str = "+.1f"  # format of the change (times delta_scale)
    delta_unit: str = ""
    delta_scale: float = 1.0
    versus: str = "vs {earlier}"
    lower_is_better: bool = True
    help: str | None = None
    name: str = ""  # also offers {<name>}, {<name>_lo}, {<name>_hi} to templates


@dataclasses.dataclass(frozen=True)
class Trace:
    """A line with its 95% band on a chart: columns ``y``, ``lo``, ``hi``."""

    y: str = "rate"
    lo: str = "rate_lo"
    hi: str = "rate_hi"
    name: str = ""
    colour: str = "#0072B2"


@dataclasses.dataclass(frozen=True)
class ChartSpec:
    title: str
    y_title: str
    traces: tuple[Trace, ...] = (Trace(),)
    x: str = "month"
    x_title: str = "Month"
    scale: float = 1.0  # e.g. 100 for shares drawn as percentages
    uses_harm: bool = False
    legend: bool | None = None  # None: shown when a trace is named or points are provisional
    lines: Callable[[pd.DataFrame, OutcomeContext], pd.DataFrame | None] | None = None  # grey background lines
    lines_note: str | None = None  # caption under the chart when background lines are drawn


@dataclasses.dataclass(frozen=True)
class Column:
    label: str
    format: str | None = None  # a number format; None: text (or a count, when it is one)
    help: str | None = None


@dataclasses.dataclass(frozen=True)
class TableSpec:
    columns: Mapping[str, Column]
    monthly: bool = True  # a "Monthly figures" expander, newest month first, with a month column
    prepare: Callable[[pd.DataFrame, OutcomeContext], pd.DataFrame] | None = None  # the table from the measure frame
    counts: tuple[str, ...] | None = None  # None: the measure's
    dependent: Mapping[str, tuple[str, ...]] | None = None
    when_empty: bool = True  # shown even when the measure has no figure


@dataclasses.dataclass(frozen=True)
class PooledSpec:
    """A rate pooled over the last ``months`` months (steadier than one month when events are few); shown
    in the caption, and as the headline when the month's own rate is withheld or missing."""

    events: str
    base: str
    label: str
    shown: str
    help: str
    note: str  # fields: months, rate, lo, hi
    detail: str  # person-level tail of the note: fields events, base
    months: int = 12


@dataclasses.dataclass(frozen=True)
class Fallback:
    """A variant of a measure for when ``when(context)``: shown with ``warning``."""

    when: Callable[[OutcomeContext], bool]
    warning: str
    spec: MeasureSpec


@dataclasses.dataclass(frozen=True)
class Facts:
    """What a spec's ``facts`` function gets: the measure frame (not reduced), its headlines, the context,
    and the audience (``access.Audience``), which decides what detail the role may see."""

    frame: pd.DataFrame
    headlines: list[outcomes.Headline]
    context: OutcomeContext
    audience: access.Audience


@dataclasses.dataclass(frozen=True)
class MeasureSpec:
    """One outcome measure. The fields up to ``no_data`` every measure has; the rest have defaults and carry
    the specialities: several headlines on one chart (response times), unsettled months (``usable``:
    clearance), a pooled rate when the month is withheld (``pooled``: use of force), a series picked from
    per-area rows with grey per-area lines and a latest-period table (``series``, ``ChartSpec.lines``,
    ``TableSpec.prepare``: trust), a variant without population (``fallback``: harm)."""

    key: str
    title: str
    definition: str
    query: str  # queries/<query>.sql, run with the window's parameters
    compute: Callable[[pd.DataFrame, OutcomeContext], pd.DataFrame]
    headlines: tuple[HeadlineSpec, ...]
    chart: ChartSpec
    table: TableSpec
    caption: str  # under the headline
    no_data: str  # instead of the figure when there is none
    requires: tuple[tuple[str, str], ...] = ()  # (outcomes_availability column, "not available" message)
    counts: tuple[str, ...] = ()  # count columns: "<10" for aggregate-only roles
    dependent: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # count -> rates built on it
    withheld_if: str | None = None  # count column: no figure while it has events means "withheld"
    has_data: Callable[[pd.DataFrame], bool] | None = None  # None: the first headline is available
    usable: str | None = None  # boolean column: rows a headline may come from; others drawn dotted
    period: str = "month"
    period_label: str | None = None  # column labelling a period (default "Oct 2026")
    series: Callable[[pd.DataFrame], pd.DataFrame] | None = None  # the rows headline and chart use
    facts: Callable[[Facts], dict[str, str]] | None = None  # more template fields
    notice_suffix: str = ""
    pooled: PooledSpec | None = None
    fallback: Fallback | None = None


# ------------------------------------------------------------------------------------------ views
@dataclasses.dataclass(frozen=True)
class MetricView:
    label: str
    value: str
    delta: str | None = None
    delta_color: str = "normal"  # "normal", "inverse" or "off" (within noise, or no comparison)
    help: str | None = None


@dataclasses.dataclass(frozen=True)
class ChartView:
    frame: pd.DataFrame
    title: str
    y_title: str
    traces: tuple[Trace, ...]
    x: str
    x_title: str
    scale: float
    uses_harm: bool
    legend: bool | None
    provisional: pd.Series | None  # True for points not yet settled
    lines: pd.DataFrame | None  # columns x, pct, name: one grey line per name
    note: str | None


@dataclasses.dataclass(frozen=True)
class ColumnView:
    label: str
    kind: str  # "month", "count" (a number), "text" or "number"
    format: str | None = None
    help: str | None = None


@dataclasses.dataclass(frozen=True)
class TableView:
    frame: pd.DataFrame  # the shown columns only, reduced for the role, in display order
    columns: dict[str, ColumnView]
    monthly: bool


@dataclasses.dataclass
class MeasureView:
    """One measure as the role may see it; the page draws it without deciding anything."""

    key: str
    title: str
    definition: str
    unavailable: str | None = None  # "Not available: ..." (and nothing else is shown)
    warning: str | None = None
    notice: str | None = None  # no figure to show: why
    notice_beside: bool = False  # the notice goes beside the metrics, not instead of them
    metrics: list[MetricView] = dataclasses.field(default_factory=list)
    caption: str | None = None
    chart: ChartView | None = None
    table: TableView | None = None


# ------------------------------------------------------------------------------------------ computing a view
def for_role(frame: pd.DataFrame, spec: MeasureSpec, role: str | None) -> pd.DataFrame:
    """``frame`` (a measure frame of ``spec``) as ``role`` may see it: for aggregate-only roles the spec's
    counts under the threshold are "<10" (text) and the rates built from them are blanked."""
    return access.Audience(role).frame(frame, spec.counts, spec.dependent)


def measures(query: Query, *, context: OutcomeContext, role: str | None) -> list[MeasureView]:
    """Every measure of ``MEASURES``, in order, for ``context`` and ``role`` (what the Outcomes page draws;
    the page caches it with PageContext.derived)."""
    return [measure(spec, context, query, role) for spec in MEASURES]


def measure(spec: MeasureSpec, context: OutcomeContext, query: Query, role: str | None) -> MeasureView:
    """``spec`` computed through ``query`` for ``context`` and reduced for ``role``."""
    audience = access.Audience(role)
    warning = None
    if spec.fallback is not None and spec.fallback.when(context):
        warning, spec = spec.fallback.warning, spec.fallback.spec
    view = MeasureView(spec.key, spec.title, spec.definition, warning=warning)
    for column, message in spec.requires:
        if context.available[column] == 0:
            view.unavailable = message
            return view

    frame = spec.compute(query(spec.query, **context.window.params()), context)
    series = spec.series(frame) if spec.series is not None else frame
    shown = audience.frame(series, spec.counts, spec.dependent)
    usable = series[spec.usable] if spec.usable else None
    heads = [outcomes.headline(shown, h.value, h.lo, h.hi, period=spec.period, usable=usable) for h in spec.headlines]
    empty = not spec.has_data(frame) if spec.has_data is not None else not heads[0].available
    fields = _fields(spec, series, heads, context, audience)

    pooled = _pooled(spec.pooled, frame, audience) if spec.pooled is not None else None
    if pooled is not None:
        fields["pooled_note"] = pooled[1]
    if empty:
        withheld = audience.aggregate_only and spec.withheld_if is not None and bool(series[spec.withheld_if].any())
        view.notice = (WITHHELD if withheld else spec.no_data.format(**fields)) + spec.notice_suffix.format(**fields)
        view.notice_beside = spec.pooled is not None
        if pooled is not None and pooled[0] is not None:
            view.metrics, view.caption = [pooled[0]], pooled[1]
    else:
        view.metrics = [_metric(h, head, spec, series, fields) for h, head in zip(spec.headlines, heads)]
        view.caption = spec.caption.format(**fields)
        view.chart = _chart(spec, shown, series, frame, context, fields)
    if not empty or spec.table.when_empty:
        view.table = _table(spec, frame, context, audience, fields)
    return view


def _period_label(spec: MeasureSpec, series: pd.DataFrame, when) -> str:
    if spec.period_label is None or when is None:
        return month_label(when)
    return series.loc[pd.to_datetime(series[spec.period]) == when, spec.period_label].iloc[0]


def _fields(
    spec: MeasureSpec,
    series: pd.DataFrame,
    heads: list[outcomes.Headline],
    context: OutcomeContext,
    audience: access.Audience,
) -> dict:
    """Template fields: the context's (scope, harm_unit, harm_unit_cap, harm_unit_short, population,
    category_note, last_month, threshold), the first headline's (value, lo, hi, period), each named
    headline's (<name>, <name>_lo, <name>_hi), and the spec's ``facts``."""
    first = heads[0]
    fields = {
        "scope": context.scope,
        "harm_unit": context.harm_unit,
        "harm_unit_cap": context.harm_unit.capitalize(),
        "harm_unit_short": context.harm_unit_short,
        "population": context.population,
        "category_note": f" Offence category: {context.category_label}." if context.category_label else "",
        "last_month": month_label(context.window.last_month),
        "threshold": audience.threshold,
        "value": first.value,
        "lo": first.lo,
        "hi": first.hi,
        "period": _period_label(spec, series, first.period),
    }
    for h, head in zip(spec.headlines, heads):
        if h.name:
            fields.update({h.name: head.value, f"{h.name}_lo": head.lo, f"{h.name}_hi": head.hi})
    if spec.facts is not None:
        fields.update(spec.facts(Facts(series, heads, context, audience)))
    return fields


def _metric(
    h: HeadlineSpec, head: outcomes.Headline, spec: MeasureSpec, series: pd.DataFrame, fields: dict
) -> MetricView:
    own = {
        **fields,
        "value": head.value,
        "lo": head.lo,
        "hi": head.hi,
        "period": _period_label(spec, series, head.period),
    }
    delta = None
    if head.earlier_period is not None and np.isfinite(head.earlier):
        noise = " (within noise)" if head.within_noise else ""
        versus = h.versus.format(earlier=month_label(head.earlier_period))
        delta = f"{head.change * h.delta_scale:{h.delta}}{h.delta_unit} {versus}{noise}"
    colour = "off" if head.within_noise in (None, True) else ("inverse" if h.lower_is_better else "normal")
    return MetricView(
        h.label.format(**own), h.shown.format(**own), delta, colour, h.help.format(**own) if h.help else None
    )


def _pooled(pooled: PooledSpec, frame: pd.DataFrame, audience: access.Audience) -> tuple[MetricView | None, str]:
    """The pooled figure's metric (None when it may not be shown) and its note ("" then)."""
    rate = outcomes.pooled_rate(frame, pooled.events, pooled.base, last_months=pooled.months)
    if rate["base"] <= 0 or audience.is_small(rate["events"]):
        return None, ""
    note = pooled.note.format(**rate) + audience.detail(pooled.detail.format(**rate), ".")
    return MetricView(pooled.label.format(**rate), pooled.shown.format(**rate), help=pooled.help), note


def _chart(
    spec: MeasureSpec,
    shown: pd.DataFrame,
    series: pd.DataFrame,
    frame: pd.DataFrame,
    context: OutcomeContext,
    fields: dict,
) -> ChartView:
    chart = spec.chart
    lines = chart.lines(frame, context) if chart.lines is not None else None
    traces = tuple(dataclasses.replace(t, name=t.name.format(**fields)) for t in chart.traces)
    return ChartView(
        frame=shown,
        title=chart.title.format(**fields),
        y_title=chart.y_title.format(**fields),
        traces=traces,
        x=chart.x,
        x_title=chart.x_title,
        scale=chart.scale,
        uses_harm=chart.uses_harm,
        legend=chart.legend,
        provisional=~series[spec.usable].astype(bool) if spec.usable else None,
        lines=lines,
        note=chart.lines_note if chart.lines_note and lines is not None and len(lines) else None,
    )


def _table(
    spec: MeasureSpec, frame: pd.DataFrame, context: OutcomeContext, audience: access.Audience, fields: dict
) -> TableView:
    table = spec.table
    counts = spec.counts if table.counts is None else table.counts
    dependent = spec.dependent if table.dependent is None else table.dependent
    rows = table.prepare(frame, context) if table.prepare is not None else frame
    shown = audience.frame(rows, counts, dependent)
    columns = {"month": ColumnView("Month", "month", "MMM YYYY")} if table.monthly else {}
    for name, column in table.columns.items():
        label = column.label.format(**fields)
        if name in counts:
            columns[name] = ColumnView(label, "text" if audience.aggregate_only else "count", help=column.help)
        elif column.format is None:
            columns[name] = ColumnView(label, "text", help=column.help)
        else:
            columns[name] = ColumnView(label, "number", column.format, column.help)
    shown = shown[list(columns)]
    return TableView(shown.iloc[::-1] if table.monthly else shown, columns, table.monthly)


# ------------------------------------------------------------------------------------------ the measures
def _repeat_victimisation(monthly: pd.DataFrame, context: OutcomeContext) -> pd.DataFrame:
    """Months whose trailing 12 months are complete and have victims; other months blank (no rate, counts 0)."""
    repeat = outcomes.repeat_victimisation(monthly, context.window)
    usable = repeat["complete_window"] & (repeat["victims"] > 0)
    return (
        repeat.where(usable)
        .assign(month=repeat["month"], complete_window=repeat["complete_window"])
        .fillna({"victims": 0, "repeat_victims": 0})
    )


def _repeat_facts(facts: Facts) -> dict[str, str]:
    head, frame = facts.headlines[0], facts.frame
    victims = frame.loc[frame["month"] == head.period, "victims"]
    incomplete = int((~frame["complete_window"].astype(bool)).sum())
    return {
        "victims": facts.audience.detail(f", of {int(victims.iloc[0]):,} victims.", ".") if len(victims) else ".",
        "early_months": ""
        if incomplete == 0
        else f" {incomplete} early months are left out: the data do not yet cover their full 12 months.",
    }


def _response_facts(facts: Facts) -> dict[str, str]:
    head, frame = facts.headlines[0], facts.frame
    if not head.available:
        return {}
    last = frame[frame["month"] == head.period].iloc[0]
    excluded = int(last["no_arrival"] + last["negative"])
    return {
        "timed": facts.audience.detail(
            f"{int(last['timed']):,} timed calls in {month_label(head.period)}; {excluded:,} "
            f"({excluded / max(int(last['calls']), 1):.0%}) had no arrival time (cancelled, duplicate or no unit "
            "recorded) and are left out.",
            "Calls with no arrival time (cancelled, duplicate) are left out.",
        )
    }


def _settling_facts(facts: Facts) -> dict[str, str]:
    frame = facts.frame
    unsettled = frame.loc[~frame["settled"], "month"]
    note = (
        f"Not yet settled: {month_label(unsettled.min())} – {month_label(unsettled.max())} (dotted) — "
        f"investigations into offences from the last {outcomes.SETTLE_DAYS} days of data are still open, so "
        "these rates will rise."
        if len(unsettled)
        else ""
    ) + (
        " This source records clearance only by arrest (no other clearances), so the rate counts arrests."
        if facts.context.available["cleared_other"] == 0
        else ""
    )
    return {"settling_note": note}


def _survey_shares(survey: pd.DataFrame, context: OutcomeContext) -> pd.DataFrame:
    return outcomes.survey_share(survey) if len(survey) else survey


def _pooled_rows(shares: pd.DataFrame) -> pd.DataFrame:
    """All districts pooled when there are several, else the one district's rows."""
    return shares[shares["area_id"].isna()] if shares["area_id"].isna().any() else shares


MAX_DISTRICT_LINES = 40  # more grey lines than this hide the pooled line instead of setting it in context


def _district_lines(shares: pd.DataFrame, context: OutcomeContext) -> pd.DataFrame:
    districts = shares[shares["area_id"].notna()] if context.district is None else shares.iloc[0:0]
    if districts["area_id"].nunique() > MAX_DISTRICT_LINES:
        districts = districts.iloc[0:0]
    return districts.assign(pct=districts["value"] * 100)


def _trust_facts(facts: Facts) -> dict[str, str]:
    head, frame = facts.headlines[0], facts.frame
    if not head.available:
        return {}
    respondents = frame.loc[pd.to_datetime(frame["period_start"]) == head.period, "respondents"].iloc[0]
    return {
        "respondents": facts.audience.count(
            respondents, f"{int(respondents):,} respondents", f"fewer than {facts.audience.threshold} respondents"
        ),
        "pooled_by": " (all districts pooled, weighted by respondents)." if facts.context.district is None else ".",
    }


def _latest_quarter(shares: pd.DataFrame, context: OutcomeContext) -> pd.DataFrame:
    """Per district (or the chosen one): the latest quarter, in percent, and the change from a year earlier."""
    latest = outcomes.latest_and_year_earlier(shares)
    table = latest[latest["area_id"].notna()] if context.district is None else latest
    return table.assign(
        value_pct=table["value"] * 100,
        lo_pct=table["lo"] * 100,
        hi_pct=table["hi"] * 100,
        change_pp=table["change"] * 100,
        noise=table["change_is_noise"].map({True: "within noise", False: "beyond noise"}),
    )


RATE_INTERVAL = ("rate", "rate_lo", "rate_hi")

HARM_RATE = MeasureSpec(
    key="harm",
    title="Harm per 1,000 residents",
    definition="Harm from recorded crime per 1,000 residents in the month: each offence weighted by the harm index, "
    "proactive offences (drugs, weapons possession, vehicle offences) excluded as the CCHI does.",
    query="outcomes_harm_monthly",
    compute=lambda monthly, context: outcomes.harm_rate(monthly, context.population, context.window),
    counts=("incidents",),
    has_data=lambda frame: frame["incidents"].sum() > 0,
    no_data="No incidents recorded in the reporting window.",
    headlines=(HeadlineSpec(shown="{value:,.1f}", delta="+,.1f", help="{harm_unit} per 1,000 residents in the month"),),
    caption="{harm_unit_cap} per 1,000 residents (population {population:,.0f}). 95% interval {lo:,.1f} – {hi:,.1f}."
    "{category_note}",
    chart=ChartSpec(
        "Harm per 1,000 residents: {value:,.0f} in {period}", "{harm_unit_short} per 1,000 residents", uses_harm=True
    ),
    table=TableSpec(
        {
            "incidents": Column("Incidents"),
            "harm": Column("Harm ({harm_unit})", "%.0f"),
            "rate": Column("Harm per 1,000 residents", "%.1f"),
            "rate_lo": Column("95% low", "%.1f"),
            "rate_hi": Column("95% high", "%.1f"),
        }
    ),
)
HARM_RATE = dataclasses.replace(
    HARM_RATE,
    fallback=Fallback(
        when=lambda context: context.population is None,
        warning="No per-capita rates: no population loaded (`ilp areas --population ...`). Showing total harm instead.",
        spec=dataclasses.replace(
            HARM_RATE,
            headlines=(
                HeadlineSpec(
                    "Total harm, {period}",
                    "harm",
                    "harm_lo",
                    "harm_hi",
                    shown="{value:,.0f}",
                    delta="+,.0f",
                    help="{harm_unit}",
                ),
            ),
            caption="{harm_unit_cap}. 95% interval {lo:,.0f} – {hi:,.0f}.{category_note}",
            chart=ChartSpec(
                "Total harm by month: {value:,.0f} in {period}",
                "harm ({harm_unit_short})",
                traces=(Trace("harm", "harm_lo", "harm_hi"),),
                uses_harm=True,
            ),
            table=TableSpec(
                {
                    "incidents": Column("Incidents"),
                    "harm": Column("Harm ({harm_unit})", "%.0f"),
                    "harm_lo": Column("95% low", "%.0f"),
                    "harm_hi": Column("95% high", "%.0f"),
                }
            ),
        ),
    ),
)

REPEAT_VICTIMISATION = MeasureSpec(
    key="repeat",
    title="Repeat victimisation",
    definition="Of the people recorded as victims in the 12 months up to the month's end, the share who were victims "
    "in two or more separate incidents.",
    requires=(
        ("victim_links", "Not available: no victim data loaded (the export links no people to incidents as victims)."),
    ),
    query="outcomes_repeat_victimisation",
    compute=_repeat_victimisation,
    counts=("victims", "repeat_victims"),
    dependent={"repeat_victims": RATE_INTERVAL},
    withheld_if="repeat_victims",
    no_data="No month to show: no victims recorded in the reporting window, or the data do not yet cover a full "
    "12 months.",
    headlines=(
        HeadlineSpec(
            shown="{value:.1%}",
            delta_unit=" pp",
            delta_scale=100,
            help="Share of the trailing 12 months' victims with 2+ incidents",
        ),
    ),
    facts=_repeat_facts,
    caption="95% interval {lo:.1%} – {hi:.1%}{victims}{early_months}",
    chart=ChartSpec(
        "Repeat victims: {value:.1%} of victims in the 12 months to {period}",
        "victims with 2+ incidents (%)",
        scale=100,
    ),
    table=TableSpec(
        {
            "victims": Column("Victims (12 months)"),
            "repeat_victims": Column("Repeat victims"),
            "rate": Column("Share repeat", "%.3f"),
            "rate_lo": Column("95% low", "%.3f"),
            "rate_hi": Column("95% high", "%.3f"),
        }
    ),
)

RESPONSE_TIMES = MeasureSpec(
    key="response",
    title="Emergency response time",
    definition="Minutes from a priority-1 (emergency) call being received to the first unit arriving: the median "
    "call and the 90th percentile (9 in 10 calls are answered faster).",
    requires=(
        ("calls", "Not available: no calls-for-service data loaded."),
        ("priority_one_calls", "Not available: the calls-for-service data hold no priority-1 calls."),
    ),
    query="outcomes_response_times",
    compute=lambda calls, context: outcomes.response_times(calls, context.window),
    counts=("calls", "timed"),
    dependent={"timed": ("median", "median_lo", "median_hi", "p90", "p90_lo", "p90_hi")},
    withheld_if="timed",
    no_data="No priority-1 call with an arrival time in the reporting window.",
    headlines=(
        HeadlineSpec(
            "Median, {period}",
            "median",
            "median_lo",
            "median_hi",
            shown="{value:.1f} min",
            delta_unit=" min",
            name="median",
        ),
        HeadlineSpec(
            "90th percentile, {period}",
            "p90",
            "p90_lo",
            "p90_hi",
            shown="{value:.1f} min",
            delta_unit=" min",
            name="p90",
        ),
    ),
    facts=_response_facts,
    caption="95% intervals: median {median_lo:.1f} – {median_hi:.1f} min, 90th percentile {p90_lo:.1f} – "
    "{p90_hi:.1f} min. {timed}",
    chart=ChartSpec(
        "Priority-1 response: median {median:.1f} min, 90th percentile {p90:.1f} min in {period}",
        "minutes from call to arrival",
        traces=(
            Trace("p90", "p90_lo", "p90_hi", "90th percentile", "#D55E00"),
            Trace("median", "median_lo", "median_hi", "median"),
        ),
    ),
    table=TableSpec(
        {
            "calls": Column("Priority-1 calls"),
            "timed": Column("With arrival time"),
            "median": Column("Median (min)", "%.1f"),
            "p90": Column("90th percentile (min)", "%.1f"),
            "p90_lo": Column("90th pct 95% low", "%.1f"),
            "p90_hi": Column("90th pct 95% high", "%.1f"),
        }
    ),
)

VIOLENT_CLEARANCE = MeasureSpec(
    key="clearance",
    title="Violent crime clearance rate",
    definition="Share of violent offences (by month they occurred) recorded as cleared, by arrest or otherwise, "
    "as of this snapshot.",
    requires=(("incidents_with_clearance", "Not available: the source records no clearance status."),),
    query="outcomes_violent_clearance",
    compute=lambda monthly, context: outcomes.clearance_rate(monthly, context.window, context.last_data_day),
    counts=("incidents", "cleared"),
    dependent={"cleared": RATE_INTERVAL},
    withheld_if="cleared",
    usable="settled",
    no_data="No settled month with violent offences in the reporting window.",
    notice_suffix=" {settling_note}",
    headlines=(
        HeadlineSpec(
            "{period} (latest settled month)",
            shown="{value:.1%}",
            delta_unit=" pp",
            delta_scale=100,
            lower_is_better=False,
        ),
    ),
    facts=_settling_facts,
    caption="95% interval {lo:.1%} – {hi:.1%}. {settling_note}",
    chart=ChartSpec("Violent crime cleared: {value:.0%} in {period}", "violent offences cleared (%)", scale=100),
    table=TableSpec(
        {
            "incidents": Column("Violent offences"),
            "cleared": Column("Cleared"),
            "rate": Column("Share cleared", "%.3f"),
            "rate_lo": Column("95% low", "%.3f"),
            "rate_hi": Column("95% high", "%.3f"),
            "settled": Column("Status"),
        },
        prepare=lambda frame, context: frame.assign(
            settled=frame["settled"].map({True: "settled", False: "not yet settled"})
        ),
    ),
)

USE_OF_FORCE = MeasureSpec(
    key="force",
    title="Use of force per 1,000 arrests",
    definition="Use-of-force events for every 1,000 incidents ending in an arrest in the month.",
    requires=(
        ("use_of_force_events", "Not available: no use-of-force data loaded."),
        (
            "incidents_with_arrest_flag",
            "Not available: the incident data do not say which incidents ended in an arrest.",
        ),
    ),
    query="outcomes_use_of_force",
    compute=lambda monthly, context: outcomes.rate_per_thousand(monthly, context.window, "events", "arrests"),
    counts=("events", "arrests"),
    dependent={"events": RATE_INTERVAL},
    withheld_if="events",
    no_data="No month with arrests in the reporting window.",
    headlines=(HeadlineSpec(help="Use-of-force events per 1,000 arrests"),),
    pooled=PooledSpec(
        "events",
        "arrests",
        label="Last {months} months",
        shown="{rate:.1f}",
        help="Use-of-force events per 1,000 arrests, the months pooled",
        note="Last {months} months together: {rate:.1f} per 1,000 arrests (95% interval {lo:.1f} – {hi:.1f})",
        detail=", {events:,} events in {base:,} arrests.",
    ),
    caption="95% interval {lo:.1f} – {hi:.1f}: monthly counts are small, so single months swing. {pooled_note}",
    chart=ChartSpec("Use of force: {value:.1f} per 1,000 arrests in {period}", "events per 1,000 arrests"),
    table=TableSpec(
        {
            "events": Column("Use-of-force events"),
            "arrests": Column("Arrests"),
            "rate": Column("Per 1,000 arrests", "%.1f"),
            "rate_lo": Column("95% low", "%.1f"),
            "rate_hi": Column("95% high", "%.1f"),
        }
    ),
)

TRUST = MeasureSpec(
    key="trust",
    title="Community trust in the police",
    definition="Share of community-survey respondents who say they trust the police, by district and quarter.",
    requires=(("trust_survey_rows", "Not available: no community survey data loaded (measure 'trust_police')."),),
    query="outcomes_trust",
    compute=_survey_shares,
    has_data=lambda shares: not shares.empty,
    no_data="No trust survey results for {scope} up to {last_month}.",
    series=_pooled_rows,
    period="period_start",
    period_label="period_label",
    headlines=(
        HeadlineSpec(
            "{scope}, {period}",
            "value",
            "lo",
            "hi",
            shown="{value:.0%}",
            delta_unit=" pp",
            delta_scale=100,
            versus="vs a year earlier",
            lower_is_better=False,
        ),
    ),
    facts=_trust_facts,
    caption="95% interval {lo:.0%} – {hi:.0%}, {respondents}{pooled_by}",
    chart=ChartSpec(
        "Trust in the police: {value:.0%} in {period}",
        "respondents who trust the police (%)",
        traces=(Trace("value", "lo", "hi", name="{scope}", colour="#1f3a5f"),),
        x="period_start",
        x_title="Survey quarter",
        scale=100,
        legend=False,
        lines=_district_lines,
        lines_note="Dark line and band: all districts pooled; grey lines: each district.",
    ),
    table=TableSpec(
        {
            "name": Column("District"),
            "period_label": Column("Latest quarter"),
            "value_pct": Column("Trust (%)", "%.0f%%"),
            "lo_pct": Column("95% low", "%.0f%%"),
            "hi_pct": Column("95% high", "%.0f%%"),
            "respondents": Column("Respondents"),
            "change_pp": Column("Change vs a year earlier (points)", "%+.1f"),
            "noise": Column(
                "Change", help="Whether the change exceeds the combined 95% uncertainty of the two surveys"
            ),
        },
        monthly=False,
        prepare=_latest_quarter,
        counts=("respondents",),
        dependent={"respondents": ("value", "lo", "hi", "change", "value_pct", "lo_pct", "hi_pct", "change_pp")},
        when_empty=False,
    ),
)

MEASURES: tuple[MeasureSpec, ...] = (
    HARM_RATE,
    REPEAT_VICTIMISATION,
    RESPONSE_TIMES,
    VIOLENT_CLEARANCE,
    USE_OF_FORCE,
    TRUST,
)
