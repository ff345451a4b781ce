"""Config: layers, env overrides, secrets, and error messages that name file, key, expectation, value."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.config import ConfigError, changed_sections, load_config, redacted
from quantbot.plugins import PluginCatalog
from quantbot.secrets import Secret, SigningKey
from tests.conftest import REPO, TEST_DIST, TEST_DIST_VERSION, cli_env, run_cli, write


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None, name: str = "q.toml") -> list[str]:
    cfg = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ=environ or {}, plugins=PluginCatalog.discover())
    return [p.replace(str(cfg), name) for p in err.value.problems]


def test_shipped_config_is_valid_and_in_paper_mode() -> None:
    loaded = load_config([REPO / "config" / "quantbot.toml"], environ={}, plugins=PluginCatalog.discover())
    assert loaded.config.mode == "paper"
    assert [f.use for f in loaded.config.filters] == [
        "blocklist",
        "renounced",
        "mutable",
        "token2022_extensions",
        "pool_size",
        "holders",
        "burn",
        "creator_history",
    ]
    assert loaded.config.scanner.enabled


def test_defaults_without_any_key_are_paper_mode(tmp_path: Path) -> None:
    loaded = load_config([write(tmp_path / "empty.toml", "")], environ={})
    assert loaded.config.mode == "paper"
    assert loaded.config.daemon.shutdown_timeout == 10.0


def test_wrong_type_names_file_key_expectation_and_value(tmp_path: Path) -> None:
    assert problems(tmp_path, '[risk]\nmax_order_usd = "ten"\n') == [
        'q.toml: risk.max_order_usd: expected a number > 0, got "ten"'
    ]


def test_out_of_range_number_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, "[bus]\nqueue_size = 0\nhandler_timeout = -1\n") == [
        "q.toml: bus.queue_size: expected an integer >= 1, got 0",
        "q.toml: bus.handler_timeout: expected a number > 0, got -1",
    ]


def test_unknown_key_suggests_the_closest_name(tmp_path: Path) -> None:
    assert problems(tmp_path, "[risk]\nmax_ordr_usd = 5\n") == [
        "q.toml: risk.max_ordr_usd: unknown key (did you mean 'max_order_usd'?)"
    ]


def test_unknown_section_lists_known_keys_when_nothing_is_close(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, "[zzz]\na = 1\n")
    assert msg.startswith("q.toml: zzz: unknown key (known keys: analytics, aptos, bus, ")
    assert "daemon, executors, exits, filters," in msg


def test_bad_choice_lists_the_choices_and_suggests(tmp_path: Path) -> None:
    assert problems(tmp_path, 'mode = "lve"\n') == [
        'q.toml: mode: expected one of "paper", "live" (did you mean \'live\'?), got "lve"'
    ]


def test_solana_commitment_processed_is_refused_because_history_methods_refuse_it(tmp_path: Path) -> None:
    assert problems(tmp_path, '[solana]\ncommitment = "processed"\n') == [
        'q.toml: solana.commitment: expected one of "confirmed", "finalized", got "processed"'
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    assert len(problems(tmp_path, 'mode = 3\n[daemon]\nlog_level = "loud"\nshutdown_timeout = "x"\n')) == 3


def test_invalid_toml_names_the_file_and_position(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, "[risk\nmax = 1\n")
    assert msg.startswith("q.toml: invalid TOML: ")
    assert "line 1" in msg


def test_missing_config_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file or directory"):
        load_config([tmp_path / "nope.toml"], environ={})


def test_directory_layers_merge_in_name_order_later_wins(tmp_path: Path) -> None:
    write(
        tmp_path / "conf.d" / "10-base.toml",
        '[risk]\nmax_order_usd = 10\nmax_order_sol = 1\n[daemon]\nlog_level = "debug"\n',
    )
    write(tmp_path / "conf.d" / "20-override.toml", "[risk]\nmax_order_usd = 20\n")
    write(tmp_path / "conf.d" / "notes.txt", "ignored")
    cfg = load_config([tmp_path / "conf.d"], environ={}).config
    assert cfg.risk.max_order_usd == Decimal(20)
    assert cfg.risk.max_order_sol == Decimal(1)
    assert cfg.daemon.log_level == "debug"


def test_error_names_the_layer_that_set_the_bad_value(tmp_path: Path) -> None:
    base = write(tmp_path / "a.toml", "[risk]\nmax_order_usd = 10\n")
    over = write(tmp_path / "b.toml", "[risk]\nmax_order_usd = -3\n")
    with pytest.raises(ConfigError) as err:
        load_config([base, over], environ={})
    assert err.value.problems == [f"{over}: risk.max_order_usd: expected a number > 0, got -3"]


def test_environment_overrides_win_and_are_parsed_as_toml(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "q.toml", '[risk]\nmax_order_usd = 10\n[[filters]]\nuse = "blocklist"\n')
    env = {
        "QUANTBOT__RISK__MAX_ORDER_USD": "25.5",
        "QUANTBOT__DAEMON__LOG_LEVEL": "warning",
        "QUANTBOT__FILTERS__0__NAME_PATTERNS": '["scam", "rug"]',
        "QUANTBOT_UNRELATED": "x",
    }
    loaded = load_config([cfg_file], environ=env, plugins=PluginCatalog.discover())
    assert loaded.config.risk.max_order_usd == Decimal("25.5")
    assert loaded.config.daemon.log_level == "warning"
    assert loaded.plugin_params[("filters", "blocklist")].name_patterns == ("scam", "rug")


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    assert problems(tmp_path, "", environ={"QUANTBOT__RISK__MAX_ORDER_USD": "lots"}) == [
        'environment QUANTBOT__RISK__MAX_ORDER_USD: risk.max_order_usd: expected a number > 0, got "lots"'
    ]
    assert problems(tmp_path, "", environ={"QUANTBOT__FILTERS__3__USE": "x"}) == [
        "environment QUANTBOT__FILTERS__3__USE: cannot set filters[3].use: filters has 0 element(s); "
        "overrides can change elements, not add them"
    ]


@pytest.mark.usefixtures("plugin_site")
def test_secret_from_env_file_and_credential(tmp_path: Path) -> None:
    write(tmp_path / "token.txt", "file-secret-value\n")
    creds = tmp_path / "creds"
    write(creds / "aptos", "0xcredentialkey")
    write(creds / "sol", "[1,2,3,4]")
    write(tmp_path / "key.json", "[9,9,9,9]", mode=0o600)
    cfg_file = write(
        tmp_path / "q.toml",
        """
        mode = "live"
        [wallet]
        solana_keypair = { file = "key.json" }
        aptos_private_key = { credential = "aptos" }
        [[filters]]
        use = "exploding"
        id = "a"
        api_token = { env = "QB_TOKEN" }
        [[filters]]
        use = "exploding"
        id = "b"
        api_token = { file = "token.txt" }
        """,
    )
    loaded = load_config(
        [cfg_file],
        environ={"QB_TOKEN": "env-secret-value", "CREDENTIALS_DIRECTORY": str(creds)},
        plugins=PluginCatalog.discover(),
    )
    wallet = loaded.config.wallet
    assert isinstance(wallet.solana_keypair, SigningKey)
    assert wallet.solana_keypair.reveal() == "[9,9,9,9]"
    assert wallet.aptos_private_key is not None and wallet.aptos_private_key.reveal() == "0xcredentialkey"
    a, b = loaded.plugin_params[("filters", "a")], loaded.plugin_params[("filters", "b")]
    assert isinstance(a.api_token, Secret) and a.api_token.reveal() == "env-secret-value"
    assert b.api_token.reveal() == "file-secret-value"
    assert set(loaded.secrets) == {"[9,9,9,9]", "0xcredentialkey", "env-secret-value", "file-secret-value"}
    shown = str(redacted(loaded))
    assert "secret-value" not in shown and "0xcredentialkey" not in shown and "[9,9,9,9]" not in shown
    assert "*** (env:QB_TOKEN)" in shown


@pytest.mark.usefixtures("plugin_site")
def test_inline_secret_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, '[[filters]]\nuse = "exploding"\napi_token = "hunter22"\n') == [
        'q.toml: filters[0].api_token: inline secrets are refused; write { env = "..." } or '
        '{ file = "..." } or { credential = "..." } (got a value of type str)'
    ]


def test_an_unquoted_key_is_refused_without_printing_it(tmp_path: Path) -> None:
    """0x... without quotes is a TOML integer: the error must not print the key back (to journald)."""
    key = "0x9bf49a6a0755f953811fce125f2683d50429c3bb49e074147e0089a52eae155f"
    (problem,) = problems(tmp_path, f"[wallet]\naptos_private_key = {key}\n")
    assert "inline secrets are refused" in problem and "(got a value of type int)" in problem
    assert str(int(key, 16)) not in problem and key[2:] not in problem


def test_signing_key_from_env_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, '[wallet]\nsolana_keypair = { env = "KEY" }\n', environ={"KEY": "abcdef"}) == [
        "q.toml: wallet.solana_keypair: signing keys are never read from the environment; "
        'use { file = "..." } or { credential = "..." }'
    ]


def test_signing_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key = write(tmp_path / "key.json", "[1,2,3,4]", mode=0o644)
    assert problems(tmp_path, f'[wallet]\nsolana_keypair = {{ file = "{key}" }}\n') == [
        f"q.toml: wallet.solana_keypair: key file {key} has mode 644, readable by others; fix with: chmod 600 {key}"
    ]


def test_missing_secret_sources_are_named(tmp_path: Path) -> None:
    text = '[wallet]\nsolana_keypair = { credential = "sol" }\naptos_private_key = { file = "/nonexistent/k" }\n'
    assert problems(tmp_path, text) == [
        "q.toml: wallet.solana_keypair: credential 'sol': $CREDENTIALS_DIRECTORY is not set "
        "(add LoadCredential= to the unit)",
        "q.toml: wallet.aptos_private_key: cannot read /nonexistent/k: No such file or directory",
    ]


def test_live_mode_without_a_key_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, 'mode = "live"\n') == [
        'q.toml: mode: "live" needs a signing key: set wallet.solana_keypair or wallet.aptos_private_key'
    ]


def test_unknown_plugin_lists_installed_names(tmp_path: Path) -> None:
    assert problems(tmp_path, '[[filters]]\nuse = "blocklst"\n') == [
        "q.toml: filters[0].use: unknown plugin 'blocklst' (did you mean 'blocklist'?); installed: blocklist, burn, "
        "creator_history, holders, mutable, pool_size, renounced, token2022_extensions"
    ]


def test_plugin_table_without_use_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, '[[notifiers]]\nlevel = "info"\n') == ["q.toml: notifiers[0]: missing required key 'use'"]


def test_plugin_parameters_are_validated_against_its_schema(tmp_path: Path) -> None:
    text = '[[filters]]\nuse = "blocklist"\nname_pattern = ["x"]\ncreators = "abc"\n'
    assert problems(tmp_path, text) == [
        "q.toml: filters[0].name_pattern: unknown key (did you mean 'name_patterns'?)",
        'q.toml: filters[0].creators: expected an array, got "abc"',
    ]


def test_plugin_parameter_rule_from_its_own_check(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, '[[filters]]\nuse = "blocklist"\nname_patterns = ["(unclosed"]\n')
    assert msg.startswith("q.toml: filters[0]: name_patterns: invalid regular expression '(unclosed': ")


def test_duplicate_plugin_instance_ids_are_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, '[[filters]]\nuse = "blocklist"\n[[filters]]\nuse = "blocklist"\n') == [
        "q.toml: filters[1].id: duplicate filters id 'blocklist'; give each instance its own id"
    ]


@pytest.mark.usefixtures("plugin_site")
def test_plugin_that_fails_to_import_names_its_distribution(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, '[[filters]]\nuse = "broken"\n')
    assert msg == (
        f"q.toml: filters[0].use: plugin 'broken' (quantbot.filters) from distribution {TEST_DIST} "
        f"{TEST_DIST_VERSION} failed to import: ModuleNotFoundError: No module named 'qb_testplugins_missing'"
    )


def test_changed_sections_splits_daemon_keys(tmp_path: Path) -> None:
    a = load_config([write(tmp_path / "a.toml", "[daemon]\nlog_level = 'info'\n")], environ={}).config
    b = load_config(
        [
            write(
                tmp_path / "b.toml", "[daemon]\nlog_level = 'debug'\nshutdown_timeout = 3\n[risk]\nmax_order_usd = 1\n"
            )
        ],
        environ={},
    ).config
    assert changed_sections(a, b) == {"daemon.log_level", "daemon.shutdown_timeout", "risk"}


# --- through the command line --------------------------------------------------------------------


def test_cli_config_error_exits_78_without_traceback(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", '[risk]\nmax_order_usd = "ten"\n')
    result = run_cli("check-config", "-c", str(cfg))
    assert result.returncode == 78
    assert result.stderr == f'config error: {cfg}: risk.max_order_usd: expected a number > 0, got "ten"\n'
    assert "Traceback" not in result.stderr


def test_cli_config_file_that_is_not_utf8_exits_78_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_bytes("mode = 'paper'\n".encode("utf-16"))  # saved as UTF-16 (with its BOM) by an editor
    result = run_cli("check-config", "-c", str(cfg))
    assert result.returncode == 78
    assert result.stderr == f"config error: {cfg}: not UTF-8 text (byte 0); save the file as UTF-8\n"


def test_cli_run_with_bad_config_exits_78(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", 'mode = "yolo"\n')
    result = run_cli("run", "-c", str(cfg))
    assert result.returncode == 78
    assert "mode: expected one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_prints_effective_config_with_secrets_redacted(tmp_path: Path) -> None:
    key = write(tmp_path / "key.json", "[7,7,7,7,7]", mode=0o600)
    cfg = write(
        tmp_path / "q.toml",
        f'mode = "live"\n[wallet]\nsolana_keypair = {{ file = "{key}" }}\n[risk]\nmax_order_usd = 12\n',
    )
    result = run_cli("check-config", "-c", str(cfg), env=cli_env(QUANTBOT__RISK__MAX_ORDER_SOL="0.25"))
    assert result.returncode == 0, result.stderr
    assert "[7,7,7,7,7]" not in result.stdout + result.stderr
    import json

    shown = json.loads(result.stdout)
    assert shown["wallet"]["solana_keypair"] == f"*** (file:{key})"
    assert shown["risk"]["max_order_usd"] == "12"
    assert shown["risk"]["max_order_sol"] == "0.25"
    assert shown["mode"] == "live"


def test_api_keys_inside_configured_urls_are_secrets_too(tmp_path: Path) -> None:
    """RPC providers put the key in the URL (a query value, a path token): check-config, /status and the logs must
    mask it like any other secret."""
    cfg = write(
        tmp_path / "q.toml",
        """
        [solana]
        endpoints = [{ http = "https://mainnet.helius-rpc.com/?api-key=HELIUSKEY42", ws = "wss://x.example/ws" }]
        [aptos]
        nodes = ["https://aptos.quiknode.pro/QNTOKEN77QNTOKEN77QN/v1"]
        """,
    )
    loaded = load_config([cfg], environ={}, plugins=PluginCatalog.discover())
    assert {"HELIUSKEY42", "QNTOKEN77QNTOKEN77QN"} <= set(loaded.secrets)
    assert "v1" not in loaded.secrets and "mainnet.helius-rpc.com" not in loaded.secrets
    shown = json.dumps(redacted(loaded))
    assert "HELIUSKEY42" not in shown and "QNTOKEN77" not in shown
    assert "https://mainnet.helius-rpc.com/?api-key=***" in shown


SCANNING = """
[solana]
enabled = true
[[solana.endpoints]]
http = "https://rpc.example/"
"""


@pytest.mark.parametrize("filters", ["", '[[filters]]\nuse = "blocklist"\nenabled = false\n'])
def test_a_scanner_judging_launches_without_an_enabled_filter_is_refused(tmp_path: Path, filters: str) -> None:
    assert problems(tmp_path, SCANNING + filters) == [
        "q.toml: filters: the scanner judges launches but no [[filters]] is enabled, so every launch would be "
        "accepted; add [[filters]], or set scanner.enabled = false, or scanner.allow_no_filters = true"
    ]


@pytest.mark.parametrize("scanner", ["enabled = false", "allow_no_filters = true"])
def test_a_scanner_without_filters_loads_when_off_or_explicitly_allowed(tmp_path: Path, scanner: str) -> None:
    cfg = write(tmp_path / "q.toml", SCANNING + f"[scanner]\n{scanner}\n")
    assert load_config([cfg], environ={}, plugins=PluginCatalog.discover()).config.filters == ()


def test_an_overlay_emptying_the_shipped_filters_of_a_scanning_config_is_refused(tmp_path: Path) -> None:
    overlay = write(tmp_path / "overlay.toml", "filters = []\n" + SCANNING)
    with pytest.raises(ConfigError) as err:
        load_config([REPO / "config" / "quantbot.toml", overlay], environ={}, plugins=PluginCatalog.discover())
    assert err.value.problems[0].startswith(f"{overlay}: filters: the scanner judges launches")


def test_infinite_and_nan_numbers_are_refused_in_sections_and_plugin_parameters(tmp_path: Path) -> None:
    text = '[scanner]\nfilter_timeout_s = inf\n[bus]\nhandler_timeout = nan\n[[filters]]\nuse = "creator_history"\n'
    assert problems(tmp_path, text + "window_s = inf\n") == [
        "q.toml: scanner.filter_timeout_s: expected a number > 0, got inf",
        "q.toml: bus.handler_timeout: expected a number > 0, got nan",
        "q.toml: filters[0].window_s: expected a number > 0, got inf",
    ]
