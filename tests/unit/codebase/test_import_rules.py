"""Which package may import which: each rule names a package and the prefixes none of its
modules may import (read from the source's syntax tree; imports under ``TYPE_CHECKING``
and inside functions count too)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "gaia"


@dataclass(frozen=True)
class Rule:
    package: str  # a package or module, dotted: "gaia.jobs"
    forbidden: tuple[str, ...]  # dotted prefixes: "gaia.tasks" also forbids "gaia.tasks.x"
    why: str


RULES = (
    Rule("gaia.jobs", ("gaia.tasks", "gaia.validator", "gaia.config"),
         "the job queue is generic: job types, policies and settings are handed to it"),
    Rule("gaia.miner", ("gaia.validator",), "the miner runs without validator code"),
    Rule("gaia.tasks.defined_tasks.weather.states",
         ("sqlalchemy", "gaia.database", "gaia.validator", "gaia.jobs"),
         "the state machines are pure tables: the queries that apply them live with the others"),
    Rule("gaia.tasks.defined_tasks.weather.scoring",
         ("gaia.tasks.defined_tasks.weather.pipeline", "gaia.jobs", "gaia.database",
          "gaia.validator", "sqlalchemy"),
         "scoring is arithmetic over fields handed to it; the pipeline fetches and stores"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``module`` imports; ``from a import b`` counts as ``a`` and ``a.b``
    (``b`` may be a submodule), relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - node.level + 1]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def rule_files(rule: Rule) -> list[Path]:
    target = PACKAGE.parent.joinpath(*rule.package.split("."))
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return [f for f in files if f.is_file()]


def violations(rule: Rule) -> list[str]:
    found = []
    for path in rule_files(rule):
        name = module_name(path)
        imports = imported_modules(path.read_text(), name, is_package=path.stem == "__init__")
        found += [f"{name} imports {imp} ({rule.why})" for imp in sorted(imports)
                  if any(matches(imp, prefix) for prefix in rule.forbidden)]
    return found


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.package)
def test_package_imports_nothing_it_must_not(rule: Rule) -> None:
    assert rule_files(rule), f"no modules found for {rule.package}: rename the rule too"
    assert violations(rule) == []


def test_every_kind_of_import_is_seen() -> None:
    source = "\n".join([
        "import gaia.tasks.defined_tasks.weather",
        "from gaia import validator",
        "from ..config import Settings",
        "from . import queue",
        "def later():",
        "    from gaia.validator.pause import hold_if_paused",
    ])
    found = imported_modules(source, "gaia.jobs.worker")
    assert {"gaia.tasks.defined_tasks.weather", "gaia.validator", "gaia.config",
            "gaia.jobs.queue", "gaia.validator.pause"} <= found
    assert "gaia.jobs" in imported_modules("from . import sql", "gaia.jobs", is_package=True)


def test_a_prefix_matches_whole_names_only() -> None:
    assert matches("gaia.tasks", "gaia.tasks") and matches("gaia.tasks.x", "gaia.tasks")
    assert not matches("gaia.tasksforce", "gaia.tasks")


def test_a_rule_against_a_real_import_reports_it() -> None:
    rule = Rule("gaia.jobs", ("gaia.clock",), "only to test the scan")
    assert "gaia.jobs.worker imports gaia.clock (only to test the scan)" in violations(rule)
