"""The use cases on their real adapters, fast: a migrated SQLite file (the embedded default), the file outbox
(the default sender), the httpx client against a loopback endpoint for journey webhooks. PostgreSQL-only
behaviour is tested with the ``pg_*`` fixtures (marked ``postgres``).

No ``__init__.py`` (like ``tests/email``): helpers live in ``uc_builders.py``, a unique module name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uc_builders import ROOT, Endpoint, make_services

from app.services import Services
from infra.db.testing import fresh_postgres_database, migrated_sqlite_url
from posventa.compile import compile_file


@pytest.fixture(scope="session")
def shipped() -> dict[str, Any]:
    """The shipped journeys, compiled once."""
    return {p.stem: compile_file(p) for p in sorted((ROOT / "journeys").glob("*.yaml"))}


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as e:
        yield e


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return migrated_sqlite_url(tmp_path)


@pytest.fixture
def svc(sqlite_url: str, tmp_path: Path, shipped: dict[str, Any]) -> Iterator[Services]:
    """The services on SQLite with the post-purchase journey."""
    services = make_services(sqlite_url, tmp_path, {"post_purchase": shipped["post_purchase"]})
    yield services
    services.store.dispose()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url
