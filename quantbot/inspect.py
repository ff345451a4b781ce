"""`quantbot inspect tx FILE|SIGNATURE --chain solana|aptos`: the events one transaction yields.

Solana: from a file holding a getTransaction response (or its `result`), or fetched by signature from
`config.solana.endpoints[0].http` with solana-py's AsyncClient (jsonParsed, v0 supported; timeout,
jittered backoff, Retry-After honoured on 429/5xx). Aptos is dispatched to
`quantbot.chains.aptos.inspect.inspect_aptos`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect as _inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException
from solders.signature import Signature

from quantbot.chains.solana.parser import SolanaParser
from quantbot.config import Config
from quantbot.events import Event
from quantbot.retry import RETRYABLE_STATUS, Backoff, retry_after

log = structlog.get_logger(component="solana.inspect")

_SIGNATURE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{64,88}")
MAX_FILE_BYTES = 64 * 1024 * 1024
REQUEST_TIMEOUT = 20.0
RETRIES = Backoff(base=0.5, cap=10.0, attempts=4)


class InspectError(ValueError):
    """The target could not be read, fetched or parsed; the message names it and says what to fix."""


async def inspect_tx(target: str, *, chain: str, config: Config) -> list[Event]:
    """Events of one transaction on `chain`, from a file or fetched by id."""
    if chain == "aptos":
        # Built by the Aptos helper; imported only when asked for.
        aptos = importlib.import_module("quantbot.chains.aptos.inspect")
        result: Any = aptos.inspect_aptos(target, config=config)
        if _inspect.isawaitable(result):
            result = await result
        return list(result)
    return await inspect_solana(target, config=config)


async def inspect_solana(target: str, *, config: Config) -> list[Event]:
    """Events of the getTransaction response in file `target`, or of the transaction with that signature."""
    path = Path(target)
    if await asyncio.to_thread(path.is_file):
        raw = await asyncio.to_thread(_read, path)
        return _parse(raw, str(path))
    if _SIGNATURE.fullmatch(target):
        return _parse(await fetch_transaction(target, config=config), target)
    raise InspectError(f"{target}: not a file and not a transaction signature (base58, 64-88 characters)")


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InspectError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not one transaction")
        return path.read_bytes()
    except OSError as exc:
        raise InspectError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _parse(raw: bytes | str, where: str) -> list[Event]:
    parser = SolanaParser()
    events = parser.parse_transaction(raw)
    if parser.rejected:
        reasons = ", ".join(sorted(parser.rejected))
        if not events:
            raise InspectError(
                f"{where}: not a Solana getTransaction response this parser accepts (rejected: {reasons}); "
                "expected the JSON-RPC response of getTransaction (json, jsonParsed or base64) or its result"
            )
        log.warning("inspect.partly_rejected", target=where, reasons=reasons)
    if not events and parser.skipped["failed_tx"]:
        log.info("inspect.failed_transaction", target=where)
    return events


async def fetch_transaction(signature: str, *, config: Config) -> str:
    """getTransaction(jsonParsed, maxSupportedTransactionVersion 0) -> the `result` JSON."""
    if not config.solana.endpoints:
        raise InspectError('no Solana endpoint configured: set [[solana.endpoints]] http = "https://..."')
    try:
        sig = Signature.from_string(signature)
    except ValueError:
        raise InspectError(f"{signature}: not a valid transaction signature") from None
    url = config.solana.endpoints[0].http
    delays = RETRIES.delays()
    async with AsyncClient(url, commitment=Commitment(config.solana.commitment), timeout=REQUEST_TIMEOUT) as client:
        while True:
            try:
                resp = await client.get_transaction(sig, encoding="jsonParsed", max_supported_transaction_version=0)
            except SolanaRpcException as exc:
                wait = _retry_wait(exc.__cause__, delays)
                if wait is None:
                    raise InspectError(f"{url}: getTransaction failed ({_describe(exc.__cause__)})") from None
                log.warning("inspect.retry", endpoint=url, error=_describe(exc.__cause__), wait=round(wait, 2))
                await asyncio.sleep(wait)
                continue
            except RPCException as exc:
                raise InspectError(f"{url}: getTransaction error: {exc}") from None
            if resp.value is None:
                raise InspectError(
                    f"{signature}: transaction not found at {url} (commitment {config.solana.commitment})"
                )
            return resp.value.to_json()


def _retry_wait(cause: BaseException | None, delays: Iterator[float]) -> float | None:
    """Seconds to wait before retrying, or None when the error is final or retries are spent.

    solana-py wraps every httpx error in SolanaRpcException: a status error carries `.response`
    (retried on 408/425/429/5xx, honouring Retry-After); anything else is a transport failure.
    """
    response = getattr(cause, "response", None)
    status = getattr(response, "status_code", None)
    asked = None
    if isinstance(status, int):
        if status not in RETRYABLE_STATUS:
            return None
        asked = retry_after(dict(getattr(response, "headers", {})))
    backoff = next(delays, None)
    if backoff is None:
        return None
    return max(backoff, asked) if asked is not None else backoff


def _describe(cause: BaseException | None) -> str:
    status = getattr(getattr(cause, "response", None), "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    return type(cause).__name__ if cause is not None else "unknown error"
