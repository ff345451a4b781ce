"""Transaction Stream (gRPC) protobuf-JSON -> the REST API v1 transaction shape.

The field notes (aptos.md §6) recommend one transaction model with two adapters: the Transaction
Stream prints camelCase fields, base64 hashes, `typeStr` for types, event and resource `data` as JSON
strings and structured type arguments. This turns one such `aptos.transaction.v1.Transaction` into
the dict the REST API would have returned, so the parser and the ledger filter see one shape.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

_TX_TYPES = {
    "TRANSACTION_TYPE_USER": "user_transaction",
    "TRANSACTION_TYPE_GENESIS": "genesis_transaction",
    "TRANSACTION_TYPE_BLOCK_METADATA": "block_metadata_transaction",
    "TRANSACTION_TYPE_STATE_CHECKPOINT": "state_checkpoint_transaction",
    "TRANSACTION_TYPE_VALIDATOR": "validator_transaction",
    "TRANSACTION_TYPE_BLOCK_EPILOGUE": "block_epilogue_transaction",
}
_PRIMITIVES = {
    "MOVE_TYPES_BOOL": "bool",
    "MOVE_TYPES_U8": "u8",
    "MOVE_TYPES_U16": "u16",
    "MOVE_TYPES_U32": "u32",
    "MOVE_TYPES_U64": "u64",
    "MOVE_TYPES_U128": "u128",
    "MOVE_TYPES_U256": "u256",
    "MOVE_TYPES_ADDRESS": "address",
    "MOVE_TYPES_SIGNER": "signer",
}
_MAX_DEPTH = 8


class ProtoJsonError(ValueError):
    """The object looked like Transaction Stream JSON but a field is missing or malformed."""


def is_protojson(data: Mapping[str, Any]) -> bool:
    kind = data.get("type")
    return ("info" in data and "user" in data) or (isinstance(kind, str) and kind.startswith("TRANSACTION_TYPE_"))


def rest_from_protojson(data: Mapping[str, Any]) -> dict[str, Any]:
    """The REST-shaped dict for one protobuf-JSON transaction; ProtoJsonError if malformed."""
    try:
        return _convert(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, binascii.Error, RecursionError) as exc:
        raise ProtoJsonError(f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _convert(data: Mapping[str, Any]) -> dict[str, Any]:
    kind = _TX_TYPES.get(data["type"], "unknown_transaction")
    if kind != "user_transaction":
        return {"type": kind, "version": str(data.get("version", ""))}
    info, user = data["info"], data["user"]
    request = user["request"]
    timestamp = data["timestamp"]
    micros = int(timestamp["seconds"]) * 1_000_000 + int(timestamp.get("nanos", 0)) // 1_000
    signature = request.get("signature") or {}
    payload = request.get("payload") or {}
    entry = payload.get("entryFunctionPayload") or {}
    return {
        "type": kind,
        "version": _str(data["version"]),
        "hash": "0x" + base64.b64decode(info["hash"], validate=True).hex(),
        "success": info["success"],
        "vm_status": info.get("vmStatus", ""),
        "gas_used": _str(info["gasUsed"]),
        "gas_unit_price": _str(request["gasUnitPrice"]),
        "sender": request["sender"],
        "sequence_number": _str(request.get("sequenceNumber", "0")),
        "timestamp": str(micros),
        "events": [_event(e) for e in user.get("events", [])],
        "changes": [_change(c) for c in info.get("changes", [])],
        "payload": {
            "type": "entry_function_payload" if entry else str(payload.get("type", "")).lower(),
            "function": entry.get("entryFunctionIdStr"),
            "type_arguments": [_move_type(t, 0) for t in entry.get("typeArguments", [])],
        },
        "signature": _signature(signature),
    }


def _str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer string, got {type(value).__name__}")
    return str(value)


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    key = event.get("key") or {}
    return {
        "guid": {
            "creation_number": _str(key.get("creationNumber", "0")),
            "account_address": key.get("accountAddress", "0x0"),
        },
        "sequence_number": _str(event.get("sequenceNumber", "0")),
        "type": event["typeStr"],
        "data": json.loads(event["data"]),
    }


def _change(change: Mapping[str, Any]) -> dict[str, Any]:
    kind = change["type"]
    if kind == "TYPE_WRITE_RESOURCE":
        resource = change["writeResource"]
        return {
            "type": "write_resource",
            "address": resource["address"],
            "data": {"type": resource["typeStr"], "data": json.loads(resource["data"])},
        }
    return {"type": str(kind).removeprefix("TYPE_").lower()}


def _signature(signature: Mapping[str, Any]) -> dict[str, Any]:
    kind = signature.get("type")
    if kind == "TYPE_FEE_PAYER":
        inner = signature["feePayer"]
        return {
            "type": "fee_payer_signature",
            "fee_payer_address": inner["feePayerAddress"],
            "secondary_signer_addresses": list(inner.get("secondarySignerAddresses", [])),
        }
    if kind == "TYPE_MULTI_AGENT":
        inner = signature["multiAgent"]
        return {
            "type": "multi_agent_signature",
            "secondary_signer_addresses": list(inner.get("secondarySignerAddresses", [])),
        }
    return {"type": str(kind or "").removeprefix("TYPE_").lower() + "_signature"}


def _move_type(move_type: Mapping[str, Any], depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise ValueError("type argument nested too deep")
    kind = move_type["type"]
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "MOVE_TYPES_VECTOR":
        return f"vector<{_move_type(move_type['vector'], depth + 1)}>"
    if kind == "MOVE_TYPES_STRUCT":
        struct = move_type["struct"]
        name = f"{struct['address']}::{struct['module']}::{struct['name']}"
        generics = [_move_type(t, depth + 1) for t in struct.get("genericTypeParams", [])]
        return f"{name}<{', '.join(generics)}>" if generics else name
    raise ValueError(f"unsupported type argument kind {kind!r}")
