"""Account and balance state of the local Aptos node, rendered as mainnet renders resources.

APT and other migrated coins live in primary fungible stores (the post-migration mainnet shape:
`0x1::fungible_asset::FungibleStore` + `0x1::object::ObjectCore` at the store address, FA
`Withdraw`/`Deposit` module events); unmigrated coins live in `0x1::coin::CoinStore<T>` with v1
`WithdrawEvent`/`DepositEvent` handle events. `Overlay` is one transaction's view: it changes
nothing until committed, so a failed or simulated transaction leaves the state untouched.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aptos_sdk.account_address import AccountAddress

APT = "0x1::aptos_coin::AptosCoin"
APT_METADATA = "0x" + "0" * 63 + "a"
CORE_RESOURCES = "0x" + "0" * 57 + "a550c18"
OBJECT_GUID = "1125899906842624"  # the first GUID creation number of every object (2**50)

_ADDR = re.compile(r"0x[0-9a-fA-F]+")


def addr_long(addr: str | AccountAddress) -> str:
    """`0x` + 64 lowercase hex: the one spelling used for keys."""
    if isinstance(addr, AccountAddress):
        return "0x" + addr.address.hex()
    return "0x" + AccountAddress.from_str_relaxed(addr).address.hex()


def addr_short(addr: str | AccountAddress) -> str:
    """What the REST API prints: leading zeros stripped (`0xa`, `0x7730cd…`)."""
    return "0x" + (addr_long(addr)[2:].lstrip("0") or "0")


def type_short(type_str: str) -> str:
    """A type or function string with every address in REST (short) form."""
    return _ADDR.sub(lambda m: addr_short(m.group(0)), type_str)


def primary_store(owner: str, metadata: str) -> str:
    """Address of `owner`'s primary fungible store of `metadata`: sha3_256(owner || metadata || 0xFC)."""
    raw = bytes.fromhex(addr_long(owner)[2:]) + bytes.fromhex(addr_long(metadata)[2:]) + b"\xfc"
    return "0x" + hashlib.sha3_256(raw).hexdigest()


def state_key_hash(address: str, group: str) -> str:
    return "0x" + hashlib.sha3_256(f"{addr_long(address)}/{group}".encode()).hexdigest()


def _guid(addr: str, num: int | str) -> dict[str, Any]:
    return {"id": {"addr": addr_short(addr), "creation_num": str(num)}}


class Abort(Exception):
    """A Move abort or execution error: the transaction commits with success=false and this vm_status."""

    def __init__(self, vm_status: str) -> None:
        super().__init__(vm_status)
        self.vm_status = vm_status


FA_INSUFFICIENT = (
    "Move abort in 0x1::fungible_asset: EINSUFFICIENT_BALANCE(0x10004): Insufficient balance to withdraw or transfer."
)
COIN_INSUFFICIENT = "Move abort in 0x1::coin: EINSUFFICIENT_BALANCE(0x10006): Not enough coins to complete transaction"


@dataclass(frozen=True)
class CoinInfo:
    """A coin type; `metadata` set means migrated: balances live in the paired FA's primary stores."""

    coin_type: str
    name: str
    symbol: str
    decimals: int
    metadata: str | None = None


@dataclass(frozen=True)
class FaMetadata:
    metadata: str
    name: str
    symbol: str
    decimals: int


@dataclass
class AccountState:
    sequence_number: int = 0
    authentication_key: str = ""
    guid_creation_num: int = 4
    coin_register_events: int = 0


@dataclass
class CoinStoreState:
    value: int = 0
    deposit_num: int = 2
    withdraw_num: int = 3
    deposits: int = 0
    withdrawals: int = 0


@dataclass
class State:
    accounts: dict[str, AccountState] = field(default_factory=dict)
    fa: dict[tuple[str, str], int] = field(default_factory=dict)
    """(owner, metadata) -> primary store balance."""
    coin_stores: dict[tuple[str, str], CoinStoreState] = field(default_factory=dict)
    """(owner, coin type) -> CoinStore."""
    coins: dict[str, CoinInfo] = field(default_factory=dict)
    metadata: dict[str, FaMetadata] = field(default_factory=dict)

    def asset(self, asset: str) -> tuple[str, str]:
        """("fa", metadata) or ("coin", coin type) for a coin type or an FA metadata address."""
        if "::" in asset:
            coin_type = type_short(asset)
            info = self.coins.get(coin_type)
            if info is None:
                raise KeyError(f"unknown coin type {coin_type}")
            return ("fa", addr_long(info.metadata)) if info.metadata else ("coin", coin_type)
        return "fa", addr_long(asset)

    def balance(self, owner: str, asset: str) -> int:
        kind, key = self.asset(asset)
        if kind == "fa":
            return self.fa.get((addr_long(owner), key), 0)
        store = self.coin_stores.get((addr_long(owner), key))
        return store.value if store else 0

    # --- resources, rendered like GET /accounts/{addr}/resources -----------------------------------

    def resources(self, address: str) -> list[dict[str, Any]]:
        addr = addr_long(address)
        out: list[dict[str, Any]] = []
        account = self.accounts.get(addr)
        if account is not None:
            out.append(account_resource(addr, account))
        for (owner, coin_type), store in self.coin_stores.items():
            if owner == addr:
                out.append(coin_store_resource(addr, coin_type, store))
        for coin in self.coins.values():
            if addr_long(coin.coin_type.split("::")[0]) == addr:
                out.append(coin_info_resource(coin))
        meta = self.metadata.get(addr)
        if meta is not None:
            out.append({"type": "0x1::fungible_asset::Metadata", "data": metadata_data(meta)})
        for (owner, metadata), balance in self.fa.items():
            if primary_store(owner, metadata) == addr:
                out.extend(r["data"] for r in store_resources(owner, metadata, balance))
        return out


def account_resource(addr: str, a: AccountState) -> dict[str, Any]:
    return {
        "type": "0x1::account::Account",
        "data": {
            "authentication_key": a.authentication_key or addr_long(addr),
            "coin_register_events": {"counter": str(a.coin_register_events), "guid": _guid(addr, 0)},
            "guid_creation_num": str(a.guid_creation_num),
            "key_rotation_events": {"counter": "0", "guid": _guid(addr, 1)},
            "rotation_capability_offer": {"for": {"vec": []}},
            "sequence_number": str(a.sequence_number),
            "signer_capability_offer": {"for": {"vec": []}},
        },
    }


def coin_store_resource(owner: str, coin_type: str, s: CoinStoreState) -> dict[str, Any]:
    return {
        "type": f"0x1::coin::CoinStore<{coin_type}>",
        "data": {
            "coin": {"value": str(s.value)},
            "deposit_events": {"counter": str(s.deposits), "guid": _guid(owner, s.deposit_num)},
            "frozen": False,
            "withdraw_events": {"counter": str(s.withdrawals), "guid": _guid(owner, s.withdraw_num)},
        },
    }


def coin_info_resource(coin: CoinInfo) -> dict[str, Any]:
    return {
        "type": f"0x1::coin::CoinInfo<{coin.coin_type}>",
        "data": {
            "decimals": coin.decimals,
            "name": coin.name,
            "supply": {"vec": []},
            "symbol": coin.symbol,
        },
    }


def metadata_data(meta: FaMetadata) -> dict[str, Any]:
    return {"decimals": meta.decimals, "icon_uri": "", "name": meta.name, "project_uri": "", "symbol": meta.symbol}


def store_resources(owner: str, metadata: str, balance: int) -> list[dict[str, Any]]:
    """The FungibleStore and ObjectCore write_resource entries of a primary store (one resource group)."""
    store = primary_store(owner, metadata)
    key = state_key_hash(store, "ObjectGroup")
    fungible = {
        "type": "0x1::fungible_asset::FungibleStore",
        "data": {"balance": str(balance), "frozen": False, "metadata": {"inner": addr_short(metadata)}},
    }
    core = {
        "type": "0x1::object::ObjectCore",
        "data": {
            "allow_ungated_transfer": False,
            "guid_creation_num": str(int(OBJECT_GUID) + 1),
            "owner": addr_short(owner),
            "transfer_events": {"counter": "0", "guid": _guid(store, OBJECT_GUID)},
        },
    }
    return [
        {"address": addr_short(store), "state_key_hash": key, "data": d, "type": "write_resource"}
        for d in (fungible, core)
    ]


class Overlay:
    """One transaction's changes over `State`, with the events it emitted; `commit()` applies them."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.accounts: dict[str, AccountState] = {}
        self.fa: dict[tuple[str, str], int] = {}
        self.coin_stores: dict[tuple[str, str], CoinStoreState] = {}
        self.events: list[dict[str, Any]] = []

    def account(self, addr: str, *, create: bool = False) -> AccountState | None:
        key = addr_long(addr)
        if key not in self.accounts:
            found = self.state.accounts.get(key)
            if found is None and not create:
                return None
            self.accounts[key] = copy.copy(found) if found else AccountState(authentication_key=key)
        return self.accounts[key]

    def fa_balance(self, owner: str, metadata: str) -> int:
        key = (addr_long(owner), addr_long(metadata))
        return self.fa[key] if key in self.fa else self.state.fa.get(key, 0)

    def _coin_store(self, owner: str, coin_type: str, *, register: bool) -> CoinStoreState | None:
        key = (addr_long(owner), coin_type)
        if key not in self.coin_stores:
            found = self.state.coin_stores.get(key)
            if found is None:
                if not register:
                    return None
                account = self.account(owner, create=True)
                assert account is not None  # noqa: S101  (created above)
                found = CoinStoreState(
                    deposit_num=account.guid_creation_num, withdraw_num=account.guid_creation_num + 1
                )
                account.guid_creation_num += 2
                self.module_event_v1(
                    owner,
                    0,
                    account.coin_register_events,
                    "0x1::account::CoinRegisterEvent",
                    {"type_info": _type_info(coin_type)},
                )
                account.coin_register_events += 1
                self.coin_stores[key] = found
                return found
            self.coin_stores[key] = copy.copy(found)
        return self.coin_stores[key]

    def module_event_v1(self, addr: str, num: int, seq: int, type_: str, data: dict[str, Any]) -> None:
        self.events.append(
            {
                "guid": {"creation_number": str(num), "account_address": addr_short(addr)},
                "sequence_number": str(seq),
                "type": type_,
                "data": data,
            }
        )

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """A module event (guid 0 / 0x0, sequence 0), as mainnet prints them."""
        self.module_event_v1("0x0", 0, 0, type_, data)

    def withdraw(self, owner: str, asset: str, amount: int, *, event: bool = True) -> None:
        kind, key = self.state.asset(asset)
        if kind == "fa":
            balance = self.fa_balance(owner, key)
            if balance < amount:
                raise Abort(FA_INSUFFICIENT)
            self.fa[(addr_long(owner), key)] = balance - amount
            if event:
                self.emit(
                    "0x1::fungible_asset::Withdraw",
                    {"amount": str(amount), "store": addr_short(primary_store(owner, key))},
                )
            return
        store = self._coin_store(owner, key, register=False)
        if store is None or store.value < amount:
            raise Abort(COIN_INSUFFICIENT)
        store.value -= amount
        if event:
            self.module_event_v1(
                owner, store.withdraw_num, store.withdrawals, "0x1::coin::WithdrawEvent", {"amount": str(amount)}
            )
            store.withdrawals += 1

    def deposit(self, owner: str, asset: str, amount: int) -> None:
        kind, key = self.state.asset(asset)
        self.account(owner, create=True)
        if kind == "fa":
            self.fa[(addr_long(owner), key)] = self.fa_balance(owner, key) + amount
            self.emit(
                "0x1::fungible_asset::Deposit", {"amount": str(amount), "store": addr_short(primary_store(owner, key))}
            )
            return
        store = self._coin_store(owner, key, register=True)
        assert store is not None  # noqa: S101  (registered on demand)
        store.value += amount
        self.module_event_v1(
            owner, store.deposit_num, store.deposits, "0x1::coin::DepositEvent", {"amount": str(amount)}
        )
        store.deposits += 1

    def changes(self) -> list[dict[str, Any]]:
        """The write set, sorted by address as mainnet prints it."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        for addr, account in self.accounts.items():
            out.append((addr, "0x1::account::Account", _write(addr, account_resource(addr, account))))
        for (owner, coin_type), store in self.coin_stores.items():
            r = coin_store_resource(owner, coin_type, store)
            out.append((owner, r["type"], _write(owner, r)))
        for (owner, metadata), balance in self.fa.items():
            for w in store_resources(owner, metadata, balance):
                out.append((addr_long(w["address"]), w["data"]["type"], w))
        return [w for _, _, w in sorted(out, key=lambda t: (t[0], t[1]))]

    def commit(self) -> None:
        self.state.accounts.update(self.accounts)
        self.state.fa.update(self.fa)
        self.state.coin_stores.update(self.coin_stores)

    def touched(self) -> Iterator[str]:
        yield from self.accounts
        yield from (owner for owner, _ in self.fa)
        yield from (owner for owner, _ in self.coin_stores)


def _write(addr: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": addr_short(addr),
        "state_key_hash": state_key_hash(addr, resource["type"]),
        "data": resource,
        "type": "write_resource",
    }


def _type_info(coin_type: str) -> dict[str, str]:
    address, module, name = coin_type.split("<")[0].split("::")
    return {
        "account_address": addr_short(address),
        "module_name": "0x" + module.encode().hex(),
        "struct_name": "0x" + name.encode().hex(),
    }
