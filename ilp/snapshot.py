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
    """An area in words: 'Beat 3D (Harbour North)', 'District 003', 'Location 011XX S CANAL ST'."""
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

    @classmethod
    def read(cls, con) -> SnapshotInfo:
        meta = read_meta(con)
        facts = run_query(con, "snapshot_facts").iloc[0]
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
