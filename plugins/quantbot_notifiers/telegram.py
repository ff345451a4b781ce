"""`telegram` notifier: sends chosen events to a chat through the Bot API's sendMessage.

The bot token is a Secret and sits in the request path, so no URL, request or exception text is
ever logged: only the status and Telegram's own `description`. 429 replies are retried after
`parameters.retry_after` (or the Retry-After header), 5xx and timeouts with jittered backoff.
"""

from __future__ import annotations

import html
import re
from typing import Annotated, Any, Literal

import aiohttp
import msgspec

from quantbot.api import RETRYABLE_STATUS, Event, Secret, retry_after

from .messaging import Attempt, MessageNotifier, MessagingConfig

MAX_TEXT = 4096
"""Telegram refuses longer messages."""

_MARKDOWN_V2 = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


class TelegramConfig(MessagingConfig, frozen=True, kw_only=True):
    bot_token: Annotated[Secret, msgspec.Meta(description="the bot's token from @BotFather (a secret)")]
    chat_id: Annotated[str, msgspec.Meta(description="chat, group or channel id (e.g. -1001234567890 or @channel)")]
    parse_mode: Annotated[
        Literal["", "HTML", "MarkdownV2"],
        msgspec.Meta(description="markup of the templates; event values are escaped for it"),
    ] = ""
    base_url: Annotated[str, msgspec.Meta(description="Bot API server")] = "https://api.telegram.org"
    disable_notification: Annotated[bool, msgspec.Meta(description="deliver silently")] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.chat_id:
            raise ValueError("chat_id: give the chat to send to")
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url: expected an http(s) URL, got {self.base_url!r}")


class TelegramNotifier(MessageNotifier):
    Config = TelegramConfig
    config: TelegramConfig

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._session.close()

    def escape(self, text: str) -> str:
        if self.config.parse_mode == "HTML":
            return html.escape(text, quote=False)
        if self.config.parse_mode == "MarkdownV2":
            return _MARKDOWN_V2.sub(r"\\\1", text)
        return text

    async def deliver(self, text: str, event: Event) -> Attempt:
        body: dict[str, Any] = {"chat_id": self.config.chat_id, "text": text[:MAX_TEXT]}
        if self.config.parse_mode:
            body["parse_mode"] = self.config.parse_mode
        if self.config.disable_notification:
            body["disable_notification"] = True
        url = f"{self.config.base_url.rstrip('/')}/bot{self.config.bot_token.reveal()}/sendMessage"
        async with self._session.post(url, json=body) as resp:
            try:
                reply = await resp.json(content_type=None)
            except ValueError:
                reply = {}
        if not isinstance(reply, dict):
            reply = {}
        if resp.status == 200 and reply.get("ok") is True:
            return Attempt(ok=True)
        detail = f"HTTP {resp.status}: {reply.get('description', '')}".strip()
        if resp.status == 429:
            params = reply.get("parameters")
            wait = params.get("retry_after") if isinstance(params, dict) else None
            if not isinstance(wait, int | float):
                wait = retry_after(resp.headers)
            return Attempt(ok=False, retry=True, wait=float(wait) if wait is not None else None, detail=detail)
        return Attempt(ok=False, retry=resp.status in RETRYABLE_STATUS, detail=detail)
