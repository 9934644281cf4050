"""Which files to analyse, and the dotted module name of each."""
from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from celery_chain_lint.config.settings import DEFAULT_EXCLUDES



@dataclass(frozen=True)
class SourceFile:
    path: str  # as shown to the user: as given, or relative to the working directory
    module: str
    is_package: bool
    # The text to analyse instead of the file on disk (standard input, --fix/--diff rounds).
    content: Optional[bytes] = field(default=None, compare=False, repr=False)


class PathError(Exception):
    """A path given on the command line that cannot be analysed."""


def discover(paths: Sequence[str], excludes: Iterable[str] = DEFAULT_EXCLUDES,
             source_roots: Sequence[str] = (), path_filter=None,
             force_exclude: bool = False) -> List[SourceFile]:
    """``path_filter`` (a ``pathfilter.PathFilter``), when given, replaces the ``excludes``
    names: it decides which files and directories the walk skips. Paths given explicitly are
    analysed even when excluded, unless ``force_exclude`` (as ruff)."""
    excludes = frozenset(excludes)
    roots = [os.path.abspath(root) for root in source_roots]
    found, seen = [], set()
    packages: dict = {}  # directory -> its dotted package path (one stat per directory)
    real_directories: dict = {}
    for given in paths:
        if not os.path.exists(given):
            raise PathError(f"{given}: no such file or directory")
        if force_exclude and path_filter is not None and path_filter.excluded_with_ancestors(given):
            continue
        for path, is_link in _python_files(given, excludes, path_filter, real_directories):
            key = os.path.realpath(path) if is_link else _in_real_directory(path, real_directories)
            if key in seen:
                continue
            seen.add(key)
            module, is_package = module_name(path, roots, packages)
            found.append(SourceFile(_display(path), module, is_package))
    return found


def _python_files(given: str, excludes: frozenset, path_filter=None,
                  real_directories: Optional[dict] = None) -> Iterator[Tuple[str, bool]]:
    """The Python files to analyse under ``given``, and whether each is a symbolic link.
    ``real_directories`` remembers each directory's real path."""
    if os.path.isfile(given):
        yield given, os.path.islink(given)
        return
    real_directories = {} if real_directories is None else real_directories
    visited = set()
    for directory, subdirs, files in os.walk(given, onerror=_warn_unreadable, followlinks=False):
        real = _real_directory(directory, real_directories)
        if real in visited:
            subdirs[:] = []
            continue
        visited.add(real)
        if path_filter is None:
            subdirs[:] = sorted(d for d in subdirs if d not in excludes)
        else:
            subdirs[:] = sorted(d for d in subdirs
                                if not path_filter.excluded(os.path.join(directory, d), True))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            is_link = _file_kind(path)
            if is_link is None or path_filter is not None and path_filter.excluded(path, False):
                continue
            yield path, is_link


def _file_kind(path: str) -> Optional[bool]:
    """None when ``path`` is not a regular file (``os.path.isfile``), else whether it is a
    symbolic link: one ``lstat`` for both questions, when it is not one."""
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISLNK(mode):
        return True if os.path.isfile(path) else None
    return False if stat.S_ISREG(mode) else None


_WARNED: set = set()  # directories already reported in this process (discovery runs often)


def _warn_unreadable(error: OSError) -> None:
    """Say which directory the walk could not list: its files are not analysed, and a
    silent skip would read as "no findings there"."""
    where = error.filename or "?"
    if where not in _WARNED:
        _WARNED.add(where)
        print(f"warning: {_display(str(where))}: cannot list the directory "
              f"({error.strerror or error}); skipped", file=sys.stderr)


def _display(path: str) -> str:
    path = os.path.normpath(path)
    if os.path.isabs(path):
        try:
            relative = _relative_to_cwd(path)
        except ValueError:
            return path
        return path if relative.startswith("..") else relative
    return path


def _relative_to_cwd(path: str) -> str:
    """``os.path.relpath(path)`` for a normalised absolute path, without its two ``abspath``
    and component lists when the answer is plain: inside the working directory, or out of it
    (then it starts with "..", which is all ``_display`` asks)."""
    cwd = os.getcwd()
    if os.sep != "/" or path == cwd:
        return os.path.relpath(path)
    inside = cwd if cwd.endswith("/") else cwd + "/"
    return path[len(inside):] if path.startswith(inside) else ".."


def module_name(path: str, source_roots: Sequence[str] = (),
                packages: Optional[dict] = None) -> Tuple[str, bool]:
    """``pkg.sub.mod`` for ``.../pkg/sub/mod.py``: relative to a configured source root if the
    file is under one, else found by walking up while directories are packages. ``packages``
    remembers, within one discovery, each directory's package path."""
    if packages is not None and not source_roots:
        absolute_path = os.path.abspath(path)
        directory, name = os.path.split(absolute_path)
        is_package = name == "__init__.py"
        parts = _package_parts(directory, packages)
        stem = [] if is_package else [os.path.splitext(name)[0]]
        return ".".join(list(parts) + stem) or os.path.splitext(name)[0], is_package
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
    parts = list(_package_parts(str(directory), {}))
    return ".".join(parts + stem_parts) or absolute.stem, is_package


def _in_real_directory(path: str, directories: dict) -> str:
    """``os.path.realpath(path)`` for a file that is no symbolic link, resolving each
    directory once."""
    directory, name = os.path.split(path)
    return os.path.join(_real_directory(directory, directories), name)


def _real_directory(directory: str, known: dict) -> str:
    """``os.path.realpath(directory)``, memoised in ``known``: from its parent's, when known
    and ``directory`` is no symbolic link (one ``lstat``, not one per component)."""
    real = known.get(directory)
    if real is None:
        parent, name = os.path.split(directory)
        above = known.get(parent)
        if above is not None and name not in ("", os.curdir, os.pardir) \
                and not os.path.islink(directory):
            real = os.path.join(above, name)
        else:
            real = os.path.realpath(directory)
        known[directory] = real
    return real


def _package_parts(directory: str, packages: dict) -> Tuple[str, ...]:
    """The dotted path of ``directory`` as Python imports it (memoised): a package, or a
    directory without ``__init__.py`` inside one (a namespace portion: ``saleor/order/
    migrations/tasks/`` is ``saleor.order.migrations.tasks``), its parent's path and its name;
    else nothing, its modules are top-level. Except a directory of test modules only: pytest
    imports those by their own names (its default ``prepend`` mode puts the directory on
    ``sys.path``)."""
    known = packages.get(directory)
    if known is not None:
        return known
    parent = os.path.dirname(directory)
    above = () if parent == directory else _package_parts(parent, packages)
    if os.path.isfile(os.path.join(directory, "__init__.py")) or (
            above and not _holds_tests_only(directory)):
        parts: Tuple[str, ...] = above + (os.path.basename(directory),)
    else:
        parts = ()
    packages[directory] = parts
    return parts


def _holds_tests_only(directory: str) -> bool:
    """Whether the directory's Python files are all pytest's (``test_*.py``, ``*_test.py``,
    ``conftest.py``)."""
    try:
        names = [n for n in os.listdir(directory) if n.endswith(".py")]
    except OSError:
        return False
    return bool(names) and all(n.startswith("test_") or n.endswith("_test.py")
                               or n == "conftest.py" for n in names)


def with_overrides(sources: List[SourceFile], overrides: dict,
                   source_roots: Sequence[str] = ()) -> List[SourceFile]:
    """``sources`` with the contents of ``overrides`` (absolute path -> bytes) in place of the
    files on disk; an override for a file not discovered (standard input naming a file that
    does not exist yet) is added."""
    if not overrides:
        return sources
    pending = {os.path.realpath(path): (path, content) for path, content in overrides.items()}
    result = []
    for source in sources:
        key = os.path.realpath(source.path)
        if key in pending:
            source = replace(source, content=pending.pop(key)[1])
        result.append(source)
    roots = [os.path.abspath(root) for root in source_roots]
    for path, content in pending.values():
        module, is_package = module_name(path, roots)
        result.append(SourceFile(_display(path), module, is_package, content))
    return result
