"""Texts of the customer pages in Spanish and English.

The page language is ``?lang=`` if given, else the customer's locale from the database, else the
browser's ``Accept-Language``, else Spanish (the product's default locale).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

LANGS = ("es", "en")
DEFAULT_LANG = "es"

TEXTS: dict[str, dict[str, str]] = {
    # survey
    "thanks_title": {"es": "¡Gracias por tu respuesta!", "en": "Thank you for your answer!"},
    "thanks_title_name": {
        "es": "¡Gracias por tu respuesta, {name}!",
        "en": "Thank you for your answer, {name}!",
    },
    "your_answer": {"es": "Tu respuesta: {score} de 10.", "en": "Your answer: {score} out of 10."},
    "promoter": {
        "es": "¡Nos alegra muchísimo! Gracias por confiar en {brand}.",
        "en": "We're delighted! Thank you for trusting {brand}.",
    },
    "passive": {
        "es": "Gracias. Nos encantaría saber qué podemos hacer mejor.",
        "en": "Thank you. We'd love to know what we could do better.",
    },
    "detractor": {
        "es": "Sentimos que tu experiencia no haya sido buena. Revisaremos tu caso y te "
        "contactaremos para arreglarlo.",
        "en": "We're sorry your experience wasn't good. We'll look into it and get in touch to put it right.",
    },
    "question": {
        "es": "De 0 a 10, ¿qué probabilidad hay de que recomiendes {brand} a un amigo o familiar?",
        "en": "From 0 to 10, how likely are you to recommend {brand} to a friend or family member?",
    },
    "change_answer": {
        "es": "¿Te has equivocado de número? Pulsa otro para cambiar tu respuesta.",
        "en": "Picked the wrong number? Tap another one to change your answer.",
    },
    "scale_low": {"es": "0 = nada probable", "en": "0 = not at all likely"},
    "scale_high": {"es": "10 = muy probable", "en": "10 = extremely likely"},
    "score_label": {"es": "{score} de 10", "en": "{score} out of 10"},
    "comment_label": {
        "es": "¿Quieres contarnos algo más? (opcional)",
        "en": "Anything else you'd like to tell us? (optional)",
    },
    "comment_send": {"es": "Enviar comentario", "en": "Send comment"},
    "comment_thanks": {
        "es": "Hemos recibido tu comentario. ¡Gracias!",
        "en": "We've received your comment. Thank you!",
    },
    "comment_too_long": {
        "es": "Tu comentario es demasiado largo (máximo {n} caracteres).",
        "en": "Your comment is too long (at most {n} characters).",
    },
    # unsubscribe
    "unsub_title": {"es": "¿Quieres darte de baja?", "en": "Unsubscribe?"},
    "unsub_what": {
        "es": "Dejarás de recibir correos promocionales de {brand} en {email}.",
        "en": "You will stop receiving promotional emails from {brand} at {email}.",
    },
    "unsub_journey": {
        "es": "Este correo era parte de: «{journey}».",
        "en": "This email was part of: “{journey}”.",
    },
    "unsub_keep": {
        "es": "Seguirás recibiendo los correos sobre tus pedidos (confirmaciones, envíos).",
        "en": "You will still receive emails about your orders (confirmations, shipping).",
    },
    "unsub_button": {"es": "Darme de baja", "en": "Unsubscribe"},
    "unsub_done_title": {"es": "Baja confirmada", "en": "Unsubscribe confirmed"},
    "unsub_done": {
        "es": "Ya no recibirás correos promocionales de {brand} en {email}.",
        "en": "You will no longer receive promotional emails from {brand} at {email}.",
    },
    "unsub_sorry": {"es": "Sentimos verte marchar.", "en": "We're sorry to see you go."},
    # referral (no shop URL configured)
    "ref_title": {"es": "Te han recomendado {brand}", "en": "You've been recommended {brand}"},
    "ref_code": {
        "es": "Tu código de recomendación es {code}. Indícalo al hacer tu primer pedido.",
        "en": "Your referral code is {code}. Give it when you place your first order.",
    },
    "ref_unknown": {
        "es": "No reconocemos este código, pero eres bienvenido igualmente.",
        "en": "We don't recognise this code, but you're welcome all the same.",
    },
    # errors
    "invalid_title": {"es": "Este enlace no es válido", "en": "This link isn't valid"},
    "invalid_body": {
        "es": "Puede que se haya copiado incompleto. Vuelve a abrirlo desde el correo que te enviamos.",
        "en": "It may have been copied incompletely. Please open it again from the email we sent you.",
    },
    "expired_title": {"es": "Este enlace ha caducado", "en": "This link has expired"},
    "expired_body": {
        "es": "Por seguridad, los enlaces de nuestros correos caducan. Si necesitas algo, "
        "escríbenos a {support}.",
        "en": "For your security, the links in our emails expire. If you need anything, write "
        "to us at {support}.",
    },
    "limited_title": {"es": "Demasiadas solicitudes", "en": "Too many requests"},
    "limited_body": {
        "es": "Espera {seconds} segundos y vuelve a intentarlo.",
        "en": "Please wait {seconds} seconds and try again.",
    },
    "error_title": {"es": "Algo ha fallado", "en": "Something went wrong"},
    "error_body": {
        "es": "No es culpa tuya. Inténtalo de nuevo en unos minutos; si vuelve a pasar, escríbenos "
        "a {support}.",
        "en": "It's not your fault. Please try again in a few minutes; if it happens again, write "
        "to us at {support}.",
    },
    "not_found_title": {"es": "Esta página no existe", "en": "This page doesn't exist"},
    "not_found_body": {
        "es": "Revisa la dirección; si has llegado aquí desde un enlace nuestro, escríbenos a {support}.",
        "en": "Please check the address; if one of our links brought you here, write to us at {support}.",
    },
    "bad_form_title": {"es": "No hemos podido leer el formulario", "en": "We couldn't read the form"},
    "bad_form_body": {
        "es": "Vuelve a la página anterior e inténtalo de nuevo; si el texto es muy largo, acórtalo.",
        "en": "Please go back and try again; if your text is very long, shorten it.",
    },
    "request_id": {"es": "Código de la solicitud: {request_id}", "en": "Request code: {request_id}"},
    "other_lang": {"es": "English", "en": "Español"},
}


def text_in(texts: Mapping[str, Mapping[str, str]], key: str, lang: str, **values: object) -> str:
    """``key`` of the catalogue ``texts`` in ``lang`` (the default language when it has no translation)."""
    entry = texts[key]
    template = entry.get(lang) or entry[DEFAULT_LANG]
    return template.format(**values) if values else template


def text(key: str, lang: str, **values: object) -> str:
    return text_in(TEXTS, key, lang, **values)


def translator(lang: str, texts: Mapping[str, Mapping[str, str]] = TEXTS) -> Callable[..., str]:
    """``t("key", name=value)`` bound to ``lang`` (and a catalogue: the customer pages' by default), for
    templates."""

    def t(key: str, **values: object) -> str:
        return text_in(texts, key, lang, **values)

    return t


def normalise(lang: str | None) -> str | None:
    """``"en-GB"`` → ``"en"``; None for a language the pages do not speak."""
    if not lang:
        return None
    base = lang.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in LANGS else None


def from_accept_language(header: str | None) -> str | None:
    """The first supported language of an Accept-Language header, by quality."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        lang = normalise(name)
        if lang and quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else None


def pick(query: str | None, customer_locale: str | None, accept_language: str | None) -> str:
    return (
        normalise(query)
        or normalise(customer_locale)
        or from_accept_language(accept_language)
        or DEFAULT_LANG
    )
