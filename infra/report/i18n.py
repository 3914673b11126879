"""The report's labels in Spanish and English. Keys are the model's field names where there is one, so a
renderer labels a number by the name it has in the JSON."""

from __future__ import annotations

from infra.report.model import ReportError

LOCALES = ("es", "en")
DEFAULT_LOCALE = "es"

LABELS: dict[str, dict[str, str]] = {
    "title": {"es": "Posventa — informe de resultados", "en": "Posventa — results report"},
    "period": {"es": "Periodo", "en": "Period"},
    "since_start": {"es": "desde el principio", "en": "from the start"},
    "until_now": {"es": "hasta ahora", "en": "until now"},
    "as_of": {"es": "a fecha de", "en": "as of"},
    "generated_at": {"es": "generado", "en": "generated"},
    "journey": {"es": "Recorrido", "en": "Journey"},
    "all_journeys": {"es": "todos", "en": "all"},
    "no_data": {"es": "sin datos", "en": "no data"},
    "funnel": {"es": "Embudo por recorrido y paso", "en": "Funnel by journey and step"},
    "journey_summary": {
        "es": "{entered} inscripciones · {converted} conversiones ({rate}) · ingresos {revenue}",
        "en": "{entered} enrollments · {converted} conversions ({rate}) · revenue {revenue}",
    },
    "step_id": {"es": "paso", "en": "step"},
    "variant": {"es": "variante", "en": "variant"},
    "entered": {"es": "llegaron", "en": "entered"},
    "due": {"es": "previstos", "en": "due"},
    "sent": {"es": "enviados", "en": "sent"},
    "skipped": {"es": "omitidos", "en": "skipped"},
    "failed": {"es": "fallidos", "en": "failed"},
    "delivered": {"es": "entregados", "en": "delivered"},
    "bounced": {"es": "rebotes", "en": "bounced"},
    "dropped": {"es": "descartados", "en": "dropped"},
    "opened": {"es": "abiertos", "en": "opened"},
    "clicked": {"es": "clics", "en": "clicked"},
    "unsubscribed": {"es": "bajas", "en": "unsubscribed"},
    "spam_reports": {"es": "spam", "en": "spam"},
    "converted": {"es": "convertidos", "en": "converted"},
    "revenue": {"es": "ingresos", "en": "revenue"},
    "median_time_to_step_s": {"es": "mediana hasta el paso", "en": "median time to step"},
    "statuses": {"es": "estados", "en": "statuses"},
    "diagram": {"es": "Diagrama con recuentos", "en": "Diagram with counts"},
    "reached": {"es": "llegaron", "en": "reached"},
    "here_now": {"es": "ahora aquí", "en": "here now"},
    "diagram_fallback": {
        "es": "Graphviz (dot) no está instalado: recuentos por paso en forma de tabla.",
        "en": "Graphviz (dot) is not installed: counts per step as a table.",
    },
    "type": {"es": "tipo", "en": "type"},
    "splits": {"es": "Pruebas A/B frente al grupo de control", "en": "Splits against the holdout"},
    "split_note": {
        "es": "Conversión: otro pedido después de entrar en el recorrido. Diferencia frente al grupo de "
        "control con intervalo de confianza del 95 % (Newcombe).",
        "en": "Conversion: another order after entering the journey. Difference to the holdout with a 95% "
        "confidence interval (Newcombe).",
    },
    "enrolled": {"es": "inscritos", "en": "enrolled"},
    "conversion_rate": {"es": "tasa de conversión", "en": "conversion rate"},
    "difference": {"es": "diferencia (IC 95 %)", "en": "difference (95% CI)"},
    "holdout": {"es": "control", "en": "holdout"},
    "nps": {"es": "NPS", "en": "NPS"},
    "nps_summary": {
        "es": "NPS {nps} · {responses} respuestas: {promoters} promotores, {passives} pasivos, "
        "{detractors} detractores",
        "en": "NPS {nps} · {responses} answers: {promoters} promoters, {passives} passives, "
        "{detractors} detractors",
    },
    "by_week": {"es": "por semana", "en": "by week"},
    "by_journey": {"es": "por recorrido", "en": "by journey"},
    "by_product": {"es": "por producto", "en": "by product"},
    "by_locale": {"es": "por idioma", "en": "by language"},
    "responses": {"es": "respuestas", "en": "answers"},
    "promoters": {"es": "promotores", "en": "promoters"},
    "passives": {"es": "pasivos", "en": "passives"},
    "detractors": {"es": "detractores", "en": "detractors"},
    "latest_comments": {"es": "Últimos comentarios", "en": "Latest comments"},
    "score": {"es": "nota", "en": "score"},
    "week": {"es": "semana", "en": "week"},
    "on_time_delivery": {"es": "Entrega en el plazo prometido", "en": "On-time delivery"},
    "on_time_summary": {
        "es": "{rate} a tiempo · {on_time} de {delivered} entregas; {late} tarde (media {average} días, "
        "máximo {max} días) · {without_promise} sin fecha prometida · {overdue} vencidos sin entregar",
        "en": "{rate} on time · {on_time} of {delivered} deliveries; {late} late (average {average} days, "
        "at most {max} days) · {without_promise} without a promised date · {overdue} overdue, not delivered",
    },
    "on_time_rate": {"es": "a tiempo", "en": "on time"},
    "repeat_purchase": {"es": "Recompra", "en": "Repeat purchase"},
    "repeat_summary": {
        "es": "{customers} clientes con su primera compra en el periodo",
        "en": "{customers} customers with their first purchase in the period",
    },
    "window_days": {"es": "ventana (días)", "en": "window (days)"},
    "eligible": {"es": "clientes con la ventana cumplida", "en": "customers past the window"},
    "repeated": {"es": "volvieron a comprar", "en": "bought again"},
    "rate": {"es": "tasa", "en": "rate"},
    "churn": {"es": "Abandono", "en": "Churn"},
    "churn_summary": {
        "es": "{rate}: {churned} de {customers} clientes sin comprar en los últimos {days} días",
        "en": "{rate}: {churned} of {customers} customers with no purchase in the last {days} days",
    },
    "referral": {"es": "Referidos", "en": "Referrals"},
    "referral_summary": {
        "es": "{codes} códigos enviados → {clicked} con clics ({clicks} clics) → {orders} pedidos → "
        "ingresos {revenue}",
        "en": "{codes} codes sent → {clicked} clicked ({clicks} clicks) → {orders} orders → "
        "revenue {revenue}",
    },
    "complaints": {"es": "Reclamaciones y tickets", "en": "Complaints and tickets"},
    "category": {"es": "categoría", "en": "category"},
    "opened_tickets": {"es": "abiertos", "en": "opened"},
    "resolved": {"es": "resueltos", "en": "resolved"},
    "still_open": {"es": "siguen abiertos", "en": "still open"},
    "median_resolution_s": {"es": "mediana de resolución", "en": "median time to resolve"},
    "complaint": {"es": "reclamación", "en": "complaint"},
    "support": {"es": "soporte", "en": "support"},
    "return": {"es": "devolución", "en": "return"},
    "warranty": {"es": "garantía", "en": "warranty"},
    "notes": {"es": "Notas", "en": "Notes"},
    "deferred": {"es": "aplazados", "en": "deferred"},
    "deferred_note": {
        "es": "«aplazados»: mensajes distintos que esperaron al vencer (horas de silencio, límite de "
        "frecuencia o reclamación abierta), una vez cada uno por mucho que esperaran.",
        "en": "'deferred': distinct messages that waited when due (quiet hours, a frequency cap or an open "
        "complaint), once each however long they waited.",
    },
    "kpi_summary": {"es": "Resumen de KPI", "en": "KPI summary"},
    "messages": {"es": "Mensajes", "en": "Messages"},
    "journeys": {"es": "Recorridos", "en": "Journeys"},
    "condition": {"es": "condición", "en": "condition"},
    "no_webhook": {"es": "s/d (sin datos del webhook)", "en": "n/a (no Event Webhook data)"},
    "no_webhook_note": {
        "es": "entregados, abiertos, clics: s/d (sin datos del webhook) — configure el Event Webhook de "
        "SendGrid para medirlos.",
        "en": "delivered, opened, clicked: n/a (no Event Webhook data) — set up SendGrid's Event Webhook "
        "to measure them.",
    },
    "messages_summary_no_webhook": {
        "es": "{sent} enviados · entregados, abiertos, clics: {na} · {deferred} aplazados",
        "en": "{sent} sent · delivered, opened, clicked: {na} · {deferred} deferred",
    },
    "messages_summary": {
        "es": "{sent} enviados · {delivered} entregados ({delivery}) · {opened} abiertos ({open}) · "
        "{clicked} con clic ({click}) · {deferred} aplazados",
        "en": "{sent} sent · {delivered} delivered ({delivery}) · {opened} opened ({open}) · "
        "{clicked} clicked ({click}) · {deferred} deferred",
    },
    "on_time_short": {
        "es": "{rate} a tiempo ({on_time} de {delivered} entregas; retraso medio {average} días)",
        "en": "{rate} on time ({on_time} of {delivered} deliveries; {average} days late on average)",
    },
    "chart_funnel": {"es": "Embudo", "en": "Funnel"},
    "chart_count": {"es": "mensajes o inscripciones", "en": "messages or enrollments"},
    "chart_stage": {"es": "etapa", "en": "stage"},
    "chart_nps": {"es": "NPS por semana", "en": "NPS by week"},
    "chart_on_time": {"es": "Entregas a tiempo por semana", "en": "On-time deliveries by week"},
    "none": {"es": "—", "en": "—"},
}


def label(key: str, locale: str, **values: object) -> str:
    """The label in ``locale`` (English when the locale has none), formatted with ``values``."""
    entry = LABELS.get(key)
    if entry is None:
        return key
    text = entry.get(locale) or entry["en"]
    return text.format(**values) if values else text


def check_locale(locale: str) -> str:
    """``locale`` if the report speaks it; a ReportError naming the choices otherwise."""
    if locale not in LOCALES:
        raise ReportError(f"unknown locale {locale!r}; use one of {', '.join(LOCALES)}")
    return locale
