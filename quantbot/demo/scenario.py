"""The demo's scenario: who trades what on the simulated market, and the daemon config that watches it.

A SOL/USDC swap prices SOL in USD; three tokens launch on the local PumpPortal-style feed (MOON pumps,
WHALE is bought by three whales, RUG keeps its mint authority); both creators dump at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from solders.keypair import Keypair

from quantbot.demo.market import LaunchFeed, Market, Token
from quantbot.localnet.jupiter import LocalJupiter
from quantbot.localnet.solana import LocalSolana

STEP_S = 0.3
"""Pause between scenario steps at --speed 1 (the whole demo is a few seconds)."""
LAMPORTS = 10**9

CONFIG = """
mode = "paper"
[daemon]
data_dir = "{data}"
log_level = "warning"
log_format = "json"
tick_interval = 0.25
[prices]
publish_min_interval_s = 0
max_deviation_pct = 1000
vwap_window_s = 1
[http]
enabled = false
[jobs]
enabled = false
[solana]
enabled = true
endpoints = [{{ http = "{http}", ws = "{ws}", rps = 0 }}]
launch_programs = []
wallets = [{wallets}]
[aptos]
enabled = {aptos_enabled}
nodes = [{aptos_nodes}]
poll_interval = 0.25
[whales]
wallets = [{whales}]
cluster_whales = 3
[scanner]
pumpportal_url = "{feed}"
[risk]
token_cooldown_s = 60
min_pool_liquidity_sol = 10
[[filters]]
use = "renounced"
require_freeze_revoked = true
[[strategies]]
use = "sniper"
id = "sniper"
bands = [{{ min_score = 0.0, amount = 100000000 }}]
[[strategies]]
use = "whale_follow"
id = "whale_follow"
kinds = ["cluster"]
min_confidence = 0.3
[exits.strategies.sniper]
take_profit_pct = 40
stop_loss_pct = 30
"""


class Demo:
    """The scripted market and the daemon watching it."""

    def __init__(self, node: LocalSolana, jup: LocalJupiter, feed: LaunchFeed, step_s: float) -> None:
        self.node, self.jup, self.feed, self.step_s = node, jup, feed, step_s
        self.market = Market(node, jup)
        self.labels: dict[str, str] = {}
        m = self.market
        self.maker = self._named(m.wallet(90 * LAMPORTS), "market-maker")
        self.whales = [self._named(m.wallet(90 * LAMPORTS), f"whale-{i}") for i in (1, 2, 3)]
        self.buyers = [self._named(m.wallet(90 * LAMPORTS), f"buyer-{i}") for i in (1, 2, 3)]
        creators = [self._named(m.wallet(15 * LAMPORTS), f"creator-{s}") for s in ("moon", "whale", "rug")]
        self.usdc = m.usdc_pool(sol_reserve=1000 * LAMPORTS, usdc_reserve=150_000 * 10**6)
        self.moon = self._token(m.token("MOON", "To The Moon", creator=creators[0]))
        self.whaled = self._token(m.token("WHALE", "Whale Food", creator=creators[1]))
        self.rug = self._token(m.token("RUG", "Totally Safe", creator=creators[2], keep_mint_authority=True))

    def _named(self, kp: Keypair, label: str) -> Keypair:
        self.labels[str(kp.pubkey())] = label
        return kp

    def _token(self, token: Token) -> Token:
        self.labels[token.mint] = token.symbol
        return token

    def name(self, address: str) -> str:
        return self.labels.get(address, address[:8])

    def config_text(self, data: Path, *, aptos_url: str | None = None) -> str:
        watched = [self.maker, *self.whales, *self.buyers, self.moon.creator, self.whaled.creator, self.rug.creator]
        wallets = ", ".join(
            f'{{ address = "{kp.pubkey()}", label = "{self.labels[str(kp.pubkey())]}" }}' for kp in watched
        )
        whales = ", ".join(
            f'{{ chain = "solana", address = "{w.pubkey()}", label = "{self.labels[str(w.pubkey())]}" }}'
            for w in self.whales
        )
        return CONFIG.format(
            aptos_enabled="true" if aptos_url else "false",
            aptos_nodes=f'"{aptos_url}"' if aptos_url else "",
            data=data,
            http=self.node.http_url,
            ws=self.node.ws_url,
            wallets=wallets,
            whales=whales,
            feed=self.feed.url,
        )

    async def script(self, settle: Callable[[], Awaitable[None]], say: Callable[[str], None]) -> None:
        m = self.market
        say("market-maker swaps 1 SOL for USDC (the price of SOL in USD)")
        await m.swap(self.maker, self.usdc, buy=True, amount_in=LAMPORTS)
        await self._pause(settle)
        for token in (self.moon, self.whaled, self.rug):  # each creator's first buy, then the launch
            say(f"{self.name(str(token.creator.pubkey()))} buys 1 SOL of {token.symbol} and announces the launch")
            sig = await m.swap(token.creator, token.pool, buy=True, amount_in=LAMPORTS)
            await self.feed.announce(token, sig)
            await self._pause(settle)
        for whale in self.whales:  # three whales buy WHALE: a cluster
            say(f"{self.name(str(whale.pubkey()))} buys 5 SOL of WHALE")
            await m.swap(whale, self.whaled.pool, buy=True, amount_in=5 * LAMPORTS)
            await self._pause(settle)
        for buyer in self.buyers:  # the crowd pumps MOON
            say(f"{self.name(str(buyer.pubkey()))} buys 15 SOL of MOON")
            await m.swap(buyer, self.moon.pool, buy=True, amount_in=15 * LAMPORTS)
            await self._pause(settle)
        for token in (self.rug, self.whaled):  # both creators dump everything they hold
            creator = token.creator
            held = m.token_balance(creator.pubkey(), token.pool.mint)
            say(f"{self.name(str(creator.pubkey()))} dumps all {held} {token.symbol}")
            await m.swap(creator, token.pool, buy=False, amount_in=held)
            await self._pause(settle)

    async def _pause(self, settle: Callable[[], Awaitable[None]]) -> None:
        await settle()
        await asyncio.sleep(self.step_s)
        await settle()
