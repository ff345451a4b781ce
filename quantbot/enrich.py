"""SolanaEnricher: the on-chain features of one launched token, every look-up concurrent, cached and timed out.

One round trip for a bonding-curve launch: the mint, its Metaplex metadata PDA, the bonding curve (or
pool), the largest token accounts and the creator's associated token accounts are requested at once.
AMM pools need a second, also concurrent, round for the quote vault and the LP mint the pool names.
A look-up that fails, times out or cannot be decoded leaves its feature None with the reason.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import structlog
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from quantbot.api import PriceView
from quantbot.candidates import Holder, HoldersInfo, LiquidityInfo, LpInfo, MetadataInfo, MintInfo
from quantbot.chains.solana.accounts import Mint, decode_metaplex_metadata, decode_mint, decode_token_account
from quantbot.chains.solana.layout import DecodeError
from quantbot.chains.solana.pools import (
    BondingCurve,
    PumpSwapPool,
    RaydiumV4Pool,
    decode_bonding_curve,
    decode_pumpswap_pool,
    decode_raydium_v4_pool,
)
from quantbot.chains.solana.programs import (
    KNOWN_DECIMALS,
    METAPLEX_METADATA_PROGRAM,
    NATIVE_MINT,
    PUMP_FUN_PROGRAM,
    PUMPSWAP_PROGRAM,
    RAYDIUM_AMM_V4_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
)
from quantbot.chains.solana.rpc import (
    MAX_LARGEST_ACCOUNTS,
    AccountData,
    RpcUnavailable,
    SolanaRpcError,
    SolanaRpcPool,
    TokenHolding,
)
from quantbot.clock import Clock
from quantbot.events import TokenLaunch
from quantbot.features import Features

log = structlog.get_logger(component="scanner.enrich")

T = TypeVar("T")
NATIVE_DECIMALS = 9
HELD_PCT_COMPLETE = 50
"""Percent of supply that fewer than MAX_LARGEST_ACCOUNTS accounts must hold for the holders to be known."""
Pool = BondingCurve | PumpSwapPool | RaydiumV4Pool


class LookupFailed(Exception):
    """A look-up gave no usable answer; the message is the reason recorded on the candidate."""


class TtlCache:
    """Results (and in-flight look-ups) by key for `ttl` seconds of the clock; failures are not kept."""

    def __init__(self, *, clock: Clock, max_entries: int = 10_000) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, asyncio.Future[Any]]] = OrderedDict()
        self.hits = 0

    async def get(self, key: str, ttl: float, fetch: Callable[[], Awaitable[T]]) -> T:
        now = self.clock.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now and not (entry[1].done() and entry[1].exception() is not None):
            self.hits += 1
            self._entries.move_to_end(key)
            result: T = await asyncio.shield(entry[1])
            return result
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now + ttl, future)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        try:
            value = await fetch()
        except BaseException as exc:
            self._entries.pop(key, None)
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else LookupFailed("cancelled"))
                future.exception()  # retrieved: nobody else may be waiting
            raise
        future.set_result(value)
        return value

    async def get_many(
        self, keys: dict[str, float], fetch: Callable[[list[str]], Awaitable[list[Any]]]
    ) -> dict[str, Any]:
        """Several keys (key -> ttl) at once: the missing ones fetched in one call, `fetch(keys) -> values`."""
        now = self.clock.monotonic()
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[Any]] = {}
        todo: list[str] = []
        for key, ttl in keys.items():
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now and not (entry[1].done() and entry[1].exception() is not None):
                self.hits += 1
                self._entries.move_to_end(key)
                futures[key] = entry[1]
                continue
            futures[key] = loop.create_future()
            self._entries[key] = (now + ttl, futures[key])
            todo.append(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        if todo:
            try:
                values = await fetch(todo)
                if len(values) != len(todo):
                    raise LookupFailed(f"asked for {len(todo)} accounts, got {len(values)}")
            except BaseException as exc:
                for key in todo:
                    self._entries.pop(key, None)
                    if not futures[key].done():
                        futures[key].set_exception(exc if isinstance(exc, Exception) else LookupFailed("cancelled"))
                        futures[key].exception()  # retrieved: nobody else may be waiting
                raise
            for key, value in zip(todo, values, strict=True):
                futures[key].set_result(value)
        return {key: await asyncio.shield(f) for key, f in futures.items()}


def mint_features(mint: Mint) -> MintInfo:
    """What the filters see of a decoded mint."""
    return MintInfo(
        program=mint.program,
        supply=mint.supply,
        decimals=mint.decimals,
        mint_authority=mint.mint_authority,
        freeze_authority=mint.freeze_authority,
        extensions=mint.extensions,
        transfer_fee_bps=mint.transfer_fee_bps,
        permanent_delegate=mint.permanent_delegate,
        transfer_hook_program=mint.transfer_hook_program,
        transfer_hook_authority=mint.transfer_hook_authority,
        non_transferable=mint.non_transferable,
        default_account_state=mint.default_account_state,
        pause_authority=mint.pause_authority,
        paused=mint.paused,
    )


def metadata_pda(mint: str) -> str:
    program = Pubkey.from_string(METAPLEX_METADATA_PROGRAM)
    seeds = [b"metadata", bytes(program), bytes(Pubkey.from_string(mint))]
    return str(Pubkey.find_program_address(seeds, program)[0])


def ata(owner: str, mint: str, token_program: str) -> str:
    return str(
        get_associated_token_address(
            Pubkey.from_string(owner), Pubkey.from_string(mint), Pubkey.from_string(token_program)
        )
    )


def _decode_pool(account: AccountData) -> Pool:
    if account.owner == PUMP_FUN_PROGRAM:
        return decode_bonding_curve(account.data, owner=account.owner)
    if account.owner == PUMPSWAP_PROGRAM:
        return decode_pumpswap_pool(account.data, owner=account.owner)
    if account.owner == RAYDIUM_AMM_V4_PROGRAM:
        return decode_raydium_v4_pool(account.data, owner=account.owner)
    raise LookupFailed(f"no decoder for pools of program {account.owner}")


class SolanaEnricher:
    """Build with the RPC pool; `await enrich(launch)` returns the measured Features."""

    def __init__(
        self,
        *,
        rpc: SolanaRpcPool,
        clock: Clock,
        timeout: float = 5.0,
        static_ttl: float = 300.0,
        state_ttl: float = 2.0,
        prices: PriceView | None = None,
    ) -> None:
        self.rpc = rpc
        self.clock = clock
        self.timeout = timeout
        self.static_ttl = static_ttl
        """Mint and metadata accounts (rarely change once the token exists)."""
        self.state_ttl = state_ttl
        """Pool, holder and balance look-ups (change with every trade)."""
        self.prices = prices
        self.cache = TtlCache(clock=clock)
        self.failures: Counter[str] = Counter()

    async def _lookup(self, feature: str, key: str, ttl: float, fetch: Callable[[], Awaitable[T]]) -> T:
        """`fetch()` through the cache (`key`; "" = the fetch does its own caching), timed out, errors as reasons."""
        try:
            async with asyncio.timeout(self.timeout):
                return await (self.cache.get(key, ttl, fetch) if key else fetch())
        except TimeoutError:
            raise LookupFailed(f"timeout after {self.timeout:g}s") from None
        except RpcUnavailable as exc:
            raise LookupFailed(f"rpc unavailable: {exc}") from None
        except SolanaRpcError as exc:
            raise LookupFailed(f"rpc error: {exc}") from None

    async def _accounts(self, addresses: dict[str, float]) -> dict[str, AccountData | None]:
        """Accounts by address (address -> cache ttl), the uncached ones in one getMultipleAccounts."""

        async def fetch(keys: list[str]) -> list[AccountData | None]:
            return await self.rpc.get_multiple_accounts([k.removeprefix("account:") for k in keys])

        keys = {f"account:{a}": ttl for a, ttl in addresses.items()}
        found = await self._lookup("accounts", "", 0, lambda: self.cache.get_many(keys, fetch))
        return {k.removeprefix("account:"): v for k, v in found.items()}

    async def enrich(self, launch: TokenLaunch) -> Features:
        mint = launch.mint
        bad = _invalid_address(launch)
        if bad:
            out = Features(creator=launch.creator)
            for name in ("mint", "metadata", "liquidity", "lp", "holders", "creator_holding"):
                out.fail(name, bad)
            self.failures["invalid_address"] += 1
            return out
        programs = (launch.token_program,) if launch.token_program else (TOKEN_PROGRAM, TOKEN_2022_PROGRAM)
        pool_address = launch.bonding_curve or launch.pool
        creator = launch.creator
        creator_atas = [ata(creator, mint, p) for p in programs] if creator else []

        pda = metadata_pda(mint)
        wanted = {mint: self.static_ttl, pda: self.static_ttl}
        wanted.update(dict.fromkeys([a for a in (pool_address, *creator_atas) if a], self.state_ttl))
        # Two requests in flight at once: every account in one getMultipleAccounts, and the largest holders.
        round1 = await asyncio.gather(
            self._accounts(wanted),
            self._lookup(
                "holders", f"largest:{mint}", self.state_ttl, lambda: self.rpc.get_token_largest_accounts(mint)
            ),
            return_exceptions=True,
        )
        for r in round1:
            if isinstance(r, BaseException) and not isinstance(r, Exception):
                raise r  # cancellation
        accounts, largest_r = round1
        mint_r: object
        meta_r: object
        pool_r: object
        creator_r: object
        if isinstance(accounts, BaseException):
            mint_r = meta_r = pool_r = creator_r = accounts
        else:
            mint_r, meta_r = accounts[mint], accounts[pda]
            pool_r = accounts.get(pool_address or "")
            creator_r = [accounts[a] for a in creator_atas] if creator_atas else None
        out = Features(creator=creator)
        mint_state = self._mint(out, mint_r)
        self._metadata(out, mint_state, meta_r)
        pool = self._pool(out, pool_r, pool_address)
        await self._liquidity_and_lp(out, launch, pool, pool_address)
        self._holders(out, mint_state, largest_r, launch, pool, programs)
        self._creator(out, creator_r)
        self.failures.update(out.failed)
        return out

    # --- features ------------------------------------------------------------------------------

    def _mint(self, out: Features, result: object) -> Mint | None:
        try:
            account = _ok(result)
            if account is None:
                raise LookupFailed("mint account not found")
            mint = decode_mint(account.data, owner=account.owner)
        except (LookupFailed, DecodeError) as exc:
            out.fail("mint", exc)
            return None
        out.mint = mint_features(mint)
        return mint

    def _metadata(self, out: Features, mint: Mint | None, result: object) -> None:
        if mint is not None and mint.metadata is not None:
            m = mint.metadata
            # Token-2022 TokenMetadata: an update authority that is set means the metadata can change.
            out.metadata = MetadataInfo(
                source="token2022",
                name=m.name,
                symbol=m.symbol,
                uri=m.uri,
                update_authority=m.update_authority,
                is_mutable=m.update_authority is not None,
            )
            return
        try:
            account = _ok(result)
            if account is None:
                raise LookupFailed("no Metaplex metadata account and no TokenMetadata extension")
            meta = decode_metaplex_metadata(account.data, owner=account.owner)
        except (LookupFailed, DecodeError) as exc:
            out.fail("metadata", exc)
            return
        out.metadata = MetadataInfo(
            source="metaplex",
            name=meta.name,
            symbol=meta.symbol,
            uri=meta.uri,
            update_authority=meta.update_authority,
            is_mutable=meta.is_mutable,
        )

    def _pool(self, out: Features, result: object, address: str | None) -> Pool | None:
        try:
            if address is None:
                raise LookupFailed("the launch names no pool or bonding curve")
            account = _ok(result)
            if account is None:
                raise LookupFailed(f"pool account {address} not found")
            return _decode_pool(account)
        except (LookupFailed, DecodeError) as exc:
            out.fail("liquidity", exc)
            out.fail("lp", exc)
            return None

    async def _liquidity_and_lp(
        self, out: Features, launch: TokenLaunch, pool: Pool | None, address: str | None
    ) -> None:
        if pool is None or address is None:
            if launch.quote_mint and launch.quote_amount is not None and address:
                # A pool we cannot decode (e.g. Raydium CPMM): the liquidity it was seeded with, as the launch says.
                out.liquidity = self._liquidity(
                    launch.source + " (initial)", address, launch.quote_mint, launch.quote_amount
                )
                out.missing.pop("liquidity", None)
            return
        if isinstance(pool, BondingCurve):
            out.liquidity = self._liquidity(
                "pump.fun", address, pool.quote_mint, pool.real_sol_reserves, curve=True, complete=pool.complete
            )
            out.missing["lp"] = "bonding curve: no LP mint"
            return
        if isinstance(pool, PumpSwapPool):
            venue, quote_mint, vault, lp_mint, minted = (
                "PumpSwap",
                pool.quote_mint,
                pool.pool_quote_token_account,
                pool.lp_mint,
                pool.lp_supply,
            )
        else:
            # Raydium v4: the meme may sit on either side (pump.fun migrations put WSOL as the coin).
            meme_is_base = pool.base_mint == launch.mint
            quote_mint = pool.quote_mint if meme_is_base else pool.base_mint
            vault = pool.quote_vault if meme_is_base else pool.base_vault
            venue, lp_mint, minted = "Raydium AMM v4", pool.lp_mint, pool.lp_reserve
        try:
            second = await self._accounts({vault: self.state_ttl, lp_mint: self.state_ttl})
            vault_r: object = second[vault]
            lp_r: object = second[lp_mint]
        except LookupFailed as exc:
            vault_r = lp_r = exc
        try:
            account = _ok(vault_r)
            if account is None:
                raise LookupFailed(f"quote vault {vault} not found")
            reserve = decode_token_account(account.data, owner=account.owner).amount
            out.liquidity = self._liquidity(venue, address, quote_mint, reserve)
        except (LookupFailed, DecodeError) as exc:
            out.fail("liquidity", exc)
        try:
            account = _ok(lp_r)
            if account is None:
                raise LookupFailed(f"LP mint {lp_mint} not found")
            lp = decode_mint(account.data, owner=account.owner)
            out.lp = LpInfo(lp_mint=lp_mint, minted=minted, supply=lp.supply, decimals=lp.decimals)
        except (LookupFailed, DecodeError) as exc:
            out.fail("lp", exc)

    def _liquidity(
        self, venue: str, pool: str, quote_mint: str, reserve: int, *, curve: bool = False, complete: bool = False
    ) -> LiquidityInfo:
        decimals = KNOWN_DECIMALS.get(quote_mint, NATIVE_DECIMALS)
        usd_per_native = self.prices.usd_per_native("solana") if self.prices else None
        whole = Decimal(reserve).scaleb(-decimals)
        if quote_mint == NATIVE_MINT:
            native: Decimal | None = whole
            usd = whole * usd_per_native if usd_per_native is not None else None
        else:
            # Stable-quoted (USDC/USDT): the reserve is USD; SOL needs the SOL/USD price.
            usd = whole if quote_mint in KNOWN_DECIMALS else None
            native = usd / usd_per_native if usd is not None and usd_per_native else None
        return LiquidityInfo(
            venue=venue,
            pool=pool,
            quote_mint=quote_mint,
            quote_reserve=reserve,
            quote_decimals=decimals,
            native=native,
            usd=usd,
            bonding_curve=curve,
            complete=complete,
        )

    def _holders(
        self,
        out: Features,
        mint: Mint | None,
        result: object,
        launch: TokenLaunch,
        pool: Pool | None,
        programs: tuple[str, ...],
    ) -> None:
        try:
            if mint is None:
                raise LookupFailed(f"supply unknown ({out.missing.get('mint', 'mint look-up failed')})")
            if isinstance(result, Exception):
                raise result
            holdings: list[TokenHolding] = result  # type: ignore[assignment]
            _check_complete(holdings, mint.supply)
        except LookupFailed as exc:
            out.fail("holders", exc)
            return
        excluded = set(_pool_accounts(launch, pool))
        for owner in (launch.bonding_curve, launch.pool):
            if owner:
                excluded.update(ata(owner, launch.mint, p) for p in programs)
        top = [h for h in holdings if h.address not in excluded]
        dropped = tuple(h.address for h in holdings if h.address in excluded)
        out.holders = HoldersInfo(
            supply=mint.supply,
            top=tuple(_holder(h) for h in sorted(top, key=lambda h: -h.amount)),
            excluded=dropped,
        )

    def _creator(self, out: Features, result: object) -> None:
        if not out.creator:
            out.missing["creator"] = "the launch names no creator"
            return
        try:
            accounts: list[AccountData | None] | None = _ok(result)
            if accounts is None:
                raise LookupFailed("no creator account looked up")
            out.creator_holding = sum(
                decode_token_account(a.data, owner=a.owner).amount for a in accounts if a is not None
            )
        except (LookupFailed, DecodeError) as exc:
            out.fail("creator_holding", exc)


def _invalid_address(launch: TokenLaunch) -> str:
    for what, address in (
        ("mint", launch.mint),
        ("creator", launch.creator),
        ("bonding curve", launch.bonding_curve),
        ("pool", launch.pool),
    ):
        if address:
            try:
                Pubkey.from_string(address)
            except ValueError:
                return f"invalid {what} address {address[:64]!r}"
    return ""


def _ok(result: object) -> Any:
    if isinstance(result, Exception):
        raise result if isinstance(result, LookupFailed) else LookupFailed(f"{type(result).__name__}: {result}")
    return result


def _check_complete(holdings: list[TokenHolding], supply: int) -> None:
    """Fewer than the most accounts the RPC returns are all the accounts, so they hold the supply (give or
    take a mint or burn between the two reads); far less means a lagging node's partial answer."""
    held = sum(h.amount for h in holdings)
    if len(holdings) < MAX_LARGEST_ACCOUNTS and held * 100 < supply * HELD_PCT_COMPLETE:
        raise LookupFailed(f"largest accounts answer incomplete: {len(holdings)} accounts hold {held} of {supply}")


def _holder(h: TokenHolding) -> Holder:
    return Holder(h.address, h.amount)


def _pool_accounts(launch: TokenLaunch, pool: Pool | None) -> list[str]:
    """The curve, the pool and the vaults the launch or the decoded pool names (a CPMM pool is not decoded)."""
    accounts = [a for a in (launch.bonding_curve, launch.pool, launch.base_vault, launch.quote_vault) if a]
    if isinstance(pool, PumpSwapPool):
        accounts += [pool.pool_base_token_account, pool.pool_quote_token_account]
    elif isinstance(pool, RaydiumV4Pool):
        accounts += [pool.base_vault, pool.quote_vault]
    return accounts
