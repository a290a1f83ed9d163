"""ilp.ui.context.figure: a page's Plotly figure is built once per distinct inputs, and the figure rebuilt
from the cache (without plotly's validation) draws exactly what the built one drew."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.io

from ilp.ui import context as ui

built: list[int] = []


def weekly_lines(data: pd.DataFrame, title: str):
    built.append(len(data))
    figure = px.line(data, x="week", y="harm", facet_col="district", facet_col_wrap=2)
    figure.update_yaxes(matches=None, rangemode="tozero")
    figure.update_layout(title={"text": title})
    return figure


def series(scale: float) -> pd.DataFrame:
    weeks = pd.date_range("2025-01-06", periods=20, freq="W-MON")
    return pd.DataFrame(
        [
            (week, district, scale * (i + 1) * (d + 1))
            for i, week in enumerate(weeks)
            for d, district in enumerate("ABC")
        ],
        columns=["week", "district", "harm"],
    )


def spec(figure) -> dict:
    """What st.plotly_chart sends to the browser (plotly.io.to_json of the figure's dict), parsed."""
    return json.loads(plotly.io.to_json(figure.to_dict(), validate=False))


def drawn_y(figure) -> list[float]:
    """The first trace's y values as the browser decodes them (plotly sends numbers as base64 typed arrays)."""
    y = spec(figure)["data"][0]["y"]
    return list(np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])) if isinstance(y, dict) else list(y)


def test_cached_figure_draws_what_the_built_figure_drew_and_is_built_once():
    ui._cached_figure.clear()
    built.clear()
    data = series(1.0)
    first = ui.figure(weekly_lines, data=data, title="Harm by district")
    again = ui.figure(weekly_lines, data=data.copy(), title="Harm by district")
    assert built == [len(data)], "the second call with equal inputs must come from the cache"
    expected = spec(weekly_lines(data, "Harm by district"))
    assert spec(first) == expected and spec(again) == expected
    assert sorted(a["text"] for a in expected["layout"]["annotations"]) == ["district=A", "district=B", "district=C"]
    assert expected["layout"]["title"]["text"] == "Harm by district"


def test_other_inputs_build_another_figure():
    ui._cached_figure.clear()
    built.clear()
    low = ui.figure(weekly_lines, data=series(1.0), title="Harm by district")
    high = ui.figure(weekly_lines, data=series(2.0), title="Harm by district")
    retitled = ui.figure(weekly_lines, data=series(1.0), title="Incidents by district")
    assert len(built) == 3
    assert spec(high) == spec(weekly_lines(series(2.0), "Harm by district"))
    assert max(drawn_y(high)) == 2 * max(drawn_y(low)) == 2 * 20.0
    assert spec(retitled)["layout"]["title"]["text"] == "Incidents by district"
