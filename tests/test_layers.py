"""The shape shows the architecture: imports point down only (ARCHITECTURE.md, Layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "carechain"

# Lower number = lower layer. A module may import its own layer or any lower one.
LAYERS = {
    "errors": 0,
    "crypto": 1,
    "identity": 1,
    "standards": 2,
    "ledger": 3,
    "vault": 4,
    "contracts": 5,
    "ordering": 6,
    "node": 7,
    "api": 8,
    "cli": 9,
}
# Contracts must not reach the node, the API or the ordering; the ledger never a contract.
FORBIDDEN = {
    "contracts": {"node", "api", "cli", "ordering"},
    "ledger": {"contracts", "node", "api", "cli", "ordering", "vault"},
    "standards": {"ledger", "contracts", "node", "api", "cli", "ordering", "vault", "identity"},
}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "carechain" or len(parts) < 2:
        return None
    return parts[1]


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.stem in LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_only(path: Path) -> None:
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    for module in imports_of(path):
        target = layer_of(module)
        if target is None or target == own:
            continue
        assert target in LAYERS, f"{module}: unknown layer {target!r}"
        assert target not in FORBIDDEN.get(own, set()), f"{own} must not import {module}"
        assert LAYERS[target] <= LAYERS[own], f"{own} (layer {LAYERS[own]}) imports {module}"
