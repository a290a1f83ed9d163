"""The people linked to the demo city's incidents: victims, offenders and suspects, with age bands.

Ordinary victims are a new person each time; domestic-abuse victims recur (heavy-tailed repeat
propensity per beat) with their partner as the abuser; the emerging series is one small crew; everyone
else identified is drawn per home district from a prolific few (the "power few") or occasional offenders.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ilp.demo.incidents import Incidents
from ilp.demo.offences import OffenceModel
from ilp.demo.plan import TAG_SERIES, Plan

AGE_BANDS = ("<18", "18-24", "25-44", "45-64", "65+")


def _ages(rng, spec, name: str, n: int) -> np.ndarray:
    """Age-band index (0..4) per person, 5 = unknown."""
    p = np.asarray(spec["ages"][name], dtype=float)
    return rng.choice(6, size=n, p=np.r_[p, max(0.0, 1.0 - p.sum())] / max(1.0, p.sum()))


def generate_persons(rng, spec, geo, model: OffenceModel, incidents: Incidents, plan: Plan):
    """Victims and offenders/suspects: (incident, person number, role, age band) plus realised statistics."""
    ev = incidents.events
    category = model.code_category[ev.code]
    victim_profiles = [model.category_spec[c].get("victims", "") for c in model.category_names]
    victim_profile = np.array(victim_profiles, dtype=object)[category]
    has_victim = model.victims[ev.code] > 0
    homicide = np.array(model.categories)[ev.code] == "homicide"
    dv = has_victim & incidents.domestic & ~homicide
    rows_event, rows_person, rows_role, rows_age = [], [], [], []
    next_person = 1

    def add(event_idx, persons, role, ages):
        rows_event.append(event_idx)
        rows_person.append(persons)
        rows_role.append(np.broadcast_to(np.asarray(role, dtype=np.int64), (len(event_idx),)))
        rows_age.append(ages)

    # ordinary victims: a new person each time; some incidents have two
    ordinary = np.flatnonzero(has_victim & ~dv)
    extra = rng.random(len(ordinary)) < (model.victims[ev.code[ordinary]] - 1.0)
    victim_events = np.sort(np.r_[ordinary, ordinary[extra]], kind="stable")
    ages = np.zeros(len(victim_events), dtype=np.int64)
    profile = victim_profile[victim_events].copy()
    profile[ev.tag[victim_events] == TAG_SERIES] = plan.series["victims"]
    for name in sorted(set(profile)):
        pick = np.flatnonzero(profile == name)
        ages[pick] = _ages(rng, spec, name, len(pick))
    add(victim_events, next_person + np.arange(len(victim_events)), 0, ages)
    next_person += len(victim_events)

    # domestic abuse: victims drawn from each beat's pool with a heavy-tailed repeat propensity;
    # the abuser is the victim's partner (one per victim)
    off = spec["offenders"]
    dv_events = np.flatnonzero(dv)
    dv_victim = np.zeros(len(dv_events), dtype=np.int64)
    dv_partner = np.zeros(len(dv_events), dtype=np.int64)
    dv_victim_age, dv_partner_age = np.zeros(len(dv_events), np.int64), np.zeros(len(dv_events), np.int64)
    for b in range(len(geo.beat_ids)):
        pick = np.flatnonzero(ev.beat[dv_events] == b)
        pool = max(1, math.ceil(off["dv_victim_pool"] * len(pick)))
        propensity = rng.gamma(off["dv_propensity_shape"], 1.0, pool)
        choice = rng.choice(pool, size=len(pick), p=propensity / propensity.sum())
        victim_ages, partner_ages = _ages(rng, spec, "domestic", pool), _ages(rng, spec, "domestic", pool)
        dv_victim[pick], dv_partner[pick] = next_person + choice, next_person + pool + choice
        dv_victim_age[pick], dv_partner_age[pick] = victim_ages[choice], partner_ages[choice]
        next_person += 2 * pool
    add(dv_events, dv_victim, 0, dv_victim_age)
    dv_identified = incidents.identified[dv_events]
    add(
        dv_events[dv_identified],
        dv_partner[dv_identified],
        np.where(incidents.arrest[dv_events[dv_identified]], 1, 2),
        dv_partner_age[dv_identified],
    )
    per_victim = np.unique(dv_victim, return_counts=True)[1]

    # the series crew
    crew_events = np.flatnonzero(incidents.identified & (ev.tag == TAG_SERIES))
    crew_numbers = next_person + np.arange(plan.series["crew"])
    crew_ages = rng.choice(2, size=len(crew_numbers), p=[0.7, 0.3])
    member = rng.integers(0, len(crew_numbers), len(crew_events))
    add(crew_events, crew_numbers[member], np.where(incidents.arrest[crew_events], 1, 2), crew_ages[member])
    next_person += len(crew_numbers)

    # everyone else identified: per home district, a prolific few (the power few) and occasional offenders
    other = np.flatnonzero(incidents.identified & ~dv & (ev.tag != TAG_SERIES))
    n_districts = len(geo.district_ids)
    own = geo.beat_district[ev.beat[other]]
    away = rng.random(len(other)) >= off["home_district_share"]
    home = np.where(away, (own + rng.integers(1, n_districts, len(other))) % n_districts, own)
    prolific = rng.random(len(other)) < off["prolific_share"]
    offender = np.zeros(len(other), dtype=np.int64)
    offender_age = np.zeros(len(other), dtype=np.int64)
    prolific_numbers = []
    for d in range(n_districts):
        in_district = home == d
        pick = np.flatnonzero(in_district & prolific)
        pool = max(1, round(off["prolific_per_offence"] * in_district.sum()))
        rate = rng.gamma(off["prolific_gamma_shape"], 1.0, pool)
        choice = rng.choice(pool, size=len(pick), p=rate / rate.sum())
        pool_ages = _ages(rng, spec, "offender", pool)
        offender[pick], offender_age[pick] = next_person + choice, pool_ages[choice]
        prolific_numbers.append(next_person + np.arange(pool))
        next_person += pool
        pick = np.flatnonzero(in_district & ~prolific)
        pool = max(1, math.ceil(off["occasional_pool_per_offence"] * len(pick)))
        choice = rng.integers(0, pool, len(pick))
        pool_ages = _ages(rng, spec, "offender", pool)
        offender[pick], offender_age[pick] = next_person + choice, pool_ages[choice]
        next_person += pool
    add(other, offender, np.where(incidents.arrest[other], 1, 2), offender_age)

    persons = (
        pd.DataFrame(
            {
                "event": np.concatenate(rows_event),
                "person_no": np.concatenate(rows_person),
                "role": np.concatenate(rows_role),
                "age": np.concatenate(rows_age),
            }
        )
        .sort_values(["event", "role", "person_no"], kind="stable")
        .reset_index(drop=True)
    )

    counts = np.sort(np.unique(offender, return_counts=True)[1])[::-1]
    top = max(1, round(0.05 * len(counts)))
    stats = {
        "dv_victims": int(len(per_victim)),
        "dv_incidents": int(len(dv_events)),
        "dv_repeat_victim_share": round(float((per_victim >= 2).mean()), 4) if len(per_victim) else 0.0,
        "dv_max_incidents_per_victim": int(per_victim.max()) if len(per_victim) else 0,
        "offenders": int(len(counts)),
        "offender_links": int(len(other)),
        "top_5pct_offender_share": round(float(counts[:top].sum() / max(1, counts.sum())), 4),
        "prolific_offenders": int(sum(len(p) for p in prolific_numbers)),
        "prolific_offence_share": round(float(prolific.mean()), 4) if len(prolific) else 0.0,
        "crew_numbers": crew_numbers.tolist(),
        "crew_incidents": int(len(crew_events)),
    }
    return persons, stats
