"""A local Aptos fullnode REST API v1 endpoint on 127.0.0.1, for tests and development.

Speaks the real wire format (JSON shapes, `X-Aptos-*` headers, error bodies
`{"message","error_code","vm_error_code"}`), verifies real signed BCS submissions, serves
recorded mainnet transactions renumbered into its own ledger, and injects faults (429 with
Retry-After, 5xx, malformed JSON, delays) so clients can be tested against a misbehaving peer.

    async with AptosLocalNode(router=RouterSwap(...)) as node:
        node.fund(address, 10**8)
        rest = RestClient(node.url)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

from aiohttp import web
from aptos_sdk.account import Account
from aptos_sdk.account_address import AccountAddress
from aptos_sdk.bcs import Serializer
from aptos_sdk.ed25519 import PrivateKey
from aptos_sdk.transactions import (
    EntryFunction,
    RawTransaction,
    SignedTransaction,
    TransactionArgument,
    TransactionPayload,
)

from quantbot.clock import Clock, WallClock
from quantbot.localnet.aptos_http import Fault, take_fault
from quantbot.localnet.aptos_http import api_error as _error
from quantbot.localnet.aptos_ledger import Ledger, RouterSwap, ValidationError
from quantbot.localnet.aptos_state import APT, CORE_RESOURCES, addr_long, addr_short, type_short
from quantbot.localnet.aptos_wire import auth_key, decode_signed, signed_from_json

BCS_SIGNED = "application/x.aptos.signed_transaction+bcs"
MAX_PAGE = 100
DEFAULT_PAGE = 25

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AptosLocalNode:
    """The fullnode REST API v1 over a `Ledger`; an async context manager bound to a free port."""

    name = "aptos-localnet"

    def __init__(
        self,
        *,
        chain_id: int = 4,
        clock: Clock | None = None,
        router: RouterSwap | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        wait_by_hash_timeout: float = 1.0,
        ledger: Ledger | None = None,
        prunes_below: int = 0,
    ) -> None:
        """`ledger`: serve an existing node's ledger (a second fullnode of the same chain, for failover).
        `prunes_below`: this node no longer serves versions below it (a pruning fullnode beside an archive)."""
        shared = ledger is not None
        self.prunes_below = prunes_below
        self.ledger = ledger or Ledger(clock=clock or WallClock(), chain_id=chain_id, router=router)
        self.host = host
        self.port = port
        self.wait_by_hash_timeout = wait_by_hash_timeout
        self.faults: list[Fault] = []
        self.hits: Counter[str] = Counter()
        """Requests served, by route (`GET /transactions`), faults included."""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._committed = asyncio.Condition()
        if shared:
            self._faucet = self.ledger.faucet
        else:
            faucet_key = PrivateKey.random()
            self._faucet = self.ledger.faucet = Account(AccountAddress.from_str_relaxed(CORE_RESOURCES), faucet_key)
            self.ledger.set_balance(CORE_RESOURCES, APT, 10**18)
            core = self.ledger.state.accounts[CORE_RESOURCES]
            core.authentication_key = auth_key(faucet_key.public_key())

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL ending in /v1, as clients are configured."""
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/v1", self._ledger_info)
        r.add_get("/v1/", self._ledger_info)
        r.add_get("/v1/-/healthy", self._healthy)
        r.add_get("/v1/estimate_gas_price", self._gas_price)
        r.add_get("/v1/transactions", self._transactions)
        r.add_post("/v1/transactions", self._submit)
        r.add_post("/v1/transactions/simulate", self._simulate)
        r.add_get("/v1/transactions/by_version/{version}", self._by_version)
        r.add_get("/v1/transactions/by_hash/{hash}", self._by_hash)
        r.add_get("/v1/transactions/wait_by_hash/{hash}", self._wait_by_hash)
        r.add_get("/v1/accounts/{address}", self._account)
        r.add_get("/v1/accounts/{address}/transactions", self._account_transactions)
        r.add_get("/v1/accounts/{address}/resources", self._resources)
        r.add_get("/v1/accounts/{address}/resource/{type}", self._resource)
        self._closing.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AptosLocalNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- test API -----------------------------------------------------------------------------------

    @property
    def oldest_version(self) -> int:
        """The oldest version this node serves: the chain's, or its own pruning point."""
        return max(self.ledger.oldest_version, self.prunes_below)

    def fail(self, kind: Literal["status", "malformed", "delay"], **options: Any) -> Fault:
        """Queue a fault (see `Fault`); returns it so a test can remove it from `faults`."""
        fault = Fault(kind=kind, **options)
        self.faults.append(fault)
        return fault

    def add_transactions(self, txs: Iterable[Mapping[str, Any]], *, restamp: bool = True) -> list[int]:
        """Serve recorded REST transactions, renumbered to the next versions (they move no balances)."""
        return self.ledger.add_transactions(txs, restamp=restamp)

    def add_coin(self, coin_type: str, *, name: str, symbol: str, decimals: int, metadata: str | None = None) -> None:
        """Publish `CoinInfo<coin_type>`; with `metadata`, balances live in that paired FA's primary stores."""
        self.ledger.add_coin(coin_type, name=name, symbol=symbol, decimals=decimals, metadata=metadata)

    def add_fungible_asset(self, metadata: str, *, name: str, symbol: str, decimals: int) -> None:
        self.ledger.add_fungible_asset(metadata, name=name, symbol=symbol, decimals=decimals)

    def set_balance(self, owner: str, asset: str, amount: int) -> None:
        """Genesis-style: `owner` holds exactly `amount` of `asset` (coin type or FA metadata address)."""
        self.ledger.set_balance(owner, asset, amount)

    def balance(self, owner: str, asset: str = APT) -> int:
        return self.ledger.state.balance(owner, asset)

    def fund(self, address: str, amount: int) -> str:
        """The faucet: a signed `0x1::aptos_coin::mint` from the core-resources account; returns its hash."""
        payload = EntryFunction.natural(
            "0x1::aptos_coin",
            "mint",
            [],
            [
                TransactionArgument(AccountAddress.from_str_relaxed(address), Serializer.struct),
                TransactionArgument(amount, Serializer.u64),
            ],
        )
        raw = RawTransaction(
            self._faucet.address(),
            self.ledger.sequence_number(CORE_RESOURCES)
            + sum(1 for s, _ in self.ledger.pending.values() if addr_long(str(s.transaction.sender)) == CORE_RESOURCES),
            TransactionPayload(payload),
            200_000,
            100,
            int(self.ledger.clock.now().timestamp()) + 600,
            self.ledger.chain_id,
        )
        txn = SignedTransaction(raw, self._faucet.sign_transaction(raw))
        return str(self.ledger.submit(txn, txn.bytes())["hash"])

    def hold_commits(self) -> None:
        """Accepted submissions stay pending (by_hash shows `pending_transaction`) until `release()`."""
        self.ledger.hold = True

    async def release(self) -> list[str]:
        """Commit what is pending and stop holding; returns the committed hashes."""
        self.ledger.hold = False
        committed = self.ledger.release()
        async with self._committed:
            self._committed.notify_all()
        return committed

    # --- HTTP plumbing ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        self.hits[f"{request.method} {route.canonical.removeprefix('/v1') if route else request.path}"] += 1
        fault = take_fault(self.faults, request.method, request.path)
        if fault is not None:
            injected = await fault.respond(self._closing)
            if injected is not None:
                if injected.status != 429:
                    injected.headers.update(self._headers())
                return injected
        response: web.StreamResponse
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = _error(404, f"not found: {request.path}", "web_framework_error")
        except web.HTTPMethodNotAllowed:
            response = _error(405, f"method not allowed: {request.method} {request.path}", "web_framework_error")
        response.headers.update(self._headers())
        return response

    def _headers(self) -> dict[str, str]:
        lg = self.ledger
        return {
            "X-Aptos-Chain-Id": str(lg.chain_id),
            "X-Aptos-Ledger-Version": str(lg.version),
            "X-Aptos-Ledger-Oldest-Version": str(self.oldest_version),
            "X-Aptos-Ledger-TimestampUsec": str(lg.timestamp_us),
            "X-Aptos-Epoch": "1",
            "X-Aptos-Block-Height": str(lg.block_height),
            "X-Aptos-Oldest-Block-Height": "0",
        }

    # --- handlers -----------------------------------------------------------------------------------

    async def _ledger_info(self, request: web.Request) -> web.Response:
        lg = self.ledger
        return web.json_response(
            {
                "chain_id": lg.chain_id,
                "epoch": "1",
                "ledger_version": str(lg.version),
                "oldest_ledger_version": str(self.oldest_version),
                "ledger_timestamp": str(lg.timestamp_us),
                "node_role": "full_node",
                "oldest_block_height": "0",
                "block_height": str(lg.block_height),
                "git_hash": "quantbot-localnet",
            }
        )

    async def _healthy(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "aptos-node:ok"})

    async def _gas_price(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"deprioritized_gas_estimate": 100, "gas_estimate": 100, "prioritized_gas_estimate": 150}
        )

    async def _transactions(self, request: web.Request) -> web.Response:
        lg = self.ledger
        try:
            limit = _limit(request)
            start = int(request.query["start"]) if "start" in request.query else max(0, lg.version + 1 - limit)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_input")
        if start < self.oldest_version:
            return _error(410, f"Ledger version({start}) has been pruned", "version_pruned")
        return web.json_response(lg.txs[start : start + limit])

    async def _by_version(self, request: web.Request) -> web.Response:
        lg = self.ledger
        try:
            version = int(request.match_info["version"])
        except ValueError:
            return _error(400, "failed to parse path `version`", "invalid_input")
        if version < self.oldest_version:
            return _error(410, f"Ledger version({version}) has been pruned", "version_pruned")
        if version > lg.version:
            return _error(
                404,
                f"Transaction not found by Ledger version({version})",
                "transaction_not_found",
            )
        return web.json_response(lg.txs[version])

    def _find(self, tx_hash: str) -> dict[str, Any] | None:
        lg = self.ledger
        tx_hash = tx_hash.lower()
        if tx_hash in lg.by_hash:
            return lg.txs[lg.by_hash[tx_hash]]
        if tx_hash in lg.pending:
            return {**lg.pending[tx_hash][1], "type": "pending_transaction"}
        return None

    async def _by_hash(self, request: web.Request) -> web.Response:
        tx = self._find(request.match_info["hash"])
        if tx is None:
            return _error(
                404, f"Transaction not found by Transaction hash({request.match_info['hash']})", "transaction_not_found"
            )
        return web.json_response(tx)

    async def _wait_by_hash(self, request: web.Request) -> web.Response:
        tx_hash = request.match_info["hash"]
        deadline = time.monotonic() + self.wait_by_hash_timeout
        async with self._committed:
            while (tx := self._find(tx_hash)) is not None and tx["type"] == "pending_transaction":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._committed.wait(), remaining)
                except TimeoutError:
                    break
        if tx is None:
            return _error(404, f"Transaction not found by Transaction hash({tx_hash})", "transaction_not_found")
        return web.json_response(tx)

    async def _submit(self, request: web.Request) -> web.Response:
        if request.content_type not in (BCS_SIGNED, "application/json"):
            return _error(415, f"unsupported content type {request.content_type!r}: send {BCS_SIGNED}", "invalid_input")
        body = await request.read()
        try:
            if request.content_type == BCS_SIGNED:
                signed = decode_signed(body)
            else:
                document = json.loads(body)
                if not isinstance(document, dict):
                    raise ValueError("a JSON submission is an object")
                signed = signed_from_json(
                    document, chain_id=self.ledger.chain_id, router_function=self.ledger.router_function
                )
                body = signed.bytes()
            pending = self.ledger.submit(signed, body)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_input")
        except ValidationError as exc:
            return _error(400, str(exc), "vm_error", exc.code)
        async with self._committed:
            self._committed.notify_all()
        return web.json_response(pending, status=202)

    async def _simulate(self, request: web.Request) -> web.Response:
        if request.content_type != BCS_SIGNED:
            return _error(415, f"unsupported content type {request.content_type!r}: send {BCS_SIGNED}", "invalid_input")
        body = await request.read()
        try:
            signed = decode_signed(body)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_input")
        if signed.verify():
            return _error(400, "Simulated transactions must not have a valid signature", "invalid_input")
        try:
            return web.json_response([self.ledger.simulate(signed, body)])
        except ValidationError as exc:
            return _error(400, str(exc), "vm_error", exc.code)

    def _address(self, request: web.Request) -> str:
        raw = request.match_info["address"]
        try:
            return addr_long(raw)
        except Exception as exc:
            raise web.HTTPBadRequest(
                text=json.dumps(
                    {"message": f"invalid address {raw!r}: {exc}", "error_code": "invalid_input", "vm_error_code": None}
                ),
                content_type="application/json",
            ) from exc

    async def _account(self, request: web.Request) -> web.Response:
        addr = self._address(request)
        account = self.ledger.state.accounts.get(addr)
        if account is None:
            return _error(
                404,
                f"Account not found by Address({addr}) and Ledger version({self.ledger.version})",
                "account_not_found",
            )
        return web.json_response(
            {
                "sequence_number": str(account.sequence_number),
                "authentication_key": account.authentication_key,
            }
        )

    async def _account_transactions(self, request: web.Request) -> web.Response:
        addr = self._address(request)
        try:
            limit = _limit(request)
            start = int(request.query.get("start", "0"))
        except ValueError as exc:
            return _error(400, str(exc), "invalid_input")
        sent = [t for t in self.ledger.account_transactions(addr) if int(t["sequence_number"]) >= start]
        return web.json_response(sent[:limit])

    async def _resources(self, request: web.Request) -> web.Response:
        addr = self._address(request)
        resources = self.ledger.state.resources(addr)
        if not resources:
            return _error(
                404,
                f"Account not found by Address({addr}) and Ledger version({self.ledger.version})",
                "account_not_found",
            )
        return web.json_response(resources)

    async def _resource(self, request: web.Request) -> web.Response:
        addr = self._address(request)
        wanted = type_short(request.match_info["type"])
        for resource in self.ledger.state.resources(addr):
            if resource["type"] == wanted:
                return web.json_response(resource)
        return _error(
            404,
            f"Resource not found by Address({addr_short(addr)}), Struct tag({wanted}) and "
            f"Ledger version({self.ledger.version})",
            "resource_not_found",
        )


def _limit(request: web.Request) -> int:
    limit = int(request.query.get("limit", str(DEFAULT_PAGE)))
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return min(limit, MAX_PAGE)
