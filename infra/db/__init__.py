"""Database adapter: models, sessions, migrations and the store (every SQL statement; ``app.ports.Store``)."""
