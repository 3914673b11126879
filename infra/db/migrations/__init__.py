"""Alembic environment of the Posventa database (run through ``infra.db.migrate``)."""
