"""A wallet's net trade in one transaction, from its own balance changes (notes section 7).

SOL value of a wallet = its lamports + the lamports of every token account it owns (so wrapping SOL,
paying rent for a new token account or getting it back on close moves nothing), plus the transaction
fee when it paid it, plus plain SOL tips it sent at top level (system transfers to an account that no
token instruction touches). Token deltas are per mint over the accounts it owns; wrapped SOL is in
the SOL figure, not a token. A multi-hop route therefore collapses to what left and what arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantbot.chains.solana.layout import LayoutError
from quantbot.chains.solana.programs import (
    KNOWN_DECIMALS,
    NATIVE_MINT,
    QUOTE_MINTS,
    SOL_DECIMALS,
    SYSTEM_PROGRAM,
    SYSTEM_TRANSFER_TAG,
    TOKEN_PROGRAMS,
)
from quantbot.chains.solana.txmodel import TokenBalance, TxView

SOL_DUST = 10_000_000
"""|SOL change| below 0.01 SOL on a side that also moved a token is account rent or fees, not the trade."""


@dataclass(frozen=True, slots=True)
class TokenAccount:
    owner: str
    mint: str
    decimals: int


@dataclass(frozen=True, slots=True)
class Leg:
    mint: str
    amount: int
    decimals: int | None


@dataclass(frozen=True, slots=True)
class NetTrade:
    wallet: str
    spent: Leg
    received: Leg
    fee: int


def _amount(tb: TokenBalance) -> int:
    raw = tb.ui_token_amount.amount
    if not raw.isdigit() or len(raw) > 24:
        raise LayoutError("bad_token_amount", raw[:40])
    return int(raw)


class Balances:
    """Token balances of one transaction, indexed by account index and by address."""

    def __init__(self, view: TxView) -> None:
        self.view = view
        n = len(view.keys)
        self.pre: dict[int, tuple[str, str | None, int, int]] = {}
        self.post: dict[int, tuple[str, str | None, int, int]] = {}
        for src, dst in ((view.meta.pre_token_balances, self.pre), (view.meta.post_token_balances, self.post)):
            for tb in src or ():
                if not 0 <= tb.account_index < n:
                    raise LayoutError("bad_account_index", f"token balance index {tb.account_index}")
                dst[tb.account_index] = (tb.mint, tb.owner, _amount(tb), tb.ui_token_amount.decimals)
        self.accounts: dict[str, TokenAccount] = {}
        for table in (self.pre, self.post):
            for i, (mint, owner, _, decimals) in table.items():
                if owner is not None:
                    self.accounts[view.keys[i]] = TokenAccount(owner, mint, decimals)
        self.decimals: dict[str, int] = dict(KNOWN_DECIMALS)
        for mint, _, _, decimals in (*self.pre.values(), *self.post.values()):
            self.decimals.setdefault(mint, decimals)

    def owned(self, wallet: str) -> set[int]:
        return {i for table in (self.pre, self.post) for i, row in table.items() if row[1] == wallet}


def token_touched(view: TxView) -> set[str]:
    touched: set[str] = set()
    for ix in view.ixs:
        if ix.program in TOKEN_PROGRAMS:
            touched.update(ix.accounts)
            info = ix.parsed.get("info") if isinstance(ix.parsed, dict) else None
            if isinstance(info, dict):
                touched.update(v for v in info.values() if isinstance(v, str))
    return touched


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
    if data is None or len(data) != 12 or int.from_bytes(data[:4], "little") != SYSTEM_TRANSFER_TAG:
        return None
    if len(accounts) < 2:
        raise LayoutError("bad_accounts", "system transfer")
    return accounts[0], accounts[1], int.from_bytes(data[4:12], "little")


def _tips(view: TxView, wallet: str, owned_addresses: set[str], touched: set[str]) -> int:
    total = 0
    for ix in view.ixs:
        if ix.inner or ix.program != SYSTEM_PROGRAM:
            continue
        t = system_transfer(ix.parsed, ix.accounts, None if ix.parsed is not None else ix.raw())
        if t is None:
            continue
        src, dst, lamports = t
        if src == wallet and dst != wallet and dst not in owned_addresses and dst not in touched:
            total += lamports
    return total


def net_trades(view: TxView, balances: Balances) -> list[NetTrade]:
    """Every signer whose balances show something spent and something received."""
    if view.err is not None:
        return []
    meta = view.meta
    touched: set[str] | None = None
    index = {k: i for i, k in enumerate(view.keys)}
    trades: list[NetTrade] = []
    for wallet in dict.fromkeys(view.signers):
        wi = index.get(wallet)
        if wi is None:
            continue
        owned = balances.owned(wallet)
        deltas: dict[str, int] = {}
        for i in owned:
            pre, post = balances.pre.get(i), balances.post.get(i)
            mint = (post or pre)[0]  # type: ignore[index]
            if mint == NATIVE_MINT:
                continue
            deltas[mint] = deltas.get(mint, 0) + (post[2] if post else 0) - (pre[2] if pre else 0)
        if not any(deltas.values()):
            continue  # no token moved: not a swap (plain SOL transfers are Transfer events)
        sol = meta.post_balances[wi] - meta.pre_balances[wi]
        sol += sum(meta.post_balances[i] - meta.pre_balances[i] for i in owned)
        fee = meta.fee if wi == 0 else 0
        sol += fee
        if touched is None:
            touched = token_touched(view)
        sol += _tips(view, wallet, {view.keys[i] for i in owned}, touched)
        deltas[NATIVE_MINT] = sol
        trade = _pick(wallet, deltas, balances.decimals, fee)
        if trade is not None:
            trades.append(trade)
    return trades


def _pick(wallet: str, deltas: dict[str, int], decimals: dict[str, int], fee: int) -> NetTrade | None:
    spent = {m: -v for m, v in deltas.items() if v < 0}
    received = {m: v for m, v in deltas.items() if v > 0}
    for side in (spent, received):
        if len(side) > 1 and side.get(NATIVE_MINT, SOL_DUST) < SOL_DUST:
            del side[NATIVE_MINT]
    if not spent or not received or (len(spent) > 1 and len(received) > 1):
        return None  # nothing traded, or several in and several out: not one trade we can name

    def best(side: dict[str, int]) -> Leg:
        quotes = [m for m in side if m in QUOTE_MINTS]
        if quotes:
            mint = max(quotes, key=lambda m: side[m] / 10 ** decimals.get(m, SOL_DECIMALS))
        else:
            mint = max(side, key=lambda m: side[m] / 10 ** decimals.get(m, 0))
        return Leg(mint, side[mint], decimals.get(mint))

    return NetTrade(wallet=wallet, spent=best(spent), received=best(received), fee=fee)
