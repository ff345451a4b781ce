"""A local Solana node, a local Jupiter/PumpPortal API with one pool, a funded wallet and executors on them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from solders.keypair import Keypair

from quantbot.api import ApprovedOrder, PluginEnv, SigningKey
from quantbot.clock import WallClock
from quantbot.localnet.jupiter import LocalJupiter, Pool
from quantbot.localnet.solana import LocalSolana
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.jupiter import JupiterExecutor
from quantbot_executors.pumpportal import PumpPortalExecutor

API_KEY = "local-jupiter-key-7f3a"
WALLET_SOL = 50 * 10**9
FAST = {"confirm_poll": 0.005, "retry_base": 0.001, "retry_cap": 0.01, "request_timeout": 5.0}


@dataclass
class Env:
    node: LocalSolana
    jup: LocalJupiter
    pool: Pool
    wallet: Keypair
    key: SigningKey
    tmp: Path

    def jupiter(self, id: str = "jupiter", **params: Any) -> JupiterExecutor:
        ex = make_plugin(
            JupiterExecutor,
            id=id,
            **({"rpc_url": self.node.http_url, "base_url": self.jup.base_url} | FAST | params),
        )
        ex.config = _with_key(ex.config)
        return ex

    def pumpportal(self, id: str = "pumpportal", **params: Any) -> PumpPortalExecutor:
        return make_plugin(
            PumpPortalExecutor,
            id=id,
            **({"rpc_url": self.node.http_url, "url": self.jup.pumpportal_url} | FAST | params),
        )

    def keyed(self, ex: Any) -> Any:
        """With the wallet key, not started (the order path attaches and starts executors itself)."""
        ex.use_wallet_key(self.key)
        return ex

    async def started(self, ex: Any, *, key: SigningKey | None = None) -> Any:
        ex.use_wallet_key(key or self.key)
        ex.attach(PluginEnv(clock=WallClock(), data_dir=self.tmp / "executors" / ex.id))
        await ex.start()
        return ex


def _with_key(config: Any) -> Any:
    import msgspec

    from quantbot.api import Secret

    return msgspec.structs.replace(config, api_key=Secret(API_KEY, "env JUPITER_API_KEY"))


@asynccontextmanager
async def jupiter_env(tmp: Path) -> AsyncIterator[Env]:
    async with LocalSolana() as node, LocalJupiter(node, api_key=API_KEY) as jup:
        pool = jup.add_pool(decimals=6, token_reserve=10**15, sol_reserve=10**12)
        wallet = Keypair()
        node.ledger.svm.airdrop(wallet.pubkey(), WALLET_SOL)
        key = SigningKey(wallet.to_json(), "file /etc/quantbot/solana.json")
        yield Env(node=node, jup=jup, pool=pool, wallet=wallet, key=key, tmp=tmp)


def approved(token: str, *, executors: tuple[str, ...] = ("jupiter",), **fields: Any) -> ApprovedOrder:
    limits = {k: fields.pop(k) for k in ("max_price_impact_bps", "max_slippage_bps") if k in fields}
    intent = order_intent(token=token, **fields)
    return ApprovedOrder(
        order_id=f"order-{intent.intent_id}",
        idempotency_key=f"{intent.strategy}:{intent.intent_id}",
        intent=intent,
        executors=executors,
        approved_at=datetime.now(UTC),
        **limits,
    )
