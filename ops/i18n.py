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
            "es": "avanza ahora las inscripciones pendientes (barrido frecuente)",
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
            "en": "run a SendGrid-compatible fake server on loopback (to try the production path locally)",
            "es": "ejecuta en local (loopback) un servidor falso compatible con SendGrid (para probar la "
            "ruta de producción en tu máquina)",
        },
        "fake_epilog": {
            "en": "It answers POST /v3/mail/send as SendGrid does (202, X-Message-Id; 401 for another key) "
            "and keeps what it accepted in memory: GET /fake/messages lists it. Point Posventa at it in "
            "another shell:\n\n  POSVENTA_SENDGRID_HOST=http://127.0.0.1:3030 "
            "POSVENTA_SENDGRID_API_KEY=SG.fake .venv/bin/posventa tick\n\nIt prints the Event Webhook "
            "verification key for POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY. Nothing leaves the machine.",
            "es": "Responde a POST /v3/mail/send como SendGrid (202, X-Message-Id; 401 con otra clave) y "
            "guarda en memoria lo que acepta: GET /fake/messages lo lista. Apunta Posventa a él desde otra "
            "terminal:\n\n  POSVENTA_SENDGRID_HOST=http://127.0.0.1:3030 "
            "POSVENTA_SENDGRID_API_KEY=SG.fake .venv/bin/posventa tick\n\nMuestra la clave de "
            "verificación del Event Webhook para POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY. Nada sale de la "
            "máquina.",
        },
        "arg_fake_host": {
            "en": "address to listen on (keep it loopback)",
            "es": "dirección en la que escucha (mejor loopback)",
        },
        "arg_fake_port": {"en": "port to listen on", "es": "puerto en el que escucha"},
        "arg_fake_key": {
            "en": "the API key clients must send (POSVENTA_SENDGRID_API_KEY)",
            "es": "la clave de API que deben enviar los clientes (POSVENTA_SENDGRID_API_KEY)",
        },
        "help_customer": {
            "en": "show a customer: suppressions (with reasons), journeys, messages",
            "es": "muestra un cliente: bajas y bloqueos (con motivo), recorridos, mensajes",
        },
        "help_api_key": {"en": "create an API key for a shop", "es": "crea una clave de API para una tienda"},
        # db, ingest, run commands, doctor, api keys, customers
        "db_upgraded": {"en": "database at revision {rev}", "es": "base de datos en la revisión {rev}"},
        "db_behind": {
            "en": "database at revision {rev}; this Posventa needs {head}: run posventa db upgrade",
            "es": "base de datos en la revisión {rev}; este Posventa necesita la {head}: ejecuta "
            "posventa db upgrade",
        },
        "arg_db_action": {
            "en": "upgrade: migrate the database; current: show its revision",
            "es": "upgrade: migra la base de datos; current: muestra su revisión",
        },
        "arg_db_revision": {
            "en": "with upgrade: the revision to reach (default: head, the newest)",
            "es": "con upgrade: la revisión a la que llegar (por defecto: head, la más reciente)",
        },
        "ingest_summary": {
            "en": "{ok} accepted, {dup} duplicates, {bad} rejected",
            "es": "{ok} aceptados, {dup} duplicados, {bad} rechazados",
        },
        "rejected_line": {
            "en": "{path}:{line}: rejected: {reason}",
            "es": "{path}:{line}: línea rechazada: {reason}",
        },
        "outbox_note": {
            "en": "no SendGrid key: email is written to {path}",
            "es": "sin clave de SendGrid: el correo se escribe en {path}",
        },
        "run_summary": {
            "en": "enrollments advanced: {n} · messages sent: {sent} · skipped: {skipped} · failed: {failed}",
            "es": "inscripciones avanzadas: {n} · mensajes enviados: {sent} · omitidos: {skipped} · "
            "fallidos: {failed}",
        },
        "doctor_ok": {"en": "ok", "es": "correcto"},
        "doctor_settings": {"en": "settings", "es": "configuración"},
        "doctor_email": {"en": "email", "es": "correo"},
        "doctor_not_migrated": {
            "en": "database {url}: reachable, not migrated — run: posventa db upgrade",
            "es": "base de datos {url}: accesible, sin migrar — ejecuta: posventa db upgrade",
        },
        "doctor_revision": {
            "en": "database {url}: revision {rev}",
            "es": "base de datos {url}: revisión {rev}",
        },
        "doctor_database": {"en": "database {url}: {error}", "es": "base de datos {url}: {error}"},
        "doctor_behind": {
            "en": "database {url}: revision {rev}, this Posventa needs {head} — run: posventa db upgrade",
            "es": "base de datos {url}: revisión {rev}, este Posventa necesita la {head} — ejecuta: "
            "posventa db upgrade",
        },
        "doctor_embedded": {
            "en": "prefect: embedded mode (POSVENTA_PREFECT_API_URL not set)",
            "es": "prefect: modo embebido (POSVENTA_PREFECT_API_URL no está definida)",
        },
        "doctor_sendgrid": {
            "en": "email: SendGrid at {host}, from {sender}",
            "es": "correo: SendGrid en {host}, desde {sender}",
        },
        "doctor_journeys": {
            "en": ("journeys: {n} valid in {path}", "journeys: {n} valid in {path}"),
            "es": ("recorridos: {n} válido en {path}", "recorridos: {n} válidos en {path}"),
        },
        "doctor_bad_journeys": {
            "en": "journeys: {error} — run: posventa validate",
            "es": "recorridos: {error} — ejecuta: posventa validate",
        },
        "no_customer": {"en": "no customer '{id}'", "es": "no existe el cliente '{id}'"},
        "suppressions": {"en": "Suppressions", "es": "Bloqueos y bajas"},
        "open_complaint": {
            "en": "open complaint: promotions on hold",
            "es": "reclamación abierta: promociones en espera",
        },
        "journeys": {"en": "Journeys", "es": "Recorridos"},
        "messages": {"en": "Messages", "es": "Mensajes"},
        "customer_head": {
            "en": "Customer {id} · {email} · {locale} · {timezone} (times in {zone})",
            "es": "Cliente {id} · {email} · {locale} · {timezone} (horas en {zone})",
        },
        "none_yet": {"en": "none", "es": "ninguno"},
        "col_reason": {"en": "reason", "es": "motivo"},
        "col_scope": {"en": "scope", "es": "alcance"},
        "col_source": {"en": "source", "es": "origen"},
        "col_since": {"en": "since", "es": "desde"},
        "col_journey": {"en": "journey", "es": "recorrido"},
        "col_status": {"en": "status", "es": "estado"},
        "col_step": {"en": "step or reason", "es": "paso o motivo"},
        "col_next": {"en": "next due", "es": "vence"},
        "col_msg_step": {"en": "step", "es": "paso"},
        "col_at": {"en": "at", "es": "fecha"},
        # stored status values, as shown (the values themselves never change: JSON keeps them)
        "enrollment_active": {"en": "active", "es": "activa"},
        "enrollment_waiting": {"en": "waiting", "es": "en espera"},
        "enrollment_held": {"en": "held", "es": "retenida"},
        "enrollment_completed": {"en": "completed", "es": "completada"},
        "enrollment_exited": {"en": "exited", "es": "salió"},
        "enrollment_converted": {"en": "converted", "es": "convertida"},
        "enrollment_failed": {"en": "failed", "es": "con error"},
        "send_pending": {"en": "pending", "es": "pendiente"},
        "send_sending": {"en": "sending", "es": "enviándose"},
        "send_sent": {"en": "sent", "es": "enviado"},
        "send_failed": {"en": "failed", "es": "fallido"},
        "send_skipped": {"en": "skipped", "es": "omitido"},
        "send_unknown": {"en": "unknown", "es": "sin confirmar"},
        "journey_paused": {"en": "paused", "es": "en pausa"},
        "journey_draining": {"en": "draining", "es": "vaciándose"},
        "journey_stopped": {"en": "stopped", "es": "detenido"},
        "journey_running": {"en": "running", "es": "en marcha"},
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


def status_label(kind: str, value: str | None) -> str:
    """A stored status (``send``: a ledger row's; ``enrollment``; ``journey``) in the current language;
    an unknown value as it is."""
    if not value:
        return "-"
    found = t(f"{kind}_{value}")
    return value if found == f"{kind}_{value}" else found
