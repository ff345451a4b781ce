"""The systemd unit and its installer: lifecycle and hardening directives, the install layout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from quantbot.config import load_config
from tests.conftest import REPO

UNIT = REPO / "systemd" / "quantbot.service"
INSTALL = REPO / "scripts" / "install-service"
BASH = shutil.which("bash") or "/bin/bash"


def unit_directives(text: str) -> dict[str, dict[str, list[str]]]:
    """`[Section]` -> key -> every value given (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


REQUIRED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "Restart": "on-failure",
    "RestartPreventExitStatus": "78",
    "DynamicUser": "yes",
    "StateDirectory": "quantbot",
    "ConfigurationDirectory": "quantbot",
    "LogsDirectory": "quantbot",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def test_the_unit_has_the_lifecycle_and_hardening_directives() -> None:
    unit = unit_directives(UNIT.read_text())
    service = unit["Service"]
    for key, value in REQUIRED.items():
        assert service.get(key) == [value], f"{key}={value} missing (found {service.get(key)})"
    assert "@system-service" in service["SystemCallFilter"]
    assert service["ExecStart"] == ["/opt/quantbot/.venv/bin/quantbot run"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert 0 < int(service["WatchdogSec"][0]) <= 60
    assert "QUANTBOT__DAEMON__DATA_DIR=/var/lib/quantbot" in service["Environment"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_stop_timeout_outlasts_the_daemons_own_shutdown_bound() -> None:
    service = unit_directives(UNIT.read_text())["Service"]
    default_shutdown = load_config([REPO / "config" / "quantbot.toml"], environ={}).config.daemon.shutdown_timeout
    assert int(service["TimeoutStopSec"][0]) > default_shutdown


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(INSTALL), *args], capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ)
    )


def test_install_dry_run_lists_every_step_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = install("--dry-run", "--prefix", str(root))
    assert result.returncode == 0, result.stderr
    assert not root.exists()
    out = result.stdout
    assert f"python3 -m venv {root}/opt/quantbot/.venv" in out
    assert f"{root}/etc/systemd/system/quantbot.service" in out
    assert f"{root}/etc/quantbot/quantbot.toml" in out
    assert "systemctl" not in out.replace("systemctl not called", "")
    assert out.rstrip().endswith("dry run, nothing changed")


def test_install_into_a_prefix_lays_out_unit_config_credentials_and_keeps_the_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    creds = root / "etc" / "quantbot" / "credentials"
    creds.mkdir(parents=True)
    (creds / "solana-keypair").write_text("[1,2,3]")
    (creds / "http-token").write_text("token-value")
    result = install("--prefix", str(root), "--skip-venv")
    assert result.returncode == 0, result.stderr
    unit_dir = root / "etc" / "systemd" / "system"
    assert (unit_dir / "quantbot.service").read_text() == UNIT.read_text()
    dropin = unit_directives((unit_dir / "quantbot.service.d" / "credentials.conf").read_text())
    assert sorted(dropin["Service"]["LoadCredential"]) == [
        "http-token:/etc/quantbot/credentials/http-token",
        "solana-keypair:/etc/quantbot/credentials/solana-keypair",
    ]
    assert creds.stat().st_mode & 0o777 == 0o700
    config = root / "etc" / "quantbot" / "quantbot.toml"
    assert load_config([config], environ={}).config.mode == "paper", "the skeleton is the shipped paper config"
    wrapper = (root / "opt" / "quantbot" / "bin" / "quantbot").read_text()
    assert "CREDENTIALS_DIRECTORY=/etc/quantbot/credentials" in wrapper
    assert "QUANTBOT__DAEMON__DATA_DIR=/var/lib/quantbot" in wrapper
    config.write_text('mode = "paper"\ninstance = "mine"\n')
    again = install("--prefix", str(root), "--skip-venv")
    assert again.returncode == 0, again.stderr
    assert 'instance = "mine"' in config.read_text(), "an operator's config is never overwritten"


def test_install_refuses_an_unknown_option() -> None:
    result = install("--frobnicate")
    assert result.returncode == 64 and "unknown option --frobnicate" in result.stderr


@pytest.mark.skipif(not Path("/usr/bin/systemd-analyze").exists(), reason="systemd-analyze not installed")
def test_check_systemd_verifies_the_unit_and_its_exposure() -> None:
    result = subprocess.run(
        [BASH, str(REPO / "scripts" / "check-systemd")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify OK" in result.stdout
    exposure = float(result.stdout.split("security exposure ")[1].split()[0])
    assert exposure <= 2.5
