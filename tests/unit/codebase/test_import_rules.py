"""Which package may import which: each rule names a package and the prefixes none of its
modules may import (read from the source's syntax tree; imports under ``TYPE_CHECKING``
and inside functions count too). A transitive rule also follows every gaia module those
modules load, through any number of others."""

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
    Rule("gaia.miner", ("gaia.validator", "gaia.tasks.defined_tasks.weather.pipeline"),
         "the miner runs without validator code"),
    Rule("gaia.tasks.defined_tasks.weather.states",
         ("sqlalchemy", "gaia.database", "gaia.validator", "gaia.jobs"),
         "the state machines are pure tables: the queries that apply them live with the others"),
    Rule("gaia.tasks.defined_tasks.weather.scoring",
         ("gaia.tasks.defined_tasks.weather.pipeline", "gaia.jobs", "gaia.database",
          "gaia.validator", "sqlalchemy"),
         "scoring is arithmetic over fields handed to it; the pipeline fetches and stores"),
)

TRANSITIVE_RULES = (
    Rule("gaia.miner", ("gaia.validator", "gaia.tasks.defined_tasks.weather.pipeline"),
         "the miner runs without validator code, even through a shared module"),
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
        elif _is_literal_import_module(node):
            found.add(node.args[0].value)  # type: ignore[attr-defined]
    return found


def _is_literal_import_module(node: ast.AST) -> bool:
    """``importlib.import_module("gaia.x")``: a module named in the source, loaded later."""
    if not isinstance(node, ast.Call) or not node.args:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0]
    return name == "import_module" and isinstance(first, ast.Constant) and isinstance(
        first.value, str)


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


def module_file(name: str) -> Path | None:
    """The source of gaia module ``name``; None for other packages and for names that are
    attributes of a module (``from gaia.config import Settings`` also yields
    ``gaia.config.Settings``)."""
    if not matches(name, "gaia"):
        return None
    base = PACKAGE.parent.joinpath(*name.split("."))
    return next((f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None)


def _with_packages(name: str) -> list[str]:
    """``a.b.c`` loads ``a``, ``a.b`` and ``a.b.c``: each package's ``__init__`` runs."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def import_closure(package: str) -> dict[str, str | None]:
    """Every gaia module loaded by importing the modules of ``package``, each mapped to the
    module that first imports it (None for ``package``'s own)."""
    start = [module_name(path) for path in rule_files(Rule(package, (), ""))]
    importer: dict[str, str | None] = dict.fromkeys(start)
    todo = list(start)
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None:
            continue
        for imported in imported_modules(path.read_text(), name, is_package=path.stem == "__init__"):
            for loaded in _with_packages(imported):
                if loaded not in importer and module_file(loaded) is not None:
                    importer[loaded] = name
                    todo.append(loaded)
    return importer


def _chain(importer: dict[str, str | None], name: str) -> str:
    links = [name]
    while (parent := importer[links[-1]]) is not None:
        links.append(parent)
    return " -> ".join(reversed(links))


def transitive_violations(rule: Rule) -> list[str]:
    importer = import_closure(rule.package)
    return [f"{_chain(importer, name)} ({rule.why})" for name in sorted(importer)
            if any(matches(name, prefix) for prefix in rule.forbidden)]


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


@pytest.mark.parametrize("rule", TRANSITIVE_RULES, ids=lambda rule: rule.package)
def test_package_loads_nothing_it_must_not_through_other_modules(rule: Rule) -> None:
    assert rule_files(rule), f"no modules found for {rule.package}: rename the rule too"
    assert transitive_violations(rule) == []


def test_the_closure_reports_a_module_loaded_only_through_another() -> None:
    rule = Rule("gaia.miner", ("gaia.chain.static",), "only to test the closure")
    assert violations(rule) == []  # no miner module imports it itself
    found = transitive_violations(rule)
    assert found and all(line.startswith("gaia.miner.") for line in found)
    assert any(" -> gaia.chain.factory -> gaia.chain.static (only to test" in line
               for line in found), found


def test_the_closure_follows_package_inits_and_function_level_imports() -> None:
    closure = import_closure("gaia.config")  # it imports the retention rule inside a function
    assert closure["gaia.tasks.defined_tasks.weather.retention"] == "gaia.config"
    assert closure["gaia.tasks.defined_tasks.weather.forecast_store"] == (
        "gaia.tasks.defined_tasks.weather.retention")
    assert {"gaia", "gaia.tasks", "gaia.tasks.defined_tasks.weather"} <= set(closure)


def test_an_import_by_a_literal_module_name_is_seen() -> None:
    source = "import importlib\nimportlib.import_module('gaia.validator.pause')\n"
    assert "gaia.validator.pause" in imported_modules(source, "gaia.miner.x")
