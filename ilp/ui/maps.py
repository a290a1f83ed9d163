"""Map helpers shared by pages that draw pydeck maps offline."""

from __future__ import annotations

import json

import pydeck as pdk
from pydeck.bindings.json_tools import default_serialize


class CompactDeck(pdk.Deck):
    """A Deck with no basemap provider whose JSON has no whitespace (pydeck indents by 2; compact is ~2.5x
    smaller). Pass ``map_provider=None`` and do NOT pass ``map_style=None``: Streamlit 1.67 skips its
    Carto basemap only when map_style keeps pydeck's placeholder, so ``map_style=None`` fetches tiles."""

    def to_json(self):
        return json.dumps(self, sort_keys=True, default=default_serialize, separators=(",", ":"))
