"""Secret values from config: resolved once, never printed, scrubbed from every log line."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REDACTED = "***"


class Secret:
    """A secret value and where it came from. `str()` and `repr()` never show the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The value itself: hand it to the library that needs it, never to a log or an event."""
        return self._value

    def redacted(self) -> str:
        return f"{REDACTED} ({self.source})"

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.source, self._value) == (other.source, other._value)

    def __hash__(self) -> int:
        return hash((type(self), self.source))


class SigningKey(Secret):
    """A signing key: only from a file of mode 0600 or stricter, or a systemd credential."""

    __slots__ = ()


class Redactor:
    """Replaces every known secret value in strings (log lines, exception texts, reports)."""

    MIN_LEN = 4  # shorter values would redact ordinary words; config refuses them as secrets anyway

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Add values (after a reload the old ones stay: they may still sit in queued log lines)."""
        new = {s for s in secrets if len(s) >= self.MIN_LEN} - self._values
        if not new:
            return
        self._values |= new
        alternatives = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def scrub(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def scrub_any(self, value: Any) -> Any:
        """Scrub strings inside dicts, lists and tuples; other values pass unchanged."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Secret):
            return value.redacted()
        if isinstance(value, dict):
            return {k: self.scrub_any(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_any(v) for v in value)
        return value


URL_SCHEMES = ("http://", "https://", "ws://", "wss://")
_TOKEN_SEGMENT = 16
"""A URL path segment this long is taken for a token (QuickNode and others put the API key in the path)."""


def url_secrets(values: Any) -> set[str]:
    """The parts of every URL among `values` (nested dicts, lists, strings) that may be API keys: query values,
    long path segments and user-info. Config URLs are plain strings, so the Redactor must be told of these."""
    found: set[str] = set()
    if isinstance(values, str):
        if values.startswith(URL_SCHEMES):
            parts = urlsplit(values)
            found.update(v for _, v in parse_qsl(parts.query) if len(v) >= Redactor.MIN_LEN)
            found.update(seg for seg in parts.path.split("/") if len(seg) >= _TOKEN_SEGMENT)
            if parts.password:
                found.add(parts.password)
    elif isinstance(values, dict):
        for v in values.values():
            found |= url_secrets(v)
    elif isinstance(values, list | tuple):
        for v in values:
            found |= url_secrets(v)
    return found
