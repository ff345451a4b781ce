"""Bounds-checked little-endian reads for Borsh/bincode account and event layouts.

`struct` does the byte work; this adds the two things hostile data needs: every read checks the
length first, and strings are length-capped and refused when they carry control characters.
"""

from __future__ import annotations

import re
import struct
from typing import Final

import msgspec
from solders.pubkey import Pubkey

MAX_STRING: Final = 1024
"""Longest string field accepted (bytes). Real names/symbols/URIs are far shorter."""

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
"""C0/C1 controls, bidi overrides and BOM: never legitimate in a token name, symbol or URI."""


class LayoutError(ValueError):
    """The bytes do not hold the expected layout; `reason` is a short stable label for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class DecodeError(ValueError):
    """An account's data is not what the decoder reads; `reason` is a short stable label for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Frozen(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the decoded account structs."""


def pubkey_str(raw: bytes) -> str:
    """32 raw bytes -> base58 address."""
    return str(Pubkey.from_bytes(raw))


def clean_text(value: str, *, strip_nul: bool = False) -> str:
    """Refuse control/bidi characters; optionally strip the NUL padding fixed-size layouts use."""
    if strip_nul:
        value = value.rstrip("\x00")
    if value.isprintable():
        return value  # every refused character is non-printable (Cc/Cf); cheaper than the regex
    if _BAD_CHARS.search(value):
        raise LayoutError("bad_string", "control or bidi characters")
    return value


class Reader:
    """Sequential reader over `data` from `offset`; every read raises LayoutError when short."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def _need(self, n: int) -> int:
        at = self.offset
        if n < 0 or at + n > len(self.data):
            raise LayoutError("short_data", f"need {n} bytes at offset {at}, have {len(self.data) - at}")
        self.offset = at + n
        return at

    def u8(self) -> int:
        return int(_U8.unpack_from(self.data, self._need(1))[0])

    def u16(self) -> int:
        return int(_U16.unpack_from(self.data, self._need(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack_from(self.data, self._need(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack_from(self.data, self._need(8))[0])

    def i64(self) -> int:
        return int(_I64.unpack_from(self.data, self._need(8))[0])

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise LayoutError("bad_bool", f"byte {value} at offset {self.offset - 1}")
        return value == 1

    def pubkey(self) -> str:
        at = self._need(32)
        return pubkey_str(self.data[at : at + 32])

    def raw(self, n: int) -> bytes:
        at = self._need(n)
        return self.data[at : at + n]

    def string(self, *, max_len: int = MAX_STRING, strip_nul: bool = False) -> str:
        """Borsh string: u32 length + UTF-8."""
        n = self.u32()
        if n > max_len:
            raise LayoutError("string_too_long", f"{n} bytes")
        at = self._need(n)
        try:
            text = self.data[at : at + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LayoutError("bad_utf8", str(exc)) from None
        return clean_text(text, strip_nul=strip_nul)

    def option_pubkey_u32(self) -> str | None:
        """SPL `COption<Pubkey>`: u32 tag (0/1) + 32 bytes, always present."""
        tag = self.u32()
        key = self.raw(32)
        if tag == 0:
            return None
        if tag != 1:
            raise LayoutError("bad_option", f"COption tag {tag}")
        return pubkey_str(key)
