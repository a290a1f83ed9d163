"""Map helpers shared by pages that draw pydeck maps offline.

**No stroked polygons.** deck.gl draws the outline of a stroked PolygonLayer or GeoJsonLayer with its
PathLayer, whose shaders cost about 1.5 s of the browser's main thread per map in software WebGL (Chromium
without a GPU, as on many police VDI desktops) however few the paths; a LineLayer about 0.45 s, and 5,000
filled, unstroked squares about 0.5 s (2-core machine, headless Chromium; benchmarks/browser.py times the
pages). So boundaries are LineLayers of their rings' edges over an unstroked fill, and grid cells are filled squares
inset a little so that neighbours of one colour stay apart.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pydeck as pdk
from pydeck.bindings.json_tools import default_serialize

from ilp.analytics import hotspots

BEAT_FILL = [238, 241, 245, 255]
BEAT_LINE = [150, 158, 170, 255]
DISTRICT_LINE = [31, 58, 95, 255]
CELL_INSET = 0.04  # of a cell's side, on each edge: a 150 m cell's square leaves a 12 m gap to its neighbour


class CompactDeck(pdk.Deck):
    """A Deck with no basemap provider whose JSON has no whitespace (pydeck indents by 2; compact is ~2.5x
    smaller). Pass ``map_provider=None`` and do NOT pass ``map_style=None``: Streamlit 1.67 skips its
    Carto basemap only when map_style keeps pydeck's placeholder, so ``map_style=None`` fetches tiles."""

    def to_json(self):
        return json.dumps(self, sort_keys=True, default=default_serialize, separators=(",", ":"))


def ring_edges(collection: dict) -> pd.DataFrame:
    """One row per edge of every ring of a GeoJSON FeatureCollection's (Multi)Polygons: ``s`` and ``t``, the
    edge's [lon, lat] ends rounded to 6 decimals (about 0.1 m)."""
    sources, targets = [], []
    for feature in collection["features"]:
        geometry = feature["geometry"]
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        for ring in (ring for polygon in polygons for ring in polygon):
            points = np.round(np.asarray(ring, dtype=float)[:, :2], 6)
            if len(points) < 2:
                continue
            if not np.array_equal(points[0], points[-1]):
                points = np.vstack([points, points[:1]])
            sources.extend(points[:-1].tolist())
            targets.extend(points[1:].tolist())
    return pd.DataFrame({"s": sources, "t": targets}, columns=["s", "t"])


def _lines(layer_id: str, edges: pd.DataFrame, colour: list[int], width_px: float) -> pdk.Layer:
    return pdk.Layer(
        "LineLayer",
        id=layer_id,
        data=edges,
        get_source_position="s",
        get_target_position="t",
        get_color=colour,
        get_width=width_px,
        width_units="'pixels'",
        pickable=False,
    )


def boundary_layers(beats: dict, districts: dict) -> tuple[list[pdk.Layer], list[pdk.Layer]]:
    """The layers under a map's cells (the beats' areas, a light fill that shows the force's extent) and over
    them (beat outlines, thin grey; district outlines, dark), from the two levels' FeatureCollections
    (``hotspots.boundary_collection``). Empty lists where a level has no boundaries loaded."""
    under, over = [], []
    if beats["features"]:
        under.append(
            pdk.Layer(
                "GeoJsonLayer",
                id="beat-areas",
                data=beats,
                stroked=False,
                filled=True,
                get_fill_color=BEAT_FILL,
                pickable=False,
            )
        )
        over.append(_lines("beat-boundaries", ring_edges(beats), BEAT_LINE, 1))
    if districts["features"]:
        over.append(_lines("district-boundaries", ring_edges(districts), DISTRICT_LINE, 2.5))
    return under, over


def cell_layer(layer_id: str, grid: hotspots.Grid, rows: pd.DataFrame, **options) -> pdk.Layer:
    """Grid cells (rows with integer ``x``, ``y`` and a ``fill`` colour) as filled, unstroked squares."""
    return pdk.Layer(
        "PolygonLayer",
        id=layer_id,
        data=rows,
        get_polygon=grid.polygon_expression(inset=CELL_INSET),
        get_fill_color="fill",
        stroked=False,
        filled=True,
        **options,
    )


def cell_outline_layer(layer_id: str, grid: hotspots.Grid, cell_x, cell_y, colour: list[int], width_px: float):
    """The four edges of each given cell as a LineLayer (an outline without the PathLayer's cost)."""
    rings = np.asarray(grid.polygons(cell_x, cell_y)).reshape(-1, 5, 2)  # closed: the first corner again
    edges = pd.DataFrame({"s": rings[:, :-1].reshape(-1, 2).tolist(), "t": rings[:, 1:].reshape(-1, 2).tolist()})
    return _lines(layer_id, edges, colour, width_px)
