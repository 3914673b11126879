"""Database adapter: models, sessions, migrations and the store functions the runtime calls."""
