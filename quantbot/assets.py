"""Well-known assets per chain: the native coin (and the names it goes by) and the USD stablecoins.

Facts from shared/notes (solana.md section 7, aptos.md section 4.4). Aptos asset ids are compared in the
parser's canonical form (`normalise`); coin types keep their module path.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantbot.chains.aptos.addresses import AddressError, asset_name

NATIVE_DECIMALS: dict[str, int] = {"solana": 9, "aptos": 8}

WSOL = "So11111111111111111111111111111111111111112"
SOL_SYSTEM = "11111111111111111111111111111111"
USDC_SOLANA = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT_SOLANA = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"

APT_COIN = "0x1::aptos_coin::AptosCoin"
APT_FA = "0x000000000000000000000000000000000000000000000000000000000000000a"
USDC_APTOS = "0xbae207659db88bea0cbead6da0ed00aac12edcdda169e591cd41c94180b46f3b"
USDT_APTOS = "0x357b0b74bc833e95a115ad22604854d6b0fca151cecd94111770e5d6ffc9dc2b"
LZUSDC_COIN = "0xf22bede237a07e121b56d91a491eb7bcdfd1f5907926a9e58338f964a01b17fa::asset::USDC"
LZUSDC_FA = "0x2b3be0a97a73c87ff62cbdd36837a9fb5bbd1d7f06a73b7ed62ec15c5326c1b8"
LZUSDT_COIN = "0xf22bede237a07e121b56d91a491eb7bcdfd1f5907926a9e58338f964a01b17fa::asset::USDT"


@dataclass(frozen=True, slots=True)
class Stable:
    symbol: str
    decimals: int


NATIVE_NAMES: dict[str, frozenset[str]] = {
    "solana": frozenset({WSOL, SOL_SYSTEM, "SOL"}),
    "aptos": frozenset({APT_COIN, APT_FA, "APT"}),
}

STABLES: dict[str, dict[str, Stable]] = {
    "solana": {USDC_SOLANA: Stable("USDC", 6), USDT_SOLANA: Stable("USDT", 6)},
    "aptos": {
        USDC_APTOS: Stable("USDC", 6),
        USDT_APTOS: Stable("USDT", 6),
        LZUSDC_COIN: Stable("lzUSDC", 6),
        LZUSDC_FA: Stable("lzUSDC", 6),
        LZUSDT_COIN: Stable("lzUSDT", 6),
    },
}


def normalise(chain: str, asset: str) -> str:
    """The canonical spelling of an asset id, the one the chain parsers give it (Aptos: AIP-40 addresses, in coin types
    too, and APT under its coin type; `quantbot.chains.aptos.addresses.asset_name`). Anything else is left as is."""
    if chain != "aptos":
        return asset
    if asset.startswith("0X"):
        asset = "0x" + asset[2:]
    try:
        return asset_name(asset)
    except AddressError:
        return asset


def is_native(chain: str, asset: str) -> bool:
    return asset in NATIVE_NAMES.get(chain, frozenset())


def stable(chain: str, asset: str) -> Stable | None:
    """The USD stablecoin `asset` is on `chain`, if it is one."""
    return STABLES.get(chain, {}).get(asset)


def is_quote(chain: str, asset: str) -> bool:
    """Native or a USD stablecoin: what trades are measured in."""
    return is_native(chain, asset) or stable(chain, asset) is not None
