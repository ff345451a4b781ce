"""BCS and REST-JSON forms of transactions for the local Aptos node.

The transaction hash, BCS decoding of a submitted `SignedTransaction`, the JSON the API prints for
pending and committed transactions, and the JSON submission form (`application/json`) turned back
into the BCS transaction it stands for (only for entry functions whose argument types the node
knows: the REST API needs the on-chain ABI for that, which this node does not have).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from aptos_sdk.account_address import AccountAddress
from aptos_sdk.authenticator import Authenticator, Ed25519Authenticator
from aptos_sdk.bcs import Deserializer, Serializer
from aptos_sdk.ed25519 import PublicKey, Signature
from aptos_sdk.transactions import (
    EntryFunction,
    ModuleId,
    RawTransaction,
    SignedTransaction,
    TransactionArgument,
    TransactionPayload,
)
from aptos_sdk.type_tag import StructTag, TypeTag

from quantbot.localnet.aptos_state import addr_short, type_short

HASH_PREFIX = hashlib.sha3_256(b"APTOS::Transaction").digest()
ADDRESS_U64 = (
    "0x1::aptos_account::transfer",
    "0x1::aptos_account::transfer_coins",
    "0x1::coin::transfer",
    "0x1::aptos_coin::mint",
)


def transaction_hash(signed_bcs: bytes) -> str:
    """sha3_256(sha3_256("APTOS::Transaction") || 0x00 || bcs(SignedTransaction)), as the chain computes it."""
    return "0x" + hashlib.sha3_256(HASH_PREFIX + b"\x00" + signed_bcs).hexdigest()


def auth_key(key: PublicKey) -> str:
    """The single-Ed25519 authentication key: sha3_256(public key || 0x00)."""
    return "0x" + hashlib.sha3_256(key.key.encode() + b"\x00").hexdigest()


def fake_hash(kind: str, seed: str) -> str:
    """A stable 32-byte hash for the roots the node does not really compute (state, events, accumulator)."""
    return "0x" + hashlib.sha3_256(f"{kind}:{seed}".encode()).hexdigest()


class _Address:
    """BCS reader for a 32-byte address (what `Deserializer.struct` needs)."""

    @staticmethod
    def deserialize(de: Deserializer) -> str:
        return "0x" + de.fixed_bytes(32).hex()


def read_address(de: Deserializer) -> str:
    return str(de.struct(_Address))


def decode_signed(body: bytes) -> SignedTransaction:
    """Deserialize a BCS SignedTransaction; ValueError (with the reason) if it is not one."""
    try:
        de = Deserializer(body)
        signed = SignedTransaction.deserialize(de)
    except Exception as exc:
        raise ValueError(f"Failed to deserialize input into SignedTransaction: {exc}") from exc
    if de.remaining():
        raise ValueError("Failed to deserialize input into SignedTransaction: trailing bytes")
    return signed


def signed_from_json(body: Mapping[str, Any], *, chain_id: int, router_function: str | None) -> SignedTransaction:
    """The BCS transaction a JSON submission stands for; ValueError naming what is wrong or unsupported."""
    try:
        payload = body["payload"]
        if payload.get("type") != "entry_function_payload":
            raise ValueError(f"payload type {payload.get('type')!r}: this node takes entry_function_payload")
        function = type_short(payload["function"])
        module, name = function.rsplit("::", 1)
        address, module_name = module.split("::")
        raw_args = payload["arguments"]
        if function in ADDRESS_U64:
            args = [
                TransactionArgument(AccountAddress.from_str_relaxed(raw_args[0]), Serializer.struct),
                TransactionArgument(int(raw_args[1]), Serializer.u64),
            ]
        elif function == router_function:
            args = [TransactionArgument(int(a), Serializer.u64) for a in raw_args]
        else:
            raise ValueError(f"JSON submission of {function} is not supported here (no ABI): submit BCS")
        entry = EntryFunction(
            ModuleId(AccountAddress.from_str_relaxed(address), module_name),
            name,
            [TypeTag(StructTag.from_str(t)) for t in payload.get("type_arguments", [])],
            [a.encode() for a in args],
        )
        raw = RawTransaction(
            AccountAddress.from_str_relaxed(body["sender"]),
            int(body["sequence_number"]),
            TransactionPayload(entry),
            int(body["max_gas_amount"]),
            int(body["gas_unit_price"]),
            int(body["expiration_timestamp_secs"]),
            chain_id,
        )
        sig = body["signature"]
        if sig.get("type") != "ed25519_signature":
            raise ValueError(f"signature type {sig.get('type')!r}: this node takes ed25519_signature")
        auth = Ed25519Authenticator(
            PublicKey.from_str(sig["public_key"]), Signature(bytes.fromhex(sig["signature"].removeprefix("0x")))
        )
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"invalid JSON transaction: {type(exc).__name__}: {exc}") from exc
    return SignedTransaction(raw, Authenticator(auth))


def pending_json(signed: SignedTransaction, tx_hash: str, router_function: str | None) -> dict[str, Any]:
    """The request half of a transaction's JSON (what POST /transactions answers, pending or committed)."""
    raw = signed.transaction
    auth = signed.authenticator.authenticator
    signature: dict[str, Any] = {"type": "unknown"}
    if isinstance(auth, Ed25519Authenticator):
        signature = {
            "public_key": "0x" + auth.public_key.key.encode().hex(),
            "signature": "0x" + auth.signature.data().hex(),
            "type": "ed25519_signature",
        }
    return {
        "hash": tx_hash,
        "sender": addr_short(str(raw.sender)),
        "sequence_number": str(raw.sequence_number),
        "max_gas_amount": str(raw.max_gas_amount),
        "gas_unit_price": str(raw.gas_unit_price),
        "expiration_timestamp_secs": str(raw.expiration_timestamps_secs),
        "payload": payload_json(raw.payload.value, router_function),
        "signature": signature,
        "replay_protection_nonce": None,
    }


def payload_json(payload: Any, router_function: str | None) -> dict[str, Any]:
    if not isinstance(payload, EntryFunction):
        return {"type": "script_payload", "code": {"bytecode": "0x"}, "type_arguments": [], "arguments": []}
    fn = f"{addr_short(payload.module.address)}::{payload.module.name}::{payload.function}"
    arguments: list[Any] = ["0x" + a.hex() for a in payload.args]
    try:
        if fn in ADDRESS_U64 and len(payload.args) == 2:
            arguments = [
                addr_short(read_address(Deserializer(payload.args[0]))),
                str(Deserializer(payload.args[1]).u64()),
            ]
        elif fn == router_function and len(payload.args) == 2:
            arguments = [str(Deserializer(a).u64()) for a in payload.args]
    except Exception:  # noqa: BLE001, S110  (undecodable args are shown as raw hex, like an unknown ABI)
        pass
    return {
        "function": fn,
        "type_arguments": [type_short(str(t)) for t in payload.ty_args],
        "arguments": arguments,
        "type": "entry_function_payload",
    }


def genesis_json() -> dict[str, Any]:
    return {
        "version": "0",
        "hash": fake_hash("genesis", ""),
        "state_change_hash": fake_hash("genesis-state", ""),
        "event_root_hash": fake_hash("genesis-events", ""),
        "state_checkpoint_hash": None,
        "gas_used": "0",
        "success": True,
        "vm_status": "Executed successfully",
        "accumulator_root_hash": fake_hash("genesis-acc", ""),
        "changes": [],
        "payload": {
            "write_set": {"type": "direct_write_set", "changes": [], "events": []},
            "type": "write_set_payload",
        },
        "events": [],
        "type": "genesis_transaction",
    }


def block_metadata_json(height: int, version: int, timestamp_us: int) -> dict[str, Any]:
    block_id = fake_hash("block", str(height))
    return {
        "version": str(version),
        "hash": fake_hash("block-tx", block_id),
        "state_change_hash": fake_hash("block-state", block_id),
        "event_root_hash": fake_hash("block-events", block_id),
        "state_checkpoint_hash": None,
        "gas_used": "0",
        "success": True,
        "vm_status": "Executed successfully",
        "accumulator_root_hash": fake_hash("block-acc", block_id),
        "changes": [],
        "id": block_id,
        "epoch": "1",
        "round": str(height),
        "events": [
            {
                "guid": {"creation_number": "3", "account_address": "0x1"},
                "sequence_number": str(height - 1),
                "type": "0x1::block::NewBlockEvent",
                "data": {
                    "epoch": "1",
                    "failed_proposer_indices": [],
                    "hash": block_id,
                    "height": str(height),
                    "previous_block_votes_bitvec": "0x",
                    "proposer": "0x0",
                    "round": str(height),
                    "time_microseconds": str(timestamp_us),
                },
            }
        ],
        "previous_block_votes_bitvec": [],
        "proposer": "0x0",
        "failed_proposer_indices": [],
        "timestamp": str(timestamp_us),
        "type": "block_metadata_transaction",
    }
