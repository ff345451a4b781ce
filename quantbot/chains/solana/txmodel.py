"""The getTransaction response, typed, and one normalised view over its three encodings.

`json`, `jsonParsed` and `base64` responses (legacy and v0) become the same `TxView`: the full
account-key list (static keys, then lookup-table writable, then readonly), the signers, and every
instruction (top level, each followed by its inner instructions) with its program id and accounts
as addresses. Decoding is one msgspec pass straight into these structs, which also type-checks it.
"""

from __future__ import annotations

import base64
import binascii
import operator
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import based58
import msgspec
from solders.transaction import VersionedTransaction

from quantbot.chains.solana.layout import LayoutError

MAX_TX_BYTES = 4 * 1024 * 1024
"""A getTransaction response larger than this is refused before decoding (real ones are < 100 KiB)."""


class _S(msgspec.Struct, rename="camel", gc=False):
    pass


Amount = Annotated[str, msgspec.Meta(min_length=1, max_length=24)]
"""A raw token amount: 1-24 ASCII digits (u64 fits in 20; a little headroom). The length is checked while
decoding, the digits by `decode_document` over all amounts at once (a `pattern` runs a regex per balance)."""
Decimals = Annotated[int, msgspec.Meta(ge=0, le=255)]
Lamports = Annotated[int, msgspec.Meta(ge=0)]


class UiTokenAmount(_S):
    amount: Amount
    decimals: Decimals


class TokenBalance(_S):
    account_index: Annotated[int, msgspec.Meta(ge=0)]
    mint: str
    ui_token_amount: UiTokenAmount
    owner: str | None = None


class Instruction(_S):
    program_id: str | None = None
    program_id_index: int | None = None
    accounts: list[str | int] = []
    data: str | None = None
    program: str | None = None
    parsed: Any = None
    stack_height: int | None = None


class InnerGroup(_S):
    index: int
    instructions: list[Instruction]


class LoadedAddresses(_S):
    writable: list[str] = []
    readonly: list[str] = []


class Meta(_S):
    err: Any = None
    fee: Lamports = 0
    pre_balances: list[Lamports] = []
    post_balances: list[Lamports] = []
    inner_instructions: list[InnerGroup] | None = None
    log_messages: list[str] | None = None
    pre_token_balances: list[TokenBalance] | None = None
    post_token_balances: list[TokenBalance] | None = None
    loaded_addresses: LoadedAddresses | None = None


class AccountKey(_S):
    pubkey: str
    signer: bool = False
    writable: bool = False


class Header(_S):
    num_required_signatures: int


class Message(_S):
    account_keys: list[str | AccountKey]
    instructions: list[Instruction]
    header: Header | None = None


class Transaction(_S):
    signatures: list[str]
    message: Message


class TxResult(_S):
    transaction: Transaction | list[str] | None = None
    meta: Meta | None = None
    slot: int | None = None
    block_time: int | None = None
    version: int | str | None = None


class Document(TxResult):
    """A whole JSON-RPC response (`result`/`error`) or directly its `result` object."""

    result: TxResult | None = None
    error: Any = None


_decoder = msgspec.json.Decoder(Document)


def decode_document(raw: bytes | str | Mapping[str, Any]) -> TxResult:
    """Raw response -> its `result`. Raises LayoutError with a reason for anything unusable."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_TX_BYTES:
            raise LayoutError("too_large", f"{len(raw)} bytes")
        try:
            doc = _decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise LayoutError("schema", str(exc)) from None
        except msgspec.DecodeError as exc:
            raise LayoutError("bad_json", str(exc)) from None
    elif isinstance(raw, Mapping):
        try:
            doc = msgspec.convert(raw, Document, str_keys=True)
        except msgspec.ValidationError as exc:
            raise LayoutError("schema", str(exc)) from None
    else:
        raise LayoutError("bad_type", type(raw).__name__)
    if not (_amounts_are_digits(doc.meta) and (doc.result is None or _amounts_are_digits(doc.result.meta))):
        raise LayoutError("schema", "a token amount that is not ASCII digits")
    if doc.error is not None:
        raise LayoutError("rpc_error", str(doc.error)[:200])
    result = doc.result if doc.result is not None else doc
    if result.transaction is None or result.meta is None:
        raise LayoutError("not_a_transaction", "no transaction/meta (null result: not found?)")
    return result


def _amounts_are_digits(meta: Meta | None) -> bool:
    if meta is None:
        return True
    for rows in (meta.pre_token_balances, meta.post_token_balances):
        if rows:  # each amount is non-empty (checked while decoding), so all digits together means each is
            digits = "".join([tb.ui_token_amount.amount for tb in rows])
            if not (digits.isascii() and digits.isdigit()):
                return False
    return True


class Ix(msgspec.Struct, gc=False):
    """One executed instruction: top level (`inner` False) or inner.

    Accounts are resolved against the key list on first use: most instructions are never looked at.
    (A msgspec Struct because building one is C-fast; there are dozens per transaction.)
    """

    program: str
    raw_accounts: list[str | int] | list[str] | list[int]
    keys: list[str]
    data: str | bytes | None
    parsed: Any
    inner: bool
    resolved: list[str] | None = None
    """`accounts`, once checked (callers read it several times per instruction)."""

    @property
    def accounts(self) -> list[str]:
        """Account addresses. Raises LayoutError for an index outside the key list."""
        if self.resolved is not None:
            return self.resolved
        raw = self.raw_accounts
        if not raw:
            return []
        kinds = set(map(type, raw))
        if kinds == {str}:
            out = cast(list[str], raw)  # jsonParsed: already addresses
        else:
            indices = cast(list[int], raw)
            if kinds != {int} or min(indices) < 0 or max(indices) >= len(self.keys):
                raise LayoutError("bad_account_index", "instruction account index outside the key list")
            out = list(map(self.keys.__getitem__, indices))
        self.resolved = out
        return out

    def raw(self) -> bytes:
        """Instruction data bytes (base58 in json/jsonParsed). Raises LayoutError."""
        data = self.data
        if data is None:
            return b""
        if isinstance(data, bytes):
            return data
        try:
            decoded = bytes(based58.b58decode(data.encode()))
        except ValueError:
            raise LayoutError("bad_base58", "instruction data") from None
        self.data = decoded
        return decoded


class TxView(msgspec.Struct, gc=False):
    """One transaction, normalised over the encodings (a Struct: built once per transaction, C-fast)."""

    signature: str
    slot: int
    block_time: datetime | None
    fee: int
    err: Any
    keys: list[str]
    signers: list[str]
    ixs: list[Ix]
    """Every instruction in execution order: each top-level one followed by its inner ones."""
    top: list[Ix]
    """The top-level instructions."""
    meta: Meta
    programs: set[str]
    """Every program id invoked (top level or inner)."""


_PUBKEY = operator.attrgetter("pubkey")
_PROGRAM = operator.attrgetter("program")


def _program(ix: Instruction, keys: list[str]) -> str:
    if ix.program_id is not None:
        return ix.program_id
    i = ix.program_id_index
    if i is None or not 0 <= i < len(keys):
        raise LayoutError("bad_program_index", str(i))
    return keys[i]


def view(result: TxResult) -> TxView:
    """The normalised view of one decoded transaction. Raises LayoutError."""
    meta = result.meta
    if meta is None:
        raise LayoutError("not_a_transaction", "no meta")
    tx = result.transaction
    loaded = meta.loaded_addresses
    extra = (loaded.writable + loaded.readonly) if loaded is not None else []
    tops: list[Ix]
    if isinstance(tx, Transaction):
        if not tx.signatures:
            raise LayoutError("no_signature")
        signature = tx.signatures[0]
        msg = tx.message
        raw_keys = msg.account_keys
        kinds = set(map(type, raw_keys))
        signers: list[str] = []
        keys: list[str]
        if kinds == {AccountKey}:  # jsonParsed: objects; signers come first (the message format puts them there)
            keys = list(map(_PUBKEY, raw_keys))
            for k in raw_keys:
                if not k.signer:  # type: ignore[union-attr]
                    break
                signers.append(k.pubkey)  # type: ignore[union-attr]
        elif kinds <= {str}:  # json: plain addresses
            keys = cast(list[str], list(raw_keys))
        else:
            raise LayoutError("mixed_account_keys", "accountKeys mixes strings and objects")
        if msg.header is not None:
            signers = keys[: msg.header.num_required_signatures]
        elif not signers and keys:
            signers = keys[:1]  # the fee payer always signs
        keys.extend(extra)
        tops = [
            Ix(ix.program_id or _program(ix, keys), ix.accounts, keys, ix.data, ix.parsed, False)
            for ix in msg.instructions
        ]
    elif isinstance(tx, list) and len(tx) == 2 and tx[1] == "base64":
        try:
            vtx = VersionedTransaction.from_bytes(base64.b64decode(tx[0], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise LayoutError("bad_base64_tx", str(exc)[:200]) from None
        if not vtx.signatures:
            raise LayoutError("no_signature")
        signature = str(vtx.signatures[0])
        vmsg = vtx.message
        keys = list(map(str, vmsg.account_keys))
        signers = keys[: vmsg.header.num_required_signatures]
        keys.extend(extra)
        tops = []
        for cix in vmsg.instructions:
            pi = cix.program_id_index
            if pi >= len(keys):
                raise LayoutError("bad_program_index", str(pi))
            tops.append(Ix(keys[pi], list(bytes(cix.accounts)), keys, bytes(cix.data), None, False))
    else:
        raise LayoutError("unsupported_encoding", "transaction is neither an object nor [base64, 'base64']")
    if len(meta.pre_balances) != len(keys) or len(meta.post_balances) != len(keys):
        raise LayoutError("balance_length", f"{len(keys)} keys, {len(meta.pre_balances)}/{len(meta.post_balances)}")
    inner: dict[int, list[Instruction]] = {}
    for group in meta.inner_instructions or ():
        inner.setdefault(group.index, []).extend(group.instructions)
    ixs: list[Ix] = []
    done = 0  # tops[:done] are in ixs
    for i in sorted(inner):  # by group, not by instruction: most top-level instructions have no inner ones
        if 0 <= i < len(tops):
            ixs += tops[done : i + 1]
            ixs += [Ix(x.program_id or _program(x, keys), x.accounts, keys, x.data, x.parsed, True) for x in inner[i]]
            done = i + 1
    ixs += tops[done:]
    programs = set(map(_PROGRAM, ixs))
    block_time = None
    if result.block_time is not None:
        try:
            block_time = datetime.fromtimestamp(result.block_time, UTC)
        except (OverflowError, OSError, ValueError):
            raise LayoutError("bad_block_time", str(result.block_time)) from None
    return TxView(
        signature=signature,
        slot=result.slot if result.slot is not None else 0,
        block_time=block_time,
        fee=meta.fee,
        err=meta.err,
        keys=keys,
        signers=signers,
        ixs=ixs,
        top=tops,
        meta=meta,
        programs=programs,
    )
