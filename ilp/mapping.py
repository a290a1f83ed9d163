"""Ingest mapping files: how one agency's export becomes warehouse rows, declared as TOML data.

A mapping is read strictly: an unknown section or key is an error that names it and suggests the
nearest valid key, so a typo never silently drops a field, and a setting that would load wrong data
(a 12-hour clock without AM/PM, a bbox with NaN, a date range that cannot be compared) is refused here,
naming the file and the key. The README documents every key with a worked example;
``data/mappings/*.toml`` are the shipped presets.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ilp import paths
from ilp.errors import UserError


class MappingError(UserError):
    """The mapping file cannot be used; the message names the file, the key and what to do."""


# Every section and key a mapping may use, with whether it is required. Order = documentation order.
SPEC: dict[str, dict[str, bool]] = {
    "source": {"name": True, "description": False, "taxonomy": True, "version": False},
    "file": {"delimiter": False, "encoding": False, "header": False, "quote": False, "skip_rows": False},
    "id": {"columns": True, "separator": False, "when_missing": False},
    "occurred": {
        "columns": True,
        "formats": True,
        "precision": False,
        "timezone": False,
        "time_column": False,
        "time_format": False,
    },
    "reported": {"columns": True, "formats": True},
    "offense": {"code": True, "description": False, "code_width": False},
    "location": {
        "latitude": False,
        "longitude": False,
        "x": False,
        "y": False,
        "epsg": False,
        "text": False,
        "bbox": False,
    },
    "areas": {"district": False, "beat": False, "other": False},
    "fields": {"premise_type": False, "domestic": False, "arrest": False, "outcome": False},
    "flags": {"true_values": False, "false_values": False},
    "outcome": {"cleared_arrest": False, "cleared_other": False, "open": False, "arrest_means_cleared": False},
    "validity": {"min_date": False, "max_date": False, "max_field_length": False},
}
REQUIRED_SECTIONS = ("source", "id", "occurred", "offense")
ENCODINGS = ("utf-8", "latin-1", "utf-16")
PRECISIONS = ("exact", "day", "month")
SECONDS_SINCE_MIDNIGHT = "seconds"  # [occurred] time_format for a time column of seconds since midnight
TIME_DIRECTIVES = frozenset("HIMSp")  # what a time_format may hold besides literal text (%H %I %M %S %p)
DEFAULT_MIN_DATE = "1990-01-01"
DEFAULT_MAX_DATE = "today"
DEFAULT_MAX_FIELD_LENGTH = 10_000


@dataclass(frozen=True)
class Mapping:
    path: Path
    sha256: str
    name: str
    description: str
    taxonomy: str  # the taxonomy's name in the warehouse (offence_taxonomy.source)
    version: str
    # file
    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True
    quote: str = '"'
    skip_rows: int = 0
    # id
    id_columns: tuple[str, ...] = ()
    id_separator: str = "|"
    id_when_missing: str = "reject"  # 'reject' or 'content_hash' (always 'content_hash' when id_columns is empty)
    # occurred
    occurred_columns: tuple[str, ...] = ()
    occurred_formats: tuple[str, ...] = ()
    precision: str = "exact"
    timezone: str = ""
    time_column: str | None = None
    time_formats: tuple[str, ...] = ("%H%M",)  # strptime formats tried in order, or "seconds"
    # reported
    reported_columns: tuple[str, ...] = ()
    reported_formats: tuple[str, ...] = ()
    # offence
    offense_code: str = ""
    offense_description: tuple[str, ...] = ()
    code_width: int = 0
    # location
    latitude: str | None = None
    longitude: str | None = None
    x: str | None = None
    y: str | None = None
    epsg: int | None = None
    location_text: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # min_lon, min_lat, max_lon, max_lat
    # areas
    district: str | None = None
    beat: str | None = None
    other_areas: dict[str, str] = field(default_factory=dict)
    # fields and flags
    premise_type: str | None = None
    domestic: str | None = None
    arrest: str | None = None
    outcome: str | None = None
    true_values: tuple[str, ...] = ("true", "t", "yes", "y", "1")
    false_values: tuple[str, ...] = ("false", "f", "no", "n", "0")
    # outcome -> clearance status
    cleared_arrest: tuple[str, ...] = ()
    cleared_other: tuple[str, ...] = ()
    open_values: tuple[str, ...] = ()
    arrest_means_cleared: bool = False
    # validity
    min_date: str = DEFAULT_MIN_DATE
    max_date: str = DEFAULT_MAX_DATE
    max_field_length: int = DEFAULT_MAX_FIELD_LENGTH
    # the taxonomy file (data/taxonomy/<name>.csv, or a path beside the mapping file)
    taxonomy_path: Path | None = None

    @property
    def time_format(self) -> str:
        """The first time format (the one most exports need)."""
        return self.time_formats[0]

    @property
    def content_ids(self) -> bool:
        """True when some or all rows get an id from their content (no id column, or when_missing)."""
        return not self.id_columns or self.id_when_missing == "content_hash"

    def columns_used(self) -> list[str]:
        """Every source column the mapping reads (each must exist in the file)."""
        used: list[str] = [
            *self.id_columns,
            *self.occurred_columns,
            *self.reported_columns,
            self.offense_code,
            *self.offense_description,
        ]
        for name in (
            self.time_column,
            self.latitude,
            self.longitude,
            self.x,
            self.y,
            self.location_text,
            self.district,
            self.beat,
            self.premise_type,
            self.domestic,
            self.arrest,
            self.outcome,
        ):
            if name:
                used.append(name)
        used.extend(self.other_areas.values())
        return list(dict.fromkeys(used))


def resolve(name_or_path: str) -> Path:
    """A preset name (``chicago``) or a path to a .toml file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.exists():
            raise MappingError(f"Mapping file {candidate} does not exist.")
        return candidate
    preset = paths.MAPPINGS_DIR / f"{name_or_path}.toml"
    if preset.exists():
        return preset
    presets = ", ".join(sorted(p.stem for p in paths.MAPPINGS_DIR.glob("*.toml")))
    raise MappingError(f"No mapping named {name_or_path!r}. Presets: {presets}; or give a path to a .toml file.")


def load(name_or_path: str | Path) -> Mapping:
    path = resolve(str(name_or_path))
    raw_bytes = path.read_bytes()
    try:
        document = tomllib.loads(raw_bytes.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise MappingError(f"{path}: not valid TOML ({error}).") from None
    return parse(document, path=path, sha256=hashlib.sha256(raw_bytes).hexdigest())


def _unknown(path: Path, where: str, key: str, valid: list[str]) -> MappingError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else f" Valid: {', '.join(valid)}."
    return MappingError(f"{path}: unknown {where} {key!r}.{hint}")


def parse(document: dict, *, path: Path, sha256: str = "") -> Mapping:
    for section in document:
        if section not in SPEC:
            raise _unknown(path, "section", section, list(SPEC))
    for section in REQUIRED_SECTIONS:
        if section not in document:
            raise MappingError(f"{path}: missing required section [{section}].")
    for section, table in document.items():
        if not isinstance(table, dict):
            raise MappingError(f"{path}: [{section}] must be a table of keys.")
        for key in table:
            if key not in SPEC[section]:
                raise _unknown(path, f"key in [{section}]", key, list(SPEC[section]))
        for key, required in SPEC[section].items():
            if required and key not in table:
                raise MappingError(f"{path}: [{section}] is missing required key {key!r}.")

    def get(section: str, key: str, default=None, kind: type | tuple = str):
        value = document.get(section, {}).get(key, default)
        if value is default:
            return value
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(k.__name__ for k in kinds)
            raise MappingError(f"{path}: [{section}] {key} must be {names}, not {value!r}.")
        return value

    def strings(section: str, key: str, default=()) -> tuple[str, ...]:
        value = get(section, key, None, (str, list))
        if value is None:
            return tuple(default)
        values = [value] if isinstance(value, str) else value
        if not values or not all(isinstance(v, str) and v for v in values):
            raise MappingError(f"{path}: [{section}] {key} must be a non-empty string or list of strings.")
        return tuple(values)

    encoding = get("file", "encoding", "utf-8").lower().replace("_", "-")
    if encoding in ("latin1", "iso-8859-1"):
        encoding = "latin-1"
    if encoding == "utf8":
        encoding = "utf-8"
    if encoding not in ENCODINGS:
        raise MappingError(f"{path}: [file] encoding {encoding!r} is not supported; use one of {', '.join(ENCODINGS)}.")
    delimiter = get("file", "delimiter", ",")
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if len(delimiter) != 1:
        raise MappingError(f"{path}: [file] delimiter must be one character, not {delimiter!r}.")
    precision = get("occurred", "precision", "exact")
    if precision not in PRECISIONS:
        raise MappingError(f"{path}: [occurred] precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    when_missing = get("id", "when_missing", "reject")
    if when_missing not in ("reject", "content_hash"):
        raise MappingError(f"{path}: [id] when_missing must be 'reject' or 'content_hash', not {when_missing!r}.")
    # `columns = []` says the export has no id column: every row gets an id from its content.
    id_columns = () if document["id"].get("columns") == [] else strings("id", "columns")
    if not id_columns:
        when_missing = "content_hash"
    occurred_columns = strings("occurred", "columns")
    if len(occurred_columns) > 2:
        raise MappingError(f"{path}: [occurred] columns takes one column, or two (date and time) joined by a space.")
    occurred_formats = strings("occurred", "formats")
    for text in occurred_formats:
        _check_twelve_hour_clock(path, "[occurred] formats", text)
    time_column = get("occurred", "time_column", None)
    time_formats = _time_formats(path, strings("occurred", "time_format", ("%H%M",)))
    if "time_format" in document["occurred"] and not time_column:
        raise MappingError(
            f"{path}: [occurred] time_format is set but time_column is not: name the column that holds the time "
            f'(time_column = "..."), or remove time_format.'
        )
    if time_column and precision != "exact":
        raise MappingError(
            f"{path}: [occurred] time_column is set but precision is {precision!r}, which drops the time: "
            f'use precision = "exact" or remove time_column.'
        )
    min_date, max_date, max_field_length = _validity(path, document.get("validity", {}))

    location = document.get("location", {})
    has_latlon = "latitude" in location or "longitude" in location
    has_xy = "x" in location or "y" in location
    if has_latlon and not ("latitude" in location and "longitude" in location):
        raise MappingError(f"{path}: [location] needs both latitude and longitude.")
    if has_xy and not ("x" in location and "y" in location and "epsg" in location):
        raise MappingError(f"{path}: [location] x/y coordinates need x, y and epsg (the coordinate system's code).")
    epsg = get("location", "epsg", None, int)
    if epsg is not None:
        try:
            import pyproj

            pyproj.CRS.from_epsg(epsg)
        except Exception:
            raise MappingError(f"{path}: [location] epsg {epsg} is not a known coordinate system.") from None
    bbox = get("location", "bbox", None, list)
    if bbox is not None:
        if (
            len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
            or not all(math.isfinite(v) for v in bbox)
            or bbox[0] >= bbox[2]
            or bbox[1] >= bbox[3]
        ):
            raise MappingError(
                f"{path}: [location] bbox must be [min_longitude, min_latitude, max_longitude, max_latitude], "
                f"four finite numbers with min < max (got {bbox!r})."
            )
        if not (-180 <= bbox[0] and bbox[2] <= 180 and -90 <= bbox[1] and bbox[3] <= 90):
            raise MappingError(
                f"{path}: [location] bbox {bbox!r} is outside the world (longitude -180..180, latitude -90..90): "
                f"it is [min_longitude, min_latitude, max_longitude, max_latitude] in WGS84 degrees, even when the "
                f"coordinates are projected x/y."
            )
        bbox = tuple(float(v) for v in bbox)
    other = get("areas", "other", {}, dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in other.items()):
        raise MappingError(
            f'{path}: [areas] other must map level names to column names, e.g. other = {{ ward = "Ward" }}.'
        )
    taxonomy, taxonomy_path = _taxonomy(path, get("source", "taxonomy"))
    name = get("source", "name")
    if not name or name == "demo":
        raise MappingError(f"{path}: [source] name must be a non-empty name other than 'demo'.")

    return Mapping(
        path=path,
        sha256=sha256,
        name=name,
        description=get("source", "description", ""),
        taxonomy=taxonomy,
        taxonomy_path=taxonomy_path,
        version=str(get("source", "version", "1", (str, int))),
        delimiter=delimiter,
        encoding=encoding,
        header=get("file", "header", True, bool),
        quote=get("file", "quote", '"'),
        skip_rows=get("file", "skip_rows", 0, int),
        id_columns=id_columns,
        id_separator=get("id", "separator", "|"),
        id_when_missing=when_missing,
        occurred_columns=occurred_columns,
        occurred_formats=occurred_formats,
        precision=precision,
        timezone=get("occurred", "timezone", ""),
        time_column=time_column,
        time_formats=time_formats,
        reported_columns=strings("reported", "columns", ()),
        reported_formats=strings("reported", "formats", ()),
        offense_code=get("offense", "code"),
        offense_description=strings("offense", "description", ()),
        code_width=get("offense", "code_width", 0, int),
        latitude=get("location", "latitude", None),
        longitude=get("location", "longitude", None),
        x=get("location", "x", None),
        y=get("location", "y", None),
        epsg=epsg,
        location_text=get("location", "text", None),
        bbox=bbox,
        district=get("areas", "district", None),
        beat=get("areas", "beat", None),
        other_areas=dict(other),
        premise_type=get("fields", "premise_type", None),
        domestic=get("fields", "domestic", None),
        arrest=get("fields", "arrest", None),
        outcome=get("fields", "outcome", None),
        true_values=tuple(v.lower() for v in strings("flags", "true_values", Mapping.true_values)),
        false_values=tuple(v.lower() for v in strings("flags", "false_values", Mapping.false_values)),
        cleared_arrest=strings("outcome", "cleared_arrest", ()),
        cleared_other=strings("outcome", "cleared_other", ()),
        open_values=strings("outcome", "open", ()),
        arrest_means_cleared=get("outcome", "arrest_means_cleared", False, bool),
        min_date=min_date,
        max_date=max_date,
        max_field_length=max_field_length,
    )


# ------------------------------------------------------------------------------------------ checks
def _check_twelve_hour_clock(path: Path, where: str, text: str) -> None:
    """A 12-hour clock (%I) without AM/PM (%p) loads every afternoon time as a morning one: refuse it."""
    if "%I" in text and "%p" not in text:
        raise MappingError(
            f"{path}: {where} {text!r} reads a 12-hour clock (%I) without AM/PM (%p), so 1 PM would load as "
            f"01:00. Add %p where the export has AM/PM, or use %H for a 24-hour clock."
        )


def _time_formats(path: Path, formats: tuple[str, ...]) -> tuple[str, ...]:
    """[occurred] time_format: strptime formats of a time of day (%H, %I with %p, %M, %S and literal text),
    tried in order, or "seconds" for seconds since midnight."""
    for text in formats:
        if text == SECONDS_SINCE_MIDNIGHT:
            continue
        directives = re.findall(r"%(.)", text)
        unknown = sorted({d for d in directives if d not in TIME_DIRECTIVES})
        if unknown or not ({"H", "I"} & set(directives)):
            raise MappingError(
                f"{path}: [occurred] time_format {text!r} is not a time of day: use %H (hour 0-23) or %I with %p "
                f'(12-hour clock, AM/PM), optionally %M and %S, e.g. "%H%M" (2315), "%H:%M" (23:15), "%H" '
                f'(hour only), "%I:%M %p" (11:15 PM), or "seconds" (seconds since midnight).'
                + (f" It holds {', '.join('%' + d for d in unknown)}." if unknown else "")
            )
        _check_twelve_hour_clock(path, "[occurred] time_format", text)
    return formats


def _validity(path: Path, table: dict) -> tuple[str, str, int]:
    """[validity] min_date, max_date (ISO dates; max_date may be "today") and max_field_length."""

    def day(key: str, default: str, allow_today: bool) -> str:
        value = table.get(key, default)
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            if allow_today and value == "today":
                return value
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        also = ' or "today"' if allow_today else ""
        raise MappingError(f"{path}: [validity] {key} must be a date YYYY-MM-DD{also}, not {value!r}.")

    min_date = day("min_date", DEFAULT_MIN_DATE, allow_today=False)
    max_date = day("max_date", DEFAULT_MAX_DATE, allow_today=True)
    latest = dt.date.today() if max_date == "today" else dt.date.fromisoformat(max_date)
    if dt.date.fromisoformat(min_date) > latest:
        raise MappingError(
            f"{path}: [validity] min_date {min_date} is after max_date {max_date}: every row would be rejected."
        )
    max_field_length = table.get("max_field_length", DEFAULT_MAX_FIELD_LENGTH)
    if not isinstance(max_field_length, int) or isinstance(max_field_length, bool) or max_field_length < 1:
        raise MappingError(f"{path}: [validity] max_field_length must be a positive int, not {max_field_length!r}.")
    return min_date, max_date, max_field_length


def _taxonomy(path: Path, value: str) -> tuple[str, Path]:
    """[source] taxonomy: a shipped taxonomy's name (data/taxonomy/<name>.csv), or a CSV path relative to the
    mapping file, so an agency keeps its mapping and taxonomy together outside the repository. A path must
    stay inside the mapping's folder or data/taxonomy (no ``..`` or links out of them). Returns (name in the
    warehouse, file)."""
    shipped = paths.TAXONOMY_DIR / f"{value}.csv"
    if "/" not in value and "\\" not in value and not value.lower().endswith(".csv"):
        if shipped.exists():
            return value, shipped
        beside = path.parent / f"{value}.csv"
        hint = f' A file {beside} exists: write taxonomy = "{value}.csv" to use it.' if beside.exists() else ""
        known = ", ".join(sorted(p.stem for p in paths.TAXONOMY_DIR.glob("*.csv")))
        raise MappingError(
            f"{path}: [source] taxonomy {value!r} has no file data/taxonomy/{value}.csv. Known: {known}. "
            f'An agency\'s own taxonomy can sit beside the mapping: taxonomy = "{value}.csv".{hint}'
        )
    file = path.parent / value
    if not file.is_file():
        raise MappingError(
            f"{path}: [source] taxonomy {value!r}: no such file {file} (a path is read relative to the mapping file)."
        )
    resolved = file.resolve()
    allowed = (path.parent.resolve(), paths.TAXONOMY_DIR.resolve())
    if not any(resolved.is_relative_to(folder) for folder in allowed):
        raise MappingError(
            f"{path}: [source] taxonomy {value!r} is {resolved}, outside the mapping's folder "
            f"({allowed[0]}) and data/taxonomy: keep the taxonomy beside the mapping file (or in a folder under it)."
        )
    name = resolved.stem
    if (paths.TAXONOMY_DIR / f"{name}.csv").exists() and resolved != (paths.TAXONOMY_DIR / f"{name}.csv").resolve():
        raise MappingError(
            f"{path}: [source] taxonomy {value!r} has the name of the shipped taxonomy data/taxonomy/{name}.csv: "
            f"rename the file (e.g. {path.stem}_{name}.csv) so the two cannot be confused in a warehouse."
        )
    return name, resolved
