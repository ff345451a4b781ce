"""Ledger-stream filter: which addresses a REST transaction touches, without parsing it fully.

The watcher follows `/v1/transactions` (every transaction on chain) and keeps only those touching a
watched wallet. Candidates are: the sender, the fee payer, secondary signers, the accounts of v1
event handles, any event's `account`/`store_owner`/`owner` field (coin module events, USDC's
stablecoin events, store deletions; a superset is harmless in a pre-filter), the owners of fungible
stores the transaction wrote (`ObjectCore` next to a `FungibleStore`) and of written `CoinStore`s.
Each candidate is normalised (cached) and looked up in a set: O(1) per candidate, whatever the
number of watched wallets.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from quantbot.chains.aptos.addresses import canonical_type, is_address, normalize_address

_NO_ACCOUNT = "0x0"
_DATA_OWNER_KEYS = ("account", "store_owner", "owner")


def _candidates(tx: Mapping[str, Any]) -> Iterator[Any]:
    # Decoded JSON is plain dicts and lists; exact `dict` checks are several times cheaper than the
    # Mapping ABC on this hot path (every transaction on chain goes through here).
    yield tx.get("sender")
    signature = tx.get("signature")
    if isinstance(signature, dict):
        yield signature.get("fee_payer_address")
        secondary = signature.get("secondary_signer_addresses")
        if isinstance(secondary, list):
            yield from secondary
    events = tx.get("events")
    if isinstance(events, list):
        for event in events:
            if not isinstance(event, dict):
                continue
            guid = event.get("guid")
            if isinstance(guid, dict):
                account = guid.get("account_address")
                if account != _NO_ACCOUNT:
                    yield account
            data = event.get("data")
            if isinstance(data, dict):
                for key in _DATA_OWNER_KEYS:
                    if key in data:
                        yield data[key]
    changes = tx.get("changes")
    if isinstance(changes, list):
        stores: set[Any] = set()
        owners: list[tuple[Any, Any]] = []
        for change in changes:
            if not isinstance(change, dict) or change.get("type") != "write_resource":
                continue
            resource = change.get("data")
            if not isinstance(resource, dict):
                continue
            kind = resource.get("type")
            if isinstance(kind, str) and not kind.startswith("0x1::"):
                kind = canonical_type(kind)
            if kind == "0x1::fungible_asset::FungibleStore":
                stores.add(change.get("address"))
            elif kind == "0x1::object::ObjectCore":
                inner = resource.get("data")
                if isinstance(inner, dict):
                    owners.append((change.get("address"), inner.get("owner")))
            elif isinstance(kind, str) and kind.startswith("0x1::coin::CoinStore<"):
                yield change.get("address")
        for address, owner in owners:
            if isinstance(address, str) and address in stores:
                yield owner


def iter_touched(tx: Mapping[str, Any]) -> Iterator[str]:
    """Canonical addresses the transaction touches (may repeat); malformed candidates are skipped."""
    for candidate in _candidates(tx):
        if is_address(candidate):
            yield normalize_address(candidate)
