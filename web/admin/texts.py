"""Texts of the /admin pages in Spanish and English (their own catalogue, like ``web.i18n``'s for the
customer pages; the language is picked the same way: ``?lang=``, else the browser's, else Spanish)."""

from __future__ import annotations

from collections.abc import Callable

from web import i18n

TEXTS: dict[str, dict[str, str]] = {
    "admin": {"es": "Administración", "en": "Admin"},
    "login_title": {"es": "Entrar", "en": "Sign in"},
    "username": {"es": "Usuario", "en": "User name"},
    "password": {"es": "Contraseña", "en": "Password"},
    "login_button": {"es": "Entrar", "en": "Sign in"},
    "logout": {"es": "Salir", "en": "Sign out"},
    "signed_in_as": {"es": "Sesión de {name}", "en": "Signed in as {name}"},
    "login_failed": {
        "es": "Usuario o contraseña incorrectos.",
        "en": "Wrong user name or password.",
    },
    "login_limited": {
        "es": "Demasiados intentos. Espera {seconds} segundos y vuelve a intentarlo.",
        "en": "Too many attempts. Please wait {seconds} seconds and try again.",
    },
    "login_expired_form": {
        "es": "El formulario ha caducado. Vuelve a intentarlo.",
        "en": "The form expired. Please try again.",
    },
    "signed_out": {"es": "Has salido.", "en": "You have signed out."},
    "login_hint": {
        "es": "Las cuentas se crean con «posventa admin-user add <usuario>».",
        "en": "Accounts are created with “posventa admin-user add <name>”.",
    },
    "other_lang": {"es": "English", "en": "Español"},
    # navigation
    "nav_journeys": {"es": "Recorridos", "en": "Journeys"},
    "nav_report": {"es": "Informe", "en": "Report"},
    "nav_customer": {"es": "Clientes", "en": "Customers"},
    # journeys
    "journeys_title": {"es": "Recorridos", "en": "Journeys"},
    "journeys_intro": {
        "es": "Cifras en vivo: inscripciones por estado ahora mismo, desde el principio.",
        "en": "Live figures: enrollments by status right now, since the start.",
    },
    "no_journeys": {
        "es": "Aún no hay recorridos publicados ni inscripciones.",
        "en": "No journeys published and no enrollments yet.",
    },
    "col_journey": {"es": "Recorrido", "en": "Journey"},
    "col_state": {"es": "Estado", "en": "State"},
    "col_version": {"es": "Versión", "en": "Version"},
    "col_entered": {"es": "Entradas", "en": "Entered"},
    "col_live": {"es": "En curso", "en": "In progress"},
    "col_converted": {"es": "Convertidas", "en": "Converted"},
    "col_revenue": {"es": "Ingresos", "en": "Revenue"},
    "state_running": {"es": "en marcha", "en": "running"},
    "state_paused": {"es": "en pausa", "en": "paused"},
    "state_draining": {"es": "vaciándose", "en": "draining"},
    "state_stopped": {"es": "detenido", "en": "stopped"},
    "state_none": {"es": "sin publicar", "en": "not published"},
    "status_active": {"es": "activas", "en": "active"},
    "status_waiting": {"es": "esperando", "en": "waiting"},
    "status_held": {"es": "retenidas", "en": "held"},
    "status_completed": {"es": "completadas", "en": "completed"},
    "status_exited": {"es": "salidas", "en": "exited"},
    "status_converted": {"es": "convertidas", "en": "converted"},
    "status_failed": {"es": "fallidas", "en": "failed"},
    # journey page
    "journey_title": {"es": "Recorrido {journey}", "en": "Journey {journey}"},
    "unknown_journey": {
        "es": "No hay ningún recorrido «{journey}».",
        "en": "There is no journey “{journey}”.",
    },
    "diagram": {"es": "Diagrama con cifras", "en": "Diagram with counts"},
    "no_diagram": {
        "es": "Sin diagrama: falta Graphviz (make browser-deps) o el plan del recorrido.",
        "en": "No diagram: Graphviz is missing (make browser-deps) or the journey's plan is.",
    },
    "steps": {"es": "Pasos", "en": "Steps"},
    "col_step": {"es": "Paso", "en": "Step"},
    "col_type": {"es": "Tipo", "en": "Type"},
    "col_detail": {"es": "Detalle", "en": "Detail"},
    "col_reached": {"es": "Llegaron", "en": "Reached"},
    "col_here_now": {"es": "Ahora aquí", "en": "Here now"},
    "funnel": {"es": "Embudo", "en": "Funnel"},
    "no_funnel": {"es": "Aún no hay envíos en este periodo.", "en": "No sends in this period yet."},
    "full_report": {"es": "Informe completo de este recorrido", "en": "Full report for this journey"},
    # report filters
    "filter_since": {"es": "Desde", "en": "Since"},
    "filter_until": {"es": "Hasta (excluido)", "en": "Until (exclusive)"},
    "filter_journey": {"es": "Recorrido", "en": "Journey"},
    "all_journeys": {"es": "todos", "en": "all"},
    "apply": {"es": "Aplicar", "en": "Apply"},
    "bad_filter": {"es": "Filtro no válido: {problem}", "en": "Invalid filter: {problem}"},
    # customer
    "customer_title": {"es": "Cliente", "en": "Customer"},
    "customer_id": {"es": "Id de cliente", "en": "Customer id"},
    "search": {"es": "Buscar", "en": "Search"},
    "no_customer": {"es": "No hay ningún cliente «{id}».", "en": "There is no customer “{id}”."},
    "customer_intro": {
        "es": "Escribe el id de un cliente para ver su historial: eventos, mensajes, respuestas y tickets.",
        "en": "Type a customer id to see their timeline: events, messages, answers and tickets.",
    },
    "timeline": {"es": "Historial", "en": "Timeline"},
    "email": {"es": "Correo", "en": "Email"},
    "locale": {"es": "Idioma", "en": "Language"},
    "timezone": {"es": "Zona horaria", "en": "Time zone"},
    "consent": {"es": "Acepta correos promocionales", "en": "Accepts promotional email"},
    "yes": {"es": "sí", "en": "yes"},
    "no": {"es": "no", "en": "no"},
    "enrollments": {"es": "Recorridos", "en": "Journeys"},
    "suppressed": {"es": "Bloqueos de envío", "en": "Suppressions"},
    "open_complaint": {"es": "Tiene una queja abierta", "en": "Has an open complaint"},
    "col_when": {"es": "Cuándo", "en": "When"},
    "col_kind": {"es": "Tipo", "en": "Kind"},
    "col_what": {"es": "Qué", "en": "What"},
    "col_status": {"es": "Estado", "en": "Status"},
    "col_step_now": {"es": "Paso actual", "en": "Current step"},
    "col_entered_at": {"es": "Entrada", "en": "Entered"},
    "kind_event": {"es": "evento", "en": "event"},
    "kind_message": {"es": "mensaje", "en": "message"},
    "kind_action": {"es": "acción", "en": "action"},
    "kind_email": {"es": "correo", "en": "email"},
    "kind_deferral": {"es": "aplazado", "en": "deferred"},
    "kind_answer": {"es": "respuesta", "en": "answer"},
    "kind_ticket": {"es": "ticket", "en": "ticket"},
    "kind_enrollment": {"es": "recorrido", "en": "journey"},
    "truncated": {
        "es": "Se muestran las {n} entradas más recientes.",
        "en": "Showing the {n} most recent entries.",
    },
    "empty_timeline": {"es": "Nada todavía.", "en": "Nothing yet."},
}


def text(key: str, lang: str, **values: object) -> str:
    return i18n.text_in(TEXTS, key, lang, **values)


def translator(lang: str) -> Callable[..., str]:
    return i18n.translator(lang, TEXTS)
