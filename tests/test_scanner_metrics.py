"""The scanner's verdict counts and rejection reasons reach /metrics and /status through its stats()."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from quantbot.events import Event, TokenAccepted, TokenRejected
from quantbot.testing import token_launch
from tests.test_ops_http import get, running, samples


async def test_rejections_by_filter_are_exported_and_fail_closed_without_chain_data(tmp_path: Path) -> None:
    extra = '\n[[filters]]\nuse = "renounced"\n'
    async with running(tmp_path, extra=extra) as (daemon, url):
        assert daemon.bus is not None
        judged: list[Event] = []
        done = asyncio.Event()

        async def record(e: Event) -> None:
            judged.append(e)
            done.set()

        daemon.bus.subscribe(["token.accepted", "token.rejected"], record, name="test")
        await daemon.bus.publish(token_launch(mint="So1anaTestMint1111111111111111111111111111"))
        async with asyncio.timeout(10):
            await done.wait()
        [verdict] = judged
        assert isinstance(verdict, TokenRejected) and not isinstance(verdict, TokenAccepted)
        renounced = next(v for v in verdict.verdicts if v.filter == "renounced")
        assert renounced.reason == "mint account unknown: solana is not enabled"
        status, text = await get(f"{url}/metrics")
        _, status_body = await get(f"{url}/status")
    assert status == 200
    got = samples(text)
    assert got[("quantbot_scanner_tokens_total", (("verdict", "rejected"),))] == 1
    assert got[("quantbot_scanner_tokens_total", (("verdict", "accepted"),))] == 0
    assert got[("quantbot_scanner_rejections_total", (("filter", "renounced"),))] == 1
    assert json.loads(status_body)["watchers"]["scanner"]["rejections"] == {"renounced": 1}
