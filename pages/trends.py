"""Trends and forecasts: weekly counts and harm with an 8-week forecast whose accuracy is measured.

Commander and analyst: the series follows the district and category filters, with a breakdown by
district. City leader: citywide only (the district filter is ignored, and the page says so), no
district breakdown, and a series with weekly counts under 10 is not drawn.
The model and its backtest live in ilp/analytics/forecast.py.
"""

import datetime as dt

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ilp.analytics import district_panels, forecast
from ilp.snapshot import PROACTIVE_NOTE
from ilp.ui import context as ui
from ilp.ui.context import gate

HISTORY_WEEKS = 104  # drawn; the model sees up to forecast.TRAIN_WEEKS before each origin
MONTHS_SHOWN = 24  # drawn for a source that dates offences to the month only
QUERY_WEEKS = forecast.TRAIN_WEEKS + forecast.BACKTEST_WEEKS + forecast.HORIZON  # history the backtest needs


def district_small_multiples(
    panels: pd.DataFrame,
    panel_order: tuple,
    period: str,
    labels: tuple[str, str],
    measure: str,
    title: str,
    subtitle: str,
) -> go.Figure:
    """One line panel per district, each with its own y-axis (built through ilp.ui.context.figure: cached)."""
    figure = px.line(
        panels,
        x=period,
        y=measure,
        facet_col="panel",
        facet_col_wrap=district_panels.COLUMNS,
        facet_col_spacing=0.07,
        facet_row_spacing=district_panels.row_spacing(len(panel_order)),  # room for each panel's own y-axis
        category_orders={"panel": list(panel_order)},
        hover_name="district_name",
        labels={period: labels[0], measure: labels[1], "panel": "District"},
        height=district_panels.height(len(panel_order)),
    )
    figure.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    figure.update_yaxes(matches=None, rangemode="tozero", showticklabels=True, nticks=4)
    figure.update_layout(title={"text": title, "subtitle": {"text": subtitle}}, margin={"t": 90})
    return figure


page = gate("trends")
f = page.filters
audience = page.audience
citywide_only = audience.aggregate_only
district = None if citywide_only else f.district
unit = page.harm.unit_short
index_tag = page.harm.tag
scope = page.info.scope(district)
category_scope = page.info.category_label(f.category)

st.title("Trends and forecasts")
if citywide_only:
    ignored = f" The district filter ({page.info.district_name(f.district)}) is ignored." if f.district else ""
    st.info(
        f"City leader view: citywide figures only, no district breakdown.{ignored}", icon=":material/location_city:"
    )

measure = st.segmented_control(
    "Measure",
    ["harm", "incidents"],
    default="harm",
    required=True,
    key="trends_measure",
    format_func={"harm": f"Harm ({unit}, {index_tag})", "incidents": "Incidents (count)"}.get,
)
kind = "harm" if measure == "harm" else "count"
measure_unit = unit if measure == "harm" else "incidents"
st.markdown(
    f"**{scope}** · {category_scope} · {'up to' if not page.info.weekly else 'weeks ending'} "
    f"{f.week + dt.timedelta(days=6):%d %b %Y}"
)

monthly_only = not page.info.weekly  # month-only dates: no weekly series, no weekly forecast
if monthly_only:
    month_to = (pd.Timestamp(f.week + dt.timedelta(days=6)) + pd.offsets.MonthBegin(1)).date()
    month_from = (pd.Timestamp(month_to) - pd.DateOffset(months=MONTHS_SHOWN)).date()
    monthly = page.query("outcomes_harm_monthly", district=district, month_from=month_from, month_to=month_to)
    st.info(
        "This source dates offences to the month only, so there is no weekly series and no weekly forecast: "
        "the chart shows calendar months, without a forecast.",
        icon=":material/calendar_month:",
    )
    if monthly.empty:
        st.info("No months of data up to the selected week.")
    elif any(audience.is_small(count) for count in monthly["incidents"]):
        st.warning(
            f"Monthly counts of {category_scope} citywide fall under {audience.threshold} in some months, "
            "so this series is not shown to aggregate-only roles (small counts can identify people). "
            "Choose a broader offence category.",
            icon=":material/visibility_off:",
        )
    elif measure == "harm" and monthly["harm"].sum() == 0:
        st.info(f"No harm recorded for {category_scope}. {PROACTIVE_NOTE} Choose *Incidents* to see its counts.")
    else:
        latest = monthly.iloc[-1]
        figure = px.bar(
            monthly,
            x="month",
            y=measure,
            labels={"month": "Month", measure: f"{measure.capitalize()} per month ({measure_unit})"},
        )
        figure.update_layout(
            title={
                "text": f"{scope} {measure} by month: {latest[measure]:,.0f} {measure_unit} in {latest['month']:%B %Y}",
                "subtitle": {"text": f"The last {len(monthly)} months recorded; no forecast for month-only data."},
            },
            margin={"t": 80},
        )
        st.plotly_chart(figure, width="stretch", theme="streamlit", key="trends_monthly_chart")
        st.caption(
            f"{category_scope.capitalize()}, calendar months. "
            + (f"{PROACTIVE_NOTE} " if measure == "harm" else "Incidents: every recorded incident. ")
            + page.source_note()
        )
else:
    weekly = page.query("trends_weekly", district=district, history_start=f.week - dt.timedelta(weeks=QUERY_WEEKS - 1))
    suppressed = any(audience.is_small(count) for count in weekly["incidents"].tail(HISTORY_WEEKS))

    if weekly.empty:
        st.info("No complete weeks of data up to the selected week.")
    elif suppressed:
        st.warning(
            f"Weekly counts of {category_scope} citywide fall under {audience.threshold} in some weeks, "
            "so this series is not shown to aggregate-only roles (small counts can identify people). "
            "Choose a broader offence category.",
            icon=":material/visibility_off:",
        )
    elif measure == "harm" and weekly["harm"].sum() == 0:
        st.info(f"No harm recorded for {category_scope}. {PROACTIVE_NOTE} Choose *Incidents* to see its counts.")
    else:
        report = forecast.forecast_report(weekly.set_index("week")[measure], kind)
        history = report.history.tail(HISTORY_WEEKS)
        ahead = report.forecast
        chart_column, accuracy_column = st.columns([3, 1], gap="medium")

        # ---------------------------------------------------------------------------------- chart
        figure = go.Figure()
        if not ahead.empty:
            for level, colour in ((95, "rgba(31,119,180,0.15)"), (80, "rgba(31,119,180,0.30)")):
                figure.add_trace(
                    go.Scatter(
                        x=ahead["week"],
                        y=ahead[f"upper_{level}"],
                        mode="lines",
                        line={"width": 0},
                        name=f"{level}% interval (upper)",
                        showlegend=False,
                        hoverinfo="skip",
                    )
                )
                figure.add_trace(
                    go.Scatter(
                        x=ahead["week"],
                        y=ahead[f"lower_{level}"],
                        mode="lines",
                        line={"width": 0},
                        fill="tonexty",
                        fillcolor=colour,
                        name=f"{level}% prediction interval",
                        hovertemplate=f"{level}% interval lower limit %{{y:,.0f}}<extra></extra>",
                    )
                )
        figure.add_trace(
            go.Scatter(
                x=history["week"],
                y=history["value"],
                mode="lines",
                name="Recorded",
                line={"color": "#1f77b4"},
                hovertemplate=f"Week of %{{x|%d %b %Y}}<br>%{{y:,.0f}} {measure_unit}<extra></extra>",
            )
        )
        if not ahead.empty:
            figure.add_trace(
                go.Scatter(
                    x=ahead["week"],
                    y=ahead["mean"],
                    mode="lines+markers",
                    name="Forecast (mean)",
                    line={"color": "#1f77b4", "dash": "dash"},
                    hovertemplate=f"Forecast for week of %{{x|%d %b %Y}}<br>%{{y:,.0f}} {measure_unit}<extra></extra>",
                )
            )
            figure.add_trace(
                go.Scatter(
                    x=ahead["week"],
                    y=ahead["same_week_last_year"],
                    mode="markers",
                    name="Same weeks last year",
                    marker={"color": "#7f7f7f", "symbol": "circle-open", "size": 8},
                    hovertemplate=f"52 weeks earlier: %{{y:,.0f}} {measure_unit}<extra></extra>",
                )
            )
        figure.add_vline(x=f.week, line_dash="dot", line_color="#d62728")
        figure.add_annotation(
            x=f.week,
            y=1,
            yref="paper",
            text="selected week",
            showarrow=False,
            xanchor="right",
            yanchor="bottom",
            font={"color": "#d62728"},
        )
        if ahead.empty:
            title = {
                "text": f"{scope} {measure}: no forecast",
                "subtitle": {"text": report.notes[0] if report.notes else "too little history"},
            }
        else:
            last_year = ahead["same_week_last_year"].mean()
            title = {
                "text": f"{scope} {measure}: next {len(ahead)} weeks forecast at {ahead['mean'].mean():,.0f} {measure_unit} a week",
                "subtitle": {
                    "text": (f"Same weeks last year: {last_year:,.0f} a week. " if last_year == last_year else "")
                    + "Shaded: 80% and 95% prediction intervals."
                },
            }
        figure.update_layout(
            title=title,
            xaxis_title="Week beginning (Monday)",
            yaxis_title=(f"Harm per week ({unit}, {index_tag})" if measure == "harm" else "Incidents per week (count)"),
            yaxis_rangemode="tozero",
            hovermode="x unified",
            margin={"t": 80},
            legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0},
        )
        with chart_column:
            st.plotly_chart(figure, width="stretch", theme="streamlit", key="trends_forecast_chart")
            st.caption(
                f"Last {len(history)} weeks recorded and the next {len(ahead)} forecast, with 80% and 95% prediction "
                f"intervals. {category_scope.capitalize()}. "
                + (
                    f"{PROACTIVE_NOTE} "
                    if measure == "harm"
                    else "Incidents: every recorded incident, proactive categories included. "
                )
                + page.source_note()
            )

        # ---------------------------------------------------------------------------------- accuracy
        summary = report.summary
        with accuracy_column:
            st.subheader("How good is this forecast?")
            if summary.get("weeks"):
                n = summary["weeks"]
                st.metric(
                    "Inside the 80% interval",
                    f"{summary['covered_80']} of {n}",
                    delta_description=f"backtest weeks ({summary['coverage_80']:.0%})",
                    border=True,
                    help=f"The 80% interval contained {summary['covered_80']} of {n} backtest weeks; "
                    "a calibrated interval contains about 80%.",
                )
                st.metric(
                    "Inside the 95% interval",
                    f"{summary['covered_95']} of {n}",
                    delta_description=f"backtest weeks ({summary['coverage_95']:.0%})",
                    border=True,
                    help=f"The 95% interval contained {summary['covered_95']} of {n} backtest weeks; "
                    "a calibrated interval contains about 95%.",
                )
                st.metric(
                    "8-week-ahead error (MAE)",
                    f"{summary['mae']:,.0f}",
                    delta_description=f"{measure_unit} a week",
                    border=True,
                    help="Mean absolute error of the 8-week-ahead forecasts over the backtest weeks"
                    + (
                        f", {summary['relative_mae']:.0%} of an average week."
                        if summary["relative_mae"] == summary["relative_mae"]
                        else "."
                    ),
                )
                st.markdown(forecast.verdict(summary, measure_unit))
            else:
                st.info(report.notes[0] if report.notes else "Not enough history to backtest the forecast.")
            st.caption(
                f"Rolling-origin backtest: each of the last {forecast.BACKTEST_WEEKS} weeks was forecast "
                f"{forecast.HORIZON} weeks ahead by the model refitted on the data before it. "
                + (f"Model: {report.spec.describe()}. " if report.spec else "")
                + f"Fit and backtest took {report.seconds * 1000:,.0f} ms. "
                + " ".join(report.notes)
            )

        # ---------------------------------------------------------------------------------- tables
        if not ahead.empty:
            st.subheader(f"Next {len(ahead)} weeks")
            table = forecast.interval_table(ahead)
            st.dataframe(
                table,
                width="stretch",
                hide_index=True,
                column_config={
                    "week": st.column_config.DateColumn("Week beginning", format="D MMM YYYY"),
                    "mean": st.column_config.NumberColumn(f"Forecast ({measure_unit})", format="localized"),
                    "interval_80": st.column_config.TextColumn("80% prediction interval"),
                    "interval_95": st.column_config.TextColumn("95% prediction interval"),
                    "same_week_last_year": st.column_config.NumberColumn(
                        "Same week last year", format="localized", help="The week starting 364 days earlier."
                    ),
                },
            )
        if not report.backtest.empty:
            with st.expander(
                f"Backtest: the last {len(report.backtest)} weeks, each forecast {forecast.HORIZON} weeks ahead"
            ):
                st.dataframe(
                    forecast.backtest_table(report.backtest),
                    width="stretch",
                    hide_index=True,
                    column_config={
                        "week": st.column_config.DateColumn("Week beginning", format="D MMM YYYY"),
                        "actual": st.column_config.NumberColumn(f"Recorded ({measure_unit})", format="localized"),
                        "forecast": st.column_config.NumberColumn("Forecast 8 weeks earlier", format="localized"),
                        "interval_80": st.column_config.TextColumn("80% interval"),
                        "in_80": st.column_config.CheckboxColumn("Inside 80%"),
                        "interval_95": st.column_config.TextColumn("95% interval"),
                        "in_95": st.column_config.CheckboxColumn("Inside 95%"),
                        "naive_last_year": st.column_config.NumberColumn(
                            "Naive: same week last year", format="localized"
                        ),
                        "naive_last_4_weeks": st.column_config.NumberColumn(
                            "Naive: last 4 weeks' mean", format="localized"
                        ),
                    },
                )

# ---------------------------------------------------------------------------------- by district
if not citywide_only:
    st.subheader("By district")
    if not page.info.has_level("district"):
        st.info("This source records no districts, so there is no district breakdown.")
    else:
        if monthly_only:
            by_district = page.query("trends_monthly_by_district", month_from=month_from, month_to=month_to)
            period, period_label = "month", "Month"
        else:
            history_start = f.week - dt.timedelta(weeks=HISTORY_WEEKS - 1)
            by_district = page.query("trends_weekly_by_district", history_start=history_start)
            period, period_label = "week", "Week beginning"
        if by_district.empty:
            st.info("No district has data up to the selected week.")
        else:
            ranked = district_panels.ranking(by_district, measure)
            panel_pages = district_panels.pages(ranked, measure)
            picked = []
            panel_page = panel_pages[0]
            if len(panel_pages) > 1:
                # a choice made with other filters may not exist now (fewer districts, another category)
                if st.session_state.get("trends_district_page", 0) >= len(panel_pages):
                    st.session_state["trends_district_page"] = 0
                known = set(ranked["district"])
                if "trends_district_pick" in st.session_state:
                    kept = [d for d in st.session_state["trends_district_pick"] if d in known]
                    st.session_state["trends_district_pick"] = kept
                left, right = st.columns([2, 3])
                panel_page = panel_pages[
                    left.selectbox(
                        "Districts shown",
                        range(len(panel_pages)),
                        format_func=lambda i: panel_pages[i].label,
                        key="trends_district_page",
                        help=f"{len(ranked)} districts are ranked by {measure} over the period; "
                        f"{district_panels.PER_PAGE} panels at a time.",
                    )
                ]
                names = dict(zip(ranked["district"], ranked["district_name"]))
                picked = right.multiselect(
                    "Or pick districts",
                    list(ranked["district"]),
                    key="trends_district_pick",
                    max_selections=district_panels.PER_PAGE,
                    format_func=lambda d: f"{names[d]} ({d})" if names[d] != d else d,
                    placeholder="Choose up to 12 districts to compare",
                )
            shown = district_panels.chosen(ranked, panel_page, picked)
            top = ranked.iloc[0]
            which = (
                f"{len(shown)} picked districts"
                if picked
                else (f"all {len(ranked)} districts" if len(panel_pages) == 1 else panel_page.label.lower())
            )
            small_multiples = ui.figure(
                district_small_multiples,
                panels=by_district.merge(shown[["district", "panel"]], on="district"),
                panel_order=tuple(shown["panel"]),
                period=period,
                labels=(period_label, f"{measure.capitalize()} per {period} ({measure_unit})"),
                measure=measure,
                title=(
                    f"{period.capitalize()}ly {measure} by district, last {by_district[period].nunique()} "
                    f"{period}s: {top['panel']} carries {top['share']:.0%} of the city's {measure}"
                ),
                subtitle=f"Showing {which}.",
            )
            st.plotly_chart(small_multiples, width="stretch", theme="streamlit", key="trends_district_chart")
            st.caption(
                f"{category_scope.capitalize()}; each panel has its own scale. Every district is ranked whatever "
                "the district filter"
                + (f"; {district_panels.PER_PAGE} are drawn at a time. " if len(panel_pages) > 1 else ". ")
                + (PROACTIVE_NOTE + " " if measure == "harm" else "")
                + page.source_note()
            )
