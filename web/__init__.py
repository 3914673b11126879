"""The web app: what customers and shops touch (events API, survey, unsubscribe, referral, webhooks).

``create_app`` (``web.app``) builds the FastAPI application around the use cases
(:class:`app.services.Services`);
``serve`` runs it with uvicorn (``posventa serve``).
"""
