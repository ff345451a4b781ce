"""[prices] and [whales]: the annotated defaults, a full example, and errors that name the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.config import ConfigError, PricesConfig, WhalesConfig, load_config
from tests.conftest import REPO, write


def test_annotated_config_documents_the_defaults() -> None:
    loaded = load_config([REPO / "config" / "quantbot.toml"], environ={})
    assert loaded.config.prices == PricesConfig() and loaded.config.whales == WhalesConfig()
    text = (REPO / "config" / "quantbot.toml").read_text()
    for key in [*PricesConfig.__struct_fields__, *WhalesConfig.__struct_fields__]:
        assert key in text, f"{key} is not documented in config/quantbot.toml"


def test_sources_and_wallets_load_with_secret_keys(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "q.toml",
        """
        [prices]
        max_age_s = 30
        [[prices.sources]]
        kind = "jupiter"
        api_key = { env = "JUP_KEY" }
        [whales]
        discover = true
        dump_pct = 75.5
        [[whales.wallets]]
        chain = "aptos"
        address = "0xbf9239be9eb7e7a3d8e4c1f36083464fd47e6bd1f82a43b6ad2ba0a9f5ef3a2b"
        label = "apt whale"
        """,
    )
    loaded = load_config([cfg], environ={"JUP_KEY": "secret-jup-key"})
    src = loaded.config.prices.sources[0]
    assert src.kind == "jupiter" and src.api_key is not None and src.api_key.reveal() == "secret-jup-key"
    assert "secret-jup-key" in loaded.secrets
    assert loaded.config.whales.dump_pct == Decimal("75.5") and loaded.config.whales.wallets[0].label == "apt whale"


def test_bad_values_name_the_file_and_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "q.toml",
        """
        [prices]
        max_age_s = 0
        [[prices.sources]]
        kind = "birdeye"
        [whales]
        acumulation_buys = 3
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ={})
    text = str(err.value)
    assert f"{cfg}: prices.max_age_s: expected a number > 0, got 0" in text
    assert "prices.sources[0].kind: expected one of" in text
    assert "whales.acumulation_buys: unknown key (did you mean 'accumulation_buys'?)" in text
