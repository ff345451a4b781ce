#!/usr/bin/env python3
"""Run the daemon with writable+executable memory refused, as MemoryDenyWriteExecute=yes does.

Linux >= 6.3 offers the same rule per process (prctl PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN; systemd
uses it too where it can). This sets it, imports every library the daemon and its plugins load, makes
Solana and Aptos keys, runs a real daemon (store, HTTP endpoint, scheduler) until it is ready, scrapes
/metrics, and stops it. Exit 0 on success, 1 on failure, 0 with a note where the kernel lacks the rule.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
import tempfile
from pathlib import Path

PR_SET_MDWE = 65
PR_GET_MDWE = 66
PR_MDWE_REFUSE_EXEC_GAIN = 1


def deny_write_execute() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        return False
    return bool(libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) & PR_MDWE_REFUSE_EXEC_GAIN)


async def run_daemon(tmp: Path) -> None:
    import aiohttp

    from quantbot.config import load_config
    from quantbot.daemon import Daemon
    from quantbot.plugins import PluginCatalog
    from quantbot.secrets import Redactor

    cfg = tmp / "q.toml"
    cfg.write_text(f'[daemon]\ndata_dir = "{tmp}"\n[http]\nport = 0\n[jobs.schedules]\nbackup = "0.2s"\n')
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ={}, plugins=catalog)
    daemon = Daemon(loaded=loaded, config_paths=[str(cfg)], catalog=catalog, redactor=Redactor(), environ={})
    run = asyncio.create_task(daemon.run())
    async with asyncio.timeout(30):
        await daemon.started.wait()
    assert daemon.http is not None and daemon.http.port  # noqa: S101
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{daemon.http.port}/metrics") as resp:
            text = await resp.text()
            if resp.status != 200 or "quantbot_bus_published_total" not in text:
                raise RuntimeError(f"/metrics answered {resp.status}")
    assert daemon.jobs is not None  # noqa: S101
    async with asyncio.timeout(30):
        while daemon.jobs.stats["backup"].last_success is None:  # noqa: ASYNC110  (nothing to await on)
            await asyncio.sleep(0.05)
    daemon.request_stop()
    if await run != 0:
        raise RuntimeError("daemon did not stop cleanly")


def main() -> int:
    if sys.platform != "linux" or not deny_write_execute():
        print("mdwe-smoke: this kernel cannot refuse write+execute memory per process (Linux >= 6.3); skipped")
        return 0
    import aiomqtt  # noqa: F401
    import aptos_sdk.account
    import asyncpg  # noqa: F401
    import numpy
    import solana.rpc.async_api  # noqa: F401
    import solders.keypair
    import websockets  # noqa: F401

    numpy.linalg.inv(numpy.eye(64) * 2)
    solders.keypair.Keypair().pubkey()
    aptos_sdk.account.Account.generate().address()
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)  # libffi closure
    if callback(1) != 2:
        raise RuntimeError("ctypes callback")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run_daemon(Path(tmp)))
    print("mdwe-smoke: daemon, numpy, solders, aptos-sdk and ctypes run with write+execute memory refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
