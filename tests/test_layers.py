"""The product's import graph runs one way: each module imports only from its own layer or below, and
no chain of imports (function-level ones included) comes back to where it started.

The layers, bottom to top, as docs/architecture.md draws them. A module matches the longest prefix
listed; a new module that matches none fails `test_every_module_has_a_layer`, so it gets placed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "alerts", "connectors", "classifiers")
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core: records, labels, failures, clock, logs", ("monitor.core",)),
    ("query language and text normalisation", ("monitor.normalize", "monitor.query")),
    ("config base types", ("monitor.configbase", "monitor.yamlsource")),
    ("platforms and classifiers", ("connectors", "classifiers")),
    ("config", ("monitor.config",)),
    ("pure decisions", ("alerts", "monitor.health", "monitor.matcher")),
    ("storage", ("monitor.store",)),
    ("delivery: the outbox loop and receivers", ("alerts.slack", "alerts.receivers")),
    ("application", ("monitor", "alerts.socket_mode")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _known(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every project module `module` imports, wherever the import statement is."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {target for target in map(_known, names) if target and target != module}
    return found


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    return None if best is None else best[1]


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_no_import_runs_upward():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
              for m in sorted(MODULES) for t in sorted(imports_of(m)) if layer_of(t) > layer_of(m)]
    assert upward == []


def test_the_core_imports_nothing_of_the_project():
    core = [m for m in MODULES if layer_of(m) == 0]
    assert core and all(layer_of(t) == 0 for m in core for t in imports_of(m))


def test_no_import_cycle():
    graph = {m: imports_of(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checks_see_upward_and_function_level_imports():
    """The graph itself: a function-level import is an edge, and a known upward one is seen as such."""
    assert "monitor.daemon" in imports_of("monitor.cli")  # imported inside a function there
    assert layer_of("monitor.store.outbox") > layer_of("alerts.rules") > layer_of("monitor.config.settings")
    assert layer_of("monitor.cli") == len(LAYERS) - 1 and layer_of("alerts.slack") == len(LAYERS) - 2


def test_no_test_module_imports_another():
    """Shared helpers live in tests/support (and fixtures in conftest): a test module is never imported."""
    tests = ROOT / "tests"
    offenders = []
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name} imports {n}" for n in names
                          if n.split(".")[-1].startswith("test_") or n.split(".")[-1] == "conftest"]
    assert offenders == []


def test_a_platform_imports_no_other_platform():
    """A platform plug-in (a module or package of connectors declaring PLUGIN) uses the shared connector
    helpers and the layers below, never another platform: adding or removing one touches no other."""
    plugins = {m for m, path in MODULES.items() if m.startswith("connectors.") and m.count(".") == 1
               and re.search(r"^PLUGIN = Platform\(", path.read_text(), re.M)}
    assert {"connectors.feeds", "connectors.reddit", "connectors.x"} <= plugins

    def platform_of(module: str) -> str | None:
        return next((p for p in plugins if module == p or module.startswith(p + ".")), None)

    crossing = [f"{m} imports {t}" for m in sorted(MODULES) if platform_of(m)
                for t in sorted(imports_of(m)) if platform_of(t) not in (None, platform_of(m))]
    assert crossing == []
