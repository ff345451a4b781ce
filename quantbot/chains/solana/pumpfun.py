"""pump.fun event layouts (Anchor `emit!`/`emit_cpi!`), decoded prefix-first.

pump.fun only ever appends fields to its events, so each decoder reads the fields that were present
in the oldest layout, then every later group of fields only when the bytes for it are there.
Layouts and verified examples: shared/notes/solana.md section 2.2.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence

import msgspec

from quantbot.chains.solana.layout import LayoutError, Reader
from quantbot.chains.solana.programs import NATIVE_MINT, PUMP_CREATE_EVENT, PUMP_TRADE_EVENT

_SYSTEM_DEFAULT = "11111111111111111111111111111111"
"""The all-zero pubkey: pump.fun writes it as `quote_mint` for SOL-quoted coins."""
_SHAREHOLDER_SIZE = 34
"""pump fee-sharing `Shareholder { address: Pubkey, share_bps: u16 }` (no fixture has a non-empty list)."""
_MAX_SHAREHOLDERS = 64


class CreateEvent(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    symbol: str
    uri: str
    mint: str
    bonding_curve: str
    user: str
    creator: str | None = None
    timestamp: int | None = None
    virtual_token_reserves: int | None = None
    virtual_sol_reserves: int | None = None
    real_token_reserves: int | None = None
    token_total_supply: int | None = None
    token_program: str | None = None
    is_mayhem_mode: bool | None = None
    is_cashback_enabled: bool | None = None
    quote_mint: str | None = None
    virtual_quote_reserves: int | None = None


class TradeEvent(msgspec.Struct, frozen=True, kw_only=True):
    mint: str
    sol_amount: int
    token_amount: int
    is_buy: bool
    user: str
    timestamp: int
    virtual_sol_reserves: int
    virtual_token_reserves: int
    real_sol_reserves: int
    real_token_reserves: int
    fee_recipient: str | None = None
    fee_basis_points: int | None = None
    fee: int | None = None
    creator: str | None = None
    creator_fee_basis_points: int | None = None
    creator_fee: int | None = None
    ix_name: str | None = None
    quote_mint: str | None = None
    quote_amount: int | None = None
    virtual_quote_reserves: int | None = None
    real_quote_reserves: int | None = None

    @property
    def quote(self) -> str:
        """The coin's quote mint; the native mint for SOL-quoted coins."""
        if self.quote_mint is None or self.quote_mint == _SYSTEM_DEFAULT:
            return NATIVE_MINT
        return self.quote_mint

    @property
    def quote_value(self) -> int:
        """What was paid or received, in quote base units."""
        if self.quote_amount is not None and (self.sol_amount == 0 or self.quote != NATIVE_MINT):
            return self.quote_amount
        return self.sol_amount


def decode_create_event(body: bytes) -> CreateEvent:
    """CreateEvent body (after the 8-byte discriminator). Raises LayoutError."""
    r = Reader(body)
    fields: dict[str, object] = {
        "name": r.string(),
        "symbol": r.string(),
        "uri": r.string(),
        "mint": r.pubkey(),
        "bonding_curve": r.pubkey(),
        "user": r.pubkey(),
    }
    if r.remaining >= 40:  # 2025-04
        fields["creator"] = r.pubkey()
        fields["timestamp"] = r.i64()
    if r.remaining >= 32:  # 2025-05
        fields["virtual_token_reserves"] = r.u64()
        fields["virtual_sol_reserves"] = r.u64()
        fields["real_token_reserves"] = r.u64()
        fields["token_total_supply"] = r.u64()
    if r.remaining >= 33:  # 2025-11
        fields["token_program"] = r.pubkey()
        fields["is_mayhem_mode"] = r.flag()
    if r.remaining >= 1:  # 2026-02
        fields["is_cashback_enabled"] = r.flag()
    if r.remaining >= 40:  # 2026-05
        fields["quote_mint"] = r.pubkey()
        fields["virtual_quote_reserves"] = r.u64()
    return CreateEvent(**fields)  # type: ignore[arg-type]


def decode_trade_event(body: bytes) -> TradeEvent:
    """TradeEvent body (after the 8-byte discriminator). Raises LayoutError."""
    r = Reader(body)
    fields: dict[str, object] = {
        "mint": r.pubkey(),
        "sol_amount": r.u64(),
        "token_amount": r.u64(),
        "is_buy": r.flag(),
        "user": r.pubkey(),
        "timestamp": r.i64(),
        "virtual_sol_reserves": r.u64(),
        "virtual_token_reserves": r.u64(),
        "real_sol_reserves": r.u64(),
        "real_token_reserves": r.u64(),
    }
    if r.remaining >= 112:
        fields["fee_recipient"] = r.pubkey()
        fields["fee_basis_points"] = r.u64()
        fields["fee"] = r.u64()
        fields["creator"] = r.pubkey()
        fields["creator_fee_basis_points"] = r.u64()
        fields["creator_fee"] = r.u64()
    if r.remaining >= 33:  # track_volume, total_unclaimed/claimed_tokens, current_sol_volume, last_update_timestamp
        r.raw(33)
    if r.remaining >= 4:
        fields["ix_name"] = r.string(max_len=64)
    if r.remaining >= 37:  # mayhem_mode, cashback bps/amount, buyback bps/amount
        r.raw(33)
        count = r.u32()
        if count > _MAX_SHAREHOLDERS:
            raise LayoutError("bad_length", f"{count} shareholders")
        r.raw(count * _SHAREHOLDER_SIZE)
        if r.remaining >= 56:
            fields["quote_mint"] = r.pubkey()
            fields["quote_amount"] = r.u64()
            fields["virtual_quote_reserves"] = r.u64()
            fields["real_quote_reserves"] = r.u64()
    return TradeEvent(**fields)  # type: ignore[arg-type]


PumpEvent = CreateEvent | TradeEvent


def decode_event(data: bytes) -> PumpEvent | None:
    """An event payload (discriminator + body) -> the decoded event; None for events we do not use."""
    head = data[:8]
    if head == PUMP_CREATE_EVENT:
        return decode_create_event(data[8:])
    if head == PUMP_TRADE_EVENT:
        return decode_trade_event(data[8:])
    return None


_DATA = "Program data: "
_PROGRAM_OUTPUT = ("Program log: ", "Program return: ", "Program consumption: ")


def program_data(logs: Sequence[str], program: str) -> Iterator[bytes]:
    """Payloads of the `Program data:` lines emitted by `program` itself (not by a program it called).

    Tracks the runtime's invoke/success/failed lines (a program cannot forge those: its own output
    always starts `Program log:`/`Program data:`), so another program's event with a colliding
    discriminator is never taken for this one's. Undecodable base64 raises LayoutError.
    """
    stack: list[str] = []
    for line in logs:
        if line.startswith(_DATA):
            if stack and stack[-1] == program:
                try:
                    yield base64.b64decode(line[len(_DATA) :], validate=True)
                except (binascii.Error, ValueError):
                    raise LayoutError("bad_base64", "Program data line") from None
            continue
        if not line.startswith("Program ") or line.startswith(_PROGRAM_OUTPUT):
            continue
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        if parts[2] == "invoke":
            stack.append(parts[1])
        elif (parts[2] == "success" or parts[2].startswith("failed")) and stack:
            stack.pop()
