"""The use cases: what Posventa does, one module per use case, between the pure core (``posventa``) and
the adapters (``infra``). A use case depends on the core and on the ports in :mod:`app.ports` (store,
sender, HTTP client, clock) — never on SQLAlchemy, Prefect or FastAPI. ``docs/architecture.md`` maps
every concern to its module."""
