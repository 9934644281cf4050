"""Module names as the code really imports them, and one namespace per independent project.

Discovery names a file by walking up while directories are packages (``pkg/sub/mod.py`` is
``pkg.sub.mod``). Two layouts of real repositories defeat that, and both used to leave the task
index empty without a word:

- **An accidental top package.** An ``__init__.py`` at the repository root makes every module
  ``repo.main.celery`` while the code imports ``main.celery`` (the root is on ``sys.path``).
  When no file imports the top package by its own name but some import its submodules as if
  they were top-level, the top package is dropped from the names of the files below it.
- **Services that share module names.** ``services/a/tasks.py`` and ``services/b/tasks.py``
  are both ``tasks``: one module table can hold only one of them. Files are grouped by import
  root (the directory their dotted name starts from); a root holding a name that another root
  holds too is a project of its own, with the files of the other roots as context when their
  names do not collide. Each file is reported by exactly one project.

Both read only what the pre-filter already has for every file: its name and its imports.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Dict, Iterable, List, Set

if TYPE_CHECKING:
    from celery_chain_lint.load.pipeline import _File

_STANDARD_LIBRARY = frozenset(getattr(sys, "stdlib_module_names", ()))


def import_root(f: "_File") -> str:
    """The directory ``f``'s dotted name starts from (``/r`` for ``/r/pkg/mod.py``)."""
    return _import_root(f.abspath, f.source.module.count(".") + (1 if f.source.is_package else 0))


@functools.lru_cache(maxsize=1 << 16)  # three passes over every file of a tree ask it
def _import_root(path: str, depth: int) -> str:
    directory = os.path.dirname(path)
    for _ in range(depth):
        directory = os.path.dirname(directory)
    return directory


def drop_accidental_top_packages(files: List["_File"]) -> None:
    """Rename in place the files below a top package that the code never imports by name but
    whose modules it imports as if they were top-level (an ``__init__.py`` at the root)."""
    for members in _by_import_root(files).values():
        modules = {f.source.module: f.source.is_package for f in members}
        imported = _absolute_imports(members)
        tops = {source.split(".")[0] for source in imported}
        for top in sorted({module.split(".")[0] for module in modules if "." in module}):
            if top in tops:
                continue  # ``import top`` / ``from top.x import y``: the package is real
            below = [f for f in members if f.source.module.startswith(top + ".")]
            if not any(_names_below(top, source, modules) for source in _absolute_imports(below)):
                continue
            short = {f.source.module[len(top) + 1:] for f in below}
            if short & set(modules):
                continue  # the short names are taken: renaming would merge two modules
            for f in below:
                f.source = replace(f.source, module=f.source.module[len(top) + 1:])


def adopt_namespace_packages(files: List["_File"]) -> None:
    """Rename in place the files of an import root that the code imports as a package: a
    directory without ``__init__.py`` (an implicit namespace package) whose modules other
    files import as ``dir.module`` (``backend/application/tasks.py`` imported as
    ``application.tasks`` by ``backend/main.py``): their names gain the directory's."""
    for _ in range(8):  # a namespace package inside another: one level a round
        if not _adopt_one_level(files):
            return


def _adopt_one_level(files: List["_File"]) -> bool:
    roots = _by_import_root(files)
    modules = {f.source.module for f in files}
    imported = _absolute_imports_with_names(files)
    renamed = False
    for root, members in roots.items():
        package = os.path.basename(root)
        if not package.isidentifier() or package in modules or package == "celery" \
                or package in _STANDARD_LIBRARY or os.path.isfile(os.path.join(root, "__init__.py")):
            continue
        own = {f.source.module for f in members}
        if not any(_names_a_module_of(package, source, names, own) for source, names in imported):
            continue
        longer = {f"{package}.{f.source.module}" for f in members}
        if longer & modules:
            continue  # taken: renaming would merge two modules
        for f in members:
            f.source = replace(f.source, module=f"{package}.{f.source.module}")
        modules = {f.source.module for f in files}
        renamed = True
    return renamed


def _names_a_module_of(package: str, source: str, names, own: Set[str]) -> bool:
    """Whether ``import source`` / ``from source import names`` names ``package.<one of own>``."""
    if source.startswith(package + "."):
        rest = source[len(package) + 1:]
        return rest in own or rest.split(".")[0] in own
    return source == package and any(name in own for name in names or ())


def _absolute_imports_with_names(files: Iterable["_File"]):
    return {(source, tuple(names or ())) for f in files for level, source, names in f.imports
            if level == 0 and source}


def _by_import_root(files: Iterable["_File"]) -> Dict[str, List["_File"]]:
    roots: Dict[str, List["_File"]] = {}
    for f in files:
        roots.setdefault(import_root(f), []).append(f)
    return roots


def _names_below(top: str, source: str, modules: Dict[str, bool]) -> bool:
    """Whether ``import source`` can only mean ``top.source``: a module there, not itself a
    module elsewhere, and not Celery nor the standard library (``import celery`` beside
    ``proj/celery.py`` is the real Celery)."""
    first = source.split(".")[0]
    if source in modules or first == "celery" or first in _STANDARD_LIBRARY:
        return False
    return f"{top}.{source}" in modules


def _absolute_imports(files: Iterable["_File"]) -> Set[str]:
    """Every module imported absolutely."""
    return {source for f in files for level, source, _names in f.imports
            if level == 0 and source}


def split_namespaces(files: List["_File"]) -> List[List["_File"]]:
    """The files of each project of the tree: one list when no two import roots share a module
    name, else the shared part first, then one per import root that collides (its files
    reported, the rest of the tree as context where the names do not collide)."""
    roots = _by_import_root(files)
    owners: Dict[str, Set[str]] = {}
    for root, members in roots.items():
        for f in members:
            owners.setdefault(f.source.module, set()).add(root)
    colliding = {module for module, where in owners.items() if len(where) > 1}
    if not colliding:
        return [files]
    own_roots = sorted(root for root, members in roots.items()
                       if any(f.source.module in colliding for f in members))
    shared = [f for root, members in roots.items() if root not in own_roots for f in members]
    projects = [shared] if shared else []
    by_name = {f.source.module: f for f in shared}
    for root in own_roots:
        mine = roots[root]
        names = {f.source.module for f in mine}
        # Its context: the shared files its own can reach through imports (a tree of many
        # small roots, test data directories, must not analyse the whole tree again each).
        reached = _reached(mine, {name: f for name, f in by_name.items() if name not in names})
        projects.append(mine + [replace(f, reported=False) for f in reached])
    return projects


def _reached(start: List["_File"], available: Dict[str, "_File"]) -> List["_File"]:
    """The files of ``available`` that ``start`` imports, directly or through one another
    (``import a.b.c`` reaches ``a``, ``a.b`` and ``a.b.c``; ``from a import b``, ``a.b`` too)."""
    from celery_chain_lint.facts.model import resolve_relative

    found: Dict[str, "_File"] = {}
    todo = list(start)
    while todo:
        f = todo.pop()
        for level, source, names in f.imports:
            module = resolve_relative(f.source.module, f.source.is_package, level, source)
            if module is None:
                continue
            parts = module.split(".")
            wanted = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
            wanted += [f"{module}.{name}" for name in names or ()]
            for name in wanted:
                if name in available and name not in found:
                    found[name] = available[name]
                    todo.append(available[name])
    return list(found.values())
