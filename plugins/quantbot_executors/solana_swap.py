"""Shared half of the live Solana executors: sign, record, send, confirm, read the fill, reconcile.

A subclass only builds the unsigned transaction for an order (`build`). This half signs it with the
operator's keypair (from the [wallet] key: a solana-keygen JSON array or base58; never logged, never in
an event or error), appends its signature to a durable per-executor log *before* sending (so a restart
can always tell "never sent" from "maybe sent"), sends it, and follows its signature status until it
is confirmed or its blockhash has expired (block height past lastValidBlockHeight with no status: it
can never land). Only then is it re-built (a fresh quote) and sent again. The fill is read from the
confirmed transaction's balance deltas for the wallet, never from the quote.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from quantbot.api import (
    NATIVE_TOKEN,
    ApprovedOrder,
    Backoff,
    ExecutionReport,
    Executor,
    Fill,
    Outcome,
    PluginConfig,
    RejectReason,
    solana_wallet_deltas,
)

from .durable import DurableLog
from .http import Http, HttpBusy, HttpFailed, HttpRefused, RpcRefused, SolanaRpc

SOL = NATIVE_TOKEN["solana"]
BLOCKHASH_WINDOW = 150
"""Blocks a blockhash stays valid: a transaction on one fetched before height h cannot land after h + 150.
h must be read at "processed", the newest: a venue may hand us a blockhash newer than what the configured
commitment (confirmed, finalized) shows yet, and a bound below its true last valid height would declare a
transaction that can still land expired, and the next executor would trade again."""
TOKEN_PROGRAMS = ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")

Seconds = Annotated[float, msgspec.Meta(gt=0)]


class SolanaSwapConfig(PluginConfig, frozen=True, kw_only=True):
    rpc_url: str = "https://api.mainnet-beta.solana.com"
    """The RPC node transactions are sent to and followed on."""
    commitment: Literal["confirmed", "finalized"] = "confirmed"
    skip_preflight: bool = False
    max_retries: Annotated[int, msgspec.Meta(ge=0)] | None = None
    """sendTransaction maxRetries (None: the node's default rebroadcasting)."""
    request_timeout: Seconds = 10.0
    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    retry_base: Seconds = 0.2
    retry_cap: Seconds = 5.0
    confirm_poll: Seconds = 0.4
    confirm_timeout: Seconds = 90.0
    """Longer than this without a proof either way: SUBMITTED (reconciled later, never re-sent)."""
    requote_attempts: Annotated[int, msgspec.Meta(ge=0, le=5)] = 2
    """How many times an order is re-built and re-sent after its transaction provably cannot land."""


class SentEntry(msgspec.Struct, frozen=True):
    order_id: str
    signature: str
    last_valid_block_height: int


@dataclass(frozen=True)
class Built:
    """An unsigned transaction from the venue and the last block height its blockhash is valid for."""

    raw: bytes
    last_valid_block_height: int | None


class Requote(Exception):
    """Raised by `build`: this quote cannot work (its swap's simulation failed); quote again. Nothing was sent."""


def load_keypair(secret: str, source: str) -> Keypair:
    """A solana-keygen JSON array or a base58 keypair. The error never contains the key."""
    text = secret.strip()
    try:
        if text.startswith("["):
            return Keypair.from_bytes(bytes(json.loads(text)))
        return Keypair.from_base58_string(text)
    except Exception:  # noqa: BLE001  (whatever the library says may quote the key: say nothing of it)
        raise ValueError(
            f"wallet key from {source} is neither a solana-keygen JSON array nor a base58 keypair"
        ) from None


class SolanaSwapExecutor(Executor):
    """Base of `jupiter` and `pumpportal`: subclasses implement `build` and their `Config`."""

    config: SolanaSwapConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self.keypair: Keypair | None = None
        self._pubkey: Pubkey | None = None
        self.http: Http | None = None
        """The venue's API (with its headers: an API key)."""
        self.rpc_http: Http | None = None
        """The Solana node's: a session of its own, so the venue's headers never reach the RPC provider."""
        self.rpc: SolanaRpc | None = None
        self._sent: dict[str, list[SentEntry]] = {}
        self._file: DurableLog[SentEntry] | None = None
        self._lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------------

    def http_headers(self) -> dict[str, str]:
        return {}

    async def start(self) -> None:
        if self.wallet_key is not None:
            self.keypair = load_keypair(self.wallet_key.reveal(), self.wallet_key.source)
            self._pubkey = self.keypair.pubkey()  # derived once: solders derives it on every call
            self.log.info("executor.wallet", wallet=str(self._pubkey))
        c = self.config

        def session(headers: dict[str, str] | None = None) -> Http:
            backoff = Backoff(base=c.retry_base, cap=c.retry_cap)
            return Http(
                clock=self.env.clock, timeout=c.request_timeout, attempts=c.attempts, backoff=backoff, headers=headers
            )

        self.http = session(self.http_headers())
        await self.http.start()
        self.rpc_http = session()
        await self.rpc_http.start()
        self.rpc = SolanaRpc(self.rpc_http, c.rpc_url)
        self._file = DurableLog(
            self.env.data_dir / "sent.jsonl", SentEntry, log=self.log, skipped="executor.sent_log_line_skipped"
        )
        for entry in self._file.read():  # a torn last line was never sent
            self._sent.setdefault(entry.order_id, []).append(entry)

    async def stop(self) -> None:
        for http in (self.http, self.rpc_http):
            if http is not None:
                await http.stop()

    @property
    def wallet(self) -> Pubkey:
        if self.keypair is None:
            raise RuntimeError("no wallet key")
        if self._pubkey is None:
            self._pubkey = self.keypair.pubkey()
        return self._pubkey

    # --- the venue's half ----------------------------------------------------------------------

    async def build(self, order: ApprovedOrder) -> Built | ExecutionReport:
        """The unsigned transaction for `order`, or a FAILED report (nothing sent) saying why not."""
        raise NotImplementedError

    # --- execute -----------------------------------------------------------------------------

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        if self.keypair is None:
            return _failed(RejectReason.EXECUTOR_ERROR, "no [wallet] solana_keypair configured")
        refused: list[str] = []
        stale: list[str] = []
        for _ in range(self.config.requote_attempts + 1):
            try:
                built = await self.build(order)
            except Requote as exc:
                stale.append(str(exc))
                continue
            except (HttpFailed, HttpRefused) as exc:
                built = _failed(RejectReason.EXECUTOR_ERROR, f"venue: {exc}")
            if isinstance(built, ExecutionReport):
                return built  # nothing of this attempt was sent; any earlier one provably cannot land
            try:
                tx = self.sign(built.raw)
            except ValueError as exc:
                return _failed(RejectReason.EXECUTOR_ERROR, str(exc))
            report = await self.send_and_confirm(order, tx, built.last_valid_block_height, refused)
            if report is not None:
                return report
            # expired or refused by the node: provably cannot land, so quote and build again
        attempts = self.config.requote_attempts + 1
        if len(stale) == attempts:
            return _failed(RejectReason.SLIPPAGE, stale[-1])
        if len(refused) + len(stale) == attempts:
            return _failed(RejectReason.EXECUTOR_ERROR, f"the node refused every transaction: {refused[-1]}")
        return ExecutionReport(
            outcome=Outcome.EXPIRED,
            tx=self._last_signature(order),
            detail=f"no transaction landed in {attempts} attempts (blockhash expired)",
        )

    def sign(self, raw: bytes) -> VersionedTransaction:
        """Our signature in our slot; other signatures (a co-signing venue's) are kept as they came."""
        assert self.keypair is not None  # noqa: S101  (execute checked)
        try:
            unsigned = VersionedTransaction.from_bytes(raw)
        except Exception as exc:  # noqa: BLE001  (solders raises its own error types)
            raise ValueError(f"venue sent an undecodable transaction: {exc}") from None
        message = unsigned.message
        signers = list(message.account_keys[: message.header.num_required_signatures])
        me = self.wallet
        if me not in signers:
            raise ValueError(f"venue transaction does not need the wallet {me} to sign: refused")
        if signers[0] != me:
            raise ValueError("venue transaction has another fee payer: refused")
        signatures = list(unsigned.signatures)
        signatures[signers.index(me)] = self.keypair.sign_message(to_bytes_versioned(message))
        return VersionedTransaction.populate(message, signatures)

    async def send_and_confirm(
        self, order: ApprovedOrder, tx: VersionedTransaction, last_valid: int | None, refused: list[str]
    ) -> ExecutionReport | None:
        """FILLED / FAILED (landed with an error) / SUBMITTED (unknown); None when it provably cannot land."""
        assert self.rpc is not None  # noqa: S101
        c = self.config
        signature = str(tx.signatures[0])
        if last_valid is None:  # the venue did not say: bound it by the blockhash's lifetime
            try:
                last_valid = await self.rpc.block_height("processed") + BLOCKHASH_WINDOW
            except (HttpFailed, RpcRefused) as exc:
                refused.append(f"block height unknown, not sent: {exc}")
                return None
        await self._record(SentEntry(order.order_id, signature, last_valid))
        raw = base64.b64encode(bytes(tx)).decode()
        try:
            await self.rpc.send(
                raw, skip_preflight=c.skip_preflight, max_retries=c.max_retries, commitment=c.commitment
            )
            self.log.info("executor.sent", order_id=order.order_id, tx=signature, last_valid=last_valid)
        except RpcRefused as exc:
            # The node answered with an error: it did not take the transaction, so it was not forwarded.
            self.log.warning(
                "executor.send_refused", order_id=order.order_id, tx=signature, code=exc.code, error=exc.message
            )
            refused.append(str(exc))
            return None
        except HttpBusy as exc:  # every try answered "not now" (429): never taken
            self.log.warning("executor.send_busy", order_id=order.order_id, tx=signature, error=str(exc))
            refused.append(str(exc))
            return None
        except HttpFailed as exc:
            self.log.warning("executor.send_unknown", order_id=order.order_id, tx=signature, error=str(exc))
        return await self.confirm(order, signature, last_valid)

    async def confirm(self, order: ApprovedOrder, signature: str, last_valid: int) -> ExecutionReport | None:
        assert self.rpc is not None  # noqa: S101
        clock = self.env.clock
        deadline = clock.monotonic() + self.config.confirm_timeout
        while True:
            try:
                state = await self.state(order, signature, last_valid)
            except (HttpFailed, RpcRefused) as exc:
                self.log.warning("executor.status_unknown", order_id=order.order_id, tx=signature, error=str(exc))
                state = "pending"
            if isinstance(state, ExecutionReport):
                return state
            if state == "expired":
                self.log.info("executor.expired", order_id=order.order_id, tx=signature, last_valid=last_valid)
                return None
            if clock.monotonic() >= deadline:
                return ExecutionReport(outcome=Outcome.SUBMITTED, tx=signature, detail="not confirmed in time")
            await clock.sleep(self.config.confirm_poll)

    async def state(
        self, order: ApprovedOrder, signature: str, last_valid: int
    ) -> ExecutionReport | Literal["pending", "expired"]:
        """FILLED / FAILED report once known; "expired" only when it provably can never land."""
        assert self.rpc is not None  # noqa: S101
        height = await self.rpc.block_height(self.config.commitment)  # first: a status read after it is proof
        status = await self.rpc.signature_status(signature)
        if status is None:
            return "expired" if height > last_valid else "pending"
        # An error is final only at the configured commitment: a failed transaction seen "processed" on a
        # fork that is dropped can be sent again by the node and land, after the router tried the next executor.
        if status.get("confirmationStatus") not in ("confirmed", "finalized"):
            return "pending"
        if self.config.commitment == "finalized" and status.get("confirmationStatus") != "finalized":
            return "pending"
        if status.get("err") is not None:
            detail = f"landed and failed: {status['err']}"
            return ExecutionReport(
                outcome=Outcome.FAILED,
                tx=signature,
                reason=RejectReason.EXECUTOR_ERROR,
                detail=detail,
                fee=await self._fee_of(signature),
            )
        fill = await self.read_fill(order, signature)
        if fill is None:
            return "pending"  # confirmed but not served yet by this node
        return ExecutionReport(outcome=Outcome.FILLED, tx=signature, fill=fill)

    async def _fee_of(self, signature: str) -> int:
        """The fee our wallet paid for a landed transaction (sign() makes it the fee payer); 0 when the node cannot
        say yet (the portfolio's next balance read catches it up)."""
        assert self.rpc is not None  # noqa: S101
        try:
            tx = await self.rpc.transaction(signature, self.config.commitment)
            fee = (tx or {}).get("meta", {}).get("fee")
        except (HttpFailed, RpcRefused, AttributeError) as exc:
            self.log.info("executor.fee_unknown", tx=signature, error=str(exc))
            return 0
        return fee if type(fee) is int and fee >= 0 else 0

    async def read_fill(self, order: ApprovedOrder, signature: str) -> Fill | None:
        """The real amounts: the wallet's balance deltas in the confirmed transaction."""
        assert self.rpc is not None  # noqa: S101
        tx = await self.rpc.transaction(signature, self.config.commitment)
        if tx is None:
            return None
        deltas = solana_wallet_deltas(tx, str(self.wallet))
        token = order.intent.token
        if order.intent.side == "buy":
            amount_in, amount_out = -deltas.get(SOL, 0), deltas.get(token, 0)
            price = Decimal(amount_in) / amount_out if amount_out > 0 else None
        else:
            amount_in, amount_out = -deltas.get(token, 0), deltas.get(SOL, 0)
            price = Decimal(amount_out) / amount_in if amount_in > 0 else None
        meta = tx.get("meta") or {}
        block_time = tx.get("blockTime")
        filled_at = self.env.clock.now()
        if isinstance(block_time, int):
            from datetime import UTC, datetime

            filled_at = datetime.fromtimestamp(block_time, UTC)
        return Fill(
            tx=signature,
            amount_in=amount_in,
            amount_out=amount_out,
            fee=int(meta.get("fee") or 0),
            price_native=price,
            filled_at=filled_at,
        )

    # --- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        """From every signature sent for the order: FILLED / SUBMITTED / FAILED / EXPIRED, or NOT_SENT."""
        entries = list(self._sent.get(order.order_id, ()))
        if tx is not None and not any(e.signature == tx for e in entries):
            assert self.rpc is not None  # noqa: S101
            height = await self.rpc.block_height("processed")
            entries.append(SentEntry(order.order_id, tx, height + BLOCKHASH_WINDOW))
        if not entries:
            return ExecutionReport(outcome=Outcome.NOT_SENT, detail="no signature was recorded: never sent")
        states = [(e.signature, await self.state(order, e.signature, e.last_valid_block_height)) for e in entries]
        for _, s in states:
            if isinstance(s, ExecutionReport) and s.outcome is Outcome.FILLED:
                return s
        pending = [sig for sig, s in states if s == "pending"]
        if pending:
            return ExecutionReport(outcome=Outcome.SUBMITTED, tx=pending[-1], detail="still may land")
        for _, s in states:
            if isinstance(s, ExecutionReport):
                return s
        return ExecutionReport(outcome=Outcome.EXPIRED, tx=entries[-1].signature, detail="blockhash expired")

    # --- balances ----------------------------------------------------------------------------

    async def balances(self, tokens: Collection[str] = ()) -> Mapping[str, int] | None:
        """SOL (lamports, under NATIVE_TOKEN) and every token the wallet holds, by mint (`tokens` among them)."""
        if self.keypair is None or self.rpc is None:
            return None
        owner = str(self.wallet)
        out: dict[str, int] = {SOL: int((await self.rpc.call("getBalance", [owner]))["value"])}
        for program in TOKEN_PROGRAMS:
            result = await self.rpc.call(
                "getTokenAccountsByOwner", [owner, {"programId": program}, {"encoding": "base64"}]
            )
            for item in result["value"]:
                data = base64.b64decode(item["account"]["data"][0])
                if len(data) < 72:
                    continue
                mint = str(Pubkey.from_bytes(data[:32]))
                out[mint] = out.get(mint, 0) + int.from_bytes(data[64:72], "little")
        return out

    # --- sent log ----------------------------------------------------------------------------

    async def _record(self, entry: SentEntry) -> None:
        assert self._file is not None  # noqa: S101  (start() ran)
        async with self._lock:
            await self._file.append(entry)
            self._sent.setdefault(entry.order_id, []).append(entry)

    def sent(self, order: ApprovedOrder) -> str | None:
        return self._last_signature(order)

    def _last_signature(self, order: ApprovedOrder) -> str | None:
        entries = self._sent.get(order.order_id)
        return entries[-1].signature if entries else None


def _failed(reason: RejectReason, detail: str) -> ExecutionReport:
    return ExecutionReport(outcome=Outcome.FAILED, reason=reason, detail=detail)


def b64(raw: str) -> bytes:
    return base64.b64decode(raw, validate=True)


def as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HttpFailed("venue answer is not a JSON object")
    return value
