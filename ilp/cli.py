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
    threats_parser.add_argument(
        "--level",
        choices=("beat", "district", "city"),
        default=None,
        help="rank offences by beat, district or citywide (default: the lowest level the warehouse records)",
    )
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
        choices=("beat", "district", "city"),
        default=None,
        help="rank threats and count repeat victims by beat, district or citywide "
        "(default: the lowest level the warehouse records)",
    )
    brief.add_argument(
        "--harm", default=None, metavar="INDEX:VERSION", help="e.g. cchi:2016 (default: the default index)"
    )
    brief.add_argument("--top", type=int, default=10)
    brief.add_argument(
        "--state",
        type=Path,
        default=None,
        help="app-state SQLite (default: $ILP_STATE or the warehouse's app-state.sqlite)",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="did a tasking work? its effect against an untreated comparison area, displacement and harm prevented",
    )
    evaluate.set_defaults(func=_evaluate)
    evaluated = evaluate.add_mutually_exclusive_group(required=True)
    evaluated.add_argument("--tasking", type=int, metavar="ID", help="a tasking's number: its area, offence and start")
    evaluated.add_argument(
        "--area", metavar="AREA", help="an intervention recorded elsewhere: a beat or district id, or a location's text"
    )
    evaluate.add_argument("--level", choices=("beat", "district", "location"), help="the level of --area")
    evaluate.add_argument(
        "--category", action="append", metavar="CATEGORY", help="offence category of --area (repeat for several)"
    )
    evaluate.add_argument("--start", type=dt.date.fromisoformat, help="the day the --area intervention started")
    evaluate.add_argument(
        "--end", type=dt.date.fromisoformat, default=None, help="the day it ended: the post window runs to it"
    )
    evaluate.add_argument("--comparison", default=None, metavar="AREA", help="compare with this area, not a chosen one")
    evaluate.add_argument("--pre-weeks", type=int, default=12, help="weeks before the start (default 12)")
    evaluate.add_argument("--post-weeks", type=int, default=None, help="weeks from the start (default 12)")
    evaluate.add_argument(
        "--harm", default=None, metavar="INDEX:VERSION", help="e.g. cchi:2016 (default: the default index)"
    )
    evaluate.add_argument(
        "--state", type=Path, default=None, help="app-state SQLite (default: $ILP_STATE or the warehouse's own)"
    )
    evaluate.add_argument("--json", action="store_true")

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
    serve.add_argument(
        "--no-warm-up",
        action="store_true",
        help="do not visit every page after the start and after each new snapshot to fill the caches (ilp.warm_up)",
    )
    lake = commands.add_parser(
        "export-parquet", help="write the current snapshot as Parquet files (for Spark, Trino, a regional view)"
    )
    lake.set_defaults(func=_export_parquet)
    lake.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    lake.add_argument(
        "--include-persons", action="store_true", help="export incident_persons too (person-level: left out by default)"
    )
    lake.add_argument(
        "--state", type=Path, default=None, help="app-state SQLite (default: $ILP_STATE or the warehouse's own)"
    )
    _add_state_commands(commands)
    _add_forecast_commands(commands)
    return parser


def _add_state_commands(commands) -> None:
    """``ilp users``, ``ilp audit`` and ``ilp state``: the app state of the warehouse given by --warehouse."""
    users = commands.add_parser("users", help="local accounts and single-sign-on roles of this warehouse's dashboard")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="USERS_COMMAND")

    def password_source(parser) -> None:
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from one line of standard input"
        )

    add = users_commands.add_parser("add", help="add a local account (the password is asked for twice)")
    add.set_defaults(func=_users_add)
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=list(ROLES))
    password_source(add)

    listing = users_commands.add_parser("list", help="local accounts (never their hashes) and single-sign-on roles")
    listing.set_defaults(func=_users_list)
    listing.add_argument("--json", action="store_true")

    set_role = users_commands.add_parser("set-role", help="change a local account's role")
    set_role.set_defaults(func=_users_set_role)
    set_role.add_argument("username")
    set_role.add_argument("role", choices=list(ROLES))

    disable = users_commands.add_parser("disable", help="disable a local account (it keeps its audit history)")
    disable.set_defaults(func=_users_disable)
    disable.add_argument("username")
    enable = users_commands.add_parser("enable", help="enable a disabled local account again")
    enable.set_defaults(func=_users_enable)
    enable.add_argument("username")

    reset = users_commands.add_parser("reset-password", help="set a new password (clears a lockout)")
    reset.set_defaults(func=_users_reset_password)
    reset.add_argument("username")
    password_source(reset)

    assign = users_commands.add_parser(
        "assign-sso", help="give a single-sign-on identity (an email address or an OIDC subject) a role"
    )
    assign.set_defaults(func=_users_assign_sso)
    assign.add_argument("identity")
    assign.add_argument("--role", required=True, choices=list(ROLES))

    remove = users_commands.add_parser("remove-sso", help="remove a single-sign-on identity's role")
    remove.set_defaults(func=_users_remove_sso)
    remove.add_argument("identity")

    audit = commands.add_parser("audit", help="read and verify this warehouse's audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")
    audit_list = audit_commands.add_parser("list", help="audit rows, newest first")
    audit_list.set_defaults(func=_audit_list)
    audit_list.add_argument("--since", type=dt.date.fromisoformat, default=None, help="first day, YYYY-MM-DD (UTC)")
    audit_list.add_argument("--until", type=dt.date.fromisoformat, default=None, help="last day, YYYY-MM-DD (UTC)")
    audit_list.add_argument("--action", default=None, help="one action, e.g. sign_in_failed")
    audit_list.add_argument("--user", default=None, help="one user name as recorded")
    audit_list.add_argument("--limit", type=int, default=100, help="at most this many rows (0 = all; default 100)")
    audit_list.add_argument("--json", action="store_true")
    verify = audit_commands.add_parser("verify", help="check the hash chain: exit 0 when intact, 1 at the first break")
    verify.set_defaults(func=_audit_verify)

    state = commands.add_parser("state", help="this warehouse's app-state file: migrate into it, back it up")
    state_commands = state.add_subparsers(dest="state_command", required=True, metavar="STATE_COMMAND")
    migrate = state_commands.add_parser(
        "migrate", help="copy taskings, history, audit and users from an older state file (e.g. data/state.sqlite)"
    )
    migrate.set_defaults(func=_state_migrate)
    migrate.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE")
    migrate.add_argument("--json", action="store_true")
    backup = state_commands.add_parser("backup", help="a consistent copy of the state file (safe while serving)")
    backup.set_defaults(func=_state_backup)
    backup.add_argument("--out", type=Path, required=True, metavar="FILE")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted before or after the command
    args = _parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    warehouse = Warehouse(args.warehouse or default_directory())
    try:
        # an unfinished snapshot file a killed write left behind (`ilp status` reports it too)
        for leftover in warehouse.remove_stale_partials():
            print(
                f"ilp: removed {leftover['file']} ({leftover['bytes'] / 2**20:,.1f} MiB), an unfinished snapshot "
                f"left by an interrupted write.",
                file=sys.stderr,
            )
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
        result = ingest.ingest(warehouse, args.mapping, args.files, progress=bar, hotspot_forecast=True)
    finally:
        bar.close()
    payload = result.as_dict()
    text = (
        f"Ingest {result.ingest_id} ({result.source}) -> snapshot {result.snapshot} in {result.seconds:.1f} s\n"
        f"  rows read  {result.rows_read:>10,}\n"
        f"  loaded     {result.loaded:>10,}  (new)\n"
        f"  updated    {result.updated:>10,}  (earlier versions kept in incident_history)\n"
        f"  unchanged  {result.unchanged:>10,}\n"
        f"  rejected   {result.rejected:>10,}" + (_rejects_note(result) if result.rejected else "") + "\n"
        f"  loaded without a usable location: {result.missing_location:,}; with an unmapped offence code: "
        f"{result.unmapped_codes:,}" + "".join(f"\n  WARNING {warning}" for warning in result.warnings)
    )
    from ilp.analytics.hotspot_forecast import after_ingest_text

    forecast_note = after_ingest_text(result.forecast)
    if forecast_note:
        text += f"\n  {forecast_note}"
    _emit(args, payload, text)
    return 0


def _rejects_note(result) -> str:
    """Where to read this ingest's rejects: its own, or those an earlier ingest of the same file recorded."""
    new = result.rejected - result.rejects_already_recorded
    earlier = ", ".join(f"`ilp rejects --ingest {i}`" for i in result.rejects_recorded_by)
    if not result.rejects_already_recorded:
        return f"  (see `ilp rejects --ingest {result.ingest_id}`)"
    if not new:
        return f"  (all recorded before, by the same file's earlier ingest: see {earlier})"
    return (
        f"  ({new:,} new: see `ilp rejects --ingest {result.ingest_id}`; {result.rejects_already_recorded:,} recorded "
        f"before: see {earlier})"
    )


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
    from ilp.snapshot import SnapshotInfo

    harm_index, harm_version = threat_ranking.parse_harm(args.harm) if args.harm else (None, None)
    con = warehouse.connect()
    try:
        info = SnapshotInfo.read(con)
        level = threat_ranking.resolve_level(info, args.level)  # the lowest level the data has, unless asked
        as_of = args.as_of or threat_ranking.require_as_of(info)
        frame = threat_ranking.rank_threats(
            con,
            as_of=as_of,
            level=level,
            harm_index=harm_index,
            harm_version=harm_version,
            top=args.top or None,
        )
    finally:
        con.close()
    if args.json:
        print(json.dumps(threat_ranking.to_records(frame), indent=2, default=str))
    else:
        notes = (info.level_note(level), info.staleness() or "")
        print(threat_ranking.format_table(frame, level=level, as_of=as_of, notes=notes))
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
    os.environ["ILP_WAREHOUSE"] = str(warehouse.directory.resolve())  # before the chdir: --warehouse may be relative
    os.chdir(PROJECT_DIR)
    if not args.no_warm_up:
        _start_warm_up(args.address, args.port, os.environ["ILP_WAREHOUSE"])
    os.execv(sys.executable, command)
    return 0  # not reached


def _start_warm_up(address: str, port: int, warehouse_dir: str) -> None:
    """Start ilp.warm_up beside the server this process is about to become (it ends when the server does),
    with a token made for this run that only the two of them hold."""
    import os
    import secrets
    import subprocess

    from ilp import warm_up

    os.environ[warm_up.TOKEN_VARIABLE] = secrets.token_urlsafe(32)
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    host = f"[{host}]" if ":" in host else host
    command = [sys.executable, "-m", "ilp.warm_up", f"http://{host}:{port}", "--warehouse", warehouse_dir]
    subprocess.Popen(command, stdin=subprocess.DEVNULL)  # inherits stderr: its one line a round goes to the log


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
        state=State(args.state) if args.state else State.for_warehouse(warehouse.directory),
        request=request,
    )
    by = "offence, citywide" if result.level == "city" else result.level
    print(
        f"Wrote {args.out}: week {result.week} to {result.as_of}, {len(result.threats)} threats by {by}, "
        f"{len(result.significant_changes)} significant changes, {len(result.taskings_due)} taskings due.\n"
        + "".join(f"{note}\n" for note in (result.level_note, result.staleness) if note)
        + result.stamp
    )
    return 0


def _export_parquet(args, warehouse: Warehouse) -> int:
    import getpass

    from ilp.lake import export_parquet
    from ilp.state import State

    manifest = export_parquet(warehouse, args.out, include_persons=args.include_persons)
    state = State(args.state) if args.state else State.for_warehouse(warehouse.directory)
    state.record(
        user=f"{getpass.getuser()} (cli)",
        role=None,
        action="export_parquet",
        parameters={"out": str(args.out), "include_persons": args.include_persons},
        data_version=manifest["snapshot"],
    )
    tables = manifest["tables"]
    print(
        f"Wrote {args.out}: snapshot {manifest['snapshot']}, "
        + ", ".join(f"{name} {t['rows']:,} rows" for name, t in tables.items() if "rows" in t and t["rows"])
        + "".join(f"\n{name}: {t['left_out']}" for name, t in tables.items() if "left_out" in t)
    )
    return 0


def _evaluate(args, warehouse: Warehouse) -> int:
    """``ilp evaluate``: one tasking (its area, offence and start from the app state; the comparison it was
    given before, if any, else one chosen now and recorded in the audit log) or an --area intervention."""
    import contextlib

    from ilp.analytics import evaluation
    from ilp.analytics.threats import parse_harm
    from ilp.state import State

    harm_index, harm_version = parse_harm(args.harm) if args.harm else (None, None)
    windows = {"pre_weeks": args.pre_weeks, "post_weeks": args.post_weeks}
    if args.end is not None and args.post_weeks is not None:
        raise UserError("give the post window either as --end or as --post-weeks, not both")
    with contextlib.closing(warehouse.connect()) as con:
        described = (("--level", args.level), ("--category", args.category), ("--start", args.start))
        if args.tasking is not None:
            given = [flag for flag, value in described if value]
            if given:
                raise UserError(f"{', '.join(given)} describe an --area; tasking {args.tasking} has its own")
            state = State(args.state) if args.state else _app_state(warehouse)
            taskings = state.taskings()
            row = taskings[taskings["id"] == args.tasking]
            if row.empty:
                raise UserError(f"no tasking {args.tasking} in {state.path} (see the Taskings page)")
            recorded = evaluation.recorded_comparisons(state)
            parameters = evaluation.tasking_parameters(
                row.iloc[0],
                taskings,
                recorded=recorded,
                pre_weeks=args.pre_weeks,
                post_weeks=args.post_weeks or evaluation.POST_WEEKS,
                comparison=args.comparison,
                harm_index=harm_index,
                harm_version=harm_version,
            )
            if args.end is not None:
                parameters.update(end=args.end, post_weeks=None)
            result = evaluation.evaluate(con, **parameters)
            evaluation.record_comparisons(state, [result], user=_cli_user(), role=None, recorded=recorded)
        else:
            missing = [flag for flag, value in described if not value]
            if missing:
                raise UserError(f"--area needs {', '.join(missing)} (or evaluate a tasking with --tasking ID)")
            result = evaluation.evaluate(
                con,
                level=args.level,
                area_id=args.area,
                categories=tuple(args.category),
                start=args.start,
                end=args.end,
                comparison=args.comparison,
                harm_index=harm_index,
                harm_version=harm_version,
                **windows,
            )
    _emit(args, result.to_dict(), evaluation.format_text(result))
    return 0


# ------------------------------------------------------------------------------------------ app state
def _cli_user() -> str:
    import getpass

    return f"{getpass.getuser()} (cli)"


def _app_state(warehouse: Warehouse):
    """The state of the warehouse given by --warehouse (``$ILP_STATE`` overrides it). The folder must exist,
    so a mistyped --warehouse never starts an empty state of its own."""
    import os

    from ilp.state import State

    if not os.environ.get("ILP_STATE") and not warehouse.directory.is_dir():
        raise WarehouseError(
            f"No warehouse folder {warehouse.directory}: pass --warehouse DIR (the folder holding CURRENT), or "
            "build one first with `ilp demo` or `ilp ingest`."
        )
    return State.for_warehouse(warehouse.directory)


def _new_password(args) -> str:
    """From one line of standard input (--password-stdin) or asked twice at the terminal; never an argument."""
    import getpass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UserError("--password-stdin read an empty line; give the password on standard input")
        return password
    password = getpass.getpass("New password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise UserError("the two passwords differ; nothing was changed")
    return password


def _users_add(args, warehouse: Warehouse) -> int:
    store = _app_state(warehouse)
    store.add_user(args.username, _new_password(args), args.role, by=_cli_user())
    print(f"Added user {args.username.strip()} ({args.role}) to {store.path}.")
    return 0


def _users_list(args, warehouse: Warehouse) -> int:
    store = _app_state(warehouse)
    users, identities = store.users(), store.identities()
    if args.json:
        payload = {"users": users.to_dict(orient="records"), "sso": identities.to_dict(orient="records")}
        print(json.dumps(payload, indent=2, default=_json_default))
        return 0
    lines = [f"Local accounts in {store.path}:"]
    if users.empty:
        lines.append("  (none; add one with `ilp users add USERNAME --role ROLE`)")
    for user in users.itertuples(index=False):
        status = (
            "disabled" if user.disabled else (f"locked until {user.locked_until}" if user.locked_until else "active")
        )
        lines.append(
            f"  {user.username:<24} {user.role:<12} {status:<30} created {user.created_at}, "
            f"last sign-in {user.last_sign_in or 'never'}, failed attempts {user.failed_attempts}"
        )
    lines.append("Single-sign-on roles:")
    if identities.empty:
        lines.append("  (none; assign one with `ilp users assign-sso EMAIL_OR_SUBJECT --role ROLE`)")
    for identity in identities.itertuples(index=False):
        lines.append(
            f"  {identity.identity:<40} {identity.kind:<8} {identity.role:<12} "
            f"by {identity.assigned_by} at {identity.assigned_at}"
        )
    print("\n".join(lines))
    return 0


def _users_set_role(args, warehouse: Warehouse) -> int:
    _app_state(warehouse).set_role(args.username, args.role, by=_cli_user())
    print(f"User {args.username} has the role {args.role}; an open session gets it on its next page.")
    return 0


def _users_disable(args, warehouse: Warehouse) -> int:
    _app_state(warehouse).disable_user(args.username, by=_cli_user())
    print(f"User {args.username} is disabled: no sign-in, and an open session loses its role on its next page.")
    return 0


def _users_enable(args, warehouse: Warehouse) -> int:
    _app_state(warehouse).enable_user(args.username, by=_cli_user())
    print(f"User {args.username} is enabled.")
    return 0


def _users_reset_password(args, warehouse: Warehouse) -> int:
    store = _app_state(warehouse)
    store.reset_password(args.username, _new_password(args), by=_cli_user())
    print(f"Password of {args.username} reset; any lockout is cleared.")
    return 0


def _users_assign_sso(args, warehouse: Warehouse) -> int:
    _app_state(warehouse).assign_identity_role(args.identity, args.role, by=_cli_user())
    print(f"Single-sign-on identity {args.identity.strip()} has the role {args.role}.")
    return 0


def _users_remove_sso(args, warehouse: Warehouse) -> int:
    _app_state(warehouse).remove_identity_role(args.identity, by=_cli_user())
    print(f"Single-sign-on identity {args.identity.strip()} has no role now.")
    return 0


def _audit_list(args, warehouse: Warehouse) -> int:
    from ilp.state import describe_parameters

    log = _app_state(warehouse).audit_log(
        limit=args.limit or None, action=args.action, since=args.since, until=args.until, user=args.user
    )
    if args.json:
        records = [
            {
                "id": int(row.id),
                "time": f"{row.at}Z",
                "user": row.user,
                "role": row.role,
                "action": row.action,
                "page": row.page,
                "details": json.loads(row.parameters) if row.parameters else {},
                "data_version": row.data_version,
            }
            for row in log.itertuples(index=False)
        ]
        print(json.dumps(records, indent=2, default=_json_default))
        return 0
    for row in log.itertuples(index=False):
        details = describe_parameters(row.parameters)
        print(
            f"{row.id:>7}  {row.at}Z  {row.user} ({row.role or '-'})  {row.action}"
            + (f"  page={row.page}" if row.page else "")
            + (f"  {details}" if details else "")
            + (f"  [snapshot {row.data_version}]" if row.data_version else "")
        )
    if log.empty:
        print("No audit rows match.", file=sys.stderr)
    return 0


def _audit_verify(args, warehouse: Warehouse) -> int:
    check = _app_state(warehouse).verify_audit()
    if check.ok:
        print(f"Audit log intact: {check.reason}")
        if check.last_hash:
            print(
                f"Newest row's hash: {check.last_hash} (keep it off this machine: a later check that no longer "
                "reaches it shows rows removed from the end)"
            )
        return 0
    print(f"Audit log broken at row {check.first_broken_id}: {check.reason}")
    return 1


def _state_migrate(args, warehouse: Warehouse) -> int:
    store = _app_state(warehouse)
    summary = store.migrate_from(args.source, by=_cli_user())
    _emit(
        args,
        summary,
        f"Imported from {summary['from']} into {store.path}: {summary['taskings']} taskings "
        f"({summary['tasking_history']} history rows), {summary['audit_rows']} audit rows (re-chained; "
        f"source chain: {summary['source_chain']}), {summary['users']} users, {summary['identities']} "
        "single-sign-on roles. The old file is unchanged; keep it as a record or delete it.",
    )
    return 0


def _state_backup(args, warehouse: Warehouse) -> int:
    store = _app_state(warehouse)
    out = store.backup(args.out, by=_cli_user())
    print(f"Backed up {store.path} to {out}.")
    return 0


# ------------------------------------------------------------------------------------------ hot-spot forecasts
def _add_forecast_commands(commands) -> None:
    """``ilp backtest hotspots``, ``ilp forecast hotspots`` and ``ilp score`` (ilp.analytics.hotspot_forecast)."""
    from ilp.analytics import hotspot_forecast as hotspots

    def common(parser, measure: str) -> None:
        parser.add_argument("--category", default=None, help="one offence category, e.g. robbery (default: all)")
        parser.add_argument("--district", default=None, help="one district's incidents and cells (default: all)")
        parser.add_argument(
            "--cell-m",
            type=float,
            default=hotspots.DEFAULT_CELL_METRES,
            metavar="M",
            help=f"grid cell size in metres (default {hotspots.DEFAULT_CELL_METRES:g}, chosen by the Chicago backtest "
            "among 100-300 m: benchmarks/hotspots.py)",
        )
        parser.add_argument(
            "--measure",
            choices=hotspots.MEASURES,
            default=measure,
            help=f"rank and score cells by incident count or by harm (default {measure})",
        )
        parser.add_argument(
            "--harm", default=None, metavar="INDEX:VERSION", help="e.g. cchi:2016 (default: the default index)"
        )
        parser.add_argument(
            "--shift-hours",
            default=None,
            metavar="HOURS",
            help="start hours of the shifts, e.g. day=7,evening=15,night=23 (the default)",
        )
        parser.add_argument("--json", action="store_true")

    backtest = commands.add_parser("backtest", help="score forecasting methods on past weeks")
    backtest_commands = backtest.add_subparsers(dest="backtest_command", required=True, metavar="WHAT")
    hot = backtest_commands.add_parser(
        "hotspots",
        help="rolling weekly hot-spot forecasts: hit rate, PAI, PEI* and RRI per method and coverage",
    )
    hot.set_defaults(func=_backtest_hotspots)
    hot.add_argument("--start", type=dt.date.fromisoformat, required=True, help="first week scored, YYYY-MM-DD")
    hot.add_argument("--end", type=dt.date.fromisoformat, required=True, help="last day scored, YYYY-MM-DD")
    hot.add_argument("--coverage", default=None, help="shares of the area flagged, e.g. 0.01,0.05,0.10 (the default)")
    hot.add_argument("--shift", choices=hotspots.SHIFT_SCOPES, default="all")
    hot.add_argument(
        "--selection-weeks",
        type=int,
        default=hotspots.SELECTION_WEEKS,
        help=f"weeks before --start on which methods are fitted and chosen (default {hotspots.SELECTION_WEEKS})",
    )
    common(hot, "count")

    forecast = commands.add_parser("forecast", help="issue and record forecasts")
    forecast_commands = forecast.add_subparsers(dest="forecast_command", required=True, metavar="WHAT")
    issue = forecast_commands.add_parser(
        "hotspots", help="forecast a week's hot spots for every shift and record them for the scoreboard"
    )
    issue.set_defaults(func=_forecast_hotspots)
    issue.add_argument(
        "--week",
        type=dt.date.fromisoformat,
        default=None,
        help="Monday of the week to forecast (default: the week after the last complete week in the data)",
    )
    issue.add_argument(
        "--method", choices=list(hotspots.METHODS), default=None, help="use this method (default: chosen)"
    )
    issue.add_argument("--top", type=int, default=10, help="cells to print per shift (default 10)")
    common(issue, "harm")

    score = commands.add_parser("score", help="score recorded hot-spot forecasts whose week now has data")
    score.set_defaults(func=_score)
    score.add_argument("--json", action="store_true")


def _harm_option(text: str | None) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    name, _, version = text.partition(":")
    if not name or not version:
        raise UserError(f"--harm {text!r}: write it as INDEX:VERSION, e.g. cchi:2016")
    return name, version


def _backtest_hotspots(args, warehouse: Warehouse) -> int:
    from ilp.analytics import hotspot_forecast as hotspots

    harm_index, harm_version = _harm_option(args.harm)
    if args.end < args.start:
        raise UserError(f"--end {args.end} is before --start {args.start}")
    con = warehouse.connect()
    try:
        result = hotspots.backtest(
            con,
            start=args.start,
            end=args.end,
            coverages=hotspots.parse_coverages(args.coverage),
            category=args.category,
            shift=args.shift,
            cell_m=args.cell_m,
            measure=args.measure,
            district=args.district,
            selection_weeks=args.selection_weeks,
            harm_index=harm_index,
            harm_version=harm_version,
            shift_hours=hotspots.ShiftHours.parse(args.shift_hours),
        )
    finally:
        con.close()
    _emit(args, result.as_json(), hotspots.format_backtest(result))
    return 0


def _forecast_hotspots(args, warehouse: Warehouse) -> int:
    from ilp.analytics import hotspot_forecast as hotspots

    harm_index, harm_version = _harm_option(args.harm)
    store = _app_state(warehouse)
    con = warehouse.connect()
    try:
        week = args.week or hotspots.next_week(con)
        if week is None:
            raise UserError("the warehouse holds no incidents: nothing to forecast from")
        issued = hotspots.issue(
            con,
            store,
            week=week,
            by=_cli_user(),
            source="cli",
            category=args.category,
            district=args.district,
            measure=args.measure,
            cell_m=args.cell_m,
            harm_index=harm_index,
            harm_version=harm_version,
            shift_hours=hotspots.ShiftHours.parse(args.shift_hours),
            method=args.method,
        )
    finally:
        con.close()
    payload = {
        "week": str(week),
        "forecasts": [
            {
                "id": forecast_id,
                "shift": f.shift,
                "method": f.method,
                "chosen_by": f.chosen_by,
                "measure": f.measure,
                "cells_recorded": hotspots.flagged_cells(hotspots.MAX_PLAN_COVERAGE, f.area_cells),
                "area_cells": f.area_cells,
                "evaluation_window": [str(d) for d in f.evaluation_window],
                "pai_at_5pct": {"method": f.pai(f.method), "naive_last_year": f.pai("naive_last_year")},
                "top": f.top(args.top)[["cell_x", "cell_y", "expected", "low", "high"]].to_dict(orient="records"),
            }
            for forecast_id, f in issued
        ],
    }
    lines = [f"Hot-spot forecast for the week of {week} ({args.category or 'all offences'}, {args.measure}), recorded:"]
    for forecast_id, f in issued:
        lines.append(
            f"  #{forecast_id} {hotspots.ShiftHours.parse(args.shift_hours).label(f.shift)}: {f.method} "
            f"(PAI at 5% over {f.evaluation_window[0]} to {f.evaluation_window[1]}: {f.pai(f.method):.2f}, "
            f"last year's map {f.pai('naive_last_year'):.2f})"
        )
        grid = hotspots.Grid(f.cell_m, f.lat_ref)
        for rank, row in enumerate(f.top(args.top).itertuples(), start=1):
            lat, lon = grid.centre(row.cell_x, row.cell_y)
            lines.append(
                f"      {rank:>3}. cell centre {float(lat):.4f}, {float(lon):.4f}: expected {row.expected:,.1f} "
                f"({row.low:,.1f}-{row.high:,.1f})"
            )
    lines.append("`ilp score` scores them once their week has data.")
    _emit(args, payload, "\n".join(lines))
    return 0


def _score(args, warehouse: Warehouse) -> int:
    from ilp.analytics import hotspot_forecast as hotspots

    store = _app_state(warehouse)
    con = warehouse.connect()
    try:
        scored = hotspots.score_recorded(con, store, by=_cli_user())
    finally:
        con.close()
    waiting = len(store.forecasts(unscored=True))
    lines = [f"Scored {len(scored)} forecast(s); {waiting} wait for their week's data."]
    for item in scored:
        pai = ", ".join(f"{float(c):.0%}: {v:.2f}" for c, v in item["pai"].items() if v is not None)
        lines.append(f"  #{item['forecast_id']} week of {item['week']} {item['shift']} {item['method']}: PAI {pai}")
    _emit(args, {"scored": scored, "waiting": waiting}, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
