"""Builders shared by the /admin tests: the live server (``web_builders.serve_live``), the admin user, and
signing in through the real form (CSRF token read from the page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from web_builders import Live, ev, promoter_id, serve_live, survey_link, walk_to_survey

from app.admins import AdminAccounts

ADMIN = "ana@example.com"
PASSWORD = "olive tree in spring"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


__all__ = [
    "ADMIN",
    "PASSWORD",
    "Live",
    "World",
    "accounts",
    "admin_world",
    "csrf_of",
    "serve_live",
    "sign_in",
]


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


@dataclass
class World:
    live: Live
    client: httpx.Client
    answered: str  # customer id: answered 9, commented
    complained: str  # customer id: an open complaint ticket


@contextmanager
def admin_world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """The live server with an admin user, signed in (``World.client``), where two customers went through
    ``post_purchase`` up to the NPS survey: one clicked 9 in the survey email and commented (with markup,
    to be escaped), the other has an open complaint ticket."""
    with serve_live(db_url, tmp_path) as live:
        accounts(live).add(ADMIN, PASSWORD)
        first, second = promoter_id("adm-a"), promoter_id("adm-b")
        walk = walk_to_survey(live.svc, first, "o-a")
        walk_to_survey(live.svc, second, "o-b")
        live.clock.set(walk.survey_at + timedelta(hours=1))
        with live.client() as c:
            # the customer clicks 9 in the real survey email, then comments, through the served pages
            nine = survey_link(walk.survey_html.read_text(encoding="utf-8"), 9)
            path = nine.removeprefix(live.base)
            assert c.get(path).status_code == 200
            comment = '<script>alert("x")</script> muy bien'
            assert c.post(path, data={"comment": comment}).status_code == 200
            opened = ev(
                "t-1",
                "ticket.opened",
                second,
                live.clock.now,
                data={"ticket_id": "tk-1", "subject": "Caja rota"},
            )
            applied = live.svc.ingest.apply([opened], "api", live.clock.now)
            assert applied.accepted == 1, applied
            assert sign_in(c).status_code == 303
            yield World(live, c, first, second)
