"""Admin users of the ``/admin`` area: add, list, remove, change a password (``posventa admin-user``),
sign in and recognise a session (the web app). Passwords are hashed by :mod:`app.passwords`; a session
carries the user's id and a fingerprint of the stored hash (:func:`app.passwords.fingerprint`), so a
changed password or a removed user ends it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from app.passwords import (
    PasswordError,
    check_policy,
    fingerprint,
    hash_password,
    needs_rehash,
    verify_password,
)
from app.ports import Store
from app.records import AdminRecord
from posventa.errors import PosventaError

#: Lower-case letters, digits and ``. _ @ + -``: an email address works as a user name.
USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,63}")


class AdminError(PosventaError):
    """A refused admin-user request. ``code``: ``bad_name``, ``taken``, ``unknown``, ``weak_password``;
    ``values`` fill the CLI's translated message."""

    def __init__(self, code: str, message: str, **values: object) -> None:
        self.code, self.values = code, values
        super().__init__(message)


@dataclass(frozen=True)
class Admin:
    """A signed-in admin user: what a session cookie names."""

    id: int
    username: str
    fingerprint: str


def normalise_username(username: str) -> str:
    """The stored form of a user name (trimmed, lower case); AdminError when it is not a valid one."""
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        raise AdminError(
            "bad_name",
            "a user name is 1 to 64 lower-case letters, digits or . _ @ + - "
            "(starting with a letter or digit)",
        )
    return name


def _admin(row: AdminRecord) -> Admin:
    return Admin(row.id, row.username, fingerprint(row.password_hash))


class AdminAccounts:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    @staticmethod
    def _hash(password: str) -> str:
        try:
            check_policy(password)
        except PasswordError as exc:
            raise AdminError("weak_password", str(exc)) from exc
        return hash_password(password)

    def add(self, username: str, password: str) -> str:
        name = normalise_username(username)
        hashed = self._hash(password)
        with self.store.begin() as tx:
            if not tx.admin_users.add(name, hashed, self.clock()):
                raise AdminError("taken", f"there is already an admin user {name!r}", name=name)
        return name

    def all(self) -> list[AdminRecord]:
        with self.store.read() as tx:
            return tx.admin_users.all()

    def remove(self, username: str) -> str:
        name = normalise_username(username)
        with self.store.begin() as tx:
            if not tx.admin_users.remove(name):
                raise AdminError("unknown", f"there is no admin user {name!r}", name=name)
        return name

    def passwd(self, username: str, password: str) -> str:
        name = normalise_username(username)
        hashed = self._hash(password)
        with self.store.begin() as tx:
            if not tx.admin_users.set_password(name, hashed, self.clock()):
                raise AdminError("unknown", f"there is no admin user {name!r}", name=name)
        return name

    def authenticate(self, username: str, password: str) -> Admin | None:
        """The admin user when the password matches, else None (unknown name or wrong password alike,
        and in about the same time). A hash made with older parameters is upgraded on the way."""
        try:
            name = normalise_username(username)
        except AdminError:
            name = ""
        with self.store.read() as tx:
            row = tx.admin_users.get(name) if name else None
        if not verify_password(password, row.password_hash if row else None) or row is None:
            return None
        now = self.clock()
        with self.store.begin() as tx:
            if needs_rehash(row.password_hash):
                # an old password the policy now refuses is kept until `admin-user passwd`
                with suppress(PasswordError):
                    tx.admin_users.set_password(row.username, hash_password(password), now)
            tx.admin_users.signed_in(row.id, now)
            fresh = tx.admin_users.by_id(row.id)
        return _admin(fresh) if fresh else None

    def create_key(self, username: str) -> str:
        """An API key for ``username``'s scripts (``Authorization: Bearer`` on /admin/api): returned once,
        stored hashed, valid while the user exists."""
        name = normalise_username(username)
        with self.store.begin() as tx:
            if tx.admin_users.get(name) is None:
                raise AdminError("unknown", f"there is no admin user {name!r}", name=name)
            return tx.api_keys.create(name, "admin", purpose="admin")

    def key_user(self, key: str) -> Admin | None:
        """The admin user of an admin API key (None: unknown, revoked, a shop's key, or a removed user)."""
        with self.store.read() as tx:
            name = tx.api_keys.check(key, purpose="admin")
            row = tx.admin_users.get(name) if name else None
        return _admin(row) if row else None

    def session_user(self, admin_id: int, print_: str) -> Admin | None:
        """The admin user a session names, if it still exists with the same password."""
        with self.store.read() as tx:
            row = tx.admin_users.by_id(admin_id)
        if row is None:
            return None
        admin = _admin(row)
        return admin if admin.fingerprint == print_ else None
