"""``posventa admin-user add|list|remove|passwd|key``: who may sign in to the ``/admin`` area of ``posventa
serve``. Passwords are read from a prompt (twice, hidden) or, when stdin is not a terminal, from its first
line — never from the command line, where ``ps`` and the shell history would show them."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from posventa.errors import PosventaError
from posventa.i18n import Catalogue

ADMIN = Catalogue(
    {
        "help_admin_user": {
            "en": "admin users of the /admin area of posventa serve (add, list, remove, passwd, key)",
            "es": "usuarios del área /admin de posventa serve (add, list, remove, passwd, key)",
        },
        "help_add": {
            "en": "add an admin user (asks for the password)",
            "es": "añade un usuario (pide la contraseña)",
        },
        "help_list": {"en": "list the admin users", "es": "lista los usuarios"},
        "help_remove": {
            "en": "remove an admin user (their sessions end)",
            "es": "elimina un usuario (sus sesiones terminan)",
        },
        "help_passwd": {
            "en": "change an admin user's password (their sessions end)",
            "es": "cambia la contraseña de un usuario (sus sesiones terminan)",
        },
        "help_key": {
            "en": "create an API key for an admin user's scripts (/admin/api, Bearer); shown once",
            "es": "crea una clave de API para los scripts de un usuario (/admin/api, Bearer); "
            "se muestra una vez",
        },
        "key_created": {
            "en": "admin API key for {name} (shown only now; it works while the user exists):",
            "es": "clave de API de {name} (solo se muestra ahora; vale mientras exista el usuario):",
        },
        "help_username": {
            "en": "user name (an email address works)",
            "es": "nombre de usuario (vale un correo)",
        },
        "prompt": {"en": "Password for {name}: ", "es": "Contraseña para {name}: "},
        "prompt_again": {"en": "Repeat the password: ", "es": "Repite la contraseña: "},
        "mismatch": {"en": "the two passwords differ", "es": "las dos contraseñas no coinciden"},
        "no_password": {
            "en": "no password on stdin: type it at the prompt, or pipe it as the first line",
            "es": "no hay contraseña en stdin: escríbela cuando se pida o pásala como primera línea",
        },
        "added": {
            "en": "admin user {name} added: sign in at {url}",
            "es": "usuario {name} añadido: entra en {url}",
        },
        "removed": {"en": "admin user {name} removed", "es": "usuario {name} eliminado"},
        "changed": {
            "en": "password of {name} changed; their other sessions have ended",
            "es": "contraseña de {name} cambiada; sus otras sesiones han terminado",
        },
        "none": {
            "en": "no admin users yet: posventa admin-user add <name>",
            "es": "aún no hay usuarios: posventa admin-user add <nombre>",
        },
        "col_user": {"en": "user", "es": "usuario"},
        "col_created": {"en": "created", "es": "creado"},
        "col_last": {"en": "last sign-in", "es": "último acceso"},
        "never": {"en": "never", "es": "nunca"},
        "bad_name": {
            "en": "a user name is 1 to 64 lower-case letters, digits or . _ @ + - "
            "(starting with a letter or digit)",
            "es": "un nombre de usuario tiene de 1 a 64 minúsculas, dígitos o . _ @ + - "
            "(empieza por letra o dígito)",
        },
        "taken": {"en": "there is already an admin user {name}", "es": "ya existe el usuario {name}"},
        "unknown": {"en": "there is no admin user {name}", "es": "no existe el usuario {name}"},
        "weak_password": {
            "en": "the password must have {min} to {max} characters",
            "es": "la contraseña debe tener de {min} a {max} caracteres",
        },
        "database": {
            "en": "database: {error} (is it migrated? posventa db upgrade)",
            "es": "base de datos: {error} (¿está migrada? posventa db upgrade)",
        },
    }
)
t = ADMIN.t


def read_password(name: str, *, confirm: bool = True) -> str:
    """From a hidden prompt on a terminal (asked twice), else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass(t("prompt", name=name))
        if confirm and getpass.getpass(t("prompt_again")) != first:
            raise PosventaError(t("mismatch"))
        return first
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if not password:
        raise PosventaError(t("no_password"))
    return password.removesuffix("\r")


def _accounts() -> Any:
    from app.admins import AdminAccounts
    from ops.cli import _store

    return AdminAccounts(_store(), lambda: datetime.now(UTC))


def cmd_admin_user(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from app.admins import AdminError, normalise_username
    from app.passwords import MAX_LENGTH, MIN_LENGTH

    accounts = _accounts()
    try:
        if args.action == "list":
            return _list(accounts)
        name = normalise_username(args.username)
        if args.action == "remove":
            print(t("removed", name=accounts.remove(name)))
        elif args.action == "key":
            key = accounts.create_key(name)
            print(t("key_created", name=name))
            print(key)
        elif args.action == "add":
            if any(row.username == name for row in accounts.all()):  # before asking for a password
                raise AdminError("taken", "", name=name)
            from infra.settings import get_settings

            url = get_settings().public_base_url.rstrip("/") + "/admin"
            print(t("added", name=accounts.add(name, read_password(name)), url=url))
        else:
            print(t("changed", name=accounts.passwd(name, read_password(name))))
    except AdminError as exc:
        raise PosventaError(t(exc.code, min=MIN_LENGTH, max=MAX_LENGTH, **exc.values)) from exc
    except SQLAlchemyError as exc:
        raise PosventaError(t("database", error=str(exc).splitlines()[0])) from exc
    return 0


def _list(accounts: Any) -> int:
    rows = accounts.all()
    if not rows:
        print(t("none"))
        return 0
    from posventa.tables import table

    header = (t("col_user"), t("col_created"), t("col_last"))
    cells = [
        (
            row.username,
            row.created_at.strftime("%Y-%m-%d %H:%M"),
            row.last_login_at.strftime("%Y-%m-%d %H:%M") if row.last_login_at else t("never"),
        )
        for row in rows
    ]
    for line in table(header, cells):
        print(line)
    return 0


def register(subparsers: Any) -> None:
    """Add ``posventa admin-user`` (the ``posventa.commands`` entry point)."""
    p = subparsers.add_parser("admin-user", help=t("help_admin_user"), description=t("help_admin_user"))
    actions = p.add_subparsers(dest="action", required=True)
    for action in ("add", "remove", "passwd", "key"):
        sub = actions.add_parser(action, help=t(f"help_{action}"), description=t(f"help_{action}"))
        sub.add_argument("username", help=t("help_username"))
    actions.add_parser("list", help=t("help_list"), description=t("help_list"))
    p.set_defaults(func=cmd_admin_user)
