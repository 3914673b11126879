"""User-facing CLI text in Spanish and English.

The language comes from ``--lang``, else ``POSVENTA_LANG``, else the locale (``LANG=es_ES.UTF-8`` → es);
English otherwise. Diagnostics codes stay English (they are identifiers); their messages are English too,
as tools and editors match on them.
"""

from __future__ import annotations

import os

MESSAGES: dict[str, dict[str, str]] = {
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
    "help_db": {"en": "database migrations (upgrade, current)", "es": "migraciones de la base de datos"},
    "help_ingest": {"en": "load events from a JSONL or CSV file", "es": "carga eventos desde JSONL o CSV"},
    "help_tick": {
        "en": "advance every due enrollment now (the frequent sweep)",
        "es": "avanza ahora las inscripciones vencidas (barrido frecuente)",
    },
    "help_nightly": {
        "en": "nightly run: date triggers, segments and the due sweep",
        "es": "ejecución nocturna: disparadores por fecha, segmentos y barrido",
    },
    "help_run": {"en": "advance one customer now", "es": "avanza ahora a un cliente"},
    "help_demo": {
        "en": "the embedded demo: sample shop, several simulated weeks, emails to an outbox",
        "es": "la demo embebida: tienda de ejemplo, varias semanas simuladas, correos a una bandeja",
    },
    "help_doctor": {
        "en": "check database, Prefect and email settings",
        "es": "revisa base de datos, Prefect y correo",
    },
    "help_serve": {
        "en": "serve the events API, survey and unsubscribe pages",
        "es": "sirve la API de eventos y las páginas de encuesta y baja",
    },
    "help_fake_sendgrid": {
        "en": "run a SendGrid-compatible fake server on loopback",
        "es": "ejecuta un servidor falso compatible con SendGrid en loopback",
    },
    "help_templates": {
        "en": "template folder (default: templates/ beside each journey file)",
        "es": "carpeta de plantillas (por defecto: templates/ junto a cada recorrido)",
    },
    "help_customer": {
        "en": "show a customer: suppressions (with reasons), journeys, messages",
        "es": "muestra un cliente: bajas y bloqueos (con motivo), recorridos, mensajes",
    },
    "help_api_key": {"en": "create an API key for a shop", "es": "crea una clave de API para una tienda"},
    "no_such_path": {"en": "no such file or folder: {path}", "es": "no existe el archivo o carpeta: {path}"},
    "no_journeys": {
        "en": "no journey files (*.yaml) in {path}",
        "es": "no hay recorridos (*.yaml) en {path}",
    },
    "no_such_journey": {
        "en": "no journey '{name}' ({path} does not exist)",
        "es": "no existe el recorrido '{name}' ({path} no existe)",
    },
    "validate_ok": {"en": "{n} journey file(s) valid", "es": "{n} recorrido(s) válido(s)"},
    "validate_bad": {
        "en": "{errors} error(s) in {n} journey file(s)",
        "es": "{errors} error(es) en {n} recorrido(s)",
    },
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


def t(key: str, **kwargs: object) -> str:
    """The message ``key`` in the current language; callers may register more messages in MESSAGES."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    text = entry.get(language()) or entry["en"]
    return text.format(**kwargs) if kwargs else text
