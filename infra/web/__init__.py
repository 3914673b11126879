"""The web app: what customers and shops touch (events API, survey, unsubscribe, referral, webhooks).

``create_app`` (``infra.web.app``) builds the FastAPI application around a :class:`infra.runtime.Runtime`;
``serve`` runs it with uvicorn (``posventa serve``).
"""
