"""The ``tsunagari`` command line: serve, tokens, demo data, projections."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
import uvicorn

from application.audit import DEFAULT_LIMIT, MAX_LIMIT, AuditEntry, LogQuery
from domain.errors import DomainError
from domain.events import JST
from domain.programs import Policy
from domain.provenance import Role
from infrastructure.archive import ExportRefused, ImportRefused
from infrastructure.logging import configure_logging
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services
from interfaces.check_in_writer import run_writer
from interfaces.demo import DemoPlan, load_demo, plan_size
from interfaces.http.app import create_app
from interfaces.projection_worker import NICENESS, WORKER_OF
from projections.indicators.export import indicators_csv
from projections.indicators.model import Scope
from projections.indicators.parameters import DEFAULT_PARAMETERS, load_parameters
from projections.indicators.report import DistrictAnswer, ReportData, render_report
from projections.replay import replay as run_replay
from projections.whatif import what_if

cli = typer.Typer(
    help="Tsunagari つながり: participation records for Tama Ward's Basic Goal 2.",
    no_args_is_help=True,
    add_completion=False,
)
token_cli = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
demo_cli = typer.Typer(
    help="Demo data built from the plan's real programmes.", no_args_is_help=True
)
projections_cli = typer.Typer(help="The indicator projections.", no_args_is_help=True)
audit_cli = typer.Typer(
    help="Auditors' tools: read, seal, verify, export and import the log.", no_args_is_help=True
)
cli.add_typer(audit_cli, name="audit")
cli.add_typer(token_cli, name="token")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(projections_cli, name="projections")


def _services() -> Services:
    settings = Settings()
    configure_logging(settings)
    return build_services(settings)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Serve the HTTP API (docs at /docs)."""
    settings = Settings()
    configure_logging(settings)
    typer.echo(f"Tsunagari API on http://{host}:{port} — docs: http://{host}:{port}/docs")
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


@cli.command(hidden=True)
def writer(
    fd: Annotated[int, typer.Option(help="The socket to the server, inherited from it")],
) -> None:
    """The check-in writer process that `serve` starts (interfaces.check_in_writer)."""
    settings = Settings()
    configure_logging(settings)
    run_writer(settings, fd)


@token_cli.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="desk, coordinator, evaluator, auditor or admin")],
    name: Annotated[str, typer.Option(help="Who or what holds the token")],
) -> None:
    """Create a token and print it once; only its hash is kept."""
    services = _services()
    try:
        record, secret = services.tokens.create(name=name, role=role)
    finally:
        services.close()
    typer.echo(
        f"Created {role.value} token {record.id} for {record.name!r}. "
        "Keep it now; it is not shown again:"
    )
    typer.echo(secret)


@token_cli.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    services = _services()
    try:
        records = services.tokens.list()
    finally:
        services.close()
    for record in records:
        state = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
        typer.echo(f"{record.id}  {record.role.value:<11}  {state:<24}  {record.name}")


@token_cli.command("revoke")
def token_revoke(token_id: Annotated[UUID, typer.Argument(help="The token's id")]) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    services = _services()
    try:
        revoked = services.tokens.revoke(token_id)
    finally:
        services.close()
    if not revoked:
        typer.echo(f"No active token with id {token_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked token {token_id}.")


@demo_cli.command("load")
def demo_load(
    residents: Annotated[int, typer.Option(min=10, max=1_000_000)] = DemoPlan.residents,
    fiscal_years: Annotated[int, typer.Option(min=1, max=20)] = DemoPlan.fiscal_years,
    seed: Annotated[int, typer.Option()] = DemoPlan.seed,
    if_empty: Annotated[bool, typer.Option(help="Do nothing when the store has events")] = False,
) -> None:
    """Load deterministic demo data through the application."""
    services = _services()
    try:
        if if_empty and services.app.recorder.max_notification_id() is not None:
            typer.echo("The store already holds events: no demo data loaded.")
            return
        plan = DemoPlan(residents=residents, fiscal_years=fiscal_years, seed=seed)
        with typer.progressbar(length=plan_size(plan), label="Loading demo data") as bar:
            summary = load_demo(services.app, plan, today=services.app.today(), progress=bar.update)
    finally:
        services.close()
    typer.echo(
        f"Loaded {summary.participants} participants, {summary.events} events "
        f"({summary.cancelled_events} cancelled), {summary.check_ins} check-ins, "
        f"{summary.walk_in_tallies} walk-in tallies: {summary.stored_events} stored events."
    )


@projections_cli.command("run")
def projections_run() -> None:
    """Follow the log with the indicator projections until interrupted (Ctrl-C or SIGTERM).

    `serve` starts one of these itself by default. For deployments with several API
    processes: run this once, and serve with TSUNAGARI_RUN_PROJECTIONS=off. Only one runner
    works at a time; others stand by.
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.environ.get(WORKER_OF)
    if parent is not None:
        # A worker of `serve`: the server alone stops it (a Ctrl-C reaches the server, which
        # then stops its worker), and it ends with the server even if the server was killed.
        # It gives way to the server's processes when they want the cores (NICENESS).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.nice(NICENESS)
    services = _services()
    follower = services.follower()
    follower.start()
    typer.echo("Following the log; Ctrl-C to stop.")
    try:
        while not stop.wait(1):
            if parent is not None and os.getppid() != int(parent):
                typer.echo("The server that started this worker is gone.")
                break
    except KeyboardInterrupt:
        pass
    finally:
        follower.stop()
        services.close()
        with suppress(OSError):  # a worker's server, and so its output, may be gone
            typer.echo("Stopped.")


@cli.command()
def replay(
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Forked processes that decode the log and compute the fiscal years "
            "(default: one per core, at most 4; 1: everything in this process)",
        ),
    ] = None,
) -> None:
    """Rebuild every indicator read model from the whole log, then switch over.

    Queries keep answering from the current read models until the rebuild is complete.
    A killed replay resumes where it stopped when run again.
    """
    services = _services()
    try:
        with typer.progressbar(length=1, label="Replaying the log") as bar:

            def set_total(length: int) -> None:
                bar.length = max(length, 1)

            result = run_replay(
                services.app,
                services.indicators,
                progress=bar.update,
                total=set_total,
                workers=workers,
            )
    finally:
        services.close()
    assert result is not None  # noqa: S101 - only tests stop a replay early
    resumed = f" (resumed from position {result.resumed_from})" if result.resumed_from else ""
    typer.echo(
        f"Rebuilt generation {result.generation} from {result.events} events{resumed}; "
        f"now at log position {result.position}."
    )


FiscalYearOption = Annotated[int, typer.Option(min=1990, max=2100, help="2026 = 2026(令和8)年度")]
AsOfOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="As if the log ended that day")
]
DistrictOption = Annotated[str | None, typer.Option()]
ProgramOption = Annotated[UUID | None, typer.Option()]
PolicyOption = Annotated[str | None, typer.Option(help="2-1 or 2-2")]


def _read_scope(
    services: Services, district: str | None, program: UUID | None, policy: str | None
) -> Scope:
    if district is not None:
        services.app.districts.get(district)
    if policy is not None and policy not in {p.value for p in Policy}:
        raise typer.BadParameter(f"policy must be 2-1 or 2-2, not {policy!r}")
    return Scope(district, program, policy)


@cli.command()
def indicators(
    fiscal_year: FiscalYearOption,
    as_of: AsOfOption = None,
    definitions: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="JSON definition parameters")
    ] = None,
    district: DistrictOption = None,
    program: ProgramOption = None,
    policy: PolicyOption = None,
) -> None:
    """Compute the indicators straight from the log, optionally under other definitions.

    The evaluators' what-if: the live read models are not touched.
    """
    services = _services()
    try:
        parameters = load_parameters(definitions) if definitions else DEFAULT_PARAMETERS
        result = what_if(
            services.app,
            fiscal_year,
            parameters,
            as_of=as_of.date() if as_of else None,
            scope=_read_scope(services, district, program, policy),
        )
    except DomainError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from error
    finally:
        services.close()
    answer = result.as_dict()
    typer.echo(f"{answer['label']}  {result.scope.key}  as of {as_of.date() if as_of else 'now'}")
    typer.echo(f"definitions: {answer['definitions']}")
    for key, value in answer["indicators"].items():
        details = {k: v for k, v in value.items() if k not in {"value", "name_ja", "name_en"}}
        typer.echo(
            f"  {key:<28} {value['name_ja']:<12} {value['value']!s:>10}"
            + (f"  {json.dumps(details, ensure_ascii=False)}" if details else "")
        )


# Exports and the report ------------------------------------------------------------------

export_cli = typer.Typer(help="Indicators as files for spreadsheets.", no_args_is_help=True)
cli.add_typer(export_cli, name="export")

CatchUpWait = Annotated[
    float,
    typer.Option(min=0, help="Seconds to wait for the indicator projections to reach the log"),
]


def _catch_up(services: Services, wait: float) -> None:
    """Bring the indicator read model up to the head of the log, or warn how far behind it is.

    A runner elsewhere (``serve``, ``projections run``) keeps the lock: then this waits for it.
    """
    head = services.app.recorder.max_notification_id() or 0
    if (services.indicators.position() or 0) >= head:
        return
    follower = services.follower()
    follower.start()
    deadline = time.monotonic() + wait
    try:
        while (services.indicators.position() or 0) < head and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        follower.stop()
    position = services.indicators.position() or 0
    if position < head:
        typer.echo(
            f"Warning: the indicators stand at log position {position} of {head}; "
            "run `tsunagari projections run` (or serve) to catch up.",
            err=True,
        )


@export_cli.command("csv")
def export_csv(
    fiscal_year: FiscalYearOption,
    district: DistrictOption = None,
    program: ProgramOption = None,
    policy: PolicyOption = None,
    as_of: AsOfOption = None,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="File to write; default: standard output")
    ] = None,
    wait: CatchUpWait = 300.0,
) -> None:
    """Export the indicators as CSV for Excel: UTF-8 with BOM, one value per row.

    The same numbers as GET /indicators.csv, from the indicator read model.
    """
    services = _services()
    try:
        scope = _read_scope(services, district, program, policy)
        _catch_up(services, wait)
        answer = services.indicators.indicators(fiscal_year, scope, as_of.date() if as_of else None)
    except DomainError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from error
    finally:
        services.close()
    data = indicators_csv(answer)
    if out is None:
        typer.echo(data, nl=False)
        return
    out.write_bytes(data)
    typer.echo(f"Wrote {answer['label']} ({scope.key}) to {out}.", err=True)


@cli.command()
def report(
    fiscal_year: FiscalYearOption,
    out: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="HTML file; default: tsunagari-report-<year>.html"),
    ] = None,
    wait: CatchUpWait = 300.0,
) -> None:
    """Write the indicators report: one self-contained HTML file (A4-printable, offline)."""
    services = _services()
    try:
        _catch_up(services, wait)
        read_model = services.indicators
        answer = read_model.indicators(fiscal_year, Scope())
        progress = read_model.progress(services.targets)
        districts = [
            DistrictAnswer(
                d.id, d.name_ja, d.name_en, read_model.indicators(fiscal_year, Scope(d.id))
            )
            for d in services.app.districts.districts
        ]
        generated_at = services.app.clock()
    finally:
        services.close()
    html = render_report(ReportData(answer, progress, districts, generated_at=generated_at))
    target = out or Path(f"tsunagari-report-{fiscal_year}.html")
    target.write_text(html, encoding="utf-8")
    typer.echo(f"Wrote the {answer['label']} report to {target}.")


@audit_cli.command("seal")
def audit_seal() -> None:
    """Chain every record appended since the last seal; print the seal to keep elsewhere."""
    services = _services()
    try:
        seal = services.seal.seal()
    finally:
        services.close()
    rate = seal.records / seal.seconds if seal.seconds else 0.0
    typer.echo(
        f"Sealed {seal.records} new records in {seal.seconds:.2f} s ({rate:,.0f} records/s)."
    )
    typer.echo(f"position  {seal.position}")
    typer.echo(f"sealed at {seal.sealed_at.isoformat()}")
    typer.echo(f"head      {seal.head}")
    typer.echo("Keep the head outside this system; check with: tsunagari audit verify --seal HEAD")


@audit_cli.command("verify")
def audit_verify(
    seal: Annotated[
        str | None, typer.Option("--seal", help="A seal's head kept outside the system")
    ] = None,
) -> None:
    """Recompute the chain; exit 1 naming the first bad record when the log was tampered with."""
    services = _services()
    try:
        result = services.seal.verify(seal)
    finally:
        services.close()
    rate = result.records / result.seconds if result.seconds else 0.0
    typer.echo(
        f"Checked {result.records} records in {result.seconds:.2f} s ({rate:,.0f} records/s)."
    )
    if not result.ok:
        where = f" at position {result.first_bad_position}" if result.first_bad_position else ""
        typer.echo(f"FAILED{where}: {result.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"OK: the sealed log is intact ({result.unsealed} records appended since the last seal)."
    )
    if result.confirmed_at is not None:
        typer.echo(f"The head you kept matches the log at position {result.confirmed_at}.")


def _entry_line(entry: AuditEntry) -> str:
    when = f"{entry.recorded_at.astimezone(JST):%Y-%m-%d %H:%M:%S}" if entry.recorded_at else "-"
    who = f"{entry.actor_role or '-'}:{entry.actor_id or '-'}"
    payload = json.dumps(entry.as_json()["payload"], ensure_ascii=False, separators=(",", ":"))
    return (
        f"{entry.position:>9}  {when}  {entry.type:<26}  {entry.stream_id} v{entry.version:<3}  "
        f"{who}  desk={entry.desk_id or '-'}  req={entry.request_id or '-'}  {payload}"
    )


@audit_cli.command("log")
def audit_log(
    after: Annotated[int, typer.Option(help="Entries after this position")] = 0,
    limit: Annotated[int, typer.Option(help=f"At most this many (1–{MAX_LIMIT})")] = DEFAULT_LIMIT,
    type_: Annotated[
        str | None, typer.Option("--type", help="Event type, e.g. Attendance.CheckedIn")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Actor (token) id")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Recorded at or after (ISO 8601; dates in JST)")
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="Recorded at or before (a date: to its end)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one entry a line")] = False,
) -> None:
    """Print a page of the log, as GET /audit/log answers it; personal fields masked."""
    services = _services()
    try:
        query = LogQuery.parse(
            after=after, limit=limit, type=type_, actor=actor, recorded_from=from_, recorded_to=to
        )
        page = services.audit.log(query)
    except DomainError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from error
    finally:
        services.close()
    if not as_json:
        typer.echo(
            f"{'position':>9}  {'recorded at (JST)':<19}  {'type':<26}  {'stream':<36} version  "
            "role:actor  desk  request  payload"
        )
    for entry in page.entries:
        typer.echo(
            json.dumps(entry.as_json(), ensure_ascii=False) if as_json else _entry_line(entry)
        )
    # The cursor goes to stderr, so that --json output stays one entry a line.
    if page.next_after is None:
        typer.echo(f"End of the log (head {page.head}).", err=True)
    else:
        typer.echo(f"Next page: --after {page.next_after} (head {page.head}).", err=True)


@audit_cli.command("export")
def audit_export(
    fiscal_year: FiscalYearOption,
    out: Annotated[Path, typer.Option(file_okay=False, help="A new or empty folder")],
) -> None:
    """Export the log as it stood at the end of a fiscal year: JSON Lines and a manifest.

    Every record up to the first one recorded after 31 March of the next year (JST), or the
    whole log so far when the year is not over; with SHA-256 of each file and the chain's seal.
    """
    services = _services()
    try:
        result = services.archive.export(fiscal_year, out)
    except ExportRefused as error:
        typer.echo(f"Refused: {error}", err=True)
        raise typer.Exit(1) from error
    finally:
        services.close()
    rate = result.records / result.seconds if result.seconds else 0.0
    span = f" (positions {result.first_position}–{result.last_position})" if result.records else ""
    typer.echo(
        f"Exported {result.records} records{span} in {result.files} files to {out} "
        f"in {result.seconds:.2f} s ({rate:,.0f} records/s)."
    )
    typer.echo(f"cutoff    {result.cutoff.isoformat()}")
    typer.echo(f"head      {result.head}")


@audit_cli.command("import")
def audit_import(
    directory: Annotated[Path, typer.Argument(file_okay=False, help="An export's folder")],
    seal: Annotated[
        str | None, typer.Option("--seal", help="The export's head as kept outside the system")
    ] = None,
) -> None:
    """Import an export into an EMPTY store, after checking every hash and the chain head."""
    services = _services()
    try:
        result = services.archive.import_export(directory, seal)
    except ImportRefused as error:
        typer.echo(f"Refused: {error}. Nothing was imported.", err=True)
        raise typer.Exit(1) from error
    finally:
        services.close()
    rate = result.records / result.seconds if result.seconds else 0.0
    typer.echo(
        f"Imported {result.records} records up to position {result.last_position} in "
        f"{result.seconds:.2f} s ({rate:,.0f} records/s); sealed with head {result.head}."
    )
    if result.confirmed_at is not None:
        after = result.last_position or 0
        beyond = (
            f"; records after it (to position {after}) are covered only by the export's manifest"
            if after > result.confirmed_at
            else ""
        )
        typer.echo(f"The head you kept was confirmed at position {result.confirmed_at}{beyond}.")
    typer.echo(
        "Next: tsunagari audit verify --seal HEAD, then tsunagari replay for the indicators."
    )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
