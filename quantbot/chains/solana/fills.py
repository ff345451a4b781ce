"""What one transaction moved for one wallet: per-mint balance deltas (the executor's fill reading).

The same balance-delta method the whale tracker uses (notes section 7): token deltas per mint over
the token accounts the wallet owns; SOL as its lamports plus the lamports of its token accounts
(wrapping SOL, paying or refunding account rent move nothing), with the transaction fee added back
when it paid it (the fee is reported on its own). Wrapped SOL counts as SOL, never as a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantbot.chains.solana.balances import Balances, amount
from quantbot.chains.solana.programs import NATIVE_MINT
from quantbot.chains.solana.txmodel import decode_document, view


def wallet_deltas(tx: bytes | str | Mapping[str, Any], wallet: str) -> dict[str, int]:
    """Mint -> signed base-unit change for `wallet` in a getTransaction response (json or jsonParsed).

    SOL is under the native mint, net of the fee the wallet paid (see `wallet_fee`). Mints whose
    balance did not change are left out. Raises LayoutError on a response that is not a transaction.
    """
    v = view(decode_document(tx))
    balances = Balances(v)
    meta = v.meta
    deltas: dict[str, int] = {}
    sol = 0
    for i in balances.owned(wallet):  # owned before, after, or both (an owner change counts on its side only)
        pre, post = balances.pre.get(i), balances.post.get(i)
        before = pre if pre is not None and pre.owner == wallet else None
        after = post if post is not None and post.owner == wallet else None
        sol += (meta.post_balances[i] if after else 0) - (meta.pre_balances[i] if before else 0)
        row = after or before
        if row is None or row.mint == NATIVE_MINT:
            continue
        deltas[row.mint] = deltas.get(row.mint, 0) + amount(after) - amount(before)
    if wallet in v.keys:
        wi = v.keys.index(wallet)
        sol += meta.post_balances[wi] - meta.pre_balances[wi]
        if wi == 0:
            sol += meta.fee
    deltas[NATIVE_MINT] = sol
    return {mint: d for mint, d in deltas.items() if d}


def wallet_fee(tx: bytes | str | Mapping[str, Any], wallet: str) -> int:
    """The fee (lamports, priority fee included) `wallet` paid for the transaction: 0 unless it is the payer."""
    v = view(decode_document(tx))
    return v.fee if v.keys and v.keys[0] == wallet else 0
