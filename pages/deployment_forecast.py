"""Next-week patrol plan: where harm is forecast next week, by shift, on the deployment grid.

Beside the Deployment map's History view (where harm *was*). The forecast method is chosen on the weeks
before the last 26 and measured on those 26 against last year's map (ilp.analytics.hotspot_forecast); the
page says which method and how it did, in one sentence. Near-repeat burglary alerts come from a Knox test
fitted on the last year (ilp.analytics.near_repeat). Cells only: no incident point is drawn or sent to the
browser. A downloaded plan (CSV or GeoJSON) is recorded for the scoreboard and audited.
"""

import datetime as dt

import plotly.express as px
import pydeck as pdk
import streamlit as st

from ilp.analytics import hotspot_forecast as forecasting
from ilp.analytics import hotspots, near_repeat
from ilp.ui import maps
from ilp.ui.context import gate, state

page = gate("deployment_forecast")
filters, info = page.filters, page.info
week = filters.week + dt.timedelta(weeks=1)  # the week after the period's final week

st.title("Next-week patrol plan: where will harm be?")
views = st.columns([1, 1.4, 1, 4])
views[0].page_link("pages/deployment.py", label="History")
views[1].page_link("pages/deployment_forecast.py", label="Next week (forecast)")
views[2].page_link("pages/forecast_scoreboard.py", label="Scoreboard")
st.caption(
    f"Forecast for the week of {week:%d %b %Y} – {week + dt.timedelta(days=6):%d %b %Y}, the week after the "
    f"period's final week, from data before it only · "
    f"{info.district_name(filters.district) if filters.district else 'all districts'} · "
    f"{info.category_label(filters.category)}. Change the week, district and category in the sidebar."
)

hours = forecasting.ShiftHours()
timed = info.time_precision == "exact"
if not info.has_coordinates:
    st.info(
        "This source records no coordinates for any incident, so there are no grid cells to forecast. "
        "The Deployment map's History view ranks beats and districts by harm instead.",
        icon=":material/location_off:",
    )
else:
    controls = st.columns([3, 2, 2, 1.3])
    shift = controls[0].radio(
        "Shift",
        forecasting.SHIFT_SCOPES if timed else ("all",),
        format_func=hours.label,
        horizontal=True,
        key="forecast_shift",
        help="By hour of occurrence; each shift has its own forecast. Needs an exact time of day.",
    )
    mode = controls[1].radio("Plan size", ("Share of the area", "Patrol units"), horizontal=True, key="forecast_mode")
    if mode == "Share of the area":
        share = controls[2].select_slider(
            "Share of the area",
            options=[0.005, 0.01, 0.02, 0.05, 0.10],
            value=0.01,
            format_func="{:.1%}".format,
            key="forecast_share",
            help="The most harmful forecast cells, covering this share of the study area.",
        )
    else:
        units = controls[2].number_input(
            "Patrol units", 1, 500, 10, key="forecast_units", help="One unit patrols one cell for the shift."
        )
    cell_m = controls[3].selectbox(
        "Cell (m)",
        forecasting.CELL_SIZES,
        index=forecasting.CELL_SIZES.index(forecasting.DEFAULT_CELL_METRES),
        format_func="{:.0f}".format,
        key="forecast_cell_m",
        help="Grid cell side. 150 m is the default the Chicago backtest chose (README, Forecasts).",
    )
    if not timed:
        st.info(
            "This source records only the day or month of each offence, so there is no shift: the plan covers "
            "all hours.",
            icon=":material/schedule:",
        )

    try:
        with st.spinner("Fitting and scoring the forecasting methods on the data before the week..."):
            plan = page.analysis(
                forecasting.next_week_plan,
                week=week,
                shift=shift,
                category=filters.category,
                district=filters.district,
                harm_index=filters.harm_index,
                harm_version=filters.harm_version,
                cell_m=float(cell_m),
            )
    except forecasting.ForecastError as error:
        plan = None
        st.info(f"No forecast for this week: {error}.", icon=":material/hourglass_empty:")

    if plan is not None:
        forecast = plan.harm
        n_cells = (
            forecasting.flagged_cells(share, forecast.area_cells)
            if mode == "Share of the area"
            else min(int(units), len(plan.cells))
        )
        n_cells = min(n_cells, len(plan.cells))
        top = plan.cells.head(n_cells)
        grid = hotspots.Grid(forecast.cell_m, forecast.lat_ref)
        by_harm = plan.ranked_by == "harm"
        colour_by, colour_unit = ("expected_harm", page.harm.unit_short) if by_harm else ("expected_count", "incidents")
        st.success(plan.sentence(), icon=":material/verified:")
        if not by_harm:
            st.info(
                f"{info.category_label(filters.category)} carries no harm in {page.harm.tag} (a proactive offence: "
                "its count measures police activity), so the plan ranks cells by expected incidents.",
                icon=":material/info:",
            )

        expected_harm, expected_count = top["expected_harm"].sum(), top["expected_count"].sum()
        metrics = st.columns(4)
        metrics[0].metric("Cells in the plan", f"{n_cells:,}", help=f"{forecast.cell_m:.0f} m cells, best first")
        metrics[1].metric(
            "Area they cover",
            f"{n_cells / forecast.area_cells:.1%}",
            help=f"{n_cells * grid.cell_km2:.2f} km² of a study area of {forecast.area_cells:,} cells: every cell "
            "with a located incident in the three years before the week.",
        )
        metrics[2].metric(
            f"Expected harm ({page.harm.unit_short})",
            f"{expected_harm:,.0f}",
            help=f"{expected_harm / max(forecast.expected_total, 1e-9):.0%} of the harm forecast for the whole area",
        )
        metrics[3].metric("Expected incidents", f"{expected_count:,.1f}")

        # ------------------------------------------------------------------------------------ map
        boundaries = page.query("areas_boundaries")
        beats = hotspots.boundary_collection(boundaries, "beat")
        districts = hotspots.boundary_collection(boundaries, "district")
        alerts = None
        if filters.category in (None, "burglary_residential", "burglary_non_residential"):
            alerts = page.analysis(
                near_repeat.near_repeat_alerts,
                week=week,
                cell_m=float(forecast.cell_m),
                lat_ref=float(forecast.lat_ref),
                district=filters.district,
            )
        under, over = maps.boundary_layers(beats, districts)
        layers = [
            *under,
            maps.cell_layer(
                "forecast-cells",
                grid,
                forecasting.map_rows(top, page.info.districts, page.harm.unit_short, colour_by),
                pickable=True,
                auto_highlight=True,
            ),
        ]
        show_alerts = (
            alerts is not None
            and len(alerts.cells) > 0
            and st.toggle(
                "Outline near-repeat alert cells on the map",
                value=False,
                key="forecast_show_alerts",
                help="Cells within the near-repeat distance of a burglary whose window is still open (below).",
            )
        )
        if show_alerts:
            layers.append(
                maps.cell_outline_layer(
                    "near-repeat-cells", grid, alerts.cells["cell_x"], alerts.cells["cell_y"], [33, 102, 172, 230], 1.5
                )
            )
        layers += over
        if len(boundaries) and (districts["features"] or beats["features"]):
            view = hotspots.view_for(*hotspots.collection_bounds(districts if districts["features"] else beats))
        else:
            lat, lon = top["centre_lat"], top["centre_lon"]
            view = hotspots.view_for(lon.min(), lat.min(), lon.max(), lat.max())
        deck = maps.CompactDeck(
            layers=layers,
            initial_view_state=pdk.ViewState(**view),
            map_provider=None,  # no basemap, nothing fetched (see ilp.ui.maps.CompactDeck)
            tooltip={
                "html": "<b>#{rank} · cell {cell}</b><br/>{place}<br/>Expected harm {harm_text} ({harm_range})<br/>"
                "Expected incidents {count_text} ({count_range})<br/>{offences}",
                "style": {"fontSize": "13px"},
            },
        )
        st.pydeck_chart(
            deck,
            height=600,
            alt=f"Map of the {n_cells} forecast cells for the week of {week:%d %b}, {hours.label(shift)}",
        )
        legend = " ".join(
            f"<span style='background:rgb({r},{g},{b});color:{'#fff' if i < 2 else '#14171a'};padding:1px 6px;"
            f"white-space:nowrap;display:inline-block;margin:1px 0;border:1px solid #ccc'>{band}</span>"
            for i, (band, (r, g, b)) in enumerate(forecasting.map_legend(top, colour_unit, colour_by))
        )
        st.caption(
            f"Each square is a {forecast.cell_m:.0f} m cell of the plan, coloured by expected "
            f"{'harm' if by_harm else 'incidents'} — {legend}"
            + (" Blue outlines: near-repeat alert cells (below)." if alerts is not None and len(alerts.cells) else "")
            + (" Thin grey lines: beats; dark lines: districts." if beats["features"] or districts["features"] else "")
            + " Cells only: incident points are never drawn, so sensitive offences cannot be located more exactly "
            "than their cell.",
            unsafe_allow_html=True,
        )

        # ------------------------------------------------------------------------------------ table
        st.subheader(f"The plan: {n_cells} cells, {hours.label(shift).lower()}")
        table = top.assign(
            district_name=top["district"].map(page.info.district_name, na_action="ignore"),
            harm_range=[f"{a:,.0f}–{b:,.0f}" for a, b in zip(top["harm_low"], top["harm_high"])],
            count_range=[f"{a:,.1f}–{b:,.1f}" for a, b in zip(top["count_low"], top["count_high"])],
        )
        st.dataframe(
            table,
            width="stretch",
            hide_index=True,
            height=min(420, 36 * (len(table) + 1)),
            column_order=[
                "rank",
                "cell",
                *(["block"] if info.has_location_text else []),
                *(["beat"] if "beat" in info.levels else []),
                *(["district_name"] if "district" in info.levels else []),
                "expected_harm",
                "harm_range",
                "expected_count",
                "count_range",
                "offences",
            ],
            placeholder="—",
            column_config={
                "rank": st.column_config.NumberColumn("Rank", format="%d"),
                "cell": st.column_config.TextColumn("Cell centre (lat, lon)"),
                "block": st.column_config.TextColumn(
                    "Nearest block", help="The commonest block text of the cell's non-sensitive, non-domestic offences"
                ),
                "beat": st.column_config.TextColumn("Beat"),
                "district_name": st.column_config.TextColumn("District"),
                "expected_harm": st.column_config.NumberColumn(
                    f"Expected harm ({page.harm.unit_short})", format="%.0f"
                ),
                "harm_range": st.column_config.TextColumn(
                    "Harm, 9 weeks in 10",
                    help="Where 90% of weeks fell for cells forecast alike over the last 26 weeks. Harm is lumpy: "
                    "one serious offence outweighs many minor ones, so the average can lie above most weeks.",
                ),
                "expected_count": st.column_config.NumberColumn("Expected incidents", format="%.1f"),
                "count_range": st.column_config.TextColumn("Incidents, 9 weeks in 10"),
                "offences": st.column_config.TextColumn(
                    "Offences behind it (last 52 weeks)", help="The offences with most harm in the cell"
                ),
            },
        )
        what = (
            f"patrol plan week of {week}, {shift}, {filters.category or 'all offences'}, "
            f"{filters.district or 'all districts'}"
        )
        downloads = st.columns([1.2, 1.5, 3.3])
        base = f"patrol-plan-{week}-{shift}"
        details = {"week": str(week), "shift": shift, "category": filters.category, "district": filters.district}
        downloads[0].download_button(
            "Plan as CSV",
            data=forecasting.recorded_download(
                plan, n_cells, "csv", state(), page.audit, by=page.user, role=page.role, what=what, **details
            ),
            file_name=f"{base}.csv",
            mime="text/csv",
            icon=":material/download:",
            key="forecast_csv",
            on_click="ignore",
            help="Recorded for the scoreboard and audited. Text a spreadsheet would run as a formula is made inert.",
        )
        downloads[1].download_button(
            "Plan as GeoJSON",
            data=forecasting.recorded_download(
                plan, n_cells, "geojson", state(), page.audit, by=page.user, role=page.role, what=what, **details
            ),
            file_name=f"{base}.geojson",
            mime="application/geo+json",
            icon=":material/map:",
            key="forecast_geojson",
            on_click="ignore",
            help="The plan's cells as polygons (WGS84) for a GIS or a vehicle's map. Recorded and audited.",
        )

        with st.expander("How the method was chosen, and how every method did"):
            st.markdown(forecasting.method_notes(forecast))
            board = forecasting.evaluation_table(forecast)
            st.dataframe(
                board,
                width="stretch",
                hide_index=True,
                column_config={
                    "coverage": st.column_config.NumberColumn("Area flagged", format="percent"),
                    "hit_rate": st.column_config.NumberColumn("Hit rate (harm)", format="percent"),
                    "pai": st.column_config.NumberColumn("PAI", format="%.2f"),
                    "pei_star": st.column_config.NumberColumn("PEI*", format="%.2f"),
                    "rri": st.column_config.NumberColumn("RRI", format="%.2f"),
                },
            )

        # ------------------------------------------------------------------------------------ near repeats
        st.subheader("Near-repeat burglary alerts")
        if alerts is None:
            st.caption(
                f"Near-repeat alerts are for burglary; the sidebar's category is "
                f"{info.category_label(filters.category)}."
            )
        else:
            knox = alerts.knox
            (st.warning if knox.found else st.info)(knox.sentence(), icon=":material/radar:")
            left, right = st.columns([3, 2])
            if len(knox.table):
                heat = knox.table.assign(
                    distance=lambda f: (
                        f["distance_from"].map("{:.0f}".format) + "–" + f["distance_to"].map("{:.0f} m".format)
                    ),
                    days=lambda f: f["days_from"].astype(int).astype(str) + "–" + f["days_to"].astype(int).astype(str),
                )
                grid_ratio = heat.pivot(index="distance", columns="days", values="ratio").loc[
                    heat["distance"].unique(), heat["days"].unique()
                ]
                grid_p = heat.pivot(index="distance", columns="days", values="p_value").loc[
                    heat["distance"].unique(), heat["days"].unique()
                ]
                figure = px.imshow(
                    grid_ratio,
                    text_auto=False,
                    color_continuous_scale="RdBu_r",
                    zmin=0.5,
                    zmax=1.5,
                    aspect="auto",
                    labels={"x": "Days apart", "y": "Distance apart", "color": "Knox ratio"},
                    title=f"Pairs of burglaries close in space and time, against chance ({knox.events:,} burglaries)",
                )
                figure.update_traces(
                    text=[
                        [f"{r:.2f}{'*' if p < near_repeat.ALPHA else ''}" for r, p in zip(rr, pp)]
                        for rr, pp in zip(grid_ratio.to_numpy(), grid_p.to_numpy())
                    ],
                    texttemplate="%{text}",
                )
                figure.update_layout(height=360, margin=dict(t=60, b=40))
                left.plotly_chart(figure, width="stretch", theme="streamlit")
                left.caption(
                    f"Knox ratio: pairs observed / pairs expected if the dates were shuffled ({knox.permutations} "
                    f"permutations); * p < {near_repeat.ALPHA}. The last year of burglaries before the week."
                )
            if len(alerts.cells):
                right.dataframe(
                    alerts.cells.assign(
                        district_name=alerts.cells["district"].map(page.info.district_name, na_action="ignore")
                    ),
                    width="stretch",
                    hide_index=True,
                    height=360,
                    column_order=["cell", "beat", "district_name", "burglaries", "latest", "open_until"],
                    column_config={
                        "cell": st.column_config.TextColumn("Cell centre (lat, lon)"),
                        "beat": st.column_config.TextColumn("Beat"),
                        "district_name": st.column_config.TextColumn("District"),
                        "burglaries": st.column_config.NumberColumn("Recent burglaries", format="%d"),
                        "latest": st.column_config.DateColumn("Latest", format="DD MMM"),
                        "open_until": st.column_config.DateColumn("Window open until", format="DD MMM"),
                    },
                )
                right.caption(
                    f"{len(alerts.cells):,} cells within {knox.distance_m:.0f} m of a burglary of the last "
                    f"{knox.days} days: their raised risk has not yet passed on {week:%d %b}. Cells, never points."
                )
            elif knox.found:
                right.caption(f"No burglary in the {knox.days} days before {week:%d %b}: no window is open.")
        st.caption(page.source_note())
