"""The one Alembic history builds exactly the schema the models describe, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from infra.db import migrate
from infra.db.models import Base
from infra.db.session import make_engine
from infra.db.testing import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (never migrated) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    pg: str = request.getfixturevalue("empty_pg_url")
    return pg


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    with fresh_postgres_database(migrate=False) as url:
        yield url


def test_upgrade_builds_the_models_schema(url: str) -> None:
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []
            inspector = sa.inspect(conn)
            for table in Base.metadata.sorted_tables:
                # Alembic does not compare CHECK constraints or partial-index predicates: do it here.
                model_checks = {
                    c.name for c in table.constraints if isinstance(c, sa.CheckConstraint) and c.name
                }
                db_checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
                assert db_checks == model_checks, table.name
                option = f"{conn.dialect.name}_where"
                model_where = {
                    i.name: _predicate(str(i.dialect_options[conn.dialect.name]["where"]))
                    for i in table.indexes
                    if i.dialect_options[conn.dialect.name]["where"] is not None
                }
                db_where = {
                    i["name"]: _predicate(str(i["dialect_options"][option]))
                    for i in inspector.get_indexes(table.name)
                    if option in i.get("dialect_options", {})
                }
                assert db_where == model_where, table.name
                # … nor INCLUDE columns (PostgreSQL's covering indexes, revision 0010).
                if conn.dialect.name == "postgresql":
                    model_include = {
                        c.name: list(c.dialect_options["postgresql"]["include"] or [])
                        for c in (*table.constraints, *table.indexes)
                        if isinstance(c, sa.UniqueConstraint | sa.Index) and c.name
                    }
                    db_include = {
                        i["name"]: list(i["dialect_options"].get("postgresql_include") or [])
                        for i in inspector.get_indexes(table.name)
                    }
                    assert {k: v for k, v in db_include.items() if k in model_include} == model_include
    finally:
        engine.dispose()


def test_upgrade_is_repeatable_and_downgrade_empties(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)  # already at head: a no-op
    migrate.downgrade(url, "base")
    assert migrate.current(url) is None
    engine = make_engine(url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["alembic_version"]
    engine.dispose()


def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'p.db'}"
    migrate.upgrade(url)
    assert (tmp_path / "nested" / "deeper" / "p.db").exists()


def test_migrations_live_inside_the_package() -> None:
    """Shipped as package data (setuptools finds ``versions`` as a namespace package): no alembic.ini."""
    assert migrate.MIGRATIONS_DIR.parent == Path(migrate.__file__).resolve().parent
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (migrate.MIGRATIONS_DIR / "versions" / "0001_initial_schema.py").is_file()
    assert migrate.head()


def _predicate(sql: str) -> str:
    """PostgreSQL reports ``status = 'x'`` as ``(status)::text = 'x'::text``: compare without casts."""
    import re

    return re.sub(r"::\w+", "", sql).replace("(", "").replace(")", "").strip()


@pytest.mark.postgres
def test_0010_swaps_the_ledger_unique_index_for_a_covering_one_and_back(empty_pg_url: str) -> None:
    """The unique constraint keeps its name and its key, gains INCLUDE (status, created_at, evidence), and
    still refuses a second row for the same (enrollment, step, occurrence); the downgrade restores it."""
    url = empty_pg_url

    def ledger_index() -> dict[str, object]:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                found = {i["name"]: i for i in sa.inspect(conn).get_indexes("ledger")}
        finally:
            engine.dispose()
        index = found["uq_ledger_enrollment_id_step_id_occurrence"]
        return {
            "columns": index["column_names"],
            "include": index["dialect_options"].get("postgresql_include"),
            "unique": index["unique"],
        }

    migrate.upgrade(url, "0009")
    assert ledger_index()["include"] == []
    migrate.upgrade(url)
    assert ledger_index() == {
        "columns": ["enrollment_id", "step_id", "occurrence"],
        "include": ["status", "created_at", "evidence"],
        "unique": True,
    }
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(Base.metadata.tables["customers"]).values(id="c1", email="a@example.com"))
            conn.execute(
                sa.insert(Base.metadata.tables["journey_plans"]).values(journey_id="j", version="v", plan={})
            )
            conn.execute(
                sa.insert(Base.metadata.tables["enrollments"]).values(
                    id=1, journey_id="j", customer_id="c1", entry_key="k", plan_version="v"
                )
            )
        row = {"enrollment_id": 1, "journey_id": "j", "step_id": "a", "occurrence": 0, "kind": "message"}
        row |= {"customer_id": "c1", "status": "pending", "payload": {}}
        ledger = Base.metadata.tables["ledger"]
        with engine.begin() as conn:
            conn.execute(sa.insert(ledger).values(key="1:a:0", **row))
        duplicate = pytest.raises(sa.exc.IntegrityError, match="uq_ledger_enrollment_id_step_id_occurrence")
        with duplicate, engine.begin() as conn:
            conn.execute(sa.insert(ledger).values(key="other", **(row | {"status": "sent"})))
    finally:
        engine.dispose()
    migrate.downgrade(url, "0009")
    assert ledger_index()["include"] == []


def test_0009_folds_the_webhook_events_already_received_into_ledger_evidence(url: str) -> None:
    """A database with messages and their webhook events from before revision 0009: the upgrade sets each
    message's bits (delivered 1, open 8, click 16; unsubscribe and group_unsubscribe share 32) once, and
    a message without events keeps 0."""
    migrate.upgrade(url, "0008")
    engine = make_engine(url)
    try:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        with engine.begin() as conn:  # these tables did not change in 0009: the models' tables
            conn.execute(sa.insert(Base.metadata.tables["customers"]).values(id="c1", email="a@example.com"))
            conn.execute(
                sa.insert(Base.metadata.tables["journey_plans"]).values(journey_id="j", version="v", plan={})
            )
            conn.execute(
                sa.insert(Base.metadata.tables["enrollments"]).values(
                    id=1, journey_id="j", customer_id="c1", entry_key="k", plan_version="v", entered_at=t0
                )
            )
            for key in ("1:a:0", "1:b:0"):
                conn.execute(
                    sa.text(
                        "INSERT INTO ledger (key, enrollment_id, journey_id, step_id, occurrence, kind, "
                        "customer_id, status, attempts, payload, created_at, updated_at) VALUES "
                        "(:k, 1, 'j', :s, 0, 'message', 'c1', 'sent', 1, '{}', :t, :t)"
                    ),
                    {"k": key, "s": key.split(":")[1], "t": t0},
                )
            for i, event in enumerate(
                ("delivered", "open", "open", "click", "group_unsubscribe", "processed")
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO webhook_events (sg_event_id, event, ledger_key, occurred_at, "
                        "received_at, data) VALUES (:id, :e, '1:a:0', :t, :t, '{}')"
                    ),
                    {"id": f"sg-{i}", "e": event, "t": t0},
                )
        migrate.upgrade(url)
        with engine.connect() as conn:
            found = dict(conn.execute(sa.text("SELECT key, evidence FROM ledger")).all())
        assert found == {"1:a:0": 1 | 8 | 16 | 32, "1:b:0": 0}
    finally:
        engine.dispose()
