"""Outgoing journey webhooks over HTTP (:class:`app.ports.HttpClient`) with httpx: one pooled client,
safe to share between the threads that post concurrently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from app.ports import HttpAnswer


class HttpxClient:
    def __init__(self, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def post_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> HttpAnswer:
        """The status of the answer; no status when none came (timeout, connection lost): the request may
        have arrived, so the caller treats the outcome as unknown — unless no connection could be opened
        (refused, unknown host, connect timeout): then nothing was sent (``not_sent``)."""
        try:
            r = self._client.post(url, json=dict(body), headers=dict(headers))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return HttpAnswer(None, type(exc).__name__, not_sent=True)
        except httpx.HTTPError as exc:
            return HttpAnswer(None, type(exc).__name__)
        return HttpAnswer(r.status_code)

    def close(self) -> None:
        self._client.close()
