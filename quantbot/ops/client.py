"""The command line's side of the operations endpoint: ask a running daemon, render its status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp

from quantbot.config import Config

TIMEOUT_S = 5.0


class DaemonUnreachable(Exception):
    """Nothing answered at the URL (daemon stopped, endpoint disabled, wrong port)."""


class DaemonRefused(Exception):
    """The daemon answered with an error (wrong token, control off)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def base_url(config: Config) -> str:
    """Where this config's daemon listens (a wildcard bind is reached on loopback)."""
    host = config.http.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104  (mapping a wildcard bind to loopback, not binding)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.http.port}"


async def _request(method: str, url: str, *, timeout: float, **kw: Any) -> Any:  # noqa: ASYNC109
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.request(method, url, **kw) as resp,
        ):
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = {"error": (await resp.text())[:200]}
            if resp.status >= 400:
                message = body.get("error", "") if isinstance(body, dict) else str(body)
                raise DaemonRefused(resp.status, message)
            return body
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise DaemonUnreachable(f"no quantbot daemon answers at {url} ({type(exc).__name__}: {exc})") from exc


async def fetch_status(url: str, *, timeout: float = TIMEOUT_S) -> dict[str, Any]:  # noqa: ASYNC109
    body = await _request("GET", f"{url.rstrip('/')}/status", timeout=timeout)
    if not isinstance(body, dict):
        raise DaemonRefused(200, "status is not a JSON object")
    return body


async def control(url: str, action: str, *, token: str, reason: str = "", timeout: float = TIMEOUT_S) -> dict[str, Any]:  # noqa: ASYNC109
    body = await _request(
        "POST",
        f"{url.rstrip('/')}/control/{action}",
        timeout=timeout,
        headers={"Authorization": f"Bearer {token}"},
        json={"reason": reason} if reason else None,
    )
    return body if isinstance(body, dict) else {}


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86_400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    return (f"{days}d" if days else "") + (f"{hours}h" if days or hours else "") + f"{minutes}m{s:02d}s"


def render_status(st: dict[str, Any]) -> str:
    """The human view of `/status`."""
    trading = st.get("trading", {})
    reason = f" ({trading['reason']})" if trading.get("reason") else ""
    lines = [
        f"quantbot {st.get('instance')}  mode={st.get('mode')}  version={st.get('version')}  pid={st.get('pid')}  "
        f"up {_duration(float(st.get('uptime_s', 0)))}  {'ready' if st.get('ready') else 'STARTING'}",
        f"trading: {trading.get('state', '?')}{reason}",
    ]
    positions = st.get("positions", [])
    lines.append(f"positions: {len(positions)} open")
    if positions:
        rows = [("CHAIN", "TOKEN", "QUANTITY", "COST (native)", "REALISED (native)")]
        rows += [
            (p["chain"], p["token"], str(p["quantity"]), str(p["cost_native"]), str(p["realised_pnl_native"]))
            for p in positions
        ]
        lines += _table(rows)
    components = st.get("components", [])
    lines.append(
        "components: " + "  ".join(f"{c['name']}{'' if c['started'] else ' (not started)'}" for c in components)
    )
    lines.append("plugins:")
    for group, plugins in st.get("plugins", {}).items():
        listed = ", ".join(f"{p['id']}" + ("" if p["state"] == "enabled" else f" [{p['state']}]") for p in plugins)
        lines.append(f"  {group}: {listed or '(none)'}")
    watchers = st.get("watchers", {})
    if watchers:
        lines.append("watchers:")
        for name, w in watchers.items():
            shown = "  ".join(f"{k}={w[k]}" for k in ("lag_s", "reconnects", "rpc_errors") if k in w)
            lines.append(f"  {name}  {shown}")
    jobs = st.get("jobs", {})
    if jobs:
        lines.append("jobs:")
        for name, j in jobs.items():
            last = j.get("last_success") or "never"
            error = f"  last error: {j['last_error']}" if j.get("last_error") else ""
            lines.append(f"  {name} ({j['schedule']})  runs={j['runs']}  failures={j['failures']}  ok={last}{error}")
    bus = st.get("bus", {})
    lines.append(
        f"bus: published={sum(bus.get('published', {}).values())}  dropped={sum(bus.get('dropped', {}).values())}  "
        f"failed={sum(bus.get('failed', {}).values())}  queued={sum(bus.get('queue_depth', {}).values())}"
    )
    return "\n".join(lines)


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
