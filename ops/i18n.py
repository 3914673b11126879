"""The ops commands' text in Spanish and English (their own catalogue; the language is the one the
``posventa`` command chose: ``--lang``, ``POSVENTA_LANG`` or the locale)."""

from __future__ import annotations

from posventa.i18n import Catalogue

OPS = Catalogue(
    {
        # command help
        "help_db": {"en": "database migrations (upgrade, current)", "es": "migraciones de la base de datos"},
        "help_ingest": {
            "en": "load events from a JSONL or CSV file",
            "es": "carga eventos desde JSONL o CSV",
        },
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
        "help_customer": {
            "en": "show a customer: suppressions (with reasons), journeys, messages",
            "es": "muestra un cliente: bajas y bloqueos (con motivo), recorridos, mensajes",
        },
        "help_api_key": {"en": "create an API key for a shop", "es": "crea una clave de API para una tienda"},
        # db, ingest, run commands, doctor, api keys, customers
        "db_upgraded": {"en": "database at revision {rev}", "es": "base de datos en la revisión {rev}"},
        "ingest_summary": {
            "en": "{ok} accepted, {dup} duplicates, {bad} rejected",
            "es": "{ok} aceptados, {dup} duplicados, {bad} rechazados",
        },
        "rejected_line": {
            "en": "{path}:{line}: rejected: {reason}",
            "es": "{path}:{line}: rechazado: {reason}",
        },
        "outbox_note": {
            "en": "no SendGrid key: email is written to {path}",
            "es": "sin clave de SendGrid: el correo se escribe en {path}",
        },
        "run_summary": {
            "en": "{n} enrollments advanced, {sent} messages sent, {skipped} skipped, {failed} failed",
            "es": "{n} inscripciones avanzadas, {sent} mensajes enviados, {skipped} omitidos, "
            "{failed} fallidos",
        },
        "doctor_ok": {"en": "ok", "es": "bien"},
        "no_customer": {"en": "no customer '{id}'", "es": "no existe el cliente '{id}'"},
        "suppressions": {"en": "Suppressions", "es": "Bloqueos y bajas"},
        "open_complaint": {
            "en": "open complaint: promotions on hold",
            "es": "reclamación abierta: promociones en espera",
        },
        "journeys": {"en": "Journeys", "es": "Recorridos"},
        "messages": {"en": "Messages", "es": "Mensajes"},
        "api_key_created": {
            "en": "API key for {shop} (shown once, store it now):",
            "es": "Clave de API para {shop} (se muestra una vez, guárdala ahora):",
        },
        # the demo
        "demo_start": {
            "en": "Posventa demo: {n} customers, {w} simulated weeks, SQLite at {db}",
            "es": "Demo de Posventa: {n} clientes, {w} semanas simuladas, SQLite en {db}",
        },
        "demo_done": {"en": "Done. {sent} emails in {outbox}", "es": "Listo. {sent} correos en {outbox}"},
        "demo_ui": {
            "en": "See the runs in the Prefect UI:\n  PREFECT_HOME={home} .venv/bin/prefect server start\n"
            "  then open http://127.0.0.1:4200 (flow 'demo', its task runs and artifacts)",
            "es": "Mira las ejecuciones en la interfaz de Prefect:\n"
            "  PREFECT_HOME={home} .venv/bin/prefect server start\n"
            "  y abre http://127.0.0.1:4200 (flujo 'demo', sus tareas y artefactos)",
        },
        "demo_progress": {"en": "simulated weeks", "es": "semanas simuladas"},
        "demo_summary": {"en": "Summary per journey step", "es": "Resumen por paso de recorrido"},
        "demo_actions": {"en": "actions", "es": "acciones"},
        "demo_unknown": {"en": "unknown", "es": "inciertos"},
        "demo_skip_reasons": {"en": "skip reasons", "es": "motivos de omisión"},
        "demo_webhook": {
            "en": "SendGrid Event Webhook: {n} signed events posted to /webhooks/sendgrid "
            "({delivered} delivered, {opened} opens, {clicked} clicks, {bounced} bounces), {applied} applied",
            "es": "Webhook de eventos de SendGrid: {n} eventos firmados enviados a /webhooks/sendgrid "
            "({delivered} entregas, {opened} aperturas, {clicked} clics, {bounced} rebotes), "
            "{applied} aplicados",
        },
        "demo_friends": {
            "en": "Friends who opened a referral link (GET /r/<code>): {visits}; "
            "of them ordered with the code: {orders}",
            "es": "Amigos que abrieron un enlace de referido (GET /r/<code>): {visits}; "
            "compraron con el código: {orders}",
        },
        "demo_report": {
            "en": "Report (charts, works offline): {path}",
            "es": "Informe (gráficos, funciona sin conexión): {path}",
        },
    }
)
t = OPS.t
