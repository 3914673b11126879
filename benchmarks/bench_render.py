"""Rendering one message: the real ``thank_you`` template vs a trivial one, per message, in one run.

Why: rendering the real layout is the dominant per-message cost of a sweep (issue 12). A message is built
the way the runtime builds it — ``message_context`` from a customer and an order, then
``Templates.render`` — alternating es and en. The baseline is a trivial one-line template rendered by a
bare Jinja sandbox in the same run, so the ratio does not depend on the machine's speed; the target is
≤ 300 µs per ``thank_you`` message. Run: ``python -m benchmarks.bench_render [n]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_US = 300.0
TRIVIAL = (
    "{% block subject %}Hola {{ customer.first_name }}{% endblock %}"
    "{% block text %}Hola {{ customer.name }}{% endblock %}"
    "{% block html %}<p>Hola {{ customer.name }}</p>{% endblock %}"
)


def _contexts(n: int) -> list[tuple[str, dict[str, Any]]]:
    from posventa.templates import message_context

    base = "https://tienda.example"
    out = []
    for i in range(n):
        locale = "es" if i % 2 == 0 else "en"
        ctx = message_context(
            customer={
                "id": f"c{i}",
                "name": f"Cliente {i} Pérez",
                "email": f"c{i}@example.com",
                "locale": locale,
            },
            order={
                "id": f"A-{i}",
                "total": 19.9 + i % 50,
                "currency": "EUR",
                "promised_delivery_date": "2026-11-05",
                "tracking_url": f"{base}/track/A-{i}",
                "items": [
                    {"sku": "CEP-01", "name": "Cepillo de dientes eléctrico", "quantity": 1, "price": 59.9},
                    {"sku": "REC-02", "name": "Recambios", "quantity": 2, "price": 9.5},
                ],
            },
            journey="post_purchase",
            step="thank_you",
            links={"unsubscribe": f"{base}/u/tok{i}", "support": "mailto:ayuda@tienda.example", "shop": base},
            brand={"name": "Tienda Ejemplo", "url": base, "support_email": "ayuda@tienda.example"},
        )
        out.append((locale, ctx))
    return out


def _per_message_us(
    fn: Callable[[str, dict[str, Any]], Any], contexts: list[tuple[str, dict[str, Any]]]
) -> float:
    """Best of three passes over the contexts, in µs per message (after a warm-up pass)."""
    for locale, ctx in contexts[:200]:
        fn(locale, ctx)
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for locale, ctx in contexts:
            fn(locale, ctx)
        best = min(best, time.process_time() - started)
    return best / len(contexts) * 1e6


def _without_limits(root: Path) -> Any:
    """The same renderer (compiled once, partials bound once) in a sandbox without the resource limits:
    what the limits cost is the difference. For this measurement only."""
    from jinja2.runtime import Macro
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from posventa import templates as t
    from posventa.expressions import DataFirst

    class Unlimited(DataFirst, ImmutableSandboxedEnvironment):
        template_class = t._Template

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            if type(__obj) is Macro:  # the same shortcut as the real sandbox's, without its step count
                kwargs.pop("_block_vars", None)
                kwargs.pop("_loop_vars", None)
                return __obj(*args, **kwargs)
            return super().call(__context, __obj, *args, **kwargs)

    out = t.Templates(root)
    options = {
        "loader": t._Files(root),
        "undefined": t.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "auto_reload": False,
    }
    out._html = Unlimited(autoescape=True, **options)
    out._plain = Unlimited(autoescape=False, **options)
    return out


def _interleaved(
    fns: dict[str, Callable[[str, dict[str, Any]], Any]],
    contexts: list[tuple[str, dict[str, Any]]],
    rounds: int = 5,
) -> dict[str, float]:
    """µs per message for each renderer: the best of ``rounds`` passes, taken in turns so that a change
    in the machine's load affects them alike."""
    for fn in fns.values():
        for locale, ctx in contexts[:200]:
            fn(locale, ctx)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            started = time.process_time()
            for locale, ctx in contexts:
                fn(locale, ctx)
            best[name] = min(best[name], (time.process_time() - started) / len(contexts) * 1e6)
    return best


def run(n: int = 3000) -> dict[str, Any]:
    from jinja2.sandbox import SandboxedEnvironment

    from posventa.templates import Templates

    if n < 10:
        raise ValueError("n must be at least 10")
    contexts = _contexts(n)
    real = Templates(ROOT / "journeys" / "templates")
    bare = SandboxedEnvironment(autoescape=True).from_string("<p>Hola {{ customer.name }}</p>")
    with tempfile.TemporaryDirectory() as tmp:
        for locale in ("es", "en"):
            (Path(tmp) / locale).mkdir()
            (Path(tmp) / locale / "trivial.j2").write_text(TRIVIAL, encoding="utf-8")
        trivial = Templates(tmp)
        trivial_us = _per_message_us(lambda loc, ctx: trivial.render("trivial", loc, ctx), contexts)
    unlimited = _without_limits(ROOT / "journeys" / "templates")
    times = _interleaved(
        {
            "baseline": lambda loc, ctx: bare.render(ctx),
            "real": lambda loc, ctx: real.render("thank_you", loc, ctx),
            "unlimited": lambda loc, ctx: unlimited.render("thank_you", loc, ctx),
        },
        contexts,
    )
    baseline_us, real_us = times["baseline"], times["real"]
    return {
        "n": n,
        "thank_you_us": round(real_us, 1),
        "without_limits_us": round(times["unlimited"], 1),
        "limits_cost_pct": round((real_us / times["unlimited"] - 1) * 100, 1),
        "trivial_template_us": round(trivial_us, 1),
        "baseline_us": round(baseline_us, 2),
        "target_us": TARGET_US,
        "ratio_to_baseline": round(real_us / baseline_us, 1),
        "trivial_ratio_to_baseline": round(trivial_us / baseline_us, 1),
        "meets_target": real_us <= TARGET_US,
    }


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
