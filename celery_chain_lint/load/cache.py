"""The on-disk cache of per-file facts, as ruff's: ``.celery_chain_lint_cache/``.

Layout, under the cache directory (a ``.gitignore`` holding ``*`` and a ``CACHEDIR.TAG`` make
git and backup tools skip it)::

    <format>/manifest.pickle    path -> size, mtime, ctime, inode, content hash, pre-filter scan
    <format>/facts/ab/<key>     one file's facts (or why it could not be analysed)

``<format>`` hashes everything the cached data depends on besides the file itself: the tool's
version, the source of the facts model, the extractor (with what decides roots and which bodies
it elides) and the pre-filter, the Python version, and the facts-relevant
configuration. A facts entry is keyed by the file's content hash, its module name, whether it is
a package, and the tier (full or definitions), so a stale entry can never be found. Writes are
atomic (a temporary file renamed over the entry); an entry that cannot be read or unpickled is
ignored and recomputed, never fatal.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
import time
from typing import Dict, FrozenSet, NamedTuple, Optional

from celery_chain_lint.load.atomic import write_atomically

CACHE_DIR_NAME = ".celery_chain_lint_cache"
# Files whose source defines what the cache holds; a change to any of them is a new format.
# Relative to the package: the facts' IR and extraction, and how the loader reads a file
# (parse.py decides what a file that cannot be analysed reports).
FORMAT_SOURCES = ("facts/model.py", "facts/ir.py", "facts/extract.py", "facts/roots.py",
                  "facts/whole_file.py", "load/bodies.py", "load/prefilter.py",
                  "load/source.py", "load/reading.py")
MANIFEST = "manifest-5.pickle"  # named for the Entry layout
# A file modified this recently (ns) may change again within the same mtime tick: re-hash it.
RACY_NS = 2_000_000_000
# How keys encode a path or module name holding undecodable bytes (a file named b"caf\xe9.py"
# is "caf\udce9.py"): lone surrogates as themselves, one-to-one, where strict UTF-8 would fail.
KEY_ERRORS = "surrogatepass"


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def format_key(config: str = "") -> str:
    """What cached data depends on besides the files: versions, sources, configuration."""
    from celery_chain_lint import __version__

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{__version__}\0{sys.implementation.name}\0{sys.version_info[:3]}\0"
                  f"{config}\0".encode())
    for relative in FORMAT_SOURCES:
        try:
            with open(os.path.join(package, relative), "rb") as handle:
                digest.update(handle.read())
        except OSError:
            digest.update(b"missing " + relative.encode())
    return digest.hexdigest()


class Entry(NamedTuple):
    """What the manifest remembers of one file. A tuple: a warm run unpickles one per file,
    twice as fast as a dataclass.

    A file is taken as unchanged, and not read, when its size, mtime, ctime and inode all are
    (git's index compares the same). Size, mtime and inode alone miss an edit in place of the
    same size whose mtime is set back (``cp -p``, ``rsync -a``, ``touch -r``, archive tools,
    an editor restoring it): the kernel sets ctime on every write and every ``utime``, and
    nothing can set it back. mypy (size and mtime, then the hash) and ruff (mtime and mode)
    trust the mtime alone; a warm run here still hashes nothing."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    checked_ns: int  # when the content was hashed
    digest: str
    seed: bool  # the pre-filter's verdict on the file alone
    imports: tuple  # what its import statements import (prefilter.Scan)
    words: FrozenSet[str]  # the words of those it read otherwise (prefilter.Scan)
    marked: bool  # seed for another reason than importing Celery (a canvas call...)

    def matches(self, stat: os.stat_result) -> bool:
        return (self.size == stat.st_size and self.mtime_ns == stat.st_mtime_ns
                and self.ctime_ns == stat.st_ctime_ns and self.inode == stat.st_ino
                and self.checked_ns - stat.st_mtime_ns > RACY_NS)

    @classmethod
    def of(cls, stat: os.stat_result, checked_ns: int, digest: str, seed: bool,
           imports: tuple, words: FrozenSet[str], marked: bool) -> "Entry":
        """The entry of a file ``stat`` describes, hashed at ``checked_ns``."""
        return cls(stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, checked_ns,
                   digest, seed, imports, words, marked)


class Cache:
    def __init__(self, directory: str, config: str = ""):
        self.directory = os.path.abspath(directory)
        self.root = os.path.join(self.directory, format_key(config))
        self._manifest: Optional[Dict[str, Entry]] = None
        self._manifest_dirty = False
        self._ready = False

    # ---- the manifest ----

    @property
    def manifest(self) -> Dict[str, Entry]:
        if self._manifest is None:
            loaded = self._load(os.path.join(self.root, MANIFEST))
            self._manifest = loaded if isinstance(loaded, dict) else {}
        return self._manifest

    def entry(self, path: str, stat: os.stat_result) -> Optional[Entry]:
        entry = self.manifest.get(path)
        if isinstance(entry, Entry) and isinstance(getattr(entry, "imports", None), tuple) \
                and entry.matches(stat):
            return entry
        return None

    def remember(self, path: str, entry: Entry) -> None:
        if self.manifest.get(path) != entry:
            self.manifest[path] = entry
            self._manifest_dirty = True

    def forget(self, path: str) -> None:
        """Drop what is remembered of ``path`` (its bytes were found to differ from it)."""
        if self.manifest.pop(path, None) is not None:
            self._manifest_dirty = True

    def save(self) -> None:
        if self._manifest_dirty:
            self._store(os.path.join(self.root, MANIFEST), self._manifest)
            self._manifest_dirty = False

    # ---- per-file facts ----

    @staticmethod
    def facts_key(digest: str, module: str, is_package: bool, tier: str) -> str:
        return hashlib.blake2b(f"{digest}\0{module}\0{is_package}\0{tier}".encode("utf-8",
                                                                                   KEY_ERRORS),
                               digest_size=16).hexdigest()

    def _facts_path(self, key: str) -> str:
        return os.path.join(self.root, "facts", key[:2], key)

    def is_empty(self) -> bool:
        """No run of this version and configuration has written here yet."""
        return not os.path.exists(os.path.join(self.root, MANIFEST))

    def has(self, key: str) -> bool:
        """Whether an entry exists (it may still turn out unreadable)."""
        return os.path.exists(self._facts_path(key))

    def get(self, key: str):
        """The cached value, or None when absent or unreadable."""
        return self._load(self._facts_path(key))

    def put(self, key: str, value) -> None:
        self._store(self._facts_path(key), value)

    def put_pickled(self, key: str, data: bytes) -> None:
        """``put`` of a value already pickled (by a worker process)."""
        self._store(self._facts_path(key), data, pickled=True)

    # ---- files ----

    def _load(self, path: str):
        try:
            with open(path, "rb") as handle:
                return _Unpickler(handle).load()
        except Exception:  # absent, truncated, corrupt, foreign, or from another version
            return None

    def _store(self, path: str, value, pickled: bool = False) -> None:
        try:
            self._prepare()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            data = value if pickled else pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            write_atomically(path, data)
        except (OSError, pickle.PicklingError, RecursionError, TypeError, AttributeError):
            pass  # a cache that cannot be written only makes the next run slower

    def _prepare(self) -> None:
        if self._ready:
            return
        os.makedirs(self.directory, exist_ok=True)
        for name, content in ((".gitignore", "# Automatically created by celery-chain-lint.\n*\n"),
                              ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n"
                               "# This file is a cache directory tag created by "
                               "celery-chain-lint.\n")):
            target = os.path.join(self.directory, name)
            if not os.path.exists(target):
                with open(target, "w") as handle:
                    handle.write(content)
        self._ready = True


# What a cache entry may hold: the tool's own data classes and plain values. A cache directory
# comes with the code being analysed (a cloned repository may ship one): loading it must never
# run anything, as unrestricted unpickling could.
_SAFE_BUILTINS = frozenset({"frozenset", "set", "tuple", "list", "dict", "str", "bytes", "int",
                            "float", "complex", "bool", "bytearray", "range", "slice", "Ellipsis"})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("celery_chain_lint.") and not name.startswith("_"):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"not allowed in the cache: {module}.{name}")


def now_ns() -> int:
    return time.time_ns()
