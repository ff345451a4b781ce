"""Import rules for the scanner's rooms: the built-in filters see only quantbot.api; the scanner and its
helpers (intelligence) never import the order path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ORDER_PATH = ("quantbot.risk", "quantbot.orders", "quantbot.portfolio", "quantbot.exits", "quantbot.sizing")
INTELLIGENCE = ["scanner", "enrich", "features", "rugwatch", "creators", "launchfeed", "candidates"]


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", sorted((REPO / "plugins" / "quantbot_filters").glob("*.py")), ids=lambda p: p.name)
def test_filter_plugins_import_only_the_api_from_quantbot(path: Path) -> None:
    project = {m for m in imports(path) if m.split(".")[0] == "quantbot"}
    assert project <= {"quantbot.api"}, f"{path.name} imports {sorted(project - {'quantbot.api'})}"


@pytest.mark.parametrize("module", INTELLIGENCE)
def test_the_scanner_rooms_never_import_the_order_path(module: str) -> None:
    found = {m for m in imports(REPO / "quantbot" / f"{module}.py") if m.startswith(ORDER_PATH)}
    assert not found


def test_candidates_sit_on_the_floor_with_the_events() -> None:
    project = {m for m in imports(REPO / "quantbot" / "candidates.py") if m.startswith("quantbot")}
    assert project == {"quantbot.events"}
