"""A local Jupiter swap API (`/swap/v1/quote`, `/swap/v1/swap`) and PumpPortal `/api/trade-local`.

Both speak the real request and response shapes and hand out real, executable transactions for a
LocalSolana node: a constant-product pool per token whose reserves are on-chain accounts (the pool
authority's wrapped-SOL vault and its token vault). SOL moves as Jupiter's wrapAndUnwrapSol does: a
buy wraps the user's SOL into its wrapped-SOL account, pays the pool's wrapped-SOL vault and closes
the account; tokens go from the vault to the user's associated token account. A sell is the reverse
and unwraps. (A plain top-level SOL transfer to another wallet would read as a tip to the parser, as
it does on mainnet.) The pool authority's signature is added by the server; the user's is left empty
for the client to fill in.

Faults (counters count down as served): `rate_limited` (429 + Retry-After), `stale_quotes` (the
swap comes back with a `simulationError`), `expired_blockhash` (a transaction on an unknown
blockhash whose lastValidBlockHeight has passed), `fail_on_chain` (a transaction that lands and
fails: the vault is asked for more tokens than it holds).

    async with LocalSolana() as node, LocalJupiter(node) as jup:
        pool = jup.add_pool(decimals=6, token_reserve=10**15, sol_reserve=10**12)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.token import ID as TOKEN_PROGRAM_ID
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import VersionedTransaction
from spl.token.constants import WRAPPED_SOL_MINT
from spl.token.instructions import (
    close_account,
    create_idempotent_associated_token_account,
    sync_native,
    transfer_checked,
)
from spl.token.models import CloseAccountParams, SyncNativeParams, TransferCheckedParams

from quantbot.localnet.solana import LocalSolana

SOL_MINT = "So11111111111111111111111111111111111111112"
LABEL = "LocalPool"
SOL_DECIMALS = 9
BLOCKHASH_WINDOW = 150
DEFAULT_PRIORITY_FEE_LAMPORTS = 10_000
"""What the server would charge for priority when the client's cap allows it."""


@dataclass
class Faults:
    rate_limited: int = 0
    retry_after: str = "1"
    stale_quotes: int = 0
    expired_blockhash: int = 0
    fail_on_chain: int = 0


@dataclass
class Pool:
    mint: Pubkey
    decimals: int
    authority: Keypair
    vault: Pubkey
    sol_vault: Pubkey
    """The authority's wrapped-SOL account: the pool's SOL reserve."""
    fee_bps: int = 0


@dataclass
class Requests:
    quotes: list[dict[str, str]] = field(default_factory=list)
    swaps: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)


class LocalJupiter:
    """The server. Base URL for the executor: `jup.base_url` (Jupiter), `jup.pumpportal_url` (PumpPortal)."""

    def __init__(self, node: LocalSolana, *, api_key: str | None = None, host: str = "127.0.0.1") -> None:
        self.node = node
        self.api_key = api_key
        self.host = host
        self.port = 0
        self.faults = Faults()
        self.pools: dict[str, Pool] = {}
        self.requests = Requests()
        self.priority_fee_lamports = DEFAULT_PRIORITY_FEE_LAMPORTS
        self._seq = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> LocalJupiter:
        app = web.Application()
        app.router.add_get("/swap/v1/quote", self._quote)
        app.router.add_post("/swap/v1/swap", self._swap)
        app.router.add_post("/api/trade-local", self._trade_local)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server) and server.sockets  # noqa: S101  (started above)
        self.port = int(server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/swap/v1"

    @property
    def pumpportal_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/trade-local"

    # --- pools -------------------------------------------------------------------------------

    def add_pool(
        self,
        *,
        decimals: int = 6,
        token_reserve: int = 10**15,
        sol_reserve: int = 10**12,
        mint: Pubkey | None = None,
        mint_authority: Pubkey | None = None,
    ) -> Pool:
        """A pool funded with the given reserves, for a new mint (supply = the reserve) or the address `mint`."""
        ledger = self.node.ledger
        if ledger.svm.get_account(WRAPPED_SOL_MINT) is None:  # mainnet has it; a fresh LiteSVM does not
            native = Mint(mint_authority=None, supply=0, decimals=SOL_DECIMALS, is_initialized=True)
            ledger.set_account(str(WRAPPED_SOL_MINT), data=bytes(native), owner=str(TOKEN_PROGRAM_ID))
        authority = Keypair()
        mint = mint or Keypair().pubkey()
        mint_data = Mint(mint_authority=mint_authority, supply=token_reserve, decimals=decimals, is_initialized=True)
        ledger.set_account(str(mint), data=bytes(mint_data), owner=str(TOKEN_PROGRAM_ID))
        vault = get_associated_token_address(authority.pubkey(), mint)
        ledger.set_account(
            str(vault), data=token_account_data(mint, authority.pubkey(), token_reserve), owner=str(TOKEN_PROGRAM_ID)
        )
        ledger.svm.airdrop(authority.pubkey(), 10**9)  # the authority pays nothing; it only signs
        sol_vault = wrapped_sol_account(self.node, authority.pubkey(), sol_reserve)
        pool = Pool(mint=mint, decimals=decimals, authority=authority, vault=vault, sol_vault=sol_vault)
        self.pools[str(mint)] = pool
        return pool

    def reserves(self, pool: Pool) -> tuple[int, int]:
        """(lamports, token units) the pool holds on chain now."""
        return _amount(self.node, pool.sol_vault), _amount(self.node, pool.vault)

    def amount_out(self, pool: Pool, *, buy: bool, amount_in: int) -> int:
        sol, tokens = self.reserves(pool)
        reserve_in, reserve_out = (sol, tokens) if buy else (tokens, sol)
        net = amount_in * (10_000 - pool.fee_bps) // 10_000
        return reserve_out * net // (reserve_in + net)

    def impact(self, pool: Pool, *, buy: bool, amount_in: int) -> Decimal:
        """Price impact as Jupiter reports it: a fraction (0.01 = 1%)."""
        sol, tokens = self.reserves(pool)
        reserve_in = sol if buy else tokens
        return Decimal(amount_in) / Decimal(reserve_in + amount_in)

    # --- Jupiter -----------------------------------------------------------------------------

    def _gate(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"message": "Unauthorized"}, status=401)
        if self.faults.rate_limited > 0:
            self.faults.rate_limited -= 1
            return web.json_response(
                {"message": "Rate limit exceeded"}, status=429, headers={"Retry-After": self.faults.retry_after}
            )
        return None

    async def _quote(self, request: web.Request) -> web.Response:
        gated = self._gate(request)
        if gated is not None:
            return gated
        q = dict(request.query)
        self.requests.quotes.append(q)
        try:
            input_mint, output_mint, amount = q["inputMint"], q["outputMint"], int(q["amount"])
            slippage = int(q.get("slippageBps", "50"))
        except (KeyError, ValueError) as exc:
            return _error(400, f"Query parameter {exc} is invalid", "INVALID_REQUEST")
        if q.get("swapMode", "ExactIn") != "ExactIn":
            return _error(400, "ExactOut is not supported by this route", "ROUTE_PLAN_DOES_NOT_CONSUME_ALL_THE_AMOUNT")
        dexes = {d for d in q.get("dexes", "").split(",") if d}
        excluded = {d for d in q.get("excludeDexes", "").split(",") if d}
        buy = input_mint == SOL_MINT
        pool = self.pools.get(output_mint if buy else input_mint)
        other = input_mint if buy else output_mint
        if pool is None or other != SOL_MINT or (dexes and LABEL not in dexes) or LABEL in excluded or amount <= 0:
            return _error(400, "Could not find any route", "COULD_NOT_FIND_ANY_ROUTE")
        out = self.amount_out(pool, buy=buy, amount_in=amount)
        fee = amount * pool.fee_bps // 10_000
        threshold = out * (10_000 - slippage) // 10_000
        return web.json_response(
            {
                "inputMint": input_mint,
                "inAmount": str(amount),
                "outputMint": output_mint,
                "outAmount": str(out),
                "otherAmountThreshold": str(threshold),
                "swapMode": "ExactIn",
                "slippageBps": slippage,
                "platformFee": None,
                "priceImpactPct": str(self.impact(pool, buy=buy, amount_in=amount)),
                "routePlan": [
                    {
                        "swapInfo": {
                            "ammKey": str(pool.authority.pubkey()),
                            "label": LABEL,
                            "inputMint": input_mint,
                            "outputMint": output_mint,
                            "inAmount": str(amount),
                            "outAmount": str(out),
                            "feeAmount": str(fee),
                            "feeMint": input_mint,
                        },
                        "percent": 100,
                    }
                ],
                "contextSlot": self.node.slot,
                "timeTaken": 0.0005,
            }
        )

    async def _swap(self, request: web.Request) -> web.Response:
        gated = self._gate(request)
        if gated is not None:
            return gated
        try:
            body = await request.json()
            quote = body["quoteResponse"]
            user = Pubkey.from_string(body["userPublicKey"])
            buy = quote["inputMint"] == SOL_MINT
            pool = self.pools[quote["outputMint"] if buy else quote["inputMint"]]
            amount_in, threshold = int(quote["inAmount"]), int(quote["otherAmountThreshold"])
        except (KeyError, ValueError, TypeError) as exc:
            return _error(400, f"Invalid swap request: {exc}", "INVALID_REQUEST")
        self.requests.swaps.append(body)
        fee_lamports = min(self.priority_fee_lamports, _max_priority_lamports(body.get("prioritizationFeeLamports")))
        out = self.amount_out(pool, buy=buy, amount_in=amount_in)
        simulation_error = None
        if self.faults.stale_quotes > 0:
            self.faults.stale_quotes -= 1
            simulation_error = {"errorCode": "SLIPPAGE_TOLERANCE_EXCEEDED", "error": "quote is stale: price moved"}
        elif out < threshold:
            simulation_error = {"errorCode": "SLIPPAGE_TOLERANCE_EXCEEDED", "error": f"out {out} < {threshold}"}
        tx, cu_limit, last_valid = self.build(pool, user, buy=buy, amount_in=amount_in, out=out, fee=fee_lamports)
        return web.json_response(
            {
                "swapTransaction": base64.b64encode(bytes(tx)).decode(),
                "lastValidBlockHeight": last_valid,
                "prioritizationFeeLamports": fee_lamports,
                "computeUnitLimit": cu_limit,
                "prioritizationType": {"computeBudget": {"microLamports": _micro(fee_lamports, cu_limit)}},
                "dynamicSlippageReport": None,
                "simulationError": simulation_error,
            }
        )

    # --- PumpPortal --------------------------------------------------------------------------

    async def _trade_local(self, request: web.Request) -> web.Response:
        if self.faults.rate_limited > 0:
            self.faults.rate_limited -= 1
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": self.faults.retry_after})
        try:
            body: dict[str, Any] = (
                await request.json() if request.content_type == "application/json" else dict(await request.post())
            )
            self.requests.trades.append(body)
            user = Pubkey.from_string(str(body["publicKey"]))
            action = str(body["action"])
            pool = self.pools[str(body["mint"])]
            in_sol = str(body.get("denominatedInSol", "false")).lower() == "true"
            amount = Decimal(str(body["amount"]))
            priority_sol = Decimal(str(body.get("priorityFee", "0")))
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            return web.Response(status=400, text=f"Bad Request: {exc}")
        if action not in ("buy", "sell") or in_sol != (action == "buy"):
            return web.Response(status=400, text="Bad Request: this pool takes buys in SOL and sells in tokens")
        buy = action == "buy"
        amount_in = int(amount.scaleb(9 if buy else pool.decimals))
        out = self.amount_out(pool, buy=buy, amount_in=amount_in)
        fee = int(priority_sol.scaleb(9))
        tx, _, _ = self.build(pool, user, buy=buy, amount_in=amount_in, out=out, fee=fee)
        return web.Response(body=bytes(tx), content_type="application/octet-stream")

    # --- transactions ------------------------------------------------------------------------

    def build(
        self, pool: Pool, user: Pubkey, *, buy: bool, amount_in: int, out: int, fee: int
    ) -> tuple[VersionedTransaction, int, int]:
        """The swap transaction (pool authority signed, user signature empty), its CU limit, lastValidBlockHeight."""
        ledger = self.node.ledger
        cu_limit = 60_000 + next(self._seq) % 10_000  # "dynamic": differs per swap, so no two are identical
        blockhash = ledger.svm.latest_blockhash()
        last_valid = ledger.block_height + BLOCKHASH_WINDOW
        if self.faults.expired_blockhash > 0:
            self.faults.expired_blockhash -= 1
            blockhash, last_valid = Hash.new_unique(), ledger.block_height - 1
        tokens = out if buy else amount_in
        if self.faults.fail_on_chain > 0:
            self.faults.fail_on_chain -= 1
            tokens = self.reserves(pool)[1] + 1 if buy else tokens
            if not buy:
                out = self.reserves(pool)[0] * 2  # more lamports than the pool's wrapped-SOL vault holds
        authority = pool.authority.pubkey()
        user_ata = get_associated_token_address(user, pool.mint)
        user_wsol = get_associated_token_address(user, WRAPPED_SOL_MINT)
        ixs: list[Instruction] = [
            set_compute_unit_limit(cu_limit),
            set_compute_unit_price(_micro(fee, cu_limit)),
            create_idempotent_associated_token_account(user, user, WRAPPED_SOL_MINT),
            create_idempotent_associated_token_account(user, user, pool.mint),
        ]
        if buy:
            ixs += [
                transfer(TransferParams(from_pubkey=user, to_pubkey=user_wsol, lamports=amount_in)),
                sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=user_wsol)),
                transfer_checked_ix(WRAPPED_SOL_MINT, SOL_DECIMALS, user_wsol, pool.sol_vault, user, amount_in),
                transfer_checked_ix(pool.mint, pool.decimals, pool.vault, user_ata, authority, tokens),
            ]
        else:
            ixs += [
                transfer_checked_ix(pool.mint, pool.decimals, user_ata, pool.vault, user, tokens),
                transfer_checked_ix(WRAPPED_SOL_MINT, SOL_DECIMALS, pool.sol_vault, user_wsol, authority, out),
            ]
        ixs.append(
            close_account(CloseAccountParams(program_id=TOKEN_PROGRAM_ID, account=user_wsol, dest=user, owner=user))
        )  # unwraps: whatever the user's wrapped-SOL account held returns to it as SOL
        message = MessageV0.try_compile(user, ixs, [], blockhash)
        signers = list(message.account_keys[: message.header.num_required_signatures])
        sigs = [
            pool.authority.sign_message(to_bytes_versioned(message)) if key == authority else Signature.default()
            for key in signers
        ]
        return VersionedTransaction.populate(message, sigs), cu_limit, last_valid


def transfer_checked_ix(
    mint: Pubkey, decimals: int, source: Pubkey, dest: Pubkey, owner: Pubkey, amount: int
) -> Instruction:
    """An SPL Token `transferChecked` of `amount` base units from `source` to `dest`, signed by `owner`."""
    return transfer_checked(
        TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=source,
            mint=mint,
            dest=dest,
            owner=owner,
            amount=amount,
            decimals=decimals,
        )
    )


def _amount(node: LocalSolana, account: Pubkey) -> int:
    found = node.ledger.svm.get_account(account)
    return TokenAccount.from_bytes(bytes(found.data)[:165]).amount if found is not None else 0


def wrapped_sol_account(node: LocalSolana, owner: Pubkey, amount: int) -> Pubkey:
    """Set `owner`'s wrapped-SOL associated token account on the node, holding `amount` lamports wrapped."""
    address = get_associated_token_address(owner, WRAPPED_SOL_MINT)
    rent = node.ledger.svm.minimum_balance_for_rent_exemption(165)
    data = token_account_data(WRAPPED_SOL_MINT, owner, amount, native_rent=rent)
    node.ledger.set_account(str(address), data=data, owner=str(TOKEN_PROGRAM_ID), lamports=rent + amount)
    return address


def token_account_data(mint: Pubkey, owner: Pubkey, amount: int, *, native_rent: int | None = None) -> bytes:
    """An initialised SPL token account's 165 bytes (`native_rent`: a wrapped-SOL account's rent reserve)."""
    state = TokenAccount(
        mint=mint,
        owner=owner,
        amount=amount,
        delegate=None,
        state=TokenAccountState.Initialized,
        is_native=native_rent,
        delegated_amount=0,
    )
    return bytes(state)


def _max_priority_lamports(spec: object) -> int:
    """The client's cap from `prioritizationFeeLamports` (an int, or priorityLevelWithMaxLamports)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return spec
    if isinstance(spec, dict):
        level = spec.get("priorityLevelWithMaxLamports")
        if isinstance(level, dict) and isinstance(level.get("maxLamports"), int):
            return int(level["maxLamports"])
    return DEFAULT_PRIORITY_FEE_LAMPORTS


def _micro(fee_lamports: int, cu_limit: int) -> int:
    """Micro-lamports per compute unit so that limit * price = the priority fee."""
    return fee_lamports * 1_000_000 // cu_limit


def _error(status: int, message: str, code: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"error": message, "errorCode": code}), content_type="application/json"
    )


__all__ = ["LABEL", "SOL_MINT", "Faults", "LocalJupiter", "Pool", "wrapped_sol_account"]
