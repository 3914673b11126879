"""User-facing CLI text in Spanish and English.

The language comes from ``--lang``, else ``POSVENTA_LANG``, else the locale (``LANG=es_ES.UTF-8`` → es);
English otherwise. Diagnostics codes stay English (they are identifiers); their messages are English too,
as tools and editors match on them.

Each layer keeps its own :class:`Catalogue` (this module: the journey commands; ``ops.i18n``: the ops
commands; ``web.i18n``: the customer pages). Catalogues are built once and never extended by another
module; they share the language choice made here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: A message: one text, or ``(singular, plural)`` chosen by the ``n`` argument (``n == 1``: singular) —
#: ``("{n} customer", "{n} customers")``; Spanish and English need no other forms.
Text = str | tuple[str, str]


MESSAGES: Mapping[str, Mapping[str, Text]] = {
    "description": {
        "en": "Post-sale customer journeys as code.",
        "es": "Recorridos de posventa como código.",
    },
    "help_lang": {"en": "language of messages (es, en)", "es": "idioma de los mensajes (es, en)"},
    "usage_error": {"en": "usage error", "es": "error de uso"},
    "error": {"en": "error", "es": "error"},
    "interrupted": {"en": "interrupted", "es": "interrumpido"},
    "help_validate": {
        "en": "check journeys and report every problem with file:line:col",
        "es": "revisa los recorridos e informa cada problema con archivo:línea:columna",
    },
    "help_schema": {
        "en": "print the journey language as JSON Schema",
        "es": "imprime el lenguaje de recorridos como JSON Schema",
    },
    "help_compile": {
        "en": "print a journey's compiled plan (JSON)",
        "es": "imprime el plan compilado (JSON)",
    },
    "help_graph": {
        "en": "draw a journey as a Mermaid diagram",
        "es": "dibuja un recorrido como diagrama Mermaid",
    },
    "help_svg": {
        "en": "also write an SVG (needs Graphviz 'dot')",
        "es": "escribe también un SVG (requiere 'dot')",
    },
    "help_simulate": {
        "en": "run synthetic customers through a journey on a virtual clock",
        "es": "simula clientes sintéticos en un recorrido con un reloj virtual",
    },
    "help_events": {
        "en": "scripted timeline (JSONL) instead of random behaviour",
        "es": "línea de tiempo guionizada (JSONL) en vez de comportamiento aleatorio",
    },
    "help_show": {
        "en": "index of the customer whose timeline is printed",
        "es": "índice del cliente cuya línea de tiempo se imprime",
    },
    "help_templates": {
        "en": "template folder (default: templates/ beside each journey file)",
        "es": "carpeta de plantillas (por defecto: templates/ junto a cada recorrido)",
    },
    "no_such_path": {"en": "no such file or folder: {path}", "es": "no existe el archivo o carpeta: {path}"},
    "no_journeys": {
        "en": "no journey files (*.yaml) in {path}",
        "es": "no hay recorridos (*.yaml) en {path}",
    },
    "no_such_journey": {
        "en": "no journey '{name}' ({path} does not exist)",
        "es": "no existe el recorrido '{name}' ({path} no existe)",
    },
    "validate_ok": {
        "en": ("{n} journey file valid", "{n} journey files valid"),
        "es": ("{n} recorrido válido", "{n} recorridos válidos"),
    },
    "validate_bad": {
        "en": ("{n} error in {files}", "{n} errors in {files}"),
        "es": ("{n} error en {files}", "{n} errores en {files}"),
    },
    "journey_files": {
        "en": ("{n} journey file", "{n} journey files"),
        "es": ("{n} recorrido", "{n} recorridos"),
    },
    "sim_title": {
        "en": "Journey {id} ({name}) — plan {version}",
        "es": "Recorrido {id} ({name}) — plan {version}",
    },
    "sim_population": {
        "en": "{customers} × {days}: {enrolled}, {advances}",
        "es": "{customers} × {days}: {enrolled}, {advances}",
    },
    "sim_customers": {"en": ("{n} customer", "{n} customers"), "es": ("{n} cliente", "{n} clientes")},
    "sim_days": {"en": ("{n} day", "{n} days"), "es": ("{n} día", "{n} días")},
    "sim_enrolled": {"en": "{n} enrolled", "es": ("{n} inscripción", "{n} inscripciones")},
    "sim_advances": {
        "en": ("{n} engine advance", "{n} engine advances"),
        "es": ("{n} avance del motor", "{n} avances del motor"),
    },
    "sim_timeline": {
        "en": "Timeline of customer {id}{details}:",
        "es": "Línea de tiempo del cliente {id}{details}:",
    },
    "sim_send": {"en": "send", "es": "envío"},
    "sim_skip": {"en": "skip", "es": "omitido"},
    "sim_action": {"en": "action", "es": "acción"},
    "sim_answered": {"en": "answered", "es": "respondió"},
    "sim_end": {"en": "ended:", "es": "terminó:"},
    "sim_note": {"en": "note:", "es": "nota:"},
    "sim_col_step": {"en": "step", "es": "paso"},
    "sim_col_type": {"en": "type", "es": "tipo"},
    "sim_col_visits": {"en": "visits", "es": "visitas"},
    "sim_col_sent": {"en": "sent", "es": "enviados"},
    "sim_col_skipped": {"en": "skipped", "es": "omitidos"},
    "sim_col_actions": {"en": "actions", "es": "acciones"},
    "sim_skipped_by_reason": {"en": "Skipped, by reason:", "es": "Omitidos, por motivo:"},
    "sim_outcomes": {"en": "Outcomes:", "es": "Resultados:"},
    "sim_nps": {"en": "NPS answers: {answers}", "es": "Respuestas NPS: {answers}"},
    "sim_referrals": {"en": "Referral asks sent: {n}", "es": "Peticiones de recomendación enviadas: {n}"},
    "sim_promo_detractors": {
        "en": "Promotional messages to detractors: {n}",
        "es": "Mensajes promocionales a detractores: {n}",
    },
    "sim_variants": {"en": "Split variants: {variants}", "es": "Variantes del reparto: {variants}"},
    "svg_written": {"en": "SVG written to {path}", "es": "SVG escrito en {path}"},
    "no_graphviz": {
        "en": "Graphviz 'dot' is not installed: no SVG written",
        "es": "Graphviz 'dot' no está instalado: no se escribió el SVG",
    },
}

_lang: str | None = None


def language() -> str:
    if _lang:
        return _lang
    env = os.environ.get("POSVENTA_LANG") or os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return "es" if env.lower().startswith("es") else "en"


def set_language(lang: str) -> None:
    global _lang
    _lang = lang if lang in ("es", "en") else None


class Catalogue:
    """One layer's messages: ``{key: {"en": …, "es": …}}``, looked up in the current language."""

    def __init__(self, messages: Mapping[str, Mapping[str, Text]]) -> None:
        self.messages = messages

    def t(self, key: str, **kwargs: object) -> str:
        """The message ``key`` in the current language (English when it has no translation; the key
        itself when unknown); a ``(singular, plural)`` message by ``n``."""
        entry = self.messages.get(key)
        if entry is None:
            return key
        text = entry.get(language()) or entry["en"]
        if isinstance(text, tuple):
            text = text[0] if kwargs.get("n") == 1 else text[1]
        return text.format(**kwargs) if kwargs else text


CLI = Catalogue(MESSAGES)
t = CLI.t
