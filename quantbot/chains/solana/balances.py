"""A wallet's net trade in one transaction, from its own balance changes (notes section 7).

SOL value of a wallet = its lamports + the lamports of every token account it owns (so wrapping SOL,
paying rent for a new token account or getting it back on close moves nothing), plus the transaction
fee when it paid it, plus plain SOL tips it sent at top level (system transfers to an account that
still holds lamports afterwards, i.e. not a temporary wrapped-SOL account). Token deltas are per mint
over the accounts it owns; wrapped SOL is in the SOL figure, not a token. A multi-hop route therefore
collapses to what left and what arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from quantbot.chains.solana.layout import LayoutError
from quantbot.chains.solana.programs import (
    KNOWN_DECIMALS,
    NATIVE_MINT,
    QUOTE_MINTS,
    SOL_DECIMALS,
    SYSTEM_PROGRAM,
    SYSTEM_TRANSFER_TAG,
)
from quantbot.chains.solana.txmodel import Ix, TokenBalance, TxView

_TRANSFER_TAG = SYSTEM_TRANSFER_TAG.to_bytes(4, "little")
_TRANSFER_B58_PREFIX = "3Bxs"
"""Every System transfer's data (u32 2 + u64) is 16 base58 characters starting with this (checked over
the whole u64 range), so other instructions are ruled out without decoding them."""
SOL_DUST = 10_000_000
"""|SOL change| below 0.01 SOL on a side that also moved a token is account rent or fees, not the trade."""


# msgspec Structs rather than frozen dataclasses: several are built per transaction, and a frozen
# dataclass's __init__ goes through object.__setattr__ for every field.
class TokenAccount(msgspec.Struct, frozen=True, gc=False):
    owner: str
    mint: str
    decimals: int


class Leg(msgspec.Struct, frozen=True, gc=False):
    mint: str
    amount: int
    decimals: int | None


class NetTrade(msgspec.Struct, frozen=True, gc=False):
    wallet: str
    spent: Leg
    received: Leg
    fee: int


class Balances:
    """Token balances of one transaction, by account index; owners and amounts are read on demand.

    Most transactions list a few dozen token accounts and only the signers' few matter, so nothing
    is converted or indexed per row up front beyond the two index dicts.
    """

    __slots__ = ("post", "pre", "view")

    def __init__(self, view: TxView) -> None:
        self.view = view
        meta = view.meta
        # amount digits and decimals range: checked while decoding
        self.pre: dict[int, TokenBalance] = {tb.account_index: tb for tb in meta.pre_token_balances or ()}
        self.post: dict[int, TokenBalance] = {tb.account_index: tb for tb in meta.post_token_balances or ()}
        n = len(view.keys)
        for table in (self.pre, self.post):
            if table and max(table) >= n:
                raise LayoutError("bad_account_index", f"token balance index {max(table)}")

    def account(self, address: str) -> TokenAccount | None:
        """The token account at `address` (owner, mint, decimals), if the balances list it with an owner."""
        try:
            i = self.view.keys.index(address)
        except ValueError:
            return None
        row = self.post.get(i) or self.pre.get(i)
        if row is None or row.owner is None:
            return None
        return TokenAccount(row.owner, row.mint, row.ui_token_amount.decimals)

    def decimals_of(self, mint: str) -> int | None:
        """A mint's decimals: a well-known quote mint's, else from its token balance rows, else None."""
        known = KNOWN_DECIMALS.get(mint)
        if known is not None:
            return known
        for table in (self.pre, self.post):
            for tb in table.values():
                if tb.mint == mint:
                    return tb.ui_token_amount.decimals
        return None

    def owned(self, wallet: str) -> set[int]:
        """Indices of the token accounts `wallet` owns before, after or both."""
        owned = {i for i, tb in self.pre.items() if tb.owner == wallet}
        owned.update([i for i, tb in self.post.items() if tb.owner == wallet])
        return owned


def amount(row: TokenBalance | None) -> int:
    """A token balance row's raw amount (0 for no row)."""
    return int(row.ui_token_amount.amount) if row is not None else 0


def system_transfer(ix_parsed: Any, accounts: list[str], data: bytes | None) -> tuple[str, str, int] | None:
    """(source, destination, lamports) of a System `transfer`, parsed or raw; None if it is not one."""
    if isinstance(ix_parsed, dict):
        if ix_parsed.get("type") != "transfer":
            return None
        info = ix_parsed.get("info")
        if not isinstance(info, dict):
            raise LayoutError("bad_parsed", "system transfer without info")
        src, dst, lamports = info.get("source"), info.get("destination"), info.get("lamports")
        if not (isinstance(src, str) and isinstance(dst, str) and type(lamports) is int and lamports >= 0):
            raise LayoutError("bad_parsed", "system transfer fields")
        return src, dst, lamports
    if data is None or len(data) != 12 or data[:4] != _TRANSFER_TAG:
        return None
    if len(accounts) < 2:
        raise LayoutError("bad_accounts", "system transfer")
    return accounts[0], accounts[1], int.from_bytes(data[4:12], "little")


def system_transfer_of(ix: Ix) -> tuple[str, str, int] | None:
    """`system_transfer` for an instruction, skipping the base58 decode when the data cannot be one."""
    if ix.parsed is None:
        data = ix.data
        if isinstance(data, str):
            if len(data) != 16 or not data.startswith(_TRANSFER_B58_PREFIX):
                return None
        elif not isinstance(data, bytes) or len(data) != 12:
            return None
        return system_transfer(None, ix.accounts, ix.raw())
    return system_transfer(ix.parsed, [], None)


def _tips(view: TxView, wallet: str, owned_addresses: set[str]) -> int:
    """SOL the wallet sent at top level to other accounts that still hold it at the end of the tx.

    That excludes wrapping (funding its own token accounts, listed or opened-and-closed in the tx:
    a closed account ends with 0 lamports) and leaves tips, platform fees and payments.
    """
    total = 0
    for ix in view.top:
        if ix.program != SYSTEM_PROGRAM:
            continue
        t = system_transfer_of(ix)
        if t is None:
            continue
        src, dst, lamports = t
        if src == wallet and dst != wallet and dst not in owned_addresses and still_funded(view, dst):
            total += lamports
    return total


def still_funded(view: TxView, address: str) -> bool:
    """True when `address` holds lamports after the transaction (it was not a temporary account)."""
    try:
        return view.meta.post_balances[view.keys.index(address)] > 0
    except ValueError:
        return False


def net_trades(view: TxView, balances: Balances) -> list[NetTrade]:
    """Every signer whose balances show something spent and something received."""
    if view.err is not None:
        return []
    meta = view.meta
    trades: list[NetTrade] = []
    for wallet in dict.fromkeys(view.signers):
        owned = balances.owned(wallet)
        if not owned:
            continue  # holds no token account here: no token moved for it
        wi = view.keys.index(wallet)
        deltas: dict[str, int] = {}
        pre_rows, post_rows = balances.pre, balances.post
        for i in owned:
            pre, post = pre_rows.get(i), post_rows.get(i)
            mint = (post or pre).mint  # type: ignore[union-attr]
            if mint == NATIVE_MINT:
                continue
            deltas[mint] = deltas.get(mint, 0) + amount(post) - amount(pre)
        if not any(deltas.values()):
            continue  # no token moved: not a swap (plain SOL transfers are Transfer events)
        post_lamports, pre_lamports = meta.post_balances, meta.pre_balances
        sol = post_lamports[wi] - pre_lamports[wi]
        sol += sum(map(post_lamports.__getitem__, owned)) - sum(map(pre_lamports.__getitem__, owned))
        fee = meta.fee if wi == 0 else 0
        sol += fee
        sol += _tips(view, wallet, set(map(view.keys.__getitem__, owned)))
        deltas[NATIVE_MINT] = sol
        trade = _pick(wallet, deltas, balances.decimals_of, fee)
        if trade is not None:
            trades.append(trade)
    return trades


def _pick(wallet: str, deltas: dict[str, int], decimals: Callable[[str], int | None], fee: int) -> NetTrade | None:
    spent: dict[str, int] = {}
    received: dict[str, int] = {}
    for mint, delta in deltas.items():
        if delta < 0:
            spent[mint] = -delta
        elif delta > 0:
            received[mint] = delta
    for side in (spent, received):
        if len(side) > 1 and side.get(NATIVE_MINT, SOL_DUST) < SOL_DUST:
            del side[NATIVE_MINT]
    if not spent or not received or (len(spent) > 1 and len(received) > 1):
        return None  # nothing traded, or several in and several out: not one trade we can name
    return NetTrade(wallet=wallet, spent=_best(spent, decimals), received=_best(received, decimals), fee=fee)


def _best(side: dict[str, int], decimals: Callable[[str], int | None]) -> Leg:
    """The leg that names one side: its only mint, else the largest quote mint, else the largest by units."""
    if len(side) == 1:
        ((mint, amount),) = side.items()
        return Leg(mint, amount, decimals(mint))
    scale = {m: decimals(m) for m in side}
    quotes = [m for m in side if m in QUOTE_MINTS]
    if quotes:
        mint = max(quotes, key=lambda m: side[m] / 10 ** _or(scale[m], SOL_DECIMALS))
    else:
        mint = max(side, key=lambda m: side[m] / 10 ** _or(scale[m], 0))
    return Leg(mint, side[mint], scale[mint])


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
