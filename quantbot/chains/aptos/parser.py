"""Aptos REST transactions -> normalized `Swap` and `Transfer` events.

One transaction in (REST API v1 JSON: a `user_transaction`, a block with `transactions`, or a JSON
array of transactions such as an account-transactions page; Transaction Stream protobuf-JSON is
converted to that shape first, see grpc.py), events out. Indexer rows are not transactions and are
rejected (`indexer_row`). Never raises: anything it
cannot parse safely is dropped and counted in `rejected` by reason; benign skips (failed
transactions, block metadata, checkpoints) are counted in `skipped`.

Rules (see rest.py for how balance legs are resolved):

* **Net flows.** Legs are summed per (owner, asset); zero nets vanish (Thala's coin->FA wrap, refunds).
  The gas charge is not a flow: when the 2024 framework emitted it as a Withdraw it is dropped.
* **Swap.** When the sender's nets have exactly one asset out and one asset in, the transaction is the
  sender's swap: `mint_in`/`amount_in` = what left, `mint_out`/`amount_out` = what arrived. `venue` comes
  from the DEX's own swap event (venues.py), `"unknown"` when none. `fee` = gas_used * gas_unit_price
  when the sender paid it, 0 for a sponsored (fee-payer) transaction.
* **Transfer.** Otherwise, per asset, the owners whose net is negative are sources and those whose net
  is positive are destinations; they are paired in order of first appearance, splitting amounts
  (one source paying two recipients is two Transfers). Amount minted or burnt (a deposit with no
  withdraw of that asset) has no counterpart and is not a Transfer.

Known limits: a swap whose output is sent to a recipient other than the sender (an aggregator's
`recipient` argument) is reported as the flows it is (Transfers), not as a Swap; so is an
emojicoin arena trade, whose coins belong to the arena escrow, not to the sender.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import timedelta
from typing import Any

import msgspec
import structlog

from quantbot.chains.aptos import ledger
from quantbot.chains.aptos.addresses import (
    APT,
    APT_DECIMALS,
    AddressError,
    long_address,
    normalize_address,
    struct_base,
)
from quantbot.chains.aptos.grpc import ProtoJsonError, is_protojson, rest_from_protojson
from quantbot.chains.aptos.rest import (
    Leg,
    Rejected,
    UserTransaction,
    WriteSet,
    balance_legs,
    canonical_events,
    drop_gas_leg,
    gas_charge,
    u64,
)
from quantbot.chains.aptos.venues import VenueBook
from quantbot.events import EPOCH, Event, Swap, Transfer

log = structlog.get_logger(component="aptos.parser")

_OTHER_TX_TYPES = frozenset(
    {
        "block_metadata_transaction",
        "state_checkpoint_transaction",
        "block_epilogue_transaction",
        "genesis_transaction",
        "validator_transaction",
        "pending_transaction",
    }
)
_MAX_BATCH = 10_000
_MAX_TIMESTAMP_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z, the last datetime
_json = msgspec.json.Decoder()


class AptosParser:
    """Stateless apart from its counters and the caller's decimals lookup; safe to share."""

    name = "aptos.parser"

    def __init__(
        self,
        *,
        decimals: Callable[[str], int | None] | None = None,
        venues: Mapping[str, Iterable[tuple[str, str]]] | None = None,
    ) -> None:
        """`decimals(asset)`: known decimals of a coin type / FA address (None if unknown);
        `venues`: extra DEX packages, venue -> [(package address, "module::Struct"), ...]."""
        self._decimals = decimals
        self._venues = VenueBook(venues)
        self.rejected: collections.Counter[str] = collections.Counter()
        self.skipped: collections.Counter[str] = collections.Counter()

    # --- entry points ----------------------------------------------------------------------------

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any] | list[Any]) -> list[Event]:
        """One REST transaction (or a block / JSON array of them) -> events. Never raises."""
        try:
            data: Any = _json.decode(raw) if isinstance(raw, bytes | str) else raw
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
            return self._reject("invalid_json", str(exc))
        if isinstance(data, list):
            if len(data) > _MAX_BATCH:
                return self._reject("batch_too_large", f"{len(data)} transactions")
            return [event for item in data for event in self._parse_one(item)]
        if isinstance(data, Mapping) and "transactions" in data and ("block_height" in data or "chainId" in data):
            txs = data["transactions"]
            if not isinstance(txs, list) or len(txs) > _MAX_BATCH:
                return self._reject("bad_block", "transactions is not a list of at most 10000")
            return [event for item in txs for event in self._parse_one(item)]
        return self._parse_one(data)

    def touches(self, tx: Mapping[str, Any], watched: AbstractSet[str]) -> bool:
        """True when the transaction involves an address in `watched` (canonical, see addresses.py).

        Each candidate address is one set look-up, so the cost does not grow with the watch list.
        """
        try:
            if is_protojson(tx):
                tx = rest_from_protojson(tx)
            for address in ledger.iter_touched(tx):
                # Special addresses (0x0..0xf) are short in canonical form; accept a watch list
                # that spells them long (0x + 64 digits) too.
                if address in watched or (len(address) < 66 and long_address(address) in watched):
                    return True
            return False
        except Exception as exc:  # noqa: BLE001  (hostile JSON must not stop the ledger stream)
            self.rejected["touches_malformed"] += 1
            log.warning("aptos.touches_malformed", error=type(exc).__name__)
            return False

    def touched_addresses(self, tx: Mapping[str, Any]) -> set[str]:
        """Every address the transaction involves (canonical form); empty for malformed input."""
        try:
            if is_protojson(tx):
                tx = rest_from_protojson(tx)
            return set(ledger.iter_touched(tx))
        except Exception:  # noqa: BLE001  (same contract as touches)
            self.rejected["touches_malformed"] += 1
            return set()

    # --- one transaction -------------------------------------------------------------------------

    def _parse_one(self, data: Any) -> list[Event]:
        if not isinstance(data, Mapping):
            return self._reject("not_an_object", type(data).__name__)
        if is_protojson(data):
            try:
                data = rest_from_protojson(data)
            except ProtoJsonError as exc:
                return self._reject("bad_protojson", str(exc), data)
        kind = data.get("type")
        if kind != "user_transaction":
            if isinstance(kind, str) and kind in _OTHER_TX_TYPES:
                self.skipped[kind] += 1
                return []
            if "transaction_version" in data and "owner_address" in data:
                # Indexer rows (fungible_asset_activities etc.) are per-leg, not transactions.
                return self._reject("indexer_row", "indexer rows are not REST transactions")
            return self._reject("not_a_transaction", f"type={str(kind)[:64]}")
        try:
            tx = canonical_events(msgspec.convert(data, UserTransaction))
        except msgspec.ValidationError as exc:
            return self._reject("schema", str(exc), data)
        try:
            if not tx.success:
                self.skipped["failed"] += 1
                return []
            return self._events(tx)
        except Rejected as exc:
            return self._reject(exc.reason, exc.detail, data)
        except AddressError as exc:
            return self._reject("bad_address", str(exc), data)
        except Exception as exc:  # a parser bug must cost one transaction, not the watcher
            log.exception("aptos.parse_failed", version=data.get("version"), error=type(exc).__name__)
            return self._reject("internal_error", type(exc).__name__, data)

    def _reject(self, reason: str, detail: str, data: Any = None) -> list[Event]:
        self.rejected[reason] += 1
        version = data.get("version") if isinstance(data, Mapping) else None
        log.warning("aptos.tx_rejected", reason=reason, detail=detail[:300], version=str(version)[:32])
        return []

    def _events(self, tx: UserTransaction) -> list[Event]:
        version = u64(tx.version)
        micros = u64(tx.timestamp)
        if micros > _MAX_TIMESTAMP_US:
            raise Rejected("bad_timestamp", f"{micros} µs is after the year 9999")
        block_time = EPOCH + timedelta(microseconds=micros)
        sender = normalize_address(tx.sender)
        signature = tx.signature
        payer = normalize_address(signature.fee_payer_address) if signature and signature.fee_payer_address else sender
        fee = gas_charge(tx)
        writes = WriteSet(tx)
        legs, _ = balance_legs(tx, writes)
        legs = drop_gas_leg(legs, tx.events, payer, fee)
        nets, order = _net(legs)
        common: dict[str, Any] = {"chain": "aptos", "tx": tx.hash, "slot": version, "block_time": block_time}

        mine = {asset: amount for (owner, asset), amount in nets.items() if owner == sender}
        outs = [(a, -n) for a, n in mine.items() if n < 0]
        ins = [(a, n) for a, n in mine.items() if n > 0]
        if len(outs) == 1 and len(ins) == 1:
            (mint_in, amount_in), (mint_out, amount_out) = outs[0], ins[0]
            swap = Swap(
                wallet=sender,
                mint_in=mint_in,
                amount_in=amount_in,
                decimals_in=self._lookup_decimals(mint_in, writes),
                mint_out=mint_out,
                amount_out=amount_out,
                decimals_out=self._lookup_decimals(mint_out, writes),
                venue=self._venue(tx),
                fee=fee if payer == sender else 0,
                **common,
            )
            return [swap]
        return list(self._transfers(nets, order, writes, common))

    def _transfers(
        self, nets: dict[tuple[str, str], int], order: list[str], writes: WriteSet, common: dict[str, Any]
    ) -> Iterator[Transfer]:
        for asset in order:
            sources = [(owner, -n) for (owner, a), n in nets.items() if a == asset and n < 0]
            sinks = [(owner, n) for (owner, a), n in nets.items() if a == asset and n > 0]
            decimals = self._lookup_decimals(asset, writes) if sources and sinks else None
            i = j = 0
            left_src = sources[0][1] if sources else 0
            left_sink = sinks[0][1] if sinks else 0
            while i < len(sources) and j < len(sinks):
                amount = min(left_src, left_sink)
                yield Transfer(
                    source=sources[i][0],
                    destination=sinks[j][0],
                    mint=asset,
                    amount=amount,
                    decimals=decimals,
                    **common,
                )
                left_src -= amount
                left_sink -= amount
                if left_src == 0:
                    i += 1
                    left_src = sources[i][1] if i < len(sources) else 0
                if left_sink == 0:
                    j += 1
                    left_sink = sinks[j][1] if j < len(sinks) else 0

    def _venue(self, tx: UserTransaction) -> str:
        found: list[str] = []
        for event in tx.events:
            if event.type.startswith("0x1::"):
                continue
            try:
                package, struct = struct_base(event.type)
            except AddressError:
                continue
            venue = self._venues.venue(package, struct)
            if venue is not None:
                found.append(venue)
        return VenueBook.name(found)

    def _lookup_decimals(self, asset: str, writes: WriteSet) -> int | None:
        if asset == APT:
            return APT_DECIMALS
        known = writes.decimals.get(asset, writes.fa_decimals.get(asset))
        if known is not None or self._decimals is None:
            return known
        try:
            found = self._decimals(asset)
        except Exception as exc:  # noqa: BLE001  (the caller's lookup failing leaves decimals unknown)
            self.rejected["decimals_lookup_failed"] += 1
            log.warning("aptos.decimals_lookup_failed", asset=asset, error=type(exc).__name__)
            return None
        if found is None or (type(found) is int and 0 <= found <= 255):
            return found
        self.rejected["decimals_lookup_invalid"] += 1
        log.warning("aptos.decimals_lookup_invalid", asset=asset, value=repr(found)[:40])
        return None


def _net(legs: list[Leg]) -> tuple[dict[tuple[str, str], int], list[str]]:
    """Per (owner, asset) net deltas (zeros removed, first-appearance order) and assets in order."""
    nets: dict[tuple[str, str], int] = {}
    for leg in legs:
        key = (leg.owner, leg.asset)
        nets[key] = nets.get(key, 0) + leg.delta
    nonzero = {key: amount for key, amount in nets.items() if amount != 0}
    order = list(dict.fromkeys(asset for _, asset in nonzero))
    return nonzero, order
