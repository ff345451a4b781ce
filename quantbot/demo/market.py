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
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.token import ID as TOKEN_PROGRAM_ID
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import VersionedTransaction
from spl.token.constants import WRAPPED_SOL_MINT
from spl.token.instructions import create_idempotent_associated_token_account, transfer
from spl.token.models import TransferParams
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from quantbot.localnet.jupiter import LocalJupiter, Pool, _token_account
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

    def wallet(self, sol: int, *, wrapped: int = 0) -> Keypair:
        """A new keypair airdropped `sol` lamports, with `wrapped` lamports in its wrapped-SOL account."""
        kp = Keypair()
        self.node.ledger.svm.airdrop(kp.pubkey(), sol)
        self._wsol_account(kp.pubkey(), wrapped)
        return kp

    def _wsol_account(self, owner: Pubkey, amount: int) -> Pubkey:
        address = get_associated_token_address(owner, WRAPPED_SOL_MINT)
        rent = self.node.ledger.svm.minimum_balance_for_rent_exemption(165)
        state = TokenAccount(
            mint=WRAPPED_SOL_MINT,
            owner=owner,
            amount=amount,
            delegate=None,
            state=TokenAccountState.Initialized,
            is_native=rent,
            delegated_amount=0,
        )
        self.node.ledger.set_account(
            str(address), data=bytes(state), owner=str(TOKEN_PROGRAM_ID), lamports=rent + amount
        )
        return address

    def reserves(self, pool: Pool) -> tuple[int, int]:
        """(lamports incl. wrapped SOL, token units) the pool holds on chain now."""
        sol, tokens = self.jup.reserves(pool)
        return sol + self.token_balance(pool.authority.pubkey(), WRAPPED_SOL_MINT), tokens

    def quote(self, pool: Pool, *, buy: bool, amount_in: int) -> int:
        """Constant product: what `amount_in` (lamports for a buy, token units for a sell) gets out."""
        sol, tokens = self.reserves(pool)
        reserve_in, reserve_out = (sol, tokens) if buy else (tokens, sol)
        return reserve_out * amount_in // (reserve_in + amount_in)

    def usdc_pool(self, *, sol_reserve: int, usdc_reserve: int) -> Pool:
        """A SOL/USDC pool at the real USDC mint address (so the PriceBook takes it as the USD quote)."""
        ledger = self.node.ledger
        authority = Keypair()
        mint = Pubkey.from_string(USDC_MINT)
        data = Mint(mint_authority=None, supply=usdc_reserve, decimals=USDC_DECIMALS, is_initialized=True)
        ledger.set_account(USDC_MINT, data=bytes(data), owner=str(TOKEN_PROGRAM_ID))
        vault = get_associated_token_address(authority.pubkey(), mint)
        ledger.set_account(
            str(vault), data=_token_account(mint, authority.pubkey(), usdc_reserve), owner=str(TOKEN_PROGRAM_ID)
        )
        ledger.svm.airdrop(authority.pubkey(), sol_reserve)
        pool = Pool(mint=mint, decimals=USDC_DECIMALS, authority=authority, vault=vault)
        self.jup.pools[USDC_MINT] = pool
        self._wsol_account(authority.pubkey(), 0)
        return pool

    def token(self, symbol: str, name: str, *, creator: Keypair, keep_mint_authority: bool = False) -> Token:
        """A new mint with its pool; with keep_mint_authority the creator can still mint (a rug sign)."""
        pool = self.jup.add_pool(decimals=6, token_reserve=10**15, sol_reserve=100 * 10**9)
        if keep_mint_authority:
            data = Mint(mint_authority=creator.pubkey(), supply=10**15, decimals=6, is_initialized=True)
            self.node.ledger.set_account(str(pool.mint), data=bytes(data), owner=str(TOKEN_PROGRAM_ID))
        self._wsol_account(pool.authority.pubkey(), 0)
        return Token(symbol=symbol, name=name, pool=pool, creator=creator)

    def token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        account = self.node.ledger.svm.get_account(get_associated_token_address(owner, mint))
        return TokenAccount.from_bytes(bytes(account.data)[:165]).amount if account is not None else 0

    async def swap(self, trader: Keypair, pool: Pool, *, buy: bool, amount_in: int) -> str:
        """Buy (wrapped SOL in) or sell (tokens in, SOL out) on `pool`, signed by `trader`, sent over JSON-RPC.

        Buys pay from the trader's wrapped-SOL account, as DEX routes do: a plain top-level SOL transfer to
        another wallet reads as a payment or tip to the parser, not as the price of a swap.
        """
        out = self.quote(pool, buy=buy, amount_in=amount_in)
        if buy:
            tx = self._buy(trader, pool, amount_in=amount_in, out=out)
        else:
            built, _, _ = self.jup.build(pool, trader.pubkey(), buy=False, amount_in=amount_in, out=out, fee=0)
            message = built.message
            signed = [
                trader.sign_message(to_bytes_versioned(message)) if key == trader.pubkey() else sig
                for key, sig in zip(message.account_keys, built.signatures, strict=False)
            ]
            tx = VersionedTransaction.populate(message, signed)
        resp = await self.rpc.send_raw_transaction(bytes(tx), opts=TxOpts(skip_confirmation=True))
        return str(resp.value)

    def _buy(self, trader: Keypair, pool: Pool, *, amount_in: int, out: int) -> VersionedTransaction:
        user, authority = trader.pubkey(), pool.authority.pubkey()
        ixs = [
            create_idempotent_associated_token_account(user, user, pool.mint),
            transfer(
                TransferParams(
                    program_id=TOKEN_PROGRAM_ID,
                    source=get_associated_token_address(user, WRAPPED_SOL_MINT),
                    dest=get_associated_token_address(authority, WRAPPED_SOL_MINT),
                    owner=user,
                    amount=amount_in,
                )
            ),
            transfer(
                TransferParams(
                    program_id=TOKEN_PROGRAM_ID,
                    source=pool.vault,
                    dest=get_associated_token_address(user, pool.mint),
                    owner=authority,
                    amount=out,
                )
            ),
        ]
        message = MessageV0.try_compile(user, ixs, [], self.node.ledger.svm.latest_blockhash())
        return VersionedTransaction(message, [trader, pool.authority])
