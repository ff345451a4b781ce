"""The local Aptos node's ledger: verified submissions, execution of a few entry functions, history.

Runs `0x1::aptos_account::transfer`, `transfer_coins<T>`, `0x1::coin::transfer<T>`,
`0x1::aptos_coin::mint` (core-resources account only: the faucet) and one configurable router swap
`<In, Out>(amount_in: u64, min_amount_out: u64)` at fixed rates. Validation follows the fullnode:
signature, auth key, chain id, expiry, sequence number and the gas deposit are checked at submit
(400 `vm_error` with the VM's status code); a Move abort commits with success=false, gas charged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from aptos_sdk.authenticator import Ed25519Authenticator
from aptos_sdk.bcs import Deserializer
from aptos_sdk.transactions import EntryFunction, SignedTransaction

from quantbot.clock import Clock
from quantbot.localnet.aptos_state import (
    APT,
    APT_METADATA,
    CORE_RESOURCES,
    FA_INSUFFICIENT,
    Abort,
    CoinInfo,
    FaMetadata,
    Overlay,
    State,
    addr_long,
    addr_short,
    type_short,
)
from quantbot.localnet.aptos_wire import (
    auth_key,
    block_metadata_json,
    fake_hash,
    genesis_json,
    pending_json,
    read_address,
    transaction_hash,
)

# aptos-core StatusCode values of the validation errors this node reports.
VM_CODES = {
    "INVALID_SIGNATURE": 1,
    "INVALID_AUTH_KEY": 2,
    "SEQUENCE_NUMBER_TOO_OLD": 3,
    "INSUFFICIENT_BALANCE_FOR_TRANSACTION_FEE": 5,
    "TRANSACTION_EXPIRED": 6,
    "SENDING_ACCOUNT_DOES_NOT_EXIST": 7,
    "MAX_GAS_UNITS_BELOW_MIN_TRANSACTION_GAS_UNITS": 14,
    "BAD_CHAIN_ID": 23,
}
MIN_GAS_UNITS = 2
GAS = {"transfer": 11, "mint": 9, "swap": 37, "failed": 7}


class ValidationError(Exception):
    """Refused at submission (HTTP 400, error_code vm_error)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"Invalid transaction: Type: Validation Code: {status}")
        self.status = status
        self.code = VM_CODES[status]


@dataclass(frozen=True)
class RouterSwap:
    """A router entry function `address::module::function<In, Out>(amount_in: u64, min_amount_out: u64)`.

    `rates[(In, Out)]` is the output in base units per input base unit; the pool account's balances
    are the liquidity. It emits `address::module::SwapEvent` and the usual Withdraw/Deposit events.
    """

    address: str
    pool: str
    rates: Mapping[tuple[str, str], Decimal]
    module: str = "router"
    function: str = "swap_exact_input"

    @property
    def function_id(self) -> str:
        return f"{addr_short(self.address)}::{self.module}::{self.function}"

    def quote(self, asset_in: str, asset_out: str, amount_in: int) -> int | None:
        rate = self.rates.get((type_short(asset_in), type_short(asset_out)))
        if rate is None:
            return None
        return int((Decimal(amount_in) * rate).to_integral_value(rounding=ROUND_FLOOR))


@dataclass
class Ledger:
    """Committed history (index = version), the mempool, and the state the node executes against."""

    clock: Clock
    chain_id: int = 4
    router: RouterSwap | None = None
    state: State = field(default_factory=State)
    txs: list[dict[str, Any]] = field(default_factory=list)
    by_hash: dict[str, int] = field(default_factory=dict)
    pending: dict[str, tuple[SignedTransaction, dict[str, Any]]] = field(default_factory=dict)
    hold: bool = False
    """When set, accepted submissions stay pending until `release()`."""
    faucet: Any = None
    """The core-resources `Account` the node's faucet signs mints with."""
    oldest_version: int = 0
    block_height: int = 0
    _last_us: int = 0

    def __post_init__(self) -> None:
        self.add_coin(APT, name="Aptos Coin", symbol="APT", decimals=8, metadata=APT_METADATA)
        self.txs.append(genesis_json())

    # --- setup --------------------------------------------------------------------------------------

    def add_coin(self, coin_type: str, *, name: str, symbol: str, decimals: int, metadata: str | None = None) -> None:
        ct = type_short(coin_type)
        self.state.coins[ct] = CoinInfo(ct, name, symbol, decimals, addr_long(metadata) if metadata else None)
        if metadata:
            self.add_fungible_asset(metadata, name=name, symbol=symbol, decimals=decimals)

    def add_fungible_asset(self, metadata: str, *, name: str, symbol: str, decimals: int) -> None:
        self.state.metadata[addr_long(metadata)] = FaMetadata(addr_long(metadata), name, symbol, decimals)

    def set_balance(self, owner: str, asset: str, amount: int) -> None:
        """Genesis-style state edit (no transaction): give `owner` exactly `amount` of `asset`."""
        ov = Overlay(self.state)
        ov.account(owner, create=True)
        current = self.state.balance(owner, asset)
        if amount >= current:
            ov.deposit(owner, asset, amount - current)
        else:
            ov.withdraw(owner, asset, current - amount)
        ov.commit()

    def add_transactions(self, txs: Iterable[Mapping[str, Any]], *, restamp: bool = True) -> list[int]:
        """Append recorded transactions, renumbered to this ledger's next versions; returns the versions."""
        versions = []
        for raw in txs:
            tx = dict(raw)
            tx_hash = tx.get("hash")
            if tx_hash is not None and (tx_hash in self.by_hash or tx_hash in self.pending):
                raise ValueError(f"transaction {tx_hash} is already in the ledger")
            if restamp and "timestamp" in tx:
                tx["timestamp"] = str(self._now_us())
            versions.append(self._append(tx))
        return versions

    # --- reading ------------------------------------------------------------------------------------

    @property
    def router_function(self) -> str | None:
        return self.router.function_id if self.router else None

    @property
    def version(self) -> int:
        return len(self.txs) - 1

    @property
    def timestamp_us(self) -> int:
        return int(self.txs[-1].get("timestamp", "0"))

    def sequence_number(self, addr: str) -> int:
        account = self.state.accounts.get(addr_long(addr))
        return account.sequence_number if account else 0

    def account_transactions(self, addr: str) -> list[dict[str, Any]]:
        key = addr_long(addr)
        return [
            t
            for t in self.txs
            if t.get("type") == "user_transaction" and "sender" in t and addr_long(t["sender"]) == key
        ]

    # --- submission ---------------------------------------------------------------------------------

    def submit(self, signed: SignedTransaction, body: bytes) -> dict[str, Any]:
        """Verify and accept into the mempool; commit at once unless held. Returns the pending JSON."""
        if not signed.verify():
            raise ValidationError("INVALID_SIGNATURE")
        tx_hash = transaction_hash(body)
        if tx_hash in self.pending:
            return self.pending[tx_hash][1]
        self._prologue(signed)
        pending = pending_json(signed, tx_hash, self.router_function)
        self.pending[tx_hash] = (signed, pending)
        if not self.hold:
            self.release()
        return pending

    def release(self) -> list[str]:
        """Commit every pending transaction whose sequence number is next; returns their hashes."""
        committed = []
        progress = True
        while progress:
            progress = False
            for tx_hash, (signed, _) in list(self.pending.items()):
                raw = signed.transaction
                if raw.sequence_number != self.sequence_number(str(raw.sender)):
                    continue
                del self.pending[tx_hash]
                try:
                    self._prologue(signed)
                except ValidationError:
                    continue  # expired (or no longer affordable) while parked: discarded, as mempool does
                self._append(self._execute(signed, tx_hash, simulate=False))
                committed.append(tx_hash)
                progress = True
        return committed

    def simulate(self, signed: SignedTransaction, body: bytes) -> dict[str, Any]:
        raw = signed.transaction
        if raw.sequence_number < self.sequence_number(str(raw.sender)):
            # As the fullnode: a simulation reports the prologue's refusal as its status (HTTP 200), where a
            # submission is refused with HTTP 400.
            status = "Transaction Executed and Committed with Error SEQUENCE_NUMBER_TOO_OLD"
            tx = self._execute(signed, transaction_hash(body), simulate=True)  # on an overlay: nothing is kept
            return tx | {"success": False, "vm_status": status, "events": [], "changes": [], "gas_used": "0"}
        self._prologue(signed, simulate=True)
        tx = self._execute(signed, transaction_hash(body), simulate=True)
        if raw.sequence_number > self.sequence_number(str(raw.sender)):
            # As the fullnode (aptos-core #5066): the prologue refuses a future sequence number, even simulated.
            status = "Transaction Executed and Committed with Error SEQUENCE_NUMBER_TOO_NEW"
            tx |= {"success": False, "vm_status": status, "events": [], "changes": [], "gas_used": "0"}
        return tx

    # --- internals ----------------------------------------------------------------------------------

    def _prologue(self, signed: SignedTransaction, *, simulate: bool = False) -> None:
        raw = signed.transaction
        if raw.chain_id != self.chain_id:
            raise ValidationError("BAD_CHAIN_ID")
        if raw.expiration_timestamps_secs <= int(self.clock.now().timestamp()):
            raise ValidationError("TRANSACTION_EXPIRED")
        account = self.state.accounts.get(addr_long(str(raw.sender)))
        if account is None:
            raise ValidationError("SENDING_ACCOUNT_DOES_NOT_EXIST")
        if not simulate:
            auth = signed.authenticator.authenticator
            if not isinstance(auth, Ed25519Authenticator):
                raise ValidationError("INVALID_SIGNATURE")
            if auth_key(auth.public_key) != account.authentication_key:
                raise ValidationError("INVALID_AUTH_KEY")
        if raw.sequence_number < account.sequence_number:
            raise ValidationError("SEQUENCE_NUMBER_TOO_OLD")
        if raw.max_gas_amount < MIN_GAS_UNITS:
            raise ValidationError("MAX_GAS_UNITS_BELOW_MIN_TRANSACTION_GAS_UNITS")
        if self.state.balance(str(raw.sender), APT) < raw.max_gas_amount * raw.gas_unit_price:
            raise ValidationError("INSUFFICIENT_BALANCE_FOR_TRANSACTION_FEE")

    def _execute(self, signed: SignedTransaction, tx_hash: str, *, simulate: bool) -> dict[str, Any]:
        raw = signed.transaction
        sender = str(raw.sender)
        ov = Overlay(self.state)
        try:
            gas = self._run(ov, sender, raw.payload.value)
            vm_status, success = "Executed successfully", True
        except Abort as abort:
            ov = Overlay(self.state)
            gas, vm_status, success = GAS["failed"], abort.vm_status, False
        except Exception:  # noqa: BLE001  (arguments that are not what the function takes)
            ov = Overlay(self.state)
            gas, vm_status, success = GAS["failed"], "FAILED_TO_DESERIALIZE_ARGUMENT", False
        if gas > raw.max_gas_amount:
            ov = Overlay(self.state)
            gas, vm_status, success = raw.max_gas_amount, "Out of gas", False
        fee = gas * raw.gas_unit_price
        if ov.fa_balance(sender, APT_METADATA) < fee:
            ov = Overlay(self.state)
            gas, vm_status, success = GAS["failed"], FA_INSUFFICIENT, False
            fee = gas * raw.gas_unit_price
        ov.withdraw(sender, APT, fee, event=False)  # gas: no Withdraw event (2025 mainnet)
        account = ov.account(sender)
        assert account is not None  # noqa: S101  (the prologue checked it exists)
        account.sequence_number = raw.sequence_number + 1
        ov.emit(
            "0x1::transaction_fee::FeeStatement",
            {
                "execution_gas_units": str(max(gas - 4, 0)),
                "io_gas_units": str(min(gas, 4)),
                "storage_fee_octas": "0",
                "storage_fee_refund_octas": "0",
                "total_charge_gas_units": str(gas),
            },
        )
        tx = {
            "version": str(len(self.txs) + (0 if simulate else 1)),
            "hash": tx_hash,
            "state_change_hash": fake_hash("state", tx_hash),
            "event_root_hash": fake_hash("events", tx_hash),
            "state_checkpoint_hash": None,
            "gas_used": str(gas),
            "success": success,
            "vm_status": vm_status,
            "accumulator_root_hash": fake_hash("accumulator", tx_hash),
            "changes": ov.changes(),
            **pending_json(signed, tx_hash, self.router_function),
            "events": ov.events,
            "timestamp": str(self._now_us() if not simulate else int(self.clock.now().timestamp() * 1e6)),
            "type": "user_transaction",
        }
        if not simulate:
            ov.commit()
            self.txs.append(self._block_metadata(tx["timestamp"]))
        return tx

    def _run(self, ov: Overlay, sender: str, payload: Any) -> int:
        if not isinstance(payload, EntryFunction):
            raise Abort("FEATURE_UNDER_GATING")
        fn = f"{addr_short(payload.module.address)}::{payload.module.name}::{payload.function}"
        ty = [type_short(str(t)) for t in payload.ty_args]
        args = [Deserializer(a) for a in payload.args]
        if fn in ("0x1::aptos_account::transfer", "0x1::aptos_account::transfer_coins", "0x1::coin::transfer"):
            coin = ty[0] if ty else APT
            to, amount = read_address(args[0]), args[1].u64()
            if coin not in self.state.coins:
                raise Abort("Move abort in 0x1::coin: ECOIN_INFO_NOT_PUBLISHED(0x60002): ")
            ov.withdraw(sender, coin, amount)
            ov.deposit(to, coin, amount)
            return GAS["transfer"]
        if fn == "0x1::aptos_coin::mint":
            if addr_long(sender) != CORE_RESOURCES:
                raise Abort("Move abort in 0x1::aptos_coin: ENO_CAPABILITIES(0x60001): ")
            ov.deposit(read_address(args[0]), APT, args[1].u64())
            return GAS["mint"]
        router = self.router
        if router is not None and fn == router.function_id and len(ty) == 2:
            amount_in, min_out = args[0].u64(), args[1].u64()
            out = router.quote(ty[0], ty[1], amount_in)
            if out is None or not all(t in self.state.coins for t in ty):
                raise Abort(f"Move abort in {router.function_id.rsplit('::', 1)[0]}: E_PAIR_NOT_FOUND(0x60001): ")
            if out < min_out:
                raise Abort(f"Move abort in {router.function_id.rsplit('::', 1)[0]}: E_OUTPUT_LESS_THAN_MIN(0x10002): ")
            ov.withdraw(sender, ty[0], amount_in)
            ov.deposit(router.pool, ty[0], amount_in)
            ov.withdraw(router.pool, ty[1], out)
            ov.deposit(sender, ty[1], out)
            ov.emit(
                f"{addr_short(router.address)}::{router.module}::SwapEvent",
                {
                    "amount_in": str(amount_in),
                    "amount_out": str(out),
                    "from_token": ty[0],
                    "to_token": ty[1],
                    "pool": addr_short(router.pool),
                    "user": addr_short(sender),
                },
            )
            return GAS["swap"]
        raise Abort("LINKER_ERROR")

    def _append(self, tx: dict[str, Any]) -> int:
        version = len(self.txs)
        tx["version"] = str(version)
        self.txs.append(tx)
        if tx.get("hash"):
            self.by_hash[tx["hash"]] = version
        return version

    def _now_us(self) -> int:
        self._last_us = max(self._last_us + 1, int(self.clock.now().timestamp() * 1_000_000))
        return self._last_us

    def _block_metadata(self, timestamp: str) -> dict[str, Any]:
        self.block_height += 1
        tx = block_metadata_json(self.block_height, len(self.txs), int(timestamp) - 1)
        self.by_hash[tx["hash"]] = len(self.txs)
        return tx
