"""Token decimals for the Aptos parser: read once from chain, then served synchronously from a cache.

Coin types read `0x1::coin::CoinInfo<T>` at the coin's address; fungible assets read
`0x1::fungible_asset::Metadata` at the metadata address. The parser's `decimals=` callable is
synchronous, so the watcher `prefetch`es the assets a transaction mentions before parsing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from aptos_sdk.account_address import AccountAddress
from aptos_sdk.async_client import ResourceNotFound, RestClient

from quantbot.chains.aptos.addresses import canonical_type, normalize_address
from quantbot.chains.aptos.client import AptosRest, AptosUnavailable

log = structlog.get_logger(component="aptos")

APT_COIN = "0x1::aptos_coin::AptosCoin"
_COIN_STORE = re.compile(r"^0x0*1::coin::CoinStore<(.+)>$")


def asset_key(asset: str) -> str:
    """The cache key of a coin type or FA metadata address: its canonical spelling (quantbot.chains.aptos.addresses)."""
    return canonical_type(asset) if "::" in asset else normalize_address(asset)


class DecimalsCache:
    """`get(asset)` -> decimals or None (unknown yet or not a token); `prefetch` fills it from chain."""

    def __init__(self, *, rest: AptosRest) -> None:
        self.rest = rest
        self._known: dict[str, int | None] = {
            asset_key(APT_COIN): 8,
            asset_key("0xa"): 8,
        }
        self.lookups = 0

    def get(self, asset: str) -> int | None:
        try:
            return self._known.get(asset_key(asset))
        except (RuntimeError, ValueError):
            return None

    async def resolve(self, asset: str) -> int | None:
        """Decimals of a coin type or FA metadata address, read from chain once; None if it has none."""
        key = asset_key(asset)
        if key in self._known:
            return self._known[key]
        if "::" in key:
            owner, resource = key.split("::")[0], f"0x1::coin::CoinInfo<{key}>"
        else:
            owner, resource = key, "0x1::fungible_asset::Metadata"
        self.lookups += 1

        async def read(client: RestClient) -> dict[str, Any]:
            return dict(await client.account_resource(AccountAddress.from_str_relaxed(owner), resource))

        try:
            data = (await self.rest.call("decimals", read)).get("data", {})
            value: int | None = int(data["decimals"])
        except ResourceNotFound:
            value = None
        except (KeyError, TypeError, ValueError):
            log.warning("aptos.decimals_malformed", asset=asset, resource=resource)
            value = None
        self._known[key] = value
        return value

    async def prefetch(self, tx: Mapping[str, Any]) -> None:
        """Resolve every asset a transaction's write set and payload mention (failures stay unknown)."""
        for asset in assets_in(tx):
            try:
                key = asset_key(asset)
            except (RuntimeError, ValueError):
                continue
            if key not in self._known:
                try:
                    await self.resolve(asset)
                except AptosUnavailable as exc:
                    log.warning("aptos.decimals_unavailable", asset=asset, error=str(exc))


def assets_in(tx: Mapping[str, Any]) -> Iterable[str]:
    """Coin types (CoinStore<T> writes, payload type args) and FA metadata (FungibleStore writes)."""
    seen: set[str] = set()
    for change in tx.get("changes") or ():
        data = change.get("data") if isinstance(change, Mapping) else None
        if not isinstance(data, Mapping):
            continue
        rtype = str(data.get("type", ""))
        if rtype == "0x1::fungible_asset::FungibleStore":
            inner = (data.get("data") or {}).get("metadata", {}).get("inner")
            if isinstance(inner, str):
                seen.add(inner)
        elif (m := _COIN_STORE.match(rtype)) is not None:
            seen.add(m.group(1))
    payload = tx.get("payload")
    if isinstance(payload, Mapping):
        for t in payload.get("type_arguments") or ():
            if isinstance(t, str) and t.count("::") == 2 and "<" not in t:
                seen.add(t)
    return sorted(seen)
