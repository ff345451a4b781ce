"""The local Solana node's state: recorded transactions, accounts in LiteSVM, and executed sends.

Recorded `getTransaction` results are served as recorded. Sent transactions run in LiteSVM
(`solders.litesvm`: real signature checks, real System and SPL Token programs) and land with the
meta a validator would report: balances and token balances read before and after, logs, fee, err.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import based58
from solders.account import Account
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.state import Mint, TokenAccount
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from quantbot.localnet.solana_meta import (
    TOKEN_ACCOUNT_LEN,
    TOKEN_PROGRAMS,
    as_json_parsed,
    describe_err,
    err_json,
    executed_result,
    ui_amount,
)

MAX_SIGNATURES_LIMIT = 1000
RENT_EPOCH_EXEMPT = 18446744073709551615

Commitment = Literal["processed", "confirmed", "finalized"]


class RpcError(Exception):
    """A JSON-RPC error as the node reports it: code, message and optional data."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


@dataclass
class Landed:
    """A transaction the node can serve: its getTransaction result and what it touched."""

    signature: str
    slot: int
    block_time: int | None
    err: object
    result: dict[str, Any]
    encoding: Literal["json", "jsonParsed"]
    addresses: tuple[str, ...]
    logs: list[str]
    writable: tuple[str, ...] = ()
    seq: int = 0
    parsed: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def version(self) -> object:
        return self.result.get("version", "legacy")


def account_keys(result: Mapping[str, Any]) -> tuple[str, ...]:
    """Every account a recorded transaction touches: static keys, then lookup-table loads."""
    message = result["transaction"]["message"]
    keys = [k["pubkey"] if isinstance(k, Mapping) else k for k in message["accountKeys"]]
    loaded = (result.get("meta") or {}).get("loadedAddresses") or {}
    keys += list(loaded.get("writable", ())) + list(loaded.get("readonly", ()))
    return tuple(keys)


def encode_account(account: Account, encoding: str) -> dict[str, Any]:
    """An account as `getAccountInfo` / `accountNotification` show it (jsonParsed falls back to base64)."""
    data = bytes(account.data)
    if encoding == "base58":
        shown: list[str] = [based58.b58encode(data).decode(), "base58"]
    else:
        shown = [base64.b64encode(data).decode(), "base64"]
    return {
        "data": shown,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": RENT_EPOCH_EXEMPT,
        "space": len(data),
    }


class SolanaLedger:
    """Transactions by signature, signatures by address, accounts (in LiteSVM), slots."""

    def __init__(self, *, svm: LiteSVM | None = None, start_slot: int | None = None, now: int = 0) -> None:
        self.svm = svm or LiteSVM()
        self.slot = start_slot if start_slot is not None else int(self.svm.get_clock().slot)
        self.genesis_slot = self.slot
        self.now = now
        """Unix time stamped on executed transactions (blockTime); the node keeps it current."""
        self._txs: dict[str, Landed] = {}
        self._by_address: dict[str, list[Landed]] = {}
        self._seq = itertools.count(1)

    # --- slots -------------------------------------------------------------------------------

    @property
    def block_height(self) -> int:
        return self.slot - self.genesis_slot + 1

    def next_slot(self) -> int:
        self.slot += 1
        return self.slot

    # --- transactions ------------------------------------------------------------------------

    def add_transaction(self, response: Mapping[str, Any] | str | bytes) -> Landed:
        """Record a getTransaction response (or its `result`); return what was recorded."""
        data: Any = json.loads(response) if isinstance(response, str | bytes) else response
        result = dict(data["result"] if "result" in data and "transaction" not in data else data)
        tx = result["transaction"]
        encoding: Literal["json", "jsonParsed"] = (
            "jsonParsed" if any(isinstance(k, Mapping) for k in tx["message"]["accountKeys"]) else "json"
        )
        meta = result.get("meta") or {}
        slot = int(result.get("slot") or self.slot)
        result["slot"] = slot
        result.setdefault("blockTime", None)
        self.slot = max(self.slot, slot)
        landed = Landed(
            signature=tx["signatures"][0],
            slot=slot,
            block_time=result["blockTime"],
            err=meta.get("err"),
            result=result,
            encoding=encoding,
            addresses=account_keys(result),
            logs=list(meta.get("logMessages") or ()),
        )
        self._record(landed)
        return landed

    def _record(self, landed: Landed) -> None:
        landed.seq = next(self._seq)
        self._txs[landed.signature] = landed
        for address in dict.fromkeys(landed.addresses):
            self._by_address.setdefault(address, []).append(landed)

    def transaction(self, signature: str) -> Landed | None:
        return self._txs.get(signature)

    def render(self, landed: Landed, *, encoding: str, max_version: int | None) -> dict[str, Any]:
        """The getTransaction result for the requested encoding, or the node's version error."""
        version = landed.version
        if version != "legacy" and (max_version is None or int(str(version)) > max_version):
            raise RpcError(
                -32015,
                f"Transaction version ({version}) is not supported by the requesting client. "
                "Please try the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )
        if encoding == "jsonParsed" and landed.parsed is not None:
            return landed.parsed
        if encoding == "base64" and "raw" in landed.result:
            return {**landed.result, "transaction": [landed.result["raw"], "base64"]}
        return {k: v for k, v in landed.result.items() if k != "raw"}

    def signatures_for(
        self, address: str, *, before: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """getSignaturesForAddress: newest first, strictly older than `before`, stopping at `until`."""
        limit = MAX_SIGNATURES_LIMIT if limit is None else limit
        if not 1 <= limit <= MAX_SIGNATURES_LIMIT:
            raise RpcError(-32602, f"Invalid limit; max {MAX_SIGNATURES_LIMIT}")
        history = sorted(self._by_address.get(address, ()), key=lambda t: (t.slot, t.seq), reverse=True)
        if before is not None:
            position = next((i for i, t in enumerate(history) if t.signature == before), None)
            history = history[position + 1 :] if position is not None else []
        out: list[dict[str, Any]] = []
        for t in history:
            if t.signature == until or len(out) >= limit:
                break
            out.append(
                {
                    "signature": t.signature,
                    "slot": t.slot,
                    "err": t.err,
                    "memo": None,
                    "blockTime": t.block_time,
                    "confirmationStatus": "finalized",
                }
            )
        return out

    def status(self, signature: str) -> dict[str, Any] | None:
        t = self._txs.get(signature)
        if t is None:
            return None
        return {
            "slot": t.slot,
            "confirmations": None,
            "err": t.err,
            "status": {"Ok": None} if t.err is None else {"Err": t.err},
            "confirmationStatus": "finalized",
        }

    # --- accounts ----------------------------------------------------------------------------

    def account(self, pubkey: str) -> Account | None:
        return self.svm.get_account(Pubkey.from_string(pubkey))

    def set_account(
        self,
        pubkey: str,
        *,
        data: bytes = b"",
        owner: str = "11111111111111111111111111111111",
        lamports: int | None = None,
    ) -> Account:
        """Put an account in place (rent-exempt lamports unless given)."""
        if lamports is None:
            lamports = self.svm.minimum_balance_for_rent_exemption(len(data))
        account = Account(lamports=lamports, data=data, owner=Pubkey.from_string(owner), executable=False)
        self.svm.set_account(Pubkey.from_string(pubkey), account)
        return account

    def token_largest(self, mint: str) -> list[dict[str, Any]]:
        """getTokenLargestAccounts: the 20 biggest token accounts of `mint`."""
        mint_account = self.account(mint)
        if mint_account is None or str(mint_account.owner) not in TOKEN_PROGRAMS:
            raise RpcError(-32602, "Invalid param: not a Token mint")
        decimals = Mint.from_bytes(bytes(mint_account.data)[:82]).decimals
        holders = []
        for program in TOKEN_PROGRAMS:
            for address, acc in self.svm.get_program_accounts(Pubkey.from_string(program)):
                data = bytes(acc.data)
                if len(data) >= TOKEN_ACCOUNT_LEN and data[:32] == bytes(Pubkey.from_string(mint)):
                    holders.append((TokenAccount.from_bytes(data[:TOKEN_ACCOUNT_LEN]).amount, str(address)))
        holders.sort(key=lambda h: (-h[0], h[1]))
        return [{"address": a, **ui_amount(n, decimals)} for n, a in holders[:20]]

    def token_accounts(
        self, owner: str, *, mint: str | None = None, program: str | None = None
    ) -> list[tuple[str, Account]]:
        """getTokenAccountsByOwner: token accounts of `owner`, of one mint or one token program."""
        programs = [program] if program is not None else list(TOKEN_PROGRAMS)
        out = []
        for prog in programs:
            if prog not in TOKEN_PROGRAMS:
                raise RpcError(-32602, "Invalid param: unrecognized Token program id")
            for address, acc in self.svm.get_program_accounts(Pubkey.from_string(prog)):
                data = bytes(acc.data)
                if len(data) < TOKEN_ACCOUNT_LEN or data[32:64] != bytes(Pubkey.from_string(owner)):
                    continue
                if mint is None or data[:32] == bytes(Pubkey.from_string(mint)):
                    out.append((str(address), acc))
        return sorted(out, key=lambda t: t[0])

    # --- sending -----------------------------------------------------------------------------

    def send(self, raw: bytes, *, skip_preflight: bool) -> Landed:
        """Execute a signed transaction in LiteSVM; it lands (even if it fails) unless preflight refuses it."""
        try:
            tx = VersionedTransaction.from_bytes(raw)
        except Exception as exc:  # noqa: BLE001  (the node answers any undecodable payload the same way)
            raise RpcError(-32602, f"invalid transaction: failed to deserialize VersionedTransaction: {exc}") from None
        message = tx.message
        keys = [str(k) for k in message.account_keys]
        if not skip_preflight:
            sim = self.svm.simulate_transaction(tx)
            if isinstance(sim, FailedTransactionMetadata):
                refused = err_json(sim)
                if refused == "SignatureFailure":
                    raise RpcError(-32003, "Transaction signature verification failure")
                raise RpcError(
                    -32002,
                    f"Transaction simulation failed: {describe_err(refused)}",
                    {
                        "accounts": None,
                        "err": refused,
                        "innerInstructions": None,
                        "logs": sim.meta().logs(),
                        "replacementBlockhash": None,
                        "returnData": None,
                        "unitsConsumed": sim.meta().compute_units_consumed(),
                    },
                )
        pre = [self.account(k) for k in keys]
        outcome = self.svm.send_transaction(tx)
        post = [self.account(k) for k in keys]
        if isinstance(outcome, FailedTransactionMetadata):
            err: object = err_json(outcome)
            if err == "SignatureFailure":
                raise RpcError(-32003, "Transaction signature verification failure")
            if err in ("AlreadyProcessed", "BlockhashNotFound", "AccountNotFound"):
                raise RpcError(-32002, f"Transaction simulation failed: {describe_err(err)}", {"err": err, "logs": []})
            meta = outcome.meta()
        else:
            err, meta = None, outcome
        slot = self.next_slot()
        result = executed_result(tx, keys, pre, post, meta, err, slot=slot, block_time=self.now, decimals=self.decimals)
        result["raw"] = base64.b64encode(raw).decode()
        header = message.header
        n_signed, n_keys = header.num_required_signatures, len(keys)
        writable = tuple(
            k
            for i, k in enumerate(keys)
            if (i < n_signed - header.num_readonly_signed_accounts)
            or (n_signed <= i < n_keys - header.num_readonly_unsigned_accounts)
        )
        landed = Landed(
            signature=str(tx.signatures[0]),
            slot=slot,
            block_time=self.now,
            err=err,
            result=result,
            encoding="json",
            addresses=tuple(keys),
            logs=list(meta.logs()),
            writable=writable,
        )
        landed.parsed = as_json_parsed(result, writable)
        self._record(landed)
        return landed

    def decimals(self, mint: str) -> int:
        acc = self.account(mint)
        return Mint.from_bytes(bytes(acc.data)[:82]).decimals if acc is not None else 0


def signature_of(text: str) -> str:
    """Validate a base58 signature string (the node's -32602 on garbage)."""
    try:
        return str(Signature.from_string(text))
    except Exception:  # noqa: BLE001
        raise RpcError(-32602, f"Invalid param: {text!r} is not a valid signature") from None


def pubkey_of(text: object) -> str:
    try:
        return str(Pubkey.from_string(str(text)))
    except Exception:  # noqa: BLE001
        raise RpcError(-32602, f"Invalid param: Invalid pubkey {text!r}") from None


__all__ = ["Landed", "RpcError", "SolanaLedger", "encode_account", "pubkey_of", "signature_of"]
