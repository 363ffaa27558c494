"""Schema migrations through Alembic (the only way the schema changes)."""
from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.config import PROJECT_ROOT


def alembic_config(url: str) -> Config:
    """Return an Alembic config for the project's migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at url to the given revision."""
    command.upgrade(alembic_config(url), revision)
