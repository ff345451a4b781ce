"""The `aptos` executor's wire half: the transaction hash, node calls aptos-sdk 0.11 lacks or mistypes, and
the durable log of what was signed (appended, fsynced, before the transaction is submitted).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
from aptos_sdk.account import Account
from aptos_sdk.async_client import ApiError, RestClient
from aptos_sdk.transactions import RawTransaction, SignedTransaction

from .durable import DurableLog

_HASH_PREFIX = hashlib.sha3_256(b"APTOS::Transaction").digest()


class SentEntry(msgspec.Struct, frozen=True):
    order_id: str
    tx: str
    sequence_number: int
    expiration: int


class SentLog:
    """order id -> the transactions signed for it, as logged before each submit (survives restarts)."""

    def __init__(self, path: Path, *, log: Any) -> None:
        self.path = path
        self._file = DurableLog(path, SentEntry, log=log, skipped="executor.sent_log_line_skipped")
        self._entries: dict[str, list[SentEntry]] = {}

    def load(self) -> None:
        for entry in self._file.read():  # a torn last line was never submitted
            self._entries.setdefault(entry.order_id, []).append(entry)

    def entries(self, order_id: str) -> list[SentEntry]:
        return self._entries.get(order_id, [])

    async def record(self, entry: SentEntry) -> None:
        await self._file.append(entry)
        self._entries.setdefault(entry.order_id, []).append(entry)


def transaction_hash(signed: SignedTransaction) -> str:
    """sha3_256(sha3_256("APTOS::Transaction") || 0x00 || BCS(signed)): the hash the chain will give it."""
    return "0x" + hashlib.sha3_256(_HASH_PREFIX + b"\x00" + signed.bytes()).hexdigest()


def api_message(exc: ApiError) -> str:
    try:
        body = msgspec.json.decode(str(exc).split(" - ")[0])
    except msgspec.DecodeError:
        return str(exc)[:300]
    return str(body.get("message", body))[:300] if isinstance(body, dict) else str(body)[:300]


async def chain_id_of(cl: RestClient) -> int:
    return int(await cl.chain_id())  # type: ignore[no-untyped-call]


async def simulate(cl: RestClient, raw: RawTransaction, account: Account) -> dict[str, Any]:
    answer: Any = await cl.simulate_transaction(raw, account)  # a list of one transaction, whatever 0.11 says
    if not isinstance(answer, list) or not answer or not isinstance(answer[0], dict):
        raise ValueError(f"the node's simulation answer is not a list of one transaction: {str(answer)[:200]}")
    result: dict[str, Any] = answer[0]
    return result


async def gas_estimate(cl: RestClient) -> int:
    response = await cl.client.get(f"{cl.base_url}/estimate_gas_price")
    if response.status_code >= 400:
        raise ApiError(response.text, response.status_code)
    return int(response.json()["gas_estimate"])
