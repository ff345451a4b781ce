"""What a validator reports about an executed transaction, built from LiteSVM's outcome:
the json-encoded getTransaction result, its jsonParsed form, token balances, error text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import based58
from solders.account import Account
from solders.message import MessageV0
from solders.token.state import TokenAccount
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # noqa: S105  (a program id, not a password)
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"  # noqa: S105
TOKEN_PROGRAMS = frozenset({TOKEN_PROGRAM, TOKEN_2022_PROGRAM})
TOKEN_ACCOUNT_LEN = 165
SYSTEM_PROGRAM = "11111111111111111111111111111111"


def ui_amount(amount: int, decimals: int) -> dict[str, Any]:
    """The `uiTokenAmount` shape (uiAmount null for zero, as validators report it)."""
    text = str(amount) if decimals == 0 else f"{amount / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".")
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": (amount / 10**decimals) if amount else None,
        "uiAmountString": text,
    }


def err_json(failed: FailedTransactionMetadata) -> object:
    return json.loads(failed.to_json())["err"]


def describe_err(err: object) -> str:
    if isinstance(err, Mapping) and "InstructionError" in err:
        index, detail = err["InstructionError"]
        if isinstance(detail, Mapping) and "Custom" in detail:
            return f"Error processing Instruction {index}: custom program error: {int(detail['Custom']):#x}"
        return f"Error processing Instruction {index}: {detail}"
    return str(err)


def _token_balances(decimals: Callable[[str], int], accounts: Iterable[Account | None]) -> list[dict[str, Any]]:
    out = []
    for index, acc in enumerate(accounts):
        if acc is None or str(acc.owner) not in TOKEN_PROGRAMS or len(bytes(acc.data)) < TOKEN_ACCOUNT_LEN:
            continue
        token = TokenAccount.from_bytes(bytes(acc.data)[:TOKEN_ACCOUNT_LEN])
        mint = str(token.mint)
        out.append(
            {
                "accountIndex": index,
                "mint": mint,
                "owner": str(token.owner),
                "programId": str(acc.owner),
                "uiTokenAmount": ui_amount(token.amount, decimals(mint)),
            }
        )
    return out


def executed_result(
    tx: VersionedTransaction,
    keys: list[str],
    pre: list[Account | None],
    post: list[Account | None],
    meta: TransactionMetadata,
    err: object,
    *,
    slot: int,
    block_time: int,
    decimals: Callable[[str], int],
) -> dict[str, Any]:
    """The getTransaction result (json encoding) of a transaction LiteSVM executed."""
    message = tx.message
    header = message.header
    inner = [
        {
            "index": i,
            "instructions": [
                {
                    "programIdIndex": ix.instruction().program_id_index,
                    "accounts": list(bytes(ix.instruction().accounts)),
                    "data": based58.b58encode(bytes(ix.instruction().data)).decode(),
                    "stackHeight": ix.stack_height(),
                }
                for ix in group
            ],
        }
        for i, group in enumerate(meta.inner_instructions())
        if group
    ]
    msg: dict[str, Any] = {
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "accountKeys": keys,
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [
            {
                "programIdIndex": ix.program_id_index,
                "accounts": list(bytes(ix.accounts)),
                "data": based58.b58encode(bytes(ix.data)).decode(),
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
    }
    versioned = isinstance(message, MessageV0)
    if versioned:
        msg["addressTableLookups"] = []
    return {
        "slot": slot,
        "blockTime": block_time,
        "version": 0 if versioned else "legacy",
        "transaction": {"signatures": [str(s) for s in tx.signatures], "message": msg},
        "meta": {
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "fee": meta.fee(),
            "preBalances": [a.lamports if a else 0 for a in pre],
            "postBalances": [a.lamports if a else 0 for a in post],
            "innerInstructions": inner,
            "logMessages": list(meta.logs()),
            "preTokenBalances": _token_balances(decimals, pre),
            "postTokenBalances": _token_balances(decimals, post),
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": meta.compute_units_consumed(),
        },
    }


def _u64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little")


def _parsed_ix(program_id: str, accounts: list[str], data: bytes) -> dict[str, Any] | None:
    """The validator's jsonParsed form of the instructions quantbot's tests send (others stay raw)."""
    if program_id == SYSTEM_PROGRAM and len(data) == 12 and data[:4] == b"\x02\x00\x00\x00" and len(accounts) == 2:
        info: dict[str, Any] = {"source": accounts[0], "destination": accounts[1], "lamports": _u64(data, 4)}
        return {"program": "system", "parsed": {"type": "transfer", "info": info}}
    if program_id not in TOKEN_PROGRAMS or not data:
        return None
    program = "spl-token" if program_id == TOKEN_PROGRAM else "spl-token-2022"
    if data[0] == 3 and len(data) == 9 and len(accounts) == 3:
        info = {
            "source": accounts[0],
            "destination": accounts[1],
            "authority": accounts[2],
            "amount": str(_u64(data, 1)),
        }
        return {"program": program, "parsed": {"type": "transfer", "info": info}}
    if data[0] == 12 and len(data) == 10 and len(accounts) == 4:
        info = {
            "source": accounts[0],
            "mint": accounts[1],
            "destination": accounts[2],
            "authority": accounts[3],
            "tokenAmount": ui_amount(_u64(data, 1), data[9]),
        }
        return {"program": program, "parsed": {"type": "transferChecked", "info": info}}
    return None


def as_json_parsed(result: dict[str, Any], writable: tuple[str, ...]) -> dict[str, Any]:
    """jsonParsed form: keyed account list; System/SPL transfers parsed, other instructions raw."""
    msg = result["transaction"]["message"]
    keys: list[str] = msg["accountKeys"]
    n_signed = msg["header"]["numRequiredSignatures"]

    def raw_ix(ix: Mapping[str, Any]) -> dict[str, Any]:
        program_id, accounts = keys[ix["programIdIndex"]], [keys[i] for i in ix["accounts"]]
        parsed = _parsed_ix(program_id, accounts, based58.b58decode(ix["data"].encode()))
        if parsed is not None:
            return {**parsed, "programId": program_id, "stackHeight": ix["stackHeight"]}
        return {"programId": program_id, "accounts": accounts, "data": ix["data"], "stackHeight": ix["stackHeight"]}

    parsed_msg = {
        "accountKeys": [
            {"pubkey": k, "signer": i < n_signed, "source": "transaction", "writable": k in writable}
            for i, k in enumerate(keys)
        ],
        "recentBlockhash": msg["recentBlockhash"],
        "instructions": [raw_ix(ix) for ix in msg["instructions"]],
    }
    if "addressTableLookups" in msg:
        parsed_msg["addressTableLookups"] = []
    meta = dict(result["meta"])
    meta.pop("loadedAddresses", None)
    meta["innerInstructions"] = [
        {"index": g["index"], "instructions": [raw_ix(ix) for ix in g["instructions"]]}
        for g in meta["innerInstructions"]
    ]
    return {
        **{k: v for k, v in result.items() if k not in ("raw", "transaction", "meta")},
        "transaction": {"signatures": result["transaction"]["signatures"], "message": parsed_msg},
        "meta": meta,
    }
