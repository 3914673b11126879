"""Run the Alembic migrations from code: ``posventa`` ships its migrations as package data, so no
``alembic.ini`` is needed where the product is installed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool

from infra.db.session import make_engine
from posventa.errors import PosventaError
from posventa.i18n import Catalogue

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations. The URL travels in ``attributes`` rather
    than the ini options so that ``%`` in a password is not read as interpolation."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _resolve(url: str | None) -> str:
    if url is not None:
        return url
    from infra.settings import get_settings

    return get_settings().database_url


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: the settings' database) up to ``revision``."""
    command.upgrade(alembic_config(_resolve(url)), revision)


def downgrade(url: str | None, revision: str) -> None:
    command.downgrade(alembic_config(_resolve(url)), revision)


def current(url: str | None = None) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    engine = make_engine(_resolve(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision shipped with this code (``current(url) != head()``: the database is behind)."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None, "no migrations shipped"
    return rev


TEXT = Catalogue(
    {
        "behind": {
            "en": "the database is at revision {rev}, this Posventa needs {head}: run posventa db upgrade",
            "es": "la base de datos está en la revisión {rev} y esta versión necesita {head}: ejecuta "
            "posventa db upgrade",
        },
    }
)


def require_head(url: str) -> str | None:
    """The revision of the database at ``url`` (None: never migrated); PosventaError when it was migrated
    to another revision than this code's. The runtime (``infra.wiring.build_services``: the CLI, the API,
    the flows) and the marketer's commands refuse such a database instead of running on a schema they were
    not written for; a database never migrated is left to the caller."""
    rev, newest = current(url), head()
    if rev is not None and rev != newest:
        raise PosventaError(TEXT.t("behind", rev=rev, head=newest))
    return rev
