"""`blocklist` filter: refuse tokens by name/symbol regex or by creator address."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate


class BlocklistConfig(PluginConfig, frozen=True, kw_only=True):
    name_patterns: Annotated[
        tuple[str, ...], msgspec.Meta(description="regexes; a token whose name matches any is rejected")
    ] = ()
    symbol_patterns: Annotated[
        tuple[str, ...], msgspec.Meta(description="regexes; a token whose symbol matches any is rejected")
    ] = ()
    creators: Annotated[tuple[str, ...], msgspec.Meta(description="creator addresses whose tokens are rejected")] = ()
    ignore_case: Annotated[bool, msgspec.Meta(description="match regexes case-insensitively")] = True

    def __post_init__(self) -> None:
        for key in ("name_patterns", "symbol_patterns"):
            for pattern in getattr(self, key):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{key}: invalid regular expression {pattern!r}: {exc}") from None


def normalise(text: str) -> str:
    """NFKC-fold and drop control/format characters, so look-alike tricks match the plain pattern."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if unicodedata.category(ch) not in ("Cc", "Cf"))


class BlocklistFilter(Filter):
    Config = BlocklistConfig
    config: BlocklistConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self._compile()

    def reconfigure(self, config: PluginConfig) -> None:
        super().reconfigure(config)
        self._compile()

    def _compile(self) -> None:
        flags = re.IGNORECASE if self.config.ignore_case else 0
        self._names = [re.compile(p, flags) for p in self.config.name_patterns]
        self._symbols = [re.compile(p, flags) for p in self.config.symbol_patterns]
        self._creators = frozenset(self.config.creators)

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        launch, meta = candidate.launch, candidate.metadata
        if launch.creator and launch.creator in self._creators:
            return self.verdict(False, f"creator {launch.creator} is blocklisted", launch.creator)
        # Pool launches carry no name; the metadata look-up does.
        name = normalise(launch.name or (meta.name if meta else ""))
        symbol = normalise(launch.symbol or (meta.symbol if meta else ""))
        for rx in self._names:
            if rx.search(name):
                return self.verdict(False, f"name matches /{rx.pattern}/", name)
        for rx in self._symbols:
            if rx.search(symbol):
                return self.verdict(False, f"symbol matches /{rx.pattern}/", symbol)
        return self.verdict(True)
