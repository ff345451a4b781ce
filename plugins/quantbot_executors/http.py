"""HTTP and Solana JSON-RPC calls for the live executors: one aiohttp session, timeouts, backoff, Retry-After.

Every call has a timeout; 429 and the retryable 5xx statuses (and transport errors) are retried with
quantbot's shared Backoff, waiting at least what Retry-After asks. A JSON-RPC error in a 200 answer
is the node's deliberate refusal and is raised at once as `RpcRefused`.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from quantbot.api import RETRYABLE_STATUS, Backoff, Clock, retry_after


def where(url: str) -> str:
    """`scheme://host[:port]` of a URL: never its path or query, where providers put API keys (errors travel far:
    order details, the bus, MQTT, logs)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


class HttpFailed(Exception):
    """Every attempt failed (transport errors, timeouts, retryable statuses): the outcome is unknown."""


class HttpBusy(HttpFailed):
    """The last attempt was answered "not now" (429): the request was not taken. `wait`: its Retry-After."""

    def __init__(self, message: str, *, status: int, wait: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.wait = wait


BUSY_STATUS = frozenset({429})
"""Answers that say the request was not taken (rate limited). A 5xx may come from a proxy after the node took and
forwarded a sendTransaction (some answer 503 for an upstream timeout), so those leave a try's fate unknown."""


class HttpRefused(Exception):
    """The peer answered with a non-retryable status: it deliberately refused the request."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class RpcRefused(Exception):
    """The node answered the JSON-RPC call with an error object."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class Http:
    """Requests with timeout and retries. `attempts` counts tries in all (1 = no retry)."""

    def __init__(
        self, *, clock: Clock, timeout: float, attempts: int, backoff: Backoff, headers: dict[str, str] | None = None
    ) -> None:
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.attempts = attempts
        self.backoff = backoff
        self.headers = headers or {}
        self.session: aiohttp.ClientSession | None = None
        self.retries = 0

    async def start(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: object = None,
        attempts: int | None = None,
    ) -> tuple[bytes, str]:
        """(body, content type) of the first acceptable answer; HttpRefused / HttpFailed otherwise.
        `attempts` overrides the configured number of tries for this request."""
        if self.session is None:
            raise RuntimeError("Http used before start()")
        data = msgspec.json.encode(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        last = "no attempt made"
        tries = self.attempts if attempts is None else attempts
        for attempt in itertools.count():
            wait: float | None = None
            busy: int | None = None
            try:
                async with self.session.request(method, url, params=params, data=data, headers=headers) as resp:
                    body = await resp.read()
                    if resp.status < 300:
                        return body, resp.content_type
                    text = body.decode(errors="replace")
                    if resp.status not in RETRYABLE_STATUS:
                        raise HttpRefused(resp.status, text)
                    last = f"HTTP {resp.status}"
                    wait = retry_after(resp.headers)
                    busy = resp.status if resp.status in BUSY_STATUS else None
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt + 1 >= tries:
                message = f"{method} {where(url)}: {last} after {tries} attempts"
                if busy is not None:
                    raise HttpBusy(message, status=busy, wait=wait)
                raise HttpFailed(message)
            self.retries += 1
            await self.clock.sleep(max(wait or 0.0, self.backoff.delay(attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        body, _ = await self.request(method, url, **kwargs)
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise HttpFailed(f"{method} {where(url)}: answer is not JSON: {body[:120]!r}") from None


class SolanaRpc:
    """Solana JSON-RPC 2.0 over `Http`."""

    def __init__(self, http: Http, url: str) -> None:
        self.http = http
        self.url = url
        self._ids = itertools.count(1)

    async def call(self, method: str, params: list[Any], *, attempts: int | None = None) -> Any:
        rid = next(self._ids)
        body = await self.http.json(
            "POST", self.url, json={"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, attempts=attempts
        )
        if not isinstance(body, dict):
            raise HttpFailed(f"{method}: malformed JSON-RPC answer")
        err = body.get("error")
        if err is not None:
            if isinstance(err, dict):
                raise RpcRefused(int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
            raise RpcRefused(0, str(err))
        if "result" not in body:
            raise HttpFailed(f"{method}: JSON-RPC answer without result")
        return body["result"]

    async def block_height(self, commitment: str) -> int:
        return int(await self.call("getBlockHeight", [{"commitment": commitment}]))

    async def signature_status(self, signature: str) -> dict[str, Any] | None:
        result = await self.call("getSignatureStatuses", [[signature], {"searchTransactionHistory": True}])
        value = result["value"][0]
        return value if isinstance(value, dict) else None

    async def transaction(self, signature: str, commitment: str) -> dict[str, Any] | None:
        config = {"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": commitment}
        result = await self.call("getTransaction", [signature, config])
        return result if isinstance(result, dict) else None

    async def send(self, raw_base64: str, *, skip_preflight: bool, max_retries: int | None, commitment: str) -> str:
        """sendTransaction, retried with the same bytes (one signature: it can land only once).

        RpcRefused means the node refused this transaction and did not forward it, which holds only while no
        earlier try's fate is unknown: once one went unanswered (the node may have taken and forwarded it), a
        refusal of the copy ("already processed", or a preflight failing because the first copy already moved the
        balances) proves nothing, and HttpFailed says so. A refusal as already processed is never a refusal."""
        config: dict[str, Any] = {"encoding": "base64", "skipPreflight": skip_preflight}
        if not skip_preflight:
            config["preflightCommitment"] = commitment
        if max_retries is not None:
            config["maxRetries"] = max_retries
        unanswered: HttpFailed | None = None
        for attempt in itertools.count():
            wait: float | None = None
            try:
                return str(await self.call("sendTransaction", [raw_base64, config], attempts=1))
            except HttpBusy as exc:  # answered "not now" (429): not taken, so this try changes nothing
                wait = exc.wait
                if attempt + 1 >= self.http.attempts:
                    if unanswered is not None:
                        raise HttpFailed(f"{exc}, after a try whose fate is unknown ({unanswered})") from exc
                    raise
            except HttpFailed as exc:
                unanswered = exc
                if attempt + 1 >= self.http.attempts:
                    raise
            except RpcRefused as exc:
                if unanswered is None and not _already_processed(exc):
                    raise
                raise HttpFailed(f"sendTransaction: {exc}, after a try whose fate is unknown ({unanswered})") from exc
            self.http.retries += 1
            await self.http.clock.sleep(max(wait or 0.0, self.http.backoff.delay(attempt)))
        raise AssertionError("unreachable")  # pragma: no cover


def _already_processed(exc: RpcRefused) -> bool:
    """The node has this signature already (it landed, or is being processed): the transaction was taken."""
    return "AlreadyProcessed" in f"{exc.message} {exc.data}" or "already been processed" in exc.message
