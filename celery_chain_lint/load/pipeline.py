"""The file pipeline of ``check``: which files, read how, in parallel, through the cache.

1. **The whole project as context.** Findings are reported for the paths given, but names
   resolve against every module of the project they belong to: the nearest ancestor holding a
   ``pyproject.toml``, ``setup.cfg``, ``setup.py`` or ``.git``, else the topmost package
   directory. ``check changed.py`` (what pre-commit runs) sees the tasks defined elsewhere.
2. **The pre-filter** (``prefilter.py``) reads each file's bytes once: files that matter get the
   full facts pass, the others only their definitions, and only when name resolution looks
   into them.
3. **Parallel extraction**: files to parse are spread over worker processes (facts are
   picklable) when there is enough work to pay for starting them.
4. **The cache** (``cache.py``): a file whose size, mtime and inode are unchanged is not even
   read; facts are found by content hash. A warm run parses nothing.
"""
from __future__ import annotations

import functools
import os
import pickle
import re
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import (TYPE_CHECKING, Callable, Dict, FrozenSet, List, NamedTuple, Optional,
                    Sequence, Tuple)

from celery_chain_lint.load.cache import (CACHE_DIR_NAME, KEY_ERRORS, Cache, Entry, content_hash,
                                          now_ns)
from celery_chain_lint.load.discovery import SourceFile, discover
from celery_chain_lint.facts.model import ModuleFacts, resolve_relative
from celery_chain_lint.index.resolver import is_celery
from celery_chain_lint.load.prefilter import ModuleTable, scan
from celery_chain_lint.findings import Finding
from celery_chain_lint.config.settings import Settings
from celery_chain_lint.load.source import MAX_FILE_BYTES

if TYPE_CHECKING:
    from celery_chain_lint.index.project import Project

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git", "manage.py")
# Below this much source to parse, worker processes cost more than they save.
PARALLEL_MIN_BYTES = 150_000
PARALLEL_MIN_FILES = 4
# The tiers of facts (part of the cache key): the full pass with quiet bodies left for later
# (bodies.py), the full pass reading every body, and definitions only (prefilter.py).
FULL, COMPLETE, DEFINITIONS = "full", "complete", "definitions"
# The modules of Celery's own that index/symbols.py names objects of.
CELERY_MODULES = frozenset({"celery", "celery._state", "celery.app", "celery.app.base",
                            "celery.app.task", "celery.canvas", "celery.result"})


# ---- which files ----


def project_root(path: str) -> Tuple[Optional[str], bool]:
    """The root of the project ``path`` belongs to: the nearest ancestor holding a marker
    (walked whole), else the directory Python would import it from, the parent of its top
    package (``python demo/flows.py`` imports its neighbours: only its own files and packages
    are read, not every file below). ``(root, shallow)``."""
    start = os.path.abspath(path)
    if not os.path.isdir(start):
        start = os.path.dirname(start)
    directory = start
    while True:
        if any(os.path.exists(os.path.join(directory, marker)) for marker in ROOT_MARKERS):
            return directory, False
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    directory = start
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory, True


def project_sources(paths: Sequence[str], sources: List[SourceFile],
                    discover_options: dict) -> List[SourceFile]:
    """The files of the projects ``paths`` belong to that ``sources`` does not hold already."""
    given_dirs = [os.path.abspath(p) for p in paths if os.path.isdir(p)]
    roots: List[str] = []
    for path in paths:
        root, shallow = project_root(path)
        if root is None or root in roots or shallow and os.path.isdir(path):
            continue  # a directory given outside any project is the whole project
        if any(root == d or root.startswith(d.rstrip(os.sep) + os.sep) for d in given_dirs):
            continue  # already walked
        roots.extend(_importable(root) if shallow else [root])
    if not roots:
        return []
    known = {os.path.abspath(source.path) for source in sources}
    context = []
    for source in discover(roots, **discover_options):
        if os.path.abspath(source.path) not in known:
            context.append(source)
    return context


def _importable(directory: str) -> List[str]:
    """What ``import`` finds in ``directory``: its modules and its packages."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(".py") and os.path.isfile(path) or \
                os.path.isfile(os.path.join(path, "__init__.py")):
            found.append(path)
    return found


# ---- the analysis ----


@dataclass
class _File:
    source: SourceFile
    reported: bool
    abspath: str
    size: int = 0
    digest: str = ""
    seed: bool = True
    marked: bool = True
    imports: tuple = ()  # prefilter.Scan
    words: frozenset = frozenset()
    data: Optional[bytes] = None
    unreadable: bool = False

    @property
    def module(self) -> str:
        return self.source.module


@functools.lru_cache(maxsize=4096)
def _dotted(words: str) -> "re.Pattern[bytes]":
    """``a.b`` as written in code: ``a . b`` too, over a line break inside parentheses."""
    return re.compile(rb"\s*\.\s*".join(re.escape(w.encode()) for w in words.split(".")))


class Analysis:
    def __init__(self, settings: Settings, prefilter: bool = True, jobs: Optional[int] = None,
                 warm_up: Callable[[], None] = lambda: None, cache: Optional[Cache] = None,
                 reads_task_methods_on_functions: Callable[[Settings], bool] = lambda s: True):
        self.settings = settings
        # What the selected rules read (``Rule.reads_task_methods_on_functions``): bodies
        # calling a task method on what may be a plain function are read for them.
        self.reads_task_methods_on_functions = reads_task_methods_on_functions
        # Run while waiting for parsers: the caller imports what it needs next (the rules).
        self.warm_up = warm_up
        self.prefilter = prefilter
        self.jobs = jobs if jobs is not None else _cpu_count()
        self.cache: Optional[Cache] = cache  # shared by the projects of one run
        if cache is None and settings.use_cache:
            directory = settings.cache_dir or os.path.join(
                settings.project_root or os.getcwd(), CACHE_DIR_NAME)
            self.cache = Cache(directory, config=repr(sorted(settings.src)))
        self.stats: Dict[str, int] = {"files": 0, "read": 0, "full": 0, "definitions": 0,
                                      "parsed": 0, "cached": 0, "promoted": 0, "rounds": 0,
                                      "workers": 0}
        self._definitions: Dict[str, Optional[ModuleFacts]] = {}
        # Without the pre-filter, nothing is left for later: every body is read at once.
        self._full_tier = FULL if prefilter else COMPLETE
        self._texts: Dict[str, Optional[List[str]]] = {}
        self._pieces: Dict[str, object] = {}  # read this run (``_piece``), cache or not
        self._celery_modules: FrozenSet[str] = frozenset()  # see ``analyse``
        self._celery_inside = False  # the project is Celery itself (see ``analyse``)
        self.changed_during_run = False  # see ``_changed``
        # Forked first thing when the cache may be warm (engine.check): see ParserChild.
        self.child: Optional[ParserChild] = None

    def run(self, sources: Sequence[SourceFile],
            context: Sequence[SourceFile] = ()) -> Tuple[Project, List[Finding]]:
        """The project (reporting on ``sources``) and why some of ``sources`` could not be
        analysed."""
        self.prepare(sources, context)
        return self.analyse()

    def prepare(self, sources: Sequence[SourceFile], context: Sequence[SourceFile] = ()) -> None:
        """Stat, and read and scan when the cache does not know them, every file."""
        self.adopt([self._file(s, True) for s in sources] + [self._file(s, False) for s in context])

    def adopt(self, files: List["_File"]) -> None:
        """Analyse ``files``, already stat'ed and scanned (one project of a tree that holds
        several: load/namespaces.py)."""
        self.files = files
        self.stats["files"] = len(files)

    def results_key(self, settings_key: str) -> Optional[str]:
        """The key of this run's findings: every file's identity and content hash, the
        configuration and the analyser's own source; None when a file could not be read."""
        if self.cache is None or any(f.unreadable for f in self.files):
            return None
        import hashlib

        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{analyser_key()}\0{self.prefilter}\0{settings_key}\0".encode(
            "utf-8", KEY_ERRORS))
        for f in self.files:
            digest.update(f"{f.source.path}\0{f.module}\0{f.source.is_package}\0{f.digest}\0"
                          f"{f.reported}\n".encode("utf-8", KEY_ERRORS))
        return "results-" + digest.hexdigest()

    def cached_results(self, key: Optional[str]) -> Optional[Tuple[List[Finding], object]]:
        """The findings of a run with the same key, and what the caller stored with them."""
        if key is None:
            return None
        value = self.cache.get(key)
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list) \
                and all(isinstance(f, Finding) for f in value[0]):
            self.stats["results_cached"] = 1
            if self.cache is not None:
                self.cache.save()
            return value
        return None

    def store_results(self, key: Optional[str], findings: List[Finding],
                      extra: object = None) -> None:
        if key is not None and not self.changed_during_run:
            self.cache.put(key, (findings, extra))

    def analyse(self) -> Tuple["Project", List[Finding]]:
        files = self.files
        # Analysing Celery itself (or a copy vendored whole): ``import celery`` still means
        # Celery's objects (index/resolver.is_celery), but inside its own package it is
        # internal and no reason for the full pass (a canvas call still is).
        celery_inside = self._celery_inside = CELERY_MODULES <= {f.module for f in files}
        # Names imported from these make a body that may hold roots worth reading at once:
        # it will most likely turn out relevant (roots.likely_names). Not when the project is
        # Celery itself: every module is near Celery there (a guess for speed only: bodies
        # not read at once are read when they turn out relevant).
        self._celery_modules = frozenset() if celery_inside else _near_celery(files)

        def needed(f: _File) -> bool:
            return not self.prefilter or f.marked or (
                f.seed and not (celery_inside and is_celery(f.module)))

        eager = [f for f in files if needed(f)]
        lazy: Dict[str, _File] = {}
        eager_names = {f.module for f in eager}
        for f in files:
            if needed(f):
                continue
            if f.source.content is None:
                f.data = None  # read again if resolution ever looks into it
            if f.module in eager_names:
                eager.append(f)  # ``pkg.py`` beside ``pkg/``: let the project choose
            elif f.module not in lazy or (f.source.is_package and not lazy[f.module].source.is_package):
                lazy[f.module] = f
        reported = {f.source.path for f in files if f.reported}
        started = time.perf_counter()
        results = self._full(eager)
        from celery_chain_lint.index.project import Project  # the whole analyser: not for a warm run

        self._add_time("full_s", started)
        relevant = None
        while self.prefilter and lazy:
            self.stats["rounds"] += 1
            relevant = self._relevance(results, lazy)
            # Celery's own package, analysed, imports Celery's objects everywhere: not a reason
            # to read its internals in full (its canvas calls were read already: ``marked``).
            promoted = [f for f in lazy.values()
                        if not (celery_inside and is_celery(f.module)) and relevant.promotes(
                            f.module, f.source.is_package, f.imports, f.words,
                            lambda words, f=f: self._spells(f, words))]
            if not promoted:
                break
            relevant = None  # the promoted modules change it
            self.stats["promoted"] += len(promoted)
            for f in promoted:
                del lazy[f.module]
            results.update(self._full(promoted))
        relevant = self._read_roots_if_relevant(files, results, relevant, lazy)
        if self.prefilter and relevant is None:
            relevant = self._relevance(results, lazy)
        modules = [facts for facts, _ in results.values() if facts is not None]
        project = Project(modules, reported_paths=reported,
                          lazy=self._table(lazy) if lazy else None, relevance=relevant)
        if self.cache is not None:
            self.cache.save()
        problems = [problem for _, problem in results.values()
                    if problem is not None and problem.path in reported]
        return project, problems

    def _relevance(self, results, lazy: Dict[str, "_File"]):
        """The Celery-related names of the modules analysed so far (``prefilter.relevance``):
        modules left out are present but opaque there: what resolves through one is unknown
        until the names that promote it have promoted it (prefilter.py)."""
        from celery_chain_lint.load.prefilter import relevance
        from celery_chain_lint.index.project import Project

        modules = [facts for facts, _ in results.values() if facts is not None]
        return relevance(Project(modules, lazy=self._opaque_table(lazy)))

    def _read_roots_if_relevant(self, files: List["_File"], results, relevant,
                                lazy: Dict[str, "_File"]):
        """Add the roots of the elided bodies that may hold some (``roots.IF_RELEVANT``) and
        spell a Celery-related name of their module: a root reaches a canvas only through one.
        A module with a star import reads them all (its names come from elsewhere too). When a
        selected rule looks for task methods called on plain functions
        (``Rule.reads_task_methods_on_functions``), a body spelling a task method is also read if
        it spells a name that may be one; the others are marked ``left_unread``. Returns
        ``relevant``, computed if it had to be."""
        from celery_chain_lint.load.bodies import BodyOnDemand, with_roots
        from celery_chain_lint.facts.roots import TASK_METHODS

        waiting = []
        for f in files:
            facts = results.get(id(f), (None, None))[0]
            if facts is not None and facts.roots_if_relevant:
                waiting.append((f, facts))
        if not waiting:
            return relevant
        started = time.perf_counter()
        relevant = relevant or self._relevance(results, lazy)
        may_be_function = self._may_be_function(results, lazy) \
            if self.reads_task_methods_on_functions(self.settings) else (lambda facts, b: False)
        for f, facts in waiting:
            names = relevant.names_in(facts)
            # Celery's own package, when it is the project: its internals name Celery's
            # objects everywhere and are not the code under review (its examples and tests are).
            internal = self._celery_inside and is_celery(f.module)
            for body in facts.roots_if_relevant:
                proxy = facts.functions.get(body.qualname)
                if not internal and (
                        facts.star_imports or body.names is None
                        or not body.names.isdisjoint(names)
                        or not body.attributes.isdisjoint(TASK_METHODS)
                        and may_be_function(facts, body)):
                    read = self._function_roots(f, body)
                    if read is None:
                        continue
                    with_roots(facts, body, read)
                    if isinstance(proxy, BodyOnDemand) and proxy.elided == body:
                        proxy.give_body(read.function)
                elif isinstance(proxy, BodyOnDemand) and proxy.elided == body:
                    proxy.left_unread = True
        self._add_time("roots_s", started)
        return relevant

    def _may_be_function(self, results, lazy: Dict[str, "_File"]):
        """``may_be_function(facts, body)``: whether an elided body of the module ``facts`` may
        call a task method on a function with no decorator: one of its dotted
        receivers resolves to one, or, when they are not known, one of its names resolves to
        one or to a module of the project. Resolved as the rules will, the modules left out
        read for their definitions (only those the names reach)."""
        from celery_chain_lint.index.resolver import Resolver
        from celery_chain_lint.index.symbols import ModuleSym
        from celery_chain_lint.index.project import by_module

        # Without the task index: a function is a FunctionSym, decorated or not, and none of
        # its decorators is resolved (a decorated one is never a plain function).
        eager = by_module(facts for facts, _ in results.values() if facts is not None)
        resolver = Resolver(self._table(lazy)(eager) if lazy else eager)

        def resolves(facts: ModuleFacts, dotted: Tuple[str, ...], modules: bool) -> bool:
            if dotted[0] not in facts.bindings:
                return False  # a parameter, a local, a builtin
            symbol = resolver.lookup(facts.module, dotted[0])
            for attribute in dotted[1:]:
                symbol = resolver.member(symbol, attribute)
            return modules and isinstance(symbol, ModuleSym) or \
                resolver.plain_function(symbol) is not None

        def may_be_function(facts: ModuleFacts, body) -> bool:
            # In a fixed order: the modules left out that resolution reads are then the same
            # from one run to the next, and their definitions come from the cache.
            if body.receivers is None:
                return any(resolves(facts, (name,), True) for name in sorted(body.names))
            return any(resolves(facts, dotted, False) for dotted in sorted(body.receivers))
        return may_be_function

    def _function_roots(self, f: "_File", body):
        """The roots of an elided body and its function's facts (``bodies.function_roots``),
        pickled together in the cache: a root is the very call the facts list."""
        from celery_chain_lint.load.bodies import ReadBody, function_roots

        return self._piece(f, f"roots:{body.qualname}:{body.first_line}", "roots",
                           lambda value: isinstance(value, ReadBody),
                           lambda lines: function_roots(lines, *self._where(f), body),
                           "root_bodies")

    # ---- reading ----

    def _file(self, source: SourceFile, reported: bool) -> _File:
        f = _File(source, reported, os.path.abspath(source.path))
        if source.content is not None:
            self._read(f, source.content)
            return f
        try:
            stat = os.stat(f.abspath)
        except OSError:
            f.unreadable = True
            return f
        f.size = stat.st_size
        if stat.st_size > MAX_FILE_BYTES:  # never read whole: analyse_file reports it (CCL999)
            f.unreadable = True
            return f
        entry = self.cache.entry(f.abspath, stat) if self.cache is not None else None
        if entry is not None:
            f.digest, f.seed, f.imports, f.words = entry.digest, entry.seed, entry.imports, entry.words
            f.marked = entry.marked
            return f
        started = now_ns()
        try:
            with open(f.abspath, "rb") as handle:
                data = handle.read()
        except OSError:
            f.unreadable = True
            return f
        self._read(f, data)
        if self.cache is not None:
            self.cache.remember(f.abspath, Entry.of(stat, started, f.digest, f.seed, f.imports,
                                                    f.words, f.marked))
        if not f.seed:
            f.data = None  # read again if ever needed: a large codebase must not stay in memory
        return f

    def _read(self, f: _File, data: bytes) -> None:
        self.stats["read"] += 1
        f.data, f.size = data, len(data)
        f.digest = content_hash(data)
        f.seed, f.imports, f.words, calls_canvas = scan(data)
        f.marked = f.seed and ("celery" not in f.words or calls_canvas)

    def _spells(self, f: _File, words: FrozenSet[str]) -> bool:
        """Whether the file holds any of ``words`` (asked of few files, read again and let go:
        see ``Relevance._reaches``)."""
        if not words:
            return False
        kept = f.data is not None
        data = self._data(f)
        if not kept:
            f.data = None
        if data is None:
            return True  # unreadable: let the full pass report it
        # In a longer word too, and ``a.b`` with spaces around the dot: erring safe.
        return any(word.encode() in data if "." not in word else _dotted(word).search(data)
                   for word in words)

    def _data(self, f: _File) -> Optional[bytes]:
        if f.data is None and not f.unreadable:
            try:
                with open(f.abspath, "rb") as handle:
                    data = handle.read()
            except OSError:
                return None
            if content_hash(data) != f.digest:
                self._changed(f, data)
            f.data = data
        return f.data

    def _changed(self, f: _File, data: bytes) -> None:
        """``f`` no longer holds the bytes it was stat'ed and hashed as (it was written to during
        the run): rescan it, forget its manifest entry, and let no finding of this run be stored
        under a key made of the old hash (``store_results``)."""
        self._read(f, data)
        self.changed_during_run = True
        if self.cache is not None:
            self.cache.forget(f.abspath)

    # ---- the full pass ----

    def _full(self, files: List[_File]) -> Dict[int, Tuple[Optional[ModuleFacts], Optional[Finding]]]:
        """id(file) -> (facts, problem), from the cache or parsed (in parallel when it pays)."""
        tier = self._full_tier
        analyser = partial(_analyse_eliding, celery_modules=self._celery_modules) \
            if tier == FULL else _analyse
        results: Dict[int, Tuple[Optional[ModuleFacts], Optional[Finding]]] = {}
        self.stats["full"] += len(files)
        known = [f for f in files if self.cache is not None and not f.unreadable
                 and self.cache.has(self._key(f, tier))]
        known_ids = {id(f) for f in known}
        todo = [f for f in files if id(f) not in known_ids]
        # A few files changed since the last run: parse them in a child process (which imports
        # the extractor) while this one loads the others from the cache.
        background = self._parse_in_background(todo) if known and todo else None
        if background is not None:
            self.warm_up()  # meanwhile
        late: List[_File] = []
        for f in known:
            cached = self._cached(f, tier)
            if cached is not None:
                results[id(f)] = cached
            else:
                late.append(f)  # unreadable after all
        parsed: List[Tuple[_File, Tuple]] = []
        if background is not None:
            done = background.results()
            if done:
                parsed, todo = list(zip(todo, done)), []
        remaining = todo + late
        if remaining:
            for f in remaining:  # read before forking: workers then parse what was hashed
                self._data(f)
            parsed += list(zip(remaining, self._parse(remaining, analyser)))
        for f, result in parsed:
            pickled = None
            if isinstance(result, _FromWorker):  # its cache entry, pickled once
                pickled, (kind, value) = result
                result = (value, None) if kind == "facts" else (None, value)
            results[id(f)] = result
            if self.cache is not None and not f.unreadable:
                if pickled is not None:
                    self.cache.put_pickled(self._key(f, tier), pickled)
                else:
                    self.cache.put(self._key(f, tier), _cache_entry(result))
        if tier == FULL:
            for f in files:
                facts = results[id(f)][0]
                if facts is not None:
                    self._bodies_on_demand(f, facts)
        return results

    def _parse_in_background(self, files: List[_File]) -> Optional["ParserChild"]:
        """``files`` given to the parser child (when there is one) if they are few; the child
        reads every body (facts as good as the eliding pass's, a little slower to get): rules
        reading a body of these files then need no parse here."""
        child, self.child = self.child, None
        if child is None:
            return None
        for f in files:
            self._data(f)
        sources = [f.source if f.unreadable else replace(f.source, content=f.data) for f in files]
        if len(files) >= PARALLEL_MIN_FILES or \
                sum(len(s.content or b"") for s in sources) >= PARALLEL_MIN_BYTES:
            child.close()
            return None
        self.stats["parsed"] += len(files)
        self.stats["background"] = 1
        child.parse(sources)
        return child

    def close(self) -> None:
        """Release the parser child if nothing was given to it."""
        if self.child is not None:
            self.child.close()
            self.child = None

    def _parse(self, files: List[_File], analyser):
        self.stats["parsed"] += len(files)
        sources = [f.source if f.unreadable else replace(f.source, content=f.data) for f in files]
        total = sum(len(s.content or b"") for s in sources)
        workers = min(self.jobs, len(files))
        self.close()  # the parser child is not needed (and must not be forked into workers)
        if workers < 2 or len(files) < PARALLEL_MIN_FILES or total < PARALLEL_MIN_BYTES:
            return [analyser(source) for source in sources]
        self.stats["workers"] = workers
        try:
            return _parallel(sources, workers, analyser, self.warm_up)
        except Exception:  # a pool that breaks (a worker killed, a result that cannot travel)
            self.stats["workers"] = 0
            return [analyser(source) for source in sources]

    def _cached(self, f: _File, tier: str):
        if self.cache is None or f.unreadable:
            return None
        value = self.cache.get(self._key(f, tier))
        if not (isinstance(value, tuple) and len(value) == 2):
            return None
        kind, payload = value
        if kind == "facts" and isinstance(payload, ModuleFacts):
            self.stats["cached"] += 1
            payload.path = f.source.path
            return payload, None
        if kind == "problem" and isinstance(payload, Finding) and tier != DEFINITIONS:
            self.stats["cached"] += 1
            return None, replace(payload, path=f.source.path)
        if kind == "none" and tier == DEFINITIONS:
            self.stats["cached"] += 1
            return None, None
        return None

    def _key(self, f: _File, tier: str) -> str:
        return Cache.facts_key(f.digest, f.source.module, f.source.is_package, tier)

    # ---- the definitions tier, on demand ----

    def _table(self, lazy: Dict[str, _File]):
        def build(eager: Dict[str, ModuleFacts]) -> ModuleTable:
            return ModuleTable(eager, lambda name: self._definitions_of(lazy[name]), lazy)
        return build

    @staticmethod
    def _opaque_table(lazy: Dict[str, _File]):
        def build(eager: Dict[str, ModuleFacts]) -> ModuleTable:
            return ModuleTable(eager, lambda name: ModuleFacts(
                lazy[name].source.path, name, lazy[name].source.is_package), lazy)
        return build

    def _definitions_of(self, f: _File) -> Optional[ModuleFacts]:
        key = f.abspath
        if key not in self._definitions:
            self.stats["definitions"] += 1
            facts = self._load_definitions(f)
            if facts is not None:
                self._bodies_on_demand(f, facts)
            self._definitions[key] = facts
        return self._definitions[key]

    def _bodies_on_demand(self, f: _File, facts: ModuleFacts) -> None:
        from celery_chain_lint.load.bodies import with_bodies_on_demand

        with_bodies_on_demand(facts, lambda function: self._function_facts(f, function),
                              lambda cls: self._class_attributes(f, cls),
                              lambda value: self._module_value(f, value))

    def _function_facts(self, f: _File, function):
        """An elided function's body, when a rule reads it. One that may hold roots is read
        with them (the pre-filter's relevance may ask first, the roots' reading second)."""
        from celery_chain_lint.load.bodies import function_facts
        from celery_chain_lint.facts.model import FunctionFacts

        if function.elided.may_hold_roots:
            read = self._function_roots(f, function.elided)
            return read.function if read is not None else None
        return self._piece(f, f"body:{function.qualname}:{function.span.line}", "function",
                           lambda value: isinstance(value, FunctionFacts),
                           lambda lines: function_facts(lines, *self._where(f), function),
                           "function_bodies")

    def _class_attributes(self, f: _File, cls):
        """The attributes of a class whose statements were elided, when a rule reads them."""
        from celery_chain_lint.load.bodies import class_attributes

        return self._piece(f, f"attributes:{cls.qualname}:{cls.span.line}", "attributes",
                           lambda value: isinstance(value, dict),
                           lambda lines: class_attributes(lines, *self._where(f), cls),
                           "class_bodies")

    def _piece(self, f: _File, name: str, kind: str, valid: Callable[[object], bool],
               read: Callable[[List[str]], object], counter: str):
        """What ``read`` finds in ``f``'s decoded lines about one of its pieces: read once a
        run, from the cache (an entry ``(kind, value)`` under ``name``) or now and stored."""
        key = self._key(f, name)
        if key in self._pieces:
            return self._pieces[key]
        value = self.cache.get(key) if self.cache is not None else None
        if isinstance(value, tuple) and len(value) == 2 and value[0] == kind and valid(value[1]):
            found = value[1]
        else:
            lines = self._lines(f)
            if lines is None:
                return None
            key = self._key(f, name)  # of the bytes read, should the file have changed
            self.stats[counter] = self.stats.get(counter, 0) + 1
            started = time.perf_counter()
            found = read(lines)
            self._add_time(counter + "_s", started)
            if self.cache is not None and found is not None:
                self.cache.put(key, (kind, found))
        self._pieces[key] = found
        return found

    @staticmethod
    def _where(f: _File) -> Tuple[str, str, bool]:
        return f.source.path, f.source.module, f.source.is_package

    def _module_value(self, f: _File, value):
        """The expression of a module-level value the definitions tier left for later."""
        from celery_chain_lint.load.bodies import module_value

        # Cached as a one-element list: None (no expression) is what "not cached" means.
        found = self._piece(f, f"value:{value.name}:{value.first_line}", "value",
                            lambda cached: isinstance(cached, list) and len(cached) == 1,
                            lambda lines: [module_value(lines, *self._where(f), value)],
                            "values")
        return found[0] if found else None

    def _lines(self, f: _File) -> Optional[List[str]]:
        """The decoded lines of a file whose bodies are read one by one (kept: a module's
        functions are often asked for one after the other)."""
        if f.abspath not in self._texts:
            from celery_chain_lint.load.source import SourceError, decode, split_lines

            data = self._data(f)
            try:
                self._texts[f.abspath] = split_lines(decode(data).text) if data else None
            except SourceError:
                self._texts[f.abspath] = None
        return self._texts[f.abspath]

    def _add_time(self, name: str, started: float) -> None:
        self.stats[name] = round(self.stats.get(name, 0) + time.perf_counter() - started, 3)

    def _load_definitions(self, f: _File) -> Optional[ModuleFacts]:
        from celery_chain_lint.load.bodies import definitions_facts

        cached = self._cached(f, DEFINITIONS)
        if cached is not None:
            return cached[0]
        data = self._data(f)
        if data is None:
            return None
        self.stats["parsed"] += 1
        started = time.perf_counter()
        facts = definitions_facts(data, f.source.path, f.source.module, f.source.is_package)
        self._add_time("definitions_s", started)
        if self.cache is not None:
            self.cache.put(self._key(f, DEFINITIONS),
                           ("facts", facts) if facts is not None else ("none", None))
        return facts


def _near_celery(files: List[_File]) -> FrozenSet[str]:
    """Celery, the modules importing it (the app's), and the modules importing those (the
    tasks'), as the pre-filter read their imports: what a body naming something they bind
    most likely reaches (``roots.likely_names``)."""
    reached = [(f.module, _reached(f)) for f in files]
    near = {"celery"}
    for _ in range(2):
        near |= {module for module, names in reached if not near.isdisjoint(names)}
    return frozenset(near)


def _reached(f: _File) -> FrozenSet[str]:
    """The modules ``f``'s imports may name as the pre-filter read them: each imported
    module and the packages holding it, and ``module.name`` for each name imported from one
    (``roots.within`` and the names, precomputed: ``_near_celery`` asks twice)."""
    reached = set()
    for level, source, names in f.imports:
        absolute = resolve_relative(f.module, f.source.is_package, level, source)
        if absolute is None:
            continue
        reached.update(_packages_and_itself(absolute))
        reached.update(f"{absolute}.{name}" for name in names or ())
    return frozenset(reached)


@functools.lru_cache(maxsize=4096)
def _packages_and_itself(module: str) -> Tuple[str, ...]:
    """``a``, ``a.b``, ``a.b.c`` for ``a.b.c`` (most modules are imported by many files)."""
    parts = module.split(".")
    return tuple(".".join(parts[:end]) for end in range(1, len(parts) + 1))


_ANALYSER_KEY: List[str] = []


def analyser_key() -> str:
    """A hash of the analyser's whole source: any change to a rule changes the findings."""
    if not _ANALYSER_KEY:
        import hashlib

        from celery_chain_lint.load.cache import format_key

        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        digest = hashlib.blake2b(format_key().encode(), digest_size=16)
        for directory, subdirs, names in os.walk(package):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    digest.update(os.path.relpath(path, package).encode())
                    try:
                        with open(path, "rb") as handle:
                            digest.update(handle.read())
                    except OSError:
                        pass
        _ANALYSER_KEY.append(digest.hexdigest())
    return _ANALYSER_KEY[0]


def _cache_entry(result: Tuple) -> Tuple[str, object]:
    """A file's cache entry: ("facts", facts) or ("problem", why it could not be analysed)."""
    facts, problem = result
    return ("facts", facts) if facts is not None else ("problem", problem)


def _pickled_entry(analyser, source: SourceFile) -> bytes:
    """In a worker: the file's cache entry, pickled once for both the trip back to the main
    process and the cache (which would otherwise pickle it again: a tenth of a cold run)."""
    return pickle.dumps(_cache_entry(analyser(source)), protocol=pickle.HIGHEST_PROTOCOL)


def _analyse(source: SourceFile):
    from celery_chain_lint.load.reading import analyse_file

    return analyse_file(source)


def _analyse_eliding(source: SourceFile, celery_modules: FrozenSet[str] = frozenset()):
    from celery_chain_lint.load.reading import analyse_file

    return analyse_file(source, elide_quiet_bodies=True, celery_modules=celery_modules)


class ParserChild:
    """A process forked at the start of a run that may find the cache warm: it imports the
    extractor while this process walks the tree and compares it with the cache;
    then it parses the few files that changed, while this process loads the others' facts.
    ``close()`` releases it unused. Plain ``os.fork`` and two pipes: nothing is left behind,
    whatever the parent does next (the child exits when its job pipe closes)."""

    def __init__(self):
        job_read, self._job = os.pipe()
        self._results, results_write = os.pipe()
        self._sender = None
        self.pid = os.fork()
        if self.pid == 0:  # the child
            code = 0
            try:
                os.close(self._job)
                os.close(self._results)
                _worker_start()
                with os.fdopen(job_read, "rb") as job:
                    data = job.read()
                if data:
                    with os.fdopen(results_write, "wb") as out:
                        out.write(pickle.dumps([_analyse(s) for s in pickle.loads(data)]))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(job_read)
        os.close(results_write)

    def parse(self, sources: List[SourceFile]) -> None:
        """Start parsing ``sources``; ``results()`` waits for them."""
        import threading

        data = pickle.dumps(sources)
        job, self._job = self._job, None

        def send() -> None:  # a pipe holds 64 kB: do not wait for the child to read the rest
            try:
                with os.fdopen(job, "wb") as out:
                    out.write(data)
            except OSError:
                pass

        self._sender = threading.Thread(target=send, daemon=True)
        self._sender.start()

    def results(self) -> List:
        """The parsed sources' results, or an empty list when the child failed (the caller
        parses them itself)."""
        try:
            results, self._results = self._results, None
            with os.fdopen(results, "rb") as stream:
                data = stream.read()
            return pickle.loads(data) if data else []
        except Exception:
            return []
        finally:
            self.close()

    def close(self) -> None:
        if self._sender is None and self.pid:  # never given work: no need to let it finish
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        for name in ("_job", "_results"):
            descriptor = getattr(self, name, None)
            if descriptor is not None:
                setattr(self, name, None)
                try:
                    os.close(descriptor)
                except OSError:
                    pass
        if self._sender is not None:
            self._sender.join()
            self._sender = None
        if self.pid:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0


def fork_parser_child(analysis: Analysis) -> Optional[ParserChild]:
    """A ``ParserChild`` when it may pay: the cache has been written before (a cold run
    parses in a pool), the extractor is not imported yet, there is a second core, and fork
    exists."""
    if analysis.cache is None or analysis.cache.is_empty() \
            or "celery_chain_lint.facts.extract" in sys.modules \
            or _cpu_count() < 2 or not sys.platform.startswith("linux"):
        return None
    try:
        return ParserChild()
    except OSError:
        return None


def _parallel(sources: List[SourceFile], workers: int, analyser,
              warm_up: Callable[[], None] = lambda: None):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork: workers start at once, with the parent's imports; elsewhere the platform's default.
    fork = sys.platform.startswith("linux")
    context = multiprocessing.get_context("fork" if fork else None)
    if fork:  # imported once here rather than once per worker (the main process needs it too)
        _worker_start()
    # Largest first, so that no worker is left with a big file at the end.
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i].content or b""))
    results: List = [None] * len(sources)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_worker_start) as pool:
        parsed = pool.map(partial(_pickled_entry, analyser), [sources[i] for i in order],
                          chunksize=1)  # submitted
        warm_up()  # while the workers parse, this process would only wait
        for index, pickled in zip(order, parsed):  # unpickled as they come, not all at the end
            results[index] = _FromWorker(pickled, pickle.loads(pickled))
    return results


class _FromWorker(NamedTuple):
    """A file's cache entry (``_cache_entry``) from a worker: as sent, and unpickled."""

    pickled: bytes
    entry: Tuple[str, object]


def _worker_start() -> None:
    from celery_chain_lint.load import bodies  # noqa: F401
    from celery_chain_lint.facts import extract  # noqa: F401


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
