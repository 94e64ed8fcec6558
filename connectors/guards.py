"""The guards around every ccxt client: a garbled body is an error, not an empty answer;
an answer has a size limit; and no credential ever leaves in an error message or a log."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import aiohttp
import ccxt

from config import redaction

# The largest answer a client reads. The biggest we ask for (Binance USD-M exchangeInfo,
# every market with its filters) is about 2 MB; 60 MB from a broken or hostile endpoint
# once took the poller from 174 to 398 MB.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024


class AnswerTooLarge(ccxt.BadResponse):
    """The exchange's answer is larger than the limit; reading stopped at the limit."""


@functools.cache
def _capped_response(max_bytes: int) -> type[aiohttp.ClientResponse]:
    class CappedResponse(aiohttp.ClientResponse):
        """Reads the body in chunks and gives up past `max_bytes` (decompressed bytes, so
        a gzip bomb is stopped too) instead of reading whatever comes."""

        async def read(self) -> bytes:
            if self._body is None:
                try:
                    declared = self.content_length
                    if declared is not None and declared > max_bytes:
                        raise AnswerTooLarge(_too_large(self, declared, max_bytes))
                    chunks: list[bytes] = []
                    total = 0
                    async for chunk in self.content.iter_chunked(_CHUNK):
                        total += len(chunk)
                        if total > max_bytes:
                            raise AnswerTooLarge(_too_large(self, None, max_bytes))
                        chunks.append(chunk)
                    self._body = b"".join(chunks)
                except BaseException:
                    self.close()  # the rest is never read: drop the connection
                    raise
            return await super().read()

    return CappedResponse


def _too_large(response: aiohttp.ClientResponse, declared: int | None, max_bytes: int) -> str:
    size = f"{declared:,} bytes, more" if declared is not None else "more"
    return f"answer too large: {response.method} {response.url.path} sent {size} than the limit of {max_bytes:,} bytes"


def cap_answers(client: Any, max_bytes: int = MAX_ANSWER_BYTES) -> None:
    """Make `client` (ccxt.async_support) stop reading any answer past `max_bytes`, with
    AnswerTooLarge. ccxt creates its aiohttp session lazily in `open()`: the session it
    creates is given a response class that counts what it reads."""
    response_class = _capped_response(max_bytes)
    original = client.open

    def open(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        session = getattr(client, "session", None)
        if session is not None and getattr(session, "_response_class", None) is not response_class:
            session._response_class = response_class
        return result

    client.open = open


def guard_client(client: Any) -> None:
    """Every guard of this module on one ccxt.async_support client."""
    redaction.install()  # ccxt logs each request, headers included, at DEBUG
    reject_unparseable_json(client)
    cap_answers(client)


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
    secrets = tuple(secrets)
    redaction.register(secrets)
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
