"""Solana RPC pool: solana-py AsyncClients over the configured endpoints, with failover.

Each call goes to the preferred endpoint (the last one that answered), under a per-request
timeout and the endpoint's requests-per-second limit (solana-py's own limiter). Timeouts,
transport errors, 5xx, malformed replies and node-health errors fail over to the next endpoint;
HTTP 429 parks the endpoint for its Retry-After. When every endpoint failed, the pool waits
(jittered backoff, at least until the earliest Retry-After) and tries another round.
Deterministic node answers (bad params, preflight failure) raise `SolanaRpcError` at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx2
import msgspec
import structlog
from pydantic import TypeAdapter, ValidationError
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException
from solana.rpc.jsonrpc import JsonRpcRequest, JsonRpcResponseEnvelope, SolanaJsonRpcError
from solana.rpc.models import TxOpts
from solders.errors import SerdeJSONError
from solders.pubkey import Pubkey
from solders.signature import Signature

from quantbot.chains.solana.transport import AiohttpTransport
from quantbot.clock import Clock
from quantbot.config import SolanaEndpointConfig
from quantbot.retry import RETRYABLE_STATUS, Backoff, retry_after

log = structlog.get_logger(component="solana.rpc")

T = TypeVar("T")

MAX_MULTIPLE_ACCOUNTS = 100
MAX_SIGNATURE_STATUSES = 256
MAX_LARGEST_ACCOUNTS = 20
"""getTokenLargestAccounts answers with at most this many accounts."""
# Node-side JSON-RPC errors that say "this node, now" rather than "this request": try elsewhere.
RATE_LIMIT_RPC_CODES = frozenset({429, -32429})
"""JSON-RPC error codes providers use for "too many requests" in an HTTP 200 answer: the endpoint is parked."""
RETRYABLE_RPC_CODES = frozenset({-32603, -32004, -32005, -32014, -32016, -32019}) | RATE_LIMIT_RPC_CODES
_RETRYABLE_TYPED = (
    "NodeUnhealthy",
    "BlockNotAvailable",
    "BlockStatusNotAvailableYet",
    "MinContextSlotNotReached",
    "InternalError",
    "LongTerm",
)


class SolanaRpcError(Exception):
    """The node answered, and the answer is an error that another endpoint would repeat."""


class RpcUnavailable(Exception):
    """Every endpoint failed for every attempt."""


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    signature: str
    slot: int
    err: object
    block_time: int | None


@dataclass(frozen=True, slots=True)
class AccountData:
    address: str
    owner: str
    lamports: int
    data: bytes
    executable: bool
    slot: int


@dataclass(frozen=True, slots=True)
class TokenHolding:
    address: str
    amount: int
    decimals: int


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    slot: int
    err: object
    confirmation_status: str | None


@dataclass(frozen=True, slots=True)
class Blockhash:
    blockhash: str
    last_valid_block_height: int


@dataclass
class EndpointHealth:
    """Counters for one endpoint, as /metrics shows them (no URL query: it may hold an API key)."""

    name: str
    requests: int = 0
    errors: int = 0
    timeouts: int = 0
    rate_limited: int = 0
    failovers: int = 0
    latency_total: float = 0.0
    latency_max: float = 0.0
    last_error: str = ""
    cooldown_until: float = field(default=0.0, repr=False)

    def as_dict(self) -> dict[str, Any]:
        ok = self.requests - self.errors
        return {
            "requests": self.requests,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "rate_limited": self.rate_limited,
            "failovers": self.failovers,
            "latency_avg_s": self.latency_total / ok if ok > 0 else 0.0,
            "latency_max_s": self.latency_max,
            "last_error": self.last_error,
        }


def endpoint_name(index: int, url: str) -> str:
    """`0:host:port` (never the path or query, where providers put API keys)."""
    parts = urlsplit(url)
    return f"{index}:{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def url_secrets(endpoints: Sequence[SolanaEndpointConfig]) -> list[str]:
    """The parts of configured URLs that may hold an API key (path, query), longest first."""
    found: set[str] = set()
    for e in endpoints:
        for url in (e.http, ws_url_of(e)):
            parts = urlsplit(url)
            found.update(p for p in (parts.query, parts.path.strip("/")) if len(p) > 1)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every URL path and query of the configured endpoints masked."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def ws_url_of(endpoint: SolanaEndpointConfig) -> str:
    """The pubsub URL: configured, else the HTTP URL with ws(s) scheme (port 8899 -> 8900, as validators do)."""
    if endpoint.ws:
        return endpoint.ws
    parts = urlsplit(endpoint.http)
    scheme = "wss" if parts.scheme == "https" else "ws"
    netloc = parts.netloc
    if parts.port == 8899:
        netloc = netloc.replace(":8899", ":8900")
    return parts._replace(scheme=scheme, netloc=netloc).geturl()


class _Endpoint:
    def __init__(self, index: int, config: SolanaEndpointConfig, commitment: Commitment) -> None:
        self.config = config
        self.health = EndpointHealth(endpoint_name(index, config.http))
        self.client = AsyncClient(
            config.http,
            commitment=commitment,
            timeout=config.timeout,
            rate_limit=config.rps,
            max_transport_retries=0,  # the pool retries, on another endpoint
        )
        # solana-py builds its own httpx2 client; the same client over a faster transport (see transport.py).
        default = self.client._provider.session
        self.client._provider.session = httpx2.AsyncClient(
            transport=AiohttpTransport(),
            timeout=httpx2.Timeout(config.timeout),
            headers=default.headers,
        )


class SolanaRpcPool:
    """Failover pool of Solana RPC endpoints. Build, `await start()`, call methods, `await stop()`."""

    name = "solana-rpc"

    def __init__(
        self,
        *,
        endpoints: Sequence[SolanaEndpointConfig],
        clock: Clock,
        commitment: str = "confirmed",
        rounds: int = 3,
        backoff: Backoff | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("SolanaRpcPool needs at least one endpoint")
        self.clock = clock
        self.commitment = Commitment(commitment)
        self.rounds = rounds
        self.backoff = backoff or Backoff(base=0.25, cap=5.0)
        self._configs = tuple(endpoints)
        self._secrets = url_secrets(self._configs)
        self._endpoints: list[_Endpoint] = []
        self._preferred = 0

    async def start(self) -> None:
        self._endpoints = [_Endpoint(i, c, self.commitment) for i, c in enumerate(self._configs)]

    async def stop(self) -> None:
        endpoints, self._endpoints = self._endpoints, []
        for ep in endpoints:
            await ep.client.close()

    async def __aenter__(self) -> SolanaRpcPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def ws_urls(self) -> list[str]:
        """Pubsub URLs, preferred endpoint first."""
        return [url for _, url in self.ws_endpoints()]

    def ws_endpoints(self) -> list[tuple[str, str]]:
        """(endpoint name, pubsub URL), preferred endpoint first."""
        n = len(self._configs)
        order = [(self._preferred + i) % n for i in range(n)]
        return [(endpoint_name(i, self._configs[i].http), ws_url_of(self._configs[i])) for i in order]

    def scrub(self, text: str) -> str:
        """Mask endpoint paths and queries (API keys) in text bound for logs or errors."""
        return scrub(text, self._secrets)

    def health(self) -> dict[str, dict[str, Any]]:
        return {ep.health.name: ep.health.as_dict() for ep in self._endpoints}

    # --- the failover loop -------------------------------------------------------------------

    async def call(self, method: str, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """Run `fn(client)` on endpoints in turn until one answers; see the module docstring."""
        endpoints = self._endpoints  # this call's list: a stop() meanwhile closes the clients, not the indices
        if not endpoints:
            raise RuntimeError("SolanaRpcPool is not started")
        last = "no endpoint tried"
        n = len(endpoints)
        for attempt in range(self.rounds):
            start = self._preferred
            for offset in range(n):
                if self._endpoints is not endpoints:
                    raise RpcUnavailable(f"{method}: the pool was stopped ({last})")
                index = (start + offset) % n
                ep = endpoints[index]
                if ep.health.cooldown_until > self.clock.monotonic():
                    continue
                began = self.clock.monotonic()
                ep.health.requests += 1
                try:
                    async with asyncio.timeout(ep.config.timeout):
                        result = await fn(ep.client)
                except TimeoutError:
                    ep.health.timeouts += 1
                    last = self._failed(ep, method, "timeout")
                except SolanaRpcException as exc:
                    last = self._failed(ep, method, self._http_failure(ep, exc))
                except (httpx2.HTTPError, OSError, SerdeJSONError, ValidationError) as exc:
                    last = self._failed(ep, method, f"{type(exc).__name__}: {exc}"[:200])
                except SolanaJsonRpcError as exc:
                    if exc.code not in RETRYABLE_RPC_CODES:
                        self._answered(ep, index, began)
                        raise SolanaRpcError(self.scrub(f"{method}: {exc.code} {exc.message}")) from exc
                    last = self._failed(ep, method, f"rpc error {exc.code}: {exc.message}"[:200])
                    self._park_if_rate_limited(ep, exc.code)
                except RPCException as exc:
                    detail = str(exc)
                    if not any(marker in detail for marker in _RETRYABLE_TYPED):
                        self._answered(ep, index, began)
                        raise SolanaRpcError(self.scrub(f"{method}: {detail}")) from exc
                    last = self._failed(ep, method, detail[:200])
                except BaseException as exc:
                    if type(exc).__name__ != "PanicException":
                        raise
                    # solders panics on some malformed replies (an error without `data`): that node's fault
                    last = self._failed(ep, method, f"malformed reply: {exc}"[:200])
                else:
                    if not isinstance(result, int) or isinstance(result, bool):
                        self._answered(ep, index, began)
                        return result
                    # solders hands back an error code it does not recognise as a bare int, not a response
                    last = self._failed(ep, method, f"rpc error {result} (unrecognised)")
                    self._park_if_rate_limited(ep, result)
                if n > 1:
                    ep.health.failovers += 1
            wait = self.backoff.delay(attempt)
            cooling = [ep.health.cooldown_until for ep in endpoints if ep.health.cooldown_until]
            if cooling:
                wait = max(wait, min(cooling) - self.clock.monotonic())
            if attempt + 1 < self.rounds:
                log.warning("rpc.all_endpoints_failed", method=method, attempt=attempt + 1, wait_s=round(wait, 3))
                await self.clock.sleep(wait)
        raise RpcUnavailable(f"{method}: every Solana endpoint failed ({last})")

    def _answered(self, ep: _Endpoint, index: int, began: float) -> None:
        latency = self.clock.monotonic() - began
        ep.health.latency_total += latency
        ep.health.latency_max = max(ep.health.latency_max, latency)
        self._preferred = index

    def _failed(self, ep: _Endpoint, method: str, reason: str) -> str:
        reason = self.scrub(reason)
        ep.health.errors += 1
        ep.health.last_error = reason
        log.warning("rpc.request_failed", endpoint=ep.health.name, method=method, reason=reason)
        return reason

    def _park_if_rate_limited(self, ep: _Endpoint, code: int) -> None:
        """A rate-limit answer in JSON-RPC (no Retry-After to read): park the endpoint for a backoff."""
        if code in RATE_LIMIT_RPC_CODES:
            self._park(ep, None)

    def _park(self, ep: _Endpoint, wait: float | None) -> float:
        """Count a rate limit and leave `ep` alone for `wait` seconds (a backoff when the node gave none)."""
        ep.health.rate_limited += 1
        wait = self.backoff.delay(ep.health.rate_limited) if wait is None else wait
        ep.health.cooldown_until = self.clock.monotonic() + wait
        return wait

    def _http_failure(self, ep: _Endpoint, exc: SolanaRpcException) -> str:
        cause = exc.__cause__
        if isinstance(cause, httpx2.HTTPStatusError):
            status = cause.response.status_code
            if status == 429:
                wait = self._park(ep, retry_after(cause.response.headers, now=self.clock.now()))
                return f"HTTP 429, retry after {wait:.3g}s"
            return f"HTTP {status}" + ("" if status in RETRYABLE_STATUS else " (not retryable)")
        return f"{type(cause).__name__}: {cause}"[:200]

    # --- methods -----------------------------------------------------------------------------

    async def get_transaction(self, signature: str, *, encoding: str = "jsonParsed") -> dict[str, Any] | None:
        """The raw `getTransaction` result (None if unknown), for the parser.

        Fetched as plain JSON rather than solders' typed response: the parser reads the wire
        shape (jsonParsed instructions, meta fields solders may not model, e.g. `costUnits`),
        and a typed round-trip would drop or rename what it does not know.
        """
        params = [
            signature,
            {"encoding": encoding, "commitment": str(self.commitment), "maxSupportedTransactionVersion": 0},
        ]
        request = JsonRpcRequest(method="getTransaction", params=params)
        return await self.call("getTransaction", lambda c: _object_result(c, request))

    async def get_signatures_for_address(
        self, address: str, *, before: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[SignatureInfo]:
        """Newest first; `until` excluded; at most `limit` (<= 1000)."""
        pubkey = Pubkey.from_string(address)
        b = Signature.from_string(before) if before else None
        u = Signature.from_string(until) if until else None
        resp = await self.call(
            "getSignaturesForAddress", lambda c: c.get_signatures_for_address(pubkey, before=b, until=u, limit=limit)
        )
        return [
            SignatureInfo(
                signature=str(s.signature),
                slot=s.slot,
                err=None if s.err is None else str(s.err),
                block_time=s.block_time,
            )
            for s in resp.value
        ]

    async def get_account_info(self, address: str) -> AccountData | None:
        pubkey = Pubkey.from_string(address)
        resp = await self.call("getAccountInfo", lambda c: c.get_account_info(pubkey, encoding="base64"))
        v = resp.value
        if v is None:
            return None
        return AccountData(address, str(v.owner), v.lamports, bytes(v.data), v.executable, resp.context.slot)

    async def get_multiple_accounts(self, addresses: Sequence[str]) -> list[AccountData | None]:
        out: list[AccountData | None] = []
        for i in range(0, len(addresses), MAX_MULTIPLE_ACCOUNTS):
            chunk = list(addresses[i : i + MAX_MULTIPLE_ACCOUNTS])
            keys = [Pubkey.from_string(a) for a in chunk]
            resp = await self.call("getMultipleAccounts", lambda c, k=keys: c.get_multiple_accounts(k))  # type: ignore[misc]
            slot = resp.context.slot
            out += [
                None if v is None else AccountData(a, str(v.owner), v.lamports, bytes(v.data), v.executable, slot)
                for a, v in zip(chunk, resp.value, strict=True)
            ]
        return out

    async def get_token_largest_accounts(self, mint: str) -> list[TokenHolding]:
        pubkey = Pubkey.from_string(mint)
        resp = await self.call("getTokenLargestAccounts", lambda c: c.get_token_largest_accounts(pubkey))
        return [TokenHolding(str(a.address), int(a.amount.amount), a.amount.decimals) for a in resp.value]

    async def get_signature_statuses(self, signatures: Sequence[str]) -> list[SignatureStatus | None]:
        out: list[SignatureStatus | None] = []
        for i in range(0, len(signatures), MAX_SIGNATURE_STATUSES):
            sigs = [Signature.from_string(s) for s in signatures[i : i + MAX_SIGNATURE_STATUSES]]
            resp = await self.call(
                "getSignatureStatuses",
                lambda c, s=sigs: c.get_signature_statuses(s, search_transaction_history=True),  # type: ignore[misc]
            )
            out += [
                None
                if v is None
                else SignatureStatus(
                    v.slot,
                    None if v.err is None else str(v.err),
                    None if v.confirmation_status is None else str(v.confirmation_status).rsplit(".", 1)[-1].lower(),
                )
                for v in resp.value
            ]
        return out

    async def get_latest_blockhash(self) -> Blockhash:
        resp = await self.call("getLatestBlockhash", lambda c: c.get_latest_blockhash())
        return Blockhash(str(resp.value.blockhash), resp.value.last_valid_block_height)

    async def get_balance(self, address: str) -> int:
        pubkey = Pubkey.from_string(address)
        resp = await self.call("getBalance", lambda c: c.get_balance(pubkey))
        return int(resp.value)

    async def get_slot(self) -> int:
        resp = await self.call("getSlot", lambda c: c.get_slot())
        return int(resp.value)

    async def send_raw_transaction(self, raw: bytes, *, skip_preflight: bool = False) -> str:
        """Send signed bytes; the signature. Re-sending the same bytes elsewhere is safe (same signature)."""
        opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=self.commitment, max_retries=0)
        resp = await self.call("sendTransaction", lambda c: c.send_raw_transaction(raw, opts=opts))
        return str(resp.value)


class _Envelope(msgspec.Struct):
    jsonrpc: Literal["2.0"]
    id: str | int
    result: Any = msgspec.UNSET
    error: Any = None


_envelope = msgspec.json.Decoder(_Envelope)


async def _object_result(client: AsyncClient, request: JsonRpcRequest) -> dict[str, Any] | None:
    """`send_rpc_request(request, dict[str, Any] | None)`, with the JSON decoded once by msgspec.

    solana-py validates the reply through a pydantic envelope and then a TypeAdapter it builds on
    every call (~0.1 ms for a transaction here). Anything but a plain object-or-null result (an
    error, a malformed reply) goes through solana-py's own parsing, so it raises what it always raised.
    """
    text = await client._provider.make_request_unparsed(request)
    try:
        envelope = _envelope.decode(text)
    except msgspec.DecodeError:
        envelope = None
    if envelope is not None and envelope.error is None and isinstance(envelope.result, dict | None):
        return envelope.result
    result: dict[str, Any] | None = TypeAdapter(dict[str, Any] | None).validate_python(
        JsonRpcResponseEnvelope.model_validate_json(text).unwrap_result(method=request.method)
    )
    return result
