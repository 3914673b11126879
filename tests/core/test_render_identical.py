"""Every shipped template renders exactly as it did before rendering was made faster.

``fixtures/rendered.json.gz`` holds the subject, text and HTML of every shipped template in es and en for
three contexts (the realistic sample, a sparse one with almost nothing known, and one full of characters
HTML must escape). It was captured with the per-block renderer that re-imported the layout for every
block; the current renderer must reproduce it byte for byte.

After an *intended* change to a shipped template, rewrite the fixture and review the diff of its
content: ``python tests/core/test_render_identical.py --write``.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from posventa.templates import Templates, message_context, sample_context

ROOT = Path(__file__).resolve().parents[2] / "journeys" / "templates"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "rendered.json.gz"
LOCALES = ("es", "en")


def _sparse(locale: str) -> dict[str, Any]:
    """Nothing but an address: every optional branch of the templates takes its 'unknown' side."""
    return message_context(
        customer={"id": "c-2", "email": "x@example.com", "locale": locale},
        order=None,
        journey="birthday",
        step="greet",
        links={},
        brand={"name": "Shop"},
    )


def _escaping(locale: str) -> dict[str, Any]:
    """Markup-like data everywhere it can reach: HTML must escape it, subject and text must not."""
    evil = "<b>&\"'</b>"
    return message_context(
        customer={"id": "c-3", "name": f"Zoë {evil} O'Neil", "email": "z@example.com", "locale": locale},
        order={
            "id": f"A&B-{evil}",
            "total": 1234.5,
            "currency": "USD",
            "promised_delivery_date": "2026-13-40",
            "delivered_at": "not a date",
            "tracking_url": "https://t.example/?a=1&b=<2>",
            "days_late": 3,
            "warranty_expires_on": "2027-02-28",
            "runs_out_on": "2026-01-31T23:00:00+00:00",
            "items": [
                {"sku": "S1", "name": f"Item {evil}", "quantity": 2, "price": 10},
                {"sku": "S2", "name": "Second", "price": None},
                {"sku": "S3", "quantity": 1, "price": 0.5},
            ],
        },
        journey="returns",
        step="s",
        links={
            "survey": [f'https://s.example/{i}?q="{i}"&x=<y>' for i in range(11)],
            "unsubscribe": 'https://u.example/?t=<tok>&x="',
            "referral": "https://r.example/<code>",
            "support": "mailto:help@example.com",
            "review": "https://rev.example/&",
            "shop": "https://shop.example/?a=<b>",
        },
        brand={"name": f"Brand {evil}", "url": "https://brand.example/?x=<y>", "support_email": "a&b@ex.com"},
        event={"type": "return.requested", "data": {"rma_id": f"RMA {evil}", "reason": evil, "sku": "S1"}},
        variant="incentive",
        referral_code=f"CODE{evil}",
    )


CONTEXTS = {"sample": sample_context, "sparse": _sparse, "escaping": _escaping}


def render_all(templates: Templates) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name in templates.names():
        for locale in LOCALES:
            for label, build in CONTEXTS.items():
                r = templates.render(name, locale, build(locale))
                out[f"{locale}/{name}|{label}"] = {"subject": r.subject, "text": r.text, "html": r.html}
    return out


def _expected() -> dict[str, dict[str, str]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        data: dict[str, dict[str, str]] = json.load(fh)
    return data


def test_fixture_covers_every_shipped_template() -> None:
    names = Templates(ROOT).names()
    assert len(names) >= 19
    keys = {k.split("|")[0] for k in _expected()}
    assert keys == {f"{loc}/{n}" for n in names for loc in LOCALES}


@pytest.mark.parametrize("locale", LOCALES)
def test_every_shipped_template_renders_as_before(locale: str) -> None:
    expected = _expected()
    templates = Templates(ROOT)
    for key, parts in render_all(templates).items():
        if not key.startswith(f"{locale}/"):
            continue
        for part in ("subject", "text", "html"):
            assert parts[part] == expected[key][part], f"{key} {part} differs"


def test_rendering_twice_with_one_instance_is_stable() -> None:
    """Compiled once and reused: a second render of the same message is identical to the first."""
    templates = Templates(ROOT)
    first = render_all(templates)
    assert render_all(templates) == first


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/core/test_render_identical.py --write")
    data = render_all(Templates(ROOT))
    with gzip.open(FIXTURE, "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump(data, fh, ensure_ascii=False, indent=0, sort_keys=True)
    print(f"wrote {len(data)} renders to {FIXTURE}")
