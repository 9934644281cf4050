"""The package's layers, checked from its import graph (read with ``ast``, nothing imported).

- no import cycle among our modules, counting imports inside functions (only those under
  ``if TYPE_CHECKING:`` are for annotations and never run);
- the load layer is entered through ``celery_chain_lint.load`` alone: no module outside
  ``load/`` imports one of its modules;
- the top level holds the CLI, the engine, the shared finding types and the layer packages.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "celery_chain_lint"
TOP_LEVEL_MODULES = {"__init__", "__main__", "cli", "engine", "findings"}


def _module_names() -> Dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _runtime_imports(tree: ast.AST) -> Iterator[ast.AST]:
    """Import statements that run, wherever they are (``if TYPE_CHECKING:`` blocks skipped)."""
    stack: List[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _targets(node: ast.AST, module: str, is_package: bool, known: Set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        parent = module.split(".")
        parent = parent if is_package else parent[:-1]
        parent = parent[:len(parent) - (node.level - 1)]
        base = ".".join(parent + ([node.module] if node.module else []))
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in known else base


def import_graph() -> Dict[str, Set[str]]:
    modules = _module_names()
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = set()
        for node in _runtime_imports(tree):
            for target in _targets(node, name, path.name == "__init__.py", set(modules)):
                if target in modules and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_even_through_imports_inside_functions():
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_load_layer_is_entered_through_its_package_only():
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not module.startswith("celery_chain_lint.load")
        for target in targets if target.startswith("celery_chain_lint.load."))
    assert offenders == []


def test_the_load_layer_imports_nothing_above_it():
    above = ("celery_chain_lint.engine", "celery_chain_lint.cli", "celery_chain_lint.rules",
             "celery_chain_lint.reporters", "celery_chain_lint.fixes",
             "celery_chain_lint.harness")
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items() if module.startswith("celery_chain_lint.load")
        for target in targets if target.startswith(above))
    assert offenders == []


def test_the_top_level_holds_the_cli_the_engine_and_the_layer_packages():
    loose = {path.stem for path in PACKAGE.glob("*.py")}
    assert loose == TOP_LEVEL_MODULES


def test_the_load_layer_names_no_rule():
    """What the rules need is a property of the rules (``Rule.reads_task_methods_on_functions``),
    given to the loader: it spells no rule code."""
    import re

    named = sorted(f"{path.name}:{number}" for path in (PACKAGE / "load").glob("*.py")
                   for number, line in enumerate(path.read_text().splitlines(), start=1)
                   if re.search(r"CCL0\d\d", line))
    assert named == []
