"""`quantbot inspect tx FILE|VERSION|HASH --chain aptos`: the events one Aptos transaction yields.

From a file (one transaction as the REST API returns it, a JSON array of them such as an
account-transactions page, or a block with its transactions), or fetched from `config.aptos.nodes[0]`
by ledger version or hash with aptos-sdk's async RestClient (timeout, jittered backoff, Retry-After
honoured on 429/5xx). Fetched transactions get their assets' decimals from the node (CoinInfo /
fungible-asset Metadata); a file is parsed offline.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import structlog
from aptos_sdk.account_address import AccountAddress
from aptos_sdk.async_client import ApiError, ResourceNotFound, RestClient

from quantbot.chains.aptos.addresses import APT, AddressError, normalize_type
from quantbot.chains.aptos.parser import AptosParser
from quantbot.config import Config
from quantbot.events import Event, Swap, Transfer
from quantbot.retry import RETRYABLE_STATUS, Backoff, retry_after

log = structlog.get_logger(component="aptos.inspect")

_VERSION = re.compile(r"[0-9]{1,20}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_MAX_FILE_BYTES = 64 * 1024 * 1024
REQUEST_TIMEOUT = 20.0
RETRIES = Backoff(base=0.5, cap=10.0, attempts=4)
T = TypeVar("T")


class AptosInspectError(ValueError):
    """The target could not be read or fetched; the message names it and says what to fix."""


async def inspect_aptos(target: str, *, config: Config) -> list[Event]:
    """Events of the transaction(s) in file `target`, or of the transaction with that version or hash."""
    path = Path(target)
    if await asyncio.to_thread(path.is_file):
        return await asyncio.to_thread(inspect_file, path)
    if _VERSION.fullmatch(target) or _HASH.fullmatch(target):
        return await _inspect_remote(target, config=config)
    raise AptosInspectError(
        f"{target}: not a file, a ledger version (digits) or a transaction hash (0x + 64 hex digits)"
    )


def inspect_file(path: Path) -> list[Event]:
    """Parse a file holding REST transaction JSON; AptosInspectError when it is not that."""
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise AptosInspectError(f"{path}: larger than {_MAX_FILE_BYTES} bytes; not one transaction")
        raw = path.read_bytes()
    except OSError as exc:
        raise AptosInspectError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise AptosInspectError(f"{path}: not JSON ({exc})") from None
    return _parse(data, str(path), AptosParser())


def _parse(data: Any, where: str, parser: AptosParser) -> list[Event]:
    events = parser.parse_transaction(data)
    if not events and parser.rejected:
        reasons = ", ".join(sorted(parser.rejected))
        raise AptosInspectError(
            f"{where}: not an Aptos REST transaction this parser accepts (rejected: {reasons}); "
            "expected the JSON of GET /v1/transactions/by_version/{v}, an account-transactions page or a block"
        )
    return events


async def _inspect_remote(target: str, *, config: Config) -> list[Event]:
    if not config.aptos.nodes:
        raise AptosInspectError(
            f'{target}: fetching needs a node; set [aptos] nodes = ["https://…/v1"] in the config (-c)'
        )
    node = config.aptos.nodes[0].rstrip("/")
    rest = RestClient(node)
    headers: dict[str, str] = {}

    async def remember(response: httpx.Response) -> None:
        headers.clear()
        headers.update(response.headers)

    rest.client.event_hooks["response"].append(remember)
    try:
        if _HASH.fullmatch(target):
            tx = await _call(lambda: rest.transaction_by_hash(target), target, node, headers)
        else:
            tx = await _call(lambda: rest.transaction_by_version(int(target)), target, node, headers)
        events = _parse(tx, f"{target} from {node}", AptosParser())
        known = await _decimals(rest, events, node, headers)
        return _parse(tx, f"{target} from {node}", AptosParser(decimals=known.get))
    finally:
        await rest.close()  # type: ignore[no-untyped-call]


async def _call(fn: Callable[[], Awaitable[T]], target: str, node: str, headers: dict[str, str]) -> T:
    delays = RETRIES.delays()
    while True:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await fn()
        except ApiError as exc:
            if exc.status_code == 404:
                raise AptosInspectError(f"{target}: not found on {node}") from None
            if exc.status_code not in RETRYABLE_STATUS:
                raise AptosInspectError(f"{target}: {node} answered HTTP {exc.status_code}: {str(exc)[:200]}") from None
            problem = f"HTTP {exc.status_code}"
            wait = retry_after(headers)
        except (TimeoutError, httpx.TransportError) as exc:
            problem, wait = type(exc).__name__, None
        delay = next(delays, None)
        if delay is None:
            raise AptosInspectError(f"{target}: {node} kept failing ({problem}); try again later") from None
        delay = max(delay, wait or 0.0)
        log.info("aptos.inspect_retry", node=node, problem=problem, delay=round(delay, 2))
        await asyncio.sleep(delay)


async def _decimals(rest: RestClient, events: list[Event], node: str, headers: dict[str, str]) -> dict[str, int]:
    """Decimals of the events' assets from the node: CoinInfo<T> for a coin, Metadata for an FA."""
    assets: set[str] = set()
    for event in events:
        if isinstance(event, Swap):
            assets.update((event.mint_in, event.mint_out))
        elif isinstance(event, Transfer):
            assets.add(event.mint)
    known: dict[str, int] = {}
    for asset in sorted(assets - {APT}):
        try:
            if "::" in asset:
                owner = normalize_type(asset).split("::", 1)[0]
                resource = f"0x1::coin::CoinInfo<{asset}>"
            else:
                owner, resource = asset, "0x1::fungible_asset::Metadata"
            address = AccountAddress.from_str_relaxed(owner)
            found = await _call(functools.partial(rest.account_resource, address, resource), asset, node, headers)
            decimals = found.get("data", {}).get("decimals")
            if isinstance(decimals, int) and 0 <= decimals <= 255:
                known[asset] = decimals
        except (AptosInspectError, ResourceNotFound, AddressError, AttributeError) as exc:
            log.info("aptos.inspect_decimals_unknown", asset=asset, error=str(exc)[:200])
    return known
