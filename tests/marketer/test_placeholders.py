"""Shop policy still at the shipped example: ``validate`` warns on the steps whose templates use it (by
the explicit ``posventa:placeholder`` mark, not by guessing), and stops once the shop writes its own."""

from __future__ import annotations

import re
from pathlib import Path

from mk_builders import ROOT

from posventa import placeholders
from posventa.validate import check_file

SHIPPED = {
    "REFERRAL_REWARD_FRIEND",
    "REFERRAL_REWARD_YOU",
    "REFUND_HOW",
    "EXTENSION_WHAT",
    "RETURN_POLICY",
    "FIRST_TIME_OFFER",
    "REPEAT_BUYER_OFFER",
}


def test_every_shipped_policy_value_is_marked() -> None:
    for locale in ("es", "en"):
        found = placeholders.marked(ROOT / "journeys" / "templates", [locale])
        assert {p.name for p in found} == SHIPPED
        shop = (ROOT / "journeys" / "templates" / locale / "_shop.j2").read_text(encoding="utf-8")
        for p in found:
            assert re.match(rf"\{{% set {p.name} = ", shop.splitlines()[p.line - 1])


def test_validate_warns_where_a_placeholder_is_used_until_the_mark_is_gone(journeys: Path) -> None:
    warnings = [w for w in check_file(journeys / "returns.yaml").warnings if w.code == "placeholder"]
    [w] = warnings
    lines = (journeys / "returns.yaml").read_text(encoding="utf-8").splitlines()
    refund = next(n for n, text in enumerate(lines, 1) if "template: refund_confirmation" in text)
    assert (w.severity, w.line) == ("warning", refund)  # the refund step's `template:`
    assert (
        "template 'refund_confirmation' uses shop policy still at the shipped example: REFUND_HOW"
        in w.message
    )
    assert f"{journeys / 'templates' / 'en' / '_shop.j2'}:12" in w.message
    assert [w.code for w in check_file(journeys / "birthday.yaml").warnings] == []  # uses no policy value

    for locale in ("es", "en"):
        shop = journeys / "templates" / locale / "_shop.j2"
        lines = shop.read_text(encoding="utf-8").splitlines()
        shop.write_text(
            "\n".join(
                line.split(" {# posventa:placeholder")[0] if "REFUND_HOW =" in line else line
                for line in lines
            ),
            encoding="utf-8",
        )
    assert [w for w in check_file(journeys / "returns.yaml").warnings if w.code == "placeholder"] == []
    assert {p.name for p in placeholders.marked(journeys / "templates")} == SHIPPED - {"REFUND_HOW"}
