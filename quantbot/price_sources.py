"""HTTP price sources for the PriceBook: Jupiter Price API v3, DexScreener, CoinGecko.

Each source turns a set of tokens into `SourceQuote`s (USD per whole token, and native per whole
token where the venue quotes against SOL/APT). Every request has a timeout, is retried with
quantbot.retry.Backoff (GETs are idempotent) and honours 429 / Retry-After.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from quantbot.assets import USDC_SOLANA, WSOL, is_native, normalise, stable
from quantbot.clock import Clock
from quantbot.config import PriceSourceConfig
from quantbot.retry import RETRYABLE_STATUS, Backoff, retry_after

log = structlog.get_logger(component="prices")

DEFAULT_BASE = {
    "jupiter": "https://api.jup.ag",
    "dexscreener": "https://api.dexscreener.com",
    "coingecko": "https://api.coingecko.com/api/v3",
}
NATIVE_ID = "native"
"""The token id a SourceQuote uses for the chain's native coin (SOL, APT)."""

_JUPITER_BATCH = 50
_DEXSCREENER_BATCH = 30
_COINGECKO_BATCH = 30
_COINGECKO_IDS = {"solana": "solana", "aptos": "aptos"}
_DEXSCREENER_CHAINS = {"solana": "solana", "aptos": "aptos"}


class SourceError(Exception):
    """A source failed: unreachable after retries, a refusing status, or a reply of the wrong shape."""


@dataclass(frozen=True, slots=True)
class SourceQuote:
    chain: str
    token: str
    """A token id, or NATIVE_ID for the chain's native coin."""
    usd: Decimal | None = None
    """USD per whole token."""
    native: Decimal | None = None
    """Whole native coins per whole token."""
    decimals: int | None = None


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() and d > 0 else None


def _batches(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class HttpSource:
    """One configured source. `fetch(chain, tokens)` answers what it can; unknown tokens are left out."""

    def __init__(self, *, config: PriceSourceConfig, session: aiohttp.ClientSession, clock: Clock) -> None:
        self.config = config
        self.kind = config.kind
        self.name = config.kind
        self.base = (config.base_url or DEFAULT_BASE[config.kind]).rstrip("/")
        self.session = session
        self.clock = clock
        self.backoff = Backoff(base=0.5, cap=10.0, attempts=config.attempts - 1)
        self.requests = 0
        self.errors = 0
        self.rate_limited = 0

    def chains(self) -> tuple[str, ...]:
        return ("solana",) if self.kind == "jupiter" else ("solana", "aptos")

    async def fetch(self, chain: str, tokens: Sequence[str]) -> list[SourceQuote]:
        """Quotes for `tokens` on `chain` and, where the source knows it, the native coin's USD price."""
        if chain not in self.chains():
            return []
        if self.kind == "jupiter":
            return await self._jupiter(tokens)
        if self.kind == "dexscreener":
            return await self._dexscreener(chain, tokens)
        return await self._coingecko(chain, tokens)

    # --- wire formats ----------------------------------------------------------------------------

    async def _jupiter(self, tokens: Sequence[str]) -> list[SourceQuote]:
        ids = [WSOL, *[t for t in tokens if t != WSOL]]
        out: list[SourceQuote] = []
        for batch in _batches(ids, _JUPITER_BATCH):
            body = await self.get_json(f"{self.base}/price/v3", params={"ids": ",".join(batch)})
            if not isinstance(body, dict):
                raise SourceError(f"jupiter: expected an object keyed by mint, got {type(body).__name__}")
            for mint, entry in body.items():
                if not isinstance(entry, dict):
                    continue  # Jupiter omits (or nulls) tokens without a reliable price
                usd = _dec(entry.get("usdPrice"))
                decimals = entry.get("decimals")
                if usd is None:
                    continue
                token = NATIVE_ID if mint == WSOL else mint
                out.append(
                    SourceQuote(
                        chain="solana", token=token, usd=usd, decimals=decimals if isinstance(decimals, int) else None
                    )
                )
        return out

    async def _dexscreener(self, chain: str, tokens: Sequence[str]) -> list[SourceQuote]:
        out: list[SourceQuote] = []
        want = [t for t in tokens if not is_native(chain, t)]
        for batch in _batches(want, _DEXSCREENER_BATCH):
            addresses = ",".join(quote(t, safe=":") for t in batch)
            body = await self.get_json(f"{self.base}/latest/dex/tokens/{addresses}")
            pairs = body.get("pairs") if isinstance(body, dict) else None
            if pairs is None:
                continue  # {"pairs": null}: none of these tokens has a pair
            if not isinstance(pairs, list):
                raise SourceError("dexscreener: `pairs` is not a list")
            best: dict[str, tuple[Decimal, dict[str, Any]]] = {}
            for pair in pairs:
                if not isinstance(pair, dict) or pair.get("chainId") != _DEXSCREENER_CHAINS[chain]:
                    continue
                base = normalise(chain, str((pair.get("baseToken") or {}).get("address", "")))
                if base not in batch:
                    continue
                liquidity = _dec((pair.get("liquidity") or {}).get("usd")) or Decimal(0)
                if base not in best or liquidity > best[base][0]:
                    best[base] = (liquidity, pair)
            for token, (_, pair) in best.items():
                quote_token = normalise(chain, str((pair.get("quoteToken") or {}).get("address", "")))
                price_native = _dec(pair.get("priceNative"))
                native = price_native if is_native(chain, quote_token) else None
                usd = _dec(pair.get("priceUsd"))
                if usd is None and price_native is not None and stable(chain, quote_token) is not None:
                    usd = price_native
                if usd is not None or native is not None:
                    out.append(SourceQuote(chain=chain, token=token, usd=usd, native=native))
        return out

    async def _coingecko(self, chain: str, tokens: Sequence[str]) -> list[SourceQuote]:
        body = await self.get_json(
            f"{self.base}/simple/price", params={"ids": _COINGECKO_IDS[chain], "vs_currencies": "usd"}
        )
        out: list[SourceQuote] = []
        usd = _dec(((body or {}).get(_COINGECKO_IDS[chain]) or {}).get("usd")) if isinstance(body, dict) else None
        if usd is not None:
            out.append(SourceQuote(chain=chain, token=NATIVE_ID, usd=usd))
        want = [t for t in tokens if not is_native(chain, t) and t != USDC_SOLANA]
        for batch in _batches(want, _COINGECKO_BATCH):
            body = await self.get_json(
                f"{self.base}/simple/token_price/{_COINGECKO_IDS[chain]}",
                params={"contract_addresses": ",".join(batch), "vs_currencies": "usd"},
            )
            if not isinstance(body, dict):
                raise SourceError("coingecko: expected an object keyed by contract address")
            # CoinGecko may answer with lower-cased keys; Solana mints are case-sensitive, so match both.
            lowered = {str(k).lower(): v for k, v in body.items()}
            for token in batch:
                entry = body.get(token) or lowered.get(token.lower())
                price = _dec(entry.get("usd")) if isinstance(entry, dict) else None
                if price is not None:
                    out.append(SourceQuote(chain=chain, token=token, usd=price))
        return out

    # --- transport -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        key = self.config.api_key.reveal() if self.config.api_key is not None else None
        if key:
            if self.kind == "jupiter":
                headers["x-api-key"] = key
            elif self.kind == "coingecko":
                pro = "pro-api.coingecko.com" in self.base
                headers["x-cg-pro-api-key" if pro else "x-cg-demo-api-key"] = key
        return headers

    async def get_json(self, url: str, *, params: Mapping[str, str] | None = None) -> Any:
        """GET with timeout, retries (jittered backoff) and Retry-After; raises SourceError when it gives up."""
        delays = self.backoff.delays()
        while True:
            wait: float | None = None
            self.requests += 1
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    async with self.session.get(url, params=params, headers=self._headers()) as resp:
                        if resp.status == 200:
                            return await resp.json(content_type=None)
                        if resp.status not in RETRYABLE_STATUS:
                            raise SourceError(f"{self.kind}: HTTP {resp.status} from {url}")
                        if resp.status == 429:
                            self.rate_limited += 1
                        wait = retry_after(resp.headers, now=self.clock.now())
                        problem = f"HTTP {resp.status}"
            except TimeoutError:
                problem = f"no reply within {self.config.timeout_s}s"
            except aiohttp.ClientError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except ValueError as exc:  # JSON that does not decode
                raise SourceError(f"{self.kind}: reply from {url} is not JSON: {exc}") from None
            delay = next(delays, None)
            if delay is None:
                raise SourceError(f"{self.kind}: {problem} from {url}; gave up after {self.config.attempts} attempts")
            delay = max(delay, wait or 0.0)
            log.info("prices.source_retry", source=self.kind, problem=problem, delay_s=round(delay, 3))
            await self.clock.sleep(delay)
