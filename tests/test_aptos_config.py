"""The [aptos] config section: safe defaults, and errors that name the key for bad wallets and page sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantbot.config import ConfigError, load_config
from tests.conftest import REPO, write


def test_aptos_is_off_by_default_and_follows_the_ledger_from_the_head() -> None:
    aptos = load_config([REPO / "config" / "quantbot.toml"], environ={}).config.aptos
    assert aptos.enabled is False
    assert (aptos.source, aptos.wallets, aptos.start_version, aptos.api_key) == ("ledger", (), None, None)
    assert aptos.page_size == 100


def test_aptos_watcher_settings_are_read_with_the_api_key_as_a_secret(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "q.toml",
        """
        [aptos]
        enabled = true
        nodes = ["http://127.0.0.1:8080/v1", "http://127.0.0.1:8081/v1"]
        source = "accounts"
        wallets = ["0xbf92", "0x00a1"]
        start_version = 3541198000
        api_key = { env = "APTOS_KEY" }
        """,
    )
    loaded = load_config([cfg], environ={"APTOS_KEY": "geomi-secret"})
    aptos = loaded.config.aptos
    assert aptos.source == "accounts" and aptos.wallets == ("0xbf92", "0x00a1")
    assert aptos.start_version == 3541198000
    assert aptos.api_key is not None and aptos.api_key.reveal() == "geomi-secret"
    assert "geomi-secret" in loaded.secrets


def test_bad_wallet_and_page_size_are_refused_naming_the_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", '[aptos]\nwallets = ["bf92"]\npage_size = 500\nsource = "grpc"\n')
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ={})
    text = str(err.value)
    assert "aptos.wallets[0]: expected a string matching" in text
    assert "aptos.page_size: expected an integer" in text and "500" in text
    assert "aptos.source: expected one of" in text


def test_enabling_aptos_without_nodes_names_the_missing_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", "[aptos]\nenabled = true\n")
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ={})
    assert err.value.problems == [f"{cfg}: aptos.enabled: true needs aptos.nodes (fullnode REST URLs ending in /v1)"]
