"""Two guards around every ccxt client: a garbled body is an error, not an empty answer;
and no credential ever leaves in an error message."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import ccxt


def reject_unparseable_json(client: Any) -> None:
    """ccxt hands an unparseable JSON body on as text, and the venues' parsers then read it
    as an empty answer (fetch_positions -> []): a monitor would report a liquidated book
    as flat. Raise BadResponse instead (a temporary error: retried, then stale)."""
    original = client.on_rest_response

    def on_rest_response(
        code: int, reason: str, url: str, method: str, headers: dict, body: str, request_headers: Any, request_body: Any
    ) -> str:
        body = original(code, reason, url, method, headers, body, request_headers, request_body)
        content_type = next((str(v) for k, v in (headers or {}).items() if k.lower() == "content-type"), "")
        if body and "json" in content_type:
            try:
                json.loads(body)
            except ValueError:
                raise ccxt.BadResponse(f"{client.id} sent unparseable JSON ({len(body)} bytes)") from None
        return body

    client.on_rest_response = on_rest_response


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every credential replaced by ***. Bybit's signature error, for one,
    echoes the signed string, API key included."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
