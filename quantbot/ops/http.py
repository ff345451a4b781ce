"""The operations endpoint (aiohttp): health, readiness, Prometheus metrics, status and control.

GET  /healthz   200 while the event loop answers.
GET  /readyz    200 once every component started and each watcher's lag is within its bound; else 503
                with the reasons.
GET  /metrics   Prometheus text format, from this daemon's own registry.
GET  /status    the Controller's status as JSON (secrets redacted).
POST /control/halt | /control/resume | /control/reload
                need `Authorization: Bearer <http.control_token>`; off (403) when no token is set.
Bound to 127.0.0.1 by default. A port already taken is logged and the daemon runs on without it:
observability must never stop trading (exits included).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from quantbot.config import HttpConfig
from quantbot.ops.control import Controller
from quantbot.ops.metrics import Metrics

log = structlog.get_logger(component="http")

MAX_REASON = 200
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        text=json.dumps(data, default=str, indent=1) + "\n",
        status=status,
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def _contain(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A failing handler is logged and answered with 500; it never takes the server down."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.error("http.handler_failed", path=request.path, exc_info=exc)
        return _json({"error": f"internal error: {type(exc).__name__}"}, status=500)


class HttpServer:
    """A daemon component. `port` holds the bound port once started (useful with port 0)."""

    name = "http"

    def __init__(self, *, config: HttpConfig, controller: Controller, metrics: Metrics) -> None:
        self.config = config
        self.controller = controller
        self.metrics = metrics
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def serving(self) -> bool:
        return self.port is not None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_contain])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_text)
        app.router.add_get("/status", self.status)
        for action in ("halt", "resume", "reload"):
            app.router.add_post(f"/control/{action}", self.control)
        return app

    async def start(self) -> None:
        await self.metrics.start()
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            log.error(
                "http.bind_failed",
                host=self.config.host,
                port=self.config.port,
                error=str(exc),
                fix="another process holds the port: stop it or set [http] port",
            )
            return
        self._runner = runner
        addresses = runner.addresses  # with port 0, the port the kernel chose
        self.port = int(addresses[0][1]) if addresses else self.config.port
        log.info(
            "http.listening",
            host=self.config.host,
            port=self.port,
            control="on" if self.config.control_token else "off (no http.control_token)",
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.port = None

    # --- read-only -------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        reasons = self.controller.readiness(self.config.max_lag_s)
        if reasons:
            return _json({"ready": False, "reasons": reasons}, status=503)
        return _json({"ready": True})

    async def metrics_text(self, request: web.Request) -> web.Response:
        body = await self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(self, request: web.Request) -> web.Response:
        return _json(await self.controller.status())

    # --- control ---------------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        token = self.config.control_token
        if token is None:
            return _json(
                {"error": "control endpoints are off: set http.control_token (a secret) in the config to enable"},
                status=403,
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.reveal().encode()):
            log.warning("http.control_unauthorized", path=request.path, remote=request.remote)
            return _json(
                {"error": "missing or wrong bearer token"},
                status=401,
                **{"WWW-Authenticate": 'Bearer realm="quantbot"'},
            )
        return None

    async def control(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        action = request.path.rsplit("/", 1)[-1]
        reason = "http"
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _json({"error": 'body must be JSON, e.g. {"reason": "maintenance"}'}, status=400)
            if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
                return _json({"error": 'body must be a JSON object with a string "reason"'}, status=400)
            reason = (body.get("reason") or reason)[:MAX_REASON]
        log.info("http.control", action=action, reason=reason, remote=request.remote)
        if action == "reload":
            await self.controller.reload()
            return _json({"reload": "requested"}, status=202)
        if action == "halt":
            change = await self.controller.halt(reason)
        else:
            change = await self.controller.resume(reason)
        return _json({"before": change.before.value, "trading": change.after.value, "reason": change.reason})
