"""telegram and webhook notifiers against local aiohttp servers speaking the real wire formats."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from quantbot.clock import Clock, SimClock, WallClock
from quantbot.config import ConfigError, load_config
from quantbot.daemon import build_plugins
from quantbot.events import OrderFilled, PluginDisabled, TokenRugWarning
from quantbot.plugins import PluginCatalog
from quantbot_notifiers.messaging import MessageNotifier
from tests.conftest import write

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
HMAC_KEY = "whsec-0123456789abcdef"


class RecordingClock(SimClock):
    """Simulated time that remembers every wait asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await super().sleep(seconds)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110  (polls counters of a component that has no event to wait on)
            await asyncio.sleep(0.01)


class Peer:
    """A local HTTP peer: records requests, answers from a script (then with `default`)."""

    def __init__(self, default: Callable[[web.Request, bytes], web.Response]) -> None:
        self.requests: list[tuple[web.Request, bytes]] = []
        self.script: list[Callable[[web.Request, bytes], Any]] = []
        self.default = default

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request, body))
        answer = self.script.pop(0) if self.script else self.default
        result = answer(request, body)
        if asyncio.iscoroutine(result):
            result = await result
        return result  # type: ignore[no-any-return]


def telegram_ok(request: web.Request, body: bytes) -> web.Response:
    if request.match_info["token"] != TOKEN:
        return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
    sent = json.loads(body)
    message = {"message_id": 1, "date": 1_763_000_000, "chat": {"id": sent["chat_id"], "type": "group"}, "text": ""}
    return web.json_response({"ok": True, "result": message})


def telegram_429(retry: int) -> Callable[[web.Request, bytes], web.Response]:
    def answer(request: web.Request, body: bytes) -> web.Response:
        return web.json_response(
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry}",
                "parameters": {"retry_after": retry},
            },
            status=429,
        )

    return answer


def status(code: int, **headers: str) -> Callable[[web.Request, bytes], web.Response]:
    return lambda request, body: web.Response(status=code, text="{}", headers=headers)


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[Peer, str]]:
    peer = Peer(telegram_ok)
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", peer.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield peer, str(server.make_url("")).rstrip("/")


def webhook_ok(request: web.Request, body: bytes) -> web.Response:
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Quantbot-Signature", ""), expected):
        return web.Response(status=401, text="bad signature")
    return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Peer, str]]:
    peer = Peer(webhook_ok)
    app = web.Application()
    app.router.add_post("/hooks/quantbot", peer.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield peer, str(server.make_url("/hooks/quantbot"))


async def started(tmp_path: Path, table: str, clock: Clock | None = None) -> MessageNotifier:
    """Build the notifier from a `[[notifiers]]` table exactly as the daemon does, and start it."""
    write(tmp_path / "hmac.key", HMAC_KEY)
    cfg = write(tmp_path / "q.toml", "[[notifiers]]\n" + table)
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ={"TG_TOKEN": TOKEN}, plugins=catalog)
    (plugin,) = build_plugins(loaded, catalog, "notifiers", clock or WallClock())
    assert isinstance(plugin, MessageNotifier)
    await plugin.start()
    return plugin


def filled(order_id: str = "o-1", **fields: Any) -> OrderFilled:
    base: dict[str, Any] = {"executor": "paper", "tx": "paper-tx", "amount_in": 100, "amount_out": 2500}
    return OrderFilled(order_id=order_id, id=7, origin="tb", **(base | fields))


def tg_table(base_url: str, extra: str = "") -> str:
    return (
        f'use = "telegram"\nbot_token = {{ env = "TG_TOKEN" }}\nchat_id = "-1001234567890"\n'
        f'base_url = "{base_url}"\n{extra}'
    )


async def test_telegram_sends_the_template_with_values_escaped_for_html(
    tmp_path: Path, telegram: tuple[Peer, str]
) -> None:
    peer, url = telegram
    extra = (
        'parse_mode = "HTML"\n[notifiers.templates]\n"order.filled" = "<b>Filled</b> {order_id}: {amount_out} out"\n'
    )
    notifier = await started(tmp_path, tg_table(url, extra))
    await notifier.notify(filled("o<1>&"))
    await eventually(lambda: notifier.stats()["sent"] == 1)
    await notifier.stop()
    ((request, body),) = peer.requests
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert json.loads(body) == {
        "chat_id": "-1001234567890",
        "text": "<b>Filled</b> o&lt;1&gt;&amp;: 2500 out",
        "parse_mode": "HTML",
    }


async def test_events_without_a_template_are_sent_as_topic_and_fields(
    tmp_path: Path, telegram: tuple[Peer, str]
) -> None:
    peer, url = telegram
    notifier = await started(tmp_path, tg_table(url))
    warning = TokenRugWarning(chain="solana", token="Mint1", kind="creator_sell", measured=Decimal("62.5"))
    await notifier.notify(warning)
    await eventually(lambda: notifier.stats()["sent"] == 1)
    await notifier.stop()
    text = json.loads(peer.requests[0][1])["text"]
    assert text == "token.rug_warning: chain=solana, token=Mint1, kind=creator_sell, detail=, measured=62.5"


async def test_telegram_429_waits_the_retry_after_it_names_then_delivers(
    tmp_path: Path, telegram: tuple[Peer, str]
) -> None:
    peer, url = telegram
    peer.script.append(telegram_429(7))
    clock = RecordingClock()
    notifier = await started(tmp_path, tg_table(url), clock)
    await notifier.notify(filled())
    await eventually(lambda: clock.waits == [7.0])
    assert len(peer.requests) == 1
    clock.advance(7)
    await eventually(lambda: notifier.stats()["sent"] == 1)
    await notifier.stop()
    assert len(peer.requests) == 2


async def test_server_errors_are_retried_then_given_up_and_counted(tmp_path: Path, telegram: tuple[Peer, str]) -> None:
    peer, url = telegram
    peer.script += [status(502), status(500), status(503)]
    notifier = await started(tmp_path, tg_table(url, "max_attempts = 3\nmax_retry_wait_s = 0.05\n"))
    await notifier.notify(filled())
    await eventually(lambda: notifier.stats()["failed"] == 1)
    await notifier.stop()
    assert len(peer.requests) == 3 and notifier.stats()["sent"] == 0


async def test_a_refused_message_is_not_retried(tmp_path: Path, telegram: tuple[Peer, str]) -> None:
    peer, url = telegram
    peer.script.append(
        lambda r, b: web.json_response(
            {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, status=400
        )
    )
    with capture_logs() as logs:
        notifier = await started(tmp_path, tg_table(url))
        await notifier.notify(filled())
        await eventually(lambda: notifier.stats()["failed"] == 1)
        await notifier.stop()
    assert len(peer.requests) == 1
    (failed,) = [entry for entry in logs if entry["event"] == "notify.failed"]
    assert failed["detail"] == "HTTP 400: Bad Request: chat not found"


async def test_the_bot_token_never_reaches_the_logs(tmp_path: Path, telegram: tuple[Peer, str]) -> None:
    peer, url = telegram
    peer.script.append(status(500))
    closed = "http://127.0.0.1:9"  # nothing listens on the discard port: connection refused
    with capture_logs() as logs:
        for base in (url, closed):
            notifier = await started(tmp_path, tg_table(base, "max_attempts = 2\nmax_retry_wait_s = 0.01\n"))
            await notifier.notify(filled())
            await eventually(lambda n=notifier: n.stats()["sent"] + n.stats()["failed"] == 1)  # type: ignore[misc]
            await notifier.stop()
    assert logs, "the failures were logged"
    assert TOKEN not in repr(logs) and TOKEN.split(":")[1] not in repr(logs)


async def test_rate_limit_suppresses_the_excess_and_reports_it_in_the_next_message(
    tmp_path: Path, telegram: tuple[Peer, str]
) -> None:
    peer, url = telegram
    clock = RecordingClock()
    notifier = await started(tmp_path, tg_table(url, "rate_per_minute = 1\nburst = 2\n"), clock)
    for n in range(5):
        await notifier.notify(filled(f"o-{n}"))
    await eventually(lambda: notifier.stats()["sent"] == 2)
    assert notifier.stats()["suppressed"] == 3
    clock.advance(60)
    await notifier.notify(filled("o-late"))
    await eventually(lambda: notifier.stats()["sent"] == 3)
    await notifier.stop()
    last = json.loads(peer.requests[-1][1])["text"]
    assert "order_id=o-late" in last and last.endswith("(+3 more suppressed by the rate limit)")


async def test_notify_returns_at_once_while_the_peer_hangs_and_the_attempt_is_bounded(
    tmp_path: Path, telegram: tuple[Peer, str]
) -> None:
    peer, url = telegram
    release = asyncio.Event()

    async def hang(request: web.Request, body: bytes) -> web.Response:
        await release.wait()
        return web.json_response({"ok": True, "result": {}})

    peer.script.append(hang)
    notifier = await started(tmp_path, tg_table(url, "timeout_s = 0.2\nmax_attempts = 1\n"))
    await notifier.notify(filled())  # only queues: the bus handler is done before the peer answers
    assert notifier.stats()["queued"] == 1 and notifier.stats()["sent"] == 0
    await eventually(lambda: notifier.stats()["failed"] == 1)
    release.set()
    await notifier.stop()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{order_id} {mint}", "unknown field 'mint'; events under 'order.filled' have: amount_in, amount_out,"),
        ("{__class__}", "private attributes are not allowed"),
        ("{order_id.__class__}", "private attributes are not allowed"),
        ("{0}", "use named fields like {order_id}, not {0}"),
        ("{order_id", "not a format string"),
    ],
)
def test_templates_are_checked_against_the_event_fields_when_the_config_loads(
    tmp_path: Path, template: str, message: str
) -> None:
    table = tg_table("https://api.telegram.org", f'[notifiers.templates]\n"order.filled" = "{template}"\n')
    cfg = write(tmp_path / "q.toml", "[[notifiers]]\n" + table)
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ={"TG_TOKEN": TOKEN}, plugins=PluginCatalog.discover())
    assert message in str(err.value)


def test_a_template_may_use_fields_common_to_every_event_under_its_pattern(tmp_path: Path) -> None:
    table = tg_table("https://api.telegram.org", '[notifiers.templates]\n"order.*" = "{topic} {intent.token}"\n')
    cfg = write(tmp_path / "q.toml", "[[notifiers]]\n" + table)
    with pytest.raises(ConfigError, match="unknown field 'intent'"):
        load_config([cfg], environ={"TG_TOKEN": TOKEN}, plugins=PluginCatalog.discover())
    ok = tg_table("https://api.telegram.org", '[notifiers.templates]\n"order.rejected" = "{intent.token}: {reason}"\n')
    write(cfg, "[[notifiers]]\n" + ok)
    load_config([cfg], environ={"TG_TOKEN": TOKEN}, plugins=PluginCatalog.discover())


def hook_table(url: str, extra: str = "") -> str:
    return (
        f'use = "webhook"\nurl = "{url}"\nhmac_key = {{ file = "hmac.key" }}\n'
        f'topics = ["order.#", "plugin.disabled"]\n{extra}'
    )


async def test_webhook_posts_signed_json_the_receiver_verifies(tmp_path: Path, receiver: tuple[Peer, str]) -> None:
    peer, url = receiver
    extra = '[notifiers.headers]\nX-Desk = "alpha"\n[notifiers.secret_headers]\nAuthorization = { env = "TG_TOKEN" }\n'
    notifier = await started(tmp_path, hook_table(url, extra))
    await notifier.notify(filled(price_native=Decimal("0.04")))
    await notifier.notify(PluginDisabled(group="filters", plugin="x", failures=5, last_error="boom", id=9, origin="tb"))
    await eventually(lambda: notifier.stats()["sent"] == 2)
    await notifier.stop()
    (first, body), (_, second) = peer.requests
    payload = json.loads(body)
    assert payload["topic"] == "order.filled" and payload["text"].startswith("order.filled: order_id=o-1")
    assert payload["event"]["price_native"] == "0.04" and payload["event"]["amount_out"] == 2500
    assert payload["event"]["type"] == "OrderFilled"
    assert first.headers["X-Desk"] == "alpha" and first.headers["Authorization"] == TOKEN
    assert first.headers["X-Quantbot-Event"] == "tb:7"
    assert json.loads(second)["event"]["plugin"] == "x"


async def test_webhook_with_a_wrong_key_is_refused_and_not_retried(tmp_path: Path, receiver: tuple[Peer, str]) -> None:
    peer, url = receiver
    write(tmp_path / "other.key", "not-the-shared-key")
    notifier = await started(tmp_path, hook_table(url).replace('"hmac.key"', '"other.key"'))
    await notifier.notify(filled())
    await eventually(lambda: notifier.stats()["failed"] == 1)
    await notifier.stop()
    assert len(peer.requests) == 1


async def test_webhook_503_honours_retry_after(tmp_path: Path, receiver: tuple[Peer, str]) -> None:
    peer, url = receiver
    peer.script.append(status(503, **{"Retry-After": "4"}))
    clock = RecordingClock()
    notifier = await started(tmp_path, hook_table(url), clock)
    await notifier.notify(filled())
    await eventually(lambda: clock.waits == [4.0])
    clock.advance(4)
    await eventually(lambda: notifier.stats()["sent"] == 1)
    await notifier.stop()
    assert len(peer.requests) == 2


def test_webhook_needs_exactly_one_of_url_and_url_secret(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", '[[notifiers]]\nuse = "webhook"\n')
    with pytest.raises(ConfigError, match="give exactly one of url or url_secret"):
        load_config([cfg], environ={}, plugins=PluginCatalog.discover())
