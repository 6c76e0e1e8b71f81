"""The layering rule of ARCHITECTURE.md, checked on the source with ``ast``.

protocols/ is sans-I/O and reusable: it imports nothing that does I/O, keeps
time or draws randomness, and nothing from media/ or warpd/. media/ sits on
protocols/ only. warpd/ may import everything below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, frozenset[str]] = {
    "protocols": frozenset(
        {
            "asyncio",
            "socket",
            "ssl",
            "time",
            "random",
            "selectors",
            "threading",
            "subprocess",
            "logging",
            "structlog",
            "asyncpg",
            "aiohttp",
            "aio_pika",
            "uvloop",
            "warpd",
            "media",
        }
    ),
    "media": frozenset({"warpd", "asyncpg", "aiohttp", "aio_pika"}),
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def layer_files() -> list[tuple[str, Path]]:
    return [
        (layer, path)
        for layer in sorted(FORBIDDEN)
        for path in sorted((ROOT / layer).rglob("*.py"))
    ]


@pytest.mark.parametrize(("layer", "path"), layer_files(), ids=str)
def test_imports_point_down(layer: str, path: Path) -> None:
    wrong = imported_roots(path) & FORBIDDEN[layer]
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)} ({layer}/ may not)"


def test_rule_catches_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom warpd.config import load\nfrom . import sibling\n")
    assert imported_roots(bad) & FORBIDDEN["protocols"] == {"asyncio", "warpd"}
