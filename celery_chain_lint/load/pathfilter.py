"""Which paths discovery skips: ``exclude``/``extend-exclude`` globs (as ruff reads them) and
``.gitignore`` files (as git reads them).

Exclude patterns, as ruff's: a pattern without ``/`` matches a file or directory *name* anywhere
in the tree (``.venv``, ``migrations``, ``*_pb2.py``); a pattern with ``/`` matches the path
relative to the project root (the directory of the configuration file, else the working
directory): ``legacy/*.py``, ``src/gen/``. ``*`` also matches ``/``.

``.gitignore``: every ``.gitignore`` from the repository root (the nearest directory holding
``.git``) down to the path, and ``.git/info/exclude``; a deeper file overrides a shallower one,
and the last matching pattern of a file wins, negations included (``pathspec`` implements
git's wildmatch). The global ``core.excludesFile`` is not read.
"""
from __future__ import annotations

import fnmatch
import os
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Tuple


class PathFilter:
    def __init__(self, root: Optional[str] = None, excludes: Iterable[str] = (),
                 respect_gitignore: bool = True):
        self.root = os.path.abspath(root or os.getcwd())
        self.names: List[str] = []
        self.relative: List[str] = []
        for pattern in excludes:
            pattern = pattern.replace(os.sep, "/")
            stripped = pattern.rstrip("/")
            if "/" in stripped:
                self.relative.append(stripped)
            else:
                self.names.append(stripped)
        self.respect_gitignore = respect_gitignore
        self._gitignore = _GitIgnore() if respect_gitignore else None

    def _names_pattern(self):
        """``self.names`` as one compiled pattern (``fnmatchcase`` per name and per file
        costs a large codebase a quarter of a second)."""
        if getattr(self, "_compiled", None) is None or self._compiled[0] != self.names:
            import re

            source = "|".join(fnmatch.translate(pattern) for pattern in self.names) or "(?!)"
            self._compiled = (list(self.names), re.compile(source))
        return self._compiled[1]

    def excluded(self, path: str, is_dir: bool) -> bool:
        """Whether discovery skips ``path`` (a file, or a directory it would walk into)."""
        absolute = os.path.abspath(path)
        name = os.path.basename(absolute)
        if self._names_pattern().match(name):
            return True
        if self.relative:
            candidates = [absolute.replace(os.sep, "/")]
            relative = _relative(absolute, self.root)
            if relative is not None:
                candidates.append(relative)
            if any(fnmatch.fnmatchcase(candidate, pattern)
                   for pattern in self.relative for candidate in candidates):
                return True
        return self._gitignore is not None and self._gitignore.ignored(absolute, is_dir)

    def excluded_with_ancestors(self, path: str) -> bool:
        """For a path given explicitly (``--force-exclude``): excluded itself or below an
        excluded directory."""
        absolute = os.path.abspath(path)
        if self.excluded(absolute, os.path.isdir(absolute)):
            return True
        directory = os.path.dirname(absolute)
        while True:
            if self.excluded(directory, True):
                return True
            parent = os.path.dirname(directory)
            if parent == directory:
                return False
            directory = parent


def _relative(path: str, root: str) -> Optional[str]:
    try:
        relative = os.path.relpath(path, root)
    except ValueError:  # another drive
        return None
    if relative == os.curdir or relative.startswith(os.pardir):
        return None
    return relative.replace(os.sep, "/")


class _GitIgnore:
    def __init__(self):
        self._roots: Dict[str, Optional[str]] = {}  # directory -> its repository's root
        self._spec = lru_cache(maxsize=None)(self._load_spec)

    def ignored(self, path: str, is_dir: bool) -> bool:
        directory = os.path.dirname(path)
        root = self._repo_root(directory)
        if root is None or path == root:
            return False
        if os.path.basename(path) == ".git":
            return True
        # From the repository root down to the path's directory: deeper files take precedence.
        chain: List[str] = []
        current = directory
        while True:
            chain.append(current)
            if current == root:
                break
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        decision: Optional[bool] = None
        sources: List[Tuple[str, str]] = [(root, os.path.join(root, ".git", "info", "exclude"))]
        sources += [(d, os.path.join(d, ".gitignore")) for d in reversed(chain)]
        for base, file in sources:
            spec = self._spec(file)
            if spec is None:
                continue
            relative = os.path.relpath(path, base).replace(os.sep, "/")
            if is_dir:
                relative += "/"
            result = spec.check_file(relative)
            if result.include is not None:
                decision = result.include
        return bool(decision)

    def _repo_root(self, directory: str) -> Optional[str]:
        """The nearest directory holding ``.git``, ``directory`` included; each directory is
        looked at once (the answer is remembered for the ones on the way up too)."""
        pending = []
        current = directory
        while current not in self._roots:
            if os.path.exists(os.path.join(current, ".git")):
                self._roots[current] = current
                break
            pending.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                self._roots[current] = None
                break
            current = parent
        root = self._roots[current]
        for below in pending:
            self._roots[below] = root
        return root

    @staticmethod
    def _load_spec(file: str):
        try:
            with open(file, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return None
        import pathspec

        return pathspec.GitIgnoreSpec.from_lines(lines)


def build(settings) -> PathFilter:
    """The filter a run's settings describe."""
    return PathFilter(settings.project_root, list(settings.exclude) + list(settings.extend_exclude),
                      settings.respect_gitignore)


def filter_given(paths: Sequence[str], path_filter: PathFilter) -> List[str]:
    return [path for path in paths if not path_filter.excluded_with_ancestors(path)]


class PerFileIgnores:
    """``per-file-ignores``: glob -> codes (or prefixes) not reported in matching files. A glob
    matches the file name, or the path relative to the project root; ``!`` negates it (the codes
    are ignored in files that do *not* match), as ruff."""

    def __init__(self, table: Dict[str, Sequence[str]], root: Optional[str] = None):
        self.root = os.path.abspath(root or os.getcwd())
        self.entries = [(pattern[1:] if pattern.startswith("!") else pattern,
                         pattern.startswith("!"), tuple(codes))
                        for pattern, codes in table.items()]
        self._cache: Dict[str, Tuple[str, ...]] = {}

    def codes_for(self, path: str) -> Tuple[str, ...]:
        if path not in self._cache:
            absolute = os.path.abspath(path)
            candidates = [os.path.basename(absolute), absolute.replace(os.sep, "/")]
            relative = _relative(absolute, self.root)
            if relative is not None:
                candidates.append(relative)
            codes: List[str] = []
            for pattern, negated, entry_codes in self.entries:
                pattern = pattern.replace(os.sep, "/")
                matched = any(fnmatch.fnmatchcase(c, pattern) for c in candidates)
                if matched != negated:
                    codes.extend(entry_codes)
            self._cache[path] = tuple(codes)
        return self._cache[path]

    def ignored(self, path: str, code: str) -> bool:
        if not self.entries:
            return False
        return any(p == "ALL" or code.startswith(p) for p in self.codes_for(path))
