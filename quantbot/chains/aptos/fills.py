"""A wallet's net balance changes in one Aptos REST transaction: how an executor reads its real fill.

The same net-flow rules as the parser (rest.py legs, gas not a flow, APT under its coin type), for
one wallet, whether or not the transaction is a clean two-leg swap, and for committed *or simulated*
transactions (a simulation's `events`/`changes` have the committed shape).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from quantbot.chains.aptos.addresses import AddressError, normalize_address
from quantbot.chains.aptos.rest import (
    Rejected,
    UserTransaction,
    WriteSet,
    balance_legs,
    canonical_events,
    drop_gas_leg,
    gas_charge,
)


def wallet_deltas(tx: Mapping[str, Any], wallet: str) -> dict[str, int]:
    """Asset -> signed base-unit change for `wallet`, gas excluded (zero nets dropped).

    Raises ValueError when `tx` is not a readable user transaction (the reason, never the payload).
    """
    try:
        owner = normalize_address(wallet)
        user = canonical_events(msgspec.convert(tx, UserTransaction))
        payer = normalize_address(user.sender)
        if user.signature is not None and user.signature.fee_payer_address:
            payer = normalize_address(user.signature.fee_payer_address)
        legs, _ = balance_legs(user, WriteSet(user))
        legs = drop_gas_leg(legs, user.events, payer, gas_charge(user))
    except msgspec.ValidationError as exc:
        raise ValueError(f"not an Aptos user transaction: {exc}") from None
    except Rejected as exc:
        raise ValueError(f"unreadable Aptos transaction ({exc.reason}): {exc.detail}") from None
    except AddressError as exc:
        raise ValueError(str(exc)) from None
    out: dict[str, int] = {}
    for leg in legs:
        if leg.owner == owner:
            out[leg.asset] = out.get(leg.asset, 0) + leg.delta
    return {asset: delta for asset, delta in out.items() if delta != 0}


def gas_fee(tx: Mapping[str, Any]) -> int:
    """Octas the transaction cost its fee payer: gas less the storage refund (`rest.gas_charge`; negative when the
    refund was the larger). Raises ValueError when `tx` has no readable charge."""
    try:
        return gas_charge(canonical_events(msgspec.convert(tx, UserTransaction)))
    except msgspec.ValidationError as exc:
        raise ValueError(f"not an Aptos user transaction: {exc}") from None
    except Rejected as exc:
        raise ValueError(f"transaction without a readable gas charge ({exc.reason}): {exc.detail}") from None
