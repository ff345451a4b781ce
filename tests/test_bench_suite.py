"""The benchmark suite still runs end to end (`scripts/bench/run --quick`); its figures are not checked here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.subprocess
def test_bench_run_quick_runs_every_part_and_writes_the_results_table(
    tmp_path: Path, solana_fixtures: Path, aptos_fixtures: Path
) -> None:
    results = tmp_path / "RESULTS.md"
    env = {**os.environ, "QUANTBOT_FIXTURES": str(solana_fixtures.parent)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench" / "run"), "--quick", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = results.read_text()
    for part in ("ingest:", "reaction:", "bus: 16 subscribers", "scale: 1,000 watched wallets", "replay --speed max"):
        assert part in text, f"{part!r} missing from {text}"
    assert "FAILED" not in text
    assert "- git commit: " in text and "- cores: " in text and "- CPU: " in text
