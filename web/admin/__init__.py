"""The /admin area of ``posventa serve``: ``auth`` (sessions, CSRF, sign-in limits), ``pages`` (the
routes), ``data`` (what the pages read), ``render`` and ``texts`` (Spanish and English)."""
