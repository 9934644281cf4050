"""Which files to analyse, and the dotted module name of each."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

# As ruff's defaults: never descend into these.
DEFAULT_EXCLUDES = frozenset({
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache",
    ".nox", ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox",
    ".venv", ".vscode", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules",
    "site-packages", "venv", "__pycache__", ".celery_chain_lint_cache",
})


@dataclass(frozen=True)
class SourceFile:
    path: str  # as shown to the user: as given, or relative to the working directory
    module: str
    is_package: bool


class PathError(Exception):
    """A path given on the command line that cannot be analysed."""


def discover(paths: Sequence[str], excludes: Iterable[str] = DEFAULT_EXCLUDES,
             source_roots: Sequence[str] = ()) -> List[SourceFile]:
    excludes = frozenset(excludes)
    roots = [os.path.abspath(root) for root in source_roots]
    found, seen = [], set()
    for given in paths:
        if not os.path.exists(given):
            raise PathError(f"{given}: no such file or directory")
        for path in _python_files(given, excludes):
            key = os.path.realpath(path)
            if key in seen:
                continue
            seen.add(key)
            module, is_package = module_name(path, roots)
            found.append(SourceFile(_display(path), module, is_package))
    return found


def _python_files(given: str, excludes: frozenset) -> Iterator[str]:
    if os.path.isfile(given):
        yield given
        return
    visited = set()
    for directory, subdirs, files in os.walk(given, followlinks=False):
        real = os.path.realpath(directory)
        if real in visited:
            subdirs[:] = []
            continue
        visited.add(real)
        subdirs[:] = sorted(d for d in subdirs if d not in excludes)
        for name in sorted(files):
            path = os.path.join(directory, name)
            if name.endswith(".py") and os.path.isfile(path):
                yield path


def _display(path: str) -> str:
    path = os.path.normpath(path)
    if os.path.isabs(path):
        try:
            relative = os.path.relpath(path)
        except ValueError:
            return path
        return path if relative.startswith("..") else relative
    return path


def module_name(path: str, source_roots: Sequence[str] = ()) -> Tuple[str, bool]:
    """``pkg.sub.mod`` for ``.../pkg/sub/mod.py``: relative to a configured source root if the
    file is under one, else found by walking up while directories are packages."""
    absolute = Path(os.path.abspath(path))
    is_package = absolute.name == "__init__.py"
    stem_parts = [] if is_package else [absolute.stem]
    directory = absolute.parent
    for root in source_roots:
        try:
            relative = directory.relative_to(root)
        except ValueError:
            continue
        return ".".join(list(relative.parts) + stem_parts) or absolute.stem, is_package
    parts: List[str] = []
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        if directory.parent == directory:
            break
        directory = directory.parent
    return ".".join(parts + stem_parts) or absolute.stem, is_package
