"""The demo's simulated market: real SPL mints, pools and signed swaps executed by LiteSVM in LocalSolana.

Every trade is a real transaction: built by LocalJupiter's constant-product pool (which signs for the
pool), signed by the trader's keypair and sent over JSON-RPC with solana-py, so LocalSolana announces it
to the watcher's logsSubscribe exactly as a node would. Launches are announced on a local
PumpPortal-style WebSocket feed (`{"method": "subscribeNewToken"}`, then create frames).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address
from solders.token.state import TokenAccount
from solders.transaction import VersionedTransaction
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from quantbot.localnet.jupiter import LocalJupiter, Pool
from quantbot.localnet.solana import LocalSolana

USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDC_DECIMALS = 6
RPC_TIMEOUT_S = 10.0


@dataclass
class Token:
    """A launched token: its pool, its creator and its symbol."""

    symbol: str
    name: str
    pool: Pool
    creator: Keypair

    @property
    def mint(self) -> str:
        return str(self.pool.mint)


@dataclass
class LaunchFeed:
    """A PumpPortal-style WebSocket feed on 127.0.0.1 that pushes create frames to every subscriber."""

    host: str = "127.0.0.1"
    port: int = 0
    _server: Server | None = None
    _subscribers: set[ServerConnection] = field(default_factory=set)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/api/data"

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, 0)
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                if json.loads(message).get("method") == "subscribeNewToken":
                    await ws.send(json.dumps({"message": "Successfully subscribed to token creation events."}))
                    self._subscribers.add(ws)
                    self.subscribed.set()
        except ConnectionClosed:
            pass  # the subscriber went away (the daemon stopping)
        finally:
            self._subscribers.discard(ws)

    async def announce(self, token: Token, signature: str) -> int:
        frame = {
            "signature": signature,
            "mint": token.mint,
            "traderPublicKey": str(token.creator.pubkey()),
            "txType": "create",
            "name": token.name,
            "symbol": token.symbol,
            "uri": "",
            "pool": "pump",
        }
        for ws in list(self._subscribers):
            await ws.send(json.dumps(frame))
        return len(self._subscribers)


class Market:
    """Pools and traders on a LocalSolana node; `swap` sends one real signed swap and returns its signature."""

    def __init__(self, node: LocalSolana, jup: LocalJupiter) -> None:
        self.node = node
        self.jup = jup
        self.rpc = AsyncClient(node.http_url, commitment=Confirmed, timeout=RPC_TIMEOUT_S)

    async def close(self) -> None:
        await self.rpc.close()

    def wallet(self, sol: int) -> Keypair:
        """A new keypair airdropped `sol` lamports."""
        kp = Keypair()
        self.node.ledger.svm.airdrop(kp.pubkey(), sol)
        return kp

    def reserves(self, pool: Pool) -> tuple[int, int]:
        """(lamports, token units) the pool holds on chain now."""
        return self.jup.reserves(pool)

    def quote(self, pool: Pool, *, buy: bool, amount_in: int) -> int:
        """Constant product: what `amount_in` (lamports for a buy, token units for a sell) gets out."""
        sol, tokens = self.reserves(pool)
        reserve_in, reserve_out = (sol, tokens) if buy else (tokens, sol)
        return reserve_out * amount_in // (reserve_in + amount_in)

    def usdc_pool(self, *, sol_reserve: int, usdc_reserve: int) -> Pool:
        """A SOL/USDC pool at the real USDC mint address (so the PriceBook takes it as the USD quote)."""
        mint = Pubkey.from_string(USDC_MINT)
        return self.jup.add_pool(mint=mint, decimals=USDC_DECIMALS, token_reserve=usdc_reserve, sol_reserve=sol_reserve)

    def token(self, symbol: str, name: str, *, creator: Keypair, keep_mint_authority: bool = False) -> Token:
        """A new mint with its pool; with keep_mint_authority the creator can still mint (a rug sign)."""
        pool = self.jup.add_pool(
            decimals=6,
            token_reserve=10**15,
            sol_reserve=100 * 10**9,
            mint_authority=creator.pubkey() if keep_mint_authority else None,
        )
        return Token(symbol=symbol, name=name, pool=pool, creator=creator)

    def token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        account = self.node.ledger.svm.get_account(get_associated_token_address(owner, mint))
        return TokenAccount.from_bytes(bytes(account.data)[:165]).amount if account is not None else 0

    async def swap(self, trader: Keypair, pool: Pool, *, buy: bool, amount_in: int) -> str:
        """Buy (SOL in) or sell (tokens in, SOL out) on `pool`, signed by `trader`, sent over JSON-RPC.

        The transaction is the one LocalJupiter hands out (SOL wrapped, paid and unwrapped, as DEX routes do).
        """
        out = self.quote(pool, buy=buy, amount_in=amount_in)
        built, _, _ = self.jup.build(pool, trader.pubkey(), buy=buy, amount_in=amount_in, out=out, fee=0)
        message = built.message
        signed = [
            trader.sign_message(to_bytes_versioned(message)) if key == trader.pubkey() else sig
            for key, sig in zip(message.account_keys, built.signatures, strict=False)
        ]
        tx = VersionedTransaction.populate(message, signed)
        resp = await self.rpc.send_raw_transaction(bytes(tx), opts=TxOpts(skip_confirmation=True))
        return str(resp.value)
