"""Size and exception budgets of the gaia package, measured by walking its syntax trees.

A function's length is its lines from ``def`` to its last line (docstring included,
decorators not); nested functions count on their own too. A broad ``except`` (bare,
``Exception`` or ``BaseException``, alone or in a tuple) must re-raise (a ``raise``
statement in the handler) or carry ``# noqa: BLE001 - <reason>`` on its line.
"""

from __future__ import annotations

import ast
import math
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "gaia"

MEDIAN_FUNCTION_LINES = 12
P90_FUNCTION_LINES = 40
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 600

BROAD = {"Exception", "BaseException"}
NOQA_WITH_REASON = re.compile(r"#\s*noqa:[^#]*\bBLE001\b(?:\s*,\s*[A-Z]+\d+)*\s*[-:\u2013\u2014]\s*\w")
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass(frozen=True)
class Module:
    name: str
    lines: list[str]
    tree: ast.Module


@dataclass(frozen=True)
class Function:
    where: str
    length: int


def _modules() -> list[Module]:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 50, f"expected the gaia package under {PACKAGE}"
    out = []
    for path in paths:
        text = path.read_text()
        out.append(Module(str(path.relative_to(PACKAGE.parent)), text.splitlines(), ast.parse(text)))
    return out


@pytest.fixture(scope="module")
def modules() -> list[Module]:
    return _modules()


def _functions(modules: list[Module]) -> list[Function]:
    return [
        Function(f"{module.name}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for module in modules
        for node in ast.walk(module.tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
    ]


def _percentile(values: list[int], share: float) -> int:
    """Nearest-rank percentile: the smallest value with at least ``share`` of them at or below."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _is_broad(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    if caught is None:
        return True
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(isinstance(name, ast.Name) and name.id in BROAD for name in names)


def _raises(nodes: list[ast.stmt]) -> bool:
    """Whether a ``raise`` runs in these statements' own scope (not in a nested def)."""
    pending: list[ast.AST] = list(nodes)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Raise):
            return True
        if not isinstance(node, SCOPES):
            pending.extend(ast.iter_child_nodes(node))
    return False


def _unexplained_broad_excepts(module: Module) -> Iterator[str]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ExceptHandler) and _is_broad(node) and not _raises(node.body):
            line = module.lines[node.lineno - 1]
            if not NOQA_WITH_REASON.search(line):
                yield f"{module.name}:{node.lineno}: {line.strip()}"


def test_function_lengths_stay_within_budget(modules: list[Module]) -> None:
    functions = _functions(modules)
    lengths = [f.length for f in functions]
    median, p90 = statistics.median(lengths), _percentile(lengths, 0.9)
    too_long = [f"{f.where} ({f.length} lines)"
                for f in sorted(functions, key=lambda f: -f.length) if f.length > MAX_FUNCTION_LINES]
    assert median <= MEDIAN_FUNCTION_LINES, f"median function is {median} lines"
    assert p90 <= P90_FUNCTION_LINES, f"90th percentile function is {p90} lines"
    assert too_long == [], f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_no_module_over_budget(modules: list[Module]) -> None:
    too_long = [f"{m.name} ({len(m.lines)} lines)" for m in modules if len(m.lines) > MAX_MODULE_LINES]
    assert too_long == [], f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_every_broad_except_reraises_or_says_why(modules: list[Module]) -> None:
    offenders = [where for module in modules for where in _unexplained_broad_excepts(module)]
    assert offenders == [], f"broad excepts without a re-raise or a noqa reason: {offenders}"


SAMPLE = '''
def handled():
    try:
        work()
    except Exception:
        pass
    try:
        work()
    except:  # noqa: BLE001
        pass
    try:
        work()
    except (ValueError, BaseException):
        def later():
            raise
    try:
        work()
    except Exception:  # noqa: BLE001 - top level: log and record
        pass
    try:
        work()
    except BaseException:
        cleanup()
        raise
    try:
        work()
    except ValueError:
        pass
'''


def test_the_except_check_finds_silent_and_unexplained_handlers() -> None:
    sample = Module("sample.py", SAMPLE.splitlines(), ast.parse(SAMPLE))
    assert [where.split(":")[1] for where in _unexplained_broad_excepts(sample)] == ["5", "9", "13"]


def test_percentile_is_nearest_rank() -> None:
    assert _percentile(list(range(1, 11)), 0.9) == 9
    assert _percentile(list(range(1, 12)), 0.9) == 10
    assert _percentile([7], 0.9) == 7
