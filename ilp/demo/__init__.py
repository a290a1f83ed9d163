"""The synthetic demo city, Port Meridian: the project's embedded default data, with planted truth.

``build_demo(con)`` fills every warehouse table (except ``rejects``) inside an open
``Warehouse.write(kind="demo", fresh=True)`` block; ``build_demo_warehouse(directory)`` does the whole
write. The city's parameters (districts, offence mix, hour and weekday profiles, response times, the
planted truths) are data in ``data/demo_city.toml``; its offence codes are ``data/taxonomy/demo.csv``.

How the incidents are made (all vectorised with numpy, a chunk of days at a time so that memory does not
grow with the city's size; each chunk draws from its own generator spawned from the seed):

* Geography is fixed (drawn with the TOML's ``city_seed``): districts are a Voronoi of fixed seed
  points clipped to the city rectangle; each district is cut into beats by a Lloyd-relaxed Voronoi.
  Beats carry population, deprivation, commercial and risk scores and a few hot points.
* Background counts are Poisson per (beat, offence code, day) with mean
  ``rate[beat, code] x season[category, day] x weekday[category, day]``: stationary apart from those
  shared seasonal multipliers. Locations cluster around the beat's hot points; hours follow the
  category's hour profile.
* Planted truths (``demo_truth``): an emerging street-robbery series, a moving burglary hot spot and a
  burglary intervention with a matched control beat, each at a known effect size. Also recorded:
  near-repeat burglary contagion, repeat domestic-abuse victims and a prolific-offender "power few".

Same (seed, years, incidents_per_year, end_date) gives identical tables; ``table_checksums`` proves it.

The modules, in the order a build uses them:

* ``city_spec``: where the parameters live (``data/demo_city.toml``, ``data/taxonomy/demo.csv``).
* ``geography``: the fixed map (districts, beats, hot points, km <-> lon/lat).
* ``offences``: the offence codes and the expected rate per (beat, code, day).
* ``clock``: the time frame (day numbers, epoch seconds, per-year running numbers).
* ``chunks``: the chunks of days a build draws and writes in, their generators, rows held for a later chunk.
* ``plan``: the planted truths, as beats, days and extra incident streams; expected counts.
* ``incidents``: incidents drawn, placed, near repeats added, times and outcomes.
* ``people``, ``calls``, ``use_of_force``, ``history``, ``survey``: the datasets derived from incidents
  (the pools of people who recur are planned for the whole period before the first chunk).
* ``truth``: the ``demo_truth`` rows, from counts tallied chunk by chunk.
* ``write``: the generated arrays into the warehouse's tables.
* ``build``: the steps in their fixed order, chunk by chunk, the whole write, and ``table_checksums``.
"""

from ilp.demo.build import (
    CHECKSUM_TABLES,
    DEFAULT_END_DATE,
    Progress,
    build_demo,
    build_demo_warehouse,
    table_checksums,
)
from ilp.demo.city_spec import city_spec_path, load_city_spec, taxonomy_path
from ilp.demo.geography import Geography, build_geography, geojson
from ilp.demo.offences import OffenceModel, load_offence_model

__all__ = [
    "CHECKSUM_TABLES",
    "DEFAULT_END_DATE",
    "Geography",
    "OffenceModel",
    "Progress",
    "build_demo",
    "build_demo_warehouse",
    "build_geography",
    "city_spec_path",
    "geojson",
    "load_city_spec",
    "load_offence_model",
    "table_checksums",
    "taxonomy_path",
]
