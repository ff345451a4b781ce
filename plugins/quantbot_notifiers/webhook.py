"""`webhook` notifier: POSTs chosen events as JSON, optionally signed with HMAC-SHA256.

Body: `{"topic", "text", "event"}` (the event as in the MQTT/replay JSON). With `hmac_key` set, the
header `X-Quantbot-Signature: sha256=<hex HMAC of the exact body bytes>` lets the receiver verify it;
`X-Quantbot-Event` carries `<origin>:<id>` so it can drop a retried delivery it already has.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

import aiohttp
import msgspec

from quantbot.api import RETRYABLE_STATUS, Event, Secret, retry_after

from .messaging import Attempt, MessageNotifier, MessagingConfig

_encoder = msgspec.json.Encoder(decimal_format="string")


class WebhookConfig(MessagingConfig, frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(description="where to POST; use url_secret if the URL holds a token")] = ""
    url_secret: Annotated[Secret | None, msgspec.Meta(description="the URL as a secret (Slack/Discord-style URLs)")] = (
        None
    )
    hmac_key: Annotated[Secret | None, msgspec.Meta(description="key for the HMAC-SHA256 signature header")] = None
    signature_header: Annotated[str, msgspec.Meta(description="header carrying sha256=<hex>")] = "X-Quantbot-Signature"
    headers: Annotated[dict[str, str], msgspec.Meta(description="extra request headers")] = {}
    secret_headers: Annotated[
        dict[str, Secret], msgspec.Meta(description="extra headers whose values are secrets (Authorization)")
    ] = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.url) == (self.url_secret is not None):
            raise ValueError("give exactly one of url or url_secret")
        if self.url and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"url: expected an http(s) URL, got {self.url!r}")


class WebhookNotifier(MessageNotifier):
    Config = WebhookConfig
    config: WebhookConfig

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._session.close()

    def body(self, text: str, event: Event) -> bytes:
        return _encoder.encode({"topic": event.topic, "text": text, "event": event})

    def sign(self, body: bytes) -> str | None:
        if self.config.hmac_key is None:
            return None
        return "sha256=" + hmac.new(self.config.hmac_key.reveal().encode(), body, hashlib.sha256).hexdigest()

    async def deliver(self, text: str, event: Event) -> Attempt:
        body = self.body(text, event)
        headers = dict(self.config.headers)
        headers.update({k: v.reveal() for k, v in self.config.secret_headers.items()})
        headers["Content-Type"] = "application/json"
        headers["X-Quantbot-Event"] = f"{event.origin}:{event.id}"
        signature = self.sign(body)
        if signature is not None:
            headers[self.config.signature_header] = signature
        url = self.config.url_secret.reveal() if self.config.url_secret is not None else self.config.url
        async with self._session.post(url, data=body, headers=headers) as resp:
            await resp.read()
        if 200 <= resp.status < 300:
            return Attempt(ok=True)
        detail = f"HTTP {resp.status}"
        if resp.status in RETRYABLE_STATUS:
            return Attempt(ok=False, retry=True, wait=retry_after(resp.headers), detail=detail)
        return Attempt(ok=False, detail=detail)
