"""Message templates: Jinja2 files, one per template and locale, rendered in a sandbox.

Layout: ``journeys/templates/<locale>/<name>.j2``. Each file defines three blocks — ``subject``,
``text`` and ``html`` — so the parts of one message live (and are reviewed) together. Shared pieces
(``_footer.j2``) can be included. HTML is autoescaped; subject and text are rendered without escaping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError as JinjaTemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from posventa.errors import TemplateError

BLOCKS = ("subject", "text", "html")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """The template folder of a journeys directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._html = SandboxedEnvironment(loader=FileSystemLoader(str(self.root)), autoescape=True,
                                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self._plain = SandboxedEnvironment(loader=FileSystemLoader(str(self.root)), autoescape=False,
                                           undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def path(self, name: str, locale: str) -> Path:
        return self.root / locale / f"{name}.j2"

    def locales_of(self, name: str) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / f"{name}.j2").is_file())

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted({p.stem for p in self.root.glob("*/*.j2") if not p.stem.startswith("_")})

    def digest(self, name: str, locale: str) -> str:
        return hashlib.sha256(self.path(name, locale).read_bytes()).hexdigest()[:16]

    def check(self, name: str, locale: str) -> str | None:
        """Why this template cannot be used, or None: it parses and defines the three blocks."""
        rel = f"{locale}/{name}.j2"
        try:
            tmpl = self._html.get_template(rel)
        except TemplateSyntaxError as exc:
            return f"{rel}:{exc.lineno}: {exc.message}"
        except JinjaTemplateError as exc:
            return f"{rel}: {exc}"
        missing = [b for b in BLOCKS if b not in tmpl.blocks]
        if missing:
            return f"{rel} does not define the block(s) {', '.join(missing)}"
        return None

    def render(self, name: str, locale: str, context: Mapping[str, Any]) -> Rendered:
        rel = f"{locale}/{name}.j2"
        parts: dict[str, str] = {}
        try:
            for block in BLOCKS:
                env = self._html if block == "html" else self._plain
                tmpl = env.get_template(rel)
                ctx = tmpl.new_context(dict(context))
                parts[block] = "".join(tmpl.blocks[block](ctx)).strip()
        except JinjaTemplateError as exc:
            raise TemplateError(name, locale, str(exc)) from exc
        except KeyError as exc:
            raise TemplateError(name, locale, f"missing block {exc}") from exc
        return Rendered(subject=" ".join(parts["subject"].split()), text=parts["text"], html=parts["html"])
