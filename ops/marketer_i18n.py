"""The marketer commands' text in Spanish and English (their own catalogue, in the language the
``posventa`` command chose)."""

from __future__ import annotations

from posventa.i18n import Catalogue

MARKETER = Catalogue(
    {
        # command help
        "help_preview": {
            "en": "show a step's email as a customer gets it (subject, headers, text; -o for HTML or .eml)",
            "es": "muestra el correo de un paso tal como lo recibe el cliente (asunto, cabeceras, texto)",
        },
        "help_send_test": {
            "en": "send a step's email to an allowed address, marked as a test",
            "es": "envía el correo de un paso a una dirección permitida, marcado como prueba",
        },
        "help_plan": {
            "en": "what publishing the journey files would change (exit 0: nothing, 2: changes, 1: invalid)",
            "es": "qué cambiaría publicar los recorridos (salida 0: nada, 2: cambios, 1: inválidos)",
        },
        "help_publish": {
            "en": "make the journey files the versions new customers get",
            "es": "publica los recorridos: quien entre desde ahora recibe la versión de los archivos",
        },
        "help_migrate": {
            "en": "move the customers inside a journey to another version",
            "es": "mueve a quienes están dentro de un recorrido a otra versión",
        },
        "help_pause": {
            "en": "pause a journey: nobody enters, nothing is sent, due steps wait",
            "es": "pausa un recorrido: nadie entra, no se envía nada, los pasos pendientes esperan",
        },
        "help_resume": {"en": "resume a journey", "es": "reanuda un recorrido"},
        "help_stop": {
            "en": "stop a journey: --drain lets those inside finish, --exit ends them now",
            "es": "detiene un recorrido: --drain deja terminar a quien está dentro, --exit los saca ya",
        },
        "help_environment": {
            "en": "show or mark this database as production (time travel is then refused)",
            "es": "muestra o marca esta base de datos como producción (entonces no se viaja en el tiempo)",
        },
        # arguments
        "arg_customer": {"en": "a customer id from the database", "es": "un cliente de la base de datos"},
        "arg_sample": {
            "en": "the built-in sample customer and order (default)",
            "es": "el cliente y el pedido de ejemplo (por defecto)",
        },
        "arg_output": {"en": "write FILE.html or FILE.eml", "es": "escribe ARCHIVO.html o ARCHIVO.eml"},
        "arg_open": {"en": "open the HTML in a browser", "es": "abre el HTML en el navegador"},
        "arg_to": {
            "en": "an address in POSVENTA_TEST_RECIPIENTS",
            "es": "una dirección de POSVENTA_TEST_RECIPIENTS",
        },
        "arg_version": {
            "en": "'live', a version or its first characters",
            "es": "'live', una versión o sus primeros caracteres",
        },
        "arg_map": {
            "en": "where the customers at a step go (repeatable)",
            "es": "adónde van los clientes de un paso (repetible)",
        },
        "arg_dry_run": {
            "en": "show who moves where; change nothing",
            "es": "muestra quién se mueve adónde; no cambia nada",
        },
        "arg_rerun": {
            "en": "allow moving customers back to a step they already did",
            "es": "permite devolver a alguien a un paso que ya hizo",
        },
        "arg_show": {"en": "customer ids listed per move", "es": "clientes listados por movimiento"},
        "arg_reason": {"en": "why (shown to ops)", "es": "por qué (lo ve operaciones)"},
        "arg_drain": {
            "en": "stop entries, let those inside finish",
            "es": "detiene las entradas; quien está dentro termina",
        },
        "arg_exit": {"en": "end every enrollment now", "es": "termina ya todas las inscripciones"},
        "arg_yes": {"en": "confirm", "es": "confirma"},
        "arg_at": {
            "en": "a virtual time, e.g. 2026-12-06T10:00 (not on production)",
            "es": "un instante virtual, p. ej. 2026-12-06T10:00 (no en producción)",
        },
        "arg_advance": {
            "en": "move the customer's virtual time on, e.g. 7d (not on production)",
            "es": "adelanta el reloj virtual del cliente, p. ej. 7d (no en producción)",
        },
        # preview, send-test
        "preview_head": {
            "en": "preview · {journey} › {step} · {locale} · {who} · draft {version}",
            "es": "vista previa · {journey} › {step} · {locale} · {who} · borrador {version}",
        },
        "sample_customer": {"en": "sample customer", "es": "cliente de ejemplo"},
        "customer": {"en": "customer {id}", "es": "cliente {id}"},
        "html_hint": {
            "en": "HTML: -o FILE.html (or --open); the whole message: -o FILE.eml",
            "es": "HTML: -o ARCHIVO.html (o --open); el mensaje completo: -o ARCHIVO.eml",
        },
        "written": {"en": "written to {path}", "es": "escrito en {path}"},
        "bad_output": {
            "en": "-o takes a .html or .eml file, not {path}",
            "es": "-o admite un archivo .html o .eml, no {path}",
        },
        "test_sent": {
            "en": "test message sent to {to} through {sender} ({id}); {used} of {limit} test sends this hour",
            "es": "mensaje de prueba enviado a {to} por {sender} ({id}); {used} de {limit} pruebas esta hora",
        },
        "test_failed": {
            "en": "the test message to {to} did not go out ({outcome}): {error}",
            "es": "el mensaje de prueba a {to} no salió ({outcome}): {error}",
        },
        # plan, publish
        "status_new": {"en": "new (never published)", "es": "nuevo (nunca publicado)"},
        "status_changed": {"en": "changed", "es": "con cambios"},
        "status_unchanged": {"en": "unchanged", "es": "sin cambios"},
        "status_removed": {
            "en": "file removed (still admitting: publish stops its entries)",
            "es": "archivo eliminado (aún admite: publicar detiene las entradas)",
        },
        "status_retired": {
            "en": "file removed (entries stopped)",
            "es": "archivo eliminado (entradas detenidas)",
        },
        "versions": {"en": "live {live} → draft {draft}", "es": "publicado {live} → borrador {draft}"},
        "live_only": {"en": "live {live}", "es": "publicado {live}"},
        "here_now": {"en": "{n} here now", "es": "{n} aquí ahora"},
        "template_changed": {"en": "template content {names}", "es": "contenido de la plantilla {names}"},
        "settings": {"en": "journey settings", "es": "ajustes del recorrido"},
        "order_changed": {"en": "step order changed", "es": "cambia el orden de los pasos"},
        "inside": {
            "en": (
                "{n} live enrollment inside: it keeps its version until posventa migrate",
                "{n} live enrollments inside: they keep their version until posventa migrate",
            ),
            "es": (
                "{n} inscripción activa dentro: sigue en su versión hasta posventa migrate",
                "{n} inscripciones activas dentro: siguen en su versión hasta posventa migrate",
            ),
        },
        "plan_summary": {
            "en": (
                "Plan: {n} journey to publish (posventa publish).",
                "Plan: {n} journeys to publish (posventa publish).",
            ),
            "es": (
                "Plan: {n} recorrido por publicar (posventa publish).",
                "Plan: {n} recorridos por publicar (posventa publish).",
            ),
        },
        "plan_nothing": {
            "en": "No changes: the database runs the journey files as they are.",
            "es": "Sin cambios: la base de datos ejecuta los recorridos tal como están en los archivos.",
        },
        "not_migrated_plan": {
            "en": "the database is not migrated (posventa db upgrade): nothing is published yet",
            "es": "la base de datos no está migrada (posventa db upgrade): aún no hay nada publicado",
        },
        "not_migrated": {
            "en": "the database is not migrated: run posventa db upgrade first",
            "es": "la base de datos no está migrada: ejecuta antes posventa db upgrade",
        },
        "published": {
            "en": "published {journey}: {old} → {new} (new customers get it now)",
            "es": "publicado {journey}: {old} → {new} (quien entre desde ahora recibe esta versión)",
        },
        "drained": {
            "en": "{journey}: file removed, entries stopped; those inside finish",
            "es": "{journey}: archivo eliminado, entradas detenidas; quien está dentro termina",
        },
        "publish_nothing": {"en": "nothing to publish", "es": "nada que publicar"},
        "migrate_hint": {
            "en": (
                "{n} live enrollment of {journey} stays on an earlier version: posventa migrate {journey} "
                "--to live --dry-run",
                "{n} live enrollments of {journey} stay on earlier versions: posventa migrate {journey} "
                "--to live --dry-run",
            ),
            "es": (
                "{n} inscripción activa de {journey} sigue en una versión anterior: posventa migrate "
                "{journey} --to live --dry-run",
                "{n} inscripciones activas de {journey} siguen en versiones anteriores: posventa migrate "
                "{journey} --to live --dry-run",
            ),
        },
        # migrate
        "migrate_head": {
            "en": "migrate {journey} → {version}{dry}",
            "es": "migrar {journey} → {version}{dry}",
        },
        "dry": {"en": " (dry run: nothing changed)", "es": " (simulacro: no se cambia nada)"},
        "moves_none": {
            "en": "nobody to move: every live enrollment is on that version",
            "es": "nadie que mover: todas las inscripciones activas están en esa versión",
        },
        "rerun_note": {
            "en": "runs the step again (already done once)",
            "es": "repite el paso (ya se hizo una vez)",
        },
        "unused_maps": {"en": "unused mappings: {maps}", "es": "correspondencias sin uso: {maps}"},
        "blocked": {"en": "blocked: {what}", "es": "bloqueo: {what}"},
        "migrated": {
            "en": (
                "{n} enrollment moved; the next sweep advances it on the new version",
                "{n} enrollments moved; the next sweep advances them on the new version",
            ),
            "es": (
                "{n} inscripción movida; el próximo barrido la avanza en la nueva versión",
                "{n} inscripciones movidas; el próximo barrido las avanza en la nueva versión",
            ),
        },
        # pause, resume, stop, environment
        "state_paused": {
            "en": "{journey}: paused — nobody enters, nothing is sent; due steps wait and waits keep "
            "counting (posventa resume {journey})",
            "es": "{journey}: en pausa — nadie entra, no se envía nada; los pasos pendientes esperan y las "
            "esperas siguen contando (posventa resume {journey})",
        },
        "state_running": {
            "en": "{journey}: running — what waited goes on at the next sweep",
            "es": "{journey}: en marcha — lo que esperaba sigue en el próximo barrido",
        },
        "state_draining": {
            "en": (
                "{journey}: draining — nobody enters; the {n} live enrollment inside finishes",
                "{journey}: draining — nobody enters; the {n} live enrollments inside finish",
            ),
            "es": (
                "{journey}: vaciándose — nadie entra; la {n} inscripción activa termina",
                "{journey}: vaciándose — nadie entra; las {n} inscripciones activas terminan",
            ),
        },
        "state_stopped": {
            "en": "{journey}: stopped ({reason}) — enrollments ended: {n} · pending messages skipped: {m}",
            "es": "{journey}: detenido ({reason}) — inscripciones terminadas: {n} · mensajes pendientes "
            "omitidos: {m}",
        },
        "already": {
            "en": "{journey}: already {state} since {since}{reason} — nothing changed",
            "es": "{journey}: ya estaba {state} desde {since}{reason}; no se cambia nada",
        },
        "already_running": {
            "en": "{journey}: already running — nothing changed",
            "es": "{journey}: ya estaba en marcha; no se cambia nada",
        },
        "word_paused": {"en": "paused", "es": "en pausa"},
        "word_draining": {"en": "draining", "es": "vaciándose"},
        "env_show": {
            "en": "environment: {env} (POSVENTA_ENVIRONMENT={setting}; database mark: {mark})",
            "es": "entorno: {env} (POSVENTA_ENVIRONMENT={setting}; marca en la base de datos: {mark})",
        },
        "env_marked": {
            "en": "this database is now marked production: posventa run --at/--advance is refused",
            "es": "esta base de datos queda marcada como producción: se rechaza posventa run --at/--advance",
        },
        "env_unmarked": {
            "en": "production mark removed from this database",
            "es": "se quitó la marca de producción de esta base de datos",
        },
        "env_confirm": {
            "en": "removing the production mark needs --yes",
            "es": "quitar la marca de producción requiere --yes",
        },
        "none": {"en": "none", "es": "ninguna"},
        # run --at / --advance
        "production_refused": {
            "en": "this is a production database: time travel (--at/--advance) is refused",
            "es": "esta es una base de datos de producción: no se permite viajar en el tiempo "
            "(--at/--advance)",
        },
        "clock_backwards": {
            "en": "customer {id} was already walked to {at}: time only moves forward",
            "es": "el reloj virtual del cliente {id} ya está en {at}: el tiempo solo avanza",
        },
        "virtual_time": {
            "en": "customer {id} advanced at virtual time {at}",
            "es": "cliente {id}: su recorrido avanzó al instante virtual {at}",
        },
        # doctor
        "doctor_placeholder": {
            "en": "shop policy {path}: {names} still the shipped example (write yours, delete the "
            "posventa:placeholder mark)",
            "es": (
                "política de la tienda {path}: {names} sigue con el ejemplo (escribe la tuya y borra la "
                "marca posventa:placeholder)",
                "política de la tienda {path}: {names} siguen con el ejemplo (escribe la tuya y borra la "
                "marca posventa:placeholder)",
            ),
        },
        "doctor_brand": {
            "en": "{setting} is the shipped placeholder ({value}): customers see it in every email",
            "es": "{setting} es el valor de ejemplo ({value}): los clientes lo ven en cada correo",
        },
        "doctor_links": {
            "en": "POSVENTA_PUBLIC_BASE_URL is {value}: customers cannot open the links in their emails",
            "es": "POSVENTA_PUBLIC_BASE_URL es {value}: los clientes no pueden abrir los enlaces de sus "
            "correos",
        },
        "doctor_shop_url": {
            "en": "POSVENTA_SHOP_URL is not set: referral links send friends to {value} (the Posventa "
            "server), not to the shop",
            "es": "POSVENTA_SHOP_URL no está definida: los enlaces de recomendación llevan a {value} (el "
            "servidor de Posventa), no a la tienda",
        },
        "doctor_first_run": {
            "en": "journeys not published yet: {names} — the first process (posventa serve, a worker, "
            "ingest) publishes them (POSVENTA_AUTO_PUBLISH_FIRST_RUN=true); to review them first: posventa "
            "plan, posventa publish",
            "es": "recorridos aún sin publicar: {names} — el primer proceso (posventa serve, un worker, "
            "ingest) los publica (POSVENTA_AUTO_PUBLISH_FIRST_RUN=true); para revisarlos antes: posventa "
            "plan, posventa publish",
        },
        "doctor_never_published": {
            "en": "journeys never published: {names} — nobody enters them (posventa plan, posventa publish)",
            "es": "recorridos nunca publicados: {names} — nadie entra en ellos (posventa plan, posventa "
            "publish)",
        },
        "doctor_unpublished": {
            "en": "journeys with unpublished changes: {names} (posventa plan)",
            "es": "recorridos con cambios sin publicar: {names} (posventa plan)",
        },
        "doctor_held": {
            "en": "journeys not running: {names}",
            "es": "recorridos que no están en marcha: {names}",
        },
    }
)
t = MARKETER.t
