"""Facts about the database itself (the ``installation`` table): the production mark, the virtual clock
of a customer walked through time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from infra.db.models import InstallationFlag
from infra.db.store._base import Repo, aware


class Installation(Repo):
    def get(self, name: str) -> str | None:
        return self.s.scalar(select(InstallationFlag.value).where(InstallationFlag.name == name))

    def set(self, name: str, value: str, now: datetime) -> None:
        values = {"value": value, "set_at": aware(now, "now")}
        stmt = self.insert_into(InstallationFlag).values(name=name, **values)
        self.s.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))

    def unset(self, name: str) -> None:
        self.s.execute(delete(InstallationFlag).where(InstallationFlag.name == name))
