"""The REST API v1 `user_transaction` shape, validated by msgspec, and its balance legs.

A leg is one coin or fungible-asset balance change of one owner: +amount for a deposit, -amount for
a withdraw, in event order. Owners and assets are resolved as the field notes describe (aptos.md §3):

* `0x1::coin::WithdrawEvent`/`DepositEvent` (v1 handles): owner = the event guid's account; coin type =
  the `CoinStore<T>` in the write set whose withdraw/deposit handle has that guid (or the
  `CoinStoreDeletion` event when the store was deleted);
* `0x1::coin::CoinWithdraw`/`CoinDeposit` (module events): owner and coin type are in the data;
* `0x1::fungible_asset::Withdraw`/`Deposit` (module events): the store's `ObjectCore.owner` and
  `FungibleStore.metadata` from the write set (or `FungibleStoreDeletion`);
* `0x1::fungible_asset::WithdrawEvent`/`DepositEvent` (old v1 handles): the guid account is the store.

USDC's `stablecoin::Withdraw`/`Deposit` repeat the FA events and are ignored (no double count).
An event that cannot be resolved rejects the transaction: a partial picture would be a wrong trade.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from quantbot.chains.aptos.addresses import APT, AssetNamer, canonical_type, normalize_address, normalize_type

U64 = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,20}$")]
Addr = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{1,64}$")]
TxHash = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{64}$")]
MAX_U64 = 2**64 - 1


class Rejected(Exception):
    """The transaction cannot be parsed safely; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def u64(value: str) -> int:
    number = int(value)
    if number > MAX_U64:
        raise Rejected("bad_number", f"{value} exceeds u64")
    return number


class Guid(msgspec.Struct, frozen=True):
    creation_number: U64
    account_address: Addr


class RawEvent(msgspec.Struct, frozen=True):
    type: str
    data: Any
    guid: Guid | None = None


class Change(msgspec.Struct, frozen=True):
    type: str
    address: Addr | None = None
    data: Any = None


class Resource(msgspec.Struct, frozen=True):
    type: str
    data: Any


class Signature(msgspec.Struct, frozen=True):
    type: str
    fee_payer_address: Addr | None = None
    secondary_signer_addresses: list[Addr] = []


class Payload(msgspec.Struct, frozen=True):
    type: str
    function: str | None = None
    type_arguments: list[str] = []


class UserTransaction(msgspec.Struct, frozen=True):
    type: str
    version: U64
    hash: TxHash
    success: bool
    sender: Addr
    gas_used: U64
    gas_unit_price: U64
    timestamp: U64
    events: list[RawEvent]
    changes: list[Change]
    vm_status: str = ""
    payload: Payload | None = None
    signature: Signature | None = None


# --- event and resource data ---------------------------------------------------------------------


class _Amount(msgspec.Struct, frozen=True):
    amount: U64


class _FaMove(msgspec.Struct, frozen=True):
    amount: U64
    store: Addr


class _CoinMove(msgspec.Struct, frozen=True):
    amount: U64
    account: Addr
    coin_type: str


class _StoreDeletion(msgspec.Struct, frozen=True):
    metadata: Addr
    owner: Addr
    store: Addr


class _CoinStoreDeletion(msgspec.Struct, frozen=True):
    coin_type: str
    event_handle_creation_address: Addr
    deleted_deposit_event_handle_creation_number: U64
    deleted_withdraw_event_handle_creation_number: U64


class _Inner(msgspec.Struct, frozen=True):
    inner: Addr


class _ObjectCore(msgspec.Struct, frozen=True):
    owner: Addr


class _FungibleStore(msgspec.Struct, frozen=True):
    metadata: _Inner


class _GuidId(msgspec.Struct, frozen=True):
    addr: Addr
    creation_num: U64


class _GuidWrap(msgspec.Struct, frozen=True):
    id: _GuidId


class _Handle(msgspec.Struct, frozen=True):
    guid: _GuidWrap


class _CoinStore(msgspec.Struct, frozen=True):
    deposit_events: _Handle
    withdraw_events: _Handle


class _Decimals(msgspec.Struct, frozen=True):
    decimals: Annotated[int, msgspec.Meta(ge=0, le=255)]


_T = TypeVar("_T")


def _convert(data: Any, kind: type[_T], what: str) -> _T:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise Rejected(f"bad_{what}", str(exc)) from None


FA_WITHDRAW = "0x1::fungible_asset::Withdraw"
FA_DEPOSIT = "0x1::fungible_asset::Deposit"
FA_WITHDRAW_V1 = "0x1::fungible_asset::WithdrawEvent"
FA_DEPOSIT_V1 = "0x1::fungible_asset::DepositEvent"
FA_STORE_DELETION = "0x1::fungible_asset::FungibleStoreDeletion"
COIN_WITHDRAW_V1 = "0x1::coin::WithdrawEvent"
COIN_DEPOSIT_V1 = "0x1::coin::DepositEvent"
COIN_WITHDRAW = "0x1::coin::CoinWithdraw"
COIN_DEPOSIT = "0x1::coin::CoinDeposit"
COIN_STORE_DELETION = "0x1::coin::CoinStoreDeletion"
_COIN_STORE_PREFIX = "0x1::coin::CoinStore<"
_COIN_INFO_PREFIX = "0x1::coin::CoinInfo<"
_BALANCE_EVENTS = frozenset(
    {
        FA_WITHDRAW,
        FA_DEPOSIT,
        FA_WITHDRAW_V1,
        FA_DEPOSIT_V1,
        COIN_WITHDRAW_V1,
        COIN_DEPOSIT_V1,
        COIN_WITHDRAW,
        COIN_DEPOSIT,
    }
)
_WITHDRAWS = frozenset({FA_WITHDRAW, FA_WITHDRAW_V1, COIN_WITHDRAW_V1, COIN_WITHDRAW})


class Leg(msgspec.Struct, frozen=True):
    index: int
    owner: str
    asset: str
    delta: int


def framework_type(kind: str) -> str:
    """Canonical spelling where it matters for matching: `0x0001::coin::…` is `0x1::coin::…`.

    Nodes print `0x1::…`; only a zero-padded address can spell a framework type differently, so
    other types are left as they are (venue matching normalises them itself).
    """
    return canonical_type(kind) if kind.startswith("0x0") else kind


def canonical_events(tx: UserTransaction) -> UserTransaction:
    """The transaction with every event type in canonical spelling."""
    if not any(e.type.startswith("0x0") for e in tx.events):
        return tx
    events = [msgspec.structs.replace(e, type=framework_type(e.type)) for e in tx.events]
    return msgspec.structs.replace(tx, events=events)


class WriteSet:
    """What the transaction's write set says about stores, coin handles and decimals."""

    def __init__(self, tx: UserTransaction) -> None:
        self.store_owner: dict[str, str] = {}
        self.store_metadata: dict[str, str] = {}
        self.coin_handles: dict[tuple[str, int], str] = {}
        self.decimals: dict[str, int] = {}
        self.coin_types: list[str] = []
        fa_decimals: dict[str, int] = {}
        for change in tx.changes:
            if change.type != "write_resource" or change.address is None:
                continue
            data = change.data
            if type(data) is not dict:
                resource = _convert(data, Resource, "change")  # raises a precise reason
            else:
                kind = data.get("type")
                if not isinstance(kind, str) or not kind.startswith(("0x1::", "0x0")):
                    continue  # not a framework resource: nothing this parser reads
                resource = Resource(type=kind, data=data.get("data"))
            kind = framework_type(resource.type)
            if kind == "0x1::object::ObjectCore":
                owner = _convert(resource.data, _ObjectCore, "change").owner
                self.store_owner[normalize_address(change.address)] = normalize_address(owner)
            elif kind == "0x1::fungible_asset::FungibleStore":
                inner = _convert(resource.data, _FungibleStore, "change").metadata.inner
                self.store_metadata[normalize_address(change.address)] = normalize_address(inner)
            elif kind.startswith(_COIN_STORE_PREFIX) and kind.endswith(">"):
                coin_type = normalize_type(kind[len(_COIN_STORE_PREFIX) : -1])
                store = _convert(resource.data, _CoinStore, "change")
                for handle in (store.deposit_events, store.withdraw_events):
                    key = (normalize_address(handle.guid.id.addr), u64(handle.guid.id.creation_num))
                    self.coin_handles[key] = coin_type
                self.coin_types.append(coin_type)
            elif kind.startswith(_COIN_INFO_PREFIX) and kind.endswith(">"):
                coin_type = normalize_type(kind[len(_COIN_INFO_PREFIX) : -1])
                self.decimals[coin_type] = _convert(resource.data, _Decimals, "change").decimals
                self.coin_types.append(coin_type)
            elif kind == "0x1::fungible_asset::Metadata":
                fa_decimals[normalize_address(change.address)] = _convert(resource.data, _Decimals, "change").decimals
        self.fa_decimals = fa_decimals


def _coin_types_mentioned(tx: UserTransaction, writes: WriteSet) -> list[str]:
    found = list(writes.coin_types)
    if tx.payload is not None:
        found.extend(tx.payload.type_arguments)
    for event in tx.events:
        if event.type in (COIN_WITHDRAW, COIN_DEPOSIT) and isinstance(event.data, dict):
            coin_type = event.data.get("coin_type")
            if isinstance(coin_type, str):
                found.append(coin_type)
    return found


def balance_legs(tx: UserTransaction, writes: WriteSet) -> tuple[list[Leg], AssetNamer]:
    """Every coin/FA balance change in event order, owners and assets resolved (Rejected if not)."""
    namer = AssetNamer(_coin_types_mentioned(tx, writes))
    deleted_stores: dict[str, tuple[str, str]] = {}
    deleted_handles: dict[tuple[str, int], str] = {}
    for event in tx.events:
        if event.type == FA_STORE_DELETION:
            gone = _convert(event.data, _StoreDeletion, "event")
            deleted_stores[normalize_address(gone.store)] = (normalize_address(gone.owner), gone.metadata)
        elif event.type == COIN_STORE_DELETION:
            dropped = _convert(event.data, _CoinStoreDeletion, "event")
            holder = normalize_address(dropped.event_handle_creation_address)
            coin_type = normalize_type(dropped.coin_type)
            deleted_handles[(holder, u64(dropped.deleted_deposit_event_handle_creation_number))] = coin_type
            deleted_handles[(holder, u64(dropped.deleted_withdraw_event_handle_creation_number))] = coin_type

    legs: list[Leg] = []
    for index, event in enumerate(tx.events):
        kind = event.type
        if kind not in _BALANCE_EVENTS:
            continue
        sign = -1 if kind in _WITHDRAWS else 1
        if kind in (FA_WITHDRAW, FA_DEPOSIT, FA_WITHDRAW_V1, FA_DEPOSIT_V1):
            if kind in (FA_WITHDRAW, FA_DEPOSIT):
                move = _convert(event.data, _FaMove, "event")
                store, amount = normalize_address(move.store), move.amount
            else:
                if event.guid is None:
                    raise Rejected("bad_event", f"{kind} without a guid")
                store = normalize_address(event.guid.account_address)
                amount = _convert(event.data, _Amount, "event").amount
            if store in writes.store_owner and store in writes.store_metadata:
                owner, asset = writes.store_owner[store], namer.fa(writes.store_metadata[store])
            elif store in deleted_stores:
                owner, metadata = deleted_stores[store]
                asset = namer.fa(metadata)
            else:
                raise Rejected("unresolved_store", f"FA store {store} has no owner/metadata in the write set")
        elif kind in (COIN_WITHDRAW, COIN_DEPOSIT):
            coin = _convert(event.data, _CoinMove, "event")
            owner, asset, amount = normalize_address(coin.account), namer.coin(coin.coin_type), coin.amount
        else:
            if event.guid is None:
                raise Rejected("bad_event", f"{kind} without a guid")
            owner = normalize_address(event.guid.account_address)
            key = (owner, u64(event.guid.creation_number))
            found = writes.coin_handles.get(key) or deleted_handles.get(key)
            if found is None:
                raise Rejected("unresolved_coin_store", f"no CoinStore with event handle {key} in the write set")
            asset = namer.coin(found)
            amount = _convert(event.data, _Amount, "event").amount
        legs.append(Leg(index=index, owner=owner, asset=asset, delta=sign * u64(amount)))
    return legs, namer


FEE_STATEMENT = "0x1::transaction_fee::FeeStatement"


def gas_charge(tx: UserTransaction) -> int:
    """Octas the fee payer was charged: gas_used * gas_unit_price less the storage fee refund its `FeeStatement`
    reports. The framework's epilogue burns that difference, or pays it out when the refund is the larger (a
    transaction that frees storage): then the charge is negative."""
    gross = u64(tx.gas_used) * u64(tx.gas_unit_price)
    for event in reversed(tx.events):
        if event.type == FEE_STATEMENT:
            refund = event.data.get("storage_fee_refund_octas") if isinstance(event.data, dict) else None
            if not (isinstance(refund, str) and refund.isascii() and refund.isdigit() and len(refund) <= 20):
                raise Rejected("bad_fee_statement", "FeeStatement without a u64 storage_fee_refund_octas")
            return gross - u64(refund)
    return gross


def drop_gas_leg(legs: list[Leg], events: list[RawEvent], payer: str, charge: int) -> list[Leg]:
    """Remove the gas charge when it was emitted as a balance event (2024 framework; aptos.md §2.5).

    The charge (`gas_charge`) is the payer's APT withdraw of exactly that amount (or, when the storage
    refund exceeded the fee, a deposit of the difference) that is the last balance event and is immediately
    followed by the `FeeStatement` (the framework charges gas after the payload ran, then states the fee).
    """
    if charge != 0 and legs:
        last = legs[-1]
        follower = events[last.index + 1].type if last.index + 1 < len(events) else ""
        if last.owner == payer and last.asset == APT and last.delta == -charge and follower == FEE_STATEMENT:
            return legs[:-1]
    return legs
