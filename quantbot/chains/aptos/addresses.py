"""Aptos address and asset naming: one canonical spelling for every address, type and asset.

The REST API prints addresses without leading zeros (`0x7730cd28…` for the package at `0x007730cd…`),
the indexer in long form, operators in either. Everything the project compares goes through here:

* an **address** is canonical in AIP-40 form, what `aptos_sdk.AccountAddress.__str__` prints: the
  special addresses `0x0`..`0xf` short, every other address `0x` + 64 lower-case hex digits;
* a **Move type** (`0x1::coin::CoinStore<0x1::aptos_coin::AptosCoin>`) is canonical with every
  address inside it canonical and generic arguments separated by `", "` (as the REST API prints);
* an **asset** (the `mint` fields of `Swap`/`Transfer`) is named by its coin type string for a coin
  (`0xf22b…::asset::USDC`) or by its fungible-asset metadata address for an FA (`0xbae2…6f3b`).
  APT is the one asset that lives under both names at once (coin `0x1::aptos_coin::AptosCoin`,
  FA metadata `0xa`); both are named `APT` (the coin type) so that a wallet's APT moves through its
  CoinStore and its primary FA store add up to one net delta. Other migrated coins are unified the
  same way within a transaction when their paired FA address is derivable from a coin type the
  transaction mentions (`AssetNamer`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable

from aptos_sdk.account_address import AccountAddress

APT = "0x1::aptos_coin::AptosCoin"
"""APT's coin type: the name the parser gives APT, whether it moved as a coin or as the 0xa FA."""
APT_FA = "0xa"
"""APT's fungible-asset metadata address (canonical form)."""
APT_DECIMALS = 8

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{1,64}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRIMITIVES = frozenset({"bool", "u8", "u16", "u32", "u64", "u128", "u256", "address", "signer"})
_MAX_TYPE_DEPTH = 8
_MAX_TYPE_LENGTH = 4096


class AddressError(ValueError):
    """Not an Aptos address or Move type: the message names the value and the expected form."""


@functools.lru_cache(maxsize=1 << 16)
def normalize_address(value: str) -> str:
    """`0x` + 1..64 hex digits -> canonical AIP-40 form (`0x1`, `0x00a8…`); AddressError otherwise."""
    if not isinstance(value, str) or _HEX_ADDRESS.fullmatch(value) is None:
        raise AddressError(f"{value!r} is not an Aptos address: expected 0x followed by 1 to 64 hex digits")
    return str(AccountAddress.from_str_relaxed(value))


def is_address(value: object) -> bool:
    return isinstance(value, str) and _HEX_ADDRESS.fullmatch(value) is not None


def long_address(value: str) -> str:
    """`0x` + 64 hex digits, the indexer's form (special addresses padded too)."""
    return "0x" + normalize_address(value)[2:].rjust(64, "0")


def short_address(value: str) -> str:
    """The REST API's form (leading zeros stripped): what the paired-FA derivation hashes."""
    return "0x" + (normalize_address(value)[2:].lstrip("0") or "0")


def address_bytes(value: str) -> bytes:
    return bytes.fromhex(long_address(value)[2:])


def normalize_addresses(values: Iterable[str]) -> frozenset[str]:
    """A watch list in canonical form (for O(1) membership tests against parsed addresses)."""
    return frozenset(normalize_address(v) for v in values)


# --- Move types ----------------------------------------------------------------------------------


def _split_args(text: str) -> list[str]:
    """Split generic arguments on top-level commas (bracket-depth aware)."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
            if depth < 0:
                raise AddressError(f"unbalanced '>' in Move type arguments {text!r}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise AddressError(f"unbalanced '<' in Move type arguments {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _format_type(text: str, short: bool, depth: int) -> str:
    if depth > _MAX_TYPE_DEPTH:
        raise AddressError(f"Move type nested deeper than {_MAX_TYPE_DEPTH} levels")
    text = text.strip()
    if text in _PRIMITIVES:
        return text
    head, sep, rest = text.partition("<")
    if sep:
        if not rest.endswith(">"):
            raise AddressError(f"{text!r} is not a Move type: generic arguments must end with '>'")
        args = [_format_type(a, short, depth + 1) for a in _split_args(rest[:-1])]
        if any(not a for a in args):
            raise AddressError(f"{text!r} is not a Move type: empty generic argument")
    else:
        args = []
    if head == "vector":
        if len(args) != 1:
            raise AddressError(f"{text!r} is not a Move type: vector takes exactly one type argument")
        return f"vector<{args[0]}>"
    pieces = head.split("::")
    if len(pieces) != 3 or not all(_IDENT.fullmatch(p) for p in pieces[1:]):
        raise AddressError(f"{text!r} is not a Move type: expected ADDRESS::module::Name<args>")
    address = short_address(pieces[0]) if short else normalize_address(pieces[0])
    name = f"{address}::{pieces[1]}::{pieces[2]}"
    return f"{name}<{', '.join(args)}>" if args else name


@functools.lru_cache(maxsize=1 << 14)
def normalize_type(value: str) -> str:
    """A Move type or coin type string with every address canonical; AddressError if malformed.

    (aptos_sdk's StructTag.from_str rejects primitive type arguments and accepts malformed names,
    so this small strict parser is ours.)
    """
    if not isinstance(value, str) or len(value) > _MAX_TYPE_LENGTH:
        raise AddressError(f"{str(value)[:80]!r} is not a Move type")
    return _format_type(value, short=False, depth=0)


def canonical_type(value: str) -> str:
    """`normalize_type`, or the value unchanged when it is not a Move type (an unknown event stays unknown)."""
    try:
        return normalize_type(value)
    except AddressError:
        return value


def short_type(value: str) -> str:
    """The type string with addresses in the REST API's short form (input of the paired-FA hash)."""
    return _format_type(value, short=True, depth=0)


def struct_base(value: str) -> tuple[str, str]:
    """Canonical `(package address, "module::Name")` of a Move struct type, generics dropped."""
    head = normalize_type(value).split("<", 1)[0]
    address, _, rest = head.partition("::")
    return address, rest


# --- assets --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 14)
def paired_fa_metadata(coin_type: str) -> str:
    """The FA metadata address paired with a migrated coin: sha3_256(0x…0a || short type || 0xFE).

    APT is special-cased by the framework to `0xa`.
    """
    canonical = normalize_type(coin_type)
    if canonical == APT:
        return APT_FA
    digest = hashlib.sha3_256(address_bytes(APT_FA) + short_type(canonical).encode() + b"\xfe").digest()
    return normalize_address("0x" + digest.hex())


def primary_store_address(owner: str, metadata: str) -> str:
    """The primary fungible store of (owner, FA metadata): sha3_256(owner || metadata || 0xFC)."""
    digest = hashlib.sha3_256(address_bytes(owner) + address_bytes(metadata) + b"\xfc").digest()
    return normalize_address("0x" + digest.hex())


def asset_name(value: str) -> str:
    """Canonical asset name from a coin type or an FA metadata address (APT's FA `0xa` -> APT)."""
    if "::" in value:
        return normalize_type(value)
    address = normalize_address(value)
    return APT if address == APT_FA else address


class AssetNamer:
    """Names FA metadata addresses within one transaction: a migrated coin's paired FA gets the coin type.

    Built from the coin types the transaction mentions (coin events, CoinStore writes, payload type
    arguments), so a coin moved as a coin in one leg and as its paired FA in another nets to one asset.
    """

    __slots__ = ("_paired",)

    def __init__(self, coin_types: Iterable[str] = ()) -> None:
        self._paired: dict[str, str] = {APT_FA: APT}
        for coin_type in coin_types:
            try:
                canonical = normalize_type(coin_type)
                self._paired.setdefault(paired_fa_metadata(canonical), canonical)
            except AddressError:
                continue

    def fa(self, metadata: str) -> str:
        address = normalize_address(metadata)
        return self._paired.get(address, address)

    def coin(self, coin_type: str) -> str:
        return normalize_type(coin_type)
