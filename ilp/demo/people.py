"""The people linked to the demo city's incidents: victims, offenders and suspects, with age bands.

Ordinary victims are a new person each time; domestic-abuse victims recur (heavy-tailed repeat
propensity per beat) with their partner as the abuser; the emerging series is one small crew; everyone
else identified is drawn per home district from a prolific few (the "power few") or occasional offenders.

The pools people recur from are planned once for the whole period (``plan_people``, sized from the
expected incident counts), so a victim or offender recurs across years although incidents are drawn a
chunk at a time; ``generate_persons`` draws one chunk's links and tallies them for ``person_stats``.
"""

from __future__ import annotations

import dataclasses

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


@dataclasses.dataclass
class PersonPools:
    """The people planned for the whole period, their numbers (hashed into person keys) and ages, and
    tallies of the links drawn so far.

    Numbers: each beat's domestic-abuse victims, then their partners; the series crew; each district's
    prolific then occasional offenders; ordinary victims follow, one new number each.
    """

    dv_start: np.ndarray  # per beat: index of its first victim in the concatenated victim pools
    dv_size: np.ndarray  # per beat: victims in its pool (each with one partner)
    dv_cumulative: np.ndarray  # cumulative repeat propensity over the concatenated victim pools
    dv_victim_age: np.ndarray
    dv_partner_age: np.ndarray
    crew_numbers: np.ndarray
    crew_ages: np.ndarray
    offender_base: int  # number of the first prolific offender
    prolific_start: np.ndarray  # per district, in the concatenated prolific pools
    prolific_size: np.ndarray
    prolific_cumulative: np.ndarray
    prolific_age: np.ndarray
    occasional_start: np.ndarray  # per district, in the concatenated occasional pools
    occasional_size: np.ndarray
    occasional_age: np.ndarray
    next_person: int  # the next ordinary victim's number
    dv_links: np.ndarray = None  # incidents per domestic-abuse victim so far (by victim index)
    offender_links: np.ndarray = None  # incidents per prolific then occasional offender so far
    dv_incidents: int = 0
    crew_incidents: int = 0
    prolific_incidents: int = 0

    def __post_init__(self):
        self.dv_links = np.zeros(int(self.dv_size.sum()), dtype=np.int64)
        self.offender_links = np.zeros(int(self.prolific_size.sum() + self.occasional_size.sum()), dtype=np.int64)


def _pick(rng, cumulative: np.ndarray, start: np.ndarray, size: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One member per entry of its group's pool (concatenated pools; chance by propensity): the member's index."""
    first = np.r_[0.0, cumulative][start[group]]
    total = cumulative[start[group] + size[group] - 1] - first
    index = np.searchsorted(cumulative, first + rng.random(len(group)) * total, side="right")
    return np.clip(index, start[group], start[group] + size[group] - 1)


def plan_people(rng, spec, geo, model: OffenceModel, expected: np.ndarray, plan: Plan) -> PersonPools:
    """The pools, sized from ``expected`` incidents per (beat, code) over the whole period (plan.expected_counts)."""
    off = spec["offenders"]
    has_victim = model.victims > 0
    dv_share = np.where(has_victim & (np.array(model.categories) != "homicide"), model.domestic, 0.0)
    dv_size = np.maximum(1, np.ceil(off["dv_victim_pool"] * expected @ dv_share)).astype(np.int64)
    dv_start = np.r_[0, np.cumsum(dv_size)[:-1]]
    dv_cumulative = np.cumsum(rng.gamma(off["dv_propensity_shape"], 1.0, int(dv_size.sum())))
    dv_victim_age = _ages(rng, spec, "domestic", int(dv_size.sum()))
    dv_partner_age = _ages(rng, spec, "domestic", int(dv_size.sum()))
    next_person = 1 + 2 * int(dv_size.sum())

    crew_numbers = next_person + np.arange(plan.series["crew"])
    crew_ages = rng.choice(2, size=len(crew_numbers), p=[0.7, 0.3])
    next_person += len(crew_numbers)

    identified = np.array([model.category_spec[c]["identified"] for c in model.category_names])[model.code_category]
    identified = np.maximum(identified, model.arrest)
    other = expected @ (identified * (1.0 - dv_share))  # per beat
    n_districts = len(geo.district_ids)
    own = np.bincount(geo.beat_district, weights=other, minlength=n_districts)
    share = off["home_district_share"]
    home = share * own + (1.0 - share) * (own.sum() - own) / max(n_districts - 1, 1)
    prolific_size = np.maximum(1, np.round(off["prolific_per_offence"] * home)).astype(np.int64)
    occasional_size = np.maximum(
        1, np.ceil(off["occasional_pool_per_offence"] * (1.0 - off["prolific_share"]) * home)
    ).astype(np.int64)
    return PersonPools(
        dv_start=dv_start,
        dv_size=dv_size,
        dv_cumulative=dv_cumulative,
        dv_victim_age=dv_victim_age,
        dv_partner_age=dv_partner_age,
        crew_numbers=crew_numbers,
        crew_ages=crew_ages,
        offender_base=next_person,
        prolific_start=np.r_[0, np.cumsum(prolific_size)[:-1]],
        prolific_size=prolific_size,
        prolific_cumulative=np.cumsum(rng.gamma(off["prolific_gamma_shape"], 1.0, int(prolific_size.sum()))),
        prolific_age=_ages(rng, spec, "offender", int(prolific_size.sum())),
        occasional_start=np.r_[0, np.cumsum(occasional_size)[:-1]],
        occasional_size=occasional_size,
        occasional_age=_ages(rng, spec, "offender", int(occasional_size.sum())),
        next_person=next_person + int(prolific_size.sum() + occasional_size.sum()),
    )


def generate_persons(rng, spec, geo, model: OffenceModel, incidents: Incidents, plan: Plan, pools: PersonPools):
    """One chunk's victims and offenders/suspects: a frame of (incident, person number, role, age band)."""
    ev = incidents.events
    category = model.code_category[ev.code]
    victim_profiles = [model.category_spec[c].get("victims", "") for c in model.category_names]
    victim_profile = np.array(victim_profiles, dtype=object)[category]
    has_victim = model.victims[ev.code] > 0
    homicide = np.array(model.categories)[ev.code] == "homicide"
    dv = has_victim & incidents.domestic & ~homicide
    rows_event, rows_person, rows_role, rows_age = [], [], [], []

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
    add(victim_events, pools.next_person + np.arange(len(victim_events)), 0, ages)
    pools.next_person += len(victim_events)

    # domestic abuse: the victim drawn from the beat's pool by repeat propensity; the abuser is the
    # victim's partner (one per victim)
    dv_events = np.flatnonzero(dv)
    beat = ev.beat[dv_events]
    victim = _pick(rng, pools.dv_cumulative, pools.dv_start, pools.dv_size, beat)
    dv_victim = 1 + pools.dv_start[beat] + victim  # each beat's victims, then their partners
    dv_partner = dv_victim + pools.dv_size[beat]
    add(dv_events, dv_victim, 0, pools.dv_victim_age[victim])
    dv_identified = incidents.identified[dv_events]
    add(
        dv_events[dv_identified],
        dv_partner[dv_identified],
        np.where(incidents.arrest[dv_events[dv_identified]], 1, 2),
        pools.dv_partner_age[victim[dv_identified]],
    )
    pools.dv_links += np.bincount(victim, minlength=len(pools.dv_links))
    pools.dv_incidents += len(dv_events)

    # the series crew
    crew_events = np.flatnonzero(incidents.identified & (ev.tag == TAG_SERIES))
    member = rng.integers(0, len(pools.crew_numbers), len(crew_events))
    add(
        crew_events,
        pools.crew_numbers[member],
        np.where(incidents.arrest[crew_events], 1, 2),
        pools.crew_ages[member],
    )
    pools.crew_incidents += len(crew_events)

    # everyone else identified: per home district, a prolific few (the power few) and occasional offenders
    other = np.flatnonzero(incidents.identified & ~dv & (ev.tag != TAG_SERIES))
    off = spec["offenders"]
    n_districts = len(geo.district_ids)
    own = geo.beat_district[ev.beat[other]]
    away = rng.random(len(other)) >= off["home_district_share"]
    home = np.where(away, (own + rng.integers(1, n_districts, len(other))) % n_districts, own)
    prolific = rng.random(len(other)) < off["prolific_share"]
    index = np.zeros(len(other), dtype=np.int64)  # in the prolific pools, then the occasional ones
    age = np.zeros(len(other), dtype=np.int64)
    pick = np.flatnonzero(prolific)
    chosen = _pick(rng, pools.prolific_cumulative, pools.prolific_start, pools.prolific_size, home[pick])
    index[pick], age[pick] = chosen, pools.prolific_age[chosen]
    pick = np.flatnonzero(~prolific)
    chosen = pools.occasional_start[home[pick]] + rng.integers(0, pools.occasional_size[home[pick]])
    index[pick], age[pick] = len(pools.prolific_cumulative) + chosen, pools.occasional_age[chosen]
    add(other, pools.offender_base + index, np.where(incidents.arrest[other], 1, 2), age)
    pools.offender_links += np.bincount(index, minlength=len(pools.offender_links))
    pools.prolific_incidents += int(prolific.sum())

    return (
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


def person_stats(pools: PersonPools) -> dict:
    """The realised statistics of the people drawn over the whole build, for ``demo_truth``."""
    per_victim = pools.dv_links[pools.dv_links > 0]
    counts = np.sort(pools.offender_links[pools.offender_links > 0])[::-1]
    top = max(1, round(0.05 * len(counts)))
    links = int(counts.sum())
    return {
        "dv_victims": int(len(per_victim)),
        "dv_incidents": pools.dv_incidents,
        "dv_repeat_victim_share": round(float((per_victim >= 2).mean()), 4) if len(per_victim) else 0.0,
        "dv_max_incidents_per_victim": int(per_victim.max()) if len(per_victim) else 0,
        "offenders": int(len(counts)),
        "offender_links": links,
        "top_5pct_offender_share": round(float(counts[:top].sum() / max(1, links)), 4),
        "prolific_offenders": int(pools.prolific_size.sum()),
        "prolific_offence_share": round(pools.prolific_incidents / links, 4) if links else 0.0,
        "crew_numbers": pools.crew_numbers.tolist(),
        "crew_incidents": pools.crew_incidents,
    }
