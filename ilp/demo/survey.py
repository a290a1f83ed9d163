"""The demo city's quarterly community survey by district: trust a little lower where crime is higher,
and a lift in the intervention's district after it starts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ilp.demo.clock import Clock
from ilp.demo.geography import Geography
from ilp.demo.plan import Plan
from ilp.demo.truth import Tally


def generate_survey(rng, spec, geo: Geography, tally: Tally, plan: Plan, clock: Clock) -> pd.DataFrame:
    sv = spec["survey"]
    # crime per head by district (all incidents), standardised: trust is a little lower where crime is higher
    n_d = len(geo.district_ids)
    pop = np.bincount(geo.beat_district, weights=geo.beat_population, minlength=n_d)
    per_head = tally.district / pop
    z = (per_head - per_head.mean()) / (per_head.std() or 1.0)
    treated_district = geo.beat_district[plan.intervention["beat"]]
    intervention_start = clock.date_of(plan.intervention["first_day"])
    quarters = []
    q = dt.date(clock.start_date.year, 3 * ((clock.start_date.month - 1) // 3) + 1, 1)
    while True:
        nxt = dt.date(q.year + (q.month == 10), (q.month + 2) % 12 + 1, 1)
        if q >= clock.start_date and nxt - dt.timedelta(days=1) <= clock.end_date:
            quarters.append(q)
        if nxt > clock.end_date:
            break
        q = nxt
    rows = []
    for quarter in quarters:
        label = f"{quarter.year}-Q{(quarter.month - 1) // 3 + 1}"
        for d in range(n_d):
            for m, measure in enumerate(sv["measures"]):
                level = geo.district_trust[d] + sv["offsets"][m] + sv["crime_effect"] * z[d]
                if d == treated_district and quarter > intervention_start:
                    level += plan.intervention["survey_effect"][m]
                respondents = int(rng.integers(sv["respondents"][0], sv["respondents"][1] + 1))
                value = rng.binomial(respondents, min(max(level, 0.02), 0.98)) / respondents
                rows.append((geo.district_ids[d], quarter, label, measure, round(value, 4), respondents))
    return pd.DataFrame(rows, columns=["area_id", "period_start", "period_label", "measure", "value", "respondents"])
