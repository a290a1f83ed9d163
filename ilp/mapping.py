"""Ingest mapping files: how one agency's export becomes warehouse rows, declared as TOML data.

A mapping is read strictly: an unknown section or key is an error that names it and suggests the
nearest valid key, so a typo never silently drops a field. The README documents every key with a
worked example; ``data/mappings/*.toml`` are the shipped presets.
"""

from __future__ import annotations

import difflib
import hashlib
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


@dataclass(frozen=True)
class Mapping:
    path: Path
    sha256: str
    name: str
    description: str
    taxonomy: str
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
    id_when_missing: str = "reject"  # 'reject' or 'content_hash'
    # occurred
    occurred_columns: tuple[str, ...] = ()
    occurred_formats: tuple[str, ...] = ()
    precision: str = "exact"
    timezone: str = ""
    time_column: str | None = None
    time_format: str = "%H%M"
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
    min_date: str = "1990-01-01"
    max_date: str = "today"
    max_field_length: int = 10_000

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
    occurred_columns = strings("occurred", "columns")
    if len(occurred_columns) > 2:
        raise MappingError(f"{path}: [occurred] columns takes one column, or two (date and time) joined by a space.")

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
            or not all(isinstance(v, (int, float)) for v in bbox)
            or bbox[0] >= bbox[2]
            or bbox[1] >= bbox[3]
        ):
            raise MappingError(
                f"{path}: [location] bbox must be [min_longitude, min_latitude, max_longitude, max_latitude]."
            )
        bbox = tuple(float(v) for v in bbox)
    other = get("areas", "other", {}, dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in other.items()):
        raise MappingError(
            f'{path}: [areas] other must map level names to column names, e.g. other = {{ ward = "Ward" }}.'
        )
    taxonomy = get("source", "taxonomy")
    if not (paths.TAXONOMY_DIR / f"{taxonomy}.csv").exists():
        known = ", ".join(sorted(p.stem for p in paths.TAXONOMY_DIR.glob("*.csv")))
        raise MappingError(
            f"{path}: [source] taxonomy {taxonomy!r} has no file data/taxonomy/{taxonomy}.csv. Known: {known}."
        )
    name = get("source", "name")
    if not name or name == "demo":
        raise MappingError(f"{path}: [source] name must be a non-empty name other than 'demo'.")

    return Mapping(
        path=path,
        sha256=sha256,
        name=name,
        description=get("source", "description", ""),
        taxonomy=taxonomy,
        version=str(get("source", "version", "1", (str, int))),
        delimiter=delimiter,
        encoding=encoding,
        header=get("file", "header", True, bool),
        quote=get("file", "quote", '"'),
        skip_rows=get("file", "skip_rows", 0, int),
        id_columns=strings("id", "columns"),
        id_separator=get("id", "separator", "|"),
        id_when_missing=when_missing,
        occurred_columns=occurred_columns,
        occurred_formats=strings("occurred", "formats"),
        precision=precision,
        timezone=get("occurred", "timezone", ""),
        time_column=get("occurred", "time_column", None),
        time_format=get("occurred", "time_format", "%H%M"),
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
        min_date=str(get("validity", "min_date", "1990-01-01", (str,))),
        max_date=str(get("validity", "max_date", "today", (str,))),
        max_field_length=get("validity", "max_field_length", 10_000, int),
    )
