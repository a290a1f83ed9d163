"""The demo city's use-of-force reports: a share of arrests, more for violent offences and deprived beats."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ilp.demo.clock import Clock, timestamps, year_and_seq
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
    frame = (
        pd.DataFrame(
            {
                "occurred": occurred,
                "beat": ev.beat[chosen],
                "force_type": np.array(types)[force_type],
                "subject_injury": rng.random(n) < uof["subject_injury"] * np.where(harsh, 1.6, 1.0),
                "officer_injury": rng.random(n) < uof["officer_injury"],
            }
        )
        .sort_values(["occurred", "beat"], kind="stable")
        .reset_index(drop=True)
    )
    frame["year"], frame["seq"] = year_and_seq(frame["occurred"].to_numpy())
    frame["occurred"] = timestamps(frame["occurred"].to_numpy())
    return frame
