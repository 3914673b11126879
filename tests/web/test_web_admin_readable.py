"""The /admin pages read like the README promises, over real HTTP on PostgreSQL: every time on the
customer page in POSVENTA_TIMEZONE with the zone's abbreviation (``2026-03-02 11:00 CET``), booleans as
yes/no (sí/no), and the journey diagram labels a branch's arrows "condition 1" with the full expression
as the tooltip, not raw Jinja."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_builders import World, admin_world

pytestmark = pytest.mark.postgres

LOCAL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)$")  # the shops' default zone: Europe/Madrid


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    with admin_world(db_url, tmp_path) as built:
        yield built


def _cells(page: str, table: str) -> list[str]:
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<td[^>]*>([^<]*)</td>", body)


def test_customer_times_are_local_with_the_zone_and_booleans_are_words(world: World) -> None:
    page = world.client.get("/admin/customers", params={"id": world.answered}).text
    entered = _cells(page, "enrollments")[-1]  # one enrollment: its last cell is when it entered
    assert LOCAL.match(entered), entered  # was the raw UTC ISO text: 2026-…T…+00:00
    assert "+00:00" not in page and "True" not in page and "False" not in page
    when = [c for c in _cells(page, "timeline") if re.match(r"^\d{4}-", c)]
    assert when and all(LOCAL.match(c) for c in when), when[:3]
    assert 'Acepta correos promocionales</th><td class="text">sí</td>' in page
    english = world.client.get("/admin/customers", params={"id": world.answered, "lang": "en"}).text
    assert 'Accepts promotional email</th><td class="text">yes</td>' in english


def test_a_branch_arrow_is_labelled_by_number_with_the_condition_as_tooltip(world: World) -> None:
    page = world.client.get("/admin/journeys/post_purchase", params={"lang": "en"}).text
    diagram = page.split('id="diagram"', 1)[1].split("</svg>", 1)[0]
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", diagram)
    assert "condition 1" in labels
    assert not [t for t in labels if "lower ==" in t or "order.channel" in t]
    # the full expression is the arrow's title (hover), escaped for the SVG
    assert "(order.channel or &#39;&#39;) | lower == &#39;store&#39;" in diagram or (
        "(order.channel or '') | lower == 'store'" in diagram
    )
    spanish = world.client.get("/admin/journeys/post_purchase").text
    assert ">condición 1</text>" in spanish
