"""A local Solana endpoint: JSON-RPC 2.0 over HTTP and the WebSocket pubsub, as mainnet speaks them.

It serves recorded transactions and accounts, executes sent transactions in LiteSVM and announces
what lands to logs/account/slot subscribers. Faults (429 + Retry-After, 5xx, delays, malformed
replies, dropped or refused WebSockets) are switched on through `node.faults` and `node.drop_connections()`.

    async with LocalSolana() as node:
        client = AsyncClient(node.http_url); ws = SolanaWsClient(node.ws_url)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import based58
import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from quantbot.clock import Clock, WallClock
from quantbot.localnet.solana_ledger import (
    Landed,
    RpcError,
    SolanaLedger,
    encode_account,
    pubkey_of,
    signature_of,
)

log = structlog.get_logger(component="localnet.solana")

API_VERSION = "2.3.6"
MAX_MULTIPLE_ACCOUNTS = 100
MAX_SIGNATURE_STATUSES = 256
RATE_LIMIT_MESSAGE = "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."

Handler = Callable[[list[Any]], Awaitable[object]]


@dataclass
class Faults:
    """Fault injection, read on every request. Counters count down as faults are served."""

    rate_limited: int = 0
    retry_after: str = "1"
    server_errors: int = 0
    server_error_status: int = 503
    malformed: int = 0
    rpc_errors: int = 0
    """Replies (HTTP 200) carrying a JSON-RPC error with `rpc_error_code` (counts down)."""
    rpc_error_code: int = -32429
    delay: float = 0.0
    refuse_ws: bool = False
    ws_rate_limited: int = 0
    """WebSocket upgrades to answer with 429 + Retry-After (counts down)."""
    only_methods: frozenset[str] = frozenset()
    """When non-empty, HTTP faults apply only to these JSON-RPC methods."""
    lost_answers: int = 0
    """Requests the node carries out but never answers: the connection drops before the reply (counts down)."""


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    subs: dict[int, tuple[str, Any]] = field(default_factory=dict)


class LocalSolana:
    """The node. `async with LocalSolana() as node:` listens on a free 127.0.0.1 port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, clock: Clock | None = None) -> None:
        self.host = host
        self.port = port
        self.clock = clock or WallClock()
        self.ledger = SolanaLedger(now=int(self.clock.now().timestamp()))
        self.faults = Faults()
        self.header_names: set[str] = set()
        """Every HTTP header name a client sent (a test checks what reached the node)."""
        self.commitment_lag: dict[str, int] = {}
        """Blocks a commitment level trails the newest ("processed") by, as getBlockHeight answers it."""
        self.calls: Counter[str] = Counter()
        self.ws_connections_total = 0
        self._conns: set[_Conn] = set()
        self._sub_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Handler] = {
            "getTransaction": self._get_transaction,
            "getSignaturesForAddress": self._get_signatures_for_address,
            "getAccountInfo": self._get_account_info,
            "getMultipleAccounts": self._get_multiple_accounts,
            "getBalance": self._get_balance,
            "getLatestBlockhash": self._get_latest_blockhash,
            "getSignatureStatuses": self._get_signature_statuses,
            "sendTransaction": self._send_transaction,
            "getTokenLargestAccounts": self._get_token_largest_accounts,
            "getTokenAccountsByOwner": self._get_token_accounts_by_owner,
            "getSlot": self._get_slot,
            "getBlockHeight": self._get_block_height,
            "getHealth": self._get_health,
            "getVersion": self._get_version,
        }

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> LocalSolana:
        app = web.Application()
        app.router.add_post("/", self._http)
        app.router.add_get("/", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server) and server.sockets  # noqa: S101  (started above)
        self.port = int(server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def slot(self) -> int:
        return self.ledger.slot

    # --- test API ----------------------------------------------------------------------------

    def add_transaction(self, response: Mapping[str, Any] | str | bytes) -> str:
        """Serve a recorded getTransaction response (or its result); return its signature."""
        return self.ledger.add_transaction(response).signature

    def load_transaction(self, path: Path) -> str:
        return self.add_transaction(path.read_bytes())

    def load_transactions(self, directory: Path) -> list[str]:
        """Serve every recorded getTransaction response in `directory` (`*gettransaction*.json`)."""
        return [self.load_transaction(p) for p in sorted(directory.glob("*gettransaction*.json"))]

    async def announce(self, signature: str) -> int:
        """Push the logs notification of a known transaction to matching subscribers; return how many."""
        landed = self.ledger.transaction(signature)
        if landed is None:
            raise KeyError(signature)
        return await self._notify_logs(landed)

    async def set_account(
        self,
        pubkey: str,
        *,
        data: bytes = b"",
        owner: str = "11111111111111111111111111111111",
        lamports: int | None = None,
    ) -> None:
        """Create or change an account (as if on chain) and notify its account subscribers."""
        self.ledger.set_account(pubkey, data=data, owner=owner, lamports=lamports)
        await self._notify_accounts([pubkey], self.ledger.next_slot())

    def set_account_response(self, pubkey: str, response: Mapping[str, Any] | str | bytes) -> None:
        """Load a recorded getAccountInfo response (base64 data) for `pubkey`."""
        data: Any = json.loads(response) if isinstance(response, str | bytes) else response
        value = data["result"]["value"]
        raw, enc = value["data"]
        blob = base64.b64decode(raw) if enc == "base64" else based58.b58decode(raw.encode())
        self.ledger.set_account(pubkey, data=blob, owner=value["owner"], lamports=value["lamports"])

    async def drop_connections(self, *, abrupt: bool = False) -> int:
        """Close every WebSocket (abrupt: tear the TCP connection down without a close frame)."""
        conns = list(self._conns)
        for conn in conns:
            if abrupt:
                conn.ws._writer.transport.abort()  # type: ignore[union-attr]  # no public abort in aiohttp
            else:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"node restarting")
        self._conns.difference_update(conns)
        return len(conns)

    async def push_raw(self, text: str) -> None:
        """Send a raw frame to every WebSocket client (malformed notifications, unknown methods)."""
        for conn in list(self._conns):
            await conn.ws.send_str(text)

    def subscriptions(self, method: str | None = None) -> list[tuple[str, Any]]:
        """Live subscriptions on all connections: (method, parameter)."""
        return [s for c in self._conns for s in c.subs.values() if method is None or s[0] == method]

    # --- HTTP --------------------------------------------------------------------------------

    async def _http(self, request: web.Request) -> web.StreamResponse:
        self.header_names.update(k.lower() for k in request.headers)
        text = await request.text()
        try:
            body: Any = json.loads(text)
        except ValueError:
            return web.json_response(_error(None, RpcError(-32700, "Parse error")))
        methods = (
            [b.get("method") for b in body if isinstance(b, dict)] if isinstance(body, list) else [body.get("method")]
        )
        fault = await self._fault(methods)
        if fault is not None:
            return fault
        if isinstance(body, list):
            reply = web.json_response([await self._call(item) for item in body])
        else:
            reply = web.json_response(await self._call(body))
        f = self.faults
        if f.lost_answers > 0 and (not f.only_methods or any(m in f.only_methods for m in methods)):
            f.lost_answers -= 1
            self.calls["lost_answer"] += 1
            if request.transport is not None:
                request.transport.close()  # done, but the caller never hears of it
        return reply

    async def _fault(self, methods: list[Any]) -> web.Response | None:
        f = self.faults
        if f.only_methods and not any(m in f.only_methods for m in methods):
            return None
        if f.delay > 0:
            await asyncio.sleep(f.delay)
        if f.rate_limited > 0:
            f.rate_limited -= 1
            self.calls["429"] += 1
            body = {"jsonrpc": "2.0", "error": {"code": 429, "message": RATE_LIMIT_MESSAGE}, "id": 1}
            return web.json_response(body, status=429, headers={"Retry-After": f.retry_after})
        if f.server_errors > 0:
            f.server_errors -= 1
            self.calls[str(f.server_error_status)] += 1
            return web.Response(status=f.server_error_status, text="upstream unavailable")
        if f.malformed > 0:
            f.malformed -= 1
            self.calls["malformed"] += 1
            return web.Response(status=200, text="<html>502 Bad Gateway</html>", content_type="application/json")
        if f.rpc_errors > 0:
            f.rpc_errors -= 1
            self.calls[f"rpc_error {f.rpc_error_code}"] += 1
            return web.json_response(_error(1, RpcError(f.rpc_error_code, "node is busy")))
        return None

    async def _call(self, req: Any) -> dict[str, Any]:
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return _error(req.get("id") if isinstance(req, dict) else None, RpcError(-32600, "Invalid request"))
        rid, method = req.get("id"), req["method"]
        handler = self._methods.get(method)
        if handler is None:
            return _error(rid, RpcError(-32601, "Method not found"))
        self.calls[method] += 1
        params = req.get("params") or []
        try:
            if not isinstance(params, list):
                raise RpcError(-32602, "Invalid params: expected an array")
            result = await handler(params)
        except RpcError as exc:
            return _error(rid, exc)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return _error(rid, RpcError(-32602, f"Invalid params: {exc}"))
        return {"jsonrpc": "2.0", "result": result, "id": rid}

    def _context(self, value: object) -> dict[str, Any]:
        return {"context": {"apiVersion": API_VERSION, "slot": self.ledger.slot}, "value": value}

    async def _get_transaction(self, params: list[Any]) -> object:
        config = _history_config(params)
        landed = self.ledger.transaction(signature_of(params[0]))
        if landed is None:
            return None
        max_version = config.get("maxSupportedTransactionVersion")
        return self.ledger.render(landed, encoding=config.get("encoding", "json"), max_version=max_version)

    async def _get_signatures_for_address(self, params: list[Any]) -> object:
        config = _history_config(params)
        before, until = config.get("before"), config.get("until")
        return self.ledger.signatures_for(
            pubkey_of(params[0]),
            before=signature_of(before) if before else None,
            until=signature_of(until) if until else None,
            limit=config.get("limit"),
        )

    def _account_value(self, pubkey: str, encoding: str) -> object:
        account = self.ledger.account(pubkey_of(pubkey))
        return None if account is None else encode_account(account, encoding)

    async def _get_account_info(self, params: list[Any]) -> object:
        encoding = _config(params, 1).get("encoding", "base58")
        return self._context(self._account_value(params[0], encoding))

    async def _get_multiple_accounts(self, params: list[Any]) -> object:
        keys = params[0]
        if len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise RpcError(-32602, f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        encoding = _config(params, 1).get("encoding", "base64")
        return self._context([self._account_value(k, encoding) for k in keys])

    async def _get_balance(self, params: list[Any]) -> object:
        account = self.ledger.account(pubkey_of(params[0]))
        return self._context(account.lamports if account else 0)

    async def _get_latest_blockhash(self, params: list[Any]) -> object:
        blockhash = str(self.ledger.svm.latest_blockhash())
        return self._context({"blockhash": blockhash, "lastValidBlockHeight": self.ledger.block_height + 150})

    async def _get_signature_statuses(self, params: list[Any]) -> object:
        sigs = params[0]
        if len(sigs) > MAX_SIGNATURE_STATUSES:
            raise RpcError(-32602, f"Too many inputs provided; max {MAX_SIGNATURE_STATUSES}")
        return self._context([self.ledger.status(signature_of(s)) for s in sigs])

    async def _send_transaction(self, params: list[Any]) -> object:
        config = _config(params, 1)
        encoded = params[0]
        encoding = config.get("encoding", "base58")
        try:
            text = str(encoded).encode()
            raw = base64.b64decode(text, validate=True) if encoding == "base64" else based58.b58decode(text)
        except ValueError:
            raise RpcError(-32602, f"invalid transaction: invalid {encoding} encoding") from None
        self.ledger.now = int(self.clock.now().timestamp())
        skip_preflight = bool(config.get("skipPreflight", False))
        try:
            landed = self.ledger.send(raw, skip_preflight=skip_preflight)
        except RpcError as exc:
            if not (skip_preflight and isinstance(exc.data, dict) and exc.data.get("err") == "BlockhashNotFound"):
                raise
            # Without preflight mainnet takes it, forwards it and the leader drops it: a signature, never a status.
            self.calls["dropped"] += 1
            return str(VersionedTransaction.from_bytes(raw).signatures[0])
        log.debug("localnet.landed", signature=landed.signature, slot=landed.slot, err=landed.err)
        await self._notify_slot(landed.slot)
        await self._notify_logs(landed)
        await self._notify_accounts(list(landed.writable), landed.slot)
        return landed.signature

    async def _get_token_largest_accounts(self, params: list[Any]) -> object:
        return self._context(self.ledger.token_largest(pubkey_of(params[0])))

    async def _get_token_accounts_by_owner(self, params: list[Any]) -> object:
        owner, selector = pubkey_of(params[0]), params[1]
        encoding = _config(params, 2).get("encoding", "base64")
        if not isinstance(selector, dict) or not ({"mint", "programId"} & selector.keys()):
            raise RpcError(-32602, "Invalid params: expected a {mint} or {programId} filter")
        return self._context(
            [
                {"pubkey": address, "account": encode_account(account, encoding)}
                for address, account in self.ledger.token_accounts(
                    owner, mint=selector.get("mint"), program=selector.get("programId")
                )
            ]
        )

    async def _get_slot(self, params: list[Any]) -> object:
        return self.ledger.slot

    async def _get_block_height(self, params: list[Any]) -> object:
        config = params[0] if params and isinstance(params[0], dict) else {}
        lag = self.commitment_lag.get(str(config.get("commitment", "finalized")), 0)
        return self.ledger.block_height - lag

    async def _get_health(self, params: list[Any]) -> object:
        return "ok"

    async def _get_version(self, params: list[Any]) -> object:
        return {"feature-set": 0, "solana-core": API_VERSION}

    # --- WebSocket ---------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.faults.ws_rate_limited > 0:
            self.faults.ws_rate_limited -= 1
            self.calls["ws_429"] += 1
            return web.Response(status=429, text="Too many requests", headers={"Retry-After": self.faults.retry_after})
        if self.faults.refuse_ws:
            self.calls["ws_refused"] += 1
            return web.Response(status=503, text="websocket unavailable")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _Conn(ws)
        self._conns.add(conn)
        self.ws_connections_total += 1
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await ws.send_str(json.dumps(self._ws_call(conn, msg.data)))
        finally:
            self._conns.discard(conn)
        return ws

    def _ws_call(self, conn: _Conn, text: str) -> dict[str, Any]:
        try:
            req = json.loads(text)
        except ValueError:
            return _error(None, RpcError(-32700, "Parse error"))
        if not isinstance(req, dict):
            return _error(None, RpcError(-32600, "Invalid request"))
        rid, method, params = req.get("id"), req.get("method"), req.get("params") or []
        self.calls[f"ws:{method}"] += 1
        try:
            if method == "logsSubscribe":
                return _result(rid, self._subscribe(conn, "logs", _logs_filter(params[0] if params else None)))
            if method == "accountSubscribe":
                encoding = _config(params, 1).get("encoding", "base58")
                return _result(rid, self._subscribe(conn, "account", (pubkey_of(params[0]), encoding)))
            if method == "slotSubscribe":
                return _result(rid, self._subscribe(conn, "slot", None))
            if method in ("logsUnsubscribe", "accountUnsubscribe", "slotUnsubscribe"):
                kind = method.removesuffix("Unsubscribe")
                sub = conn.subs.get(int(params[0]))
                if sub is None or sub[0] != kind:
                    raise RpcError(-32602, "Invalid subscription id.")
                del conn.subs[int(params[0])]
                return _result(rid, True)
        except RpcError as exc:
            return _error(rid, exc)
        except (IndexError, TypeError, ValueError) as exc:
            return _error(rid, RpcError(-32602, f"Invalid params: {exc}"))
        return _error(rid, RpcError(-32601, "Method not found"))

    def _subscribe(self, conn: _Conn, kind: str, param: Any) -> int:
        sub_id = next(self._sub_ids)
        conn.subs[sub_id] = (kind, param)
        return sub_id

    async def _send_each(self, kind: str, build: Callable[[Any], dict[str, Any] | None]) -> int:
        sent = 0
        for conn in list(self._conns):
            for sub_id, (k, param) in list(conn.subs.items()):
                if k != kind:
                    continue
                result = build(param)
                if result is None:
                    continue
                note = {
                    "jsonrpc": "2.0",
                    "method": f"{kind}Notification",
                    "params": {"result": result, "subscription": sub_id},
                }
                try:
                    await conn.ws.send_str(json.dumps(note))
                    sent += 1
                except (ConnectionError, RuntimeError):
                    self._conns.discard(conn)
                    break
        return sent

    async def _notify_logs(self, landed: Landed) -> int:
        def build(mentions: str | None) -> dict[str, Any] | None:
            if mentions is not None and mentions not in landed.addresses:
                return None
            value = {"signature": landed.signature, "err": landed.err, "logs": landed.logs}
            return {"context": {"slot": landed.slot}, "value": value}

        return await self._send_each("logs", build)

    async def _notify_accounts(self, pubkeys: list[str], slot: int) -> int:
        def build(param: tuple[str, str]) -> dict[str, Any] | None:
            pubkey, encoding = param
            account = self.ledger.account(pubkey) if pubkey in pubkeys else None
            return None if account is None else {"context": {"slot": slot}, "value": encode_account(account, encoding)}

        return await self._send_each("account", build)

    async def _notify_slot(self, slot: int) -> int:
        root = max(self.ledger.genesis_slot, slot - 32)
        return await self._send_each("slot", lambda _: {"parent": slot - 1, "root": root, "slot": slot})


def _config(params: list[Any], index: int) -> dict[str, Any]:
    config = params[index] if len(params) > index else None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise RpcError(-32602, f"Invalid params: expected a config object at position {index}")
    return config


def _history_config(params: list[Any]) -> dict[str, Any]:
    """The config of a history method (getTransaction, getSignaturesForAddress): agave refuses `processed`,
    since a processed slot may sit on a fork that is abandoned."""
    config = _config(params, 1)
    if config.get("commitment") == "processed":
        raise RpcError(-32602, "Method does not support commitment below `confirmed`")
    return config


def _logs_filter(raw: object) -> str | None:
    """None for `all`/`allWithVotes`; the one mentioned address otherwise (mainnet allows exactly one)."""
    if raw in ("all", "allWithVotes"):
        return None
    if isinstance(raw, dict) and isinstance(raw.get("mentions"), list):
        mentions = raw["mentions"]
        if len(mentions) != 1:
            raise RpcError(-32602, "Invalid Request: Only 1 address supported")
        return str(Pubkey.from_string(mentions[0]))
    raise RpcError(-32602, "Invalid params: unrecognized logs filter")


def _result(rid: object, result: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": rid}


def _error(rid: object, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": exc.body(), "id": rid}
