"""pump.fun event layouts (Anchor `emit!`/`emit_cpi!`), decoded prefix-first.

pump.fun only ever appends fields to its events, so each decoder reads the fields that were present
in the oldest layout, then every later group of fields only when the bytes for it are there.
Layouts and verified examples: shared/notes/solana.md section 2.2.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import operator
import struct
from collections.abc import Iterator, Sequence

import msgspec

from quantbot.chains.solana.layout import LayoutError, Reader, pubkey_str
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


_KEYS3 = struct.Struct("<32s32s32s")
_CREATOR = struct.Struct("<32sq")
_RESERVES = struct.Struct("<QQQQ")
_PROGRAM_MAYHEM = struct.Struct("<32sB")
_QUOTE = struct.Struct("<32sQ")


def decode_create_event(body: bytes) -> CreateEvent:
    """CreateEvent body (after the 8-byte discriminator). Raises LayoutError."""
    r = Reader(body)
    name, symbol, uri = r.string(), r.string(), r.string()
    at = r.offset
    n = len(body)
    if n - at < _KEYS3.size:
        raise LayoutError("short_data", f"CreateEvent of {n} bytes")
    mint, curve, user = _KEYS3.unpack_from(body, at)
    at += _KEYS3.size
    ev: dict[str, object] = {
        "name": name,
        "symbol": symbol,
        "uri": uri,
        "mint": pubkey_str(mint),
        "bonding_curve": pubkey_str(curve),
        "user": pubkey_str(user),
    }
    if n - at >= _CREATOR.size:  # 2025-04
        creator, ev["timestamp"] = _CREATOR.unpack_from(body, at)
        ev["creator"] = pubkey_str(creator)
        at += _CREATOR.size
    if n - at >= _RESERVES.size:  # 2025-05
        (
            ev["virtual_token_reserves"],
            ev["virtual_sol_reserves"],
            ev["real_token_reserves"],
            ev["token_total_supply"],
        ) = _RESERVES.unpack_from(body, at)
        at += _RESERVES.size
    if n - at >= _PROGRAM_MAYHEM.size:  # 2025-11
        program, mayhem = _PROGRAM_MAYHEM.unpack_from(body, at)
        ev["token_program"], ev["is_mayhem_mode"] = pubkey_str(program), _flag(mayhem)
        at += _PROGRAM_MAYHEM.size
    if n - at >= 1:  # 2026-02
        ev["is_cashback_enabled"] = _flag(body[at])
        at += 1
    if n - at >= _QUOTE.size:  # 2026-05
        quote, ev["virtual_quote_reserves"] = _QUOTE.unpack_from(body, at)
        ev["quote_mint"] = pubkey_str(quote)
    return CreateEvent(**ev)  # type: ignore[arg-type]


def _flag(value: int) -> bool:
    if value > 1:
        raise LayoutError("bad_bool", f"byte {value}")
    return value == 1


_TRADE_FIXED = struct.Struct("<32sQQB32sqQQQQ")
_TRADE_FEES = struct.Struct("<32sQQ32sQQ")
_QUOTE_TAIL = struct.Struct("<32sQQQ")


def decode_trade_event(body: bytes) -> TradeEvent:
    """TradeEvent body (after the 8-byte discriminator). Raises LayoutError."""
    if len(body) < _TRADE_FIXED.size:
        raise LayoutError("short_data", f"TradeEvent of {len(body)} bytes")
    mint, sol, tokens, is_buy, user, ts, vsol, vtok, rsol, rtok = _TRADE_FIXED.unpack_from(body)
    if is_buy > 1:
        raise LayoutError("bad_bool", f"is_buy {is_buy}")
    fields: dict[str, object] = {
        "mint": pubkey_str(mint),
        "sol_amount": sol,
        "token_amount": tokens,
        "is_buy": is_buy == 1,
        "user": pubkey_str(user),
        "timestamp": ts,
        "virtual_sol_reserves": vsol,
        "virtual_token_reserves": vtok,
        "real_sol_reserves": rsol,
        "real_token_reserves": rtok,
    }
    at, n = _TRADE_FIXED.size, len(body)
    if n - at >= _TRADE_FEES.size:
        recipient, fields["fee_basis_points"], fields["fee"], creator, fields["creator_fee_basis_points"], fee = (
            _TRADE_FEES.unpack_from(body, at)
        )
        fields["fee_recipient"], fields["creator"], fields["creator_fee"] = (
            pubkey_str(recipient),
            pubkey_str(creator),
            fee,
        )
        at += _TRADE_FEES.size
    if n - at >= 33:  # track_volume, total_unclaimed/claimed_tokens, current_sol_volume, last_update_timestamp
        at += 33
    if n - at >= 4:
        r = Reader(body, at)
        fields["ix_name"] = r.string(max_len=64)
        at = r.offset
    if n - at >= 37:  # mayhem_mode, cashback bps/amount, buyback bps/amount, then the shareholders vec
        count = int.from_bytes(body[at + 33 : at + 37], "little")
        if count > _MAX_SHAREHOLDERS:
            raise LayoutError("bad_length", f"{count} shareholders")
        at += 37 + count * _SHAREHOLDER_SIZE
        if n - at >= _QUOTE_TAIL.size:
            quote, fields["quote_amount"], fields["virtual_quote_reserves"], fields["real_quote_reserves"] = (
                _QUOTE_TAIL.unpack_from(body, at)
            )
            fields["quote_mint"] = pubkey_str(quote)
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
_AFTER_DATA = "Program data:!"
"""The least string above every string that starts with `_DATA` (its last character, a space, plus one), so
`_DATA <= line < _AFTER_DATA` holds exactly for the lines that start with `_DATA`."""
_PROGRAM_OUTPUT = ("Program log: ", "Program data: ", "Program return: ", "Program consumption: ")


def b64_prefix(discriminator: bytes) -> str:
    """The first 10 base64 characters, fixed by the first 8 bytes of any payload with this discriminator."""
    return base64.b64encode(discriminator[:8]).decode()[:10]


def emitter(logs: Sequence[str], at: int) -> str | None:
    """The program executing when line `at` was logged: walk back over completed inner invocations.

    Only the runtime's own `Program <id> invoke [n]` / `Program <id> success` lines count; a program
    cannot forge those (its output always starts `Program log:`/`Program data:`/`Program return:`).
    Failed invocations end the transaction, so a successful one has none to skip.
    """
    if at <= 0:
        return None
    depth = 0
    back = logs[at - 1 :: -1]
    # only lines ending like an invoke or a success line can matter; the test for that is C-level
    for line in itertools.compress(back, map(str.endswith, back, itertools.repeat(_RUNTIME_ENDINGS))):
        if line[-1] == "s":
            if line.count(" ") == 2 and line.startswith("Program "):
                depth += 1  # `Program log: ... success` has more than two spaces
        elif line.startswith("Program ") and not line.startswith(_PROGRAM_OUTPUT):
            parts = line.split(" ")
            if len(parts) == 4 and parts[2] == "invoke":
                if depth == 0:
                    return parts[1]
                depth -= 1
    return None


_RUNTIME_ENDINGS = (" success", "]")


def program_data(
    logs: Sequence[str], program: str, prefixes: frozenset[str], *, check_emitter: bool = True
) -> Iterator[bytes]:
    """Payloads of `Program data:` lines that `program` itself emitted and whose discriminator is wanted.

    The base64 prefix filter skips other events without decoding them; the emitter check means another
    program's event with a colliding discriminator is never taken for this one's (callers that know no
    other event-emitting program ran may skip it). Bad base64 raises LayoutError.
    """
    # The prefix test over every log line is the hot loop, so it is C-level and cheap: one comparison per
    # line (str.startswith parses its arguments on every call, about twice the cost), then Python for the
    # few lines at or above `_DATA`.
    for i in itertools.compress(itertools.count(), map(operator.le, itertools.repeat(_DATA), logs)):
        line = logs[i]
        if line < _AFTER_DATA and line[14:24] in prefixes and (not check_emitter or emitter(logs, i) == program):
            try:
                yield base64.b64decode(line[14:], validate=True)
            except (binascii.Error, ValueError):
                raise LayoutError("bad_base64", "Program data line") from None


EVENT_PREFIXES: frozenset[str] = frozenset({b64_prefix(PUMP_CREATE_EVENT), b64_prefix(PUMP_TRADE_EVENT)})
"""Base64 prefixes of the pump.fun events quantbot decodes."""
