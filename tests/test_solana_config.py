"""The [solana] section: endpoints with timeouts and rate limits, watched wallets, watcher knobs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from quantbot.config import SolanaConfig, load_config
from tests.conftest import REPO, write
from tests.test_config import problems

WHALE = "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"


def test_endpoints_wallets_and_watcher_settings_load_typed(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "q.toml",
        f"""
        [scanner]
        allow_no_filters = true  # not about filters
        [solana]
        enabled = true
        launch_programs = ["pumpfun"]
        backfill_page_size = 50
        [[solana.endpoints]]
        http = "https://rpc.example/?api-key=k"
        timeout = 3.5
        rps = 25
        [[solana.wallets]]
        address = "{WHALE}"
        label = "migrator"
        """,
    )
    sc = load_config([cfg], environ={}).config.solana
    assert sc.endpoints[0].timeout == 3.5 and sc.endpoints[0].rps == 25.0 and sc.endpoints[0].ws == ""
    assert [(w.address, w.label) for w in sc.wallets] == [(WHALE, "migrator")]
    assert sc.launch_programs == ("pumpfun",) and sc.backfill_page_size == 50
    assert sc.commitment == "confirmed"


def test_enabled_without_endpoints_is_refused_with_the_fix(tmp_path: Path) -> None:
    assert problems(tmp_path, "[solana]\nenabled = true\n") == [
        "q.toml: solana.enabled: needs at least one [[solana.endpoints]] with an http URL"
    ]


def test_bad_wallet_address_page_size_and_program_name_are_named(tmp_path: Path) -> None:
    text = (
        '[solana]\nbackfill_page_size = 5000\nlaunch_programs = ["pumpfun", "moonshot"]\n'
        '[[solana.wallets]]\naddress = "not-base58-0OIl"\n'
    )
    found = problems(tmp_path, text)
    assert any(p.startswith("q.toml: solana.backfill_page_size: expected an integer") for p in found)
    assert any(p.startswith("q.toml: solana.launch_programs[1]: expected one of") for p in found)
    assert any(p.startswith("q.toml: solana.wallets[0].address: expected a string matching") for p in found)


def test_every_solana_key_is_documented_in_the_shipped_config_with_its_default() -> None:
    text = (REPO / "config" / "quantbot.toml").read_text()
    shipped = tomllib.loads(text)["solana"]
    defaults = SolanaConfig()
    for key in (
        "enabled",
        "commitment",
        "launch_programs",
        "backfill_page_size",
        "backfill_max_pages",
        "dedup_window",
        "reconnect_max_s",
        "fetch_concurrency",
    ):
        value = getattr(defaults, key)
        assert shipped[key] == (list(value) if isinstance(value, tuple) else value), key
    for key in ("timeout", "rps", "wallets", "address", "label"):
        assert key in text
