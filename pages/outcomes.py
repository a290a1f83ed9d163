"""Outcomes: harm-reduction metrics instead of arrest counts, each with a definition, its current value,
its trend and honest uncertainty. Every role may see it; city leaders see aggregates only (counts under 10
shown as "<10", rates from such counts blanked), no person-level data and no locations.
"""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ilp.analytics import outcomes
from ilp.ui.context import gate

page = gate("outcomes")
filters = page.filters

DEFINITIONS = {
    "harm": "Harm from recorded crime per 1,000 residents in the month: each offence weighted by the harm index, "
            "proactive offences (drugs, weapons possession, vehicle offences) excluded as the CCHI does.",
    "repeat": "Of the people recorded as victims in the 12 months up to the month's end, the share who were victims "
              "in two or more separate incidents.",
    "response": "Minutes from a priority-1 (emergency) call being received to the first unit arriving: the median "
                "call and the 90th percentile (9 in 10 calls are answered faster).",
    "clearance": "Share of violent offences (by month they occurred) recorded as cleared, by arrest or otherwise, "
                 "as of this snapshot.",
    "force": "Use-of-force events for every 1,000 incidents ending in an arrest in the month.",
    "trust": "Share of community-survey respondents who say they trust the police, by district and quarter.",
}
NOT_AVAILABLE = ":material/do_not_disturb_on:"
NOTHING = ":material/info:"
WITHHELD = ("Withheld for this role: the monthly counts behind this figure are under 10, and rates built from "
            "counts under 10 are not shown.")

district_names = dict(zip(page.info["districts"]["area_id"], page.info["districts"]["name"]))
category_labels = dict(zip(page.info["categories"]["category"], page.info["categories"]["label"]))
district_label = district_names.get(filters.district, filters.district) if filters.district else "All districts"
last_data_day = page.info["last"].date()
window = outcomes.reporting_window(filters.end, page.info["first"].date(), last_data_day)
params = window.params()
available = page.query("outcomes_availability").iloc[0]
harm_row = page.info["harm"].query("index_name == @filters.harm_index and version == @filters.harm_version")
harm_unit = harm_row["unit"].iloc[0].split(" (")[0] if len(harm_row) else "harm units"
harm_unit_short = harm_unit.split(" of ")[0]   # 'days of imprisonment' -> 'days'

st.title("Outcomes: is harm going down, and at what cost?")
st.caption(
    f"{district_label} · calendar months {window.month_from:%b %Y} – {window.last_month:%b %Y} (the last complete "
    f"month on or before the period chosen in the sidebar). The offence-category filter applies to the harm rate "
    f"only. Shaded bands are 95% intervals: where they overlap, a change may be noise."
)
if page.aggregate_only:
    st.caption("Aggregate view: counts under 10 are shown as \"<10\" and rates built from them are withheld; no "
               "person-level data or locations are shown.")


def month_label(when) -> str:
    return f"{pd.Timestamp(when):%b %Y}" if when is not None else "—"


def delta_text(head: outcomes.Headline, fmt: str, unit: str = "", scale: float = 1.0) -> str | None:
    if head.earlier_period is None or not np.isfinite(head.earlier):
        return None
    noise = " (within noise)" if head.within_noise else ""
    return f"{head.change * scale:{fmt}}{unit} vs {month_label(head.earlier_period)}{noise}"


def delta_colour(head: outcomes.Headline, lower_is_better: bool) -> str:
    if head.within_noise in (None, True):
        return "off"
    return "inverse" if lower_is_better else "normal"


def trend_chart(frame: pd.DataFrame, y: str, lo: str, hi: str, title: str, y_title: str, *, x: str = "month",
                scale: float = 1.0, provisional: pd.Series | None = None, name: str = "", colour: str = "#0072B2",
                figure: go.Figure | None = None) -> go.Figure:
    """A line with its 95% band; ``provisional`` points drawn hollow and dashed."""
    figure = figure or go.Figure()
    data = frame.dropna(subset=[y])
    xs = pd.concat([data[x], data[x].iloc[::-1]])
    band = pd.concat([data[hi], data[lo].iloc[::-1]]) * scale
    figure.add_trace(go.Scatter(x=xs, y=band, fill="toself", fillcolor=colour, opacity=0.18, line=dict(width=0),
                                hoverinfo="skip", showlegend=False, name=f"{name} 95% interval"))
    settled = data if provisional is None else data[~provisional.loc[data.index].to_numpy(dtype=bool)]
    figure.add_trace(go.Scatter(x=settled[x], y=settled[y] * scale, mode="lines+markers", name=name or y_title,
                                line=dict(color=colour), marker=dict(size=5)))
    if provisional is not None and provisional.any():
        recent = data[provisional.loc[data.index].to_numpy(dtype=bool)]
        joined = pd.concat([settled.tail(1), recent])
        figure.add_trace(go.Scatter(x=joined[x], y=joined[y] * scale, mode="lines+markers", name="not yet settled",
                                    line=dict(color=colour, dash="dot"),
                                    marker=dict(size=7, symbol="circle-open")))
    figure.update_layout(title=dict(text=title, font=dict(size=15)), height=290, margin=dict(t=50, b=40, l=60, r=10),
                         xaxis_title="Month", yaxis_title=y_title,
                         showlegend=name != "" or (provisional is not None and bool(provisional.any())),
                         legend=dict(orientation="h", y=-0.3))
    return figure


def show_chart(figure: go.Figure, uses_harm: bool = False) -> None:
    st.plotly_chart(figure, width="stretch", theme="streamlit")
    st.caption(page.source_note() if uses_harm else f"Data: snapshot {page.version} (no harm weighting).")


def monthly_table(frame: pd.DataFrame, columns: dict, counts: list[str], dependent: dict) -> None:
    """Monthly figures in an expander; aggregate-only roles get small counts suppressed."""
    shown = outcomes.suppress_for_aggregate_role(frame, counts, dependent) if page.aggregate_only else frame
    config = {"month": st.column_config.DateColumn("Month", format="MMM YYYY")}
    for column, (label, fmt) in columns.items():
        if column in counts:
            config[column] = (st.column_config.TextColumn(label) if page.aggregate_only
                              else st.column_config.NumberColumn(label, format="localized"))
        elif fmt is None:
            config[column] = st.column_config.TextColumn(label)
        else:
            config[column] = st.column_config.NumberColumn(label, format=fmt)
    with st.expander("Monthly figures"):
        st.dataframe(shown.iloc[::-1], width="stretch", hide_index=True, placeholder="—",
                     column_order=["month", *columns], column_config=config)


# ------------------------------------------------------------------------------------------ 1. harm rate
with st.container(border=True):
    st.subheader("Harm per 1,000 residents")
    st.markdown(DEFINITIONS["harm"])
    population_row = page.query("areas_population").iloc[0]
    population = population_row["population"]
    has_population = bool(pd.notna(population) and population > 0
                          and population_row["districts_without_population"] == 0)
    harm = outcomes.harm_rate(page.query("outcomes_harm_monthly", **params), population if has_population else None,
                              window)
    if not has_population:
        st.warning("No per-capita rates: no population loaded (`ilp areas --population ...`). Showing total harm "
                   "instead.", icon=":material/group_off:")
    head = (outcomes.headline(harm) if has_population
            else outcomes.headline(harm, value="harm", lo="harm_lo", hi="harm_hi"))
    if harm["incidents"].sum() == 0:
        st.info("No incidents recorded in the reporting window.", icon=NOTHING)
    else:
        left, right = st.columns([2, 3])
        category_note = (f" Offence category: {category_labels.get(filters.category, filters.category)}."
                         if filters.category else "")
        if has_population:
            left.metric(f"{month_label(head.period)}", f"{head.value:,.1f}",
                        delta=delta_text(head, "+,.1f"), delta_color=delta_colour(head, lower_is_better=True),
                        help=f"{harm_unit} per 1,000 residents in the month")
            left.caption(f"{harm_unit.capitalize()} per 1,000 residents (population {population:,.0f}). "
                         f"95% interval {head.lo:,.1f} – {head.hi:,.1f}.{category_note}")
            figure = trend_chart(harm, "rate", "rate_lo", "rate_hi",
                                 f"Harm per 1,000 residents: {head.value:,.0f} in {month_label(head.period)}",
                                 f"{harm_unit_short} per 1,000 residents")
        else:
            left.metric(f"Total harm, {month_label(head.period)}", f"{head.value:,.0f}",
                        delta=delta_text(head, "+,.0f"), delta_color=delta_colour(head, lower_is_better=True),
                        help=harm_unit)
            left.caption(f"{harm_unit.capitalize()}. 95% interval {head.lo:,.0f} – {head.hi:,.0f}.{category_note}")
            figure = trend_chart(harm, "harm", "harm_lo", "harm_hi",
                                 f"Total harm by month: {head.value:,.0f} in {month_label(head.period)}",
                                 f"harm ({harm_unit_short})")
        with right:
            show_chart(figure, uses_harm=True)
    monthly_table(harm, {"incidents": ("Incidents", None), "harm": (f"Harm ({harm_unit})", "%.0f"),
                         "rate": ("Harm per 1,000 residents", "%.1f"), "rate_lo": ("95% low", "%.1f"),
                         "rate_hi": ("95% high", "%.1f")} if has_population else
                  {"incidents": ("Incidents", None), "harm": (f"Harm ({harm_unit})", "%.0f"),
                   "harm_lo": ("95% low", "%.0f"), "harm_hi": ("95% high", "%.0f")},
                  counts=["incidents"], dependent={})

# ------------------------------------------------------------------------------------------ 2. repeat victims
with st.container(border=True):
    st.subheader("Repeat victimisation")
    st.markdown(DEFINITIONS["repeat"])
    if available["victim_links"] == 0:
        st.info("Not available: no victim data loaded (the export links no people to incidents as victims).",
                icon=NOT_AVAILABLE)
    else:
        repeat = outcomes.repeat_victimisation(page.query("outcomes_victim_months", **params), window)
        usable = repeat["complete_window"] & (repeat["victims"] > 0)
        valid = repeat.where(usable).assign(month=repeat["month"]).fillna({"victims": 0, "repeat_victims": 0})
        shown = (outcomes.suppress_for_aggregate_role(valid, ["repeat_victims"],
                                                      {"repeat_victims": ["rate", "rate_lo", "rate_hi"]})
                 if page.aggregate_only else valid)
        head = outcomes.headline(shown)
        if not head.available:
            st.info(WITHHELD if page.aggregate_only and usable.any() else
                    "No month to show: no victims recorded in the reporting window, or the data do not yet cover "
                    "a full 12 months.", icon=NOTHING)
        else:
            left, right = st.columns([2, 3])
            left.metric(f"{month_label(head.period)}", f"{head.value:.1%}",
                        delta=delta_text(head, "+.1f", " pp", scale=100),
                        delta_color=delta_colour(head, lower_is_better=True),
                        help="Share of the trailing 12 months' victims with 2+ incidents")
            victims_now = repeat.loc[repeat["month"] == head.period, "victims"]
            left.caption(
                f"95% interval {head.lo:.1%} – {head.hi:.1%}"
                + (f", of {int(victims_now.iloc[0]):,} victims." if not page.aggregate_only else ".")
                + ("" if repeat["complete_window"].all() else
                   f" {int((~repeat['complete_window']).sum())} early months are left out: the data do not yet "
                   "cover their full 12 months.")
            )
            with right:
                show_chart(trend_chart(shown, "rate", "rate_lo", "rate_hi",
                                       f"Repeat victims: {head.value:.1%} of victims in the 12 months to "
                                       f"{month_label(head.period)}", "victims with 2+ incidents (%)", scale=100))
        monthly_table(valid, {"victims": ("Victims (12 months)", None),
                              "repeat_victims": ("Repeat victims", None),
                              "rate": ("Share repeat", "%.3f"), "rate_lo": ("95% low", "%.3f"),
                              "rate_hi": ("95% high", "%.3f")},
                      counts=["victims", "repeat_victims"], dependent={"repeat_victims": ["rate", "rate_lo", "rate_hi"]})

# ------------------------------------------------------------------------------------------ 3. response times
with st.container(border=True):
    st.subheader("Emergency response time")
    st.markdown(DEFINITIONS["response"])
    if available["calls"] == 0:
        st.info("Not available: no calls-for-service data loaded.", icon=NOT_AVAILABLE)
    elif available["priority_one_calls"] == 0:
        st.info("Not available: the calls-for-service data hold no priority-1 calls.", icon=NOT_AVAILABLE)
    else:
        times = outcomes.response_times(page.query("outcomes_response_times", **params), window)
        shown = (outcomes.suppress_for_aggregate_role(times, ["calls", "timed"],
                                                      {"timed": ["median", "median_lo", "median_hi", "p90",
                                                                 "p90_lo", "p90_hi"]})
                 if page.aggregate_only else times)
        median = outcomes.headline(shown, value="median", lo="median_lo", hi="median_hi")
        p90 = outcomes.headline(shown, value="p90", lo="p90_lo", hi="p90_hi")
        if not median.available:
            st.info(WITHHELD if page.aggregate_only and times["timed"].any() else
                    "No priority-1 call with an arrival time in the reporting window.", icon=NOTHING)
        else:
            left, right = st.columns([2, 3])
            left.metric(f"Median, {month_label(median.period)}", f"{median.value:.1f} min",
                        delta=delta_text(median, "+.1f", " min"), delta_color=delta_colour(median, True))
            left.metric(f"90th percentile, {month_label(p90.period)}", f"{p90.value:.1f} min",
                        delta=delta_text(p90, "+.1f", " min"), delta_color=delta_colour(p90, True))
            last = times[times["month"] == median.period].iloc[0]
            excluded = int(last["no_arrival"] + last["negative"])
            left.caption(
                f"95% intervals: median {median.lo:.1f} – {median.hi:.1f} min, 90th percentile {p90.lo:.1f} – "
                f"{p90.hi:.1f} min. "
                + (f"{int(last['timed']):,} timed calls in {month_label(median.period)}; {excluded:,} "
                   f"({excluded / max(int(last['calls']), 1):.0%}) had no arrival time (cancelled, duplicate or "
                   "no unit recorded) and are left out." if not page.aggregate_only else
                   "Calls with no arrival time (cancelled, duplicate) are left out.")
            )
            figure = trend_chart(shown, "p90", "p90_lo", "p90_hi", "", "minutes from call to arrival",
                                 name="90th percentile", colour="#D55E00")
            figure = trend_chart(shown, "median", "median_lo", "median_hi",
                                 f"Priority-1 response: median {median.value:.1f} min, 90th percentile "
                                 f"{p90.value:.1f} min in {month_label(median.period)}",
                                 "minutes from call to arrival", name="median", figure=figure)
            with right:
                show_chart(figure)
        monthly_table(times, {"calls": ("Priority-1 calls", None), "timed": ("With arrival time", None),
                              "median": ("Median (min)", "%.1f"), "p90": ("90th percentile (min)", "%.1f"),
                              "p90_lo": ("90th pct 95% low", "%.1f"), "p90_hi": ("90th pct 95% high", "%.1f")},
                      counts=["calls", "timed"], dependent={"timed": ["median", "p90", "p90_lo", "p90_hi"]})

# ------------------------------------------------------------------------------------------ 4. clearance
with st.container(border=True):
    st.subheader("Violent crime clearance rate")
    st.markdown(DEFINITIONS["clearance"])
    if available["incidents_with_clearance"] == 0:
        st.info("Not available: the source records no clearance status.", icon=NOT_AVAILABLE)
    else:
        clearance = outcomes.clearance_rate(page.query("outcomes_violent_clearance", **params), window,
                                            last_data_day)
        shown = (outcomes.suppress_for_aggregate_role(clearance, ["cleared", "incidents"],
                                                      {"cleared": ["rate", "rate_lo", "rate_hi"]})
                 if page.aggregate_only else clearance)
        head = outcomes.headline(shown, usable=clearance["settled"])
        unsettled = clearance.loc[~clearance["settled"], "month"]
        settling_note = (
            (f"Not yet settled: {month_label(unsettled.min())} – {month_label(unsettled.max())} (dotted) — "
             f"investigations into offences from the last {outcomes.SETTLE_DAYS} days of data are still open, so "
             "these rates will rise." if len(unsettled) else "")
            + (" This source records clearance only by arrest (no other clearances), so the rate counts arrests."
               if available["cleared_other"] == 0 else "")
        )
        if not head.available:
            st.info((WITHHELD if page.aggregate_only and clearance["cleared"].any() else
                     "No settled month with violent offences in the reporting window.") + " " + settling_note,
                    icon=NOTHING)
        else:
            left, right = st.columns([2, 3])
            left.metric(f"{month_label(head.period)} (latest settled month)", f"{head.value:.1%}",
                        delta=delta_text(head, "+.1f", " pp", scale=100),
                        delta_color=delta_colour(head, lower_is_better=False))
            left.caption(f"95% interval {head.lo:.1%} – {head.hi:.1%}. {settling_note}")
            with right:
                show_chart(trend_chart(shown, "rate", "rate_lo", "rate_hi",
                                       f"Violent crime cleared: {head.value:.0%} in {month_label(head.period)}",
                                       "violent offences cleared (%)", scale=100, provisional=~clearance["settled"]))
        monthly_table(clearance.assign(settled=clearance["settled"].map({True: "settled", False: "not yet settled"})),
                      {"incidents": ("Violent offences", None), "cleared": ("Cleared", None),
                       "rate": ("Share cleared", "%.3f"), "rate_lo": ("95% low", "%.3f"),
                       "rate_hi": ("95% high", "%.3f"), "settled": ("Status", None)},
                      counts=["incidents", "cleared"], dependent={"cleared": ["rate", "rate_lo", "rate_hi"]})

# ------------------------------------------------------------------------------------------ 5. use of force
with st.container(border=True):
    st.subheader("Use of force per 1,000 arrests")
    st.markdown(DEFINITIONS["force"])
    if available["use_of_force_events"] == 0:
        st.info("Not available: no use-of-force data loaded.", icon=NOT_AVAILABLE)
    elif available["incidents_with_arrest_flag"] == 0:
        st.info("Not available: the incident data do not say which incidents ended in an arrest.", icon=NOT_AVAILABLE)
    else:
        force = outcomes.rate_per_thousand(page.query("outcomes_use_of_force", **params), window, "events", "arrests")
        shown = (outcomes.suppress_for_aggregate_role(force, ["events", "arrests"],
                                                      {"events": ["rate", "rate_lo", "rate_hi"]})
                 if page.aggregate_only else force)
        head = outcomes.headline(shown)
        pooled = outcomes.pooled_rate(force, "events", "arrests")
        pooled_shown = pooled["base"] > 0 and not (page.aggregate_only and 0 < pooled["events"] < 10)
        pooled_note = (
            f"Last {pooled['months']} months together: {pooled['rate']:.1f} per 1,000 arrests (95% interval "
            f"{pooled['lo']:.1f} – {pooled['hi']:.1f})"
            + (f", {pooled['events']:,} events in {pooled['base']:,} arrests." if not page.aggregate_only else ".")
            if pooled_shown else ""
        )
        left, right = st.columns([2, 3])
        if head.available:
            left.metric(f"{month_label(head.period)}", f"{head.value:.1f}",
                        delta=delta_text(head, "+.1f"), delta_color=delta_colour(head, lower_is_better=True),
                        help="Use-of-force events per 1,000 arrests")
            left.caption(f"95% interval {head.lo:.1f} – {head.hi:.1f}: monthly counts are small, so single months "
                         f"swing. {pooled_note}")
            with right:
                show_chart(trend_chart(shown, "rate", "rate_lo", "rate_hi",
                                       f"Use of force: {head.value:.1f} per 1,000 arrests in "
                                       f"{month_label(head.period)}", "events per 1,000 arrests"))
        else:
            if pooled_shown:
                left.metric(f"Last {pooled['months']} months", f"{pooled['rate']:.1f}",
                            help="Use-of-force events per 1,000 arrests, the months pooled")
                left.caption(pooled_note)
            right.info(WITHHELD if page.aggregate_only and force["events"].any() else
                       "No month with arrests in the reporting window.", icon=NOTHING)
        monthly_table(force, {"events": ("Use-of-force events", None), "arrests": ("Arrests", None),
                              "rate": ("Per 1,000 arrests", "%.1f"), "rate_lo": ("95% low", "%.1f"),
                              "rate_hi": ("95% high", "%.1f")},
                      counts=["events", "arrests"], dependent={"events": ["rate", "rate_lo", "rate_hi"]})

# ------------------------------------------------------------------------------------------ 6. trust
with st.container(border=True):
    st.subheader("Community trust in the police")
    st.markdown(DEFINITIONS["trust"])
    trust_rows = page.query("outcomes_trust", **params) if available["trust_survey_rows"] else None
    if available["trust_survey_rows"] == 0:
        st.info("Not available: no community survey data loaded (measure 'trust_police').", icon=NOT_AVAILABLE)
    elif trust_rows.empty:
        st.info(f"No trust survey results for {district_label} up to {month_label(window.last_month)}.", icon=NOTHING)
    else:
        trust = outcomes.survey_share(trust_rows)
        latest = outcomes.latest_and_year_earlier(trust)
        overall = trust[trust["area_id"].isna()] if trust["area_id"].isna().any() else trust
        head = outcomes.headline(overall, value="value", lo="lo", hi="hi", period="period_start")
        left, right = st.columns([2, 3])
        quarter = overall.loc[pd.to_datetime(overall["period_start"]) == head.period, "period_label"].iloc[0]
        respondents = overall.loc[pd.to_datetime(overall["period_start"]) == head.period, "respondents"].iloc[0]
        left.metric(f"{district_label}, {quarter}", f"{head.value:.0%}",
                    delta=(f"{head.change * 100:+.1f} pp vs a year earlier"
                           + (" (within noise)" if head.within_noise else "")) if head.earlier_period is not None else None,
                    delta_color=delta_colour(head, lower_is_better=False))
        left.caption(f"95% interval {head.lo:.0%} – {head.hi:.0%}, "
                     + (f"{int(respondents):,} respondents" if not page.aggregate_only or respondents >= 10
                        else "fewer than 10 respondents")
                     + (" (all districts pooled, weighted by respondents)." if filters.district is None else "."))
        districts = trust[trust["area_id"].notna()] if filters.district is None else trust.iloc[0:0]
        figure = px.line(districts.assign(pct=districts["value"] * 100), x="period_start", y="pct", line_group="name",
                         hover_name="name", color_discrete_sequence=["#9aa5b1"])
        figure.update_traces(line=dict(width=1), hovertemplate="%{hovertext}: %{y:.0f}%<extra></extra>")
        figure = trend_chart(overall, "value", "lo", "hi", "", "", x="period_start", scale=100,
                             name=district_label, colour="#1f3a5f", figure=figure)
        figure.update_layout(title=dict(text=f"Trust in the police: {head.value:.0%} in {quarter}", font=dict(size=15)),
                             xaxis_title="Survey quarter", yaxis_title="respondents who trust the police (%)",
                             showlegend=False)
        with right:
            show_chart(figure)
            if filters.district is None:
                st.caption("Dark line and band: all districts pooled; grey lines: each district.")
        table = latest[latest["area_id"].notna()] if filters.district is None else latest
        if page.aggregate_only:
            table = outcomes.suppress_for_aggregate_role(table, ["respondents"],
                                                         {"respondents": ["value", "lo", "hi", "change"]})
        st.dataframe(
            table.assign(value_pct=table["value"] * 100, lo_pct=table["lo"] * 100, hi_pct=table["hi"] * 100,
                         change_pp=table["change"] * 100,
                         noise=table["change_is_noise"].map({True: "within noise", False: "beyond noise"})),
            width="stretch", hide_index=True,
            column_order=["name", "period_label", "value_pct", "lo_pct", "hi_pct", "respondents", "change_pp", "noise"],
            column_config={
                "name": st.column_config.TextColumn("District"),
                "period_label": st.column_config.TextColumn("Latest quarter"),
                "value_pct": st.column_config.NumberColumn("Trust (%)", format="%.0f%%"),
                "lo_pct": st.column_config.NumberColumn("95% low", format="%.0f%%"),
                "hi_pct": st.column_config.NumberColumn("95% high", format="%.0f%%"),
                "respondents": (st.column_config.TextColumn("Respondents") if page.aggregate_only
                                else st.column_config.NumberColumn("Respondents", format="localized")),
                "change_pp": st.column_config.NumberColumn("Change vs a year earlier (points)", format="%+.1f"),
                "noise": st.column_config.TextColumn("Change", help="Whether the change exceeds the combined 95% "
                                                                    "uncertainty of the two surveys"),
            },
        )
