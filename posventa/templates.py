"""Message templates: Jinja2 files, one per template and locale, rendered in a sandbox.

Layout: ``journeys/templates/<locale>/<name>.j2``. Each file defines three blocks — ``subject``,
``text`` and ``html`` — so the parts of one message live (and are reviewed) together. Shared pieces
(``_layout.j2``) can be imported or included. HTML is autoescaped; subject and text are rendered without
escaping (two environments, each compiling the file once).

Speed (a sweep renders one message per customer): each (template, locale) is compiled once per process —
the compiled code is kept by source checksum, so a ``Templates`` made later (each ``validate`` makes one)
reuses it and an edited file is compiled again — and each ``Templates`` keeps its loaded templates, so
rendering touches no file. A partial imported ``with context`` in every block (``{% import
"es/_layout.j2" as ui with context %}``) used to be executed again for every block of every message;
when its top level only defines constants and macros (reads nothing from the message, as the shipped
``_layout.j2``), it is now bound once and its macros read the message being rendered. A partial whose
top level reads the message is still imported per block, as before.

Safety: both environments are :class:`~posventa.expressions.Sandbox` environments (resource limits, no
access to Python internals, immutable data); any failure while loading or rendering — a syntax error, a
missing partial, a TypeError, a recursion, a limit — is a :class:`~posventa.errors.TemplateError` naming
the template file and line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import (
    BaseLoader,
    BytecodeCache,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    nodes,
)
from jinja2.bccache import Bucket, FileSystemBytecodeCache
from jinja2.environment import Environment, TemplateModule
from jinja2.loaders import split_template_path
from jinja2.runtime import Context, missing
from jinja2.sandbox import ImmutableSandboxedEnvironment

from posventa.errors import LimitError, TemplateError
from posventa.expressions import (
    CHECK_SECONDS,
    RENDER_SECONDS,
    Sandbox,
    budget,
    constant_problems,
    describe,
    forbidden,
)
from posventa.money import money_filter

BLOCKS = ("subject", "text", "html")
#: Largest template file, in bytes (the shipped layout is about 12 KB). Larger: ``bad-template``.
MAX_TEMPLATE_BYTES = 256 * 1024
#: Longest subject, text or HTML a render may produce, in characters (Gmail clips messages at 102 KB).
MAX_MESSAGE_CHARS = 1_000_000
#: Characters a template may not contain: C0 controls but tab, line feed and carriage return; DEL.
_CONTROL = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class _CodeCache(BytecodeCache):
    """Compiled template code, in memory, by file and source checksum: one compilation per process —
    and across processes through Jinja's per-user file cache (a private directory in the system's
    temporary folder, refused by Jinja if another user owns it), so a fresh ``posventa validate`` or
    worker loads the compiled code instead of compiling every template again. A stale entry (another
    source, Python or Jinja version) is ignored and replaced; an unusable folder means memory only."""

    LIMIT = 4096

    def __init__(self, kind: str) -> None:
        self._code: dict[tuple[str, str], Any] = {}
        self._disk: FileSystemBytecodeCache | None = None
        with contextlib.suppress(OSError, RuntimeError):
            # One file pattern per environment: the HTML and plain-text code of a template differ.
            self._disk = FileSystemBytecodeCache(pattern=f"__posventa_{kind}_%s.cache")

    def load_bytecode(self, bucket: Bucket) -> None:
        key = (bucket.key, bucket.checksum)
        bucket.code = self._code.get(key)
        if bucket.code is None and self._disk is not None:
            try:
                self._disk.load_bytecode(bucket)
            except Exception:  # a damaged or unreadable entry: compile again
                bucket.reset()
            if bucket.code is not None:
                self._remember(key, bucket.code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._remember((bucket.key, bucket.checksum), bucket.code)
        if self._disk is not None:
            with contextlib.suppress(OSError):
                self._disk.dump_bytecode(bucket)

    def _remember(self, key: tuple[str, str], code: Any) -> None:
        if len(self._code) >= self.LIMIT:
            self._code.clear()
        self._code[key] = code


_CODE = {"html": _CodeCache("html"), "plain": _CodeCache("plain")}


class _Files(BaseLoader):
    """``<root>/<locale>/<name>.j2``: at most :data:`MAX_TEMPLATE_BYTES`, UTF-8, no control characters.
    A problem with the file is a syntax error at its line (or a :class:`LimitError`)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        filename = posixpath.join(self.root, *split_template_path(template))
        try:
            with open(filename, "rb") as fh:
                data = fh.read(MAX_TEMPLATE_BYTES + 1)
        except OSError as exc:  # missing, a folder, unreadable
            raise TemplateNotFound(template) from exc
        if len(data) > MAX_TEMPLATE_BYTES:
            raise LimitError(f"{template} is larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise TemplateSyntaxError(
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})", line, template, filename
            ) from exc
        bad = _CONTROL.search(text)
        if bad is not None:
            line = text.count("\n", 0, bad.start()) + 1
            raise TemplateSyntaxError(
                f"the control character U+{ord(bad.group()):04X} is not allowed", line, template, filename
            )
        return text, os.path.normpath(filename), lambda: True


#: The context of the block being rendered (its parent mapping), for partials bound once.
_RENDERING: ContextVar[Mapping[str, Any] | None] = ContextVar("posventa_rendering", default=None)


class _Rendering(Mapping[str, Any]):
    """The message being rendered, as the parent context of a bound partial."""

    def _vars(self) -> Mapping[str, Any]:
        return _RENDERING.get() or {}

    def __getitem__(self, key: str) -> Any:
        return self._vars()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._vars()

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars())

    def __len__(self) -> int:
        return len(self._vars())


class _BoundContext(Context):
    """The context of a bound partial: its own constants and macros, then the message being rendered."""

    def resolve_or_missing(self, key: str) -> Any:
        if key in self.vars:
            return self.vars[key]
        rendering = _RENDERING.get()
        if rendering is not None and key in rendering:
            return rendering[key]
        return missing


class _Template(Template):
    """A template that, imported ``with context`` as the first thing of a block, may be bound once."""

    _posventa_bound: TemplateModule | bool | None = False  # False: not decided yet

    def make_module(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> TemplateModule:
        # Exactly the import a block of the message makes: its whole context (nothing set before it).
        whole = shared and vars is not None and vars is _RENDERING.get()
        if whole and (not locals or all(v is missing for v in locals.values())):
            bound = self._posventa_bound
            if bound is False:
                bound = self._posventa_bound = self._bind()
            if bound is not None:
                return bound  # type: ignore[return-value]
        return super().make_module(vars, shared, locals)

    def _bind(self) -> TemplateModule | None:
        loader = self.environment.loader
        if loader is None or self.name is None:
            return None
        source = loader.get_source(self.environment, self.name)[0]
        if not _analyse(source).constant_top_level:
            return None
        context = _BoundContext(self.environment, _Rendering(), self.name, self.blocks, self.globals)  # type: ignore[arg-type]
        return TemplateModule(self, context)


def _top_level_is_constant(tree: nodes.Template) -> bool:
    """Whether running this template's top level reads nothing from its context: only text, ``set`` of
    expressions over constants and earlier sets, and macros whose defaults are such expressions."""
    if any(tree.find_all((nodes.Extends, nodes.Block, nodes.EvalContextModifier))):
        return False
    known = {"range", "dict", "cycler", "joiner", "namespace"}
    for node in tree.body:
        if isinstance(node, nodes.Output) and all(isinstance(n, nodes.TemplateData) for n in node.nodes):
            continue
        reads: list[nodes.Node]
        if isinstance(node, nodes.Macro):
            reads = list(node.defaults)
        elif isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
            reads = [node.node]
        else:
            return False
        for expr in reads:
            names = {n.name for n in expr.find_all(nodes.Name)} | (
                {expr.name} if isinstance(expr, nodes.Name) else set()
            )
            if not names <= known:
                return False
        if isinstance(node, nodes.Assign):
            known.add(node.target.name)  # type: ignore[attr-defined]
    return True


class _TemplateEnvironment(Sandbox, ImmutableSandboxedEnvironment):
    template_class = _Template

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters["money"] = money_filter  # amounts the message's locale's way (posventa.money)


@dataclass(frozen=True)
class _Analysis:
    """What reading a template's source (without running it) tells: problems as ``(line, message)``,
    the templates it names, whether its top level is constant (:func:`_top_level_is_constant`)."""

    problems: tuple[tuple[int, str], ...]
    names: tuple[str, ...]
    constant_top_level: bool


_PARSER = _TemplateEnvironment(trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=512)
def _analyse(source: str) -> _Analysis:
    """Parsed once per process and source text: ``validate`` checks every template of every journey, and
    each of them names the same layout."""
    tree = _PARSER.parse(source)
    names = []
    for node in tree.find_all((nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
        target = getattr(node, "template", None)
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            names.append(target.value)
    return _Analysis(
        problems=(*forbidden(tree), *constant_problems(tree)),
        names=tuple(names),
        constant_top_level=_top_level_is_constant(tree),
    )


def _where(exc: BaseException) -> str | None:
    """``file:line`` of the template line an exception comes from (the innermost), when it has one."""
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        return f"{exc.name or exc.filename}:{exc.lineno}"
    found = None
    tb = exc.__traceback__
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            found = f"{template.name}:{template.get_corresponding_lineno(tb.tb_lineno)}"
        tb = tb.tb_next
    return found


def _message(exc: BaseException) -> str:
    if isinstance(exc, TemplateNotFound):
        return f"the template '{exc.name}' does not exist"
    if isinstance(exc, TemplateSyntaxError):
        return exc.message or str(exc)
    return describe(exc)


class Templates:
    """The template folder of a journeys directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        options: dict[str, Any] = {
            "loader": _Files(self.root),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "auto_reload": False,  # loaded once per Templates; the code cache notices edited files
            "cache_size": 1000,
        }
        self._html = _TemplateEnvironment(autoescape=True, bytecode_cache=_CODE["html"], **options)
        self._plain = _TemplateEnvironment(autoescape=False, bytecode_cache=_CODE["plain"], **options)
        self._loaded: dict[tuple[str, str], tuple[Template, Template]] = {}
        self._checked: dict[tuple[str, str, bool], str | None] = {}

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

    def check(self, name: str, locale: str, *, item: bool = True) -> str | None:
        """Why this template cannot be used, or None: it loads, defines the three blocks, does nothing the
        sandbox forbids (in it or in the partials it names) and renders the sample context in time."""
        key = (name, locale, item)
        if key not in self._checked:
            self._checked[key] = self._check(name, locale, item)
        return self._checked[key]

    def _check(self, name: str, locale: str, item: bool) -> str | None:
        rel = f"{locale}/{name}.j2"
        try:
            plain, _ = self._load(name, locale)
        except Exception as exc:
            return f"{_where(exc) or rel}: {_message(exc)}"
        missing_blocks = [b for b in BLOCKS if b not in plain.blocks]
        if missing_blocks:
            return f"{rel} does not define the block(s) {', '.join(missing_blocks)}"
        problems = self._static_problems(rel)
        if problems:
            return "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        try:
            self._render(name, locale, sample_context(locale, item=item), CHECK_SECONDS)
        except TemplateError as exc:
            return f"{exc.where or rel}: fails to render with the sample context: {exc.message}"
        return None

    def _static_problems(self, rel: str) -> list[str]:
        """What :func:`~posventa.expressions.forbidden` and constant checks find in ``rel`` and in every
        partial it imports, includes or extends by a constant name."""
        problems: list[str] = []
        todo, seen = [rel], set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            try:
                found = _analyse(self._plain.loader.get_source(self._plain, current)[0])  # type: ignore[union-attr]
            except Exception:  # a missing or broken partial fails the sample render, with its line
                continue
            problems += [f"{current}:{line}: {message}" for line, message in found.problems]
            todo += found.names
        return problems

    def _load(self, name: str, locale: str) -> tuple[Template, Template]:
        key = (name, locale)
        pair = self._loaded.get(key)
        if pair is None:
            rel = f"{locale}/{name}.j2"
            pair = self._loaded[key] = (self._plain.get_template(rel), self._html.get_template(rel))
        return pair

    def render(self, name: str, locale: str, context: Mapping[str, Any]) -> Rendered:
        """Subject (on one line), text and HTML of one message. Raises :class:`TemplateError` only."""
        return self._render(name, locale, context, RENDER_SECONDS)

    def _render(self, name: str, locale: str, context: Mapping[str, Any], seconds: float) -> Rendered:
        try:
            with budget(seconds):
                plain, html = self._load(name, locale)
                subject, text = _blocks(plain, context, ("subject", "text"))
                (body,) = _blocks(html, context, ("html",))
        except KeyError as exc:
            raise TemplateError(name, locale, f"missing block {exc}") from exc
        except Exception as exc:  # a template must never crash a sweep: every failure is a TemplateError
            raise TemplateError(name, locale, _message(exc), _where(exc)) from exc
        return Rendered(subject=" ".join(subject.split()), text=text, html=body)


def _blocks(template: Template, context: Mapping[str, Any], names: tuple[str, ...]) -> list[str]:
    """Render some blocks of ``template`` with one context (blocks do not change their context)."""
    ctx = template.new_context(context)  # type: ignore[arg-type]
    token = _RENDERING.set(ctx.parent)
    try:
        out = []
        for name in names:
            parts, size = [], 0
            for piece in template.blocks[name](ctx):
                size += len(piece)
                if size > MAX_MESSAGE_CHARS:
                    raise LimitError(f"the {name} is longer than {MAX_MESSAGE_CHARS:,} characters")
                parts.append(piece)
            out.append("".join(parts).strip())
        return out
    finally:
        _RENDERING.reset(token)


def message_context(
    *,
    customer: Mapping[str, Any],
    order: Mapping[str, Any] | None,
    journey: str,
    step: str,
    links: Mapping[str, Any],
    brand: Mapping[str, Any],
    event: Mapping[str, Any] | None = None,
    variant: str | None = None,
    referral_code: str | None = None,
    trigger_event: Mapping[str, Any] | None = None,
    visit: int | None = None,
    visits: Mapping[str, int] | None = None,
    item: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one context every template gets. Every key is always present (None when unknown), because
    templates render with StrictUndefined: a typo in a template is an error, not a blank.

    ``event`` is the journey's latest event, ``trigger_event`` the one that enrolled the customer;
    ``journey.visit`` is which visit of this step the message is (1, 2, 3… in a ``repeat``),
    ``journey.visits`` how many times each step has run; ``item`` the order item a date trigger over
    items enrolled for (None otherwise)."""
    name = customer.get("name") or ""
    cust = {
        "id": customer.get("id"),
        "name": name,
        "first_name": name.split(" ")[0] if name else "",
        "email": customer.get("email"),
        "locale": customer.get("locale"),
        "timezone": customer.get("timezone"),
        "attributes": dict(customer.get("attributes") or {}),
    }
    o = dict(order or {})
    order_ctx = {
        k: o.get(k)
        for k in (
            "id",
            "total",
            "currency",
            "channel",
            "promised_delivery_date",
            "delivered_at",
            "tracking_url",
            "days_late",
            "referral_code",
            "warranty_expires_on",
            "runs_out_on",
            "placed_at",
        )
    }
    review = links.get("review")
    items = [_item(i, review) for i in (o.get("items") or []) if isinstance(i, Mapping)]
    order_ctx["items"] = items
    ev, trig = dict(event or {}), dict(trigger_event or {})
    # One product to review: the item a per-item journey is about, else the order's first item.
    reviewed = item or next(iter(items), None)
    return {
        "customer": cust,
        "order": order_ctx,
        "event": {"type": ev.get("type"), "data": dict(ev.get("data") or {})},
        "trigger_event": {"type": trig.get("type"), "data": dict(trig.get("data") or {})},
        "item": None if not item else {**_item(item, review), **{k: item.get(k) for k in _ITEM_DATES}},
        "journey": {
            "id": journey,
            "step": step,
            "variant": variant,
            "visit": visit or 1,
            "visits": dict(visits or {}),
        },
        "links": {
            "survey": links.get("survey") or [None] * 11,  # may be lazy: links are signed when read
            "unsubscribe": links.get("unsubscribe"),
            "referral": links.get("referral"),
            "tracking": links.get("tracking") or o.get("tracking_url"),
            "support": links.get("support"),
            "review": _review_url(review, reviewed),
            "shop": links.get("shop"),
        },
        "referral_code": referral_code,
        "brand": {
            "name": brand.get("name", "Posventa"),
            "url": brand.get("url"),
            "support_email": brand.get("support_email"),
        },
    }


_ITEM_DATES = ("warranty_expires_on", "runs_out_on")


def _review_url(pattern: Any, item: Mapping[str, Any] | None) -> str | None:
    """A review link: ``{sku}`` in the configured pattern becomes the item's (dropped without an item)."""
    if not pattern:
        return None
    return str(pattern).replace("{sku}", quote(str((item or {}).get("sku") or ""), safe=""))


def _item(i: Mapping[str, Any], review: Any = None) -> dict[str, Any]:
    """An order line as templates read it (``runs_out_in_days`` and ``warranty_months`` None when the shop
    sent 0 or nothing: not applicable; ``review_url`` where this product is reviewed)."""
    return {
        "sku": i.get("sku"),
        "name": i.get("name") or i.get("sku"),
        "quantity": i.get("quantity", 1),
        "price": i.get("price"),
        "category": i.get("category"),
        "runs_out_in_days": i.get("runs_out_in_days") or None,
        "warranty_months": i.get("warranty_months") or None,
        "review_url": _review_url(review, i),
    }


_SAMPLE_ITEM = {
    "sku": "CEP-01",
    "name": "Cepillo de dientes eléctrico",
    "quantity": 1,
    "price": 59.9,
    "runs_out_in_days": 30,
    "warranty_months": 24,
}


def sample_context(locale: str = "es", *, item: bool = True) -> dict[str, Any]:
    """A realistic context used to test-render templates during validation. ``item=False``: as in a
    journey no item date starts (``item`` is none, so a template must not need it there)."""
    base = "https://tienda.example"
    returned = {"type": "return.requested", "data": {"rma_id": "RMA-77", "reason": "talla", "sku": "CEP-01"}}
    return message_context(
        customer={
            "id": "c-1",
            "name": "Ana Pérez" if locale == "es" else "Ann Parker",
            "email": "ana@example.com",
            "locale": locale,
            "timezone": "Europe/Madrid",
        },
        order={
            "id": "A-1001",
            "total": 59.9,
            "currency": "EUR",
            "channel": "web",
            "promised_delivery_date": "2026-11-05",
            "delivered_at": "2026-11-06T12:00:00+00:00",
            "tracking_url": f"{base}/track/A-1001",
            "days_late": 1,
            "placed_at": "2026-11-01",
            "warranty_expires_on": "2028-11-06",
            "runs_out_on": "2026-12-06",
            "items": [_SAMPLE_ITEM],
        },
        journey="post_purchase",
        step="sample",
        links={
            "survey": [f"{base}/s/tok{i}" for i in range(11)],
            "unsubscribe": f"{base}/u/tok",
            "referral": f"{base}/r/ANA10",
            "support": f"{base}/soporte",
            "review": f"{base}/opinion/{{sku}}",
            "shop": base,
        },
        brand={"name": "Tienda Ejemplo", "url": base, "support_email": "ayuda@tienda.example"},
        event=returned,
        trigger_event=returned,
        visit=1,
        visits={"sample": 1},
        item={**_SAMPLE_ITEM, "warranty_expires_on": "2028-11-06", "runs_out_on": "2026-12-06"}
        if item
        else None,
        referral_code="ANA10",
    )
