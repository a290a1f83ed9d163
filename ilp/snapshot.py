"""What a snapshot offers, read once and typed: its kind and dates, the districts and offence categories it
holds, its harm indices, and the area levels loaded. Pages, the printed brief and the CLI ask this object
for labels and units instead of rebuilding them from query frames.

Also the one rule for the default week: the last Monday-Sunday week complete both in the calendar and in
the data (:func:`last_complete_week`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from ilp.warehouse import read_meta, run_query


# ------------------------------------------------------------------------------------------ the week rule
def last_complete_week(last_data_day: dt.date, today: dt.date | None = None) -> dt.date:
    """Monday of the last Monday-Sunday week that is complete both in the calendar (it ended before
    ``today``) and in the data (it ended on or before ``last_data_day``)."""
    today = today or dt.date.today()
    as_of = min(today - dt.timedelta(days=1), last_data_day)
    monday = as_of - dt.timedelta(days=as_of.weekday())
    return monday if as_of.weekday() == 6 else monday - dt.timedelta(weeks=1)


def week_end(monday: dt.date) -> dt.date:
    """The Sunday ending the week that starts on ``monday`` (the 'as of' day of analyses of that week)."""
    return monday + dt.timedelta(days=6)


def week_of(day: dt.date) -> dt.date:
    """The Monday of the week holding ``day``."""
    return day - dt.timedelta(days=day.weekday())


def area_label(level: str, area, area_name=None) -> str:
    """An area in words: 'Beat 3D (Harbour North)', 'District 003', 'Location 011XX S CANAL ST', 'Citywide'."""
    if level == "city":
        return "Citywide"
    text = f"{str(level).capitalize()} {area}"
    if isinstance(area_name, str) and area_name and area_name != str(area):
        text += f" ({area_name})"
    return text


# ------------------------------------------------------------------------------------------ harm indices
@dataclass(frozen=True)
class HarmIndex:
    """One harm index of the snapshot (``harm_indices``): 'cchi' 2016, 'csi' 2009, or an agency's own."""

    name: str
    version: str
    title: str
    unit: str  # as loaded: 'days of imprisonment (sentencing starting point)'
    provenance: str = ""
    is_default: bool = False

    @property
    def key(self) -> str:
        """'cchi:2016': how the URL, the CLI (--harm) and the sidebar name it."""
        return f"{self.name}:{self.version}"

    @property
    def tag(self) -> str:
        """'CCHI 2016'."""
        return f"{self.name.upper()} {self.version}"

    @property
    def label(self) -> str:
        """'Cambridge Crime Harm Index (CCHI 2016)'."""
        return f"{self.title} ({self.tag})"

    @property
    def unit_name(self) -> str:
        """The unit without its explanation: 'days of imprisonment', 'severity weight'."""
        return self.unit.split(" (")[0].strip() or "harm units"

    @property
    def unit_short(self) -> str:
        """For axis labels and tables: 'days' for day-based indices (CCHI), 'severity points' otherwise."""
        return "days" if "day" in self.unit_name.lower() else "severity points"


# Said beside every harm figure: which offences carry no harm, and why (the rule itself is the warehouse's
# incident_harm macro).
PROACTIVE_NOTE = (
    "Harm excludes proactive categories (drug possession and trafficking, weapons possession, "
    "vehicle offences): their counts measure police activity, not harm, as in the CCHI."
)

# The area levels incidents carry, lowest first, and the one area above them all (a ranking by offence only).
AREA_LEVELS = ("beat", "district")
CITY = "city"
# Incidents' occurred_precision values and the snapshot_coverage columns that count them, finest first.
PRECISION_COLUMNS = {"exact": "exact_times", "day": "day_only", "month": "month_only"}
# Data whose last day is further back than this is said to be old, on every page and on the printed brief.
STALE_AFTER_DAYS = 14


def age_text(days: int) -> str:
    """'16 days', '3 months', '5 years': how long ago, in the unit a reader thinks in."""
    if days < 60:
        return f"{days} days"
    if days < 730:
        return f"{round(days / 30.44)} months"
    return f"{round(days / 365.25)} years"


UNKNOWN_HARM = HarmIndex(name="?", version="?", title="unknown harm index", unit="harm units")


# ------------------------------------------------------------------------------------------ the snapshot
@dataclass(frozen=True)
class SnapshotInfo:
    """What one snapshot offers. Build with :meth:`read` on a read-only connection."""

    version: str
    meta: dict = field(default_factory=dict)
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    incidents: int = 0
    districts: dict = field(default_factory=dict)  # area id -> name, in id order
    categories: dict = field(default_factory=dict)  # category code -> label, in label order
    harm_indices: tuple = ()  # HarmIndex, the default first
    area_levels: dict = field(default_factory=dict)  # level -> {'areas', 'with_population', 'with_geometry'}
    coverage: dict = field(default_factory=dict)  # what the incidents carry (queries/snapshot_coverage.sql)

    @classmethod
    def read(cls, con) -> SnapshotInfo:
        meta = read_meta(con)
        facts = run_query(con, "snapshot_facts").iloc[0]
        coverage = run_query(con, "snapshot_coverage").iloc[0]
        districts = run_query(con, "snapshot_districts")
        categories = run_query(con, "snapshot_categories")
        harm = run_query(con, "snapshot_harm_indices")
        levels = run_query(con, "snapshot_area_levels")
        return cls(
            version=meta.get("version", "?"),
            meta=meta,
            first_day=_date(facts["first_day"]),
            last_day=_date(facts["last_day"]),
            incidents=int(facts["incidents"]),
            districts=dict(zip(districts["area_id"], districts["name"])),
            categories=dict(zip(categories["category"], categories["label"])),
            harm_indices=tuple(
                HarmIndex(
                    name=r.index_name,
                    version=r.version,
                    title=r.title,
                    unit=r.unit,
                    provenance=r.provenance,
                    is_default=bool(r.is_default),
                )
                for r in harm.itertuples()
            ),
            area_levels={
                r.level: {
                    "areas": int(r.areas),
                    "with_population": int(r.with_population),
                    "with_geometry": int(r.with_geometry),
                }
                for r in levels.itertuples()
            },
            coverage={key: int(value) for key, value in coverage.items()},
        )

    # ---------------------------------------------------------------------------- kind and dates
    @property
    def kind(self) -> str | None:
        """'demo' or 'real'."""
        return self.meta.get("kind")

    @property
    def demo(self) -> bool:
        return self.kind == "demo"

    @property
    def created_at(self) -> str:
        return self.meta.get("created_at", "?")

    def default_week(self, today: dt.date | None = None) -> dt.date | None:
        """Monday of the last complete week in the data (None when there is no incident data)."""
        return last_complete_week(self.last_day, today) if self.last_day else None

    def default_as_of(self, today: dt.date | None = None) -> dt.date | None:
        """The Sunday ending the default week: the 'as of' day of the brief and the threat ranking."""
        week = self.default_week(today)
        return week_end(week) if week else None

    @property
    def time_precision(self) -> str | None:
        """How precisely most incidents are dated: 'exact' (a time of day), 'day' (the date only) or 'month'
        (the month only, as data.police.uk publishes); None when there are no incidents. Month-only data has
        no weekly series and no shifts; day-only data has no shifts."""
        counts = {precision: self.coverage.get(column, 0) for precision, column in PRECISION_COLUMNS.items()}
        if not any(counts.values()):
            return None
        return max(counts, key=lambda precision: counts[precision])

    @property
    def weekly(self) -> bool:
        """Whether weekly figures mean anything: not when most incidents are dated to the month only."""
        return self.time_precision != "month"

    @property
    def covers_through(self) -> dt.date | None:
        """The last day the data covers: the last incident's day, or the end of its month when most
        incidents are dated to the month only (a month-only source's last month is dated its 1st)."""
        if self.last_day is None:
            return None
        if self.time_precision == "month":
            return (pd.Timestamp(self.last_day) + pd.offsets.MonthEnd(0)).date()
        return self.last_day

    def data_age_days(self, today: dt.date | None = None) -> int | None:
        """Days from the last day the data covers to ``today`` (None without incidents)."""
        through = self.covers_through
        return None if through is None else ((today or dt.date.today()) - through).days

    def days_covered(self, start: dt.date, end: dt.date) -> int:
        """How many days of [``start``, ``end``) the data covers (from its first day to its last): a baseline
        window that reaches back before the data starts holds fewer days than it spans, and counting the
        missing days as days without crime would make every rise look significant."""
        if self.first_day is None or self.covers_through is None:
            return 0
        first = max(start, self.first_day)
        last = min(end, self.covers_through + dt.timedelta(days=1))
        return max(0, (last - first).days)

    def staleness(self, today: dt.date | None = None) -> str | None:
        """How old the data is, in words, when its last day is more than ``STALE_AFTER_DAYS`` before ``today``;
        None when it is recent, when there is none, and for the synthetic demo city (its dates are fixed when
        it is generated, so its age says nothing). Every page's banner and the printed brief show it."""
        age = self.data_age_days(today)
        if self.demo or age is None or age <= STALE_AFTER_DAYS:  # the demo city's dates are fixed when built
            return None
        today = today or dt.date.today()
        return (
            f"The data ends on {self.covers_through:%d %b %Y}, {age_text(age)} before today ({today:%d %b %Y}): "
            f"every figure here describes the weeks up to then, not now. Load newer exports to see the present."
        )

    def weeks(self, limit: int = 156, today: dt.date | None = None) -> list[dt.date]:
        """The Mondays a user may pick, newest first: from the default week back to the first week with data."""
        latest = self.default_week(today) or week_of(today or dt.date.today())
        first = self.first_day or latest
        count = max(1, min(limit, (latest - first).days // 7 + 1))
        return [latest - dt.timedelta(weeks=i) for i in range(count)]

    # ---------------------------------------------------------------------------- labels
    def district_name(self, area_id: str | None) -> str:
        """The district's name ('Harbour'), or its id when it has no name of its own."""
        return str(self.districts.get(area_id, area_id))

    def district_label(self, area_id: str | None, *, all_label: str = "All districts") -> str:
        """For pickers: 'Harbour (1)', '003' when the name is the id, ``all_label`` for None."""
        if area_id is None:
            return all_label
        name = self.district_name(area_id)
        return name if name == str(area_id) else f"{name} ({area_id})"

    def scope(self, district: str | None) -> str:
        """'Citywide' or the district's name."""
        return self.district_name(district) if district else "Citywide"

    def category_label(self, category: str | None, *, all_label: str = "all offence categories") -> str:
        """'Robbery' for 'robbery'; ``all_label`` for None; the code itself when the snapshot has no label."""
        if category is None:
            return all_label
        return str(self.categories.get(category, category))

    # ---------------------------------------------------------------------------- harm
    @property
    def default_harm(self) -> HarmIndex | None:
        return self.harm_indices[0] if self.harm_indices else None

    def harm(self, name: str | None = None, version: str | None = None) -> HarmIndex:
        """The harm index ``name``/``version`` (the default when neither is given; the newest version of
        ``name`` when only it is given); :data:`UNKNOWN_HARM` when the snapshot does not hold it."""
        if name is None and version is None:
            return self.default_harm or UNKNOWN_HARM
        matches = [h for h in self.harm_indices if h.name == name and version in (None, h.version)]
        if not matches:
            return UNKNOWN_HARM
        return max(matches, key=lambda h: h.version)

    def has_harm(self, name: str | None, version: str | None) -> bool:
        return any(h.name == name and h.version == version for h in self.harm_indices)

    # ---------------------------------------------------------------------------- areas
    def has_population(self, level: str = "district") -> bool:
        return self.area_levels.get(level, {}).get("with_population", 0) > 0

    def has_boundaries(self) -> bool:
        return any(level["with_geometry"] > 0 for level in self.area_levels.values())

    @property
    def levels(self) -> tuple[str, ...]:
        """The area levels the incidents carry, lowest first: ('beat', 'district'), ('district',), ('beat',)
        or () when incidents are placed in neither."""
        return tuple(level for level in AREA_LEVELS if self.coverage.get(f"with_{level}", 0) > 0)

    @property
    def lowest_level(self) -> str:
        """The level threats are ranked at by default: the lowest the data has, 'city' (one area, citywide)
        when incidents carry neither a beat nor a district."""
        return self.levels[0] if self.levels else CITY

    @property
    def ranking_levels(self) -> tuple[str, ...]:
        """The levels a ranking can be asked for: the data's own, lowest first, or ('city',) without any."""
        return self.levels or (CITY,)

    def has_level(self, level: str) -> bool:
        return level == CITY or level in self.levels

    def level_note(self, level: str) -> str:
        """Why a ranking is at ``level`` when it is not the beat: 'This source has no beats, so threats are
        ranked by district.' ('' at beat level)."""
        if level not in (*AREA_LEVELS, CITY) or level == AREA_LEVELS[0]:
            return ""
        below = AREA_LEVELS if level == CITY else AREA_LEVELS[: AREA_LEVELS.index(level)]
        missing = [f"{name}s" for name in below if name not in self.levels]
        if not missing:
            return ""
        by = "citywide, by offence only" if level == CITY else f"by {level}"
        return f"This source records no {' or '.join(missing)}, so threats are ranked {by}."

    @property
    def has_coordinates(self) -> bool:
        """Whether any incident has a usable location (latitude and longitude): without, there is no map."""
        return self.coverage.get("located", 0) > 0

    @property
    def has_location_text(self) -> bool:
        """Whether any incident has location text (a block): without, there are no repeat locations."""
        return self.coverage.get("with_location_text", 0) > 0


def _date(value) -> dt.date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


# ------------------------------------------------------------------------------------------ reading
class SnapshotReader:
    """Named queries and library analyses on one open snapshot connection, uncached: what the CLI, the
    printed brief and tests use. The dashboard's ``PageContext`` offers the same members (``info``,
    ``version``, ``query``, ``analysis``), cached, so a pipeline such as ``build_brief`` runs on either."""

    def __init__(self, con):
        self.con = con
        self.info = SnapshotInfo.read(con)
        self.version = self.info.version

    def query(self, name: str, **parameters) -> pd.DataFrame:
        return run_query(self.con, name, parameters)

    def analysis(self, function, **parameters):
        return function(self.con, **parameters)
