"""Shop policy still at its shipped example value.

``journeys/templates/<locale>/_shop.j2`` holds the wording that depends on a shop's policy (refund
times, referral rewards, what the extended warranty covers). The values Posventa ships are examples, and
each one ends its line with an explicit mark::

    {% set REFUND_HOW = "…" %} {# posventa:placeholder … #}

A shop writes its own policy and deletes the mark. While a mark is left, ``posventa validate`` warns on
every send step whose template uses that value (``placeholder``, a warning like ``no-effect``) and
``posventa doctor`` lists them: the check reads the mark, it does not guess from the wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MARK = "posventa:placeholder"
SHOP_PARTIAL = "_shop.j2"
_SET = re.compile(r"^\s*\{%-?\s*set\s+([A-Za-z_][A-Za-z0-9_]*)\s*=.*?-?%\}.*\{#.*" + re.escape(MARK))


@dataclass(frozen=True)
class Placeholder:
    name: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@lru_cache(maxsize=64)
def _marked(path: Path, mtime_ns: int, size: int) -> tuple[Placeholder, ...]:
    out = []
    for n, text in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        m = _SET.match(text)
        if m:
            out.append(Placeholder(m.group(1), path, n))
    return tuple(out)


def _read(path: Path) -> tuple[Placeholder, ...]:
    try:
        stat = path.stat()
        return _marked(path, stat.st_mtime_ns, stat.st_size)  # read again when the file changes
    except OSError:
        return ()


def marked(templates_root: Path | str, locales: Sequence[str] | None = None) -> list[Placeholder]:
    """Every value still marked as a placeholder in ``<root>/<locale>/_shop.j2`` (all locales found, or
    those given)."""
    root = Path(templates_root)
    dirs = (
        [root / loc for loc in locales]
        if locales is not None
        else sorted(p for p in root.glob("*") if p.is_dir())
    )
    return [p for d in dirs for p in _read(d / SHOP_PARTIAL)]


def used_by(template: Path, placeholders: Sequence[Placeholder]) -> list[Placeholder]:
    """The placeholders a template names (the names are distinctive: ``shop.REFUND_HOW``)."""
    try:
        source = template.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [p for p in placeholders if re.search(rf"\b{re.escape(p.name)}\b", source)]


def check_steps(
    steps: Sequence[Any], locales: Sequence[str], templates: Any, add: Callable[..., None]
) -> None:
    """Warn (``placeholder``) on each send step whose template, in a locale the journey speaks, uses a
    value still marked as a placeholder. ``add`` is the validator's ``(loc, code, message, hint,
    severity=)`` collector; ``templates`` a :class:`posventa.templates.Templates`."""
    for i, step in enumerate(steps):
        if getattr(step, "type", None) != "send" or getattr(step, "sendgrid_template_id", None):
            continue
        found: list[Placeholder] = []
        for locale in locales:
            found += used_by(templates.path(step.template, locale), marked(templates.root, [locale]))
        if not found:
            continue
        names = ", ".join(sorted({p.name for p in found}))
        where = ", ".join(p.where() for p in sorted(set(found), key=lambda p: (str(p.path), p.line)))
        add(
            ("steps", i, "template"),
            "placeholder",
            f"template '{step.template}' uses shop policy still at the shipped example: {names} ({where})",
            f"write your shop's policy there and delete the '{MARK}' mark",
            severity="warning",
        )
