"""The ``tsunagari`` command line: serve, tokens, demo data, projections."""

from __future__ import annotations

import time
from typing import Annotated
from uuid import UUID

import typer
import uvicorn

from domain.provenance import Role
from infrastructure.logging import configure_logging
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services
from interfaces.demo import DemoPlan, load_demo, plan_size
from interfaces.http.app import create_app

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
    """Follow the log with the indicator projections until interrupted.

    For deployments with several API processes: run this once, and serve with
    TSUNAGARI_RUN_PROJECTIONS=false. Only one runner works at a time; others stand by.
    """
    services = _services()
    follower = services.follower()
    follower.start()
    typer.echo("Following the log; Ctrl-C to stop.")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("Stopping.")
    finally:
        follower.stop()
        services.close()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
