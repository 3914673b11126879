"""Builders shared by the /admin tests: the live server (``web_builders.serve_live``), the admin user, and
signing in through the real form (CSRF token read from the page)."""

from __future__ import annotations

import re

import httpx
from web_builders import Live, serve_live

from app.admins import AdminAccounts

ADMIN = "ana@example.com"
PASSWORD = "olive tree in spring"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


__all__ = ["ADMIN", "PASSWORD", "Live", "accounts", "csrf_of", "serve_live", "sign_in"]


def accounts(live: Live) -> AdminAccounts:
    return AdminAccounts(live.svc.store, live.clock)


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(
    client: httpx.Client, username: str = ADMIN, password: str = PASSWORD, next_url: str = "/admin"
) -> httpx.Response:
    """Open the sign-in page, post the form with its CSRF token; the response (not followed)."""
    page = client.get("/admin/login", params={"next": next_url})
    assert page.status_code == 200, page.text
    return client.post(
        "/admin/login",
        params={"next": next_url},
        data={"username": username, "password": password, "csrf": csrf_of(page.text)},
    )
