"""The /admin pages over real HTTP, signed in, on a database where two customers went through
``post_purchase`` up to the NPS survey (one answered 9 with a comment, one has an open complaint):
the journeys' live counts, a journey's diagram with the counts on each step, the report with its
filters, a customer's timeline; Spanish and English; hostile text escaped; bad filters are answers."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from admin_builders import World, admin_world
from sqlalchemy import select
from web_builders import order_placed

from infra.db import models as m

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    with admin_world(db_url, tmp_path) as built:
        yield built


def _cell(page: str, row_attr: str, css_class: str) -> str:
    row = re.search(rf"<tr {row_attr}>(.*?)</tr>", page, re.S)
    assert row, row_attr
    found = re.search(rf'<td class="{css_class}">([^<]*)</td>', row.group(1))
    assert found, (row_attr, css_class)
    return found.group(1)


def test_journeys_page_shows_live_counts(world: World) -> None:
    page = world.client.get("/admin").text
    assert "Recorridos" in page and "Sesión de ana@example.com" in page
    assert _cell(page, 'data-journey="post_purchase"', "entered") == "2"
    assert _cell(page, 'data-journey="post_purchase"', "live") == "2"  # both still waiting in the journey
    # live: a new order enrolls a third customer, and the next page load counts them
    now = world.live.clock.now
    assert world.live.svc.ingest.apply([order_placed("adm-c", "o-c", now)], "api", now).accepted == 1
    page = world.client.get("/admin").text
    assert _cell(page, 'data-journey="post_purchase"', "entered") == "3"
    data = world.client.get("/admin/api/journeys").json()["journeys"]
    pp = next(j for j in data if j["journey_id"] == "post_purchase")
    assert (pp["entered"], pp["live"], pp["state"]) == (3, 3, "running")
    assert sum(pp["statuses"].values()) == 3
    english = world.client.get("/admin?lang=en").text
    assert "Journeys" in english and 'href="/admin/journeys/post_purchase?lang=en"' in english


def test_journey_page_draws_the_diagram_with_counts(world: World) -> None:
    r = world.client.get("/admin/journeys/post_purchase")
    assert r.status_code == 200
    page = r.text
    assert "<svg" in page.split('id="diagram"', 1)[1][:200]  # Graphviz drew it (make browser-deps)
    # both customers reached the thank-you and the survey; the diagram says so too
    assert _cell(page, 'data-step="thank_you"', "reached") == "2"
    assert _cell(page, 'data-step="nps_survey"', "reached") == "2"
    diagram = page.split('id="diagram"', 1)[1].split("</div>", 1)[0]
    assert diagram.count(">llegaron 2</text>") >= 2  # each node's own label, drawn by Graphviz
    assert 'id="funnel"' in page and "<svg" in page.split('id="funnel"', 1)[1][:200]
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["cache-control"] == "no-store"
    # a period after everything: an empty cohort, nothing reached
    later = world.client.get("/admin/journeys/post_purchase", params={"since": "2030-01-01"}).text
    assert _cell(later, 'data-step="thank_you"', "reached") == "0"


def test_journey_page_answers_bad_input(world: World) -> None:
    r = world.client.get("/admin/journeys/no_such_journey")
    assert r.status_code == 404 and "No hay ningún recorrido «no_such_journey»" in r.text
    r = world.client.get("/admin/journeys/post_purchase", params={"since": "yesterday"})
    assert r.status_code == 400 and "Filtro no válido" in r.text
    r = world.client.get(
        "/admin/journeys/post_purchase", params={"since": "2026-03-10", "until": "2026-03-01"}
    )
    assert r.status_code == 400
    r = world.client.get("/admin/journeys/<i>x")
    assert r.status_code == 404 and "<i>x" not in r.text and "&lt;i&gt;x" in r.text


def test_an_unknown_page_is_a_page_and_an_unknown_api_path_is_json(world: World) -> None:
    """A mistyped admin address or link gets a page in the visitor's language; the APIs keep JSON."""
    r = world.client.get("/admin/jurneys")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Esta página no existe" in r.text
    english = world.client.get("/admin/nope", headers={"Accept-Language": "en"})
    assert english.status_code == 404 and "This page doesn't exist" in html.unescape(english.text)
    api = world.client.get("/admin/api/nope")
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"
    assert world.client.get("/v1/nope").json() == {"detail": "Not Found"}


def test_report_page_is_the_report_with_the_admin_bar(world: World) -> None:
    r = world.client.get("/admin/report")
    assert r.status_code == 200
    page = r.text
    assert "Posventa — informe de resultados" in page
    assert page.index('<nav class="admin"') < page.index("<h1>")  # the bar sits on top of the report
    assert page.count("<svg") >= 3  # funnel, NPS over time, diagram
    assert 'id="kpi-nps"' in page
    nps = re.search(r'id="kpi-nps">[^<]*<b>([^<]*)</b>', page)
    assert nps and nps.group(1) == "100,0"  # one answer, a 9: a promoter
    english = world.client.get("/admin/report", params={"lang": "en", "journey": "post_purchase"}).text
    assert "Posventa — results report" in english and '<option value="post_purchase" selected>' in english
    assert world.client.get("/admin/report", params={"journey": "nope"}).status_code == 404
    assert world.client.get("/admin/report", params={"until": "03/01/2026"}).status_code == 400
    # the period filter reaches the numbers: nothing entered in 2030
    empty = world.client.get("/admin/report", params={"since": "2030-01-01", "until": "2030-02-01"}).text
    assert "post_purchase" in empty and 'id="kpi-nps">' in empty
    assert re.search(r'id="kpi-nps">[^<]*<b>([^<]*)</b>', empty).group(1) == "—"  # type: ignore[union-attr]


def test_customer_timeline(world: World) -> None:
    c = world.client
    assert "Escribe el id de un cliente" in c.get("/admin/customers").text
    with world.live.svc.store.factory() as s:  # type: ignore[attr-defined]
        enrollment = s.scalars(
            select(m.Enrollment.id).where(m.Enrollment.customer_id == world.answered)
        ).one()
        at = world.live.clock.now
        s.add(
            m.Deferral(
                enrollment_id=enrollment,
                step_id="content_tip",
                occurrence=0,
                reason="quiet_hours",
                journey_id="post_purchase",
                first_at=at,
                last_at=at,
                until=at + timedelta(hours=8),
                ticks=3,
            )
        )
        s.commit()
    r = c.get("/admin/customers", params={"id": world.answered})
    assert r.status_code == 200
    page = r.text
    timeline = page.split('id="timeline"', 1)[1]
    for kind, what in (("event", "order.placed"), ("event", "order.delivered"), ("message", "thank_you")):
        assert re.search(rf'<tr class="kind-{kind}">.*?{re.escape(what)}', timeline), (kind, what)
    assert re.search(r'<tr class="kind-answer">.*?nps 9/10', timeline, re.S)
    assert re.search(
        r'<tr class="kind-deferral">.*?aplazado.*?content_tip.*?quiet_hours.*?×3', timeline, re.S
    )
    # the comment is shown, escaped
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; muy bien" in timeline
    assert "<script>" not in page
    assert 'href="/admin/journeys/post_purchase"' in page
    other = c.get("/admin/customers", params={"id": world.complained, "lang": "en"}).text
    assert "Has an open complaint" in other
    assert re.search(r'<tr class="kind-ticket">.*?complaint tk-1.*?open.*?Caja rota', other, re.S)
    missing = c.get("/admin/customers", params={"id": "nobody-here"})
    assert missing.status_code == 404 and "No hay ningún cliente «nobody-here»" in missing.text
    data = c.get("/admin/api/customers", params={"id": world.answered}).json()
    assert data["customer"]["id"] == world.answered
    kinds = {e["kind"] for e in data["timeline"]}
    assert {"event", "enrollment", "message", "answer"} <= kinds
    assert c.get("/admin/api/customers", params={"id": "nobody-here"}).status_code == 404


def test_the_customer_id_stays_out_of_the_access_log(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="posventa.web")
    world.client.get("/admin/customers", params={"id": world.answered})
    deadline = time.monotonic() + 10  # the access line is written once the response has gone out
    while "GET /admin/customers 200" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "GET /admin/customers 200" in caplog.text and world.answered not in caplog.text
