"""Where SQL text is built from pieces: each piece must come from the code, never from input.

asyncpg sends values as parameters ($1, $2...), so an injection can only enter through the
text itself. :func:`unsafe_pieces` walks warpd's source with ``ast`` and, for every
``execute``/``fetch*``/``copy``/``prepare`` call whose SQL is an f-string, ``.format()``,
``%`` or ``+``, proves each interpolated piece is a literal, an UPPER_CASE constant (or built
from constants: ``", ".join(COLUMNS)``, ``TABLES[kind]``), or a local variable every
assignment of which is such a piece. What it cannot prove is returned, file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

QUERY_METHODS = frozenset(
    {"execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare", "cursor",
     "copy_records_to_table", "copy_to_table", "copy_from_query"}
)  # fmt: skip


def _assignments(function: ast.AST) -> dict[str, list[ast.expr]]:
    """Every value bound to each local name in ``function`` (for-loop targets: their iterable)."""
    bound: dict[str, list[ast.expr]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            if node.value is not None:
                bound.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.For | ast.comprehension):
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name):
                    bound.setdefault(name.id, []).append(node.iter)
    return bound


class _Proof:
    def __init__(self, bound: dict[str, list[ast.expr]]) -> None:
        self.bound = bound
        self.seen: set[str] = set()

    def safe(self, node: ast.expr | None) -> bool:
        if node is None or isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Name):
            if node.id.isupper() or node.id.lstrip("_").isupper():
                return True
            if node.id in self.seen:
                return True  # a loop of assignments: judged by its other values
            self.seen.add(node.id)
            values = self.bound.get(node.id, [])
            return bool(values) and all(self.safe(v) for v in values)
        if isinstance(node, ast.Attribute):
            return self.safe(node.value)
        if isinstance(node, ast.Subscript):
            return self.safe(node.value)  # an entry of a constant table, whatever the key
        if isinstance(node, ast.Call):
            func = node.func
            receiver = func.value if isinstance(func, ast.Attribute) else None
            return (
                receiver is not None and self.safe(receiver)
                and all(self.safe(a) for a in node.args)
                and all(self.safe(k.value) for k in node.keywords)
            )  # fmt: skip
        if isinstance(node, ast.IfExp):
            return self.safe(node.body) and self.safe(node.orelse)
        if isinstance(node, ast.JoinedStr):
            return all(self.safe(v) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.safe(node.value)
        if isinstance(node, ast.BinOp):
            return self.safe(node.left) and self.safe(node.right)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return all(self.safe(e) for e in node.elts)
        return False


def _built(sql: ast.expr) -> bool:
    if isinstance(sql, ast.JoinedStr | ast.BinOp):
        return True
    return (
        isinstance(sql, ast.Call)
        and isinstance(sql.func, ast.Attribute)
        and (sql.func.attr == "format")
    )


def scan_source(text: str, filename: str) -> Iterator[tuple[str, int, str]]:
    """(function, line, SQL expression) of each built SQL text not proven to come from code."""
    tree = ast.parse(text, filename)
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        bound = _assignments(function)
        for node in ast.walk(function):
            if not (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in QUERY_METHODS and node.args and _built(node.args[0])
            ):  # fmt: skip
                continue
            if not _Proof(bound).safe(node.args[0]):
                yield function.name, node.lineno, ast.unparse(node.args[0])[:100]


def unsafe_pieces(root: Path) -> Iterator[tuple[str, str, int, str]]:
    """(file relative to root's parent, function, line, SQL) under ``root``."""
    for path in sorted(root.rglob("*.py")):
        name = str(path.relative_to(root.parent))
        for function, line, sql in scan_source(path.read_text(), name):
            yield name, function, line, sql
