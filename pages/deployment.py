"""Deployment map: where and when harm concentrates, on ~250 m grid cells, by shift.

Commanders and analysts only (city leaders are refused by the gate). Cells only: no incident points are
drawn or sent to the browser, so sensitive offences never appear as exact locations.
"""

import datetime as dt

import plotly.express as px
import pydeck as pdk
import streamlit as st

from ilp.analytics import hotspots
from ilp.ui import maps
from ilp.ui.context import gate

page = gate("deployment")


filters = page.filters

st.title("Deployment map: where does harm concentrate?")
views = st.columns([1, 1.4, 1, 4])  # this History view, the next week's forecast and its scoreboard
views[0].page_link("pages/deployment.py", label="History")
views[1].page_link("pages/deployment_forecast.py", label="Next week (forecast)")
views[2].page_link("pages/forecast_scoreboard.py", label="Scoreboard")

harm_unit = page.harm.unit_name
scope = (
    f"{filters.start:%d %b %Y} – {filters.end - dt.timedelta(days=1):%d %b %Y} · "
    f"{page.info.district_name(filters.district) if filters.district else 'all districts'} · "
    f"{page.info.category_label(filters.category)}"
)
st.caption(f"{scope}. Change the period, district and category in the sidebar.")

# ------------------------------------------------------------------------------------ what can be mapped
summary = page.query("deployment_summary")
overall = hotspots.summarise_locations(summary, "all")
shift_keys = list(hotspots.SHIFTS)
no_times = overall.incidents > 0 and overall.exact_share == 0

controls = st.columns([3, 2, 2])
shift = controls[0].radio(
    "Shift",
    shift_keys,
    format_func=lambda key: hotspots.SHIFTS[key][0],
    horizontal=True,
    key="deployment_shift",
    disabled=no_times or not page.info.has_coordinates,
    help="By hour of occurrence. Needs an exact time: sources that give only the day or month have no shift.",
)
if no_times or not page.info.has_coordinates:
    shift = "all"
shift_text = hotspots.SHIFTS[shift][0].lower() if shift != "all" else "all hours"
top_n = controls[1].slider(
    "Top cells to list" if page.info.has_coordinates else "Top areas to list",
    5,
    50,
    10,
    step=5,
    key="deployment_top_n",
    help="How many of the most harmful cells the table and the concentration figure cover.",
)
include_proactive = controls[2].toggle(
    "Count proactive offences in harm",
    value=False,
    key="deployment_include_proactive",
    help="Drug, weapons-possession and vehicle offences are found by police activity, so by default (as the "
    "Cambridge Crime Harm Index does) they count towards incidents but not towards harm.",
)

levels = page.info.levels
if not page.info.has_coordinates:
    # No coordinates anywhere in the source: no grid cells, so no map. Where the data places incidents
    # in beats or districts, harm is ranked by area instead.
    st.info(
        "This source records no coordinates for any incident, so there is no map and no grid cells. "
        + (
            f"Harm is ranked by {levels[0]} below instead."
            if levels
            else "It records no beats or districts either, so harm cannot be placed: see the Command brief "
            "for the offences doing most harm."
        ),
        icon=":material/location_off:",
    )
    if levels:
        by_area = hotspots.rank_areas(
            page.query("deployment_areas", level=levels[0], include_proactive=include_proactive)
        )
        st.subheader(f"{levels[0].capitalize()}s by harm, {shift_text}")
        st.dataframe(
            by_area.head(top_n),
            width="stretch",
            hide_index=True,
            column_order=["rank", "area_name", "incidents", "harm", "harm_share_pct", "cumulative_pct"],
            column_config={
                "rank": st.column_config.NumberColumn("Rank", format="%d"),
                "area_name": st.column_config.TextColumn(levels[0].capitalize()),
                "incidents": st.column_config.NumberColumn("Incidents", format="%d"),
                "harm": st.column_config.NumberColumn(f"Harm ({harm_unit})", format="%.0f"),
                "harm_share_pct": st.column_config.NumberColumn("Share of harm", format="%.1f%%"),
                "cumulative_pct": st.column_config.NumberColumn("Cumulative share", format="%.1f%%"),
            },
        )
        st.caption(
            f"The {min(top_n, len(by_area))} of {len(by_area):,} {levels[0]}s with the most harm in the period. "
            + ("Harm excludes proactive offences, as the CCHI does. " if not include_proactive else "")
            + page.source_note()
        )
else:
    reference = page.query("deployment_reference").iloc[0]
    grid = hotspots.grid_for(reference["median_latitude"])
    cells = page.query("deployment_cells", shift=shift, include_proactive=include_proactive, **grid.params())
    boundaries = page.query("areas_boundaries")
    located = hotspots.summarise_locations(summary, shift)

    if no_times:
        st.info(
            "This source records only the day or month of each offence, so there is no shift to choose: the map "
            "shows all hours.",
            icon=":material/schedule:",
        )

    # ------------------------------------------------------------------------------------ concentration
    ranked = hotspots.rank_cells(cells, grid)
    area_km2 = reference["area_km2"]
    if area_km2 == area_km2 and area_km2:  # areas loaded: the district (or city) area
        area_basis = (
            f"{page.info.district_name(filters.district)} district's area" if filters.district else "the city's area"
        )
    else:
        occupied = int(page.query("deployment_occupied_cells", **grid.params())["occupied_cells"].iloc[0])
        area_km2 = occupied * grid.cell_km2
        area_basis = "the area that has ever had a located incident (no boundaries loaded)"
    concentration = hotspots.concentration(ranked, top_n, grid, area_km2, area_basis)

    if len(ranked) and ranked["harm"].sum() > 0:
        st.subheader(
            f"The top {concentration.top_n} cells hold {concentration.harm_share:.0%} of harm "
            f"on {concentration.area_share:.2%} of {area_basis.split(' (')[0]} ({shift_text})"
        )
    metrics = st.columns(4)
    metrics[0].metric(
        f"Harm in top {concentration.top_n} cells",
        f"{concentration.harm_share:.0%}",
        help="Share of the period's harm from located incidents that falls in the top cells.",
    )
    metrics[1].metric(
        "Area they cover",
        f"{concentration.area_share:.2%}",
        help=f"{concentration.top_n} cells of {grid.cell_m:.0f} m x {grid.cell_m:.0f} m "
        f"= {concentration.top_n * grid.cell_km2:.2f} km² of {area_km2:,.1f} km² ({area_basis}).",
    )
    metrics[2].metric(f"Incidents in top {concentration.top_n} cells", f"{concentration.incident_share:.0%}")
    metrics[3].metric("Incidents mapped", f"{located.mapped:,}", help=f"in {len(ranked):,} cells")

    # ------------------------------------------------------------------------------------ map
    beats = hotspots.boundary_collection(boundaries, "beat")
    districts = hotspots.boundary_collection(boundaries, "district")
    under, over = maps.boundary_layers(beats, districts)
    cells_layer = maps.cell_layer(
        "harm-cells",
        grid,
        hotspots.map_cells(ranked, page.info.districts, levels),
        pickable=True,
        auto_highlight=True,
    )
    layers = [*under, cells_layer, *over]

    if len(ranked):
        lat, lon = ranked["centre_lat"], ranked["centre_lon"]
        pad_lon, pad_lat = 2 * grid.dlon, 2 * grid.dlat
        view = hotspots.view_for(lon.min() - pad_lon, lat.min() - pad_lat, lon.max() + pad_lon, lat.max() + pad_lat)
    elif len(boundaries):
        view = hotspots.view_for(*hotspots.collection_bounds(districts if districts["features"] else beats))
    else:
        view = {"latitude": float(reference["median_latitude"] or 0), "longitude": 0.0, "zoom": 10}

    deck = maps.CompactDeck(
        layers=layers,
        initial_view_state=pdk.ViewState(**view),
        # No basemap, nothing fetched. Leave map_style at pydeck's default: with map_provider=None it serialises as
        # the "__MAP_STYLE__" sentinel, which Streamlit's frontend drops. Passing map_style=None instead omits the
        # key and Streamlit 1.67 then loads Carto's positron style from basemaps.cartocdn.com (checked in Chromium).
        map_provider=None,
        tooltip={
            "html": "<b>Cell {cell}</b><br/>"
            + ("{place}<br/>" if levels else "")
            + f"{{incidents}} incidents · harm {{harm_text}} {harm_unit} ({{share_text}} of the period's harm)<br/>"
            "Rank {rank} · band: {band}",
            "style": {"fontSize": "13px"},
        },
    )
    st.pydeck_chart(deck, height=620, alt=f"Map of harm by {grid.cell_m:.0f} m cell, {shift_text}")

    legend = " ".join(
        f"<span style='background:rgb({r},{g},{b});color:{'#fff' if i < 2 else '#14171a'};padding:1px 6px;white-space:nowrap;display:inline-block;margin:1px 0;"
        f"border:1px solid #ccc'>{band['label']}: {band['cells']:,} cells</span>"
        for i, band in enumerate(hotspots.harm_band_legend(ranked))
        for r, g, b in [band["colour"]]
    )
    st.caption(
        f"Each square is a {grid.cell_m:.0f} m grid cell. Colour: taking the most harmful cells first, which share "
        f"of the period's harm the cell falls in — {legend} "
        f"<span style='background:rgb(200,200,200);padding:1px 6px;white-space:nowrap;display:inline-block;border:1px solid #ccc'>incidents, no harm</span>. "
        + ("Thin grey lines: beats; dark lines: districts. " if beats["features"] or districts["features"] else "")
        + "Hover a cell for its counts.",
        unsafe_allow_html=True,
    )

    notes = []
    if located.unlocated_in_shift:
        notes.append(
            f"{located.unlocated_in_shift:,} incidents ({located.unlocated_share:.1%}) had no usable location "
            "and are not on the map."
        )
    if shift != "all" and overall.no_shift:
        notes.append(
            f"{overall.no_shift:,} incidents have only a day or month of occurrence, so no shift: they are "
            "left out when a shift is chosen."
        )
    if not beats["features"] and not districts["features"]:
        notes.append(
            "No district or beat boundaries are drawn: none are loaded in this warehouse "
            "(load them with `ilp areas --geojson ...`)."
        )
    notes.append(
        "Harm excludes proactive offences (drug, weapons-possession and vehicle offences), as the CCHI does."
        if not include_proactive
        else "Harm includes proactive offences (the toggle above)."
    )
    if filters.category and not include_proactive and cells["harm"].sum() == 0 and len(cells):
        notes.append(
            f"{page.info.category_label(filters.category)} is a proactive category: it carries no "
            "harm unless the toggle above counts it."
        )
    notes.append(
        "Cells only: incident points are never drawn, so sensitive offences (homicide, rape, other sexual "
        "offences) cannot be located more exactly than their cell."
    )
    st.caption(" ".join(notes))
    st.caption(page.source_note())

    # ------------------------------------------------------------------------------------ top cells
    st.subheader(f"Top {concentration.top_n} cells by harm")
    top = ranked.head(top_n).assign(
        district_name=lambda f: f["district"].map(page.info.district_name, na_action="ignore"),
        harm_share_pct=lambda f: f["harm_share"] * 100,
        cumulative_pct=lambda f: f["cumulative_harm_share"] * 100,
    )
    st.dataframe(
        top,
        width="stretch",
        hide_index=True,
        column_order=[
            "rank",
            "cell",
            *(["beat"] if "beat" in levels else []),
            *(["district_name"] if "district" in levels else []),
            "incidents",
            "harm",
            "harm_share_pct",
            "cumulative_pct",
        ],
        placeholder="—",
        column_config={
            "rank": st.column_config.NumberColumn("Rank", format="%d"),
            "cell": st.column_config.TextColumn(
                "Cell centre (lat, lon)", help=f"Centre of the {grid.cell_m:.0f} m cell"
            ),
            "beat": st.column_config.TextColumn("Beat", help="The beat most of the cell's incidents fall in"),
            "district_name": st.column_config.TextColumn("District", width="medium"),
            "incidents": st.column_config.NumberColumn("Incidents", format="%d"),
            "harm": st.column_config.NumberColumn(f"Harm ({harm_unit})", format="%.0f"),
            "harm_share_pct": st.column_config.NumberColumn("Share of harm", format="%.1f%%"),
            "cumulative_pct": st.column_config.NumberColumn("Cumulative share", format="%.1f%%"),
        },
    )

    # ------------------------------------------------------------------------------------ concentration curve
    if len(ranked) > 1 and ranked["harm"].sum() > 0:
        curve = hotspots.concentration_curve(ranked, grid, area_km2)
        half_cells, half_area = hotspots.area_share_holding(ranked, grid, area_km2, 0.5)
        figure = px.line(
            curve.assign(area_pct=curve["area_share"] * 100, harm_pct=curve["harm_share"] * 100),
            x="area_pct",
            y="harm_pct",
            title=f"How concentrated is harm? Half of it sits in {half_cells:,} cells, {half_area:.1%} of "
            f"{area_basis.split(' (')[0]}",
            labels={
                "area_pct": f"Share of {area_basis.split(' (')[0]} covered, most harmful cells first (%)",
                "harm_pct": "Cumulative share of harm (%)",
            },
        )
        figure.add_vline(
            x=concentration.area_share * 100, line_dash="dot", annotation_text=f"top {concentration.top_n} cells"
        )
        figure.update_layout(height=320, margin=dict(t=60, b=40))
        st.plotly_chart(figure, width="stretch", theme="streamlit")
        st.caption(f"Each step adds one {grid.cell_m:.0f} m cell. {page.source_note()}")
