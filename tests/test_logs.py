"""Logging: JSON off a TTY, console on one, the component on every line, secrets never shown."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.filtering import FilterStage
from quantbot.logs import setup_logging
from quantbot.secrets import Redactor, Secret
from quantbot.testing import make_plugin, token_candidate

SECRET = "sk_live_5f9a2c7e1b"


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_when_not_a_tty_with_component_and_level() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    structlog.get_logger(component="risk").info("order.approved", order_id="o1")
    (record,) = lines(out)
    assert record["event"] == "order.approved"
    assert record["component"] == "risk"
    assert record["level"] == "info"
    assert str(record["timestamp"]).endswith("Z")


def test_console_output_on_a_tty() -> None:
    out = TTY()
    setup_logging(stream=out)
    structlog.get_logger(component="daemon").info("daemon.ready", status="running")
    text = out.getvalue()
    assert "daemon.ready" in text and "status" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_secret_values_are_scrubbed_from_values_and_tracebacks() -> None:
    out = io.StringIO()
    setup_logging(stream=out, redactor=Redactor([SECRET]))
    log = structlog.get_logger(component="plugin.x")
    try:
        raise RuntimeError(f"GET https://api.example/?key={SECRET} -> 401")
    except RuntimeError as exc:
        log.error("call.failed", url=f"https://api.example/?key={SECRET}", nested={"k": [SECRET]}, exc_info=exc)
    text = out.getvalue()
    assert SECRET not in text
    (record,) = lines(out)
    assert record["url"] == "https://api.example/?key=***"
    assert record["nested"] == {"k": ["***"]}
    assert "RuntimeError: GET https://api.example/?key=*** -> 401" in str(record["exception"])


def test_secret_object_logged_by_mistake_shows_only_its_source() -> None:
    out = io.StringIO()
    setup_logging(stream=out, redactor=Redactor([SECRET]))
    structlog.get_logger().info("oops", token=Secret(SECRET, "env:API"), text=repr(Secret(SECRET, "env:API")))
    (record,) = lines(out)
    assert record["token"] == "*** (env:API)"
    assert record["text"] == "Secret(env:API)"


def test_log_level_can_change_at_runtime() -> None:
    out = io.StringIO()
    setup_logging(level="warning", stream=out)
    log = structlog.get_logger(component="t")
    log.info("hidden")
    setup_logging(level="debug", stream=out)
    log.debug("shown")
    assert [r["event"] for r in lines(out)] == ["shown"]


async def test_a_plugin_error_carrying_a_secret_reaches_the_log_redacted(plugin_site: object) -> None:
    from qb_testplugins import ExplodingFilter  # type: ignore[import-not-found]

    out = io.StringIO()
    setup_logging(stream=out, redactor=Redactor([SECRET]))
    f = ExplodingFilter(id="exploding", config=ExplodingFilter.Config(api_token=Secret(SECRET, "env:QB")))
    async with EventBus(clock=SimClock()) as bus:
        stage = FilterStage(bus=bus, filters=[f], timeout=1)
        await stage.start()
        await stage.judge(token_candidate())
        await bus.drain(5)
    text = out.getvalue()
    assert SECRET not in text
    failed = [r for r in lines(out) if r["event"] == "bus.handler_failed"]
    assert len(failed) == 1 and "key=***" in str(failed[0]["exception"])


def test_make_plugin_is_what_the_harness_offers() -> None:
    from quantbot_filters.blocklist import BlocklistFilter

    assert make_plugin(BlocklistFilter, id="b").id == "b"


def test_library_logs_through_the_stdlib_are_scrubbed_and_request_lines_kept_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """httpx (under solana-py and aptos-sdk) logs each request's URL, where RPC providers put API keys."""
    import logging

    setup_logging(stream=io.StringIO(), redactor=Redactor([SECRET]))
    logging.getLogger("asyncio").error("Task exception: GET https://rpc.example/?api-key=%s failed", SECRET)
    logging.getLogger("httpx").info("HTTP Request: POST https://rpc.example/?api-key=%s", SECRET)
    err = capsys.readouterr().err
    (line,) = [json.loads(x) for x in err.splitlines()]
    assert line["logger"] == "asyncio" and line["level"] == "error" and "***" in str(line["event"])
    assert SECRET not in err
