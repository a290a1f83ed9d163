"""The demo city's use-of-force reports: a share of arrests, more for violent offences and deprived beats.

``generate_use_of_force`` draws one chunk's reports (times in epoch seconds); ``number_force`` orders and
numbers those due (see ``chunks.Backlog``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ilp.demo.clock import Clock, YearSequence, timestamps
from ilp.demo.incidents import Incidents
from ilp.demo.offences import OffenceModel, normalised


def generate_use_of_force(rng, spec, geo, model: OffenceModel, incidents: Incidents, clock: Clock) -> pd.DataFrame:
    uof = spec["use_of_force"]
    ev = incidents.events
    arrests = np.flatnonzero(incidents.arrest)
    force_factor = np.array([model.category_spec[c]["force"] for c in model.category_names])
    p = (
        uof["per_arrest"]
        * force_factor[model.code_category[ev.code[arrests]]]
        * np.exp(0.3 * geo.beat_deprivation[ev.beat[arrests]])
    )
    chosen = arrests[rng.random(len(arrests)) < p]
    n = len(chosen)
    types = [t[0] for t in uof["types"]]
    force_type = rng.choice(len(types), size=n, p=normalised([t[1] for t in uof["types"]]))
    harsh = np.isin(np.array(types)[force_type], ["taser", "baton", "firearm_discharged"])
    occurred = np.minimum(incidents.occurred[chosen] + rng.integers(0, 45 * 60, n), clock.end_seconds)
    return pd.DataFrame(
        {
            "occurred": occurred,
            "beat": ev.beat[chosen],
            "force_type": np.array(types)[force_type],
            "subject_injury": rng.random(n) < uof["subject_injury"] * np.where(harsh, 1.6, 1.0),
            "officer_injury": rng.random(n) < uof["officer_injury"],
        }
    )


def number_force(force: pd.DataFrame, numbers: YearSequence) -> pd.DataFrame:
    """Use of force in its defined order (time, beat), numbered on within the year (``numbers``)."""
    frame = force.sort_values(["occurred", "beat"], kind="stable").reset_index(drop=True)
    frame["year"], frame["seq"] = numbers.number(frame["occurred"].to_numpy())
    frame["occurred"] = timestamps(frame["occurred"].to_numpy())
    return frame
