"""Admin users of the ``/admin`` area: user name and scrypt password hash (hashing is ``app.passwords``'s)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from app.records import AdminRecord
from infra.db.models import AdminUser
from infra.db.store._base import Repo, aware, rowcount


def _record(row: AdminUser) -> AdminRecord:
    return AdminRecord(
        row.id, row.username, row.password_hash, row.created_at, row.password_changed_at, row.last_login_at
    )


class AdminUsers(Repo):
    def add(self, username: str, password_hash: str, now: datetime) -> bool:
        """False when the name is taken (nothing changes)."""
        at = aware(now, "now")
        stmt = self.insert_into(AdminUser).values(
            username=username, password_hash=password_hash, created_at=at, password_changed_at=at
        )
        return rowcount(self.s.execute(stmt.on_conflict_do_nothing(index_elements=["username"]))) == 1

    def get(self, username: str) -> AdminRecord | None:
        row = self.s.scalars(select(AdminUser).where(AdminUser.username == username)).one_or_none()
        return None if row is None else _record(row)

    def by_id(self, admin_id: int) -> AdminRecord | None:
        row = self.s.get(AdminUser, admin_id, populate_existing=True)
        return None if row is None else _record(row)

    def all(self) -> list[AdminRecord]:
        return [_record(r) for r in self.s.scalars(select(AdminUser).order_by(AdminUser.username))]

    def set_password(self, username: str, password_hash: str, now: datetime) -> bool:
        stmt = (
            update(AdminUser)
            .where(AdminUser.username == username)
            .values(password_hash=password_hash, password_changed_at=aware(now, "now"))
        )
        return rowcount(self.s.execute(stmt)) == 1

    def signed_in(self, admin_id: int, now: datetime) -> None:
        self.s.execute(
            update(AdminUser).where(AdminUser.id == admin_id).values(last_login_at=aware(now, "now"))
        )

    def remove(self, username: str) -> bool:
        return rowcount(self.s.execute(delete(AdminUser).where(AdminUser.username == username))) == 1
