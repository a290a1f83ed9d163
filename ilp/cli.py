"""The ``ilp`` command: the only writer of warehouses.

Every command exits 1 with one clear message and no traceback on a problem the user can fix (an
``ilp.errors.UserError``) or an I/O failure; ``--debug`` shows the traceback. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import duckdb

from ilp import status as status_module
from ilp.access import ROLES
from ilp.errors import UserError
from ilp.paths import PROJECT_DIR
from ilp.warehouse import Warehouse, WarehouseError, default_directory


class _ProgressBar:
    """A terminal progress bar (tqdm) fed by the ``progress(step, fraction)`` callbacks of long work."""

    def __init__(self, description: str, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=100,
                desc=description,
                unit="%",
                file=sys.stderr,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar:30}| {postfix}",
            )

    def __call__(self, step: str, fraction: float) -> None:
        if self.bar is not None:
            self.bar.n = int(round(100 * min(max(fraction, 0.0), 1.0)))
            self.bar.set_postfix_str(step)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ilp", description="ILP Command Dashboard: build and load the incident warehouse."
    )
    parser.add_argument(
        "--warehouse", type=Path, default=None, help="warehouse folder (default: $ILP_WAREHOUSE or data/warehouse)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="build the synthetic demo city as a new warehouse")
    demo.set_defaults(func=_demo)
    demo.add_argument("--years", type=int, default=3)
    demo.add_argument("--incidents-per-year", type=int, default=150_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--end",
        type=dt.date.fromisoformat,
        default=None,
        help="last day of data, YYYY-MM-DD (default: the generator's fixed end date)",
    )
    demo.add_argument("--if-missing", action="store_true", help="do nothing when the warehouse already exists")
    demo.add_argument("--json", action="store_true")

    ingest = commands.add_parser("ingest", help="load exports into a new snapshot, by mapping file")
    ingest.set_defaults(func=_ingest)
    ingest.add_argument("--mapping", required=True, help="preset name (chicago, uk_police, lapd) or a .toml path")
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument("--json", action="store_true")

    status = commands.add_parser("status", help="what the current snapshot holds")
    status.set_defaults(func=_status)
    status.add_argument("--json", action="store_true")

    rejects = commands.add_parser("rejects", help="list rejected rows with file, line, field and reason")
    rejects.set_defaults(func=_rejects)
    rejects.add_argument("--ingest", type=int, default=None, help="one ingest's rejects (default: all)")
    rejects.add_argument("--limit", type=int, default=200)
    rejects.add_argument("--json", action="store_true")
    rejects.add_argument("--csv", type=Path, default=None, help="write all matching rejects to a CSV file")

    areas = commands.add_parser("areas", help="load area boundaries (GeoJSON) and populations")
    areas.set_defaults(func=_areas)
    areas.add_argument("--geojson", type=Path, required=True)
    areas.add_argument("--level", required=True, help="area level, e.g. beat or district")
    areas.add_argument("--id-field", required=True, help="feature property holding the area id")
    areas.add_argument("--name-field", default=None)
    areas.add_argument("--parent-level", default=None)
    areas.add_argument("--parent-field", default=None, help="feature property holding the parent area's id")
    areas.add_argument(
        "--population", type=Path, default=None, help="CSV with columns area_id,population for this level"
    )
    areas.add_argument("--json", action="store_true")

    harm = commands.add_parser("harm", help="add an agency's own harm weight table")
    harm.set_defaults(func=_harm)
    harm.add_argument("--name", required=True)
    harm.add_argument("--version", required=True)
    harm.add_argument("--title", required=True)
    harm.add_argument("--unit", required=True)
    harm.add_argument("--provenance", required=True)
    harm.add_argument("--file", type=Path, required=True, help="CSV with columns category,weight[,provenance]")
    harm.add_argument("--default", action="store_true", help="make it the default index")

    threats_parser = commands.add_parser(
        "threats", help="rank the top threats (offence x beat or district) with reasons and significance"
    )
    threats_parser.set_defaults(func=_threats)
    threats_parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=None,
        help="last day of the 28-day window, YYYY-MM-DD (default: the last complete week's Sunday in the data)",
    )
    threats_parser.add_argument("--top", type=int, default=10, help="how many threats to list (0 = all)")
    threats_parser.add_argument("--level", choices=("beat", "district"), default="beat")
    threats_parser.add_argument(
        "--harm",
        default=None,
        metavar="INDEX:VERSION",
        help="harm index, e.g. cchi:2016 (default: the snapshot's default index)",
    )
    threats_parser.add_argument("--json", action="store_true")

    brief = commands.add_parser("brief", help="write the command brief for the weekly meeting (.html or .pdf)")
    brief.set_defaults(func=_brief)
    brief.add_argument(
        "--week",
        type=dt.date.fromisoformat,
        default=None,
        help="any day of the brief's week, YYYY-MM-DD (default: the last complete week in the data)",
    )
    brief.add_argument("--out", type=Path, required=True, help="FILE.html (self-contained) or FILE.pdf")
    brief.add_argument("--district", default=None, help="one district's brief (default: citywide)")
    brief.add_argument("--category", default=None, help="one offence category, e.g. robbery (default: all)")
    brief.add_argument(
        "--level",
        choices=("beat", "district"),
        default="beat",
        help="rank threats and count repeat victims by beat or district (default: beat)",
    )
    brief.add_argument(
        "--harm", default=None, metavar="INDEX:VERSION", help="e.g. cchi:2016 (default: the default index)"
    )
    brief.add_argument("--top", type=int, default=10)
    brief.add_argument(
        "--state", type=Path, default=None, help="app-state SQLite (default: $ILP_STATE or data/state.sqlite)"
    )

    serve = commands.add_parser(
        "serve", help="start the dashboard over this warehouse, refusing a configuration that would expose it"
    )
    serve.set_defaults(func=_serve)
    serve.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for a team server)",
    )
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument(
        "--role",
        choices=list(ROLES),
        default=None,
        help="single workstation: everyone who reaches the server has this role (loopback only)",
    )
    serve.add_argument("--check", action="store_true", help="only say whether this configuration may start")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted before or after the command
    args = _parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    warehouse = Warehouse(args.warehouse or default_directory())
    try:
        return args.func(args, warehouse)
    except KeyboardInterrupt:
        print("ilp: interrupted; the current snapshot is unchanged.", file=sys.stderr)
        return 130
    except (UserError, OSError, duckdb.IOException) as error:  # fixable by the user or the machine: one line
        if args.debug:
            raise
        print(f"ilp {args.command}: error: {error}", file=sys.stderr)
        return 1


def _json_default(value):
    """numpy scalars as numbers, dates and anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def _emit(args, payload, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=_json_default))
    else:
        print(text)


def _demo_text(summary: dict) -> str:
    """What `ilp demo` built, for a person: the city, its rows and the planted truth, one line each."""
    lines = [
        f"Built the demo city {summary['city']} (seed {summary['seed']}) in {summary['seconds']:.1f} s: snapshot "
        f"{summary['snapshot']}, incidents {summary['start_date']} to {summary['end_date']}.",
        "Rows: " + ", ".join(f"{table} {count:,}" for table, count in summary["rows"].items()) + ".",
        f"Planted ground truth ({summary['truth_rows']} rows in table demo_truth):",
    ]
    for truth in summary["truth"]:
        where = f"{truth['area_level']} {truth['area_id']}" if truth["area_id"] else "citywide"
        lines.append(
            f"  - {truth['kind']}, {where}, {truth['offense_category'] or 'all offences'}, "
            f"{truth['start_date']} to {truth['end_date']}: {truth['description']}"
        )
    lines.append(f"Warehouse: {summary['directory']}")
    return "\n".join(lines)


def _interactive(args) -> bool:
    """A progress bar only for a person at a terminal, never in JSON output."""
    return sys.stderr.isatty() and not getattr(args, "json", False)


def _demo(args, warehouse: Warehouse) -> int:
    from ilp import demo

    if args.if_missing and warehouse.current_path() is not None:
        _emit(
            args,
            {"snapshot": warehouse.current_version(), "built": False},
            f"Warehouse {warehouse.directory} already holds {warehouse.current_version()}; not rebuilt.",
        )
        return 0
    if warehouse.current_path() is not None and warehouse.kind() == "real":
        raise WarehouseError(
            f"{warehouse.directory} holds real data; the demo city is never mixed into it. Use another --warehouse."
        )
    bar = _ProgressBar("Building demo city", _interactive(args))
    if not args.json:
        print(
            f"Building the demo city (seed {args.seed}, {args.years} years, "
            f"{args.incidents_per_year:,} incidents a year) in {warehouse.directory} ...",
            file=sys.stderr,
        )
    try:
        kwargs = dict(years=args.years, incidents_per_year=args.incidents_per_year, seed=args.seed, progress=bar)
        if args.end:
            kwargs["end_date"] = args.end
        summary = demo.build_demo_warehouse(warehouse.directory, **kwargs)
    finally:
        bar.close()
    summary = {"snapshot": warehouse.current_version(), **summary}
    _emit(args, summary, _demo_text(summary))
    return 0


def _ingest(args, warehouse: Warehouse) -> int:
    from ilp import ingest

    bar = _ProgressBar("Ingesting", _interactive(args))
    try:
        result = ingest.ingest(warehouse, args.mapping, args.files, progress=bar)
    finally:
        bar.close()
    payload = result.as_dict()
    text = (
        f"Ingest {result.ingest_id} ({result.source}) -> snapshot {result.snapshot} in {result.seconds:.1f} s\n"
        f"  rows read  {result.rows_read:>10,}\n"
        f"  loaded     {result.loaded:>10,}  (new)\n"
        f"  updated    {result.updated:>10,}  (earlier versions kept in incident_history)\n"
        f"  unchanged  {result.unchanged:>10,}\n"
        f"  rejected   {result.rejected:>10,}"
        + (f"  (see `ilp rejects --ingest {result.ingest_id}`)" if result.rejected else "")
        + "\n"
        f"  loaded without a usable location: {result.missing_location:,}; with an unmapped offence code: "
        f"{result.unmapped_codes:,}"
    )
    _emit(args, payload, text)
    return 0


def _status(args, warehouse: Warehouse) -> int:
    report = status_module.status(warehouse)
    _emit(args, report, status_module.format_status(report))
    return 0


def _rejects(args, warehouse: Warehouse) -> int:
    frame = status_module.rejects(warehouse, ingest_id=args.ingest, limit=None if args.csv else args.limit)
    if args.csv:
        from ilp.export import write_csv

        write_csv(frame, args.csv)
        print(f"Wrote {len(frame):,} rejected rows to {args.csv}")
        return 0
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    else:
        print(status_module.format_rejects(frame))
    return 0


def _areas(args, warehouse: Warehouse) -> int:
    from ilp import areas

    result = areas.load_areas(
        warehouse,
        geojson=args.geojson,
        level=args.level,
        id_field=args.id_field,
        name_field=args.name_field,
        parent_level=args.parent_level,
        parent_field=args.parent_field,
        population_csv=args.population,
    )
    _emit(args, result, "\n".join(f"{key}: {value}" for key, value in result.items()))
    return 0


def _harm(args, warehouse: Warehouse) -> int:
    from ilp import reference

    kind = warehouse.kind()
    if kind is None:
        warehouse.require_current()
    with warehouse.write(kind=kind, note=f"harm table {args.name} {args.version}") as con:
        count = reference.load_harm_table(
            con,
            name=args.name,
            version=args.version,
            title=args.title,
            unit=args.unit,
            provenance=args.provenance,
            path=args.file,
            is_default=args.default,
        )
    print(f"Harm index {args.name} {args.version}: {count} weights -> snapshot {warehouse.current_version()}")
    return 0


def _threats(args, warehouse: Warehouse) -> int:
    from ilp.analytics import threats as threat_ranking

    harm_index, harm_version = threat_ranking.parse_harm(args.harm) if args.harm else (None, None)
    con = warehouse.connect()
    try:
        frame = threat_ranking.rank_threats(
            con,
            as_of=args.as_of,
            level=args.level,
            harm_index=harm_index,
            harm_version=harm_version,
            top=args.top or None,
        )
    finally:
        con.close()
    if args.json:
        print(json.dumps(threat_ranking.to_records(frame), indent=2, default=str))
    else:
        print(threat_ranking.format_table(frame))
    return 0


def _serve(args, warehouse: Warehouse) -> int:
    """Check the sign-in configuration as the dashboard will, then hand over to `streamlit run`."""
    import os

    from ilp import auth
    from ilp.state import State

    warehouse.require_current()
    settings = auth.AuthSettings.from_secrets(auth.read_secrets(PROJECT_DIR))
    has_users = State.for_warehouse(warehouse.directory).has_users()  # ILP_STATE overrides, as in the dashboard
    mode = auth.sign_in_mode(
        demo=warehouse.kind() == "demo",
        settings=settings,
        has_local_users=has_users,
        workstation_role=args.role,
        address=args.address,
    )
    refused = auth.refusal(mode=mode, workstation_role=args.role, address=args.address)
    if refused:
        print(f"ilp serve: {refused}", file=sys.stderr)
        return 2
    print(
        f"Serving {warehouse.directory} ({warehouse.kind()} data, sign-in: {mode}) on "
        f"http://{args.address}:{args.port}",
        file=sys.stderr,
    )
    if args.check:
        return 0
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_DIR / "dashboard.py"),
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
    ]
    if args.role:
        command += ["--", "--role", args.role]
    os.chdir(PROJECT_DIR)
    os.environ["ILP_WAREHOUSE"] = str(warehouse.directory.resolve())
    os.execv(sys.executable, command)
    return 0  # not reached


def _brief(args, warehouse: Warehouse) -> int:
    import getpass

    from ilp import brief_report
    from ilp.analytics.brief import BriefRequest
    from ilp.analytics.threats import parse_harm
    from ilp.state import State

    harm_index, harm_version = parse_harm(args.harm) if args.harm else (None, None)
    request = BriefRequest(
        week=args.week,
        district=args.district,
        category=args.category,
        level=args.level,
        harm_index=harm_index,
        harm_version=harm_version,
        top=args.top,
    )
    result = brief_report.generate(
        warehouse,
        args.out,
        user=f"{getpass.getuser()} (cli)",
        state=State(args.state) if args.state else None,
        request=request,
    )
    print(
        f"Wrote {args.out}: week {result.week} to {result.as_of}, {len(result.threats)} threats, "
        f"{len(result.significant_changes)} significant changes, {len(result.taskings_due)} taskings due.\n"
        f"{result.stamp}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
