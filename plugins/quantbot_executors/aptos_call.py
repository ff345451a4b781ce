"""The `aptos` executor's configuration, router-call templates and wallet key loading.

A router call is an entry function with templated type arguments and arguments. Placeholders:
`{amount_in}`, `{min_amount_out}`, `{wallet}`, `{token_in}`, `{token_out}`, `{expiration}` (the
transaction's expiration, seconds). An argument is `TYPE:VALUE` with TYPE one of u8, u16, u32, u64,
u128, u256, bool, address, object, string; a bare placeholder takes its natural type (`{wallet}`
address, the amounts u64). A coin type given where an address/object is expected is passed as its
paired fungible-asset metadata address (`0x1::aptos_coin::AptosCoin` -> `0xa`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec
from aptos_sdk.account import Account
from aptos_sdk.account_address import AccountAddress
from aptos_sdk.bcs import Serializer
from aptos_sdk.ed25519 import PrivateKey
from aptos_sdk.transactions import EntryFunction, TransactionArgument
from aptos_sdk.type_tag import StructTag, TypeTag

from quantbot.api import PluginConfig, Secret, aptos_paired_metadata, normalise_asset

Seconds = Annotated[float, msgspec.Meta(gt=0)]
PLACEHOLDERS = ("amount_in", "min_amount_out", "wallet", "token_in", "token_out", "expiration")
_NATURAL = {
    "amount_in": "u64",
    "min_amount_out": "u64",
    "expiration": "u64",
    "wallet": "address",
    "token_in": "address",
    "token_out": "address",
}
_UINT_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "u128": 128, "u256": 256}
_ENCODERS: dict[str, Callable[..., None]] = {
    "u8": Serializer.u8,
    "u16": Serializer.u16,
    "u32": Serializer.u32,
    "u64": Serializer.u64,
    "u128": Serializer.u128,
    "u256": Serializer.u256,
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_FUNCTION = re.compile(r"^0x[0-9a-fA-F]{1,64}::[A-Za-z_][A-Za-z0-9_]*::[A-Za-z_][A-Za-z0-9_]*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{1,64}$")


class RouterCall(PluginConfig, frozen=True, kw_only=True):
    """One swap entry function: buy = APT -> token, sell = token -> APT."""

    function: str
    """`address::module::function`, e.g. `0xc7ef…50fa::router::swap_exact_input`."""
    type_arguments: tuple[str, ...] = ("{token_in}", "{token_out}")
    arguments: tuple[str, ...] = ("{amount_in}", "{min_amount_out}")

    def __post_init__(self) -> None:
        if not _FUNCTION.fullmatch(self.function):
            raise ValueError(f"function {self.function!r}: expected 0xADDRESS::module::function")
        for t in self.type_arguments:
            _check_placeholders(t)
            if "{" not in t:
                StructTag.from_str(t)  # raises on a malformed type
        for a in self.arguments:
            kind, value = split_argument(a)
            if kind not in _ENCODERS and kind not in ("bool", "address", "object", "string"):
                raise ValueError(f"argument {a!r}: unknown type {kind!r}")
            if "{" not in value:
                encode_argument(kind, value)  # a literal must encode now, not at the first order

    @property
    def module(self) -> str:
        address, module, _ = self.function.split("::")
        return f"{AccountAddress.from_str_relaxed(address)}::{module}"

    @property
    def name(self) -> str:
        return self.function.split("::")[2]

    def build(self, values: Mapping[str, str]) -> EntryFunction:
        """The entry function with every placeholder filled from `values` (ValueError names the bad one)."""
        ty_args = [TypeTag(StructTag.from_str(_fill(t, values))) for t in self.type_arguments]
        args = []
        for a in self.arguments:
            kind, value = split_argument(a)
            args.append(encode_argument(kind, _fill(value, values)))
        # not EntryFunction.natural's strict ModuleId parsing: REST spells addresses short (aptos.md §1.5)
        return EntryFunction.natural(self.module, self.name, ty_args, args)


def _check_placeholders(text: str) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            raise ValueError(f"{text!r}: unknown placeholder {{{name}}}; known: {', '.join(PLACEHOLDERS)}")


def split_argument(text: str) -> tuple[str, str]:
    """`u64:{amount_in}` -> ("u64", "{amount_in}"); a bare placeholder takes its natural type."""
    _check_placeholders(text)
    if ":" in text and not text.startswith("{"):
        kind, value = text.split(":", 1)
        return kind.strip(), value.strip()
    match = _PLACEHOLDER.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"argument {text!r}: write TYPE:VALUE (e.g. u64:{{amount_in}}, bool:true)")
    return _NATURAL[match.group(1)], text.strip()


def _fill(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def encode_argument(kind: str, value: str) -> TransactionArgument:
    if kind in _ENCODERS:
        number = int(value)
        if not 0 <= number < 2 ** _UINT_BITS[kind]:
            raise ValueError(f"{value} does not fit {kind}")
        return TransactionArgument(number, _ENCODERS[kind])
    if kind == "bool":
        if value not in ("true", "false"):
            raise ValueError(f"bool argument {value!r}: write true or false")
        return TransactionArgument(value == "true", Serializer.bool)
    if kind in ("address", "object"):
        address = aptos_paired_metadata(value) if "::" in value else value
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"{kind} argument {value!r}: not an address")
        return TransactionArgument(AccountAddress.from_str_relaxed(address), Serializer.struct)
    if kind == "string":
        return TransactionArgument(value, Serializer.str)
    raise ValueError(f"unknown argument type {kind!r}")


class AptosExecutorConfig(PluginConfig, frozen=True, kw_only=True):
    nodes: tuple[str, ...] = ("https://api.mainnet.aptoslabs.com/v1",)
    """Fullnode REST base URLs ending in /v1, tried in order with failover."""
    api_key: Secret | None = None
    address: str | None = None
    """The account address, when the key was rotated (else derived from the key)."""
    router: RouterCall | None = None
    """The default swap call; `routes` overrides it per token."""
    routes: dict[str, RouterCall] = {}
    tokens: tuple[str, ...] = ()
    """Tokens (coin types or FA metadata addresses) `balances()` reports besides APT."""
    gas_unit_price_cap: Annotated[int, msgspec.Meta(ge=100)] = 1_000
    """Octas per gas unit at most (the node's estimate is used below this)."""
    max_gas_amount: Annotated[int, msgspec.Meta(ge=2)] = 20_000
    expiration_s: Annotated[float, msgspec.Meta(ge=5, le=3600)] = 60.0
    """A transaction not committed when the chain's clock passes this many seconds after building is EXPIRED."""
    slippage_bps: Annotated[int, msgspec.Meta(ge=0, le=5000)] = 100
    """min_amount_out = simulated output less this (or the order's max_slippage_bps when smaller)."""
    request_timeout: Seconds = 10.0
    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    retry_base: Seconds = 0.2
    retry_cap: Seconds = 5.0
    poll_interval: Seconds = 0.5
    confirm_timeout: Seconds = 120.0
    """Longer than this without a proof either way: SUBMITTED (reconciled later, never re-sent)."""

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("nodes: give at least one fullnode URL ending in /v1")
        for node in self.nodes:
            if not node.startswith(("http://", "https://")) or not node.rstrip("/").endswith("/v1"):
                raise ValueError(f"nodes: {node!r} is not an http(s) URL ending in /v1")
        if self.address is not None and not _ADDRESS.fullmatch(self.address):
            raise ValueError(f"address {self.address!r}: expected 0x followed by 1 to 64 hex digits")
        named: dict[str, str] = {}
        for token in self.routes:
            other = named.setdefault(normalise_asset("aptos", token), token)
            if other != token:
                raise ValueError(f"routes: {other!r} and {token!r} are one token; keep one of them")

    def call_for(self, token: str) -> RouterCall | None:
        """The route for `token`, however `routes` spells it (an order names it canonically)."""
        name = normalise_asset("aptos", token)
        return next((c for t, c in self.routes.items() if normalise_asset("aptos", t) == name), self.router)


def load_account(key: Secret, address: str | None) -> Account:
    """The signer from a hex Ed25519 private key or an AIP-80 `ed25519-priv-0x…` string.

    The error never contains the key (not even a library's message about it).
    """
    text = key.reveal().strip()
    try:
        private = PrivateKey.from_str(text, strict=False)
        account_address = (
            AccountAddress.from_str_relaxed(address) if address else AccountAddress.from_key(private.public_key())
        )
    except Exception:  # noqa: BLE001  (the library's message may quote the key: say nothing of it)
        raise ValueError(
            f"wallet key from {key.source} is not an Ed25519 private key (64 hex digits, or ed25519-priv-0x…)"
        ) from None
    return Account(account_address, private)


def struct_value(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]… or None."""
    for p in path:
        if not isinstance(data, dict):
            return None
        data = data.get(p)
    return data
