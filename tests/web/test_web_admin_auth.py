"""Who gets into /admin, over real HTTP against the app served by uvicorn: signed-out requests are
redirected (pages) or refused with 401 (JSON); a wrong password or an unknown user gets the same answer
and no session; the session cookie's flags; CSRF on the forms; sign-in rate limits per address and per
user name; a changed password, a removed user, a tampered or an old cookie end the session; the log
names nobody."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from admin_builders import ADMIN, PASSWORD, Live, accounts, csrf_of, serve_live, sign_in

from web.limits import Limits

pytestmark = pytest.mark.postgres

SIGNED_IN_PAGES = (
    "/admin",
    "/admin?lang=en",
    "/admin/journeys/post_purchase",
    "/admin/report?journey=post_purchase",
    "/admin/customers?id=c1",
)


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[Live]:
    with serve_live(db_url, tmp_path, Limits(login_burst=4)) as server:
        accounts(server).add(ADMIN, PASSWORD)
        yield server


def _cookie_header(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def test_signed_out_pages_redirect_and_json_is_401(live: Live) -> None:
    with live.client() as c:
        for path in SIGNED_IN_PAGES:
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/admin/login?next=/admin")
        r = c.get("/admin?lang=en")
        assert r.headers["location"] == "/admin/login?next=/admin%3Flang%3Den"
        for path in ("/admin/api/journeys", "/admin/api/customers?id=c1"):
            assert c.get(path).status_code == 401, path
        r = c.get("/admin/api/journeys")
        assert r.json()["error"] == "not-signed-in"
        assert r.headers["www-authenticate"].startswith("Bearer")
        # the sign-in page itself is open, in Spanish by default and in English on request
        page = c.get("/admin/login")
        assert page.status_code == 200 and "Contraseña" in page.text
        assert "Password" in c.get("/admin/login?lang=en").text


def test_sign_in_sets_a_strict_httponly_cookie_and_lands_on_next(live: Live) -> None:
    with live.client() as c:
        r = sign_in(c, next_url="/admin/api/journeys")
        assert r.status_code == 303 and r.headers["location"] == "/admin/api/journeys"
        cookie = _cookie_header(r, "pv_admin").lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
        assert "secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
        names = [j["journey_id"] for j in c.get("/admin/api/journeys").json()["journeys"]]
        assert "post_purchase" in names
        assert c.get("/admin").status_code == 200
        # signed in, the sign-in page sends you on
        assert c.get("/admin/login").status_code == 303
    with accounts(live).store.read() as tx:
        assert tx.admin_users.get(ADMIN).last_login_at == live.clock.now  # type: ignore[union-attr]


def test_behind_https_the_cookie_is_secure(live: Live) -> None:
    """uvicorn applies X-Forwarded-Proto from a trusted proxy (loopback): the request is https."""
    with live.client(headers={"X-Forwarded-Proto": "https"}) as c:
        page = c.get("/admin/login")
        csrf_cookie = _cookie_header(page, "pv_admin_csrf")
        assert "secure" in csrf_cookie.lower()
        # httpx keeps Secure cookies for https: hand the nonce back as the browser would over https
        c.cookies.set("pv_admin_csrf", csrf_cookie.split(";")[0].split("=", 1)[1], "127.0.0.1", "/admin")
        r = c.post("/admin/login", data={"username": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert "secure" in _cookie_header(r, "pv_admin").lower()


def test_wrong_password_and_unknown_user_get_the_same_answer(live: Live) -> None:
    with live.client() as c:
        wrong = sign_in(c, password="not the password")
        unknown = sign_in(c, username="nobody@example.com")
        for r in (wrong, unknown):
            assert r.status_code == 401
            assert "Usuario o contraseña incorrectos." in r.text
            assert not any(h.startswith("pv_admin=") for h in r.headers.get_list("set-cookie"))
        assert f'value="{ADMIN}"' in wrong.text  # the name typed stays in the form, escaped
        assert c.get("/admin").status_code == 303
        hostile = sign_in(c, username='<script>alert("x")</script>')
        assert "<script>" not in hostile.text and "&lt;script&gt;" in hostile.text


def test_forms_need_their_csrf_token(live: Live) -> None:
    with live.client() as c:
        page = c.get("/admin/login")
        token = csrf_of(page.text)
        # no token, or a token made for another browser's nonce: refused before the password is checked
        for data in ({}, {"csrf": "x" * 43}):
            r = c.post("/admin/login", data={"username": ADMIN, "password": PASSWORD, **data})
            assert r.status_code == 403 and "pv_admin=" not in r.headers.get("set-cookie", "")
        with live.client() as other:
            other.get("/admin/login")
            r = other.post("/admin/login", data={"username": ADMIN, "password": PASSWORD, "csrf": token})
            assert r.status_code == 403
        assert sign_in(c).status_code == 303
        # sign-out without the token changes nothing; with it, the session ends
        r = c.post("/admin/logout", data={"csrf": ""})
        assert r.status_code == 303 and c.get("/admin").status_code == 200
        r = c.post("/admin/logout", data={"csrf": csrf_of(c.get("/admin").text)})
        assert r.headers["location"].startswith("/admin/login?out=1")
        assert c.get("/admin").status_code == 303


def test_sign_in_attempts_are_rate_limited_per_address_and_per_user(live: Live) -> None:
    with live.client() as c:
        for _ in range(4):
            assert sign_in(c, password="guess guess guess").status_code == 401
        limited = sign_in(c)  # even the right password: the bucket is empty
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "Demasiados intentos" in limited.text
    # another address, the same user name: still limited (a guesser cannot rotate addresses)
    with live.client(headers={"X-Forwarded-For": "203.0.113.9"}) as c:
        assert sign_in(c).status_code == 429
    # another address, another user: not limited
    accounts(live).add("luis", "another long password")
    with live.client(headers={"X-Forwarded-For": "203.0.113.10"}) as c:
        assert sign_in(c, "luis", "another long password").status_code == 303


def test_session_ends_with_a_new_password_removal_tampering_or_age(live: Live) -> None:
    with live.client() as c:
        assert sign_in(c).status_code == 303
        cookie = c.cookies["pv_admin"]
        accounts(live).passwd(ADMIN, "a brand new password")
        assert c.get("/admin").status_code == 303  # the old password's session is over
        assert sign_in(c, password="a brand new password").status_code == 303
        good = c.cookies["pv_admin"]
        assert good != cookie
        uid, issued, print_, mac = good.split(".")
        for forged in (f"{int(uid) + 1}.{issued}.{print_}.{mac}", f"{uid}.{int(issued) + 9}.{print_}.{mac}"):
            c.cookies.set("pv_admin", forged, domain="127.0.0.1", path="/admin")
            assert c.get("/admin/api/journeys").status_code == 401
        c.cookies.set("pv_admin", good, domain="127.0.0.1", path="/admin")
        assert c.get("/admin/api/journeys").status_code == 200
        live.clock.set(live.clock.now + timedelta(hours=12, minutes=1))
        assert c.get("/admin/api/journeys").status_code == 401
        live.clock.set(live.clock.now - timedelta(hours=12, minutes=1))
        assert c.get("/admin/api/journeys").status_code == 200
        accounts(live).remove(ADMIN)
        assert c.get("/admin/api/journeys").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/admin/login", "/s/x"])
def test_after_sign_in_no_open_redirect(live: Live, target: str) -> None:
    with live.client() as c:
        r = sign_in(c, next_url=target)
        assert r.status_code == 303 and r.headers["location"] == "/admin"


def test_the_log_names_no_one(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="posventa")
    with live.client() as c:
        sign_in(c, password="not the password")
        sign_in(c)
    text = caplog.text
    assert "sign-in refused" in text and "admin sign-in admin_id=" in text
    for secret in (ADMIN, "ana", PASSWORD, "not the password"):
        assert secret not in text


def test_a_form_that_cannot_be_read_gets_a_page(live: Live) -> None:
    """/admin pages answer refusals with an HTML page; /admin/api answers with JSON."""
    with live.client() as c:
        r = c.post("/admin/login", json={"username": ADMIN, "password": PASSWORD})
        assert r.status_code == 415 and r.headers["content-type"].startswith("text/html")
        assert "No hemos podido leer el formulario" in r.text
        r = c.post(
            "/admin/login",
            content=b"x" * 20_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
        assert c.get("/admin/api/journeys").headers["content-type"] == "application/json"


def test_admin_api_keys_open_the_admin_json_only(live: Live, api_key: str) -> None:
    """``posventa admin-user key``'s keys are Bearer tokens for /admin/api (not for pages, not for /v1);
    a shop's events key opens nothing here; removing the user ends the key."""
    key = accounts(live).create_key(ADMIN)
    with live.client() as c:
        admin = {"Authorization": f"Bearer {key}"}
        r = c.get("/admin/api/journeys", headers=admin)
        assert r.status_code == 200 and any(j["journey_id"] == "post_purchase" for j in r.json()["journeys"])
        assert c.get("/admin", headers=admin).status_code == 303  # pages need a signed-in person
        assert c.post("/v1/events", headers=admin, json={}).status_code == 401
        shop = {"Authorization": f"Bearer {api_key}"}
        r = c.get("/admin/api/journeys", headers=shop)
        assert r.status_code == 401 and r.json()["error"] == "invalid-api-key"
        accounts(live).remove(ADMIN)
        assert c.get("/admin/api/journeys", headers=admin).status_code == 401
