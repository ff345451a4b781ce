"""Account decoders: raw bytes (base64 getAccountInfo) or jsonParsed -> typed frozen structs.

SPL mints (Token and Token-2022 with its extensions), token accounts, Metaplex metadata, pump.fun
bonding curves, Raydium AMM v4 and PumpSwap pools. Every decoder checks the owning program when it
is given and raises `DecodeError` (with a short `reason`) for a wrong owner, a wrong length or garbage.
Layouts: shared/notes/solana.md sections 1.1, 1.2, 2.3; Token-2022 extension layouts from spl-token-2022.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from typing import Any

import msgspec

from quantbot.chains.solana.layout import DecodeError, Frozen, LayoutError, Reader, clean_text, pubkey_str
from quantbot.chains.solana.metaplex import MetaplexMetadata, decode_metaplex_metadata
from quantbot.chains.solana.pools import (
    BondingCurve,
    PumpSwapPool,
    RaydiumV4Pool,
    decode_bonding_curve,
    decode_pumpswap_pool,
    decode_raydium_v4_pool,
)
from quantbot.chains.solana.programs import (
    METAPLEX_METADATA_PROGRAM,
    MINT_SIZE,
    PUMP_FUN_PROGRAM,
    PUMPSWAP_PROGRAM,
    RAYDIUM_AMM_V4_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_ACCOUNT_SIZE,
    TOKEN_PROGRAM,
    TOKEN_PROGRAMS,
)

# --- SPL Token / Token-2022 ----------------------------------------------------------------------


class TransferFee(Frozen, frozen=True, kw_only=True):
    epoch: int
    maximum_fee: int
    basis_points: int


class TransferFeeConfig(Frozen, frozen=True, kw_only=True):
    authority: str | None
    withdraw_withheld_authority: str | None
    withheld_amount: int
    older: TransferFee
    newer: TransferFee
    """The fee from `newer.epoch` on; `older` stays in force until then."""


class TokenMetadata(Frozen, frozen=True, kw_only=True):
    update_authority: str | None
    mint: str
    name: str
    symbol: str
    uri: str
    additional: tuple[tuple[str, str], ...] = ()


class Mint(Frozen, frozen=True, kw_only=True):
    program: str
    supply: int
    decimals: int
    mint_authority: str | None
    freeze_authority: str | None
    is_initialized: bool = True
    extensions: tuple[str, ...] = ()
    """Token-2022 extension names present (camelCase, as jsonParsed names them)."""
    transfer_fee: TransferFeeConfig | None = None
    permanent_delegate: str | None = None
    transfer_hook_program: str | None = None
    transfer_hook_authority: str | None = None
    non_transferable: bool = False
    default_account_state: str | None = None
    """"initialized" or "frozen" (a frozen default lets the issuer block every holder)."""
    close_authority: str | None = None
    metadata_pointer: str | None = None
    metadata: TokenMetadata | None = None
    pause_authority: str | None = None
    """PausableConfig: who can pause every transfer of the token."""
    paused: bool = False

    @property
    def transfer_fee_bps(self) -> int:
        """The higher of the older and newer fee: without the current epoch, either may be in force."""
        fee = self.transfer_fee
        return max(fee.older.basis_points, fee.newer.basis_points) if fee else 0


class TokenAccount(Frozen, frozen=True, kw_only=True):
    program: str
    mint: str
    owner: str
    amount: int
    delegate: str | None
    state: str
    is_native: int | None
    delegated_amount: int
    close_authority: str | None


_EXTENSIONS = {
    1: "transferFeeConfig",
    2: "transferFeeAmount",
    3: "mintCloseAuthority",
    4: "confidentialTransferMint",
    5: "confidentialTransferAccount",
    6: "defaultAccountState",
    7: "immutableOwner",
    8: "memoTransfer",
    9: "nonTransferable",
    10: "interestBearingConfig",
    11: "cpiGuard",
    12: "permanentDelegate",
    13: "nonTransferableAccount",
    14: "transferHook",
    15: "transferHookAccount",
    16: "confidentialTransferFeeConfig",
    17: "confidentialTransferFeeAmount",
    18: "metadataPointer",
    19: "tokenMetadata",
    20: "groupPointer",
    21: "tokenGroup",
    22: "groupMemberPointer",
    23: "tokenGroupMember",
    24: "confidentialMintBurn",
    25: "scaledUiAmountConfig",
    26: "pausableConfig",
    27: "pausableAccount",
}
_ACCOUNT_STATES = {0: "uninitialized", 1: "initialized", 2: "frozen"}
_MINT_HEAD = struct.Struct("<I32sQBBI32s")
_TOKEN_ACCOUNT = struct.Struct("<32s32sQI32sBI8sQI32s")
_FEE = struct.Struct("<QQH")
_MAX_EXTRA_FIELDS = 64


def _nonzero(raw: bytes) -> str | None:
    """Token-2022 `OptionalNonZeroPubkey`: all zeros means none."""
    return None if raw == bytes(32) else pubkey_str(raw)


def _check_owner(owner: str | None, allowed: frozenset[str] | set[str], what: str) -> None:
    if owner is not None and owner not in allowed:
        raise DecodeError("wrong_owner", f"{what} owned by {owner}")


def decode_mint(data: bytes, *, owner: str | None = None) -> Mint:
    """SPL Token or Token-2022 mint account bytes. `owner` (the account's program) is checked if given."""
    _check_owner(owner, TOKEN_PROGRAMS, "mint")
    n = len(data)
    if n < MINT_SIZE or (MINT_SIZE < n < TOKEN_ACCOUNT_SIZE + 1):
        raise DecodeError("bad_length", f"mint of {n} bytes")
    tag, authority, supply, decimals, initialized, freeze_tag, freeze = _MINT_HEAD.unpack_from(data)
    if tag > 1 or freeze_tag > 1 or initialized > 1:
        raise DecodeError("garbage", "COption tag or bool out of range")
    if not initialized:
        raise DecodeError("uninitialized", "mint not initialized")
    program = owner or (TOKEN_PROGRAM if n == MINT_SIZE else TOKEN_2022_PROGRAM)
    base = {
        "program": program,
        "supply": supply,
        "decimals": decimals,
        "mint_authority": pubkey_str(authority) if tag else None,
        "freeze_authority": pubkey_str(freeze) if freeze_tag else None,
    }
    if n == MINT_SIZE:
        return Mint(**base)
    if program == TOKEN_PROGRAM:
        raise DecodeError("bad_length", f"SPL Token mint of {n} bytes")
    if any(data[MINT_SIZE:TOKEN_ACCOUNT_SIZE]) or data[TOKEN_ACCOUNT_SIZE] != 1:
        raise DecodeError("garbage", "not a Token-2022 mint (padding or account type)")
    try:
        return Mint(**base, **_extensions(data, TOKEN_ACCOUNT_SIZE + 1))
    except LayoutError as exc:
        raise DecodeError(exc.reason, str(exc)) from None


def _extensions(data: bytes, at: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names: list[str] = []
    n = len(data)
    while at + 4 <= n:
        kind, length = struct.unpack_from("<HH", data, at)
        at += 4
        if kind == 0 and length == 0:
            break  # zero padding after the last extension
        if at + length > n:
            raise DecodeError("bad_length", f"extension {kind} of {length} bytes past the end")
        value = data[at : at + length]
        at += length
        name = _EXTENSIONS.get(kind, f"unknown{kind}")
        names.append(name)
        _extension(kind, value, out)
    out["extensions"] = tuple(names)
    return out


def _extension(kind: int, value: bytes, out: dict[str, Any]) -> None:
    def need(size: int) -> None:
        if len(value) < size:
            raise DecodeError("bad_length", f"{_EXTENSIONS.get(kind)} of {len(value)} bytes")

    if kind == 1:
        need(108)
        older, newer = _FEE.unpack_from(value, 72), _FEE.unpack_from(value, 90)
        out["transfer_fee"] = TransferFeeConfig(
            authority=_nonzero(value[0:32]),
            withdraw_withheld_authority=_nonzero(value[32:64]),
            withheld_amount=int.from_bytes(value[64:72], "little"),
            older=TransferFee(epoch=older[0], maximum_fee=older[1], basis_points=older[2]),
            newer=TransferFee(epoch=newer[0], maximum_fee=newer[1], basis_points=newer[2]),
        )
    elif kind == 3:
        need(32)
        out["close_authority"] = _nonzero(value[:32])
    elif kind == 6:
        need(1)
        out["default_account_state"] = _ACCOUNT_STATES.get(value[0], f"unknown{value[0]}")
    elif kind == 9:
        out["non_transferable"] = True
    elif kind == 12:
        need(32)
        out["permanent_delegate"] = _nonzero(value[:32])
    elif kind == 14:
        need(64)
        out["transfer_hook_authority"] = _nonzero(value[:32])
        out["transfer_hook_program"] = _nonzero(value[32:64])
    elif kind == 18:
        need(64)
        out["metadata_pointer"] = _nonzero(value[32:64])
    elif kind == 19:
        out["metadata"] = _token_metadata(value)
    elif kind == 26:
        need(33)
        out["pause_authority"] = _nonzero(value[:32])
        out["paused"] = value[32] != 0


def _token_metadata(value: bytes) -> TokenMetadata:
    r = Reader(value)
    update_authority = _nonzero(r.raw(32))
    mint = r.pubkey()
    name, symbol, uri = r.string(), r.string(), r.string()
    count = r.u32()
    if count > _MAX_EXTRA_FIELDS:
        raise DecodeError("bad_length", f"{count} additional metadata fields")
    extra = tuple((r.string(), r.string()) for _ in range(count))
    return TokenMetadata(
        update_authority=update_authority, mint=mint, name=name, symbol=symbol, uri=uri, additional=extra
    )


def decode_token_account(data: bytes, *, owner: str | None = None) -> TokenAccount:
    """SPL Token / Token-2022 token account bytes (the first 165 bytes; extensions are not read)."""
    _check_owner(owner, TOKEN_PROGRAMS, "token account")
    n = len(data)
    if n < TOKEN_ACCOUNT_SIZE or (n > TOKEN_ACCOUNT_SIZE and data[TOKEN_ACCOUNT_SIZE] != 2):
        raise DecodeError("bad_length", f"token account of {n} bytes")
    mint, holder, amount, dtag, delegate, state, ntag, native, delegated, ctag, close = _TOKEN_ACCOUNT.unpack_from(data)
    if dtag > 1 or ntag > 1 or ctag > 1 or state not in (1, 2):
        raise DecodeError("garbage", "COption tag or state out of range")
    return TokenAccount(
        program=owner or (TOKEN_PROGRAM if n == TOKEN_ACCOUNT_SIZE else TOKEN_2022_PROGRAM),
        mint=pubkey_str(mint),
        owner=pubkey_str(holder),
        amount=amount,
        delegate=pubkey_str(delegate) if dtag else None,
        state=_ACCOUNT_STATES[state],
        is_native=int.from_bytes(native, "little") if ntag else None,
        delegated_amount=delegated,
        close_authority=pubkey_str(close) if ctag else None,
    )


# --- response plumbing and jsonParsed ------------------------------------------------------------

MAX_ACCOUNT_BYTES = 10 * 1024 * 1024
"""Solana's account size limit; anything larger is not account data."""


def account_value(response: Mapping[str, Any]) -> Mapping[str, Any]:
    """The account object of a getAccountInfo response, its `result`/`value`, or a `solana account` dump."""
    node: Any = response
    for key in ("result", "value", "account"):
        if isinstance(node, Mapping) and isinstance(node.get(key), Mapping):
            node = node[key]
    if not isinstance(node, Mapping) or "data" not in node:
        raise DecodeError("not_an_account", "no account data (null value: account does not exist?)")
    return node


def account_bytes(response: Mapping[str, Any]) -> tuple[bytes, str | None]:
    """(raw data, owner program) from a base64 getAccountInfo response (or its value, or a dump)."""
    value = account_value(response)
    data, owner = value.get("data"), value.get("owner")
    if not (isinstance(data, list) and len(data) == 2 and data[1] == "base64" and isinstance(data[0], str)):
        raise DecodeError("unsupported_encoding", "want data as [<base64>, 'base64']")
    if len(data[0]) > MAX_ACCOUNT_BYTES * 4 // 3 + 4:
        raise DecodeError("too_large", f"{len(data[0])} base64 characters")
    try:
        raw = base64.b64decode(data[0], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("bad_base64", str(exc)) from None
    if owner is not None and not isinstance(owner, str):
        raise DecodeError("garbage", "owner is not a string")
    return raw, owner


def mint_from_parsed(response: Mapping[str, Any]) -> Mint:
    """A jsonParsed getAccountInfo of a mint (spl-token or spl-token-2022) -> Mint."""
    value = account_value(response)
    owner = value.get("owner")
    _check_owner(owner if isinstance(owner, str) else None, TOKEN_PROGRAMS, "mint")
    try:
        return msgspec.convert(_parsed_mint_fields(value), Mint)
    except (msgspec.ValidationError, KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError("schema", str(exc)[:200]) from None


def _parsed_mint_fields(value: Mapping[str, Any]) -> dict[str, Any]:
    parsed = value["data"]["parsed"]
    if parsed.get("type") != "mint":
        raise DecodeError("not_a_mint", f"parsed type {parsed.get('type')!r}")
    info = parsed["info"]
    supply = info["supply"]
    if not isinstance(supply, str) or not (supply.isascii() and supply.isdigit()) or len(supply) > 24:
        raise DecodeError("garbage", "supply")
    fields: dict[str, Any] = {
        "program": value.get("owner") or TOKEN_PROGRAM,
        "supply": int(supply),
        "decimals": info["decimals"],
        "mint_authority": info.get("mintAuthority"),
        "freeze_authority": info.get("freezeAuthority"),
        "is_initialized": info.get("isInitialized", True),
    }
    names: list[str] = []
    for ext in info.get("extensions") or ():
        name, state = ext["extension"], ext.get("state") or {}
        names.append(clean_text(str(name)))
        if name == "transferFeeConfig":
            fields["transfer_fee"] = {
                "authority": state.get("transferFeeConfigAuthority"),
                "withdraw_withheld_authority": state.get("withdrawWithheldAuthority"),
                "withheld_amount": state["withheldAmount"],
                "older": _parsed_fee(state["olderTransferFee"]),
                "newer": _parsed_fee(state["newerTransferFee"]),
            }
        elif name == "permanentDelegate":
            fields["permanent_delegate"] = state.get("delegate")
        elif name == "transferHook":
            fields["transfer_hook_program"] = state.get("programId")
            fields["transfer_hook_authority"] = state.get("authority")
        elif name == "nonTransferable":
            fields["non_transferable"] = True
        elif name == "defaultAccountState":
            fields["default_account_state"] = state.get("accountState")
        elif name == "pausableConfig":
            fields["pause_authority"] = state.get("authority")
            fields["paused"] = state.get("paused", False)
        elif name == "mintCloseAuthority":
            fields["close_authority"] = state.get("closeAuthority")
        elif name == "metadataPointer":
            fields["metadata_pointer"] = state.get("metadataAddress")
        elif name == "tokenMetadata":
            fields["metadata"] = {
                "update_authority": state.get("updateAuthority"),
                "mint": state["mint"],
                "name": clean_text(state["name"]),
                "symbol": clean_text(state["symbol"]),
                "uri": clean_text(state["uri"]),
            }
    fields["extensions"] = tuple(names)
    return fields


def _parsed_fee(fee: Mapping[str, Any]) -> dict[str, Any]:
    return {"epoch": fee["epoch"], "maximum_fee": fee["maximumFee"], "basis_points": fee["transferFeeBasisPoints"]}


def decode_account(
    response: Mapping[str, Any],
) -> Mint | TokenAccount | MetaplexMetadata | BondingCurve | RaydiumV4Pool | PumpSwapPool:
    """Pick the decoder from the owning program (and size) of a base64 getAccountInfo response."""
    raw, owner = account_bytes(response)
    if owner in TOKEN_PROGRAMS:
        is_account = len(raw) == TOKEN_ACCOUNT_SIZE or (len(raw) > TOKEN_ACCOUNT_SIZE and raw[TOKEN_ACCOUNT_SIZE] == 2)
        return decode_token_account(raw, owner=owner) if is_account else decode_mint(raw, owner=owner)
    if owner == METAPLEX_METADATA_PROGRAM:
        return decode_metaplex_metadata(raw, owner=owner)
    if owner == PUMP_FUN_PROGRAM:
        return decode_bonding_curve(raw, owner=owner)
    if owner == RAYDIUM_AMM_V4_PROGRAM:
        return decode_raydium_v4_pool(raw, owner=owner)
    if owner == PUMPSWAP_PROGRAM:
        return decode_pumpswap_pool(raw, owner=owner)
    raise DecodeError("unknown_owner", f"no decoder for accounts of {owner}")


__all__ = [
    "BondingCurve",
    "DecodeError",
    "MetaplexMetadata",
    "Mint",
    "PumpSwapPool",
    "RaydiumV4Pool",
    "TokenAccount",
    "TokenMetadata",
    "TransferFee",
    "TransferFeeConfig",
    "account_bytes",
    "decode_account",
    "decode_bonding_curve",
    "decode_metaplex_metadata",
    "decode_mint",
    "decode_pumpswap_pool",
    "decode_raydium_v4_pool",
    "decode_token_account",
    "mint_from_parsed",
]
