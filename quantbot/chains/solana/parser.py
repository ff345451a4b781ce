"""Solana transactions and logs -> quantbot events (Swap, Transfer, TokenLaunch, PumpTrade).

Pure and total: `SolanaParser` never raises on bad input. Anything unusable yields no events and
one count in `rejected` under a short reason (logged once per occurrence at warning level); a bad
piece inside an otherwise good transaction (one undecodable event) drops only that piece.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from quantbot.chains.solana import launches
from quantbot.chains.solana.balances import Balances, net_trades, still_funded, system_transfer_of
from quantbot.chains.solana.layout import LayoutError
from quantbot.chains.solana.programs import (
    AGGREGATORS,
    ANCHOR_EVENT_IX_TAG,
    ASSOCIATED_TOKEN_PROGRAM,
    COMPUTE_BUDGET_PROGRAM,
    KNOWN_DECIMALS,
    MEMO_PROGRAM,
    METAPLEX_METADATA_PROGRAM,
    NATIVE_MINT,
    PUMP_FEE_PROGRAM,
    PUMP_FUN_PROGRAM,
    SOL_DECIMALS,
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
    TOKEN_PROGRAMS,
    TOKEN_TRANSFER_CHECKED_TAG,
    TOKEN_TRANSFER_TAG,
    VENUE_UNKNOWN,
    VENUES,
)
from quantbot.chains.solana.pumpfun import EVENT_PREFIXES, CreateEvent, TradeEvent, decode_event, program_data
from quantbot.chains.solana.txmodel import Ix, TxView, decode_document, view
from quantbot.events import Event, PumpTrade, Swap, TokenLaunch, Transfer

log = structlog.get_logger("quantbot.chains.solana.parser")

_TOKEN_TRANSFER_B58_LENGTHS = (12, 13)
"""Base58 lengths of transfer (tag 3 + u64) and transferChecked (tag 12 + u64 + u8) data, over all amounts."""
_TRADE_PROGRAMS = frozenset(AGGREGATORS) | frozenset(VENUES)
"""When one of these runs, inner transfers are legs of a trade, reported as the Swap instead."""


_PUMP_COMPANIONS = frozenset(
    {
        PUMP_FUN_PROGRAM,
        PUMP_FEE_PROGRAM,
        SYSTEM_PROGRAM,
        COMPUTE_BUDGET_PROGRAM,
        TOKEN_PROGRAM,
        TOKEN_2022_PROGRAM,
        ASSOCIATED_TOKEN_PROGRAM,
        MEMO_PROGRAM,
        METAPLEX_METADATA_PROGRAM,
    }
)
"""Programs that run beside pump.fun and never log Anchor events of their own."""


class SolanaParser:
    """Stateless apart from its counters; one instance per watcher is fine, sharing one is too."""

    name = "solana.parser"

    def __init__(self) -> None:
        self.rejected: collections.Counter[str] = collections.Counter()
        self.skipped: collections.Counter[str] = collections.Counter()
        """Valid input that yields nothing on purpose (failed transactions)."""

    def _reject(self, reason: str, detail: str = "", signature: str = "") -> None:
        self.rejected[reason] += 1
        # ascii(): hostile strings (control characters, bidi overrides) must not reach the log verbatim
        log.warning(
            "solana.parse_rejected", reason=reason, detail=ascii(detail[:200]), signature=ascii(signature[:100])
        )

    # --- getTransaction -------------------------------------------------------------------------

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]:
        """A getTransaction response (or its `result`) in any encoding -> its events; [] if unusable."""
        try:
            tx = view(decode_document(raw))
        except LayoutError as exc:
            self._reject(exc.reason, str(exc))
            return []
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            self._reject("malformed", repr(exc))
            return []
        if tx.err is not None:
            self.skipped["failed_tx"] += 1
            return []
        try:
            balances = Balances(tx)
            pools = list(launches.pool_launches(tx, balances))
        except LayoutError as exc:
            self._reject(exc.reason, str(exc), tx.signature)
            return []
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            self._reject("malformed", repr(exc), tx.signature)
            return []
        events: list[Event] = []
        # A pool creator's deposit (both sides in, LP tokens out) is liquidity, not a trade.
        liquidity = {p.creator for p in pools}
        for step in (self._swaps, self._transfers, self._pump_events):
            try:
                events.extend(step(tx, balances, liquidity))
            except LayoutError as exc:
                self._reject(exc.reason, str(exc), tx.signature)
            except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
                self._reject("malformed", repr(exc), tx.signature)
        events.extend(pools)
        return events

    def _swaps(self, tx: TxView, balances: Balances, liquidity: set[str]) -> list[Event]:
        trades = [t for t in net_trades(tx, balances) if t.wallet not in liquidity]
        if not trades:
            return []
        venue = _venue(tx)
        return [
            Swap(
                chain="solana",
                wallet=t.wallet,
                mint_in=t.spent.mint,
                amount_in=t.spent.amount,
                decimals_in=t.spent.decimals,
                mint_out=t.received.mint,
                amount_out=t.received.amount,
                decimals_out=t.received.decimals,
                venue=venue,
                tx=tx.signature,
                slot=tx.slot,
                block_time=tx.block_time,
                fee=t.fee,
            )
            for t in trades
        ]

    def _transfers(self, tx: TxView, balances: Balances, liquidity: set[str]) -> list[Event]:
        out: list[Event] = []
        trade = not _TRADE_PROGRAMS.isdisjoint(tx.programs)
        for ix in tx.ixs:
            if ix.inner and trade:
                continue  # a leg of the trade, which the Swap reports
            if ix.program == SYSTEM_PROGRAM:
                t = system_transfer_of(ix)
                if t is None:
                    continue
                src, dst, amount = t
                dst_account = balances.account(dst)
                if dst_account is None and not still_funded(tx, dst):
                    continue  # funding a temporary account closed again in this tx (wrapping SOL)
                dst_owner = dst_account.owner if dst_account is not None else dst
                mint, decimals = NATIVE_MINT, SOL_DECIMALS
                src_owner = src
            elif ix.program in TOKEN_PROGRAMS:
                tt = _token_transfer(ix)
                if tt is None:
                    continue
                src, dst, amount, mint_hint, decimals_hint = tt
                src_acc, dst_acc = balances.account(src), balances.account(dst)
                if src_acc is None or dst_acc is None:
                    self.skipped["transfer_unresolved_owner"] += 1
                    continue
                src_owner, dst_owner = src_acc.owner, dst_acc.owner
                mint = mint_hint or src_acc.mint
                decimals = decimals_hint if decimals_hint is not None else src_acc.decimals
            else:
                continue
            if amount <= 0 or src_owner == dst_owner:
                continue
            out.append(
                Transfer(
                    chain="solana",
                    source=src_owner,
                    destination=dst_owner,
                    mint=mint,
                    amount=amount,
                    decimals=decimals,
                    tx=tx.signature,
                    slot=tx.slot,
                    block_time=tx.block_time,
                )
            )
        return out

    def _pump_events(self, tx: TxView, balances: Balances, liquidity: set[str]) -> list[Event]:
        if PUMP_FUN_PROGRAM not in tx.programs:
            return []
        logs = tx.meta.log_messages or []
        alone = tx.programs <= _PUMP_COMPANIONS  # no other program that could log a colliding event ran
        payloads = list(program_data(logs, PUMP_FUN_PROGRAM, EVENT_PREFIXES, check_emitter=not alone))
        if not payloads or _truncated(logs):
            # pump.fun also emits every event by self-CPI (emit_cpi): tag + the same payload as inner
            # instruction data. It survives log truncation (2024 events only have the log).
            payloads = [
                data[8:]
                for ix in tx.ixs
                if ix.inner and ix.program == PUMP_FUN_PROGRAM and isinstance(ix.data, str | bytes)
                for data in (ix.raw(),)
                if data[:8] == ANCHOR_EVENT_IX_TAG
            ] or payloads
        return self._events_from_payloads(payloads, tx.signature, tx.slot, tx.block_time)

    # --- logsSubscribe --------------------------------------------------------------------------

    def parse_logs(
        self,
        *,
        signature: str,
        slot: int,
        logs: Sequence[str],
        err: object = None,
        block_time: datetime | None = None,
    ) -> list[Event]:
        """A logsNotification's logs -> pump.fun TokenLaunch/PumpTrade events; [] when the tx failed."""
        if err is not None:
            self.skipped["failed_tx"] += 1
            return []
        if not isinstance(logs, Sequence) or isinstance(logs, str | bytes):
            self._reject("bad_logs", type(logs).__name__, signature)
            return []
        try:
            lines = [line for line in logs if isinstance(line, str)]
            payloads = list(program_data(lines, PUMP_FUN_PROGRAM, EVENT_PREFIXES))
        except LayoutError as exc:
            self._reject(exc.reason, str(exc), signature)
            return []
        return self._events_from_payloads(payloads, signature, slot, block_time)

    def _events_from_payloads(
        self, payloads: list[bytes], signature: str, slot: int, block_time: datetime | None
    ) -> list[Event]:
        out: list[Event] = []
        seen: set[bytes] = set()
        for data in payloads:
            if data in seen:
                continue
            seen.add(data)
            try:
                decoded = decode_event(data)
            except LayoutError as exc:
                self._reject(f"pump_event_{exc.reason}", str(exc), signature)
                continue
            if isinstance(decoded, CreateEvent):
                out.append(_launch(decoded, signature, slot, block_time))
            elif isinstance(decoded, TradeEvent):
                try:
                    out.append(_trade(decoded, signature, slot, block_time))
                except (OverflowError, OSError, ValueError):
                    self._reject("pump_event_bad_timestamp", str(decoded.timestamp), signature)
        return out


def _truncated(logs: list[str]) -> bool:
    return any(line.startswith("Log truncated") for line in logs[-2:])


def _venue(tx: TxView) -> str:
    """The aggregator if one ran, else the first AMM/curve that ran, else "unknown"."""
    for program, name in AGGREGATORS.items():
        if program in tx.programs:
            return name
    for ix in tx.ixs:
        if ix.program in VENUES:
            return VENUES[ix.program]
    return VENUE_UNKNOWN


def _token_transfer(ix: Ix) -> tuple[str, str, int, str | None, int | None] | None:
    """(source account, destination account, amount, mint?, decimals?) of an SPL transfer/transferChecked."""
    parsed = ix.parsed
    if isinstance(parsed, dict):
        kind = parsed.get("type")
        if kind not in ("transfer", "transferChecked"):
            return None
        info = parsed.get("info")
        if not isinstance(info, dict):
            raise LayoutError("bad_parsed", "token transfer without info")
        src, dst = info.get("source"), info.get("destination")
        if kind == "transfer":
            amount_raw, mint, decimals = info.get("amount"), None, None
        else:
            ta = info.get("tokenAmount")
            if not isinstance(ta, dict):
                raise LayoutError("bad_parsed", "transferChecked without tokenAmount")
            amount_raw, mint, decimals = ta.get("amount"), info.get("mint"), ta.get("decimals")
        if not (
            isinstance(src, str)
            and isinstance(dst, str)
            and isinstance(amount_raw, str)
            and amount_raw.isascii()
            and amount_raw.isdigit()
        ):
            raise LayoutError("bad_parsed", "token transfer fields")
        if mint is not None and not isinstance(mint, str):
            raise LayoutError("bad_parsed", "token transfer mint")
        if decimals is not None and (type(decimals) is not int or not 0 <= decimals <= 255):
            raise LayoutError("bad_parsed", "token transfer decimals")
        return src, dst, int(amount_raw[:24]), mint, decimals
    if parsed is not None:
        return None
    if isinstance(ix.data, str) and len(ix.data) not in _TOKEN_TRANSFER_B58_LENGTHS:
        return None  # not 9 or 10 bytes: neither transfer nor transferChecked, no need to decode it
    data = ix.raw()
    if len(data) == 9 and data[0] == TOKEN_TRANSFER_TAG and len(acc := ix.accounts) >= 3:
        return acc[0], acc[1], int.from_bytes(data[1:9], "little"), None, None
    if len(data) == 10 and data[0] == TOKEN_TRANSFER_CHECKED_TAG and len(acc := ix.accounts) >= 4:
        return acc[0], acc[2], int.from_bytes(data[1:9], "little"), acc[1], data[9]
    return None


def _launch(ev: CreateEvent, signature: str, slot: int, block_time: datetime | None) -> TokenLaunch:
    quote = ev.quote_mint if ev.quote_mint not in (None, SYSTEM_PROGRAM) else NATIVE_MINT
    return TokenLaunch(
        chain="solana",
        mint=ev.mint,
        name=ev.name,
        symbol=ev.symbol,
        uri=ev.uri,
        creator=ev.creator or ev.user,
        source="pump.fun",
        tx=signature,
        slot=slot,
        block_time=block_time,
        bonding_curve=ev.bonding_curve,
        base_mint=ev.mint,
        quote_mint=quote,
        token_program=ev.token_program or TOKEN_PROGRAM,  # create_v2 (Token-2022) events name it
        decimals=6,
    )


def _trade(ev: TradeEvent, signature: str, slot: int, block_time: datetime | None) -> PumpTrade:
    quote = ev.quote
    return PumpTrade(
        chain="solana",
        mint=ev.mint,
        user=ev.user,
        is_buy=ev.is_buy,
        sol_amount=ev.sol_amount,
        token_amount=ev.token_amount,
        quote_mint=quote,
        quote_amount=ev.quote_value,
        quote_decimals=KNOWN_DECIMALS.get(quote),
        virtual_sol_reserves=ev.virtual_sol_reserves,
        virtual_token_reserves=ev.virtual_token_reserves,
        real_sol_reserves=ev.real_sol_reserves,
        real_token_reserves=ev.real_token_reserves,
        virtual_quote_reserves=ev.virtual_quote_reserves,
        real_quote_reserves=ev.real_quote_reserves,
        fee=ev.fee,
        creator=ev.creator,
        creator_fee=ev.creator_fee,
        ix_name=ev.ix_name,
        timestamp=datetime.fromtimestamp(ev.timestamp, UTC),
        tx=signature,
        slot=slot,
        block_time=block_time,
    )
