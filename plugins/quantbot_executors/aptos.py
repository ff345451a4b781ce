"""`aptos`: swaps through a configured router entry function, signed with aptos-sdk.

Per order: build the call (buy = APT -> token, sell = token -> APT), simulate it (a failed simulation
is FAILED: nothing was sent), compare the simulated output with the order's reference price (beyond
`max_price_impact_bps` FAILED PRICE_IMPACT, beyond `max_slippage_bps` FAILED SLIPPAGE), sign it with
min_amount_out = simulated output less the slippage tolerance, compute its hash, append the hash to a
durable per-executor log *before* submitting (a restart reconciles by hash, never re-sends), submit,
and follow it until it is committed or the chain's clock passes its expiration. The fill is the
wallet's net balance change in the committed transaction's events (as the parser nets them).

Outcomes: committed with success -> FILLED; committed with success=false -> FAILED (EXECUTOR_ERROR) with
the vm_status (landed and aborted: it can never execute, as Solana's "landed and failed"); expiration
passed uncommitted -> EXPIRED; no proof within `confirm_timeout` -> SUBMITTED. Sequence numbers come
from a local counter (one order at a time from build to submit), re-synchronised from the chain after
any refusal or expiry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aptos_sdk.account import Account
from aptos_sdk.account_address import AccountAddress
from aptos_sdk.async_client import ApiError, ResourceNotFound, RestClient
from aptos_sdk.transactions import RawTransaction, SignedTransaction, TransactionPayload

from quantbot.api import (
    NATIVE_TOKEN,
    ApprovedOrder,
    AptosNodes,
    ExecutionReport,
    Executor,
    Fill,
    Outcome,
    PluginConfig,
    RejectReason,
    aptos_asset_name,
    aptos_gas_charge,
    aptos_paired_metadata,
    aptos_primary_store,
    aptos_rest,
    aptos_wallet_deltas,
    normalise_asset,
)
from quantbot_executors.aptos_call import AptosExecutorConfig, load_account, struct_value
from quantbot_executors.aptos_wire import (
    SentEntry,
    SentLog,
    api_message,
    chain_id_of,
    gas_estimate,
    simulate,
    transaction_hash,
)

APT = NATIVE_TOKEN["aptos"]
BPS = 10_000


@dataclass(frozen=True)
class Prepared:
    signed: SignedTransaction
    tx: str
    sequence_number: int
    expiration: int


def _failed(reason: RejectReason, detail: str) -> ExecutionReport:
    return ExecutionReport(outcome=Outcome.FAILED, reason=reason, detail=detail)


class AptosExecutor(Executor):
    Config = AptosExecutorConfig
    config: AptosExecutorConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self.account: Account | None = None
        self.nodes: AptosNodes | None = None
        self.sent_log: SentLog | None = None
        self._lock = asyncio.Lock()
        self._next_seq: int | None = None
        self._chain_id: int | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        c = self.config
        if self.wallet_key is not None:
            self.account = load_account(self.wallet_key, c.address)
            self.log.info("executor.wallet", wallet=str(self.account.address()))
        self.nodes = aptos_rest(
            nodes=c.nodes,
            clock=self.env.clock,
            timeout=c.request_timeout,
            attempts=c.attempts,
            retry_base=c.retry_base,
            retry_cap=c.retry_cap,
            api_key=c.api_key.reveal() if c.api_key else None,
        )
        self.sent_log = SentLog(self.env.data_dir / "sent.jsonl", log=self.log)
        self.sent_log.load()

    async def stop(self) -> None:
        if self.nodes is not None:
            await self.nodes.close()

    @property
    def wallet(self) -> str:
        if self.account is None:
            raise RuntimeError("no wallet key")
        return str(self.account.address())

    def _rest(self) -> AptosNodes:
        if self.nodes is None:
            raise RuntimeError(f"executor {self.id!r} used before start")
        return self.nodes

    # --- execute -----------------------------------------------------------------------------

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        if self.account is None:
            return _failed(RejectReason.EXECUTOR_ERROR, "no [wallet] aptos_private_key configured")
        intent = order.intent
        if intent.chain != "aptos":
            return _failed(RejectReason.EXECUTOR_ERROR, f"the aptos executor cannot trade on {intent.chain}")
        call = self.config.call_for(intent.token)
        if call is None:
            return _failed(RejectReason.EXECUTOR_ERROR, f"no router call configured for {intent.token}")
        if intent.amount <= 0:
            return _failed(RejectReason.EXECUTOR_ERROR, "amount must be positive")
        async with self._lock:  # from sequence number to submit, one order at a time
            try:
                try:
                    prepared = await self._prepare(order)
                except ApiError as exc:
                    self._next_seq = None  # whatever the refusal, count again from the chain
                    if "SEQUENCE_NUMBER" not in str(exc):
                        raise
                    self.log.warning("executor.sequence_resync", order_id=order.order_id, error=api_message(exc))
                    prepared = await self._prepare(order)  # the wallet was used elsewhere: once more, resynced
            except ApiError as exc:
                self._next_seq = None
                return _failed(RejectReason.EXECUTOR_ERROR, f"node refused: {api_message(exc)}")
            except ValueError as exc:
                return _failed(RejectReason.EXECUTOR_ERROR, str(exc))
            except Exception as exc:  # noqa: BLE001  (no node answered: nothing was submitted)
                return _failed(RejectReason.EXECUTOR_ERROR, f"aptos node unavailable: {exc}")
            if isinstance(prepared, ExecutionReport):
                return prepared
            refused = await self._submit(order, prepared)
            if refused is not None:
                return refused
        return await self._follow(order, prepared.tx, prepared.expiration)

    async def _prepare(self, order: ApprovedOrder) -> Prepared | ExecutionReport:
        assert self.account is not None  # noqa: S101  (execute checked)
        c = self.config
        intent = order.intent
        call = c.call_for(intent.token)
        assert call is not None  # noqa: S101  (execute checked)
        token_in, token_out = (APT, intent.token) if intent.side == "buy" else (intent.token, APT)
        rest = self._rest()
        if self._chain_id is None:
            self._chain_id = await rest.call("chain_id", chain_id_of)
        chain_id: int = self._chain_id
        estimate = await rest.call("estimate_gas_price", gas_estimate)
        gas_price = min(estimate, c.gas_unit_price_cap)
        now_s = rest.ledger_timestamp_us // 1_000_000
        if now_s <= 0:
            info = await rest.call("info", lambda cl: cl.info())
            now_s = int(info["ledger_timestamp"]) // 1_000_000
        expiration = now_s + int(c.expiration_s)
        values = {
            "amount_in": str(intent.amount),
            "min_amount_out": "0",
            "wallet": self.wallet,
            "token_in": token_in,
            "token_out": token_out,
            "expiration": str(expiration),
        }
        seq = await self._sequence()
        account = self.account

        def raw(min_out: int, max_gas: int, sequence_number: int | None = None) -> RawTransaction:
            payload = TransactionPayload(call.build({**values, "min_amount_out": str(min_out)}))
            number = seq if sequence_number is None else sequence_number
            return RawTransaction(account.address(), number, payload, max_gas, gas_price, expiration, chain_id)

        sim = await rest.call("simulate", lambda cl: simulate(cl, raw(0, c.max_gas_amount), account))
        if "SEQUENCE_NUMBER_TOO_OLD" in str(sim.get("vm_status", "")):
            # The wallet was used elsewhere (the operator's other tool): our count is behind the chain's. Nothing was
            # sent; count again from the chain, or every later order (exits too) would fail the same way.
            self.log.info("executor.sequence_resync", order_id=order.order_id, was=seq)
            self._next_seq = None
            seq = await self._sequence()
            sim = await rest.call("simulate", lambda cl: simulate(cl, raw(0, c.max_gas_amount), account))
        if "SEQUENCE_NUMBER_TOO_NEW" in str(sim.get("vm_status", "")):
            # Our earlier orders are still pending: simulate as the next transaction the chain would run.
            address = account.address()
            current = await rest.call("sequence_number", lambda cl: cl.account_sequence_number(address))
            sim = await rest.call("simulate", lambda cl: simulate(cl, raw(0, c.max_gas_amount, current), account))
        if not sim.get("success"):
            status = str(sim.get("vm_status", ""))
            reason = (
                RejectReason.INSUFFICIENT_BALANCE if "INSUFFICIENT_BALANCE" in status else RejectReason.EXECUTOR_ERROR
            )
            self.log.info("executor.simulation_failed", order_id=order.order_id, vm_status=status)
            return _failed(reason, f"simulation failed, nothing sent: {status}")
        deltas = aptos_wallet_deltas(sim, self.wallet)
        out = deltas.get(aptos_asset_name(token_out), 0)
        if out <= 0:
            return _failed(RejectReason.EXECUTOR_ERROR, f"the simulated swap delivers no {token_out} to the wallet")
        refused = self._limits(order, out)
        if refused is not None:
            return refused
        slippage = c.slippage_bps if order.max_slippage_bps is None else min(c.slippage_bps, order.max_slippage_bps)
        min_out = out * (BPS - slippage) // BPS
        gas_used = int(sim.get("gas_used", 0))
        max_gas = min(c.max_gas_amount, max(gas_used * 3 // 2, gas_used + 10))
        signed_raw = raw(min_out, max_gas)
        signed = SignedTransaction(signed_raw, account.sign_transaction(signed_raw))
        tx = transaction_hash(signed)
        self.log.info(
            "executor.simulated", order_id=order.order_id, tx=tx, amount_out=out, min_amount_out=min_out, gas=gas_used
        )
        return Prepared(signed=signed, tx=tx, sequence_number=seq, expiration=expiration)

    def _limits(self, order: ApprovedOrder, out: int) -> ExecutionReport | None:
        """Refuse when the simulated output is worse than the reference price by more than the order allows."""
        intent = order.intent
        price = intent.price_native
        if price is None or price <= 0:
            return None
        expected = Decimal(intent.amount) / price if intent.side == "buy" else Decimal(intent.amount) * price
        if expected <= 0:
            return None
        worse = int((expected - Decimal(out)) * BPS / expected)
        for limit, reason in (
            (order.max_price_impact_bps, RejectReason.PRICE_IMPACT),
            (order.max_slippage_bps, RejectReason.SLIPPAGE),
        ):
            if limit is not None and worse > limit:
                detail = (
                    f"simulated output {out} is {worse} bps below {int(expected)} at the reference price (> {limit})"
                )
                return _failed(reason, detail)
        return None

    async def _sequence(self) -> int:
        if self._next_seq is None:
            address = AccountAddress.from_str_relaxed(self.wallet)
            self._next_seq = await self._rest().call("sequence_number", lambda cl: cl.account_sequence_number(address))
        return self._next_seq

    async def _submit(self, order: ApprovedOrder, p: Prepared) -> ExecutionReport | None:
        """None when submitted (or maybe submitted); FAILED when the node provably refused it."""
        try:
            assert self.sent_log is not None  # noqa: S101  (start() ran)
            await self.sent_log.record(SentEntry(order.order_id, p.tx, p.sequence_number, p.expiration))
        except OSError as exc:
            return _failed(RejectReason.EXECUTOR_ERROR, f"cannot log the transaction before sending it: {exc}")
        self._next_seq = p.sequence_number + 1
        tries = 0

        async def submit(cl: RestClient) -> str:
            nonlocal tries
            tries += 1
            return await cl.submit_bcs_transaction(p.signed)

        try:
            await self._rest().call("submit", submit)
            self.log.info("executor.submitted", order_id=order.order_id, tx=p.tx, sequence_number=p.sequence_number)
            return None
        except ApiError as exc:
            message = api_message(exc)
            if tries == 1 and await self._lookup(p.tx) is None:
                # The only attempt was answered with a refusal: the transaction is in no mempool.
                self._next_seq = None
                self.log.warning("executor.submit_refused", order_id=order.order_id, tx=p.tx, error=message)
                reason = (
                    RejectReason.INSUFFICIENT_BALANCE
                    if "INSUFFICIENT_BALANCE" in message
                    else RejectReason.EXECUTOR_ERROR
                )
                return _failed(reason, f"node refused the transaction: {message}")
            self.log.warning("executor.submit_unknown", order_id=order.order_id, tx=p.tx, error=message)
        except Exception as exc:  # noqa: BLE001  (maybe accepted before the connection failed: follow the hash)
            self.log.warning("executor.submit_unknown", order_id=order.order_id, tx=p.tx, error=str(exc))
        return None

    async def _lookup(self, tx: str) -> dict[str, Any] | None:
        """The transaction by hash (committed or pending); None when the node does not know it."""
        try:
            found: dict[str, Any] = await self._rest().call("by_hash", lambda cl: cl.transaction_by_hash(tx))
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return found

    async def _follow(self, order: ApprovedOrder, tx: str, expiration: int) -> ExecutionReport:
        rest = self._rest()
        clock = self.env.clock
        deadline = clock.monotonic() + self.config.confirm_timeout
        while True:
            try:
                found = await self._lookup(tx)
                answered = True
            except Exception as exc:  # noqa: BLE001  (node unavailable: keep following until the deadline)
                self.log.warning("executor.follow_failed", order_id=order.order_id, tx=tx, error=str(exc))
                found, answered = None, False
            if found is not None and found.get("type") == "user_transaction":
                return self._landed(order, found)
            if answered and rest.ledger_timestamp_us >= expiration * 1_000_000:
                # The same answer says: not committed at a ledger time past its expiration. It never can be.
                self._next_seq = None
                self.log.info("executor.expired", order_id=order.order_id, tx=tx, expiration=expiration)
                detail = f"not committed by its expiration ({expiration})"
                return ExecutionReport(outcome=Outcome.EXPIRED, tx=tx, detail=detail)
            if clock.monotonic() >= deadline:
                return ExecutionReport(outcome=Outcome.SUBMITTED, tx=tx, detail="not yet committed; reconcile later")
            await clock.sleep(self.config.poll_interval)

    def _landed(self, order: ApprovedOrder, tx: dict[str, Any]) -> ExecutionReport:
        tx_hash = str(tx.get("hash"))
        if not tx.get("success"):
            status = str(tx.get("vm_status", ""))
            self.log.warning("executor.committed_failed", order_id=order.order_id, tx=tx_hash, vm_status=status)
            try:
                fee = aptos_gas_charge(tx)  # the gas it burnt all the same
            except ValueError:
                fee = 0  # the portfolio's next balance read catches it up
            return ExecutionReport(
                outcome=Outcome.FAILED,
                tx=tx_hash,
                reason=RejectReason.EXECUTOR_ERROR,
                detail=f"committed with success=false: {status}",
                fee=fee,
            )
        intent = order.intent
        token_in, token_out = (APT, intent.token) if intent.side == "buy" else (intent.token, APT)
        try:
            deltas = aptos_wallet_deltas(tx, self.wallet)
            fee = aptos_gas_charge(tx)  # net of a storage refund
            stamp = datetime.fromtimestamp(int(tx["timestamp"]) / 1_000_000, UTC)
        except (ValueError, KeyError, TypeError) as exc:
            return ExecutionReport(outcome=Outcome.SUBMITTED, tx=tx_hash, detail=f"committed; fill unreadable: {exc}")
        amount_in = -deltas.get(aptos_asset_name(token_in), 0)
        amount_out = deltas.get(aptos_asset_name(token_out), 0)
        if amount_in <= 0 or amount_out <= 0:
            detail = f"committed, but the wallet's deltas are not a {intent.side} of {intent.token}: {deltas}"
            return ExecutionReport(outcome=Outcome.SUBMITTED, tx=tx_hash, detail=detail)
        native, tokens = (amount_in, amount_out) if intent.side == "buy" else (amount_out, amount_in)
        fill = Fill(
            tx=tx_hash,
            amount_in=amount_in,
            amount_out=amount_out,
            fee=fee,
            price_native=Decimal(native) / Decimal(tokens),
            filled_at=stamp,
        )
        self.log.info(
            "executor.filled", order_id=order.order_id, tx=tx_hash, amount_in=amount_in, amount_out=amount_out
        )
        return ExecutionReport(outcome=Outcome.FILLED, tx=tx_hash, fill=fill)

    # --- reconcile ---------------------------------------------------------------------------

    def sent(self, order: ApprovedOrder) -> str | None:
        entries = self.sent_log.entries(order.order_id) if self.sent_log else []
        return entries[-1].tx if entries else None

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        entries = self.sent_log.entries(order.order_id) if self.sent_log else []
        if tx is None and not entries:
            # The hash is logged durably before any submit: no entry, never submitted.
            return ExecutionReport(outcome=Outcome.NOT_SENT, detail="no transaction was ever submitted")
        entry = next((e for e in entries if e.tx == tx), entries[-1] if entries else None)
        tx_hash = tx or (entry.tx if entry else "")
        found = await self._lookup(tx_hash)
        if found is not None and found.get("type") == "user_transaction":
            return self._landed(order, found)
        if entry is None:
            return ExecutionReport(outcome=Outcome.SUBMITTED, tx=tx_hash, detail="expiration unknown")
        return await self._follow(order, tx_hash, entry.expiration)

    # --- balances ----------------------------------------------------------------------------

    async def balances(self, tokens: Collection[str] = ()) -> dict[str, int] | None:
        """APT, the configured `tokens` and the tokens the portfolio holds (one store read per asset: Aptos has no
        call that lists an account's holdings)."""
        if self.account is None or self.nodes is None:
            return None
        out = {APT: await self._balance(APT)}
        for name in dict.fromkeys(normalise_asset("aptos", t) for t in (*self.config.tokens, *tokens)):
            if name not in out:  # keyed as the portfolio keys positions; each asset read once
                out[name] = await self._balance(name)
        return out

    async def _balance(self, asset: str) -> int:
        """CoinStore<T> (coins) plus the primary store of the paired or given fungible asset."""
        owner = self.wallet
        total = 0
        if "::" in asset:
            data = await self._resource(owner, f"0x1::coin::CoinStore<{asset}>")
            total += int(struct_value(data, "coin", "value") or 0)
            metadata = aptos_paired_metadata(asset)
        else:
            metadata = asset
        store = await self._resource(aptos_primary_store(owner, metadata), "0x1::fungible_asset::FungibleStore")
        return total + int(struct_value(store, "balance") or 0)

    async def _resource(self, address: str, kind: str) -> dict[str, Any] | None:
        where = AccountAddress.from_str_relaxed(address)
        try:
            resource: dict[str, Any] = await self._rest().call("resource", lambda cl: cl.account_resource(where, kind))
        except ResourceNotFound:
            return None
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        data = resource.get("data")
        return data if isinstance(data, dict) else None
