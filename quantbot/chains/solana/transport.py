"""AiohttpTransport: the HTTP underneath solana-py's AsyncClient, on aiohttp instead of httpcore + anyio.

solana-py's AsyncClient talks httpx2; httpx2's default transport (httpcore, anyio, h11) cost about
three times aiohttp's CPU per request in the reaction profile (~850 vs ~250 µs for a getTransaction
on this machine), on the watcher's hot path. This keeps the AsyncClient and its httpx2 client
(request building, status checks, errors) and swaps only the transport. Transport failures are
raised as the httpx2 errors the default transport raises, so solana-py and the pool see no difference.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import aiohttp
import httpx2

# Set by aiohttp itself from the body and the URL; httpx2's copies would be sent twice.
_SKIP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """One aiohttp session (opened on first use, in the running loop), HTTP/1.1 keep-alive."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            # auto_decompress off: httpx2 decodes Content-Encoding itself from the headers passed on.
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    def _proxy(self, url: httpx2.URL) -> str | None:
        """The environment's proxy for this origin, as httpx2 honours it; looked up once per origin
        (aiohttp's trust_env looks it up on every request: ~0.6 ms each here)."""
        key = (url.scheme, url.host)
        if key not in self._proxies:
            proxy = urllib.request.getproxies().get(url.scheme)
            self._proxies[key] = None if not proxy or urllib.request.proxy_bypass(url.host) else proxy
        return self._proxies[key]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._open()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _SKIP_HEADERS]
        timeout = _timeout(request.extensions.get("timeout"))
        body = await request.aread()
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,  # httpx2 decides about redirects
                proxy=self._proxy(request.url),
            ) as resp:
                content = await resp.read()
                return httpx2.Response(
                    status_code=resp.status,
                    headers=list(resp.raw_headers),
                    content=content,
                    request=request,
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": (resp.reason or "").encode()},
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx2.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except TimeoutError as exc:  # aiohttp's read timeouts are TimeoutErrors too
            raise httpx2.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx2.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise httpx2.RemoteProtocolError(str(exc), request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx2.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _timeout(spec: Any) -> aiohttp.ClientTimeout:
    """httpx2's per-request timeouts (connect/read/write/pool, seconds or None) for aiohttp."""
    if not isinstance(spec, dict):
        return aiohttp.ClientTimeout()
    connect, read = spec.get("connect"), spec.get("read")
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
