"""HTTP price sources against local servers speaking Jupiter's, DexScreener's and CoinGecko's wire formats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from quantbot.assets import USDC_SOLANA, WSOL
from quantbot.bus import EventBus
from quantbot.clock import WallClock
from quantbot.config import PricesConfig, PriceSourceConfig
from quantbot.events import Event
from quantbot.price_sources import NATIVE_ID, HttpSource, SourceError, SourceQuote
from quantbot.prices import PriceBook
from quantbot.secrets import Secret

PUMP_MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
RAY_MINT = "4F4gGVBAWuKi3EpmYdhntXvCVFqZZqmrb1cqNGawpump"


@dataclass
class Upstream:
    """A local price API: what it answers, how often it refuses first, how slowly it replies."""

    answers: dict[str, Callable[[web.Request], Any]] = field(default_factory=dict)
    refuse_first: int = 0
    retry_after: str = "0"
    delay: float = 0.0
    requests: list[web.Request] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse_first > 0:
            self.refuse_first -= 1
            return web.json_response(
                {"error": "Too many requests"}, status=429, headers={"Retry-After": self.retry_after}
            )
        for prefix, answer in self.answers.items():
            if request.path.startswith(prefix):
                return web.json_response(answer(request))
        return web.json_response({"error": "not found"}, status=404)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    up = Upstream()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", up.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield up, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def jupiter_reply(request: web.Request) -> dict[str, Any]:
    """Jupiter Price API v3: keyed by mint; tokens without a reliable price are left out."""
    known = {
        WSOL: {"createdAt": "2024-06-05T08:55:25.527Z", "liquidity": 621679197.67, "usdPrice": 147.48,
               "blockId": 348004023, "decimals": 9, "priceChange24h": 1.29},
        USDC_SOLANA: {"createdAt": "2024-06-05T08:55:25.527Z", "liquidity": 522175174.66, "usdPrice": 0.9999,
                      "blockId": 348004025, "decimals": 6, "priceChange24h": -0.003},
        PUMP_MINT: {"createdAt": "2026-08-17T10:00:00.000Z", "liquidity": 41234.5, "usdPrice": 0.0000412,
                    "blockId": 348004020, "decimals": 6, "priceChange24h": -12.5},
    }  # fmt: skip
    return {mint: known[mint] for mint in request.query["ids"].split(",") if mint in known}


def source(base: str, kind: str, **kw: Any) -> PriceSourceConfig:
    return msgspec.convert({"kind": kind, "base_url": base, **kw}, PriceSourceConfig, dec_hook=lambda t, o: o)


async def test_jupiter_v3_reply_gives_usd_prices_with_decimals_and_sends_the_api_key(
    upstream: tuple[Upstream, str],
) -> None:
    up, base = upstream
    up.answers["/price/v3"] = jupiter_reply
    cfg = source(base, "jupiter", api_key=Secret("jup-test-key", "env:JUP"))
    async with aiohttp.ClientSession() as session:
        src = HttpSource(config=cfg, session=session, clock=WallClock())
        quotes = await src.fetch("solana", [PUMP_MINT, RAY_MINT])
    assert up.requests[0].headers["x-api-key"] == "jup-test-key"
    assert up.requests[0].query["ids"] == f"{WSOL},{PUMP_MINT},{RAY_MINT}"
    assert quotes == [
        SourceQuote(chain="solana", token=NATIVE_ID, usd=Decimal("147.48"), decimals=9),
        SourceQuote(chain="solana", token=PUMP_MINT, usd=Decimal("0.0000412"), decimals=6),
    ]


async def test_429_with_retry_after_is_honoured_then_the_reply_is_used(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.answers["/price/v3"] = jupiter_reply
    up.refuse_first, up.retry_after = 2, "0"
    async with aiohttp.ClientSession() as session:
        src = HttpSource(config=source(base, "jupiter", attempts=3), session=session, clock=WallClock())
        quotes = await src.fetch("solana", [])
    assert len(up.requests) == 3 and src.rate_limited == 2
    assert quotes[0].usd == Decimal("147.48")


async def test_rate_limit_that_outlasts_the_attempts_is_a_source_error(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.refuse_first = 10
    async with aiohttp.ClientSession() as session:
        src = HttpSource(config=source(base, "jupiter", attempts=2), session=session, clock=WallClock())
        with pytest.raises(SourceError, match="HTTP 429"):
            await src.fetch("solana", [])
    assert len(up.requests) == 2


async def test_slow_reply_times_out_and_is_retried_then_given_up(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.answers["/price/v3"] = jupiter_reply
    up.delay = 5.0
    async with aiohttp.ClientSession() as session:
        src = HttpSource(config=source(base, "jupiter", attempts=2, timeout_s=0.2), session=session, clock=WallClock())
        with pytest.raises(SourceError, match=r"no reply within 0\.2s"):
            await src.fetch("solana", [])
    assert len(up.requests) == 2


async def test_refusing_status_is_not_retried(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream  # no answers: 404
    async with aiohttp.ClientSession() as session:
        src = HttpSource(config=source(base, "jupiter", attempts=3), session=session, clock=WallClock())
        with pytest.raises(SourceError, match="HTTP 404"):
            await src.fetch("solana", [])
    assert len(up.requests) == 1


def dexscreener_reply(request: web.Request) -> dict[str, Any]:
    def pair(
        dex: str, quote: dict[str, str], native: str, usd: str, liq: float, chain: str = "solana"
    ) -> dict[str, Any]:
        return {
            "chainId": chain, "dexId": dex, "url": f"https://dexscreener.com/solana/{dex}",
            "pairAddress": f"{dex}Pair111111111111111111111111111111111111",
            "baseToken": {"address": PUMP_MINT, "name": "Test", "symbol": "TST"}, "quoteToken": quote,
            "priceNative": native, "priceUsd": usd, "txns": {"h24": {"buys": 10, "sells": 4}},
            "volume": {"h24": 1234.5}, "priceChange": {"h24": -3.2},
            "liquidity": {"usd": liq, "base": 1e9, "quote": 100.0}, "fdv": 41200, "pairCreatedAt": 1755424800000,
        }  # fmt: skip

    sol = {"address": WSOL, "name": "Wrapped SOL", "symbol": "SOL"}
    usdc = {"address": USDC_SOLANA, "name": "USD Coin", "symbol": "USDC"}
    return {
        "schemaVersion": "1.0.0",
        "pairs": [
            pair("pumpswap", sol, "0.000000280", "0.0000413", 80_000.0),
            pair("raydium", sol, "0.000000900", "0.000130", 500.0),  # thin pool: not the reference
            pair("meteora", usdc, "0.0000415", "0.0000415", 120_000.0),
            pair("other", sol, "1", "1", 10**9, chain="ethereum"),
        ],
    }


async def test_dexscreener_takes_the_most_liquid_pair_and_its_native_price_when_quoted_in_sol(
    upstream: tuple[Upstream, str],
) -> None:
    up, base = upstream
    up.answers["/latest/dex/tokens/"] = dexscreener_reply
    async with aiohttp.ClientSession() as session:
        src = HttpSource(config=source(base, "dexscreener"), session=session, clock=WallClock())
        quotes = await src.fetch("solana", [PUMP_MINT])
    assert up.requests[0].path == f"/latest/dex/tokens/{PUMP_MINT}"
    # The USDC pair is the most liquid: its USD price, no native price.
    assert quotes == [SourceQuote(chain="solana", token=PUMP_MINT, usd=Decimal("0.0000415"), native=None)]


async def test_coingecko_gives_native_usd_and_token_prices(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.answers["/simple/price"] = lambda r: {"solana": {"usd": 151.2}}
    up.answers["/simple/token_price/solana"] = lambda r: {PUMP_MINT.lower(): {"usd": 4.1e-05}}
    async with aiohttp.ClientSession() as session:
        cfg = source(base, "coingecko", api_key=Secret("cg-demo-key", "env:CG"))
        src = HttpSource(config=cfg, session=session, clock=WallClock())
        quotes = await src.fetch("solana", [PUMP_MINT])
    assert up.requests[0].query["ids"] == "solana" and up.requests[0].headers["x-cg-demo-api-key"] == "cg-demo-key"
    assert up.requests[1].query["contract_addresses"] == PUMP_MINT
    assert quotes == [
        SourceQuote(chain="solana", token=NATIVE_ID, usd=Decimal("151.2")),
        SourceQuote(chain="solana", token=PUMP_MINT, usd=Decimal("0.000041")),
    ]


async def test_book_polls_configured_source_for_tracked_tokens_and_prices_them(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.answers["/price/v3"] = jupiter_reply
    config = PricesConfig(sources=(source(base, "jupiter", poll_interval_s=0.05),))
    clock = WallClock()
    async with EventBus(clock=clock) as bus:
        book = PriceBook(bus=bus, clock=clock, config=config)
        published = asyncio.Event()

        async def on_price(event: Event) -> None:
            published.set()

        bus.subscribe("price.update", on_price, name="test.prices")
        await book.track("solana", PUMP_MINT)
        await book.start()
        try:
            async with asyncio.timeout(10):
                await published.wait()
        finally:
            await book.stop()
    q = book.quote("solana", PUMP_MINT)
    assert q is not None and q.source == "jupiter"
    assert book.usd_per_native("solana") == Decimal("147.48")
    # 0.0000412 USD per whole token / 147.48 USD per SOL, in lamports per base unit (9 - 6 decimals)
    assert q.native == Decimal("0.0000412").scaleb(-6) / Decimal("147.48").scaleb(-9)
    assert q.usd is not None and abs(q.usd - Decimal("0.0000412").scaleb(-6)) < Decimal("1E-30")


async def test_a_failing_source_is_counted_and_polling_goes_on(upstream: tuple[Upstream, str]) -> None:
    _, base = upstream  # 404 for everything
    config = PricesConfig(sources=(source(base, "coingecko", poll_interval_s=0.01, attempts=1),))
    clock = WallClock()
    async with EventBus(clock=clock) as bus:
        book = PriceBook(bus=bus, clock=clock, config=config)
        await book.start()
        try:
            async with asyncio.timeout(10):
                # Failures publish nothing; the counter is what an operator sees.
                while book.stats()["source_errors"].get("coingecko", 0) < 3:  # type: ignore[attr-defined]  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        finally:
            await book.stop()
    assert book.usd_per_native("solana") is None
