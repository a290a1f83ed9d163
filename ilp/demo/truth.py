"""The ``demo_truth`` rows: what was planted, where, when and how strongly, with the realised counts.

Three beat-level truths (emerging series, the two phases of the moving hot spot, the intervention) and
three citywide behaviours (near-repeat burglary, repeat domestic-abuse victims, prolific offenders).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import numpy as np

from ilp.demo.clock import Clock
from ilp.demo.geography import Geography
from ilp.demo.incidents import NEAR_REPEAT_SAME_ADDRESS, Incidents
from ilp.demo.offences import OffenceModel
from ilp.demo.people import AGE_BANDS
from ilp.demo.plan import TAG_HOTSPOT_1, TAG_NEAR_REPEAT, TAG_SERIES, Plan


@dataclasses.dataclass
class Tally:
    """What the truth rows and the survey count over all incidents, added up one chunk at a time."""

    tags: np.ndarray  # incidents per tag (background, series, hot spot phases, near repeat)
    intervention: dict  # burglaries in the treated and control beats, before and after the cut
    district: np.ndarray  # incidents per district

    @staticmethod
    def start(geo: Geography) -> Tally:
        counts = dict.fromkeys(("treated_before", "treated_after", "control_before", "control_after"), 0)
        return Tally(np.zeros(TAG_NEAR_REPEAT + 1, dtype=np.int64), counts, np.zeros(len(geo.district_ids), np.int64))

    def add(self, geo: Geography, plan: Plan, incidents: Incidents) -> None:
        ev = incidents.events
        self.tags += np.bincount(ev.tag, minlength=len(self.tags))
        self.district += np.bincount(geo.beat_district[ev.beat], minlength=len(self.district))
        i = plan.intervention
        burglary = ev.code == i["code"]
        after = ev.day >= i["first_day"]
        for name, beat in (("treated", i["beat"]), ("control", i["control"])):
            here = burglary & (ev.beat == beat)
            self.intervention[f"{name}_before"] += int((here & ~after).sum())
            self.intervention[f"{name}_after"] += int((here & after).sum())


def _truth(
    kind: str,
    *,
    area_id=None,
    category=None,
    start: dt.date,
    end: dt.date,
    effect=None,
    control=None,
    details: dict,
    description: str,
) -> dict:
    return {
        "kind": kind,
        "area_level": "beat" if area_id else None,
        "area_id": area_id,
        "offense_category": category,
        "start_date": start,
        "end_date": end,
        "effect_size": effect,
        "control_area_id": control,
        "details": details,
        "description": description,
    }


def truth_rows(
    spec, geo: Geography, model: OffenceModel, plan: Plan, tally: Tally, person_stats: dict, clock: Clock
) -> list[dict]:
    """One row per planted truth (three beat-level ones, then three citywide behaviours)."""
    beat_id = geo.beat_ids
    salt = spec["city"]["person_salt"]
    s = plan.series
    days = clock.n_days - s["first_day"]
    rows = [
        _truth(
            "emerging_series",
            area_id=beat_id[s["beat"]],
            category=s["category"],
            start=clock.date_of(s["first_day"]),
            end=clock.end_date,
            effect=s["effect"],
            details={
                "offense_code": model.codes[s["code"]],
                "baseline_per_week": round(7 * s["baseline_per_day"], 3),
                "baseline_rank_among_beats": s["rank"],
                "planted_incidents": int(tally.tags[TAG_SERIES]),
                "centre_lat": s["lat"],
                "centre_lon": s["lon"],
                "sigma_m": round(1000 * s["sigma_km"]),
                "hours_profile": s["hours"],
                "victim_age_bands": dict(zip(AGE_BANDS, spec["ages"][s["victims"]], strict=True)),
                "crew_person_keys": [
                    hashlib.sha256(f"{salt}{n}".encode()).hexdigest() for n in person_stats["crew_numbers"]
                ],
                "crew_linked_incidents": person_stats["crew_incidents"],
            },
            description=(
                f"A street robbery series in beat {beat_id[s['beat']]} over the last {days} days: robbery at "
                f"{s['effect']:g}x the beat's baseline, victims mostly under 18, after school hours."
            ),
        )
    ]

    h = plan.hotspot
    first, second = h["phases"]
    for number, (phase, other) in enumerate(((first, second), (second, first)), start=1):
        moved = (
            f"then it moves to beat {beat_id[other['beat']]}."
            if number == 1
            else f"after moving from beat {beat_id[other['beat']]}."
        )
        rows.append(
            _truth(
                "moving_hotspot",
                area_id=beat_id[phase["beat"]],
                category=h["category"],
                start=clock.date_of(phase["first_day"]),
                end=clock.date_of(phase["last_day"]),
                effect=phase["multiplier"],
                details={
                    "phase": number,
                    "phases": 2,
                    "offense_code": model.codes[h["code"]],
                    "from_beat": beat_id[first["beat"]],
                    "to_beat": beat_id[second["beat"]],
                    "other_phase_beat": beat_id[other["beat"]],
                    "baseline_per_week": round(7 * phase["baseline_per_day"], 3),
                    "planted_incidents": int(tally.tags[TAG_HOTSPOT_1 + number - 1]),
                    "centre_lat": phase["lat"],
                    "centre_lon": phase["lon"],
                    "sigma_m": h["sigma_m"],
                },
                description=(
                    f"Residential burglary hot spot, phase {number} of 2: beat {beat_id[phase['beat']]} runs at "
                    f"{phase['multiplier']:g}x its baseline, {moved}"
                ),
            )
        )

    i = plan.intervention
    rows.append(
        _truth(
            "intervention",
            area_id=beat_id[i["beat"]],
            category=i["category"],
            start=clock.date_of(i["first_day"]),
            end=clock.end_date,
            effect=i["effect"],
            control=beat_id[i["control"]],
            details={
                "offense_code": model.codes[i["code"]],
                "treated_population": int(geo.beat_population[i["beat"]]),
                "control_population": int(geo.beat_population[i["control"]]),
                "baseline_per_week": round(7 * i["baseline_per_day"], 3),
                "counts": dict(tally.intervention),
                "survey_district": geo.district_ids[geo.beat_district[i["beat"]]],
                "survey_effect": dict(zip(spec["survey"]["measures"], i["survey_effect"], strict=True)),
            },
            description=(
                f"From {clock.date_of(i['first_day'])} residential burglary in beat {beat_id[i['beat']]} is cut "
                f"to {i['effect']:g}x its baseline; beat {beat_id[i['control']]} has the same baseline and "
                f"no intervention."
            ),
        )
    )

    near = plan.near_repeat
    rows.append(
        _truth(
            "near_repeat",
            category=near["category"],
            start=clock.start_date,
            end=clock.end_date,
            effect=near["branching"],
            details={
                "radius_m": near["radius_m"],
                "window_days": near["window_days"],
                "same_address_share": NEAR_REPEAT_SAME_ADDRESS,
                "follow_on_incidents": int(tally.tags[TAG_NEAR_REPEAT]),
            },
            description=(
                f"Citywide, each residential burglary triggers on average {near['branching']:g} more within "
                f"{near['radius_m']} m in the next {near['window_days']} days."
            ),
        )
    )
    rows.append(
        _truth(
            "repeat_victims",
            start=clock.start_date,
            end=clock.end_date,
            effect=person_stats["dv_repeat_victim_share"],
            details={
                "domestic_only": True,
                "victims": person_stats["dv_victims"],
                "incidents": person_stats["dv_incidents"],
                "repeat_victim_share": person_stats["dv_repeat_victim_share"],
                "max_incidents_per_victim": person_stats["dv_max_incidents_per_victim"],
                "propensity_gamma_shape": spec["offenders"]["dv_propensity_shape"],
            },
            description=(
                "Domestic-abuse victims recur (heavy-tailed repeat propensity per beat); effect_size is the "
                "share of victims with two or more incidents."
            ),
        )
    )
    rows.append(
        _truth(
            "prolific_offenders",
            start=clock.start_date,
            end=clock.end_date,
            effect=person_stats["top_5pct_offender_share"],
            details={
                "offenders": person_stats["offenders"],
                "links": person_stats["offender_links"],
                "top_5pct_share": person_stats["top_5pct_offender_share"],
                "prolific_offenders": person_stats["prolific_offenders"],
                "prolific_offence_share": person_stats["prolific_offence_share"],
                "roles": "offender where an arrest was made, suspect otherwise",
            },
            description=(
                "A power few: effect_size is the share of identified non-domestic offences linked to the top "
                "5% of offenders."
            ),
        )
    )
    return rows
