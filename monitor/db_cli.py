"""`mentionwatch db current|upgrade|history`: Alembic's commands on the configured database.

Every start upgrades on its own (under a lock); these are for operators who want to look first, or to
upgrade before rolling new nodes out."""

from __future__ import annotations

import typer

from monitor.cli_config import DEFAULT_CONFIG, load_or_exit

db_app = typer.Typer(help="The database schema (Alembic revisions): current, upgrade, history.", no_args_is_help=True)
ConfigOption = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="Config file")


def _engine(config: str):
    from monitor.store.base import make_engine

    return make_engine(load_or_exit(config).storage.url)


@db_app.command("current")
def current(config: str = ConfigOption) -> None:
    """The database's revision and the newest this mentionwatch knows; exit 1 when it needs an upgrade."""
    from monitor.store.migrate import current_revision, head

    engine = _engine(config)
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
    finally:
        engine.dispose()
    typer.echo(f"database: {revision or 'empty'}, newest: {head()}")
    raise typer.Exit(0 if revision == head() else 1)


@db_app.command("upgrade")
def upgrade(config: str = ConfigOption) -> None:
    """Create or upgrade the schema now (what every start does)."""
    from monitor.store.migrate import migrate

    engine = _engine(config)
    try:
        typer.echo(f"database at revision {migrate(engine)}")
    finally:
        engine.dispose()


@db_app.command("history")
def history() -> None:
    """Every revision, oldest first."""
    from monitor.store.migrate import revisions

    for revision, summary in revisions():
        typer.echo(f"{revision}: {summary}")
