"""Prices from on-chain reserves: pump.fun bonding curves and pool vault token accounts.

`ReserveWatches` knows which watched account prices which token and turns each AccountUpdate's
data into a price observation (a curve's virtual reserves, or a pool's two vault amounts). The
account layouts are read by the Solana decoders (quantbot.chains.solana.accounts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from solders.pubkey import Pubkey

from quantbot.assets import WSOL, is_native, stable
from quantbot.chains.solana.accounts import DecodeError, decode_bonding_curve, decode_token_account
from quantbot.chains.solana.programs import PUMP_FUN_PROGRAM
from quantbot.price_quorum import Observation


class ReservesError(ValueError):
    """Account data that does not hold what it should."""


def bonding_curve_address(mint: str) -> str:
    """pump.fun bonding curve PDA: seeds ["bonding-curve", mint] under the pump program."""
    program = Pubkey.from_string(PUMP_FUN_PROGRAM)
    pda, _ = Pubkey.find_program_address([b"bonding-curve", bytes(Pubkey.from_string(mint))], program)
    return str(pda)


@dataclass(slots=True)
class Watch:
    chain: str
    token: str
    kind: Literal["curve", "vault"]
    amount: int | None = None
    mint: str | None = None


class ReserveWatches:
    """Which watched accounts price which token, and what their latest data says about the price."""

    def __init__(self) -> None:
        self.watches: dict[str, Watch] = {}
        self._by_token: dict[tuple[str, str], list[str]] = {}

    def __len__(self) -> int:
        return len(self.watches)

    def add(self, account: str, *, chain: str, token: str, kind: Literal["curve", "vault"]) -> bool:
        """Remember `account`; False if it was already watched."""
        if account in self.watches:
            return False
        self.watches[account] = Watch(chain=chain, token=token, kind=kind)
        self._by_token.setdefault((chain, token), []).append(account)
        return True

    def remove(self, account: str) -> bool:
        watch = self.watches.pop(account, None)
        if watch is None:
            return False
        key = (watch.chain, watch.token)
        accounts = self._by_token.get(key, [])
        if account in accounts:
            accounts.remove(account)
        if not accounts:
            self._by_token.pop(key, None)
        return True

    def accounts_of(self, chain: str, token: str) -> list[str]:
        return list(self._by_token.get((chain, token), ()))

    def observe(
        self, account: str, owner: str, data: bytes, *, at: datetime
    ) -> tuple[Watch, Observation | None] | None:
        """(the watch, its price observation) for a watched account's new data; None if not watched.

        A completed curve gives (watch, None): it prices nothing any more. Raises ReservesError (a
        ValueError) on data that is not what the account should hold.
        """
        watch = self.watches.get(account)
        if watch is None:
            return None
        try:
            if watch.kind == "curve":
                return watch, self._curve(account, data, owner, watch, at)
            acct = decode_token_account(data, owner=owner)
        except DecodeError as exc:
            raise ReservesError(f"{watch.kind} account {account}: {exc}") from exc
        watch.amount, watch.mint = acct.amount, acct.mint
        return watch, self._pool(watch.chain, watch.token, at)

    @staticmethod
    def _curve(account: str, data: bytes, owner: str, watch: Watch, at: datetime) -> Observation | None:
        state = decode_bonding_curve(data, owner=owner)
        if state.complete:
            return None
        if state.virtual_token_reserves <= 0:
            raise ReservesError(f"curve {account} has no virtual token reserves")
        price = Decimal(state.virtual_sol_reserves) / Decimal(state.virtual_token_reserves)
        if state.quote_mint == WSOL:
            return Observation(at=at, native=price)
        coin = stable(watch.chain, state.quote_mint)
        if coin is None:
            raise ReservesError(f"curve {account} is quoted in {state.quote_mint}, neither SOL nor a stablecoin")
        return Observation(at=at, usd=price.scaleb(-coin.decimals))

    def _pool(self, chain: str, token: str, at: datetime) -> Observation | None:
        """Quote vault amount / token vault amount, once both sides of the pool are known."""
        side = {w.mint: w.amount for a in self.accounts_of(chain, token) if (w := self.watches[a]).kind == "vault"}
        token_amt = side.get(token)
        quote = [(m, a) for m, a in side.items() if m != token and m is not None and a is not None]
        if not token_amt or len(quote) != 1:
            return None
        quote_mint, quote_amt = quote[0]
        if is_native(chain, quote_mint):
            return Observation(at=at, native=Decimal(quote_amt) / token_amt)
        coin = stable(chain, quote_mint)
        if coin is not None:
            return Observation(at=at, usd=Decimal(quote_amt).scaleb(-coin.decimals) / token_amt)
        return None
