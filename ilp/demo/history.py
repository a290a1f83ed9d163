"""Earlier recorded versions of the demo city's incidents (``incident_history``): reclassifications from a
lesser code and clearances recorded late."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ilp.demo.clock import Clock
from ilp.demo.incidents import Incidents
from ilp.demo.offences import OffenceModel

CLEARANCE = np.array(["open", "cleared_arrest", "cleared_other"])


def generate_history(rng, spec, model: OffenceModel, incidents: Incidents, clock: Clock) -> pd.DataFrame:
    """Earlier versions: some incidents were first recorded under a lesser code, some first as open."""
    q = spec["quality"]
    ev = incidents.events
    n = len(ev)
    upgraded = np.array([model.codes.index(u) if u else -1 for u in model.upgraded_from])[ev.code]
    reclassified = (upgraded >= 0) & (rng.random(n) < q["reclassified"])
    late = ~reclassified & (incidents.clearance > 0) & (rng.random(n) < q["late_clearance"])
    rows = np.flatnonzero(reclassified | late)
    previous_code = np.where(reclassified[rows], upgraded[rows], ev.code[rows])
    median_days = np.where(reclassified[rows], 3.0, 10.0)
    delay = np.round(86400 * median_days * rng.lognormal(0, 0.8, len(rows))).astype(np.int64)
    superseded = np.minimum(incidents.reported[rows] + delay, clock.end_seconds)
    return pd.DataFrame(
        {
            "event": rows,
            "superseded_at": superseded.astype("datetime64[s]"),
            "prev_code": np.array(model.codes)[previous_code],
            "prev_description": np.array(model.descriptions)[previous_code],
            "prev_category": np.array(model.categories)[previous_code],
            # a reclassified record keeps its outcome; a late clearance was open with no arrest before
            "prev_clearance": np.where(reclassified[rows], CLEARANCE[incidents.clearance[rows]], "open"),
            "prev_arrest": np.where(reclassified[rows], incidents.arrest[rows], False),
        }
    )
